//! Small blobs in pack files, instead of a file each.
//!
//! Loading a source tree stores one blob per distinct file content. As a file
//! each, a 10,000-file tree meant 10,000 inodes created (a temp file and a
//! rename each): most of a first load's time went to the filesystem's inode
//! allocator, and it got slower the more had been deleted nearby. Blobs up to
//! `PACKED_MAX` now go to pack files, appended to; larger ones (streamed, see
//! `StateDir::write_blob_from`) stay files of their own, as do blobs written
//! before layout 4.
//!
//! ```text
//! STATE/store/blobs/packs/<pid>-<random>.pack   blob bytes, one after another
//! STATE/store/blobs/packs/<pid>-<random>.idx    44 bytes per blob: sha256, offset (u64 LE), length (u32 LE)
//! ```
//!
//! Each engine appends to packs of its own (named by its pid and a random
//! number, never reopened for writing once it lets go of one), so engines
//! sharing the state directory never write to one file and need no lock.
//! A blob's bytes are written before its index entry, so an entry always
//! names bytes that were written whole; a crash between the two leaves bytes
//! no entry names (wasted, harmless). Readers take whole 44-byte entries
//! only, so a torn last entry is never read, and every packed blob read is
//! checked against its digest, so a damaged pack fails the read naming the
//! pack rather than handing out wrong bytes.
//!
//! Each engine keeps the entries in memory (digest → where), read from every
//! index the first time a blob is needed, and reads what other engines
//! appended since when a lookup misses. Packs are removed with the blobs
//! bucket (`gantry prune --all`); a prune that keeps results keeps every
//! blob, as it kept every blob file.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use gantry_core::Digest;

use crate::error::{Error, Result};

/// Blobs up to this size are packed; larger ones are files of their own.
pub(crate) const PACKED_MAX: u64 = 256 * 1024;

/// A pack is closed (and a new one started) once it holds this much.
const PACK_LIMIT: u64 = 256 * 1024 * 1024;

/// The name of the directory under the blobs bucket that holds the packs.
pub(crate) const PACKS_DIR: &str = "packs";

/// Bytes per index entry: sha256, offset, length.
pub(crate) const ENTRY: usize = 32 + 8 + 4;

/// Where a packed blob is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    pack: u32,
    offset: u64,
    len: u32,
}

/// The packs this engine has read the indexes of.
#[derive(Debug, Default)]
struct Known {
    /// Pack names (without extension) by number (`Slot::pack`).
    names: Vec<OsString>,
    numbers: HashMap<OsString, u32>,
    /// Bytes of each pack's index read so far: whole entries only.
    scanned: Vec<u64>,
    /// Whether every index in the directory was read once.
    loaded: bool,
}

/// The pack this engine appends to.
#[derive(Debug)]
struct Writer {
    pack: u32,
    data: fs::File,
    index: fs::File,
    data_len: u64,
    index_len: u64,
}

#[derive(Debug)]
pub(crate) struct Packs {
    dir: PathBuf,
    slots: DashMap<Digest, Slot>,
    known: Mutex<Known>,
    /// Read handles by pack number, opened on first read.
    files: DashMap<u32, Arc<fs::File>>,
    writer: Mutex<Option<Writer>>,
}

