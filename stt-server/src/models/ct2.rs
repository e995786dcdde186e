//! Reader of CTranslate2 `model.bin` files (binary versions 4–6), possibly split
//! into parts that are concatenated.
//!
//! Layout (little-endian): u32 version; spec name; u32 spec revision; u32 variable
//! count; per variable: name, u8 rank, `u32 dims[rank]`, u8 dtype, u32 byte count,
//! data; then u32 alias count and (alias, target) name pairs. Strings are a u16
//! length (including a trailing NUL) and the bytes. Opening walks the whole index
//! (seeking over the data), so a truncated file is reported at once, naming the
//! variable where it stops.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use whisper_safe::ggml_file::{ReadError, Tracked};

/// Binary versions whose layout this reader knows.
pub const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 4..=6;

const MAX_VARIABLES: u32 = 1_000_000;
const MAX_RANK: u8 = 8;

/// Element type of a variable (CTranslate2 `DataType` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float (0).
    F32,
    /// 8-bit integer (1).
    I8,
    /// 16-bit integer (2).
    I16,
    /// 32-bit integer (3).
    I32,
    /// 16-bit float (4).
    F16,
    /// bfloat16 (5).
    BF16,
}

impl DType {
    /// The type with CTranslate2 id `id`.
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::BF16)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "float32",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
        })
    }
}

/// One variable of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Name, e.g. `decoder/layer_0/self_attention/linear_0/weight`.
    pub name: String,
    /// Shape, outermost first (row-major).
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// Offset of the data in the (joined) file.
    pub offset: u64,
    /// Bytes of data.
    pub nbytes: u64,
}

impl Variable {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// An error reading a CTranslate2 model.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    /// A part cannot be opened.
    #[error("cannot open CTranslate2 model part {}: {source}", path.display())]
    Open {
        /// The part.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file ends early (a missing part, or a cut download).
    #[error("CTranslate2 model {model} is truncated: stops in {what} after {parsed} of {total} variables ({detail})")]
    Truncated {
        /// The model file(s).
        model: String,
        /// Where it stops, e.g. "variable `decoder/layer_3/ffn/linear_0/weight`".
        what: String,
        /// Variables read completely.
        parsed: usize,
        /// Variables announced by the header (0 when the header itself is cut).
        total: u32,
        /// Offsets and sizes.
        detail: String,
    },
    /// A binary version this reader does not know.
    #[error(
        "CTranslate2 model {model} has binary version {version}; supported: {} to {}",
        SUPPORTED_VERSIONS.start(),
        SUPPORTED_VERSIONS.end()
    )]
    UnsupportedVersion {
        /// The model file(s).
        model: String,
        /// The version found.
        version: u32,
    },
    /// A dtype id outside CTranslate2's known types.
    #[error("CTranslate2 model {model}: variable `{variable}` has unknown dtype id {id}")]
    UnknownDType {
        /// The model file(s).
        model: String,
        /// The variable.
        variable: String,
        /// The id found.
        id: u8,
    },
    /// Structurally impossible content.
    #[error("CTranslate2 model {model} is malformed at offset {offset}: {detail}")]
    Malformed {
        /// The model file(s).
        model: String,
        /// Where.
        offset: u64,
        /// What.
        detail: String,
    },
    /// Bytes after the alias table.
    #[error("CTranslate2 model {model} has {bytes} unexpected bytes after its end at offset {offset} (parts joined twice or in the wrong order?)")]
    TrailingData {
        /// The model file(s).
        model: String,
        /// Where they start.
        offset: u64,
        /// How many.
        bytes: u64,
    },
    /// A variable the converter needs is absent.
    #[error("CTranslate2 model {model} has no variable `{variable}`")]
    MissingVariable {
        /// The model file(s).
        model: String,
        /// The name.
        variable: String,
    },
    /// An I/O error.
    #[error("cannot read CTranslate2 model {model}: {source}")]
    Io {
        /// The model file(s).
        model: String,
        /// The cause.
        source: io::Error,
    },
}

/// Parts of one file read as their concatenation.
#[derive(Debug)]
struct Joined {
    parts: Vec<(File, u64)>,
    pos: u64,
}

impl Joined {
    fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.1).sum()
    }
}

impl Read for Joined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut start = 0;
        for (file, len) in &mut self.parts {
            if self.pos < start + *len {
                let within = self.pos - start;
                file.seek(SeekFrom::Start(within))?;
                let want = buf.len().min((*len - within) as usize);
                let n = file.read(&mut buf[..want])?;
                self.pos += n as u64;
                return Ok(n);
            }
            start += *len;
        }
        Ok(0)
    }
}

