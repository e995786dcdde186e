//! The whisper.cpp ggml model file: layout, reader, writer and verifier.
//!
//! whisper.cpp's loader trusts the file: absurd sizes, a missing tensor's data or
//! a vocabulary it cannot name end in an abort, not an error code. [`verify`]
//! walks the whole structure first; [`Context::new`](crate::Context::new) runs
//! it before every load.
//!
//! Layout (little-endian), as read by `whisper_model_load` in whisper.cpp:
//! magic `0x67676d6c`; 11 × i32 hyper-parameters ([`HParams`] then `ftype`); mel
//! filters (i32 `n_mel`, i32 `n_fft`, `n_mel × n_fft` f32); vocabulary (i32 count,
//! then per token a u32 length and the raw bytes); then tensors up to the end of the
//! file, each: i32 `n_dims`, i32 name length, i32 ggml type, `n_dims` × i32 dims
//! (innermost first), the name, the data.
//!
//! `ftype` holds `qnt_version × 1000 + ggml_ftype`; quantized files carry version 2.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The file magic, `"ggml"` read as a little-endian u32.
pub const MAGIC: u32 = 0x6767_6d6c;
/// Quantization format version written by upstream's quantizer (`GGML_QNT_VERSION`).
pub const QNT_VERSION: i32 = 2;
/// Multiplier of the quantization version inside `ftype` (`GGML_QNT_VERSION_FACTOR`).
pub const QNT_VERSION_FACTOR: i32 = 1000;
/// Frequency bins per mel filter: `N_FFT / 2 + 1` with `N_FFT = 400`.
pub const N_FFT_BINS: usize = 201;

/// Upper bound on a token's byte length accepted by the reader (structure check).
const MAX_TOKEN_BYTES: u32 = 1024;
/// Upper bound on a tensor name's length accepted by the reader.
const MAX_NAME_BYTES: i32 = 256;
/// Upper bound on each layer count accepted by the reader: the expected tensor
/// list grows with it (large-v3 has 32 layers).
const MAX_LAYERS: i32 = 1024;
/// Vocabulary sizes of whisper models: English-only (51864), multilingual
/// (51865), large-v3 (51866). whisper.cpp indexes its special tokens (ids up to
/// 50363) in arrays of `n_vocab` logits, so a smaller vocabulary overruns them;
/// it names one language per token above 51765, so a larger one names languages
/// it does not know (a C++ exception, i.e. an abort, while loading).
const N_VOCAB: std::ops::RangeInclusive<i32> = 51864..=51866;
/// Largest element count of one tensor: whisper.cpp's loader counts elements in
/// an `int32_t`.
const MAX_TENSOR_ELEMENTS: u64 = i32::MAX as u64;

/// Whisper hyper-parameters, in file order (without `ftype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HParams {
    /// Vocabulary size including special tokens.
    pub n_vocab: i32,
    /// Encoder positions (rows of the encoder positional embedding).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions (rows of the decoder positional embedding).
    pub n_text_ctx: i32,
    /// Decoder width (equals the encoder width).
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands of the input spectrogram (80, or 128 for large-v3).
    pub n_mels: i32,
}

impl HParams {
    /// Whether the vocabulary is the multilingual one (upstream: `n_vocab >= 51865`).
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    fn as_array(&self) -> [i32; 10] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
        ]
    }

    fn from_array(v: [i32; 10]) -> Self {
        Self {
            n_vocab: v[0],
            n_audio_ctx: v[1],
            n_audio_state: v[2],
            n_audio_head: v[3],
            n_audio_layer: v[4],
            n_text_ctx: v[5],
            n_text_state: v[6],
            n_text_head: v[7],
            n_text_layer: v[8],
            n_mels: v[9],
        }
    }
}

/// Element type of a tensor in the file (ggml `enum ggml_type` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorType {
    /// 32-bit float (id 0).
    F32,
    /// 16-bit float (id 1).
    F16,
    /// 4-bit blocks of 32 with an f16 scale, 18 bytes (id 2).
    Q4_0,
    /// 4-bit blocks of 32 with f16 scale and min, 20 bytes (id 3).
    Q4_1,
    /// 5-bit blocks of 32 with an f16 scale, 22 bytes (id 6).
    Q5_0,
    /// 5-bit blocks of 32 with f16 scale and min, 24 bytes (id 7).
    Q5_1,
    /// 8-bit blocks of 32 with an f16 scale, 34 bytes (id 8).
    Q8_0,
    /// 4-bit non-linear blocks of 32 with an f16 scale, 18 bytes (id 20).
    Iq4Nl,
}

