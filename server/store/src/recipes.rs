//! Recipes (the op behind each ID handed out) in one append-only log,
//! `STATE/store/recipes.log`, instead of a file each: an ID is minted for
//! every object a client asks about, and a ~300-byte recipe in a file of its
//! own took a 4 KiB block and an inode (3,000 IDs: 14 MB in 3,000 files).
//!
//! Each line is `<node digest hex> <unix milliseconds> <op JSON>\n` (serde's JSON
//! has no raw newline), or a use mark `<node digest hex> <unix milliseconds> u\n`:
//! an engine that reads a recipe last used before it started appends one, so
//! that prunes treat recipes by last use, as they treat results (a mark is
//! not JSON: readers that predate marks skip it as a torn line). Appends hold an exclusive `flock` on the log, so
//! engines sharing the state directory never interleave, and first end a
//! line a crashed writer left torn; readers skip any line that does not
//! parse, and a recipe re-hashes to its digest before use anyway (see the
//! solver). Each process indexes the log by digest (offsets), rescanning
//! what was appended since when a lookup misses. `gantry prune` rewrites
//! the log (`RecipeLog::retain`) without the recipes it evicts, as it
//! removes results, and without duplicates.

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gantry_core::files::AtomicFile;
use gantry_core::Digest;

use crate::error::{Error, Result};

/// Where one recipe is in the log.
#[derive(Debug, Clone, Copy)]
struct Place {
    offset: u64,
    len: u64,
    /// When it was written or last marked used (unix milliseconds).
    used: u64,
}

/// A line of the log.
enum Line<'a> {
    Recipe(Digest, u64, &'a [u8]),
    Used(Digest, u64),
}

/// A use mark's third field.
const USED: &[u8] = b"u";

#[derive(Debug, Default)]
struct Index {
    /// The log file this index describes (a rewrite makes a new one).
    inode: u64,
    /// Bytes scanned: complete lines only.
    scanned: u64,
    places: HashMap<Digest, Place>,
}

#[derive(Debug)]
pub(crate) struct RecipeLog {
    path: PathBuf,
    temp: PathBuf,
    index: Mutex<Index>,
}

/// One recipe as prune sees it.
#[derive(Debug, Clone)]
pub(crate) struct RecipeInfo {
    pub(crate) key: Digest,
    pub(crate) bytes: u64,
    /// When it was written or last marked used.
    pub(crate) used: SystemTime,
}

impl RecipeLog {
    pub(crate) fn new(path: PathBuf, temp: PathBuf) -> Self {
        Self {
            path,
            temp,
            index: Mutex::default(),
        }
    }

    /// Appends a recipe (unless this process already knows it is there).
    pub(crate) fn append(&self, key: &Digest, json: &[u8]) -> Result<()> {
        if self
            .index
            .lock()
            .expect("never poisoned")
            .places
            .contains_key(key)
        {
            return Ok(());
        }
        let mut line = format!("{} {} ", key.hex(), now_millis()).into_bytes();
        line.extend_from_slice(json);
        line.push(b'\n');
        self.append_line(line)
    }

    /// Marks recipe `key` used now, unless it was written or marked at or
    /// after `since` (the reading engine's start), or is not in the log.
    pub(crate) fn mark_used(&self, key: &Digest, since: SystemTime) -> Result<()> {
        let since = since
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let now = now_millis();
        {
            let mut index = self.index.lock().expect("never poisoned");
            match index.places.get_mut(key) {
                Some(place) if place.used < since => place.used = now,
                _ => return Ok(()),
            }
        }
        self.append_line(format!("{} {now} u\n", key.hex()).into_bytes())
    }

