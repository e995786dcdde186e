//! Cross-process exclusive locks on `<file><suffix>` lock files, and the sibling
//! names (`.part`, `.lock`, `.corrupt`) the model files use.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use log::{debug, info};

/// `<path><suffix>`, e.g. `model.bin.part`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// An exclusive lock on a lock file, held until dropped.
///
/// On Unix the lock file is removed on release, so none is left behind. A waiter
/// that then acquires the lock on the removed file notices (the path no longer names
/// the file it locked) and retries on the current one.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    _file: File,
}

impl FileLock {
    /// Locks `path` (created when missing), waiting while another process holds it.
    ///
    /// # Errors
    /// The OS error opening or locking `path`.
    pub fn acquire(path: &Path) -> io::Result<Self> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    info!("waiting for another process holding {}", path.display());
                    file.lock()?;
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if still_named_by(&file, path)? {
                return Ok(Self {
                    path: path.to_owned(),
                    _file: file,
                });
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Removed while still locked (the file is closed, unlocking it, after this).
        if cfg!(unix) {
            if let Err(e) = fs::remove_file(&self.path) {
                debug!("could not remove {}: {e}", self.path.display());
            }
        }
    }
}

/// Whether `path` still names the open `file`.
#[cfg(unix)]
fn still_named_by(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Lock files are never removed off Unix, so the path always names the locked file.
#[cfg(not(unix))]
fn still_named_by(_file: &File, _path: &Path) -> io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_is_removed_on_release_and_can_be_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = sibling(&dir.path().join("model.bin"), ".lock");
        assert_eq!(path.file_name().unwrap(), "model.bin.lock");
        let lock = FileLock::acquire(&path).unwrap();
        assert!(path.is_file());
        drop(lock);
        assert!(!path.exists(), "{} left behind", path.display());
        drop(FileLock::acquire(&path).unwrap());
        assert!(!path.exists());
    }
}