impl TensorType {
    const ALL: [TensorType; 8] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Iq4Nl,
    ];

    /// The ggml type id.
    pub fn id(self) -> i32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Iq4Nl => 20,
        }
    }

    /// The type with ggml type id `id`, if it is one whisper files use.
    pub fn from_id(id: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The ggml file type (`enum ggml_ftype`) of a model whose weights have this type.
    pub fn ftype(self) -> i32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q8_0 => 7,
            Self::Q5_0 => 8,
            Self::Q5_1 => 9,
            Self::Iq4Nl => 19,
        }
    }

    /// The weight type of ggml file type `ftype` (without the quantization version).
    pub fn from_ftype(ftype: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.ftype() == ftype)
    }

    /// Lower-case name as ggml prints it (`f16`, `q5_1`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q5_0 => "q5_0",
            Self::Q5_1 => "q5_1",
            Self::Q8_0 => "q8_0",
            Self::Iq4Nl => "iq4_nl",
        }
    }

    /// Elements per block and bytes per block.
    pub fn block(self) -> (u64, u64) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Iq4Nl => (32, 18),
        }
    }

    /// Bytes of `n_elements` elements, or `None` when they do not fill whole blocks.
    pub fn bytes_for(self, n_elements: u64) -> Option<u64> {
        let (per_block, block_bytes) = self.block();
        n_elements
            .is_multiple_of(per_block)
            .then(|| n_elements / per_block * block_bytes)
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The mel filter bank stored in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilters {
    /// Number of mel bands (rows).
    pub n_mel: i32,
    /// Frequency bins per band (columns, 201).
    pub n_fft: i32,
    /// Row-major `n_mel × n_fft` weights.
    pub data: Vec<f32>,
}

/// Everything before the tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Hyper-parameters.
    pub hparams: HParams,
    /// `ftype` as stored: `qnt_version × 1000 + ggml_ftype`.
    pub ftype: i32,
    /// Mel filter bank.
    pub mel: MelFilters,
    /// Raw token bytes in id order (whisper.cpp appends the special tokens itself).
    pub vocab: Vec<Vec<u8>>,
}

impl Header {
    /// The ggml file type without the quantization version.
    pub fn base_ftype(&self) -> i32 {
        self.ftype % QNT_VERSION_FACTOR
    }

    /// The quantization version stored in `ftype`.
    pub fn qnt_version(&self) -> i32 {
        self.ftype / QNT_VERSION_FACTOR
    }

    /// Writes the header.
    ///
    /// # Errors
    /// Any write error.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&MAGIC.to_le_bytes())?;
        for v in self.hparams.as_array() {
            w.write_all(&v.to_le_bytes())?;
        }
        w.write_all(&self.ftype.to_le_bytes())?;
        w.write_all(&self.mel.n_mel.to_le_bytes())?;
        w.write_all(&self.mel.n_fft.to_le_bytes())?;
        let mut buf = Vec::with_capacity(self.mel.data.len() * 4);
        for v in &self.mel.data {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
        let count = i32::try_from(self.vocab.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "vocabulary too large"))?;
        w.write_all(&count.to_le_bytes())?;
        for token in &self.vocab {
            let len = u32::try_from(token.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "token too long"))?;
            w.write_all(&len.to_le_bytes())?;
            w.write_all(token)?;
        }
        Ok(())
    }

    /// Reads and checks the header: magic, plausible hyper-parameters, a known
    /// file type, a mel bank of `n_mels × 201`, and a vocabulary no larger than
    /// `n_vocab`.
    ///
    /// # Errors
    /// [`FormatError`] naming what is wrong, or truncation with its offset.
    pub fn read<R: Read>(r: &mut Tracked<R>) -> Result<Self, FormatError> {
        let magic = r.u32("magic")?;
        if magic != MAGIC {
            return Err(FormatError::BadMagic(magic));
        }
        let mut values = [0i32; 10];
        for v in &mut values {
            *v = r.i32("hyper-parameters")?;
        }
        let hparams = HParams::from_array(values);
        let ftype = r.i32("hyper-parameters")?;
        check_hparams(&hparams)?;
        if TensorType::from_ftype(ftype % QNT_VERSION_FACTOR).is_none() || ftype < 0 {
            return Err(FormatError::BadFtype(ftype));
        }
        let n_mel = r.i32("mel filter header")?;
        let n_fft = r.i32("mel filter header")?;
        if n_mel != hparams.n_mels || n_fft != N_FFT_BINS as i32 {
            return Err(FormatError::BadMelShape {
                n_mel,
                n_fft,
                n_mels: hparams.n_mels,
            });
        }
        let raw = r.bytes(n_mel as u64 * n_fft as u64 * 4, "mel filters")?;
        let data = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let count = r.i32("vocabulary size")?;
        if count < 0 || count > hparams.n_vocab {
            return Err(FormatError::BadVocabSize {
                count,
                n_vocab: hparams.n_vocab,
            });
        }
        let mut vocab = Vec::with_capacity(count as usize);
        for i in 0..count {
            let len = r.u32("vocabulary")?;
            if len > MAX_TOKEN_BYTES {
                return Err(FormatError::BadToken { index: i, len });
            }
            vocab.push(r.bytes(u64::from(len), "vocabulary")?);
        }
        Ok(Self {
            hparams,
            ftype,
            mel: MelFilters { n_mel, n_fft, data },
            vocab,
        })
    }
}