    /// Appends one line under the log's lock.
    fn append_line(&self, mut line: Vec<u8>) -> Result<()> {
        let file = loop {
            let file = fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&self.path)
                .map_err(Error::io("writing", &self.path))?;
            file.lock().map_err(Error::io("locking", &self.path))?;
            // A prune may have replaced the log while we waited: append to
            // the one at the path.
            let same = match fs::metadata(&self.path) {
                Ok(meta) => meta.ino() == file.metadata().map(|m| m.ino()).unwrap_or(0),
                Err(_) => false,
            };
            if same {
                break file;
            }
        };
        let mut file = file;
        let len = file
            .metadata()
            .map_err(Error::io("reading", &self.path))?
            .len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(Error::io("reading", &self.path))?;
            if last[0] != b'\n' {
                // A writer died mid-line: end its line, so ours stands alone.
                line.insert(0, b'\n');
            }
        }
        file.write_all(&line)
            .map_err(Error::io("writing", &self.path))?;
        Ok(())
    }

    /// The recipe of `key`, if the log has it.
    pub(crate) fn get(&self, key: &Digest) -> Result<Option<Vec<u8>>> {
        let mut index = self.index.lock().expect("never poisoned");
        if !index.places.contains_key(key) {
            self.scan(&mut index)?;
        }
        let Some(place) = index.places.get(key).copied() else {
            return Ok(None);
        };
        drop(index);
        let mut file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(Error::io("reading", &self.path)(error)),
        };
        let mut bytes = vec![0u8; usize::try_from(place.len).unwrap_or(0)];
        file.seek(SeekFrom::Start(place.offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(Error::io("reading", &self.path))?;
        Ok(Some(bytes))
    }

    /// Every recipe in the log, with its size and when it was written.
    pub(crate) fn list(&self) -> Result<Vec<RecipeInfo>> {
        let mut index = self.index.lock().expect("never poisoned");
        self.scan(&mut index)?;
        Ok(index
            .places
            .iter()
            .map(|(key, place)| RecipeInfo {
                key: *key,
                bytes: place.len,
                used: UNIX_EPOCH + Duration::from_millis(place.used),
            })
            .collect())
    }

    /// The log's size on disk (0 when there is none).
    pub(crate) fn size(&self) -> Result<u64> {
        match fs::metadata(&self.path) {
            Ok(meta) => Ok(meta.len()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(0),
            Err(error) => Err(Error::io("reading", &self.path)(error)),
        }
    }

    /// Rewrites the log with only the recipes `keep` accepts (each once).
    /// Returns how many were dropped and the bytes freed.
    pub(crate) fn retain(&self, keep: impl Fn(&Digest) -> bool) -> Result<(usize, u64)> {
        let lock = match fs::OpenOptions::new().read(true).open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok((0, 0)),
            Err(error) => return Err(Error::io("reading", &self.path)(error)),
        };
        lock.lock().map_err(Error::io("locking", &self.path))?;
        let mut text = Vec::new();
        (&lock)
            .read_to_end(&mut text)
            .map_err(Error::io("reading", &self.path))?;
        let mut kept = Vec::new();
        // The latest use of each kept recipe, when later than its writing:
        // one mark each, after the recipes.
        let mut used: HashMap<Digest, (u64, u64)> = HashMap::new();
        let mut dropped = 0;
        for line in text.split_inclusive(|b| *b == b'\n') {
            match parse(line) {
                Some(Line::Recipe(key, written, _)) if keep(&key) && !used.contains_key(&key) => {
                    kept.extend_from_slice(line);
                    used.insert(key, (written, written));
                }
                Some(Line::Recipe(..)) => dropped += 1,
                Some(Line::Used(key, at)) => {
                    if let Some((_, last)) = used.get_mut(&key) {
                        *last = (*last).max(at);
                    }
                }
                None => {}
            }
        }
        let mut marks: Vec<_> = used
            .into_iter()
            .filter(|(_, (written, last))| last > written)
            .collect();
        marks.sort_by_key(|(key, (_, last))| (*last, *key));
        for (key, (_, last)) in marks {
            kept.extend_from_slice(format!("{} {last} u\n", key.hex()).as_bytes());
        }
        AtomicFile::new(&self.path)
            .temp_dir(&self.temp)
            .write(&kept)?;
        *self.index.lock().expect("never poisoned") = Index::default();
        Ok((dropped, (text.len() - kept.len()) as u64))
    }

    /// Indexes what was appended since the last scan (or all of a new log).
    fn scan(&self, index: &mut Index) -> Result<()> {
        let mut file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => {
                *index = Index::default();
                return Ok(());
            }
            Err(error) => return Err(Error::io("reading", &self.path)(error)),
        };
        let inode = file
            .metadata()
            .map_err(Error::io("reading", &self.path))?
            .ino();
        if inode != index.inode {
            *index = Index {
                inode,
                ..Index::default()
            };
        }
        let mut text = Vec::new();
        file.seek(SeekFrom::Start(index.scanned))
            .and_then(|_| file.read_to_end(&mut text))
            .map_err(Error::io("reading", &self.path))?;
        let mut offset = index.scanned;
        for line in text.split_inclusive(|b| *b == b'\n') {
            if !line.ends_with(b"\n") {
                // Being written: scanned next time, once complete.
                break;
            }
            match parse(line) {
                Some(Line::Recipe(key, written, json)) => {
                    let json_offset = offset + (line.len() - json.len() - 1) as u64;
                    index.places.entry(key).or_insert(Place {
                        offset: json_offset,
                        len: json.len() as u64,
                        used: written,
                    });
                }
                // A mark follows its recipe (it was read before it was marked).
                Some(Line::Used(key, at)) => {
                    if let Some(place) = index.places.get_mut(&key) {
                        place.used = place.used.max(at);
                    }
                }
                None => {}
            }
            offset += line.len() as u64;
        }
        index.scanned = offset;
        Ok(())
    }
}

