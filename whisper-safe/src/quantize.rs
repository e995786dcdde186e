//! Quantization through the loaded ggml library.

use crate::{library, Error, Result};

/// The ggml tensor types a whisper model file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// 4-bit blocks of 32 with a scale.
    Q4_0,
    /// 5-bit blocks of 32 with a scale.
    Q5_0,
    /// 5-bit blocks of 32 with scale and minimum.
    Q5_1,
    /// 8-bit blocks of 32 with a scale.
    Q8_0,
    /// 4-bit non-linear blocks of 32 with a scale (values from a fixed table).
    Iq4Nl,
}

impl GgmlType {
    /// ggml's numeric id (`enum ggml_type`), as stored in model files.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => whisper_sys::GGML_TYPE_F32,
            GgmlType::F16 => whisper_sys::GGML_TYPE_F16,
            GgmlType::Q4_0 => whisper_sys::GGML_TYPE_Q4_0,
            GgmlType::Q5_0 => whisper_sys::GGML_TYPE_Q5_0,
            GgmlType::Q5_1 => whisper_sys::GGML_TYPE_Q5_1,
            GgmlType::Q8_0 => whisper_sys::GGML_TYPE_Q8_0,
            GgmlType::Iq4Nl => whisper_sys::GGML_TYPE_IQ4_NL,
        }
    }

    /// The type with ggml id `id`, if it is one of these.
    pub fn from_id(id: u32) -> Option<Self> {
        [
            Self::F32,
            Self::F16,
            Self::Q4_0,
            Self::Q5_0,
            Self::Q5_1,
            Self::Q8_0,
            Self::Iq4Nl,
        ]
        .into_iter()
        .find(|t| t.id() == id)
    }
}

/// Bytes one row of `n_per_row` values takes in type `ty`.
///
/// # Errors
/// [`Error::Load`] when the libraries cannot be loaded; [`Error::InvalidParam`]
/// when `n_per_row` is not a multiple of the type's block size.
pub fn row_size(ty: GgmlType, n_per_row: usize) -> Result<usize> {
    let api = library::api()?;
    // SAFETY: pure functions of the type id.
    let block = unsafe { (api.ggml_blck_size)(ty.id()) } as usize;
    if n_per_row == 0 || !n_per_row.is_multiple_of(block) {
        return Err(Error::InvalidParam {
            name: "n_per_row",
            reason: format!("{n_per_row} is not a positive multiple of the block size {block}"),
        });
    }
    // SAFETY: `n_per_row` is a multiple of the block size.
    Ok(unsafe { (api.ggml_row_size)(ty.id(), n_per_row as i64) })
}

/// Quantizes rows of `n_per_row` f32 values into `ty`.
///
/// # Errors
/// As [`row_size`], and [`Error::InvalidParam`] when `src` is not whole rows or
/// `ty` needs an importance matrix.
pub fn quantize_rows(ty: GgmlType, src: &[f32], n_per_row: usize) -> Result<Vec<u8>> {
    let api = library::api()?;
    let row_bytes = row_size(ty, n_per_row)?;
    if !src.len().is_multiple_of(n_per_row) {
        return Err(Error::InvalidParam {
            name: "src",
            reason: format!("{} values are not whole rows of {n_per_row}", src.len()),
        });
    }
    // SAFETY: pure function of the type id.
    if unsafe { (api.ggml_quantize_requires_imatrix)(ty.id()) } {
        return Err(Error::InvalidParam {
            name: "ty",
            reason: format!("{ty:?} needs an importance matrix"),
        });
    }
    let rows = src.len() / n_per_row;
    let mut dst = vec![0u8; rows * row_bytes];
    // SAFETY: `src` holds `rows * n_per_row` floats and `dst` has room for
    // `rows` rows of `row_bytes`, as ggml_row_size computed; no imatrix is needed.
    let written = unsafe {
        (api.ggml_quantize_chunk)(
            ty.id(),
            src.as_ptr(),
            dst.as_mut_ptr().cast(),
            0,
            rows as i64,
            n_per_row as i64,
            std::ptr::null(),
        )
    };
    debug_assert_eq!(written, dst.len());
    Ok(dst)
}
