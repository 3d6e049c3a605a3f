//! gantry-core: digests, the operation graph (a lazy DAG), the solver that
//! evaluates it with caching and single-flight, and the `Runtime` trait that
//! container runtimes implement. It knows nothing of HTTP, GraphQL or Docker,
//! so everything here is testable against `FakeRuntime`.
//!
//! `docs/architecture.md` has the code map (what each module owns) and the
//! invariants `tests/architecture.rs` enforces.

pub mod arrivals;
mod busy;
pub mod changes;
pub mod checksum;
mod context;
mod digest;
pub mod envfile;
mod error;
mod eval;
pub mod events;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod files;
mod filter;
mod gitignore;
pub mod gzip;
mod history;
pub mod host;
mod host_index;
mod host_memory;
mod host_watch;
mod inflight;
mod launch;
pub mod lookup;
mod mounts;
mod oci;
pub mod ops;
mod output;
mod owner;
pub mod pack;
mod reference;
mod registry_service;
pub mod remote;
pub mod reproducible;
pub mod runtime;
pub mod search;
mod secrets;
mod service_host;
mod services;
mod solver;
pub mod store;
mod terminal;
pub mod text;
pub mod tree;
pub mod value;

pub use context::EngineOptions;
pub use digest::{BlobHasher, Digest, Hashing, InvalidDigest};
pub use error::{Error, ExecFailure, Result};
pub use ops::{Node, Op};
pub use reference::{is_image_id, ImageRef, InvalidReference};
pub use solver::{Engine, ServiceHold};
pub use value::Kind;
