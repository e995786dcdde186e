//! The Silero VAD model for whisper.cpp: converted from the ONNX file that the
//! faster-whisper wheel ships ([`SILERO_VAD`]) into whisper.cpp 1.8.3's VAD
//! format ([`whisper_safe::vad`]), and `models pull silero-vad`.
//!
//! The ONNX protobuf is read with a small wire-format reader (no generated code).
//! Values come from graph initializers, `Constant` nodes and `Identity` aliases,
//! in the graph or any graph enclosing it. The network is found by structure:
//! the graph (the main one or an `If`/`Loop` branch) whose first `Conv` has the
//! 16 kHz STFT basis (258 × 1 × 256; the 8 kHz branch of older exports has
//! 130 × 1 × 128), followed by four 3-wide `Conv`s, an `LSTM` and a 1-wide `Conv`.
//! Strides, kernels and the LSTM size are checked against what whisper.cpp's
//! graph hard-codes.
//!
//! Mapping (ONNX → whisper.cpp; ggml dims are the ONNX dims reversed):
//!
//! | ONNX (role in the graph) | dims | whisper.cpp tensor | type |
//! |---|---|---|---|
//! | STFT `Conv` weight | 258×1×256 | `_model.stft.forward_basis_buffer` | f16 |
//! | encoder `Conv` *i* weight (i = 0‥3) | out×in×3 | `_model.encoder.i.reparam_conv.weight` | f16 |
//! | encoder `Conv` *i* bias | out | `_model.encoder.i.reparam_conv.bias` | f32 |
//! | `LSTM` W | 1×512×128 | `_model.decoder.rnn.weight_ih` | f32 |
//! | `LSTM` R | 1×512×128 | `_model.decoder.rnn.weight_hh` | f32 |
//! | `LSTM` B\[0‥512) | 1×1024 | `_model.decoder.rnn.bias_ih` | f32 |
//! | `LSTM` B\[512‥1024) | | `_model.decoder.rnn.bias_hh` | f32 |
//! | final `Conv` weight | 1×128×1 | `_model.decoder.decoder.2.weight` (128 × 1) | f16 |
//! | final `Conv` bias | 1 | `_model.decoder.decoder.2.bias` | f32 |
//!
//! ONNX stores the LSTM gates in the order input, output, forget, cell; PyTorch
//! and whisper.cpp in the order input, forget, cell, output: the four 128-row
//! blocks of W, R and each half of B are reordered. Tensors are written in the
//! order of upstream's `convert-silero-vad-to-ggml.py`, after a header naming
//! `silero-16k` version 6.0.0 (faster-whisper calls the file v6; its weights are
//! not those of upstream's published `ggml-silero-v6.2.0.bin`, whose tensor list,
//! dims and types are the same).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use half::f16;
use sha2::{Digest, Sha256};
use whisper_safe::ggml_file::TensorType;
use whisper_safe::vad::{self, VadFileError, VadHeader, VadSummary};

use super::catalog::{VadSpec, SILERO_VAD};
use super::file_lock::{sibling, FileLock};
use super::hashing::HashingWriter;
use super::import::{self, ImportError, PinnedWheel};

/// The VAD model's place in the artifact layout: `<artifacts_dir>/silero-vad/ggml-silero-v6.bin`.
pub fn model_path(artifacts_dir: &Path) -> PathBuf {
    artifacts_dir
        .join(SILERO_VAD.dir_name)
        .join(SILERO_VAD.file_name)
}

