//! `FakeRuntime`: an in-memory runtime for solver tests. It counts calls and
//! interprets a tiny command language instead of running anything:
//! `echo WORDS…` prints, `fail N` exits N (`fail-loud N` printing first), `sleep-ms N` waits, `pieces
//! A B…` prints each word as a separate write (no separators), and any
//! other command prints its own arguments. Output goes to the spec's
//! `OutputSink` as well, as a runtime streams it.
//!
//! Services (`start_container`) speak their own: `serve PORT…` listens on
//! each TCP port at a loopback address of its own until signalled,
//! `serve-after MS PORT…` listens only after a while, `exit N TEXT…` exits
//! at once with code N and TEXT on stdout, `exit-after MS N` runs a while
//! and then exits N. `listen_on_step_network` binds loopback ports too.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt as _;
use tokio::sync::watch;

use crate::runtime::{
    ContainerControl, ContainerExit, ExecOutput, ExecSpec, ImageConfig, NetworkSpec, OutputStream,
    PulledImage, RegistryAuth, RootfsSpec, Runtime, RuntimeError, StartedContainer,
    StepNetworkListener, TerminalIo,
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
    /// Every exec's network spec, in order.
    pub networks: Mutex<Vec<NetworkSpec>>,
    /// Services started, and how many of them have stopped.
    pub service_starts: AtomicUsize,
    pub service_stops: Arc<AtomicUsize>,
    /// Every service's command line and network spec, in order.
    pub services: Mutex<Vec<(Vec<String>, NetworkSpec)>>,
    /// Every terminal's command line and base image, in order. A terminal
    /// prints its command line on its output and exits 0 at once.
    pub terminals: Mutex<Vec<(Vec<String>, Option<String>)>>,
    /// Whether each service, then each terminal, ran privileged, in order.
    pub privileged_services: Mutex<Vec<bool>>,
    pub privileged_terminals: Mutex<Vec<bool>>,
    /// Each terminal's nested session, in order: the port its
    /// `DAGGER_SESSION_PORT` names when it runs on the host's network.
    pub nested_terminals: Mutex<Vec<Option<String>>>,
}

/// Addresses handed out (the third and fourth bytes of 127.77.y.z), shared
/// by every fake runtime of the process: tests run side by side in one
/// process, and two fakes handing out one address would bind each other's
/// ports (a service then answered for another test's, and was gone when that
/// test ended).
static NEXT_ADDRESS: AtomicUsize = AtomicUsize::new(0);

impl FakeRuntime {
    pub fn execs(&self) -> usize {
        self.exec_count.load(Ordering::SeqCst)
    }

    /// How many services run now.
    pub fn services_running(&self) -> usize {
        self.service_starts.load(Ordering::SeqCst) - self.service_stops.load(Ordering::SeqCst)
    }

    /// A loopback address no other fake container of this process has.
    fn address(&self) -> IpAddr {
        let n = NEXT_ADDRESS.fetch_add(1, Ordering::SeqCst) + 1;
        // 127.0.0.0/8 is loopback on Linux: every address in it can be bound.
        IpAddr::V4(Ipv4Addr::new(127, 77, (n / 250) as u8, (n % 250 + 1) as u8))
    }
}

/// A fake service's control: signalling it makes it exit.
struct FakeControl {
    stop: watch::Sender<Option<i64>>,
}

#[async_trait]
impl ContainerControl for FakeControl {
    async fn signal(&self, kill: bool) -> Result<(), RuntimeError> {
        let _ = self.stop.send(Some(if kill { 137 } else { 143 }));
        Ok(())
    }
}