/// Checks what whisper.cpp assumes of the hyper-parameters: positive and
/// bounded, one of whisper's vocabularies, equal encoder and decoder widths, and
/// head counts that divide them (the attention reshapes assert it).
fn check_hparams(hp: &HParams) -> Result<(), FormatError> {
    let bad = hp.as_array().iter().any(|&v| v <= 0 || v > 1 << 20);
    let too_deep = hp.n_audio_layer.max(hp.n_text_layer) > MAX_LAYERS;
    if bad
        || too_deep
        || !N_VOCAB.contains(&hp.n_vocab)
        || hp.n_text_state != hp.n_audio_state
        || hp.n_audio_state % hp.n_audio_head != 0
        || hp.n_text_state % hp.n_text_head != 0
    {
        return Err(FormatError::BadHParams(*hp));
    }
    Ok(())
}

/// The header of one tensor record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorHeader {
    /// Tensor name, e.g. `encoder.blocks.0.attn.query.weight`.
    pub name: String,
    /// Element type of the data.
    pub ttype: TensorType,
    /// Dimensions, innermost first (ggml `ne`).
    pub ne: Vec<i32>,
}

impl TensorHeader {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.ne.iter().map(|&d| d as u64).product()
    }

    /// Bytes of the data that follows the header, or `None` when the rows do not
    /// fill whole blocks.
    pub fn data_bytes(&self) -> Option<u64> {
        let row = self.ne.first().map_or(1, |&d| d as u64);
        if !row.is_multiple_of(self.ttype.block().0) {
            return None;
        }
        self.ttype.bytes_for(self.n_elements())
    }

    /// Serialized size of the header in bytes.
    pub fn byte_len(&self) -> u64 {
        12 + 4 * self.ne.len() as u64 + self.name.len() as u64
    }

    /// Writes the record header (the caller writes the data).
    ///
    /// # Errors
    /// Any write error.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let n_dims = self.ne.len() as i32;
        w.write_all(&n_dims.to_le_bytes())?;
        w.write_all(&(self.name.len() as i32).to_le_bytes())?;
        w.write_all(&self.ttype.id().to_le_bytes())?;
        for d in &self.ne {
            w.write_all(&d.to_le_bytes())?;
        }
        w.write_all(self.name.as_bytes())
    }

    /// Reads the next record header, or `None` at a clean end of file.
    ///
    /// # Errors
    /// A partial header (truncation) or implausible fields.
    pub fn read<R: Read>(r: &mut Tracked<R>, index: usize) -> Result<Option<Self>, FormatError> {
        let offset = r.pos();
        let what = format!("header of tensor #{index}");
        let Some(n_dims) = r.i32_or_eof(&what)? else {
            return Ok(None);
        };
        let name_len = r.i32(&what)?;
        let ttype_id = r.i32(&what)?;
        // 0-D: a scalar (upstream's VAD converter writes its one-element bias so).
        if !(0..=4).contains(&n_dims) || !(1..=MAX_NAME_BYTES).contains(&name_len) {
            return Err(FormatError::BadTensorHeader {
                offset,
                detail: format!("n_dims {n_dims}, name length {name_len}"),
            });
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d = r.i32(&what)?;
            if d <= 0 {
                return Err(FormatError::BadTensorHeader {
                    offset,
                    detail: format!("dimension {d}"),
                });
            }
            ne.push(d);
        }
        let name_bytes = r.bytes(name_len as u64, &what)?;
        let name = String::from_utf8(name_bytes).map_err(|_| FormatError::BadTensorHeader {
            offset,
            detail: "name is not UTF-8".into(),
        })?;
        let ttype = TensorType::from_id(ttype_id).ok_or_else(|| FormatError::UnknownType {
            tensor: name.clone(),
            id: ttype_id,
        })?;
        Ok(Some(Self { name, ttype, ne }))
    }
}