/// Why a conversion or pull failed.
#[derive(Debug, thiserror::Error)]
pub enum SileroError {
    /// The bytes are not a well-formed ONNX protobuf.
    #[error("malformed ONNX protobuf at byte {offset}: {detail}")]
    Protobuf {
        /// Offset within the message being read.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
    /// The ONNX graph is not Silero's 16 kHz network as whisper.cpp runs it.
    #[error("not Silero VAD's 16 kHz graph: {0}")]
    Graph(String),
    /// A weight of a type the converter cannot read.
    #[error("ONNX tensor `{tensor}`: {detail}")]
    Tensor {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        detail: String,
    },
    /// A file whose SHA-256 is not the recorded one.
    #[error("{what} has SHA-256 {actual}, expected {expected}")]
    Checksum {
        /// The file.
        what: String,
        /// Recorded digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// The wheel could not be obtained.
    #[error(transparent)]
    Wheel(#[from] ImportError),
    /// The wheel is not a readable zip, or lacks the ONNX member.
    #[error("wheel {}: {detail}", path.display())]
    Zip {
        /// The wheel.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The converted file does not verify (a bug, or a disk problem).
    #[error("converted VAD model does not verify: {0}")]
    Output(#[from] VadFileError),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SileroError + '_ {
    move |source| SileroError::Io {
        path: path.to_path_buf(),
        source,
    }
}

mod wire {
    //! Protobuf wire format: a message is a sequence of (field number, value).

    use super::SileroError;

    /// One field value.
    pub enum Value<'a> {
        Varint(u64),
        /// A 64-bit value (skipped: no field read here has this type).
        Fixed64,
        Bytes(&'a [u8]),
        Fixed32(u32),
    }

    /// The fields of one message, in order.
    pub struct Fields<'a> {
        buf: &'a [u8],
        pos: usize,
    }

    pub fn fields(buf: &[u8]) -> Fields<'_> {
        Fields { buf, pos: 0 }
    }

    impl<'a> Fields<'a> {
        fn error(&self, detail: &str) -> SileroError {
            SileroError::Protobuf {
                offset: self.pos,
                detail: detail.to_owned(),
            }
        }

        fn varint(&mut self) -> Result<u64, SileroError> {
            let mut value = 0u64;
            for shift in (0..64).step_by(7) {
                let &byte = self
                    .buf
                    .get(self.pos)
                    .ok_or_else(|| self.error("truncated varint"))?;
                self.pos += 1;
                value |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return Ok(value);
                }
            }
            Err(self.error("varint longer than 10 bytes"))
        }

        fn take(&mut self, n: u64) -> Result<&'a [u8], SileroError> {
            let end = usize::try_from(n)
                .ok()
                .and_then(|n| self.pos.checked_add(n))
                .filter(|&end| end <= self.buf.len())
                .ok_or_else(|| self.error(&format!("field of {n} bytes runs past the end")))?;
            let slice = &self.buf[self.pos..end];
            self.pos = end;
            Ok(slice)
        }

        fn next_field(&mut self) -> Result<(u64, Value<'a>), SileroError> {
            let key = self.varint()?;
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Value::Fixed64
                }
                2 => {
                    let len = self.varint()?;
                    Value::Bytes(self.take(len)?)
                }
                5 => Value::Fixed32(u32::from_le_bytes(
                    self.take(4)?.try_into().expect("4 bytes"),
                )),
                t => return Err(self.error(&format!("unsupported wire type {t}"))),
            };
            Ok((key >> 3, value))
        }
    }

    impl<'a> Iterator for Fields<'a> {
        type Item = Result<(u64, Value<'a>), SileroError>;

        fn next(&mut self) -> Option<Self::Item> {
            (self.pos < self.buf.len()).then(|| self.next_field())
        }
    }

    /// Varints of a repeated integer field, packed or not.
    pub fn push_varints(value: Value<'_>, out: &mut Vec<i64>) -> Result<(), SileroError> {
        match value {
            Value::Varint(v) => out.push(v as i64),
            Value::Bytes(packed) => {
                let mut f = Fields {
                    buf: packed,
                    pos: 0,
                };
                while f.pos < packed.len() {
                    out.push(f.varint()? as i64);
                }
            }
            _ => {
                return Err(SileroError::Protobuf {
                    offset: 0,
                    detail: "integer field with a non-integer wire type".into(),
                })
            }
        }
        Ok(())
    }

    /// A length-delimited field as bytes.
    pub fn bytes<'a>(value: Value<'a>, what: &str) -> Result<&'a [u8], SileroError> {
        match value {
            Value::Bytes(b) => Ok(b),
            _ => Err(SileroError::Protobuf {
                offset: 0,
                detail: format!("{what} is not length-delimited"),
            }),
        }
    }

    /// A varint field.
    pub fn varint(value: Value<'_>, what: &str) -> Result<u64, SileroError> {
        match value {
            Value::Varint(v) => Ok(v),
            _ => Err(SileroError::Protobuf {
                offset: 0,
                detail: format!("{what} is not a varint"),
            }),
        }
    }
}

/// ONNX `TensorProto.DataType` values the converter reads.
const ONNX_FLOAT: u64 = 1;
const ONNX_FLOAT16: u64 = 10;

/// An ONNX tensor (`TensorProto`): name, dims and float values.
#[derive(Debug, Clone, Default)]
struct OnnxTensor {
    name: String,
    dims: Vec<i64>,
    data_type: u64,
    raw: Vec<u8>,
    floats: Vec<f32>,
    external: bool,
}

