//! gantry-store: the state directory, with one owner.
//!
//! `StateDir` (`layout.rs`) decides every path under the state directory
//! and performs every write in it; nothing else in gantry builds a path
//! there. `DiskStore` implements the solver's `Store` on top of it, and
//! `usage.rs` answers what the directory holds and prunes it.
//!
//! ```text
//! STATE/layout                     the layout number (4); older layouts are migrated at open
//! STATE/secret-mac.key             the key that MACs secret values in cache keys (0600)
//! STATE/id                         names this state directory's Docker images (gantry.local/<id>/…)
//! STATE/engine.lock                held by the `gantry serve` serving the directory (pid, socket)
//! STATE/store/blobs/packs/         small file contents, appended to packs (see `packs.rs`)
//! STATE/store/blobs/ab/<hex>       larger file contents, by sha256
//! STATE/store/exec/ab/<hex>        exec results (JSON), by cache key; image gantry.local/cache:<hex>
//! STATE/store/path-reads/ab/<hex>  trees read from container paths, by container key and path
//! STATE/store/host-trees/ab/<hex>  trees read from the host or a writable mount, by content
//! STATE/store/host-indexes/ab/<hex> stat indexes of host directories, by root and filter
//! STATE/store/recipes.log          the op behind each ID (one JSON line each), by node digest
//! STATE/store/fetches/ab/<hex>     Git checkouts and HTTP downloads (JSON), by source key
//! STATE/store/step-runs/ab/<hex>   a command line's last runs' named inputs (cache explanations)
//! STATE/store/tmp/                 temp files of writes in progress
//! STATE/store/locks/<kind>/ab/<hex> a lock per record being produced (engines sharing the directory)
//! STATE/store/locks/engines/<pid>-<random> a lease per live engine (its time: when it started)
//! STATE/cache-volumes/<hex>/       cache volume contents, by volume name
//! STATE/scratch/<pid>-<random>/    one exec's mount copies, removed after it
//! STATE/snapshots/                 the native runtime's layers and images (gantry-native lays it out)
//! ```
//!
//! Every write goes to a temp file and is renamed into place
//! (`gantry_core::files::AtomicFile`), so a crash mid-write never leaves an
//! entry that reads as valid, and a failed write leaves no temp file.
//! Records are small and read on every cache lookup, so most are also kept
//! in memory once read; blobs are not. Host-directory snapshots, large and
//! answered from memory, are written behind the answer (`behind.rs`).

mod behind;
mod disk;
mod error;
mod layout;
mod locks;
mod migrate;
mod packs;
mod recipes;
mod sweep;
mod usage;

pub use disk::DiskStore;
pub use error::{Error, Result};
pub use layout::{Bucket, StateDir, LAYOUT};
pub use locks::{EngineLease, LiveEngine, RecordLock, ServingClaim};
pub use usage::{Keep, Policy, PrunePlan, Pruned, RecordInfo, Size, Usage};
