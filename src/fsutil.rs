//! Atomic file writes: a result or checkpoint is either the old file or the whole new one, never
//! a half-written file, even if the process is killed or the disk fills up. And paths as text
//! that keeps two different names different.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory. A `path` that exists must be a regular file (or a link to one, whose
/// target is written): renaming over a device, FIFO or socket (`-o /dev/null` as root) would
/// replace it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let resolved;
    let path =
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => return Err(Error::file(
                path,
                "not a regular file (a folder, device, FIFO or socket): lamp writes its results \
                 as whole files, renamed into place, which would replace it; name a file instead",
            )),
            Ok(_) if path.is_symlink() => {
                resolved = std::fs::canonicalize(path)
                    .map_err(|e| Error::file(path, format!("cannot resolve the link: {e}")))?;
                resolved.as_path()
            }
            _ => path,
        };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::file(&dir, format!("cannot create directory: {e}")))?;
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::file(path, format!("cannot write: {e}"))
    })
}

/// The files under `stage` (relative paths), once every place they will take under `dest` is
/// checked: a file or a link there is replaced, a folder on their way is entered, anything else
/// (a folder where a file goes, a link where a folder goes) is an error, before anything moves.
pub fn places_in(stage: &Path, dest: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut todo = vec![std::path::PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let unreadable = |e: std::io::Error| Error::file(stage.join(&rel), format!("{e}"));
        for e in std::fs::read_dir(stage.join(&rel)).map_err(unreadable)? {
            let e = e.map_err(unreadable)?;
            let r = rel.join(e.file_name());
            let folder = e.file_type().map_err(unreadable)?.is_dir();
            let there = std::fs::symlink_metadata(dest.join(&r)).map(|m| m.file_type());
            let fits = match (&there, folder) {
                (Err(_), _) => true,
                (Ok(t), true) => t.is_dir(),
                (Ok(t), false) => t.is_file() || t.is_symlink(),
            };
            if !fits {
                let what = if folder { "folder" } else { "file" };
                return Err(Error::file(
                    dest.join(&r),
                    format!("is in the way of the {what} lamp writes there: move it away"),
                ));
            }
            if folder {
                todo.push(r);
            } else {
                files.push(r);
            }
        }
    }
    Ok(files)
}

