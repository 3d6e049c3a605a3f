//! Writing files safely: the one atomic write, and unique directories.
//!
//! `AtomicFile` is how gantry replaces any file: the bytes go to a temp file
//! (private, on the target's filesystem), which is renamed over the target
//! only once it is complete, so a reader sees the old file or the whole new
//! one, never a partial write. The temp file is removed on every failure
//! path (a full disk, a size limit, a target that cannot be replaced, a
//! panic while filling it), so a failed write leaves nothing behind.
//!
//! Every file under the state directory is written this way (through
//! `gantry-store`, which owns that directory), and so is every file exported
//! to the client's host (`gantry-api`). It lives here, in the crate both
//! depend on.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// A write that failed: the file it was for and the OS's reason.
#[derive(Debug, thiserror::Error)]
#[error("writing {} failed", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// What a successful `AtomicFile` write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The target now holds the new bytes.
    Written,
    /// `keep_existing` was asked for and the target already existed: it is
    /// unchanged and the new bytes were discarded.
    KeptExisting,
}

/// One atomic write of one file (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct AtomicFile<'a> {
    target: &'a Path,
    temp_dir: Option<&'a Path>,
    mode: u32,
    keep_existing: bool,
}

impl<'a> AtomicFile<'a> {
    /// A write of `target`, mode 0600, replacing whatever is there.
    pub fn new(target: &'a Path) -> Self {
        Self {
            target,
            temp_dir: None,
            mode: 0o600,
            keep_existing: false,
        }
    }

    /// Where the temp file is made (default: beside the target). It must be
    /// on the target's filesystem, so that the rename is atomic.
    pub fn temp_dir(mut self, dir: &'a Path) -> Self {
        self.temp_dir = Some(dir);
        self
    }

    /// The target's permission bits, exactly as given (no umask applies).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// First writer wins: when the target already exists it is left as it
    /// is (see `WriteOutcome::KeptExisting`), even against a concurrent
    /// writer in another process.
    pub fn keep_existing(mut self) -> Self {
        self.keep_existing = true;
        self
    }

    pub fn write(self, bytes: &[u8]) -> Result<WriteOutcome, WriteError> {
        self.write_with(|file| file.write_all(bytes))
    }

    /// Fills the temp file with `fill`, then puts it in place. An error from
    /// `fill` fails the write (and removes the temp file) like any other.
    pub fn write_with(
        self,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<WriteOutcome, WriteError> {
        let target = self.target;
        let failed = |source| WriteError {
            path: target.to_path_buf(),
            source,
        };
        let dir = match self.temp_dir {
            Some(dir) => dir,
            None => match target.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            },
        };
        let temp = TempFile(dir.join(format!(".gantry-tmp-{}", unique_suffix())));
        // Private until complete, whatever mode the target gets.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp.0)
            .map_err(failed)?;
        fill(&mut file).map_err(failed)?;
        file.set_permissions(fs::Permissions::from_mode(self.mode))
            .map_err(failed)?;
        drop(file);
        if self.keep_existing {
            // A hard link, unlike a rename, fails when the target exists.
            return match fs::hard_link(&temp.0, target) {
                Ok(()) => Ok(WriteOutcome::Written),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    Ok(WriteOutcome::KeptExisting)
                }
                Err(error) => Err(failed(error)),
            };
        }
        fs::rename(&temp.0, target).map_err(failed)?;
        temp.renamed();
        Ok(WriteOutcome::Written)
    }
}

/// A temp file that is removed when dropped: on every early return and on
/// unwinding, until it has been renamed away.
struct TempFile(PathBuf);

impl TempFile {
    fn renamed(mut self) {
        self.0 = PathBuf::new();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.0);
        }
    }
}

/// `<pid>-<random>`: unique across processes sharing a directory, and the
/// pid tells whose it is.
fn unique_suffix() -> String {
    format!("{}-{:016x}", std::process::id(), rand::random::<u64>())
}

/// Where secret values are written as files (secret mounts, secret
/// variables): a tmpfs, so they never reach a disk. Each writer makes its
/// own directory here with `create_secret_dir`, named like every leftover
/// gantry can sweep (`<pid>-<random>`): the state directory's owner
/// (gantry-store) removes those of dead engines when it opens, and the
/// runtime unlinks each file as soon as the container that mounts it has
/// started.
pub const SECRET_FILES_DIR: &str = "/dev/shm/gantry-secrets";