impl Packs {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            slots: DashMap::new(),
            known: Mutex::default(),
            files: DashMap::new(),
            writer: Mutex::default(),
        }
    }

    /// Whether a blob is packed (by this engine or, as of the last look,
    /// another).
    pub(crate) fn contains(&self, digest: &Digest) -> Result<bool> {
        self.load()?;
        Ok(self.slots.contains_key(digest))
    }

    /// A packed blob's bytes, checked against its digest; `None` when no
    /// pack holds it. With `rescan`, a miss first reads what other engines
    /// appended since the last look.
    pub(crate) fn get(&self, digest: &Digest, rescan: bool) -> Result<Option<Vec<u8>>> {
        self.load()?;
        let slot = match self.slots.get(digest).map(|slot| *slot) {
            Some(slot) => slot,
            None if rescan => {
                self.scan()?;
                match self.slots.get(digest).map(|slot| *slot) {
                    Some(slot) => slot,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        let file = self.file(slot.pack)?;
        let mut bytes = vec![0u8; slot.len as usize];
        file.read_exact_at(&mut bytes, slot.offset)
            .map_err(|error| Error::io("reading", self.path(slot.pack, "pack"))(error))?;
        if Digest::of_bytes(&bytes) != *digest {
            return Err(Error::io("reading", self.path(slot.pack, "pack"))(
                std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!(
                        "blob {digest} is damaged in this pack (its bytes no longer match their \
                     digest); `gantry prune --all` clears the store"
                    ),
                ),
            ));
        }
        Ok(Some(bytes))
    }

    /// Appends a blob (`bytes` hash to `digest`, at most `PACKED_MAX` long)
    /// to this engine's pack. The caller checked `contains` first; a blob
    /// packed twice (two engines at once) only costs its bytes twice.
    pub(crate) fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        debug_assert!(bytes.len() as u64 <= PACKED_MAX);
        let mut guard = self.writer.lock().expect("never poisoned");
        if self.slots.contains_key(digest) {
            // Another thread of this engine packed it meanwhile.
            return Ok(());
        }
        let writer = match guard.take() {
            Some(writer) if writer.usable() => writer,
            _ => self.new_writer()?,
        };
        let writer = guard.insert(writer);
        let pack = writer.pack;
        let data_path = || self.path(pack, "pack");
        let offset = writer.data_len;
        // Positioned writes: a failed one (disk full) is overwritten by the
        // next, and the index entry is written only once the bytes are.
        writer
            .data
            .write_all_at(bytes, offset)
            .map_err(Error::io("writing", data_path()))?;
        let mut entry = [0u8; ENTRY];
        entry[..32].copy_from_slice(digest.bytes());
        entry[32..40].copy_from_slice(&offset.to_le_bytes());
        entry[40..].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        if let Err(error) = writer.index.write_all_at(&entry, writer.index_len) {
            // A torn entry may be left: never write after it.
            *guard = None;
            let path = self.path(pack, "idx");
            return Err(Error::io("writing", path)(error));
        }
        writer.data_len += bytes.len() as u64;
        writer.index_len += ENTRY as u64;
        self.slots.insert(
            *digest,
            Slot {
                pack: writer.pack,
                offset,
                len: bytes.len() as u32,
            },
        );
        Ok(())
    }

    /// Every packed blob's digest (each once), read from the indexes.
    pub(crate) fn digests(&self) -> Result<Vec<Digest>> {
        self.load()?;
        self.scan()?;
        Ok(self.slots.iter().map(|entry| *entry.key()).collect())
    }

    /// Reads every index once.
    fn load(&self) -> Result<()> {
        if self.known.lock().expect("never poisoned").loaded {
            return Ok(());
        }
        self.scan()
    }

    /// Reads what was appended to the indexes in the directory since the
    /// last look, new packs included.
    fn scan(&self) -> Result<()> {
        let mut known = self.known.lock().expect("never poisoned");
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => {
                known.loaded = true;
                return Ok(());
            }
            Err(error) => return Err(Error::io("reading", &self.dir)(error)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io("reading", &self.dir))?;
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != "idx") {
                continue;
            }
            let Some(name) = path.file_stem().map(OsString::from) else {
                continue;
            };
            let pack = match known.numbers.get(&name) {
                Some(pack) => *pack,
                None => {
                    let pack = known.names.len() as u32;
                    known.names.push(name.clone());
                    known.numbers.insert(name, pack);
                    known.scanned.push(0);
                    pack
                }
            };
            let from = known.scanned[pack as usize];
            if from == u64::MAX {
                // This engine's own: its entries are in `slots` already.
                continue;
            }
            let bytes = match read_from(&path, from) {
                Ok(bytes) => bytes,
                // Removed since the listing (a prune).
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                Err(error) => return Err(Error::io("reading", &path)(error)),
            };
            let whole = bytes.len() - bytes.len() % ENTRY;
            for entry in bytes[..whole].chunks_exact(ENTRY) {
                let digest = Digest::from_bytes(entry[..32].try_into().expect("32 bytes"));
                let offset = u64::from_le_bytes(entry[32..40].try_into().expect("8 bytes"));
                let len = u32::from_le_bytes(entry[40..].try_into().expect("4 bytes"));
                self.slots
                    .entry(digest)
                    .or_insert(Slot { pack, offset, len });
            }
            known.scanned[pack as usize] = from + whole as u64;
        }
        known.loaded = true;
        Ok(())
    }

    /// Starts a new pack of this engine's own.
    fn new_writer(&self) -> Result<Writer> {
        fs::create_dir_all(&self.dir).map_err(Error::io("creating", &self.dir))?;
        let name = OsString::from(format!(
            "{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let open = |path: &Path| {
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(Error::io("creating", path))
        };
        let mut known = self.known.lock().expect("never poisoned");
        let pack = known.names.len() as u32;
        let data_path = self.dir.join(&name).with_extension("pack");
        let data = open(&data_path)?;
        let index = open(&data_path.with_extension("idx")).inspect_err(|_| {
            let _ = fs::remove_file(&data_path);
        })?;
        known.names.push(name.clone());
        known.numbers.insert(name, pack);
        // This engine's entries go to `slots` as it writes them.
        known.scanned.push(u64::MAX);
        Ok(Writer {
            pack,
            data,
            index,
            data_len: 0,
            index_len: 0,
        })
    }

    /// The path of pack `pack`'s data (`pack`) or index (`idx`).
    fn path(&self, pack: u32, extension: &str) -> PathBuf {
        let known = self.known.lock().expect("never poisoned");
        self.dir
            .join(&known.names[pack as usize])
            .with_extension(extension)
    }

    /// A read handle on pack `pack`'s data.
    fn file(&self, pack: u32) -> Result<Arc<fs::File>> {
        if let Some(file) = self.files.get(&pack) {
            return Ok(file.clone());
        }
        let path = self.path(pack, "pack");
        let file = Arc::new(fs::File::open(&path).map_err(Error::io("reading", &path))?);
        self.files.insert(pack, file.clone());
        Ok(file)
    }
}