/// Moves `files` (from `places_in`) from `stage` to the same places under `dest` and syncs the
/// folders. A rename within one file system writes no data, so files written whole into `stage`
/// first (where a full disk fails the write) appear whole.
pub fn move_into(stage: &Path, dest: &Path, files: &[std::path::PathBuf]) -> Result<()> {
    let mut folders = std::collections::BTreeSet::new();
    for r in files {
        let to = dest.join(r);
        if let Some(folder) = to.parent() {
            ensure_dir(folder)?;
            folders.insert(folder.to_path_buf());
        }
        std::fs::rename(stage.join(r), &to)
            .map_err(|e| Error::file(&to, format!("cannot write: {e}")))?;
    }
    for f in folders {
        if let Ok(d) = std::fs::File::open(f) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Creates a directory (and parents), naming it in the error.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create directory: {e}")))
}

/// A path as text for tables, JSON and CSV. Bytes that are not UTF-8 (possible in Unix file
/// names) are written as `\xNN`, so two names that differ only there stay different, where
/// `Path::display` would print both with the same replacement character.
pub fn path_text(p: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::new();
        for chunk in p.as_os_str().as_bytes().utf8_chunks() {
            out += chunk.valid();
            for b in chunk.invalid() {
                out += &format!("\\x{b:02X}");
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        p.display().to_string()
    }
}

/// Where a write to `p` lands: `p` resolved (links, `..`) as far as it exists, the rest as
/// given. A link at `p` itself is followed, as `write_atomic` follows it.
pub fn entry(p: &Path) -> std::path::PathBuf {
    use std::path::{Component, PathBuf};
    if let Ok(whole) = p.canonicalize() {
        return whole;
    }
    let parts: Vec<Component> = p.components().collect();
    let folders = parts.len().saturating_sub(1);
    // The longest run of leading folders that exists, resolved; "." where none does.
    let (mut out, done) = (0..=folders)
        .rev()
        .find_map(|k| {
            let base = match k {
                0 => Path::new(".").canonicalize(),
                _ => parts[..k].iter().collect::<PathBuf>().canonicalize(),
            };
            base.ok().map(|b| (b, k))
        })
        .unwrap_or_default();
    for part in &parts[done..] {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Removes `.NAME.tmp-PID` files beside `path` left by `write_atomic` in processes that were
/// killed mid-write (their PID no longer runs; Linux, where /proc says so).
pub fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let dead = pid != std::process::id()
            && Path::new("/proc/self").exists()
            && !Path::new(&format!("/proc/{pid}")).exists();
        if dead {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// An exclusive lock on a target, held until dropped (or until the process ends, however it
/// ends: the OS releases it). It lives in a hidden file beside the target, `.NAME.lock`, which is
/// removed when the lock is dropped (on Unix; elsewhere it stays).
pub struct Lock {
    #[cfg_attr(not(unix), allow(dead_code))]
    path: std::path::PathBuf,
    _file: std::fs::File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held: a process that opened the old file meanwhile finds, once it
        // holds that file's lock, that the path no longer leads to it, and starts again.
        #[cfg(unix)]
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the exclusive lock on `target` (see `Lock`), or says that another process holds it;
/// `what` names the target in the error.
pub fn lock_exclusive(target: &Path, what: &str) -> Result<Lock> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| "lamp".into(), |n| n.to_string_lossy().into_owned());
    let lock = dir.join(format!(".{name}.lock"));
    // More than a couple of rounds only if other processes keep taking and dropping the lock.
    for _ in 0..100 {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| Error::file(&lock, format!("cannot open the lock file: {e}")))?;
        match f.try_lock() {
            Ok(()) if still_at(&f, &lock) => {
                return Ok(Lock {
                    path: lock,
                    _file: f,
                })
            }
            // The holder removed the file after this process opened it: try the new one.
            Ok(()) => continue,
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::file(
                    target,
                    format!("another lamp process is writing this {what}; wait for it to finish or choose another"),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::file(&lock, format!("cannot lock: {e}")))
            }
        }
    }
    Err(Error::file(
        &lock,
        "cannot lock: the lock file keeps being replaced by other processes",
    ))
}

/// Whether `path` still names the open file `f` (Unix: the same device and inode).
fn still_at(f: &std::fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (f.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (f, path);
        true
    }
}

/// The folders that hold `paths`, resolved (symbolic links, `..`), sorted, each once; paths
/// that do not resolve are left out.
pub fn folders_of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<String> {
    let mut v: Vec<String> = paths.into_iter().filter_map(folder_of).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// How many of `paths` lie directly in one of `folders` (resolved, as `folders_of` gives
/// them), and which of those folders they lie in (sorted, each once).
pub fn lying_in<'a>(
    paths: impl IntoIterator<Item = &'a Path>,
    folders: &[String],
) -> (usize, Vec<String>) {
    let hits: Vec<String> = paths
        .into_iter()
        .filter_map(folder_of)
        .filter(|f| folders.contains(f))
        .collect();
    let mut which = hits.clone();
    which.sort_unstable();
    which.dedup();
    (hits.len(), which)
}

/// The folder that holds `path`, resolved (None where the path does not resolve).
fn folder_of(path: &Path) -> Option<String> {
    let p = path.canonicalize().ok()?;
    Some(p.parent()?.to_string_lossy().into_owned())
}

/// The metadata of the regular file at `path`, or an error naming it: reading a FIFO would block
/// until a writer comes, and folders, sockets and devices are not inputs either.
pub fn regular_file(path: &Path) -> Result<std::fs::Metadata> {
    let meta =
        std::fs::metadata(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(Error::file(
            path,
            "not a regular file (a folder, FIFO, socket or device)",
        ));
    }
    Ok(meta)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_lock_excludes_others_and_its_file_goes_with_it() {
        let d = std::env::temp_dir().join(format!("lamp-lock-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let target = d.join("m.safetensors");
        let file = d.join(".m.safetensors.lock");
        let held = lock_exclusive(&target, "model").unwrap();
        let refused = lock_exclusive(&target, "model").err().unwrap().to_string();
        assert!(refused.contains("another lamp process"), "{refused}");
        // A process that opened the file just before the holder let go and removed it.
        let late = std::fs::File::open(&file).unwrap();
        drop(held);
        assert!(!file.exists());
        late.try_lock().unwrap();
        assert!(!still_at(&late, &file), "the late opener must start again");
        // ...and does: a new file, a new lock, while the late one holds the removed file's.
        let again = lock_exclusive(&target, "model").unwrap();
        assert!(file.exists());
        drop(again);
        drop(late);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_entry_resolves_its_existing_folders_only() {
        let d = std::env::temp_dir().join(format!("lamp-entry-{}", std::process::id()));
        std::fs::create_dir_all(d.join("a")).unwrap();
        let real = d.canonicalize().unwrap();
        assert_eq!(entry(Path::new("/")), Path::new("/"));
        // Folders that do not exist yet, and `..` among them, are taken as written.
        assert_eq!(entry(&d.join("a/new/../x.png")), real.join("a/x.png"));
        assert_eq!(entry(&d.join("a/../a/x.png")), real.join("a/x.png"));
        #[cfg(unix)]
        {
            // A write through a link lands in its target; a dangling link is replaced.
            std::fs::write(d.join("a/target.png"), b"x").unwrap();
            std::os::unix::fs::symlink(d.join("a/target.png"), d.join("link.png")).unwrap();
            assert_eq!(entry(&d.join("link.png")), real.join("a/target.png"));
            std::os::unix::fs::symlink(d.join("gone.png"), d.join("dangling.png")).unwrap();
            assert_eq!(entry(&d.join("dangling.png")), real.join("dangling.png"));
            // Linked folders too, the last part of the path included.
            std::os::unix::fs::symlink(d.join("a"), d.join("b")).unwrap();
            assert_eq!(entry(&d.join("b/x.png")), real.join("a/x.png"));
            assert_eq!(entry(&d.join("b")), real.join("a"));
            assert_eq!(entry(&d.join("b/.")), real.join("a"));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
