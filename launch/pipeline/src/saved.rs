//! What a finished or interrupted run left behind, read back by the commands that use its trained
//! policy (`gfn export`, `gfn sample`), and files written whole or not at all.

use gfn_host::checkpoint::{self, Checkpoint};
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why a run's checkpoint cannot be used. Every case is the user's input at fault except a
/// checkpoint that cannot be read for a reason of the machine (see [`SavedError::is_bad_input`]).
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("{}: no such folder (give the run's --checkpoint_dir)", .0.display())]
    NoFolder(PathBuf),
    #[error("{}: no checkpoint in this folder (no {})", dir.display(), file.display())]
    NoCheckpoint { dir: PathBuf, file: PathBuf },
    /// A damaged, truncated or foreign checkpoint, or one that cannot be read.
    #[error(transparent)]
    Checkpoint(#[from] gfn_host::Error),
    /// The checkpoint decodes, but its settings or parameters do not make a network.
    #[error("{}: the checkpoint's network cannot be rebuilt: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
}

impl SavedError {
    /// Whether the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Checkpoint(e) => e.is_bad_input(),
            _ => true,
        }
    }

    /// The checkpoint in `dir` cannot be used, for `reason`.
    pub fn unusable(dir: &Path, reason: impl ToString) -> Self {
        Self::Unusable {
            path: checkpoint::path(dir),
            reason: reason.to_string(),
        }
    }
}

/// The checkpoint in `dir` (a run's `--checkpoint_dir`), with settings that validate. A missing
/// folder or file is named, not taken for a fresh start (which is what `checkpoint::load`
/// reports for `--resume`). A CRC only proves the file is whole: the settings are validated
/// before a network is built from them.
pub fn read(dir: &Path) -> Result<Checkpoint, SavedError> {
    if !dir.is_dir() {
        return Err(SavedError::NoFolder(dir.to_owned()));
    }
    let ck = checkpoint::load(dir)?.ok_or_else(|| SavedError::NoCheckpoint {
        dir: dir.to_owned(),
        file: checkpoint::path(dir),
    })?;
    ck.config
        .validate()
        .map_err(|e| SavedError::unusable(dir, e))?;
    Ok(ck)
}

/// A file written under a temporary name beside its final one and renamed over it by
/// [`AtomicFile::commit`]: readers see the whole file or the old one. Dropped uncommitted (an
/// error, a panic), it removes the temporary file, so nothing half-written is left behind.
pub struct AtomicFile {
    out: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<fs::File>>,
}

impl AtomicFile {
    /// Starts writing what will become `out`.
    pub fn create(out: &Path) -> io::Result<Self> {
        let name = out
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = out.with_file_name(tmp_name);
        let file = fs::File::create(&tmp)?;
        Ok(Self {
            out: out.to_owned(),
            tmp,
            file: Some(BufWriter::new(file)),
        })
    }

    /// Flushes, syncs and renames the file into place, then syncs its folder so that the rename
    /// itself is durable, as checkpoints do.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(writer) = self.file.take() else {
            return Err(io::Error::other("already committed"));
        };
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.tmp, &self.out)?;
        let dir = self.out.parent().filter(|p| !p.as_os_str().is_empty());
        if let Ok(d) = fs::File::open(dir.unwrap_or(Path::new("."))) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Closed first; after a commit the temporary name is gone and the removal does nothing.
        drop(self.file.take());
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Writes `bytes` to `out` whole or not at all ([`AtomicFile`]).
pub fn write_atomic(out: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(out)?;
    file.write_all(bytes)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("gfn-saved-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("in_the_way")).unwrap();
        // A folder under the final name: the rename fails and the temporary file goes.
        assert!(write_atomic(&dir.join("in_the_way"), b"abc").is_err());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "only the folder remains"
        );
        write_atomic(&dir.join("ok.bin"), b"abc").unwrap();
        assert_eq!(fs::read(dir.join("ok.bin")).unwrap(), b"abc");
        // Dropped before the commit: neither name holds anything new.
        let mut open = AtomicFile::create(&dir.join("dropped.bin")).unwrap();
        open.write_all(b"partial").unwrap();
        drop(open);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        let _ = fs::remove_dir_all(&dir);
    }
}
