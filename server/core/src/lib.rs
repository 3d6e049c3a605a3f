//! gantry-core: digests, the operation graph (a lazy DAG), the solver that
//! evaluates it with caching and single-flight, and the `Runtime` trait that
//! container runtimes implement. It knows nothing of HTTP, GraphQL or Docker,
//! so everything here is testable against `FakeRuntime`.

pub mod digest;
pub mod error;
pub mod events;
pub mod fake;
pub mod files;
pub mod host;
pub mod inflight;
mod mounts;
pub mod op;
pub mod runtime;
pub mod solver;
pub mod store;
pub mod text;
pub mod tree;
pub mod value;

pub use digest::Digest;
pub use error::{Error, Result};
pub use op::{Kind, Node, Op};
pub use solver::{Engine, EngineOptions};
