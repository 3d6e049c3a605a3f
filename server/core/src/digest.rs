//! Content digests and the explicit, versioned encoding they are computed over.
//!
//! A node's digest must not change between builds of gantry unless we mean it
//! to (it keys the persistent cache), so it is never derived from
//! `std::hash::Hash` or serde output. Instead every operation writes its fields
//! through `Encoder`, which length-prefixes and type-tags each one; the
//! encoding starts with `ENCODING_VERSION`, bumped whenever an encoding changes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Bump to invalidate every cached result after a change in how operations
/// are encoded or evaluated.
pub(crate) const ENCODING_VERSION: &str = "gantry.v1";

/// A sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// sha256 of bytes fed in pieces: `Digest::of_bytes` of their
/// concatenation, for contents too large to hold in memory.
#[derive(Default)]
pub struct BlobHasher(Sha256);

impl BlobHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

/// A reader or a writer that hashes and counts the bytes passing through it
/// (a layer as it is packed or unpacked, a blob as it is compressed).
pub struct Hashing<T> {
    inner: T,
    hasher: BlobHasher,
    size: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: BlobHasher::default(),
            size: 0,
        }
    }

    /// The inner reader or writer, the digest of the bytes so far and their
    /// count.
    pub fn finish(self) -> (T, Digest, u64) {
        (self.inner, self.hasher.finish(), self.size)
    }

    fn count(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.count(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count(&buf[..read]);
        Ok(read)
    }
}

impl Digest {
    /// The digest of raw bytes (used for blobs).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    /// The raw 32 bytes, for compact binary records (host indexes, the
    /// store's blob pack indexes).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The first 12 hex characters, for logs and display names.
    pub fn short(&self) -> String {
        self.hex()[..12].to_owned()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.short())
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        Self::from_hex(hex).ok_or(InvalidDigest)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a sha256 digest")]
pub struct InvalidDigest;

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Defines `Domain` from one list, so `Domain::ALL` cannot miss a variant.
macro_rules! domains {
    ($($(#[doc = $doc:literal])* $variant:ident = $tag:literal,)*) => {
        /// What an encoding is for, written right after `ENCODING_VERSION`:
        /// records of different domains never share a digest, even when their
        /// fields match. The tags are part of every digest on disk, so a tag
        /// never changes; a new kind of record gets a new variant.
        /// `docs/solver.md` lists them (a test checks).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Domain {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Domain {
            /// Every domain, in declaration order.
            #[cfg(test)]
            pub(crate) const ALL: &[Domain] = &[$(Domain::$variant,)*];

            /// The tag written into the encoding.
            pub(crate) fn tag(self) -> &'static str {
                match self {
                    $(Domain::$variant => $tag,)*
                }
            }
        }
    };
}

domains! {
    /// A node's digest (its ID): the op over its inputs' node digests.
    Op = "op",
    /// A node's cache key: the op over its inputs' content keys.
    Key = "key",
    /// A container's content key after `from`: the op's cache key plus the
    /// pulled image's ID, so a retagged image is a different container.
    FromKey = "fromKey",
    /// A container's content key after `import`: the op's cache key plus the
    /// loaded image's ID.
    ImportKey = "importKey",
    /// Where a path read out of a container is cached: the container's
    /// content key plus the absolute path.
    ReadPath = "readPath",
    /// A secret's MAC: `HMAC-SHA256(engine key, value)` hashed once more, so
    /// a recipe identifies a secret's value without holding it.
    SecretMac = "secretMac",
    /// The name of a cache volume's host directory, from the volume's name.
    CacheVolumeDir = "cacheVolumeDir",
    /// A file's content key: name, content digest, mode and timestamp.
    File = "file",
    /// A cache volume's content key, from its name (its contents are in no key).
    CacheVolume = "cacheVolume",
    /// A directory's content digest: names, modes, symlink targets and
    /// content digests (`Tree::digest`).
    Tree = "tree",
    /// A directory's content key when some files carry timestamps: the tree
    /// digest plus those timestamps (`Tree::key`).
    TreeWithTimestamps = "treeWithTimestamps",
    /// The key a tree read from the host is stored under, from its digest.
    HostTree = "hostTree",
    /// The key a host directory's stat index is stored under, from root and
    /// filter.
    HostIndex = "hostIndex",
    /// A host Unix socket's handle: a MAC of its path and the socket file's
    /// identity (`Host.unixSocket`).
    SocketHandle = "socketHandle",
    /// A Git ref's content key: the repository's identity (its URL, or a
    /// local repository's content key), the commit, the ref name and
    /// whether `.git` is kept.
    GitRef = "gitRef",
    /// Where a Git checkout's tree digest is stored: the repository's
    /// identity, the commit and what the checkout keeps of `.git`.
    GitTree = "gitTree",
    /// Where what an HTTP URL last answered (validators, content) is stored.
    HttpCache = "httpCache",
    /// A changeset's content key: the keys of its two directories.
    Changeset = "changeset",
    /// An env file's content key: its lines, context and `expand` flag.
    EnvFile = "envFile",
    /// A JSON value's content key: its compact serialisation.
    JsonValue = "jsonValue",
    /// The key of the record of a command line's earlier runs (cache
    /// explanations), from the command line.
    StepRuns = "stepRuns",
}

/// Writes typed, length-prefixed fields into a sha256 state.
///
/// Each field is a one-byte tag followed by its payload, and variable-length
/// payloads carry their length, so no two different field sequences can
/// produce the same byte stream.
pub(crate) struct Encoder {
    hasher: Sha256,
}

impl Encoder {
    /// Starts an encoding for one kind of record.
    pub(crate) fn new(domain: Domain) -> Self {
        let mut encoder = Self {
            hasher: Sha256::new(),
        };
        encoder.str(ENCODING_VERSION).str(domain.tag());
        encoder
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.bytes_tagged(b's', value.as_bytes())
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.bytes_tagged(b'b', value)
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.hasher.update([b'u']);
        self.hasher.update(value.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, value: i64) -> &mut Self {
        self.hasher.update([b'i']);
        self.hasher.update(value.to_be_bytes());
        self
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        self.hasher.update([b'?', u8::from(value)]);
        self
    }

    pub(crate) fn digest(&mut self, value: &Digest) -> &mut Self {
        self.hasher.update([b'd']);
        self.hasher.update(value.0);
        self
    }

    pub(crate) fn opt_str(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(text) => {
                self.hasher.update([b'+']);
                self.str(text)
            }
            None => {
                self.hasher.update([b'-']);
                self
            }
        }
    }