impl Writer {
    /// Whether to keep appending here: not full, and not removed (by
    /// `gantry prune --all`) under the running engine, where what it wrote
    /// would be lost.
    fn usable(&self) -> bool {
        self.data_len < PACK_LIMIT && self.data.metadata().is_ok_and(|meta| meta.nlink() > 0)
    }
}

/// The bytes of the file at `path` from `offset` on.
fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// How many blobs the packs under `dir` hold (index entries; a blob two
/// engines packed at once counts twice) and their bytes on disk.
pub(crate) fn count(dir: &Path) -> Result<(u64, u64)> {
    let (mut entries, mut bytes) = (0, 0);
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok((0, 0)),
        Err(error) => return Err(Error::io("reading", dir)(error)),
    };
    for entry in listing.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        bytes += meta.len();
        if entry.path().extension().is_some_and(|ext| ext == "idx") {
            entries += meta.len() / ENTRY as u64;
        }
    }
    Ok((entries, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: u32) -> (Digest, Vec<u8>) {
        let bytes = format!("blob number {n}").into_bytes();
        (Digest::of_bytes(&bytes), bytes)
    }

    #[test]
    fn blobs_read_back_in_this_engine_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::new(dir.path().join("packs"));
        for n in 0..100 {
            let (digest, bytes) = blob(n);
            assert!(!packs.contains(&digest).unwrap());
            packs.put(&digest, &bytes).unwrap();
        }
        let reopened = Packs::new(dir.path().join("packs"));
        for n in 0..100 {
            let (digest, bytes) = blob(n);
            assert_eq!(packs.get(&digest, true).unwrap().unwrap(), bytes);
            assert!(reopened.contains(&digest).unwrap());
            assert_eq!(reopened.get(&digest, true).unwrap().unwrap(), bytes);
        }
        assert_eq!(reopened.get(&blob(100).0, true).unwrap(), None);
        assert_eq!(count(&dir.path().join("packs")).unwrap().0, 100);
    }

    #[test]
    fn an_engine_finds_what_another_packed_after_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let one = Packs::new(dir.path().join("packs"));
        let two = Packs::new(dir.path().join("packs"));
        let (first, bytes) = blob(1);
        one.put(&first, &bytes).unwrap();
        assert!(two.contains(&first).unwrap());
        let (second, bytes) = blob(2);
        one.put(&second, &bytes).unwrap();
        // Not seen yet by `contains`, found by the read that misses.
        assert!(!two.contains(&second).unwrap());
        assert_eq!(two.get(&second, true).unwrap().unwrap(), bytes);
        // Each engine wrote to its own pack.
        let (third, bytes) = blob(3);
        two.put(&third, &bytes).unwrap();
        assert_eq!(one.get(&third, true).unwrap().unwrap(), bytes);
        let packs = fs::read_dir(dir.path().join("packs")).unwrap().count();
        assert_eq!(packs, 4, "a .pack and an .idx per engine");
    }

    #[test]
    fn a_torn_index_entry_is_not_read_and_damaged_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::new(dir.path().join("packs"));
        let (digest, bytes) = blob(1);
        packs.put(&digest, &bytes).unwrap();
        let index = fs::read_dir(dir.path().join("packs"))
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "idx"))
            .unwrap();
        // A crash mid-entry: half of a second entry.
        let mut torn = fs::read(&index).unwrap();
        torn.extend_from_slice(&[7u8; ENTRY / 2]);
        fs::write(&index, &torn).unwrap();
        let reader = Packs::new(dir.path().join("packs"));
        assert_eq!(reader.digests().unwrap(), vec![digest]);
        // Damage the bytes on disk.
        let data = index.with_extension("pack");
        fs::write(&data, b"blob number X").unwrap();
        let error = reader.get(&digest, true).unwrap_err();
        let error = format!("{error}: {}", std::error::Error::source(&error).unwrap());
        assert!(
            error.contains("damaged") && error.contains(".pack"),
            "{error}"
        );
    }

    #[test]
    fn packing_goes_on_after_a_prune_removed_the_packs() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::new(dir.path().join("packs"));
        let (first, bytes) = blob(1);
        packs.put(&first, &bytes).unwrap();
        fs::remove_dir_all(dir.path().join("packs")).unwrap();
        let (second, bytes) = blob(2);
        packs.put(&second, &bytes).unwrap();
        // Written to a new pack that a new engine reads.
        let reopened = Packs::new(dir.path().join("packs"));
        assert_eq!(reopened.get(&second, true).unwrap().unwrap(), bytes);
        assert_eq!(reopened.get(&first, true).unwrap(), None);
    }
}