impl OnnxTensor {
    fn parse(buf: &[u8]) -> Result<Self, SileroError> {
        let mut t = Self::default();
        for field in wire::fields(buf) {
            match field? {
                (1, v) => wire::push_varints(v, &mut t.dims)?,
                (2, v) => t.data_type = wire::varint(v, "data_type")?,
                (4, wire::Value::Fixed32(bits)) => t.floats.push(f32::from_bits(bits)),
                (4, v) => {
                    let packed = wire::bytes(v, "float_data")?;
                    t.floats.extend(
                        packed
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                    );
                }
                (8, v) => t.name = String::from_utf8_lossy(wire::bytes(v, "name")?).into_owned(),
                (9, v) => t.raw = wire::bytes(v, "raw_data")?.to_vec(),
                (13, _) => t.external = true,
                (14, v) => t.external |= wire::varint(v, "data_location")? == 1,
                _ => {}
            }
        }
        Ok(t)
    }

    /// The values as f32, checked against the dims.
    fn values(&self) -> Result<Vec<f32>, SileroError> {
        let bad = |detail: String| SileroError::Tensor {
            tensor: self.name.clone(),
            detail,
        };
        if self.external {
            return Err(bad("data stored outside the model file".into()));
        }
        let n = self
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| {
                u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
            })
            .ok_or_else(|| bad(format!("dims {:?}", self.dims)))?;
        let values: Vec<f32> = match (self.data_type, self.raw.is_empty()) {
            (ONNX_FLOAT, false) => self
                .raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            (ONNX_FLOAT, true) => self.floats.clone(),
            (ONNX_FLOAT16, false) => self
                .raw
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            (t, _) => {
                return Err(bad(format!(
                    "data type {t}; only float and float16 are read"
                )))
            }
        };
        if values.len() as u64 != n {
            return Err(bad(format!(
                "{} values for dims {:?}",
                values.len(),
                self.dims
            )));
        }
        Ok(values)
    }
}

/// An ONNX node: operator, inputs, outputs, attributes (subgraphs parsed).
#[derive(Debug, Default)]
struct OnnxNode {
    op_type: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    ints: HashMap<String, Vec<i64>>,
    strings: HashMap<String, String>,
    tensors: HashMap<String, OnnxTensor>,
    graphs: Vec<OnnxGraph>,
}

impl OnnxNode {
    fn parse(buf: &[u8]) -> Result<Self, SileroError> {
        let mut node = Self::default();
        let text = |v, what| -> Result<String, SileroError> {
            Ok(String::from_utf8_lossy(wire::bytes(v, what)?).into_owned())
        };
        for field in wire::fields(buf) {
            match field? {
                (1, v) => node.inputs.push(text(v, "node input")?),
                (2, v) => node.outputs.push(text(v, "node output")?),
                (4, v) => node.op_type = text(v, "op_type")?,
                (5, v) => node.attribute(wire::bytes(v, "attribute")?)?,
                _ => {}
            }
        }
        Ok(node)
    }

    fn attribute(&mut self, buf: &[u8]) -> Result<(), SileroError> {
        let mut name = String::new();
        let mut ints = Vec::new();
        let mut string = None;
        let mut tensor = None;
        for field in wire::fields(buf) {
            match field? {
                (1, v) => {
                    name = String::from_utf8_lossy(wire::bytes(v, "attribute name")?).into_owned()
                }
                (3 | 8, v) => wire::push_varints(v, &mut ints)?,
                (4, v) => string = Some(String::from_utf8_lossy(wire::bytes(v, "s")?).into_owned()),
                (5, v) => tensor = Some(OnnxTensor::parse(wire::bytes(v, "t")?)?),
                (6 | 11, v) => self.graphs.push(OnnxGraph::parse(wire::bytes(v, "g")?)?),
                _ => {}
            }
        }
        if let Some(t) = tensor {
            self.tensors.insert(name.clone(), t);
        }
        if let Some(s) = string {
            self.strings.insert(name.clone(), s);
        }
        self.ints.insert(name, ints);
        Ok(())
    }

    fn ints(&self, name: &str) -> &[i64] {
        self.ints.get(name).map_or(&[], Vec::as_slice)
    }
}

/// An ONNX graph: nodes in order and initializers.
#[derive(Debug, Default)]
struct OnnxGraph {
    nodes: Vec<OnnxNode>,
    initializers: Vec<OnnxTensor>,
}

impl OnnxGraph {
    fn parse(buf: &[u8]) -> Result<Self, SileroError> {
        let mut graph = Self::default();
        for field in wire::fields(buf) {
            match field? {
                (1, v) => graph.nodes.push(OnnxNode::parse(wire::bytes(v, "node")?)?),
                (5, v) => graph
                    .initializers
                    .push(OnnxTensor::parse(wire::bytes(v, "initializer")?)?),
                _ => {}
            }
        }
        Ok(graph)
    }

