//! One run per output folder: a run holds an advisory lock (`flock`) on
//! `OUTDIR/.borex.lock` while it writes there, so a second run into the same
//! folder stops at once ("in use by process N") instead of interleaving its
//! files with the first one's. The kernel drops the lock when the process
//! ends, however it ends, so a killed run never leaves a stale lock; the file
//! stays (removing it would race with a run that just opened it).

use crate::error::{BorexError, Result};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in a run folder.
pub const LOCK_FILE: &str = ".borex.lock";

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DirLock {
    /// The locked folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Lock `dir` (which must exist) for this process, or say which process holds it.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    // A FIFO or device in its place would block the read below or take the pid: never ours.
    super::check_replaceable(&path)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| BorexError::io(&path, e))?;
    if let Err(e) = try_lock(&file) {
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            // A file system without flock (some network mounts): run unguarded rather than not at all.
            if matches!(e.raw_os_error(), Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)) {
                return Ok(DirLock { _file: file, path });
            }
            return Err(BorexError::io(&path, e));
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let who = match pid.trim().parse::<u32>() {
            Ok(p) => format!("process {p}"),
            Err(_) => "another process".into(),
        };
        return Err(BorexError::invalid(format!(
            "output folder {} is in use by {who} (another borex run writes there); wait for it to end or choose another folder",
            dir.display()
        )));
    }
    // Held: say who holds it, for the message above.
    let _ = file.set_len(0).and_then(|_| file.rewind()).and_then(|_| write!(file, "{}", std::process::id()));
    Ok(DirLock { _file: file, path })
}

/// Lock `dir`'s lock file if it has one (a borex job's folder, running or not), without
/// creating it: a folder a running job holds is refused with "in use" before anything else
/// about it (its files, its job) is judged.
pub fn lock_existing(dir: &Path) -> Result<Option<DirLock>> {
    if !dir.join(LOCK_FILE).is_file() {
        return Ok(None);
    }
    lock_dir(dir).map(Some)
}

pub(crate) fn try_lock(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this function's caller owns for the call's duration.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        // flock locks belong to an open file description, so a second open in this process conflicts as another process would.
        let e = lock_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("is in use by process {}", std::process::id())), "{e}");
        drop(first);
        let again = lock_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(again.path()).unwrap(), std::process::id().to_string());
    }
}
