//! Graph-building helpers the core test binaries share.

use gantry_core::ops::{self, ExecArgs};
use gantry_core::{Digest, Engine};

/// The busybox fixture image on scratch.
pub(crate) fn base(engine: &Engine) -> Digest {
    let scratch = engine.add(ops::Scratch { platform: None }).digest;
    engine
        .add(ops::FromImage {
            parent: scratch,
            address: "127.0.0.1:5000/busybox".into(),
            registry_service: None,
        })
        .digest
}

/// `withExec(args)` on `parent`.
pub(crate) fn exec(engine: &Engine, parent: Digest, args: &[&str]) -> Digest {
    engine
        .add(ops::WithExec {
            parent,
            exec: ExecArgs {
                args: args.iter().map(|arg| arg.to_string()).collect(),
                ..ExecArgs::default()
            },
        })
        .digest
}