    pub(crate) fn opt_u64(&mut self, value: Option<u64>) -> &mut Self {
        match value {
            Some(number) => {
                self.hasher.update([b'+']);
                self.u64(number)
            }
            None => {
                self.hasher.update([b'-']);
                self
            }
        }
    }

    pub(crate) fn strs(&mut self, values: &[String]) -> &mut Self {
        self.hasher.update([b'l']);
        self.hasher.update((values.len() as u64).to_be_bytes());
        for value in values {
            self.str(value);
        }
        self
    }

    pub(crate) fn finish(self) -> Digest {
        Digest(self.hasher.finalize().into())
    }

    fn bytes_tagged(&mut self, tag: u8, value: &[u8]) -> &mut Self {
        self.hasher.update([tag]);
        self.hasher.update((value.len() as u64).to_be_bytes());
        self.hasher.update(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_counts_what_passes_either_way() {
        use std::io::{Read as _, Write as _};
        let mut writer = Hashing::new(Vec::new());
        writer.write_all(b"hello ").unwrap();
        writer.write_all(b"world").unwrap();
        let (bytes, digest, size) = writer.finish();
        assert_eq!(bytes, b"hello world");
        assert_eq!((digest, size), (Digest::of_bytes(b"hello world"), 11));
        let mut reader = Hashing::new(&b"hello world"[..]);
        let mut head = [0u8; 5];
        reader.read_exact(&mut head).unwrap();
        let (_, digest, size) = reader.finish();
        assert_eq!((digest, size), (Digest::of_bytes(b"hello"), 5));
    }

    #[test]
    fn field_boundaries_matter() {
        let mut a = Encoder::new(Domain::Op);
        a.str("ab").str("c");
        let mut b = Encoder::new(Domain::Op);
        b.str("a").str("bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn list_and_fields_differ() {
        let mut a = Encoder::new(Domain::Op);
        a.strs(&["x".into()]);
        let mut b = Encoder::new(Domain::Op);
        b.str("x");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn encoding_is_stable() {
        // Pinned: a change here invalidates every cache on disk, so it must be
        // deliberate (bump ENCODING_VERSION and update this value).
        let mut e = Encoder::new(Domain::Op);
        e.str("hello").u64(7).bool(true);
        assert_eq!(e.finish().hex(), PINNED);
    }

    const PINNED: &str = "bdd0a30623921cb148ca67ea1649c46d171a4b4000b5d53b968b55606459a8ce";

    /// Each domain's tag as the string literals before `Domain` existed
    /// wrote it: `Encoder::new(tag).str("x")`, computed by that code.
    const DOMAIN_PINS: [(&str, &str); 21] = [
        (
            "op",
            "b4b6a71e9a6819e0d8b64dd67bbfc1b98cc45f7d348d639f758adba8c848104a",
        ),
        (
            "key",
            "8b18594eb712d75c50bee340c81a87e704fdcfab28fcc1c96a94404e8c5502ab",
        ),
        (
            "fromKey",
            "076cf70fb88b3ed0329747f1b1fe1570c5ed1a6e9346f17bb591a765e56a006f",
        ),
        (
            "importKey",
            "74c585843ced6352733c57b5a8cfbce538799ed9a33865bd063e026df6146a1c",
        ),
        (
            "readPath",
            "6eef4488a407c0aedcadca369290f0f4cb37271ad6c2b635c0175d52d7aa633d",
        ),
        (
            "secretMac",
            "89c181c4afe7e6fd87f9c4cb438530c717dd21b8eda56eca1368942e559a2211",
        ),
        (
            "cacheVolumeDir",
            "dc28f8286321411fee1b9c280650ebfbe8253e9774793d32cdc6eea2863fe101",
        ),
        (
            "file",
            "ed83a42841779fb39f631d23de91394d09f66de2429c3c1326ae5212c19788f8",
        ),
        (
            "cacheVolume",
            "8fb7399d6896d87708acf95ec24bcfbb8b4b1435919d34141bbe15fa16a7f6a2",
        ),
        (
            "tree",
            "de24a5dab4c432cac41c111d185862dd25bf6b944701fc78a7c4241cd73d8b1d",
        ),
        (
            "treeWithTimestamps",
            "d5936b16fa921a304bf40bd86ffe92d4b729b247efaad20c8c259e13bdf2b8f4",
        ),
        (
            "hostTree",
            "7748f02c24fc8720432d31b12aa5084fe8c10639755c0ddf3a0c6e649c1d09b3",
        ),
        (
            "hostIndex",
            "375e4a16cbf5ad32e2624b6a28561f82c9bb9a6281719c81fdc2fd042de17f1a",
        ),
        (
            "socketHandle",
            "3249b1ca3e682da4706f0f029cb36192b615d26ad55e3e2d0fdc99c1d717d6be",
        ),
        (
            "gitRef",
            "c775ea5bf1d66c339897f7dc781fc66340f76b3d2f88dc3831e13e18fdee8859",
        ),
        (
            "gitTree",
            "c810ef07a58e6f1c3db6079cfc344febf574da7426badf5d14192baf2871f8c1",
        ),
        (
            "httpCache",
            "5ec6698a7627456c31a0b5917b200f2ba6af74563ac43960e858379c79bfb650",
        ),
        (
            "changeset",
            "2b10d666513c0dcaafa40cdf68d8d31ddc0e5a226033e3bb74818d27cbcd3486",
        ),
        (
            "envFile",
            "83a5ad0fbd129e69b19fcb836c5ebc119c443275f46f1432728a6c8044043a8c",
        ),
        (
            "jsonValue",
            "efb2d3911d4c7e25f5e250f767b386b2b8a172b522130471a97024a0d2fd79f6",
        ),
        (
            "stepRuns",
            "2b724591e51cb8f549620685c1d0b4fd9f9b8d768923a7485b8b2237b174e9e3",
        ),
    ];

    #[test]
    fn domains_encode_as_before_and_are_distinct() {
        assert_eq!(Domain::ALL.len(), DOMAIN_PINS.len());
        for (domain, (tag, pinned)) in Domain::ALL.iter().copied().zip(DOMAIN_PINS) {
            assert_eq!(domain.tag(), tag);
            let mut e = Encoder::new(domain);
            e.str("x");
            assert_eq!(e.finish().hex(), pinned, "{domain:?}");
        }
        let mut tags: Vec<&str> = Domain::ALL.iter().map(|domain| domain.tag()).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), Domain::ALL.len());
    }

    #[test]
    fn the_docs_list_every_domain() {
        let docs = include_str!("../../../docs/solver.md");
        for &domain in Domain::ALL {
            let row = format!("| `{}` | `{:?}` |", domain.tag(), domain);
            assert!(docs.contains(&row), "docs/solver.md lacks the row {row}");
        }
    }

    #[test]
    fn digest_round_trips_through_text() {
        let digest = Digest::of_bytes(b"x");
        let text = digest.to_string();
        assert!(text.starts_with("sha256:"));
        assert_eq!(text.parse::<Digest>().unwrap(), digest);
        assert!("sha256:zz".parse::<Digest>().is_err());
    }
}