    /// The value named `name` in this graph: an initializer, a `Constant` node's
    /// output, or what an `Identity` node forwards.
    fn local(&self, name: &str, scopes: &[&OnnxGraph], depth: usize) -> Option<OnnxTensor> {
        if let Some(t) = self.initializers.iter().find(|t| t.name == name) {
            return Some(t.clone());
        }
        let node = self
            .nodes
            .iter()
            .find(|n| n.outputs.iter().any(|o| o == name))?;
        match node.op_type.as_str() {
            "Constant" => node.tensors.get("value").cloned().map(|mut t| {
                t.name = name.to_owned();
                t
            }),
            "Identity" if depth < 16 => lookup(scopes, node.inputs.first()?, depth + 1),
            _ => None,
        }
    }
}

/// `name` resolved from the innermost graph of `scopes` outwards.
fn lookup(scopes: &[&OnnxGraph], name: &str, depth: usize) -> Option<OnnxTensor> {
    (0..scopes.len())
        .rev()
        .find_map(|i| scopes[i].local(name, &scopes[..=i], depth))
}

/// The network's graph: the first, depth-first, whose first `Conv` has the
/// 16 kHz STFT basis; with its enclosing graphs.
fn find_network<'g>(scopes: &mut Vec<&'g OnnxGraph>, graph: &'g OnnxGraph) -> bool {
    scopes.push(graph);
    let stft = graph
        .nodes
        .iter()
        .find(|n| n.op_type == "Conv")
        .and_then(|conv| lookup(scopes, conv.inputs.get(1)?, 0));
    if stft.is_some_and(|t| t.dims == [258, 1, 256]) {
        return true;
    }
    for node in &graph.nodes {
        for sub in &node.graphs {
            if find_network(scopes, sub) {
                return true;
            }
        }
    }
    scopes.pop();
    false
}

/// Reorders the four gate blocks of an ONNX LSTM tensor (i, o, f, c) into
/// PyTorch's and whisper.cpp's order (i, f, c, o).
fn reorder_gates(values: &[f32]) -> Vec<f32> {
    let block = values.len() / 4;
    let gate = |g: usize| &values[g * block..(g + 1) * block];
    [gate(0), gate(2), gate(3), gate(1)].concat()
}

/// The whisper.cpp tensors of a Silero VAD ONNX model: name → f32 values.
fn map_tensors(model: &[u8]) -> Result<HashMap<String, Vec<f32>>, SileroError> {
    let mut graph = None;
    for field in wire::fields(model) {
        if let (7, v) = field? {
            graph = Some(OnnxGraph::parse(wire::bytes(v, "graph")?)?);
        }
    }
    let graph = graph.ok_or_else(|| SileroError::Graph("the model has no graph".into()))?;
    let mut scopes = Vec::new();
    if !find_network(&mut scopes, &graph) {
        return Err(SileroError::Graph(
            "no graph whose first Conv has the 16 kHz STFT basis (258×1×256)".into(),
        ));
    }
    let net = *scopes
        .last()
        .expect("find_network leaves the network's graph last");
    let convs: Vec<&OnnxNode> = net.nodes.iter().filter(|n| n.op_type == "Conv").collect();
    let lstms: Vec<&OnnxNode> = net.nodes.iter().filter(|n| n.op_type == "LSTM").collect();
    if convs.len() != 6 || lstms.len() != 1 {
        return Err(SileroError::Graph(format!(
            "{} Conv and {} LSTM nodes, expected 6 and 1",
            convs.len(),
            lstms.len()
        )));
    }
    let input = |node: &OnnxNode, i: usize, dims: &[i64]| -> Result<Vec<f32>, SileroError> {
        let name = node
            .inputs
            .get(i)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| SileroError::Graph(format!("{} node lacks input {i}", node.op_type)))?;
        let t = lookup(&scopes, name, 0)
            .ok_or_else(|| SileroError::Graph(format!("input `{name}` is not a constant")))?;
        if t.dims != dims {
            return Err(SileroError::Tensor {
                tensor: name.clone(),
                detail: format!("dims {:?}, expected {dims:?}", t.dims),
            });
        }
        t.values()
    };
    let check = |node: &OnnxNode, attr: &str, want: &[i64], what: &str| {
        let have = node.ints(attr);
        // ONNX defaults: strides 1, pads 0.
        let default_ok = have.is_empty() && want.iter().all(|&w| w == i64::from(attr == "strides"));
        if have == want || default_ok {
            Ok(())
        } else {
            Err(SileroError::Graph(format!(
                "{what} has {attr} {have:?}, whisper.cpp uses {want:?}"
            )))
        }
    };

    let mut out = HashMap::new();
    check(convs[0], "strides", &[128], "the STFT Conv")?;
    out.insert(
        "_model.stft.forward_basis_buffer".to_owned(),
        input(convs[0], 1, &[258, 1, 256])?,
    );
    for (i, (conv, shape)) in convs[1..5].iter().zip(vad::ENCODER).enumerate() {
        let what = format!("encoder Conv {i}");
        check(
            conv,
            "strides",
            &[if i == 1 || i == 2 { 2 } else { 1 }],
            &what,
        )?;
        check(conv, "pads", &[1, 1], &what)?;
        let (o, c, k) = (
            i64::from(shape.out_channels),
            i64::from(shape.in_channels),
            i64::from(shape.kernel),
        );
        let p = format!("_model.encoder.{i}.reparam_conv");
        out.insert(format!("{p}.weight"), input(conv, 1, &[o, c, k])?);
        out.insert(format!("{p}.bias"), input(conv, 2, &[o])?);
    }
    let last = convs[5];
    check(last, "strides", &[1], "the final Conv")?;
    out.insert(
        "_model.decoder.decoder.2.weight".to_owned(),
        input(last, 1, &[1, 128, 1])?,
    );
    out.insert(
        "_model.decoder.decoder.2.bias".to_owned(),
        input(last, 2, &[1])?,
    );

    let lstm = lstms[0];
    let hidden = i64::from(vad::LSTM_SIZE);
    if lstm.ints("hidden_size") != [hidden] {
        return Err(SileroError::Graph(format!(
            "LSTM hidden_size {:?}, whisper.cpp uses {hidden}",
            lstm.ints("hidden_size")
        )));
    }
    if let Some(direction) = lstm.strings.get("direction").filter(|d| *d != "forward") {
        return Err(SileroError::Graph(format!("LSTM direction {direction}")));
    }
    let gates = 4 * hidden;
    out.insert(
        "_model.decoder.rnn.weight_ih".to_owned(),
        reorder_gates(&input(lstm, 1, &[1, gates, hidden])?),
    );
    out.insert(
        "_model.decoder.rnn.weight_hh".to_owned(),
        reorder_gates(&input(lstm, 2, &[1, gates, hidden])?),
    );
    let bias = input(lstm, 3, &[1, 2 * gates])?;
    let (ih, hh) = bias.split_at(gates as usize);
    out.insert("_model.decoder.rnn.bias_ih".to_owned(), reorder_gates(ih));
    out.insert("_model.decoder.rnn.bias_hh".to_owned(), reorder_gates(hh));
    Ok(out)
}

