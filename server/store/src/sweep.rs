//! What engines that died (SIGKILL, OOM, a power cut) leave behind, removed
//! when the state directory is next opened: temp files of writes that never
//! finished, exec scratch directories, secret files on tmpfs and lock files
//! nobody holds. Each name starts with the pid of the engine that made it
//! (`gantry_core::files::create_unique_dir` and `AtomicFile` name them so);
//! only entries of processes that no longer exist are touched, since other
//! engines may share the state directory. A pid reused by an unrelated
//! process keeps its entries until that process exits, which is harmless.

use std::fs;
use std::path::Path;

use gantry_core::files::SECRET_FILES_DIR;

use crate::layout::{Bucket, StateDir};

/// Removes leftovers of dead engines (see the module docs) and logs counts.
pub(crate) fn sweep(dir: &StateDir) {
    let temp = remove_dead(&dir.bucket(Bucket::Temp));
    let scratch = remove_dead(&dir.bucket(Bucket::Scratch));
    let secrets = remove_dead(Path::new(SECRET_FILES_DIR));
    let locks = unheld_locks(&dir.bucket(Bucket::Locks));
    if temp + scratch + secrets + locks > 0 {
        tracing::info!(
            temp,
            scratch,
            secrets,
            locks,
            "removed what stopped engines left behind"
        );
    }
}

/// The pid a leftover's name starts with (`.gantry-tmp-<pid>-…` or
/// `<pid>-…`).
fn pid_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".gantry-tmp-").unwrap_or(name);
    rest.split('-').next()?.parse().ok()
}

fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the entries of `dir` whose pid is dead; returns how many went.
fn remove_dead(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(pid_of) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let path = entry.path();
        let outcome = match entry.file_type() {
            Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        match outcome {
            Ok(()) => removed += 1,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot remove what a stopped engine left");
            }
        }
    }
    removed
}

/// Removes lock files that no engine holds. A lock file is left behind
/// when its holder died or its work failed; one that is held belongs to
/// work in progress and stays. (An engine about to lock a file removed here
/// notices and locks the new one at the path: see `StateDir::lock_record`.)
fn unheld_locks(dir: &Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                stack.push(path);
                continue;
            }
            let Ok(file) = fs::File::open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_read_from_both_naming_schemes() {
        assert_eq!(pid_of(".gantry-tmp-123-00ff"), Some(123));
        assert_eq!(pid_of("456-00ff"), Some(456));
        assert_eq!(pid_of("layout"), None);
    }

    #[test]
    fn only_dead_engines_leftovers_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        // A pid that cannot exist (above the kernel's pid_max limit).
        let dead = 4_194_305u32;
        let mine = std::process::id();
        let temp = state.bucket(Bucket::Temp);
        let scratch = state.bucket(Bucket::Scratch);
        fs::write(temp.join(format!(".gantry-tmp-{dead}-1")), "partial").unwrap();
        fs::write(temp.join(format!(".gantry-tmp-{mine}-1")), "in progress").unwrap();
        fs::create_dir_all(scratch.join(format!("{dead}-2")).join("sub")).unwrap();
        fs::create_dir_all(scratch.join(format!("{mine}-2"))).unwrap();
        let lock = state.bucket(Bucket::Locks).join("exec/ab/abcd");
        fs::create_dir_all(lock.parent().unwrap()).unwrap();
        fs::write(&lock, "").unwrap();
        let held = state.bucket(Bucket::Locks).join("exec/ab/held");
        fs::write(&held, "").unwrap();
        let holder = fs::File::open(&held).unwrap();
        holder.lock().unwrap();
        sweep(&state);
        let names = |dir: &Path| {
            let mut names: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&temp), [format!(".gantry-tmp-{mine}-1")]);
        assert_eq!(names(&scratch), [format!("{mine}-2")]);
        assert!(!lock.exists());
        assert!(held.exists());
    }
}