/// A new private directory (mode 0700, in a parent only its owner may
/// enter) under `SECRET_FILES_DIR`. Fails when there is no tmpfs at
/// `/dev/shm`, rather than putting secret values on a disk.
pub fn create_secret_dir() -> io::Result<PathBuf> {
    let shm = Path::new(SECRET_FILES_DIR)
        .parent()
        .expect("the secret directory has a parent");
    if !shm.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no tmpfs at {}: gantry keeps secret values off disk",
                shm.display()
            ),
        ));
    }
    let parent = Path::new(SECRET_FILES_DIR);
    let dir = create_unique_dir(parent)?;
    for private in [parent, dir.as_path()] {
        fs::set_permissions(private, fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// Creates a new, empty directory under `parent` (created when missing),
/// named so that no other caller, in any process, gets the same one.
pub fn create_unique_dir(parent: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(parent)?;
    let dir = parent.join(unique_suffix());
    fs::create_dir(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_replace_the_target_with_the_given_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("file");
        fs::write(&target, "old").unwrap();
        let outcome = AtomicFile::new(&target).mode(0o751).write(b"new").unwrap();
        assert_eq!(outcome, WriteOutcome::Written);
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o751);
        assert_eq!(names(dir.path()), ["file"]);
    }

    #[test]
    fn the_first_writer_wins_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("key");
        let first = AtomicFile::new(&target).keep_existing().write(b"one");
        let second = AtomicFile::new(&target).keep_existing().write(b"two");
        assert_eq!(first.unwrap(), WriteOutcome::Written);
        assert_eq!(second.unwrap(), WriteOutcome::KeptExisting);
        assert_eq!(fs::read_to_string(&target).unwrap(), "one");
        assert_eq!(names(dir.path()), ["key"]);
    }

    #[test]
    fn a_failed_rename_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("temp");
        fs::create_dir(&temp).unwrap();
        // A non-empty directory cannot be replaced by a file.
        let target = dir.path().join("occupied");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), "x").unwrap();
        let error = AtomicFile::new(&target)
            .temp_dir(&temp)
            .write(b"bytes")
            .unwrap_err();
        assert_eq!(error.path, target);
        assert!(error.to_string().contains("occupied"), "{error}");
        assert_eq!(names(&temp), Vec::<String>::new());
    }

    #[test]
    fn a_failed_or_panicking_fill_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("file");
        let error = AtomicFile::new(&target)
            .write_with(|file| {
                file.write_all(b"half of it")?;
                Err(io::Error::other("the source went away"))
            })
            .unwrap_err();
        assert_eq!(error.source.to_string(), "the source went away");
        let panicked = std::panic::catch_unwind(|| {
            AtomicFile::new(&target).write_with(|file| {
                file.write_all(b"half of it")?;
                panic!("a bug while filling");
            })
        });
        assert!(panicked.is_err());
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_missing_temp_dir_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("file");
        let error = AtomicFile::new(&target)
            .temp_dir(&dir.path().join("missing"))
            .write(b"bytes")
            .unwrap_err();
        assert_eq!(error.source.kind(), io::ErrorKind::NotFound);
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }

    const CHILD_DIR: &str = "GANTRY_TEST_ATOMIC_FILE_DIR";

    /// The OS refusing a write halfway, as a full disk does: the test binary
    /// runs `child_writes_past_the_file_size_limit` again under a file size
    /// limit (`ulimit -f`, with SIGXFSZ ignored), so the kernel fails the
    /// write with EFBIG after part of the file is on disk. Root ignores
    /// read-only directory modes, which rules those out under CI.
    #[test]
    fn a_write_the_os_refuses_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(r#"trap '' XFSZ; ulimit -f 64; exec "$0" "$@""#)
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "files::tests::child_writes_past_the_file_size_limit",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }

    #[test]
    #[ignore = "run by a_write_the_os_refuses_leaves_no_temp_file under a file size limit"]
    fn child_writes_past_the_file_size_limit() {
        let dir = PathBuf::from(std::env::var_os(CHILD_DIR).expect("run by the parent test"));
        let target = dir.join("big");
        let error = AtomicFile::new(&target)
            .write(&vec![7; 4 << 20])
            .unwrap_err();
        assert_eq!(error.source.kind(), io::ErrorKind::FileTooLarge, "{error}");
        assert_eq!(error.path, target);
    }
}
