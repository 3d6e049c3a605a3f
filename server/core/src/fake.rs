//! `FakeRuntime`: an in-memory runtime for solver tests. It counts calls and
//! interprets a tiny command language instead of running anything:
//! `echo WORDS…` prints, `fail N` exits N (`fail-loud N` printing first), `sleep-ms N` waits, `pieces
//! A B…` prints each word as a separate write (no separators), and any
//! other command prints its own arguments. Output goes to the spec's
//! `OutputSink` as well, as a runtime streams it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::runtime::{
    ExecOutput, ExecSpec, ImageConfig, OutputStream, PulledImage, RegistryAuth, RootfsSpec,
    Runtime, RuntimeError,
};

#[derive(Default)]
pub struct FakeRuntime {
    pub exec_count: AtomicUsize,
    pub pull_count: AtomicUsize,
    pub max_concurrent: AtomicUsize,
    running: AtomicUsize,
    /// Every exec's environment (plain and secret), for assertions about secrets.
    pub envs: Mutex<Vec<Vec<String>>>,
    /// Every exec's plain and secret environment, apart.
    pub specs: Mutex<Vec<(Vec<String>, Vec<String>)>>,
    /// Every pull's credentials (server, username), if any.
    pub pull_auths: Mutex<Vec<Option<(String, String)>>>,
}

impl FakeRuntime {
    pub fn execs(&self) -> usize {
        self.exec_count.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, RuntimeError> {
        self.pull_count.fetch_add(1, Ordering::SeqCst);
        self.pull_auths
            .lock()
            .expect("not poisoned")
            .push(auth.map(|auth| (auth.server.clone(), auth.username.clone())));
        if reference.contains("missing") {
            return Err(RuntimeError::ImageNotFound {
                reference: reference.into(),
                reason: "manifest unknown".into(),
            });
        }
        Ok(PulledImage {
            image_id: format!("fake-image:{reference}"),
            resolved_ref: format!("{reference}@sha256:{}", "0".repeat(64)),
            config: ImageConfig {
                env: vec![("PATH".into(), "/bin".into())],
                cmd: vec!["sh".into()],
                ..ImageConfig::default()
            },
        })
    }

    async fn exec(&self, spec: ExecSpec) -> Result<ExecOutput, RuntimeError> {
        let number = self.exec_count.fetch_add(1, Ordering::SeqCst) + 1;
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_concurrent.fetch_max(running, Ordering::SeqCst);
        let mut env = spec.env.clone();
        env.extend(spec.secret_env.iter().cloned());
        self.envs.lock().expect("not poisoned").push(env.clone());
        self.specs
            .lock()
            .expect("not poisoned")
            .push((spec.env.clone(), spec.secret_env.clone()));
        let args = spec.args;
        if args.first().map(String::as_str) == Some("pieces") {
            for piece in &args[1..] {
                spec.output.write(OutputStream::Stdout, piece.as_bytes());
            }
        }
        let (stdout, exit_code) = match args.first().map(String::as_str) {
            Some("echo") => (format!("{}\n", args[1..].join(" ")), 0),
            Some("fail") => (
                String::new(),
                args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1),
            ),
            Some("fail-loud") => (
                "about to fail\n".to_owned(),
                args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1),
            ),
            Some("sleep-ms") => {
                let ms = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                (String::new(), 0)
            }
            Some("printenv") => (format!("{}\n", env.join("\n")), 0),
            Some("pieces") => (args[1..].concat(), 0),
            _ => (args.join(" "), 0),
        };
        if args.first().map(String::as_str) != Some("pieces") {
            spec.output.write(OutputStream::Stdout, stdout.as_bytes());
        }
        spec.output.write(OutputStream::Stderr, b"fake stderr\n");
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(ExecOutput {
            image_id: format!("fake-committed:{number}"),
            stdout: stdout.into_bytes(),
            stderr: b"fake stderr\n".to_vec(),
            exit_code,
        })
    }

    async fn read_path(&self, _rootfs: &RootfsSpec, path: &str) -> Result<Bytes, RuntimeError> {
        Err(RuntimeError::PathNotFound { path: path.into() })
    }

    async fn build_image(
        &self,
        _rootfs: &RootfsSpec,
        _config: &ImageConfig,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        Ok(format!("fake-built:{tag}"))
    }

    async fn push(
        &self,
        _image_id: &str,
        _reference: &str,
        _auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        Ok(format!("sha256:{}", "1".repeat(64)))
    }

    async fn save_image(&self, image_id: &str, _reference: &str) -> Result<Bytes, RuntimeError> {
        Ok(Bytes::from(image_id.to_owned()))
    }

    async fn load_image(&self, tarball: Bytes) -> Result<PulledImage, RuntimeError> {
        Ok(PulledImage {
            image_id: String::from_utf8_lossy(&tarball).into_owned(),
            resolved_ref: String::new(),
            config: ImageConfig::default(),
        })
    }

    async fn image_exists(&self, _image_id: &str) -> Result<bool, RuntimeError> {
        Ok(true)
    }

    async fn remove_images(&self, _images: &[String]) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn remove_orphans(&self) -> Result<usize, RuntimeError> {
        Ok(0)
    }
}