/// A complete line: a recipe (digest, time, JSON) or a use mark; `None`
/// for a torn or foreign one.
fn parse(line: &[u8]) -> Option<Line<'_>> {
    let line = line.strip_suffix(b"\n")?;
    let mut parts = line.splitn(3, |b| *b == b' ');
    let key = Digest::from_hex(std::str::from_utf8(parts.next()?).ok()?)?;
    let at = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let rest = parts.next()?;
    if rest == USED {
        return Some(Line::Used(key, at));
    }
    serde_json::from_slice::<serde_json::Value>(rest).ok()?;
    Some(Line::Recipe(key, at, rest))
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &std::path::Path) -> RecipeLog {
        fs::create_dir_all(dir.join("tmp")).unwrap();
        RecipeLog::new(dir.join("recipes.log"), dir.join("tmp"))
    }

    #[test]
    fn recipes_append_read_back_and_survive_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let first = log(dir.path());
        let (a, b, c) = (
            Digest::of_bytes(b"a"),
            Digest::of_bytes(b"b"),
            Digest::of_bytes(b"c"),
        );
        first.append(&a, br#"{"op":"a"}"#).unwrap();
        // Another engine (a second log value stands for it) appends too.
        let second = log(dir.path());
        second.append(&b, br#"{"op":"b"}"#).unwrap();
        assert_eq!(first.get(&b).unwrap().unwrap(), br#"{"op":"b"}"#);
        // A writer killed mid-line, then a new append.
        let mut raw = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("recipes.log"))
            .unwrap();
        raw.write_all(format!("{} 1 {{\"op\":", c.hex()).as_bytes())
            .unwrap();
        first.append(&c, br#"{"op":"c"}"#).unwrap();
        let fresh = log(dir.path());
        assert_eq!(fresh.get(&a).unwrap().unwrap(), br#"{"op":"a"}"#);
        assert_eq!(fresh.get(&c).unwrap().unwrap(), br#"{"op":"c"}"#);
        assert_eq!(fresh.list().unwrap().len(), 3);
        assert_eq!(fresh.get(&Digest::of_bytes(b"none")).unwrap(), None);
    }

    #[test]
    fn retain_drops_what_prune_evicts_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let recipes = log(dir.path());
        let keys: Vec<Digest> = (0..4u8).map(|n| Digest::of_bytes(&[n])).collect();
        for key in &keys {
            recipes.append(key, b"{}").unwrap();
        }
        // A duplicate from another engine.
        log(dir.path()).append(&keys[0], b"{}").unwrap();
        let (dropped, freed) = recipes.retain(|key| *key != keys[1]).unwrap();
        assert_eq!(dropped, 2);
        assert!(freed > 0);
        assert_eq!(recipes.get(&keys[1]).unwrap(), None);
        assert_eq!(recipes.list().unwrap().len(), 3);
        let text = fs::read_to_string(dir.path().join("recipes.log")).unwrap();
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn use_marks_move_a_recipes_last_use_and_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let (old, fresh) = (Digest::of_bytes(b"old"), Digest::of_bytes(b"fresh"));
        // Written an hour ago.
        let hour_ago = now_millis() - 3_600_000;
        fs::write(
            dir.path().join("recipes.log"),
            format!(
                "{} {hour_ago} {{\"op\":1}}\n{} {hour_ago} {{\"op\":2}}\n",
                old.hex(),
                fresh.hex()
            ),
        )
        .unwrap();
        let engine = log(dir.path());
        let since = SystemTime::now() - Duration::from_secs(60);
        assert!(engine.get(&fresh).unwrap().is_some());
        engine.mark_used(&fresh, since).unwrap();
        // Marked once: a second read of this engine adds no line.
        engine.mark_used(&fresh, since).unwrap();
        let used = |log: &RecipeLog, key: &Digest| {
            log.list()
                .unwrap()
                .into_iter()
                .find(|r| r.key == *key)
                .unwrap()
                .used
        };
        let other = log(dir.path());
        assert!(used(&other, &fresh) >= since);
        assert!(used(&other, &old) < since);
        let text = fs::read_to_string(dir.path().join("recipes.log")).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        // The mark is kept, once, by a rewrite; old readers skip it.
        other.retain(|_| true).unwrap();
        let text = fs::read_to_string(dir.path().join("recipes.log")).unwrap();
        assert_eq!(
            text.lines().filter(|l| l.ends_with(" u")).count(),
            1,
            "{text}"
        );
        let rewritten = log(dir.path());
        assert!(used(&rewritten, &fresh) >= since);
        assert_eq!(rewritten.get(&fresh).unwrap().unwrap(), br#"{"op":2}"#);
    }
}