/// What [`convert`] wrote.
#[derive(Debug, Clone)]
pub struct ConvertReport {
    /// The structure of the written file.
    pub summary: VadSummary,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// Converts a Silero VAD ONNX model (the bytes of the `.onnx` file) into
/// whisper.cpp's VAD format at `out` (written to `<out>.partial`, synced, then
/// renamed), and verifies the result.
///
/// # Errors
/// [`SileroError`]: malformed protobuf, another graph, unreadable weights, I/O.
pub fn convert(onnx: &[u8], version: [i32; 3], out: &Path) -> Result<ConvertReport, SileroError> {
    let tensors = map_tensors(onnx)?;
    let partial = sibling(out, ".partial");
    let write = || -> Result<String, SileroError> {
        let file = File::create(&partial).map_err(io_err(&partial))?;
        let mut w = HashingWriter {
            inner: BufWriter::new(file),
            hasher: Sha256::new(),
        };
        let mut put = |bytes: &[u8]| w.write_all(bytes).map_err(io_err(&partial));
        let mut header = Vec::new();
        VadHeader::silero(version)
            .write(&mut header)
            .map_err(io_err(&partial))?;
        put(&header)?;
        for spec in vad::expected_tensors() {
            let values = &tensors[&spec.name];
            let mut record = Vec::new();
            spec.header().write(&mut record).map_err(io_err(&partial))?;
            for &v in values {
                match spec.ttype {
                    TensorType::F16 => record.extend_from_slice(&f16::from_f32(v).to_le_bytes()),
                    _ => record.extend_from_slice(&v.to_le_bytes()),
                }
            }
            put(&record)?;
        }
        let sha256 = hex::encode(w.hasher.finalize_reset());
        let file = w.inner.into_inner().map_err(|e| SileroError::Io {
            path: partial.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&partial))?;
        Ok(sha256)
    };
    let sha256 = write().inspect_err(|_| {
        let _ = fs::remove_file(&partial);
    })?;
    fs::rename(&partial, out).map_err(io_err(out))?;
    let summary = vad::verify(out)?;
    Ok(ConvertReport { summary, sha256 })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The ONNX member of `wheel`, checked against the recorded SHA-256.
fn onnx_from_wheel(wheel: &Path, model: &VadSpec) -> Result<Vec<u8>, SileroError> {
    let zip_err = |detail: String| SileroError::Zip {
        path: wheel.to_path_buf(),
        detail,
    };
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| zip_err(e.to_string()))?;
    let mut member = archive
        .by_name(model.member)
        .map_err(|e| zip_err(format!("{}: {e}", model.member)))?;
    let mut onnx = Vec::new();
    member
        .read_to_end(&mut onnx)
        .map_err(|e| zip_err(format!("{}: {e}", model.member)))?;
    let actual = sha256_hex(&onnx);
    if actual != model.member_sha256 {
        return Err(SileroError::Checksum {
            what: format!("{}:{}", wheel.display(), model.member),
            expected: model.member_sha256.to_owned(),
            actual,
        });
    }
    Ok(onnx)
}

/// Where the VAD model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadOrigin {
    /// It was already there and verified.
    Present,
    /// Converted from the wheel's ONNX file.
    Converted,
}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct VadPullReport {
    /// The model file, verified.
    pub path: PathBuf,
    /// Where it came from.
    pub origin: VadOrigin,
}