/// A tensor whisper.cpp expects: name, dims (innermost first) and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// Dimensions, innermost first.
    pub ne: Vec<i32>,
    /// Element type.
    pub ttype: TensorType,
}

impl TensorSpec {
    /// The record header of this tensor.
    pub fn header(&self) -> TensorHeader {
        TensorHeader {
            name: self.name.clone(),
            ttype: self.ttype,
            ne: self.ne.clone(),
        }
    }
}

/// The tensors `whisper_model_load` creates for `hp` with 2-D weights of type
/// `wtype`, in the order of OpenAI's checkpoints (the order upstream's converter
/// writes). Positional embeddings, conv biases (`[1, n]`) and 1-D tensors are f32;
/// conv kernels are f16 (f32 in an all-f32 model).
pub fn expected_tensors(hp: &HParams, wtype: TensorType) -> Vec<TensorSpec> {
    use TensorType::F32;
    let vtype = if wtype == F32 { F32 } else { TensorType::F16 };
    let (st, ts) = (hp.n_audio_state, hp.n_text_state);
    let mut out = Vec::new();
    let mut push = |name: String, ne: &[i32], ttype: TensorType| {
        out.push(TensorSpec {
            name,
            ne: ne.to_vec(),
            ttype,
        });
    };
    let attn = |push: &mut dyn FnMut(String, &[i32], TensorType), p: &str, n: i32| {
        push(format!("{p}.query.weight"), &[n, n], wtype);
        push(format!("{p}.query.bias"), &[n], F32);
        push(format!("{p}.key.weight"), &[n, n], wtype);
        push(format!("{p}.value.weight"), &[n, n], wtype);
        push(format!("{p}.value.bias"), &[n], F32);
        push(format!("{p}.out.weight"), &[n, n], wtype);
        push(format!("{p}.out.bias"), &[n], F32);
        push(format!("{p}_ln.weight"), &[n], F32);
        push(format!("{p}_ln.bias"), &[n], F32);
    };
    let mlp = |push: &mut dyn FnMut(String, &[i32], TensorType), p: &str, n: i32| {
        push(format!("{p}.mlp.0.weight"), &[n, 4 * n], wtype);
        push(format!("{p}.mlp.0.bias"), &[4 * n], F32);
        push(format!("{p}.mlp.2.weight"), &[4 * n, n], wtype);
        push(format!("{p}.mlp.2.bias"), &[n], F32);
        push(format!("{p}.mlp_ln.weight"), &[n], F32);
        push(format!("{p}.mlp_ln.bias"), &[n], F32);
    };

    push(
        "encoder.positional_embedding".into(),
        &[st, hp.n_audio_ctx],
        F32,
    );
    push("encoder.conv1.weight".into(), &[3, hp.n_mels, st], vtype);
    push("encoder.conv1.bias".into(), &[1, st], F32);
    push("encoder.conv2.weight".into(), &[3, st, st], vtype);
    push("encoder.conv2.bias".into(), &[1, st], F32);
    for i in 0..hp.n_audio_layer {
        let p = format!("encoder.blocks.{i}");
        attn(&mut push, &format!("{p}.attn"), st);
        mlp(&mut push, &p, st);
    }
    push("encoder.ln_post.weight".into(), &[st], F32);
    push("encoder.ln_post.bias".into(), &[st], F32);
    push(
        "decoder.positional_embedding".into(),
        &[ts, hp.n_text_ctx],
        F32,
    );
    push(
        "decoder.token_embedding.weight".into(),
        &[ts, hp.n_vocab],
        wtype,
    );
    for i in 0..hp.n_text_layer {
        let p = format!("decoder.blocks.{i}");
        attn(&mut push, &format!("{p}.attn"), ts);
        attn(&mut push, &format!("{p}.cross_attn"), ts);
        mlp(&mut push, &p, ts);
    }
    push("decoder.ln.weight".into(), &[ts], F32);
    push("decoder.ln.bias".into(), &[ts], F32);
    out
}

