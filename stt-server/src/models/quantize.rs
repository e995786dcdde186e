//! Quantization of ggml f16 Whisper models, following upstream's
//! `quantize` tool: every 2-D tensor except the conv biases and positional
//! embeddings is quantized row by row through ggml (`whisper_safe::quantize`);
//! 1-D and 3-D tensors (norms, biases, conv kernels) are copied unchanged; `ftype`
//! becomes `2 × 1000 + ggml_ftype` (quantization version 2).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use half::f16;
use log::info;
use whisper_safe::ggml_file::{self, GgmlFileError, Header, TensorHeader, TensorType, Tracked};
use whisper_safe::quantize::{self as ggml_quant, GgmlType};

use super::catalog::Quant;

/// Tensors upstream never quantizes (besides those that are not 2-D).
const KEEP: [&str; 4] = [
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// What [`quantize_file`] produced.
#[derive(Debug, Clone)]
pub struct QuantizeReport {
    /// The written file.
    pub output: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Tensors quantized.
    pub quantized: usize,
    /// Tensors copied unchanged.
    pub copied: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// An error of [`quantize_file`].
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// `f16` is not a quantization.
    #[error("{0} is not a quantized type; choose one of q8_0, q5_1, q5_0, q4_0, iq4_nl")]
    NotQuantized(Quant),
    /// The input is not a sound model file.
    #[error("input: {0}")]
    Input(#[source] GgmlFileError),
    /// The input's weights are not f16 (already quantized, or all-f32, whose
    /// f32 conv kernels whisper.cpp rejects once the file is quantized).
    #[error("{} has {weights} weights; only f16 models can be quantized", path.display())]
    NotF16 {
        /// The input.
        path: PathBuf,
        /// Its weight type.
        weights: TensorType,
    },
    /// ggml refused to quantize a tensor.
    #[error("ggml cannot quantize tensor `{tensor}` to {quant}: {source}")]
    Ggml {
        /// The tensor.
        tensor: String,
        /// The target type.
        quant: Quant,
        /// The cause.
        source: Box<whisper_safe::Error>,
    },
    /// ggml returned a different size than the format implies.
    #[error("ggml quantized `{tensor}` to {got} bytes, the {quant} format needs {expected}")]
    Size {
        /// The tensor.
        tensor: String,
        /// The target type.
        quant: Quant,
        /// Bytes returned.
        got: usize,
        /// Bytes the block layout implies.
        expected: u64,
    },
    /// Reading the input failed after it verified (changed while reading?).
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The input.
        path: PathBuf,
        /// The cause.
        source: Box<ggml_file::FormatError>,
    },
    /// A file-system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The written file does not verify.
    #[error("written model does not verify: {0}")]
    Output(#[source] GgmlFileError),
}

fn ggml_type(quant: Quant) -> Option<GgmlType> {
    match quant {
        Quant::F16 => None,
        Quant::Q8_0 => Some(GgmlType::Q8_0),
        Quant::Q5_1 => Some(GgmlType::Q5_1),
        Quant::Q5_0 => Some(GgmlType::Q5_0),
        Quant::Q4_0 => Some(GgmlType::Q4_0),
        Quant::Iq4Nl => Some(GgmlType::Iq4Nl),
    }
}

/// Whether upstream's whisper quantizer quantizes this tensor.
fn is_quantized(header: &TensorHeader) -> bool {
    header.ne.len() == 2 && !KEEP.contains(&header.name.as_str())
}

/// Quantizes the f16 model `input` to `quant` into `output` (written to
/// `<output>.partial`, then renamed), then verifies the result.
///
/// # Errors
/// [`QuantizeError`]: `f16` target, unsound or non-f16 input, ggml
/// failure, I/O.
pub fn quantize_file(
    input: &Path,
    output: &Path,
    quant: Quant,
) -> Result<QuantizeReport, QuantizeError> {
    let started = Instant::now();
    let ty = ggml_type(quant).ok_or(QuantizeError::NotQuantized(quant))?;
    let summary = ggml_file::verify(input).map_err(QuantizeError::Input)?;
    if summary.weight_type != TensorType::F16 {
        return Err(QuantizeError::NotF16 {
            path: input.to_path_buf(),
            weights: summary.weight_type,
        });
    }
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    let partial = output.with_file_name(name);
    let counts =
        write_quantized(input, &partial, quant, ty, summary.file_bytes).inspect_err(|_| {
            let _ = fs::remove_file(&partial);
        })?;
    fs::rename(&partial, output).map_err(|source| QuantizeError::Io {
        path: output.to_path_buf(),
        source,
    })?;
    let written = ggml_file::verify(output).map_err(QuantizeError::Output)?;
    let report = QuantizeReport {
        output: output.to_path_buf(),
        bytes: written.file_bytes,
        quantized: counts.0,
        copied: counts.1,
        elapsed: started.elapsed(),
    };
    info!(
        "quantized {} to {quant}: {} ({} bytes, {:.1} s)",
        input.display(),
        output.display(),
        report.bytes,
        report.elapsed.as_secs_f64()
    );
    Ok(report)
}

/// Streams `input` to `partial`, one tensor in memory at a time; returns
/// (quantized, copied) tensor counts.
fn write_quantized(
    input: &Path,
    partial: &Path,
    quant: Quant,
    ty: GgmlType,
    len: u64,
) -> Result<(usize, usize), QuantizeError> {
    let read_err = |source| QuantizeError::Read {
        path: input.to_path_buf(),
        source: Box::new(source),
    };
    let write_err = |source| QuantizeError::Io {
        path: partial.to_path_buf(),
        source,
    };
    let file = File::open(input).map_err(|source| QuantizeError::Io {
        path: input.to_path_buf(),
        source,
    })?;
    let mut r = Tracked::new(BufReader::with_capacity(1 << 20, file), len);
    let mut header = Header::read(&mut r).map_err(read_err)?;
    header.ftype = quant.stored_ftype();
    let out = File::create(partial).map_err(write_err)?;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    header.write(&mut w).map_err(write_err)?;
    let (mut quantized, mut copied) = (0, 0);
    let mut index = 0;
    while let Some(mut th) = TensorHeader::read(&mut r, index).map_err(read_err)? {
        index += 1;
        let bytes = th.data_bytes().unwrap_or(0);
        let data = r
            .bytes(bytes, &format!("data of tensor `{}`", th.name))
            .map_err(|e| read_err(e.into()))?;
        if !is_quantized(&th) {
            th.write(&mut w).map_err(write_err)?;
            w.write_all(&data).map_err(write_err)?;
            copied += 1;
            continue;
        }
        let values = to_f32(th.ttype, &data);
        let n_per_row = th.ne[0] as usize;
        let q = ggml_quant::quantize_rows(ty, &values, n_per_row).map_err(|source| {
            QuantizeError::Ggml {
                tensor: th.name.clone(),
                quant,
                source: Box::new(source),
            }
        })?;
        th.ttype = quant.tensor_type();
        let expected = th.data_bytes().unwrap_or(0);
        if q.len() as u64 != expected {
            return Err(QuantizeError::Size {
                tensor: th.name,
                quant,
                got: q.len(),
                expected,
            });
        }
        th.write(&mut w).map_err(write_err)?;
        w.write_all(&q).map_err(write_err)?;
        quantized += 1;
    }
    let file = w.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    Ok((quantized, copied))
}

/// Decodes f16 or f32 little-endian data.
fn to_f32(ttype: TensorType, data: &[u8]) -> Vec<f32> {
    match ttype {
        TensorType::F16 => data
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, ne: &[i32]) -> TensorHeader {
        TensorHeader {
            name: name.into(),
            ttype: TensorType::F16,
            ne: ne.to_vec(),
        }
    }

    #[test]
    fn selects_tensors_like_upstream() {
        assert!(is_quantized(&header(
            "decoder.token_embedding.weight",
            &[384, 51864]
        )));
        assert!(is_quantized(&header(
            "encoder.blocks.0.mlp.0.weight",
            &[384, 1536]
        )));
        assert!(!is_quantized(&header(
            "encoder.conv1.weight",
            &[3, 80, 384]
        )));
        assert!(!is_quantized(&header("encoder.conv1.bias", &[1, 384])));
        assert!(!is_quantized(&header(
            "decoder.positional_embedding",
            &[384, 448]
        )));
        assert!(!is_quantized(&header("decoder.ln.weight", &[384])));
    }
}
