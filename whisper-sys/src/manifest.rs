//! `manifest.json` of an artifact directory: the sha256 of every library.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::LoadError;

/// The file name the loader looks for, in the library directory and its parent.
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Deserialize)]
struct ManifestFile {
    files: Vec<ManifestEntry>,
}

#[derive(Deserialize)]
struct ManifestEntry {
    path: String,
    sha256: String,
}

/// The checksums of an artifact directory, keyed by absolute file path.
#[derive(Debug)]
pub struct Manifest {
    path: PathBuf,
    sha256_by_file: HashMap<PathBuf, String>,
}

impl Manifest {
    /// Finds and reads the manifest for `lib_dir`: `lib_dir/manifest.json`, else
    /// `lib_dir/../manifest.json`. Entry paths are relative to the manifest's folder.
    ///
    /// # Errors
    /// [`LoadError::Manifest`] or [`LoadError::Io`] when a manifest exists but is unusable.
    pub fn find(lib_dir: &Path) -> Result<Option<Self>, LoadError> {
        let candidates = [
            Some(lib_dir.join(MANIFEST_FILE)),
            lib_dir.parent().map(|parent| parent.join(MANIFEST_FILE)),
        ];
        match candidates.into_iter().flatten().find(|path| path.is_file()) {
            Some(path) => Self::read(&path).map(Some),
            None => Ok(None),
        }
    }

    fn read(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        let parsed: ManifestFile =
            serde_json::from_str(&text).map_err(|e| LoadError::Manifest {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let sha256_by_file = parsed
            .files
            .into_iter()
            .map(|entry| (base.join(entry.path), entry.sha256.to_ascii_lowercase()))
            .collect();
        Ok(Self {
            path: path.to_owned(),
            sha256_by_file,
        })
    }

    /// The manifest file itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that `file` is listed and that its sha256 matches.
    ///
    /// # Errors
    /// [`LoadError::NotInManifest`], [`LoadError::ChecksumMismatch`] or [`LoadError::Io`].
    pub fn verify(&self, file: &Path) -> Result<(), LoadError> {
        let expected = self
            .sha256_by_file
            .get(file)
            .ok_or_else(|| LoadError::NotInManifest {
                path: file.to_owned(),
                manifest: self.path.clone(),
            })?;
        let actual = sha256_file(file)?;
        if &actual == expected {
            Ok(())
        } else {
            Err(LoadError::ChecksumMismatch {
                path: file.to_owned(),
                manifest: self.path.clone(),
                expected: expected.clone(),
                actual,
            })
        }
    }
}

fn sha256_file(path: &Path) -> Result<String, LoadError> {
    let io_error = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(io_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
