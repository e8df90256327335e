//! A run's outputs appear together or not at all: they are written into a
//! staging folder beside OUTDIR and swapped in when the run ends, so an
//! interrupted or failed run leaves OUTDIR as it was, and a finished one never
//! sits beside files of an earlier run. Staging paths are registered so a
//! signal handler can remove them ([`remove_registered`]).

pub use crate::cancel::interrupted;
use crate::error::{BorexError, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// For a signal handler: mark the process interrupted, then remove every
/// staging folder and temporary file in flight ([`remove_registered`]).
/// The caller then ends the process at once (`libc::_exit`), so no
/// destructor runs while the main thread is still in a model call.
pub fn interrupt() {
    crate::cancel::mark_interrupted();
    remove_registered();
}

/// Paths to remove if the process is interrupted (staging folders, temporary files).
static REGISTERED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

pub(crate) fn register(path: &Path) {
    REGISTERED.lock().unwrap_or_else(|p| p.into_inner()).push(path.to_path_buf());
}

pub(crate) fn unregister(path: &Path) {
    REGISTERED.lock().unwrap_or_else(|p| p.into_inner()).retain(|p| p != path);
}

/// Remove every staging folder and temporary file still in flight. For a
/// signal handler: the binary calls it on Ctrl-C / SIGTERM before exiting.
pub fn remove_registered() {
    // try_lock: a handler must not wait on a lock the interrupted thread holds.
    if let Ok(mut paths) = REGISTERED.try_lock() {
        for p in paths.drain(..) {
            let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        }
    }
}

/// The outputs of one run, staged until [`OutputSet::commit`].
pub struct OutputSet {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
    /// [`OutputSet::begin_locked`]: the lock on OUTDIR, and what taking it created there
    /// (OUTDIR itself, or its lock file), removed again if the run ends without a commit.
    lock: Option<super::lock::DirLock>,
    created: Option<PathBuf>,
    /// The staging folder's mark ([`STAGING_MARK`]), locked for as long as this run lives.
    mark: Option<std::fs::File>,
}

/// A file in each staging folder naming the output folder it is for. The run holds
/// an advisory lock on it; the kernel drops the lock however the run ends, so a
/// staging folder whose mark names this output folder and is not locked was left by
/// a killed run of the same output: a rerun removes it ([`remove_stale_staging`]).
const STAGING_MARK: &str = ".borex-staging";

/// Write and lock `staging`'s mark; `None` where the file system has no locks
/// (the folder is then never judged stale: it stays rather than risk a live run's).
fn mark_staging(staging: &Path, target: &Path) -> Option<std::fs::File> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let mut f = std::fs::File::create(staging.join(STAGING_MARK)).ok()?;
    // Locked before it names anything: a mark that names the target is always a locked one while its run lives.
    super::lock::try_lock(&f).ok()?;
    f.write_all(target.as_os_str().as_bytes()).ok()?;
    Some(f)
}

