//! What engines that died (SIGKILL, OOM, a power cut) leave behind, removed
//! when the state directory is next opened: temp files of writes that never
//! finished, exec scratch directories, secret files on tmpfs and lock files
//! nobody holds. Each name starts with the pid of the engine that made it
//! (`gantry_core::files::create_unique_dir` and `AtomicFile` name them so);
//! only entries of processes that no longer exist are touched, since other
//! engines may share the state directory. A pid that another process took
//! again (a long CI run wraps pids around) does not keep a dead engine's
//! entries: a process that started more than a second after an entry last
//! changed (its ctime, which no writer can set back) is not the one that
//! made it. One that took the pid within that
//! second keeps them until it exits or a later sweep, which is harmless.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

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

/// Whether the engine that made an entry last changed at `changed` may
/// still run: `pid` is ours, or names a process that started no later than
/// a second after that (the margin covers the 10 ms resolution of the
/// times compared, with room to spare: a live engine's entry is never
/// taken for a dead one's).
fn alive(pid: u32, changed: Option<SystemTime>) -> bool {
    if pid == std::process::id() {
        return true;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => may_have_made(&stat, changed),
        Err(_) => false,
    }
}

/// Whether the process whose `/proc/PID/stat` is `stat` may have made an
/// entry last changed at `changed` (in doubt, yes).
fn may_have_made(stat: &str, changed: Option<SystemTime>) -> bool {
    match (changed, started(stat)) {
        (Some(changed), Some(started)) => started <= changed + REUSE_MARGIN,
        _ => true,
    }
}

/// See `alive`.
const REUSE_MARGIN: Duration = Duration::from_secs(1);
/// The kernel's unit of `/proc/PID/stat`'s start time (`USER_HZ`, 100 on
/// every architecture Linux runs on).
const USER_HZ: u64 = 100;

/// When the process whose `/proc/PID/stat` is `stat` started, on the wall
/// clock: its start in ticks since boot, plus when the machine booted
/// (now less `/proc/uptime`).
fn started(stat: &str) -> Option<SystemTime> {
    // The fields after the command name (which may hold spaces and
    // parentheses): the 22nd field of the line, start time, is the 20th.
    let ticks: u64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let boot = SystemTime::now().checked_sub(Duration::try_from_secs_f64(uptime).ok()?)?;
    boot.checked_add(Duration::from_millis(ticks.saturating_mul(1000) / USER_HZ))
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
        // The status change time: a writer can set an entry's mtime to
        // anything (a mounted tree's own times), never its ctime.
        let changed = entry.metadata().ok().and_then(|meta| {
            let seconds = u64::try_from(meta.ctime()).ok()?;
            let nanos = u32::try_from(meta.ctime_nsec()).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
        });
        if alive(pid, changed) {
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
    fn a_pid_taken_again_after_an_entry_changed_does_not_keep_it() {
        let me = fs::read_to_string("/proc/self/stat").unwrap();
        let started = started(&me).unwrap();
        let now = SystemTime::now();
        assert!(started <= now, "{started:?} after {now:?}");
        assert!(now.duration_since(started).unwrap() < Duration::from_secs(3600));
        // This process, as it would be judged under another pid: an entry
        // changed after it started may be its; one last changed well before
        // it started belongs to a dead engine whose pid it took again.
        assert!(may_have_made(&me, Some(now)));
        assert!(may_have_made(&me, Some(started)));
        assert!(!may_have_made(&me, Some(started - Duration::from_secs(5))));
        assert!(may_have_made(&me, None));
        // A parent is a live process that started before this one.
        assert!(alive(std::os::unix::process::parent_id(), Some(now)));
        assert!(!alive(4_194_305, Some(now)));
        // The command name may hold spaces and parentheses.
        let odd = me.replacen('(', "(a) b (", 1);
        let gap = |a: SystemTime, b: SystemTime| {
            a.duration_since(b)
                .or_else(|_| b.duration_since(a))
                .unwrap()
        };
        assert!(gap(super::started(&odd).unwrap(), started) < Duration::from_millis(100));
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