fn number(args: &[String], index: usize) -> u64 {
    args.get(index).and_then(|n| n.parse().ok()).unwrap_or(0)
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
        self.networks
            .lock()
            .expect("not poisoned")
            .push(spec.network.clone());
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
        let stderr = b"fake stderr\n".to_vec();
        let combined = [stdout.as_bytes(), &stderr].concat();
        Ok(ExecOutput {
            image_id: format!("fake-committed:{number}"),
            stdout: stdout.into_bytes(),
            stderr,
            combined: Some(combined),
            exit_code,
        })
    }

    async fn terminal(&self, spec: ExecSpec, io: TerminalIo) -> Result<i64, RuntimeError> {
        self.terminals
            .lock()
            .expect("not poisoned")
            .push((spec.args.clone(), spec.rootfs.image_id.clone()));
        self.privileged_terminals
            .lock()
            .expect("not poisoned")
            .push(spec.privileged);
        let port = spec
            .env
            .iter()
            .find_map(|entry| entry.strip_prefix("DAGGER_SESSION_PORT="));
        self.nested_terminals.lock().expect("not poisoned").push(
            spec.host_network
                .then(|| port.unwrap_or_default().to_owned()),
        );
        let _ = io.output.send(Bytes::from(spec.args.join(" "))).await;
        Ok(0)
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

    fn check_services(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn start_container(&self, spec: ExecSpec) -> Result<StartedContainer, RuntimeError> {
        self.service_starts.fetch_add(1, Ordering::SeqCst);
        self.services
            .lock()
            .expect("not poisoned")
            .push((spec.args.clone(), spec.network.clone()));
        self.privileged_services
            .lock()
            .expect("not poisoned")
            .push(spec.privileged);
        let address = self.address();
        let args = spec.args;
        let (stop, mut stopped) = watch::channel(None::<i64>);
        let stops = self.service_stops.clone();
        let command = args.first().cloned().unwrap_or_default();
        let (delay, ports) = match command.as_str() {
            "serve" => (0, &args[1..]),
            "serve-after" => (number(&args, 1), args.get(2..).unwrap_or_default()),
            _ => (0, &[][..]),
        };
        let ports: Vec<u16> = ports.iter().filter_map(|p| p.parse().ok()).collect();
        let exited = async move {
            let exit = match command.as_str() {
                "exit" => ContainerExit {
                    exit_code: Some(number(&args, 1) as i64),
                    stdout: format!("{}\n", args.get(2..).unwrap_or_default().join(" ")).into_bytes(),
                    stderr: b"fake service failed\n".to_vec(),
                    error: None,
                },
                _ => {
                    let mut listeners = Vec::new();
                    let mut refused = None;
                    let serve = async {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        for port in &ports {
                            match tokio::net::TcpListener::bind((address, *port)).await {
                                Ok(listener) => listeners.push(listener),
                                // As a real server would: it says why and exits.
                                Err(error) => {
                                    refused = Some(format!("fake service: binding {address}:{port}: {error}\n"));
                                    return Some(1);
                                }
                            }
                        }
                        if command == "exit-after" {
                            tokio::time::sleep(Duration::from_millis(number(&args, 1))).await;
                            return Some(number(&args, 2) as i64);
                        }
                        std::future::pending::<Option<i64>>().await
                    };
                    let code = tokio::select! {
                        code = serve => code,
                        signal = stopped.wait_for(Option::is_some) => signal.map_or(None, |code| *code),
                    };
                    drop(listeners);
                    ContainerExit {
                        exit_code: code,
                        stderr: refused.unwrap_or_default().into_bytes(),
                        ..ContainerExit::default()
                    }
                }
            };
            stops.fetch_add(1, Ordering::SeqCst);
            exit
        }
        .boxed()
        .shared();
        // Run it even when nobody waits, as a real process would.
        tokio::spawn(exited.clone());
        Ok(StartedContainer {
            address,
            exited,
            control: Box::new(FakeControl { stop }),
        })
    }

    async fn listen_on_step_network(
        &self,
        ports: &[u16],
    ) -> Result<StepNetworkListener, RuntimeError> {
        let address = self.address();
        let listeners = ports
            .iter()
            .map(|port| std::net::TcpListener::bind((address, *port)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| RuntimeError::Failed {
                action: "binding fake host service ports".into(),
                reason: error.to_string(),
            })?;
        Ok(StepNetworkListener {
            address,
            listeners,
            guard: Box::new(()),
        })
    }
}