impl Seek for Joined {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// An opened CTranslate2 model: its index and access to variable data.
#[derive(Debug)]
pub struct Ct2Model {
    /// Binary version.
    pub version: u32,
    /// Spec name, e.g. `WhisperSpec`.
    pub spec: String,
    /// Spec revision.
    pub revision: u32,
    /// `(alias, target)` pairs.
    pub aliases: Vec<(String, String)>,
    variables: BTreeMap<String, Variable>,
    data: BufReader<Joined>,
    label: String,
}

impl Ct2Model {
    /// Opens `parts` (one `model.bin`, or its parts in order) and reads the index.
    ///
    /// # Errors
    /// [`Ct2Error`]: unreadable part, truncation, unknown version or dtype,
    /// malformed index, trailing bytes.
    pub fn open(parts: &[PathBuf]) -> Result<Self, Ct2Error> {
        let label = describe(parts);
        let mut files = Vec::with_capacity(parts.len());
        for path in parts {
            let open_err = |source| Ct2Error::Open {
                path: path.clone(),
                source,
            };
            let file = File::open(path).map_err(open_err)?;
            let len = file.metadata().map_err(open_err)?.len();
            files.push((file, len));
        }
        let joined = Joined {
            parts: files,
            pos: 0,
        };
        let len = joined.len();
        let mut index = IndexReader {
            r: Tracked::new(BufReader::with_capacity(1 << 16, joined), len),
            label: label.clone(),
            parsed: 0,
            total: 0,
        };
        let (version, spec, revision, variables, aliases) = index.read_all()?;
        let joined = index.r.into_inner().into_inner();
        Ok(Self {
            version,
            spec,
            revision,
            aliases,
            variables,
            data: BufReader::with_capacity(1 << 20, joined),
            label,
        })
    }

    /// The model's description for messages (its file names).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// All variables, by name.
    pub fn variables(&self) -> impl Iterator<Item = &Variable> {
        self.variables.values()
    }

    /// The variable `name`.
    ///
    /// # Errors
    /// [`Ct2Error::MissingVariable`].
    pub fn variable(&self, name: &str) -> Result<&Variable, Ct2Error> {
        self.variables
            .get(name)
            .ok_or_else(|| Ct2Error::MissingVariable {
                model: self.label.clone(),
                variable: name.to_string(),
            })
    }