/// Exact size of a file with `header_bytes` of header and the tensors of `hp` with
/// weights of type `wtype`.
pub fn file_size(header_bytes: u64, hp: &HParams, wtype: TensorType) -> u64 {
    header_bytes
        + expected_tensors(hp, wtype)
            .iter()
            .map(|t| {
                let h = t.header();
                h.byte_len() + h.data_bytes().unwrap_or(0)
            })
            .sum::<u64>()
}

/// What [`verify`] found in a structurally sound file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Hyper-parameters.
    pub hparams: HParams,
    /// Type of the 2-D weights (from `ftype`).
    pub weight_type: TensorType,
    /// Quantization version stored in `ftype` (0 for f16/f32 files).
    pub qnt_version: i32,
    /// Tokens stored in the vocabulary.
    pub n_vocab_tokens: usize,
    /// Tensor records.
    pub n_tensors: usize,
    /// Tensor records per element type.
    pub type_counts: BTreeMap<TensorType, usize>,
    /// Bytes of tensor data.
    pub tensor_bytes: u64,
    /// File size in bytes.
    pub file_bytes: u64,
}

/// A structural defect of a ggml model file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not a ggml file.
    #[error("bad magic {0:#010x} (expected {MAGIC:#010x}, \"ggml\")")]
    BadMagic(u32),
    /// Implausible hyper-parameters.
    #[error("implausible hyper-parameters {0:?}")]
    BadHParams(HParams),
    /// Unknown file type.
    #[error("unknown ftype {0}")]
    BadFtype(i32),
    /// Mel filter bank of the wrong shape.
    #[error("mel filters are {n_mel}×{n_fft}, expected {n_mels}×201")]
    BadMelShape {
        /// Rows stored.
        n_mel: i32,
        /// Columns stored.
        n_fft: i32,
        /// `n_mels` of the hyper-parameters.
        n_mels: i32,
    },
    /// Vocabulary count out of range.
    #[error("vocabulary holds {count} tokens, expected 1..={n_vocab}")]
    BadVocabSize {
        /// Stored count.
        count: i32,
        /// `n_vocab` of the hyper-parameters.
        n_vocab: i32,
    },
    /// Implausible token length.
    #[error("token #{index} has implausible length {len}")]
    BadToken {
        /// Token id.
        index: i32,
        /// Stored length.
        len: u32,
    },
    /// A tensor header that makes no sense.
    #[error("invalid tensor header at offset {offset}: {detail}")]
    BadTensorHeader {
        /// Offset of the header.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A ggml type id whisper files do not use.
    #[error("tensor `{tensor}` has unknown ggml type id {id}")]
    UnknownType {
        /// Tensor name.
        tensor: String,
        /// Stored id.
        id: i32,
    },
    /// A tensor whisper.cpp does not know.
    #[error("unknown tensor `{0}`")]
    UnknownTensor(String),
    /// The same tensor twice.
    #[error("tensor `{0}` appears twice")]
    DuplicateTensor(String),
    /// Wrong dims.
    #[error("tensor `{tensor}` has dims {found:?}, expected {expected:?}")]
    Shape {
        /// Tensor name.
        tensor: String,
        /// Dims expected from the hyper-parameters.
        expected: Vec<i32>,
        /// Dims stored.
        found: Vec<i32>,
    },
    /// Wrong element type.
    #[error("tensor `{tensor}` has type {found}, expected {expected}")]
    Type {
        /// Tensor name.
        tensor: String,
        /// Type implied by `ftype`.
        expected: TensorType,
        /// Type stored.
        found: TensorType,
    },
    /// A short read (truncation) or an I/O error.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file ends before every tensor was seen.
    #[error("{} tensor(s) missing, first `{}` (file ends after {seen} tensors)", missing.len(), missing[0])]
    MissingTensors {
        /// Names of the missing tensors.
        missing: Vec<String>,
        /// Tensors present.
        seen: usize,
    },
    /// Bytes after the last tensor.
    #[error("{bytes} bytes of trailing data at offset {offset} after the last tensor")]
    TrailingData {
        /// Offset where they start.
        offset: u64,
        /// How many.
        bytes: u64,
    },
}

