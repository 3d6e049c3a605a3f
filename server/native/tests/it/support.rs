//! A runtime per test, on its own state directory, and helpers around it.

use std::path::{Path, PathBuf};

use gantry_core::runtime::{
    BindMount, ExecOutput, ExecSpec, PulledImage, RootfsSpec, Runtime, TarLayer,
};
use gantry_native::{NativeOptions, NativeRuntime};

pub(crate) fn test_env(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

pub(crate) fn fixture(name: &str) -> String {
    format!(
        "{}/{name}",
        test_env("GANTRY_TEST_FIXTURES", "127.0.0.1:5000/gantry-fixtures")
    )
}

pub(crate) fn busybox() -> String {
    fixture("busybox:latest")
}

pub(crate) fn registry() -> String {
    test_env("GANTRY_TEST_REGISTRY", "127.0.0.1:5000")
}

/// Whether these tests can run here; panics instead of skipping when asked to.
pub(crate) fn native_available() -> bool {
    match gantry_native::unavailable_reason() {
        None => true,
        Some(reason) => {
            let required = ["GANTRY_TEST_REQUIRE_DOCKER", "GANTRY_TEST_REQUIRE_NATIVE"]
                .iter()
                .any(|name| std::env::var(name).as_deref() == Ok("1"));
            if required {
                panic!("the native runtime cannot run here ({reason}) but the tests are required: run as root after `make setup`");
            }
            eprintln!("skipping: the native runtime cannot run here: {reason}");
            false
        }
    }
}

pub(crate) struct Fixture {
    pub(crate) runtime: NativeRuntime,
    pub(crate) state: tempfile::TempDir,
}

impl Fixture {
    pub(crate) async fn start() -> Option<Self> {
        if !native_available() {
            return None;
        }
        let state = tempfile::tempdir().unwrap();
        let runtime = start_runtime(state.path()).await;
        Some(Self { runtime, state })
    }

    pub(crate) fn store_root(&self) -> PathBuf {
        store_root(self.state.path())
    }

    pub(crate) async fn pull(&self, reference: &str) -> PulledImage {
        self.runtime
            .pull(reference, None)
            .await
            .unwrap_or_else(|error| panic!("pull {reference}: {error}"))
    }

    pub(crate) async fn exec(&self, image: &str, args: &[&str]) -> ExecOutput {
        self.run(spec(image, args)).await
    }

    pub(crate) async fn run(&self, spec: ExecSpec) -> ExecOutput {
        self.runtime
            .exec(spec)
            .await
            .unwrap_or_else(|error| panic!("exec: {error}"))
    }

    /// The stdout of `sh -c script` on `image`, which must exit 0.
    pub(crate) async fn sh(&self, image: &str, script: &str) -> String {
        let out = self.exec(image, &["sh", "-c", script]).await;
        assert_eq!(
            out.exit_code,
            0,
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The snapshot store in a test's state directory (where `gantry_store::StateDir`
/// would put its snapshot bucket; these tests need no more of a state directory).
pub(crate) fn store_root(state: &Path) -> PathBuf {
    state.join("snapshots")
}

pub(crate) async fn start_runtime(state: &Path) -> NativeRuntime {
    NativeRuntime::start(options(state)).await.unwrap()
}

/// The options of a runtime on `state`: the OCI runtime `GANTRY_OCI_RUNTIME`
/// names, the preamble as a program of its own (this test binary's `main` is
/// libtest's, which knows no `__oci-start`).
pub(crate) fn options(state: &Path) -> NativeOptions {
    let mut options = NativeOptions::new(store_root(state));
    options.oci_runtime = std::env::var("GANTRY_OCI_RUNTIME").ok();
    options.preamble = env!("CARGO_BIN_EXE_gantry-oci-start").into();
    options
}

pub(crate) fn spec(image: &str, args: &[&str]) -> ExecSpec {
    ExecSpec {
        rootfs: RootfsSpec {
            image_id: Some(image.to_owned()),
            layers: Vec::new(),
        },
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()],
        workdir: "/".to_owned(),
        commit_tag: format!("gantry.local/cache:test-{:016x}", rand_u64()),
        ..Default::default()
    }
}

pub(crate) fn bind(host: &Path, container: &str, read_only: bool) -> BindMount {
    BindMount {
        host_path: host.display().to_string(),
        container_path: container.to_owned(),
        read_only,
    }
}

pub(crate) fn layer(dest: &str, tar: Vec<u8>) -> TarLayer {
    TarLayer {
        dest: dest.to_owned(),
        tar: tar.into(),
    }
}

pub(crate) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish()
}

/// One archive entry: (name, kind, mode, uid, gid, link target, data).
pub(crate) type Listed = (
    String,
    tar::EntryType,
    u32,
    u64,
    u64,
    Option<String>,
    Vec<u8>,
);

/// Entries of a tar archive.
pub(crate) fn listing(tar: &[u8]) -> Vec<Listed> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            (
                name,
                header.entry_type(),
                header.mode().unwrap() & 0o7777,
                header.uid().unwrap(),
                header.gid().unwrap(),
                link,
                data,
            )
        })
        .collect()
}