/// Remove the staging folders (`.NAME.borex-XXXXXX` in `parent`) that killed runs
/// into the same output folder `target` left: each is a real folder whose mark
/// names `target` and whose lock no live run holds. Anything else is left alone.
fn remove_stale_staging(parent: &Path, name: &str, target: &Path) {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    let prefix = format!(".{name}.borex-");
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        // tempfile's suffix: six letters or digits.
        if rest.len() != 6 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(mut mark) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(e.path().join(STAGING_MARK))
        else {
            continue;
        };
        if !mark.metadata().is_ok_and(|m| m.is_file()) || super::lock::try_lock(&mark).is_err() {
            continue;
        }
        let mut named = vec![];
        if (&mut mark).take(64 << 10).read_to_end(&mut named).is_ok() && named == target.as_os_str().as_bytes() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl OutputSet {
    /// Check that `out_dir` can receive this run's outputs and open a staging
    /// folder beside it, before any expensive work. An existing `out_dir`
    /// must be empty or an earlier borex output (it holds `report.json`): it is
    /// replaced whole, and nothing else is ever deleted.
    pub fn begin(out_dir: &Path) -> Result<Self> {
        Self::begin_inner(out_dir, false)
    }

    /// [`OutputSet::begin`]; with `clean`, first remove the staging folders killed runs into
    /// the same `out_dir` left beside it ([`remove_stale_staging`]). Bulk runs pass `false`:
    /// they clean OUTDIR once under the job's lock, not once per image (a listing each).
    fn begin_inner(out_dir: &Path, clean: bool) -> Result<Self> {
        if interrupted() {
            return Err(BorexError::Interrupted);
        }
        // `-o LINK` to a folder: the outputs go into the link's target, and the
        // swap below exchanges that folder, never the user's link.
        let resolved = resolve_link(out_dir)?;
        let out_dir = resolved.as_path();
        let named = |reason: String| BorexError::invalid(format!("output folder {}: {reason}", out_dir.display()));
        if let Ok(meta) = std::fs::metadata(out_dir) {
            if meta.is_file() {
                return Err(named("is an existing file".into()));
            }
            if !meta.is_dir() {
                return Err(named(format!(
                    "is {}, not a folder: borex replaces only a folder of its own",
                    crate::limits::file_kind(meta.file_type())
                )));
            }
            let entries: Vec<_> = std::fs::read_dir(out_dir)
                .map_err(|e| named(format!("cannot read it ({e})")))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != super::lock::LOCK_FILE)
                .collect();
            if !entries.is_empty() && !entries.iter().any(|n| n == "report.json") {
                let mut shown: Vec<_> = entries.into_iter().take(3).collect();
                shown.sort();
                return Err(named(format!(
                    "holds files that are not a borex output ({}…); choose a new or empty folder (borex replaces its output folder whole)",
                    shown.join(", ")
                )));
            }
        }
        let name = out_dir
            .file_name()
            .ok_or_else(|| {
                named(
                    "names no folder of its own: borex writes a run into a new folder beside OUTDIR and swaps it in \
                     whole, which it cannot do to the current or a parent folder; give a folder name (e.g. -o out)"
                        .into(),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match out_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| named(format!("cannot create {} ({e})", parent.display())))?;
        // The mark names the output folder by its absolute path: a rerun from another folder finds it.
        let target_id = std::fs::canonicalize(&parent).unwrap_or_else(|_| parent.clone()).join(&name);
        if clean {
            remove_stale_staging(&parent, &name, &target_id);
        }
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.borex-"))
            .tempdir_in(&parent)
            .map_err(|e| named(format!("cannot write in {} ({e})", parent.display())))?
            .keep();
        register(&staging);
        let mark = mark_staging(&staging, &target_id);
        Ok(Self { target: out_dir.to_path_buf(), staging, committed: false, lock: None, created: None, mark })
    }

    /// [`OutputSet::begin`] for a command whose one output folder is OUTDIR (`refine IMAGE`,
    /// `explain`, `counterfactual`): it also holds OUTDIR's lock (`OUTDIR/.borex.lock`, the
    /// one bulk jobs take) until the commit, so a run into a folder a running job holds,
    /// or a job into a folder this run will replace, stops at once: "in use by process N".
    /// OUTDIR is created to hold the lock; a run that ends without a commit removes what
    /// taking the lock created, so a failed run still leaves OUTDIR as it was. Staging
    /// folders that killed runs into OUTDIR left beside it are removed (`remove_stale_staging`).
    pub fn begin_locked(out_dir: &Path) -> Result<Self> {
        use super::lock::{lock_dir, lock_existing, LOCK_FILE};
        let target = resolve_link(out_dir)?;
        // First: a running job's folder is "in use", not "holds files that are not a borex output".
        let held = if target.is_dir() { lock_existing(&target)? } else { None };
        let mut set = Self::begin_inner(out_dir, true)?;
        set.lock = match held {
            Some(l) => Some(l),
            None => {
                let created = if !target.exists() {
                    std::fs::create_dir(&target).map_err(|e| BorexError::io(&target, e))?;
                    target.clone()
                } else {
                    target.join(LOCK_FILE)
                };
                register(&created);
                set.created = Some(created);
                Some(lock_dir(&target)?)
            }
        };
        Ok(set)
    }

    /// Where to write the output `name` during the run.
    pub fn file(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// Put the staged outputs in place of `out_dir`, all at once.
    pub fn commit(mut self) -> Result<()> {
        let err = |e: std::io::Error| {
            BorexError::invalid(format!(
                "output folder {}: cannot move the outputs into place ({e})",
                self.target.display()
            ))
        };
        // The mark is the staging folder's, not an output: it goes before the swap (its lock stays held).
        if self.mark.is_some() {
            let _ = std::fs::remove_file(self.staging.join(STAGING_MARK));
        }
        if self.target.exists() {
            // The earlier outputs end up at the staging path and are removed with it.
            swap(&self.staging, &self.target).map_err(err)?;
            let _ = std::fs::remove_dir_all(&self.staging);
        } else {
            std::fs::rename(&self.staging, &self.target).map_err(err)?;
        }
        unregister(&self.staging);
        // What taking the lock created was swapped out with the earlier outputs.
        if let Some(c) = self.created.take() {
            unregister(&c);
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
            unregister(&self.staging);
            if let Some(c) = self.created.take() {
                // OUTDIR made for the lock holds only the lock file: removed with it.
                let _ = if c.is_dir() { std::fs::remove_dir_all(&c) } else { std::fs::remove_file(&c) };
                unregister(&c);
            }
        }
    }
}

/// `path` itself, or the folder a symbolic link at `path` points to (which must exist).
fn resolve_link(path: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| {
            BorexError::invalid(format!(
                "output folder {}: is a link to {}, which cannot be used ({e})",
                path.display(),
                std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default()
            ))
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// Exchange two folders: atomically where the kernel can (Linux
/// `renameat2(RENAME_EXCHANGE)`), else with two renames.
fn swap(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let (ca, cb) =
            (std::ffi::CString::new(a.as_os_str().as_bytes())?, std::ffi::CString::new(b.as_os_str().as_bytes())?);
        // SAFETY: both are valid NUL-terminated paths; the call only renames.
        let rc =
            unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        // Filesystems without exchange support fall through to two renames.
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)) {
            return Err(e);
        }
    }
    let aside = a.with_extension("old");
    std::fs::rename(b, &aside)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&aside, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_committed_run_replaces_the_earlier_one_whole() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        std::fs::create_dir(&out).unwrap();
        for f in ["report.json", "refined_full.npy", "refined.npy"] {
            std::fs::write(out.join(f), "old").unwrap();
        }
        let set = OutputSet::begin(&out).unwrap();
        std::fs::write(set.file("refined.npy"), "new").unwrap();
        std::fs::write(set.file("report.json"), "new").unwrap();
        // Until the commit, the earlier outputs are untouched.
        assert_eq!(std::fs::read_to_string(out.join("refined.npy")).unwrap(), "old");
        set.commit().unwrap();
        assert_eq!(names(&out), ["refined.npy", "report.json"]);
        assert_eq!(std::fs::read_to_string(out.join("refined.npy")).unwrap(), "new");
        assert_eq!(names(root.path()), ["out"], "no staging folder left");
    }

    #[test]
    fn an_abandoned_run_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("new");
        let set = OutputSet::begin(&out).unwrap();
        std::fs::write(set.file("prior.npy"), "x").unwrap();
        drop(set);
        assert!(names(root.path()).is_empty());
        // An interrupted one is cleaned by the signal handler, which finds the staging folder registered.
        let set = OutputSet::begin(&out).unwrap();
        assert!(REGISTERED.lock().unwrap().contains(&set.staging));
        drop(set);
        assert!(!REGISTERED.lock().unwrap().iter().any(|p| p.starts_with(root.path())));
    }

    #[test]
    fn a_locked_run_holds_its_folder_and_leaves_nothing_of_the_lock() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("new");
        let first = OutputSet::begin_locked(&out).unwrap();
        // flock belongs to the open file description: a second open here conflicts as another process would.
        let e = OutputSet::begin_locked(&out).err().unwrap().to_string();
        assert!(e.contains(&format!("is in use by process {}", std::process::id())), "{e}");
        assert_eq!(names(&out), [crate::output::lock::LOCK_FILE]);
        drop(first);
        assert!(names(root.path()).is_empty(), "the folder made for the lock goes with an abandoned run");
        // Into an earlier output: the lock file it adds goes too, and a commit leaves none.
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("report.json"), "old").unwrap();
        drop(OutputSet::begin_locked(&out).unwrap());
        assert_eq!(names(&out), ["report.json"]);
        let set = OutputSet::begin_locked(&out).unwrap();
        std::fs::write(set.file("report.json"), "new").unwrap();
        set.commit().unwrap();
        assert_eq!(names(&out), ["report.json"]);
        assert_eq!(names(root.path()), ["new"]);
        assert!(!REGISTERED.lock().unwrap().iter().any(|p| p.starts_with(root.path())));
    }

    #[test]
    fn foreign_folders_and_files_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let docs = root.path().join("docs");
        std::fs::create_dir(&docs).unwrap();
        std::fs::write(docs.join("thesis.tex"), "").unwrap();
        let e = OutputSet::begin(&docs).err().unwrap().to_string();
        assert!(e.contains("not a borex output") && e.contains("thesis.tex"), "{e}");
        let f = root.path().join("f");
        std::fs::write(&f, "").unwrap();
        assert!(OutputSet::begin(&f).err().unwrap().to_string().contains("is an existing file"));
        assert_eq!(names(root.path()), ["docs", "f"]);
    }

    #[test]
    fn a_dead_runs_staging_folder_is_removed_and_a_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("SK");
        let target = std::fs::canonicalize(root.path()).unwrap().join("SK");
        // What a SIGKILLed run leaves: a staging folder whose mark names SK and is not locked.
        let dead = root.path().join(".SK.borex-Ab12Cd");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(STAGING_MARK), target.as_os_str().as_encoded_bytes()).unwrap();
        std::fs::write(dead.join("refined.npy"), "x").unwrap();
        // Look-alikes: no mark; a mark naming another output; a name not of tempfile's making.
        let unmarked = root.path().join(".SK.borex-zzzzzz");
        std::fs::create_dir(&unmarked).unwrap();
        let other = root.path().join(".SK.borex-yyyyyy");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join(STAGING_MARK), "/elsewhere/SK").unwrap();
        let odd = root.path().join(".SK.borex-keep-me");
        std::fs::create_dir(&odd).unwrap();
        std::fs::write(odd.join(STAGING_MARK), target.as_os_str().as_encoded_bytes()).unwrap();
        let live = OutputSet::begin_inner(&out, true).unwrap();
        let live_name = live.staging.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!dead.exists(), "the dead run's staging folder stays");
        // A second run while the first lives: the first one's staging folder (its mark locked) stays.
        let second = OutputSet::begin_inner(&out, true).unwrap();
        assert!(live.staging.exists());
        let mut expect = vec![".SK.borex-keep-me".to_string(), ".SK.borex-yyyyyy".into(), ".SK.borex-zzzzzz".into()];
        expect.push(live_name);
        expect.push(second.staging.file_name().unwrap().to_string_lossy().into_owned());
        expect.sort();
        assert_eq!(names(root.path()), expect);
        drop(second);
        std::fs::write(live.file("report.json"), "new").unwrap();
        live.commit().unwrap();
        assert_eq!(names(&out), ["report.json"], "the mark is not an output");
    }
}