/// A failed read of a [`Tracked`] stream.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The stream ends early.
    #[error(
        "truncated in {what}: needs {needed} bytes at offset {offset}, only {available} available"
    )]
    Truncated {
        /// What was being read.
        what: String,
        /// Offset of the read.
        offset: u64,
        /// Bytes needed.
        needed: u64,
        /// Bytes left in the stream.
        available: u64,
    },
    /// An I/O error other than a short read.
    #[error("read error at offset {offset}: {source}")]
    Io {
        /// Offset of the read.
        offset: u64,
        /// The cause.
        source: io::Error,
    },
}

/// A model file format, as errors name it.
pub trait ModelFormat: std::error::Error + 'static {
    /// What a file of the format is called in messages, e.g. `ggml model`.
    const NAME: &'static str;
}

impl ModelFormat for FormatError {
    const NAME: &'static str = "ggml model";
}

/// An error of verifying a model file ([`verify`], [`vad::verify`](crate::vad::verify)),
/// with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum FileError<F: ModelFormat> {
    /// The file cannot be opened or its size read.
    #[error("cannot open {} {}: {source}", F::NAME, path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The path is a directory, a FIFO or a device.
    #[error("{} {} is not a regular file", F::NAME, path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is not a sound model of the format.
    #[error("invalid {} {}: {source}", F::NAME, path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The defect.
        source: Box<F>,
    },
}

impl<F: ModelFormat> FileError<F> {
    /// What is wrong with the file, without its path.
    pub fn reason(&self) -> String {
        match self {
            Self::Open { source, .. } => source.to_string(),
            Self::NotAFile { .. } => "not a regular file".to_owned(),
            Self::Format { source, .. } => source.to_string(),
        }
    }
}

/// An error of [`verify`].
pub type GgmlFileError = FileError<FormatError>;

/// A reader that knows its offset and the total length, so a short read can say
/// where and by how much the data falls short.
#[derive(Debug)]
pub struct Tracked<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read> Tracked<R> {
    /// Wraps `inner`, positioned at offset 0 of a stream of `len` bytes.
    pub fn new(inner: R, len: u64) -> Self {
        Self { inner, pos: 0, len }
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Current offset.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn truncated(&self, what: &str, needed: u64) -> ReadError {
        ReadError::Truncated {
            what: what.to_string(),
            offset: self.pos,
            needed,
            available: self.remaining(),
        }
    }

    /// Reads exactly `buf.len()` bytes of `what`.
    ///
    /// # Errors
    /// [`ReadError::Truncated`] when fewer remain, or the read error.
    pub fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), ReadError> {
        if (buf.len() as u64) > self.remaining() {
            return Err(self.truncated(what, buf.len() as u64));
        }
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => self.truncated(what, buf.len() as u64),
            _ => ReadError::Io {
                offset: self.pos,
                source: e,
            },
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Reads `n` bytes of `what` into a new buffer.
    ///
    /// # Errors
    /// As [`Tracked::fill`].
    pub fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, ReadError> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let mut buf = vec![0u8; n as usize];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    /// Reads a little-endian u32.
    ///
    /// # Errors
    /// As [`Tracked::fill`].
    pub fn u32(&mut self, what: &str) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.fill(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian i32.
    ///
    /// # Errors
    /// As [`Tracked::fill`].
    pub fn i32(&mut self, what: &str) -> Result<i32, ReadError> {
        let mut b = [0u8; 4];
        self.fill(&mut b, what)?;
        Ok(i32::from_le_bytes(b))
    }

    fn i32_or_eof(&mut self, what: &str) -> Result<Option<i32>, ReadError> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        self.i32(what).map(Some)
    }
}

impl<R: Read + Seek> Tracked<R> {
    /// Skips `n` bytes of `what`.
    ///
    /// # Errors
    /// [`ReadError::Truncated`] when fewer remain, or the seek error.
    pub fn skip(&mut self, n: u64, what: &str) -> Result<(), ReadError> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let delta = i64::try_from(n).expect("tensor size fits in i64");
        self.inner
            .seek(SeekFrom::Current(delta))
            .map_err(|e| ReadError::Io {
                offset: self.pos,
                source: e,
            })?;
        self.pos += n;
        Ok(())
    }
}