    /// The value of the integer scalar `name` (e.g. `encoder/num_heads`).
    ///
    /// # Errors
    /// Missing variable, a non-scalar or non-integer variable, or a read error.
    pub fn scalar_int(&mut self, name: &str) -> Result<i64, Ct2Error> {
        let var = self.variable(name)?.clone();
        if var.n_elements() != 1 || var.dtype.is_float() {
            return Err(Ct2Error::Malformed {
                model: self.label.clone(),
                offset: var.offset,
                detail: format!(
                    "`{name}` is not an integer scalar ({} {:?})",
                    var.dtype, var.shape
                ),
            });
        }
        let mut buf = [0u8; 4];
        let n = var.dtype.size() as usize;
        self.read_bytes(var.offset, &mut buf[..n])?;
        Ok(match var.dtype {
            DType::I8 => i64::from(buf[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([buf[0], buf[1]])),
            _ => i64::from(i32::from_le_bytes(buf)),
        })
    }

    /// Reads `buf.len()` bytes at `offset` of the joined file.
    ///
    /// # Errors
    /// [`Ct2Error::Io`].
    pub fn read_bytes(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Ct2Error> {
        let io_err = |source| Ct2Error::Io {
            model: self.label.clone(),
            source,
        };
        self.data.seek(SeekFrom::Start(offset)).map_err(io_err)?;
        self.data.read_exact(buf).map_err(io_err)
    }
}

fn describe(parts: &[PathBuf]) -> String {
    match parts {
        [one] => one.display().to_string(),
        many => format!("{} (joined from {} parts)", many[0].display(), many.len()),
    }
}

type Index = (
    u32,
    String,
    u32,
    BTreeMap<String, Variable>,
    Vec<(String, String)>,
);

struct IndexReader<R> {
    r: Tracked<R>,
    label: String,
    parsed: usize,
    total: u32,
}

impl<R: Read + Seek> IndexReader<R> {
    fn read_all(&mut self) -> Result<Index, Ct2Error> {
        let version = self.r.u32("binary version").map_err(|e| self.err(e))?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(Ct2Error::UnsupportedVersion {
                model: self.label.clone(),
                version,
            });
        }
        let spec = self.string("spec name")?;
        let revision = self.r.u32("spec revision").map_err(|e| self.err(e))?;
        self.total = self.r.u32("variable count").map_err(|e| self.err(e))?;
        if self.total > MAX_VARIABLES {
            return Err(self.malformed(format!("{} variables", self.total)));
        }
        let mut variables = BTreeMap::new();
        let mut previous = String::from("the header");
        for _ in 0..self.total {
            let var = self.variable(&previous)?;
            previous = format!("`{}`", var.name);
            variables.insert(var.name.clone(), var);
            self.parsed += 1;
        }
        let n_aliases = self.r.u32("alias count").map_err(|e| self.err(e))?;
        let mut aliases = Vec::new();
        for _ in 0..n_aliases {
            let alias = self.string("alias table")?;
            let target = self.string("alias table")?;
            aliases.push((alias, target));
        }
        if self.r.remaining() > 0 {
            return Err(Ct2Error::TrailingData {
                model: self.label.clone(),
                offset: self.r.pos(),
                bytes: self.r.remaining(),
            });
        }
        Ok((version, spec, revision, variables, aliases))
    }

    fn variable(&mut self, previous: &str) -> Result<Variable, Ct2Error> {
        let where_ = format!("the header of the variable after {previous}");
        let name = self.string(&where_)?;
        let what = format!("variable `{name}`");
        let rank = self.u8(&what)?;
        if rank > MAX_RANK {
            return Err(self.malformed(format!("{what} has rank {rank}")));
        }
        let mut shape = Vec::with_capacity(rank as usize);
        for _ in 0..rank {
            shape.push(u64::from(self.r.u32(&what).map_err(|e| self.err(e))?));
        }
        let dtype_id = self.u8(&what)?;
        let dtype = DType::from_id(dtype_id).ok_or_else(|| Ct2Error::UnknownDType {
            model: self.label.clone(),
            variable: name.clone(),
            id: dtype_id,
        })?;
        let nbytes = u64::from(self.r.u32(&what).map_err(|e| self.err(e))?);
        let size = shape
            .iter()
            .try_fold(dtype.size(), |bytes, &d| bytes.checked_mul(d));
        if size != Some(nbytes) {
            return Err(self.malformed(format!(
                "{what} has {nbytes} bytes for shape {shape:?} of {dtype}"
            )));
        }
        let offset = self.r.pos();
        self.r.skip(nbytes, &what).map_err(|e| self.err(e))?;
        Ok(Variable {
            name,
            shape,
            dtype,
            offset,
            nbytes,
        })
    }

    fn u8(&mut self, what: &str) -> Result<u8, Ct2Error> {
        let mut b = [0u8; 1];
        self.r.fill(&mut b, what).map_err(|e| self.err(e))?;
        Ok(b[0])
    }

    fn string(&mut self, what: &str) -> Result<String, Ct2Error> {
        let mut len = [0u8; 2];
        self.r.fill(&mut len, what).map_err(|e| self.err(e))?;
        let len = u16::from_le_bytes(len);
        let offset = self.r.pos();
        let mut bytes = self
            .r
            .bytes(u64::from(len), what)
            .map_err(|e| self.err(e))?;
        if bytes.pop() != Some(0) {
            return Err(self.malformed(format!("{what}: string at offset {offset} lacks its NUL")));
        }
        String::from_utf8(bytes)
            .map_err(|_| self.malformed(format!("{what}: string at offset {offset} is not UTF-8")))
    }

    fn malformed(&self, detail: String) -> Ct2Error {
        Ct2Error::Malformed {
            model: self.label.clone(),
            offset: self.r.pos(),
            detail,
        }
    }

    fn err(&self, e: ReadError) -> Ct2Error {
        match e {
            ReadError::Truncated {
                what,
                offset,
                needed,
                available,
            } => Ct2Error::Truncated {
                model: self.label.clone(),
                what,
                parsed: self.parsed,
                total: self.total,
                detail: format!(
                    "needs {needed} bytes at offset {offset}, the file ends after {available} more"
                ),
            },
            ReadError::Io { source, .. } => Ct2Error::Io {
                model: self.label.clone(),
                source,
            },
        }
    }
}

/// The files of a model: `model.bin`, or `model.bin.part<N>` in numeric order.
///
/// # Errors
/// An error listing `dir`.
pub fn model_files(dir: &Path) -> io::Result<Option<Vec<PathBuf>>> {
    let single = dir.join("model.bin");
    if single.is_file() {
        return Ok(Some(vec![single]));
    }
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("model.bin.part"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        parts.push((n, entry.path()));
    }
    parts.sort();
    Ok((!parts.is_empty()).then(|| parts.into_iter().map(|p| p.1).collect()))
}