/// Makes sure the VAD model is present and sound under `artifacts_dir`
/// ([`model_path`]): a present file that verifies is kept (one that does not is
/// moved to `<file>.corrupt`); else the pinned faster-whisper wheel is taken from
/// `<cache>/wheels` or downloaded with pip (the package index pip is configured
/// for, a source `WHISPER_MODEL_OFFLINE` leaves open: see
/// [`may_use`](super::pull::may_use)),
/// its ONNX member checked and converted. A lock file serializes pulls across
/// processes.
///
/// # Errors
/// [`SileroError`], naming the wheel and pip's last lines when it cannot be had.
pub fn pull(artifacts_dir: &Path) -> Result<VadPullReport, SileroError> {
    let model = &SILERO_VAD;
    let target = model_path(artifacts_dir);
    let dir = target.parent().expect("the VAD model has a folder");
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock_path = sibling(&target, ".pull.lock");
    let _lock = FileLock::acquire(&lock_path).map_err(io_err(&lock_path))?;
    if target.exists() {
        match vad::verify(&target) {
            Ok(_) => {
                log::info!("{} is present and verified", target.display());
                return Ok(VadPullReport {
                    path: target,
                    origin: VadOrigin::Present,
                });
            }
            Err(e) => {
                let aside = sibling(&target, ".corrupt");
                log::warn!("{e}; moving it to {}", aside.display());
                fs::rename(&target, &aside).map_err(io_err(&target))?;
            }
        }
    }
    let pin = PinnedWheel {
        name: model.wheel.to_owned(),
        version: model.wheel_version.to_owned(),
        sha256: model.wheel_sha256.to_owned(),
    };
    let wheels = import::cache_dir().join("wheels");
    let wheel = import::fetch_wheel(&pin, &wheels)?;
    log::info!("converting {}:{}", wheel.display(), model.member);
    let onnx = onnx_from_wheel(&wheel, model)?;
    let report = convert(&onnx, model.version, &target)?;
    if report.sha256 != model.converted_sha256 {
        log::warn!(
            "{} has SHA-256 {}, this converter wrote {} before",
            target.display(),
            report.sha256,
            model.converted_sha256
        );
    }
    log::info!(
        "wrote {} ({} bytes, sha256 {})",
        target.display(),
        report.summary.file_bytes,
        report.sha256
    );
    Ok(VadPullReport {
        path: target,
        origin: VadOrigin::Converted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protobuf writer for building small ONNX models.
    #[derive(Default)]
    struct Msg(Vec<u8>);

    impl Msg {
        fn varint(mut self, field: u64, mut v: u64) -> Self {
            self.key(field, 0);
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(byte);
                    return self;
                }
                self.0.push(byte | 0x80);
            }
        }

        fn key(&mut self, field: u64, wire: u64) {
            let mut k = field << 3 | wire;
            loop {
                let byte = (k & 0x7f) as u8;
                k >>= 7;
                if k == 0 {
                    self.0.push(byte);
                    return;
                }
                self.0.push(byte | 0x80);
            }
        }

        fn bytes(mut self, field: u64, b: &[u8]) -> Self {
            self.key(field, 2);
            let len = Msg::default().varint(0, b.len() as u64).0;
            self.0.extend_from_slice(&len[1..]);
            self.0.extend_from_slice(b);
            self
        }

        fn text(self, field: u64, s: &str) -> Self {
            self.bytes(field, s.as_bytes())
        }
    }

    /// A float tensor whose values are `start, start + 1, …` (raw_data).
    fn tensor(name: &str, dims: &[i64], start: f32) -> Msg {
        let n: i64 = dims.iter().product();
        let raw: Vec<u8> = (0..n)
            .flat_map(|i| (start + i as f32).to_le_bytes())
            .collect();
        let mut m = Msg::default();
        for &d in dims {
            m = m.varint(1, d as u64);
        }
        m.varint(2, ONNX_FLOAT).text(8, name).bytes(9, &raw)
    }

    fn ints_attr(name: &str, values: &[i64]) -> Msg {
        values
            .iter()
            .fold(Msg::default().text(1, name), |m, &v| m.varint(8, v as u64))
    }

    fn node(op: &str, inputs: &[&str], attrs: Vec<Msg>) -> Msg {
        let mut m = Msg::default();
        for i in inputs {
            m = m.text(1, i);
        }
        m = m
            .text(2, &format!("{op}_{}_out", inputs.join("_")))
            .text(4, op);
        for a in attrs {
            m = m.bytes(5, &a.0);
        }
        m
    }

    /// Silero's nodes over weights named `<prefix>…`, with an STFT basis of
    /// `stft` dims (16 kHz: 258×1×256).
    fn network(prefix: &str, stft: &[i64], hidden: i64) -> Vec<Msg> {
        let p = |s: &str| format!("{prefix}{s}");
        let conv = |w: &str, b: Option<&str>, stride: i64| {
            let (w, b) = (p(w), b.map(p));
            let mut inputs = vec!["x".to_owned(), w];
            inputs.extend(b);
            let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            node(
                "Conv",
                &inputs,
                vec![ints_attr("strides", &[stride]), ints_attr("pads", &[1, 1])],
            )
        };
        let mut nodes = vec![node(
            "Conv",
            &["x", &p("stft")],
            vec![ints_attr("strides", &[stft[2] / 2])],
        )];
        for (i, s) in [1, 2, 2, 1].into_iter().enumerate() {
            nodes.push(conv(&format!("c{i}.w"), Some(&format!("c{i}.b")), s));
        }
        nodes.push(node(
            "LSTM",
            &["x", &p("W"), &p("R"), &p("B"), "", "h", "c"],
            vec![ints_attr("hidden_size", &[hidden])],
        ));
        nodes.push(node(
            "Conv",
            &["x", &p("d.w"), &p("d.b")],
            vec![ints_attr("strides", &[1])],
        ));
        nodes
    }

    fn weights(prefix: &str, stft: &[i64]) -> Vec<Msg> {
        let p = |s: &str| format!("{prefix}{s}");
        let mut w = vec![tensor(&p("stft"), stft, 0.0)];
        for (i, c) in vad::ENCODER.iter().enumerate() {
            let (o, c_in) = (i64::from(c.out_channels), i64::from(c.in_channels));
            w.push(tensor(&p(&format!("c{i}.w")), &[o, c_in, 3], 0.5));
            w.push(tensor(&p(&format!("c{i}.b")), &[o], -1.0));
        }
        w.push(tensor(&p("W"), &[1, 512, 128], 0.0));
        w.push(tensor(&p("R"), &[1, 512, 128], 1.0));
        w.push(tensor(&p("B"), &[1, 1024], 0.0));
        w.push(tensor(&p("d.w"), &[1, 128, 1], 0.25));
        w.push(tensor(&p("d.b"), &[1], 7.0));
        w
    }

    fn graph(nodes: Vec<Msg>, initializers: Vec<Msg>) -> Msg {
        let g = nodes
            .into_iter()
            .fold(Msg::default(), |g, n| g.bytes(1, &n.0));
        initializers.into_iter().fold(g, |g, t| g.bytes(5, &t.0))
    }

    fn model(graph: Msg) -> Vec<u8> {
        Msg::default().varint(1, 8).bytes(7, &graph.0).0
    }

    /// The values of `name` in a converted file, as f32.
    fn read_tensor(file: &[u8], name: &str) -> Vec<f32> {
        let at = file
            .windows(name.len())
            .position(|w| w == name.as_bytes())
            .expect("tensor name in file");
        let spec = vad::expected_tensors()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap();
        let n = spec.header().n_elements() as usize;
        let data = &file[at + name.len()..];
        match spec.ttype {
            TensorType::F16 => data[..2 * n]
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => data[..4 * n]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        }
    }

    #[test]
    fn converts_a_graph_and_reorders_the_lstm_gates() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("vad.bin");
        let onnx = model(graph(
            network("", &[258, 1, 256], 128),
            weights("", &[258, 1, 256]),
        ));
        let report = convert(&onnx, [6, 0, 0], &out).unwrap();
        assert_eq!(report.summary.n_tensors, 15);
        assert_eq!(report.summary.header, VadHeader::silero([6, 0, 0]));
        let file = fs::read(&out).unwrap();
        // ONNX gate blocks i, o, f, c (128 × 128 values each) → i, f, c, o.
        let ih = read_tensor(&file, "_model.decoder.rnn.weight_ih");
        let block = 128 * 128;
        let first = |g: usize| ih[g * block];
        assert_eq!(
            [first(0), first(1), first(2), first(3)],
            [0.0, 2.0, 3.0, 1.0].map(|g| g * block as f32)
        );
        // B = [Wb | Rb], each reordered: bias_hh's first block is ONNX's 512th value on.
        let bias_ih = read_tensor(&file, "_model.decoder.rnn.bias_ih");
        assert_eq!(
            [bias_ih[0], bias_ih[128], bias_ih[256], bias_ih[384]],
            [0.0, 256.0, 384.0, 128.0]
        );
        assert_eq!(read_tensor(&file, "_model.decoder.rnn.bias_hh")[0], 512.0);
        // Conv kernels are f16, as whisper.cpp creates them; biases stay f32.
        assert_eq!(
            read_tensor(&file, "_model.encoder.2.reparam_conv.weight")[..3],
            [0.5, 1.5, 2.5]
        );
        assert_eq!(read_tensor(&file, "_model.decoder.decoder.2.bias"), [7.0]);
        assert_eq!(report.sha256, sha256_hex(&file));
        assert!(!sibling(&out, ".partial").exists());
    }

    #[test]
    fn picks_the_16k_branch_of_an_if_node_with_outer_weights() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("vad.bin");
        // Weights of both rates live in the main graph, the networks in the branches;
        // the 8 kHz branch comes first. One 16 kHz weight is a Constant node.
        let eight = graph(network("8k.", &[130, 1, 128], 64), vec![]);
        let mut sixteen_nodes = network("16k.", &[258, 1, 256], 128);
        let constant = Msg::default().text(2, "16k.d.b").text(4, "Constant").bytes(
            5,
            &Msg::default()
                .text(1, "value")
                .bytes(5, &tensor("", &[1], 3.0).0)
                .0,
        );
        sixteen_nodes.insert(0, constant);
        let sixteen = graph(sixteen_nodes, vec![]);
        let branch = |name: &str, g: &Msg| Msg::default().text(1, name).bytes(6, &g.0);
        let if_node = Msg::default()
            .text(1, "is_8k")
            .text(2, "probs")
            .text(4, "If")
            .bytes(5, &branch("then_branch", &eight).0)
            .bytes(5, &branch("else_branch", &sixteen).0);
        let mut init = weights("16k.", &[258, 1, 256]);
        init.retain(|t| !t.0.windows(7).any(|w| w == b"16k.d.b"));
        init.extend(weights("8k.", &[130, 1, 128]));
        let onnx = model(graph(vec![if_node], init));
        convert(&onnx, [6, 0, 0], &out).unwrap();
        let file = fs::read(&out).unwrap();
        assert_eq!(read_tensor(&file, "_model.decoder.decoder.2.bias"), [3.0]);
        assert_eq!(
            read_tensor(&file, "_model.stft.forward_basis_buffer").len(),
            258 * 256
        );
    }

    #[test]
    fn other_graphs_and_broken_bytes_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("vad.bin");
        let convert_err = |onnx: &[u8]| convert(onnx, [6, 0, 0], &out).unwrap_err().to_string();
        let wide = model(graph(
            network("", &[258, 1, 256], 64),
            weights("", &[258, 1, 256]),
        ));
        assert!(
            convert_err(&wide).contains("hidden_size [64]"),
            "{}",
            convert_err(&wide)
        );
        let eight_only = model(graph(
            network("", &[130, 1, 128], 128),
            weights("", &[130, 1, 128]),
        ));
        assert!(convert_err(&eight_only).contains("16 kHz STFT"));
        let mut missing = weights("", &[258, 1, 256]);
        missing.pop();
        let missing = model(graph(network("", &[258, 1, 256], 128), missing));
        assert!(convert_err(&missing).contains("`d.b` is not a constant"));
        let good = model(graph(
            network("", &[258, 1, 256], 128),
            weights("", &[258, 1, 256]),
        ));
        let cut = convert_err(&good[..good.len() / 2]);
        assert!(cut.contains("malformed ONNX protobuf"), "{cut}");
        assert!(convert_err(b"not onnx at all").contains("malformed"));
        assert!(convert_err(&[]).contains("no graph"));
        assert!(!out.exists() && !sibling(&out, ".partial").exists());
    }

    #[test]
    fn the_model_lives_in_its_own_folder() {
        assert_eq!(
            model_path(Path::new("/a")),
            Path::new("/a/silero-vad/ggml-silero-v6.bin")
        );
    }
}