/// Reads the tensor records from `r` to its end, each checked against `specs`
/// once `fit` has adjusted it to its spec: every spec once, nothing else, no bytes
/// after the last. Returns each record's type and data bytes, in file order.
pub(crate) fn read_tensors<R: Read + Seek>(
    r: &mut Tracked<R>,
    specs: &[TensorSpec],
    fit: impl Fn(&mut TensorHeader, &TensorSpec),
) -> Result<Vec<(TensorType, u64)>, FormatError> {
    let expected: HashMap<&str, &TensorSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut seen = HashSet::new();
    let mut tensors = Vec::new();
    loop {
        if seen.len() == specs.len() && r.remaining() > 0 {
            return Err(FormatError::TrailingData {
                offset: r.pos(),
                bytes: r.remaining(),
            });
        }
        let offset = r.pos();
        let Some(mut th) = TensorHeader::read(r, seen.len())? else {
            break;
        };
        if let Some(spec) = expected.get(th.name.as_str()) {
            fit(&mut th, spec);
        }
        let bytes = check_tensor(&th, offset, &expected, &mut seen)?;
        r.skip(bytes, &format!("data of tensor `{}`", th.name))?;
        tensors.push((th.ttype, bytes));
    }
    if seen.len() < specs.len() {
        let missing = specs
            .iter()
            .filter(|s| !seen.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        return Err(FormatError::MissingTensors {
            missing,
            seen: seen.len(),
        });
    }
    Ok(tensors)
}

/// Checks a tensor header (read at `offset`) against the expected tensors and the
/// ones already seen; returns the byte count of its data.
fn check_tensor(
    header: &TensorHeader,
    offset: u64,
    expected: &HashMap<&str, &TensorSpec>,
    seen: &mut HashSet<String>,
) -> Result<u64, FormatError> {
    let spec = expected
        .get(header.name.as_str())
        .ok_or_else(|| FormatError::UnknownTensor(header.name.clone()))?;
    if !seen.insert(header.name.clone()) {
        return Err(FormatError::DuplicateTensor(header.name.clone()));
    }
    if header.ne != spec.ne {
        return Err(FormatError::Shape {
            tensor: header.name.clone(),
            expected: spec.ne.clone(),
            found: header.ne.clone(),
        });
    }
    if header.ttype != spec.ttype {
        return Err(FormatError::Type {
            tensor: header.name.clone(),
            expected: spec.ttype,
            found: header.ttype,
        });
    }
    if header.n_elements() > MAX_TENSOR_ELEMENTS {
        return Err(FormatError::BadTensorHeader {
            offset,
            detail: format!(
                "`{}` has {} elements; whisper.cpp counts them in 32 bits",
                header.name,
                header.n_elements()
            ),
        });
    }
    header
        .data_bytes()
        .ok_or_else(|| FormatError::BadTensorHeader {
            offset,
            detail: format!("rows of `{}` do not fill whole blocks", header.name),
        })
}

/// Walks a whole model from `r` (a stream of `len` bytes) without loading tensor
/// data: header, every tensor's name, dims, type and data extent, missing
/// tensors and trailing bytes.
///
/// # Errors
/// The first [`FormatError`] found.
pub fn verify_reader<R: Read + Seek>(r: R, len: u64) -> Result<Summary, FormatError> {
    let mut r = Tracked::new(r, len);
    let header = Header::read(&mut r)?;
    let weight_type =
        TensorType::from_ftype(header.base_ftype()).ok_or(FormatError::BadFtype(header.ftype))?;
    let specs = expected_tensors(&header.hparams, weight_type);
    let tensors = read_tensors(&mut r, &specs, |_, _| {})?;
    let mut type_counts = BTreeMap::new();
    for (ttype, _) in &tensors {
        *type_counts.entry(*ttype).or_insert(0) += 1;
    }
    Ok(Summary {
        hparams: header.hparams,
        weight_type,
        qnt_version: header.qnt_version(),
        n_vocab_tokens: header.vocab.len(),
        n_tensors: tensors.len(),
        type_counts,
        tensor_bytes: tensors.iter().map(|&(_, bytes)| bytes).sum(),
        file_bytes: len,
    })
}

/// Verifies the model file at `path` (see [`verify_reader`]); reads the tensor
/// headers only, so it takes milliseconds even for large models.
///
/// # Errors
/// [`GgmlFileError`] with the path and the defect.
pub fn verify(path: &Path) -> Result<Summary, GgmlFileError> {
    verify_file(path, verify_reader)
}

/// Runs `verify_reader` over the file at `path` with its length, when it is a
/// regular file (checked before opening: opening a FIFO for reading waits for a
/// writer).
pub(crate) fn verify_file<T, F: ModelFormat>(
    path: &Path,
    verify_reader: impl FnOnce(BufReader<File>, u64) -> Result<T, F>,
) -> Result<T, FileError<F>> {
    let open = |source| FileError::Open {
        path: path.to_owned(),
        source,
    };
    if !std::fs::metadata(path).map_err(open)?.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let file = File::open(path).map_err(open)?;
    let len = file.metadata().map_err(open)?.len();
    verify_reader(BufReader::new(file), len).map_err(|source| FileError::Format {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_match_ggml() {
        let ids: Vec<_> = TensorType::ALL
            .iter()
            .map(|t| (t.name(), t.id(), t.ftype()))
            .collect();
        assert_eq!(
            ids,
            [
                ("f32", 0, 0),
                ("f16", 1, 1),
                ("q4_0", 2, 2),
                ("q4_1", 3, 3),
                ("q5_0", 6, 8),
                ("q5_1", 7, 9),
                ("q8_0", 8, 7),
                ("iq4_nl", 20, 19)
            ]
        );
        assert_eq!(TensorType::from_ftype(9), Some(TensorType::Q5_1));
        assert_eq!(TensorType::from_id(4), None);
        assert_eq!(TensorType::Q5_1.bytes_for(384 * 384), Some(384 * 12 * 24));
        assert_eq!(TensorType::Q8_0.bytes_for(33), None);
    }

    #[test]
    fn tensor_count_matches_loader() {
        // whisper_model_load: 5 + 15 per encoder layer + 2 (encoder), 4 + 24 per decoder layer.
        let hp = HParams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
        };
        let specs = expected_tensors(&hp, TensorType::F16);
        assert_eq!(specs.len(), 7 + 15 * 4 + 4 + 24 * 4);
        let quant = expected_tensors(&hp, TensorType::Q5_1);
        let conv = quant
            .iter()
            .find(|s| s.name == "encoder.conv2.weight")
            .unwrap();
        assert_eq!(
            (conv.ne.clone(), conv.ttype),
            (vec![3, 384, 384], TensorType::F16)
        );
    }

    #[test]
    fn header_round_trips() {
        let header = Header {
            hparams: HParams {
                n_vocab: 51864,
                n_audio_ctx: 2,
                n_audio_state: 32,
                n_audio_head: 1,
                n_audio_layer: 1,
                n_text_ctx: 2,
                n_text_state: 32,
                n_text_head: 1,
                n_text_layer: 1,
                n_mels: 2,
            },
            ftype: 2009,
            mel: MelFilters {
                n_mel: 2,
                n_fft: 201,
                data: (0..402).map(|i| i as f32 * 0.5).collect(),
            },
            vocab: vec![b"a".to_vec(), Vec::new(), vec![0xff, 0x00]],
        };
        let mut buf = Vec::new();
        header.write(&mut buf).unwrap();
        assert_eq!(
            buf.len(),
            4 + 11 * 4 + 8 + 402 * 4 + 4 + (4 + 1) + 4 + (4 + 2)
        );
        let mut r = Tracked::new(buf.as_slice(), buf.len() as u64);
        let back = Header::read(&mut r).unwrap();
        assert_eq!(back, header);
        assert_eq!((back.base_ftype(), back.qnt_version()), (9, 2));
    }
}
