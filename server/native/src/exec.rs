//! `Runtime::exec`: one command on an overlay of its image, its upper directory
//! becoming its snapshot.
//!
//! Per step: mount (the image's layers, the init skeleton, a fresh upper directory),
//! apply pending layers, resolve the user (meanwhile, take a network namespace made
//! ahead: `network`), write the spec
//! to the run directory (tmpfs), run `RUNTIME run` inside gantry's cgroup with stdout
//! and stderr on pipes, then tear down and keep the upper directory as a new layer (or
//! nothing, when the command changed no file). A [`Step`] guard undoes everything if
//! the exec is cancelled midway.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use gantry_core::runtime::{
    ExecOutput, ExecSpec, OutputSink, OutputStream, RuntimeError, TerminalInput, TerminalIo,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::{failed, Error};
use crate::network::StepNetwork;
use crate::overlay::{Layers, OverlayMount};
use crate::spec::{self, Bind, StepSpec};
use crate::store::{remove_tree, ImageRecord, Store};
use crate::{image, oci, pty, user, Inner};

/// Captured output beyond this many bytes per stream is dropped (and a warning logged):
/// the result lives in memory and in the cache.
const MAX_CAPTURE: usize = gantry_core::runtime::OUTPUT_CAP;
const HOSTNAME: &str = "gantry";

/// Everything one step holds; dropping it (cancellation) releases all of it.
pub(crate) struct Step {
    inner: Arc<Inner>,
    pub(crate) id: String,
    /// `ROOT/tmp/<…>`: `upper/`, `work/`.
    scratch: PathBuf,
    /// The run directory of the step (spec, hosts files, mount point).
    pub(crate) dir: PathBuf,
    mount: Option<OverlayMount>,
    pub(crate) network: Option<StepNetwork>,
    cgroup: Option<String>,
    /// The runtime was started: its container may need deleting.
    pub(crate) started: bool,
}

impl Step {
    fn upper(&self) -> PathBuf {
        self.scratch.join("upper")
    }

    fn leftovers(&mut self) -> Leftovers {
        Leftovers {
            inner: self.inner.clone(),
            id: self.id.clone(),
            mount: self.mount.take(),
            network: self.network.take(),
            cgroup: self.cgroup.take(),
            started: std::mem::replace(&mut self.started, false),
        }
    }

    /// Tears down in order: processes, container state, cgroup, network, mount, and
    /// the step's run directory (so that a step that returned has no trace there).
    async fn release(&mut self) {
        // The namespace is not needed for the snapshot: deleted off the step's path.
        if let (Some(network), Some(net)) = (self.inner.network.as_ref(), self.network.take()) {
            network.release_later(net);
        }
        let leftovers = self.leftovers();
        let dir = std::mem::take(&mut self.dir);
        let _ = tokio::task::spawn_blocking(move || {
            if leftovers.needed() {
                leftovers.release();
            }
            remove_tree(&dir);
        })
        .await;
    }
}

/// What a step still holds, released without any async runtime (a cancelled step
/// is released on a thread of its own, which works even while the runtime shuts down).
struct Leftovers {
    inner: Arc<Inner>,
    id: String,
    mount: Option<OverlayMount>,
    network: Option<StepNetwork>,
    cgroup: Option<String>,
    started: bool,
}

impl Leftovers {
    fn needed(&self) -> bool {
        self.started || self.cgroup.is_some() || self.network.is_some() || self.mount.is_some()
    }

    fn release(mut self) {
        if self.started {
            self.inner.oci.destroy(&self.inner.run.oci_root(), &self.id);
        }
        if let Some(cgroup) = self.cgroup.take() {
            if self.started {
                // Cancelled: its processes must be gone before the mount goes.
                self.inner.cgroups.kill_and_remove(&cgroup);
            } else {
                // The runtime exited, and the container with it (its PID namespace
                // ended with its init). Removing cgroups costs up to ~100 ms per v1
                // hierarchy (the memory controller waits for RCU): off the step's path.
                let cgroups = self.inner.cgroups.clone();
                let spawned = std::thread::Builder::new()
                    .name("gantry-cgroup-cleanup".into())
                    .spawn(move || cgroups.kill_and_remove(&cgroup));
                if let Err(error) = spawned {
                    tracing::warn!(%error, "cannot start a thread to remove a step's cgroup");
                }
            }
        }
        if let (Some(network), Some(net)) = (self.inner.network.as_ref(), self.network.take()) {
            network.release(net);
        }
        if let Some(mount) = self.mount.take() {
            if let Err(error) = mount.unmount() {
                tracing::warn!(%error, "cannot unmount a step's root filesystem");
            }
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        let leftovers = self.leftovers();
        let scratch = std::mem::take(&mut self.scratch);
        let dir = std::mem::take(&mut self.dir);
        let cleanup = move || {
            if leftovers.needed() {
                tracing::debug!(step = %leftovers.id, "cleaning up a cancelled step");
                leftovers.release();
            }
            remove_tree(&scratch);
            remove_tree(&dir);
        };
        // Cancelled midway, processes may need killing: not on the caller's thread.
        if let Err(error) = std::thread::Builder::new()
            .name("gantry-step-cleanup".into())
            .spawn(cleanup)
        {
            tracing::warn!(%error, "cannot start a thread to clean up a step");
        }
    }
}

/// How long each phase of a step took (milliseconds), logged and recorded in the run
/// directory's `timings` file for the benchmarks.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Timings {
    prepare_ms: f64,
    network_ms: f64,
    spec_ms: f64,
    /// `start_ms` + `wait_ms`.
    run_ms: f64,
    /// From spawning the OCI runtime to the command's start (its pid file written):
    /// the runtime's own start-up, namespaces, mounts, the container's init.
    start_ms: Option<f64>,
    /// The rest of the run: the command itself, its exit, the runtime deleting the
    /// container.
    wait_ms: Option<f64>,
    teardown_ms: f64,
    commit_ms: f64,
    total_ms: f64,
    cpu_ms: Option<f64>,
    memory_peak_bytes: Option<u64>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// A step ready to run: its root filesystem mounted, its network, cgroup and spec in
/// place.
pub(crate) struct SetUp {
    pub(crate) step: Step,
    pub(crate) id: String,
    base_id: Option<String>,
    base_layers: Vec<String>,
    cgroup: String,
    /// The `cgroup.procs` files the runtime process joins.
    procs: Vec<PathBuf>,
    /// The OCI runtime's own errors (JSON lines).
    pub(crate) log: PathBuf,
}

/// Everything before the OCI runtime starts; `terminal`: the process gets a TTY.
pub(crate) async fn set_up(
    inner: &Arc<Inner>,
    spec: &ExecSpec,
    terminal: bool,
    timings: &mut Timings,
) -> Result<SetUp, RuntimeError> {
    let action = "running a command";
    if spec.args.is_empty() {
        return Err(RuntimeError::Failed {
            action: action.to_owned(),
            reason: "the command line is empty".to_owned(),
        });
    }
    let id = inner.next_id();
    let scratch = inner.store.scratch("step").map_err(failed(action))?;
    let dir = inner.run.step_dir(&id);
    let mut step = Step {
        inner: inner.clone(),
        id: id.clone(),
        scratch,
        dir,
        mount: None,
        network: None,
        cgroup: None,
        started: false,
    };

    // Mount and populate the root filesystem, resolve the user; meanwhile, take a
    // network namespace (one made ahead, usually).
    let base_id = spec.rootfs.image_id.clone();
    let prepared = async {
        let phase = Instant::now();
        let inner = inner.clone();
        let scratch = step.scratch.clone();
        let dir = step.dir.clone();
        let layers = spec.rootfs.layers.clone();
        let user_spec = spec.user.clone();
        let base = base_id.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            prepare(&inner, base.as_deref(), &layers, &scratch, &dir, &user_spec)
        })
        .await
        .map_err(|error| RuntimeError::Failed {
            action: action.to_owned(),
            reason: error.to_string(),
        });
        (outcome, ms(phase))
    };
    let network = async {
        let phase = Instant::now();
        // On the host's network (`host_network`): no namespace of its own.
        let outcome = match &inner.network {
            Some(network) if !spec.host_network => {
                Some(network.take().await.map_err(failed(action)))
            }
            _ => None,
        };
        (outcome, ms(phase))
    };
    let ((prepared, prepare_ms), (network, network_ms)) = tokio::join!(prepared, network);
    timings.prepare_ms = prepare_ms;
    timings.network_ms = network_ms;
    // Whatever failed, what the other half made is the step's: dropping it (the
    // `Step` guard) releases it.
    let (base_layers, exec_user) = match (prepared.and_then(|outcome| outcome), network.transpose())
    {
        (Ok((base_layers, mount, exec_user)), Ok(network)) => {
            step.mount = Some(mount);
            step.network = network;
            (base_layers, exec_user)
        }
        (Ok((_, mount, _)), Err(error)) => {
            step.mount = Some(mount);
            return Err(error);
        }
        (Err(error), Ok(network)) => {
            step.network = network;
            return Err(error);
        }
        (Err(error), Err(_)) => return Err(error),
    };

    let phase = Instant::now();
    let cgroup = format!("gantry/{}/{id}", inner.run.name);
    let procs = inner.cgroups.create(&cgroup).map_err(failed(action))?;
    step.cgroup = Some(cgroup.clone());
    let log = step.dir.join("log.json");
    write_bundle(inner, &step, spec, &exec_user, &cgroup, terminal)?;
    timings.spec_ms = ms(phase);

    Ok(SetUp {
        step,
        id,
        base_id,
        base_layers,
        cgroup,
        procs,
        log,
    })
}

impl SetUp {
    /// `RUNTIME run` for the step, in the step's cgroup from its start, so
    /// everything the runtime forks is accounted there.
    pub(crate) fn command(&self, inner: &Inner) -> tokio::process::Command {
        let mut command = tokio::process::Command::from(inner.oci.command(&self.procs));
        command
            .args(
                inner
                    .oci
                    .run_args(&inner.run.oci_root(), &self.log, &self.step.dir, &self.id),
            )
            .kill_on_drop(true);
        command
    }

    /// The files to delete once the container has started (see `remove_once_started`).
    pub(crate) fn secret_files(&self, spec: &ExecSpec) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = spec.remove_after_start.iter().map(PathBuf::from).collect();
        if !spec.secret_env.is_empty() {
            files.push(self.step.dir.join("config.json"));
        }
        files
    }
}

/// Deletes `files` once the runtime has written the step's pid file (the container
/// exists with its mounts in place, and the bind mounts keep the files for it), or
/// once the runtime has exited (`exited`).
async fn remove_once_started(
    dir: &Path,
    files: &[PathBuf],
    exited: &std::sync::atomic::AtomicBool,
) {
    if files.is_empty() {
        return;
    }
    wait_until_started(dir, exited).await;
    remove_files(files);
}

/// Waits until the runtime has written the step's pid file in `dir` (the container
/// exists with its mounts in place) or has exited (`exited`); true when the process
/// started.
pub(crate) async fn wait_until_started(dir: &Path, exited: &std::sync::atomic::AtomicBool) -> bool {
    let pid_file = dir.join(oci::PID_FILE);
    while !pid_file.exists() && !exited.load(std::sync::atomic::Ordering::Acquire) {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    pid_file.exists()
}

/// The exit code of the OCI runtime's process: its own, or 128 + the signal that
/// ended it, as a shell reports it.
pub(crate) fn exit_code(status: &std::process::ExitStatus) -> i64 {
    status.code().map_or_else(
        || 128 + i64::from(std::os::unix::process::ExitStatusExt::signal(status).unwrap_or(9)),
        i64::from,
    )
}

pub(crate) async fn run(inner: Arc<Inner>, spec: ExecSpec) -> Result<ExecOutput, RuntimeError> {
    let action = "running a command";
    let started = Instant::now();
    let mut timings = Timings::default();
    let set_up = set_up(&inner, &spec, false, &mut timings).await?;
    let after_start = set_up.secret_files(&spec);
    let mut command = set_up.command(&inner);
    let SetUp {
        mut step,
        id,
        base_id,
        base_layers,
        cgroup,
        procs: _,
        log,
    } = set_up;

    // Run.
    let phase = Instant::now();
    let spawned_at = std::time::SystemTime::now();
    command
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tracing::debug!(
        step = %id,
        args = spec.args.len(),
        env = spec.env.len(),
        mounts = spec.mounts.len(),
        tmpfs = spec.tmpfs.len(),
        stdin = spec.stdin.is_some(),
        "creating container"
    );
    let mut child = command.spawn().map_err(|source| {
        Error::io("starting the OCI runtime", &inner.oci.binary, source).into_runtime(action)
    })?;
    step.started = true;
    inner.run.count_created(&id);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let feed = async {
        if let (Some(mut input), Some(data)) = (stdin, spec.stdin.as_ref()) {
            // A command may exit without reading its input; that is its business.
            if let Err(error) = input.write_all(data).await {
                tracing::debug!(%error, "the command stopped reading stdin");
            }
            drop(input);
        }
    };
    // Secret files (and the spec, which holds secret variables) are needed only until
    // the container has started.
    let exited = std::sync::atomic::AtomicBool::new(false);
    let unlink = remove_once_started(&step.dir, &after_start, &exited);
    let wait = async {
        let status = child.wait().await;
        exited.store(true, std::sync::atomic::Ordering::Relaxed);
        status
    };
    let (out, err) = (
        capture(stdout, &spec.output, OutputStream::Stdout, MAX_CAPTURE),
        capture(stderr, &spec.output, OutputStream::Stderr, MAX_CAPTURE),
    );
    let (_, _, out, err, status) = tokio::join!(unlink, feed, out, err, wait);
    // Whatever happened, none of them outlives the run.
    remove_files(&after_start);
    let status = status.map_err(|source| {
        Error::io("waiting for the OCI runtime", &inner.oci.binary, source).into_runtime(action)
    })?;
    timings.run_ms = ms(phase);
    timings.start_ms = std::fs::metadata(step.dir.join(oci::PID_FILE))
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|at| at.duration_since(spawned_at).ok())
        .map(|took| took.as_secs_f64() * 1000.0);
    timings.wait_ms = timings.start_ms.map(|start| timings.run_ms - start);
    let (stdout, mut stderr) = (out?, err?);
    let mut exit_code = exit_code(&status);
    if let Some(reason) = crate::preamble::failure(exit_code, &stderr) {
        step.release().await;
        return Err(RuntimeError::Failed {
            action: action.to_owned(),
            reason,
        });
    }
    // The runtime's own failure (it logs one) is not the command's exit code.
    if let Some(message) = oci::logged_error(&log) {
        match oci::exec_failure_code(&message) {
            Some(code) => {
                exit_code = code;
                stderr = format!("{message}\n").into_bytes();
            }
            None => {
                step.release().await;
                return Err(RuntimeError::Failed {
                    action: action.to_owned(),
                    reason: format!("{}: {message}", inner.oci.flavor.name()),
                });
            }
        }
    }
    step.started = false; // `run` removes its container when the process exits

    let phase = Instant::now();
    let (cpu, memory) = inner.cgroups.usage(&cgroup);
    timings.cpu_ms = cpu.map(|ns| ns as f64 / 1e6);
    timings.memory_peak_bytes = memory;
    step.release().await;
    timings.teardown_ms = ms(phase);

    let phase = Instant::now();
    let image_id = {
        let inner = inner.clone();
        let upper = step.upper();
        let commit_tag = spec.commit_tag.clone();
        tokio::task::spawn_blocking(move || {
            commit(&inner, base_id.as_deref(), base_layers, &upper, &commit_tag)
        })
        .await
        .map_err(|error| RuntimeError::Failed {
            action: action.to_owned(),
            reason: error.to_string(),
        })?
        .map_err(failed("keeping a step's snapshot"))?
    };
    timings.commit_ms = ms(phase);
    drop(step);
    timings.total_ms = ms(started);
    tracing::debug!(
        exit_code,
        stdout = stdout.len(),
        stderr = stderr.len(),
        image = %image_id,
        timings = ?timings,
        "command finished"
    );
    inner
        .run
        .record_timings(&serde_json::to_string(&timings).expect("timings serialise"));
    Ok(ExecOutput {
        image_id,
        stdout,
        stderr,
        // Two pipes: the order between them is not known (combinedOutput
        // gives stdout then stderr).
        combined: None,
        exit_code,
    })
}

/// `Runtime::terminal`: `spec.args` on a TTY lent by the user's terminal (`io`), in
/// the state `spec` describes. Nothing is kept: the step's changes go with it.
pub(crate) async fn terminal(
    inner: Arc<Inner>,
    spec: ExecSpec,
    mut io: TerminalIo,
) -> Result<i64, RuntimeError> {
    let action = "running a terminal";
    let mut timings = Timings::default();
    let set_up = set_up(&inner, &spec, true, &mut timings).await?;
    let after_start = set_up.secret_files(&spec);
    let mut command = set_up.command(&inner);
    let SetUp { mut step, log, .. } = set_up;
    let pty = pty::Pty::open(io.size).map_err(failed(action))?;
    let stdio = |fd: &std::os::fd::OwnedFd| {
        fd.try_clone()
            .map(Stdio::from)
            .map_err(|source| Error::io("opening", Path::new("the pseudo-terminal"), source))
            .map_err(failed(action))
    };
    command
        .stdin(stdio(&pty.secondary)?)
        .stdout(stdio(&pty.secondary)?)
        .stderr(stdio(&pty.secondary)?);
    let mut child = command.spawn().map_err(|source| {
        Error::io("starting the OCI runtime", &inner.oci.binary, source).into_runtime(action)
    })?;
    step.started = true;
    inner.run.count_created(&step.id);
    let pid = child
        .id()
        .and_then(|pid| rustix::process::Pid::from_raw(pid as i32));
    // Only the runtime holds the secondary side now: when it exits, the copy ends.
    drop(pty.secondary);
    let primary = std::sync::Arc::new(pty.primary);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = pty::copy_out(
        primary.try_clone().map_err(|source| {
            Error::io("opening", Path::new("the pseudo-terminal"), source).into_runtime(action)
        })?,
        io.output.clone(),
        done.clone(),
    );
    drop(io.output);
    let exited = std::sync::atomic::AtomicBool::new(false);
    let unlink = async {
        remove_once_started(&step.dir, &after_start, &exited).await;
        // The runtime sizes the container's terminal from its own on SIGWINCH.
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::WINCH);
        }
    };
    let keys = async {
        while let Some(input) = io.input.recv().await {
            match input {
                TerminalInput::Data(data) => pty::write_in(&primary, &data),
                TerminalInput::Resize(size) => {
                    pty::resize(&*primary, size);
                    if let Some(pid) = pid {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::WINCH);
                    }
                }
            }
        }
        // The user's side detached: the shell gets its input closed.
        std::future::pending::<()>().await;
    };
    let wait = async {
        let status = child.wait().await;
        exited.store(true, std::sync::atomic::Ordering::Relaxed);
        status
    };
    let status = tokio::select! {
        (_, status) = async { tokio::join!(unlink, wait) } => status,
        () = keys => unreachable!("waits forever"),
    };
    remove_files(&after_start);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    let status = status.map_err(|source| {
        Error::io("waiting for the OCI runtime", &inner.oci.binary, source).into_runtime(action)
    })?;
    step.started = false; // `run` removes its container when the process exits
    let mut exit_code = exit_code(&status);
    if let Some(message) = oci::logged_error(&log) {
        match oci::exec_failure_code(&message) {
            Some(code) => exit_code = code,
            None => {
                step.release().await;
                return Err(RuntimeError::Failed {
                    action: action.to_owned(),
                    reason: format!("{}: {message}", inner.oci.flavor.name()),
                });
            }
        }
    }
    step.release().await;
    drop(step);
    Ok(exit_code)
}

/// Mounts the step's root filesystem: `init` over the image's layers (flattened when
/// too deep), a fresh upper directory, pending layers applied. Returns the base layers
/// the snapshot will sit on.
fn prepare(
    inner: &Inner,
    base: Option<&str>,
    layers: &[gantry_core::runtime::TarLayer],
    scratch: &Path,
    dir: &Path,
    user_spec: &str,
) -> Result<(Vec<String>, OverlayMount, user::ExecUser), RuntimeError> {
    let action = "preparing a step";
    let upper = scratch.join("upper");
    let work = scratch.join("work");
    let mountpoint = dir.join("rootfs");
    for path in [&upper, &work, &mountpoint] {
        std::fs::create_dir_all(path).map_err(|source| {
            Error::io("creating a directory", path, source).into_runtime(action)
        })?;
    }
    let base_layers = inner.mountable_layers(base, 1).map_err(failed(action))?;
    let mut lowers = vec![inner.store.init_dir()];
    lowers.extend(inner.lower_paths(&base_layers));
    let mount = OverlayMount::mount(
        Layers {
            lowers,
            upper: Some((&upper, &work)),
        },
        &inner.store.init_dir(),
        &mountpoint,
    )
    .map_err(failed(action))?;
    image::apply_layers(&mountpoint, layers).map_err(failed("copying files into a container"))?;
    let exec_user =
        user::resolve(&mountpoint, user_spec).map_err(|reason| RuntimeError::Failed {
            action: "starting a container".to_owned(),
            reason,
        })?;
    Ok((base_layers, mount, exec_user))
}

/// The spec and the files gantry bind-mounts, in the step's run directory.
fn write_bundle(
    inner: &Inner,
    step: &Step,
    exec: &ExecSpec,
    exec_user: &user::ExecUser,
    cgroup: &str,
    terminal: bool,
) -> Result<(), RuntimeError> {
    let action = "writing a step's spec";
    let write = |name: &str, data: &[u8]| {
        let path = step.dir.join(name);
        std::fs::write(&path, data)
            .map_err(|source| Error::io("writing", &path, source).into_runtime(action))
    };
    let address = step.network.as_ref().map(|n| n.address.as_str());
    let hostname = if exec.network.hostname.is_empty() {
        HOSTNAME
    } else {
        exec.network.hostname.as_str()
    };
    // No DNS server answers for services here: every name a step may resolve is an
    // `/etc/hosts` line (`service::hosts_file`), and the search domains go in its
    // `resolv.conf` for whatever it asks the host's name servers.
    let running = inner.services.names();
    let hosts = crate::service::hosts_file(address, hostname, &exec.network, &running);
    write("hosts", hosts.as_bytes())?;
    write("hostname", format!("{hostname}\n").as_bytes())?;
    let resolv = match &inner.network {
        Some(network) if !exec.host_network => network.resolv_conf().to_vec(),
        _ => std::fs::read("/etc/resolv.conf").unwrap_or_default(),
    };
    let named = !exec.network.hosts.is_empty()
        || !exec.network.aliases.is_empty()
        || !exec.network.hostname.is_empty()
        || !running.is_empty();
    let resolv = if named {
        crate::service::with_search_domains(&resolv, &exec.network.search)
    } else {
        resolv
    };
    write("resolv.conf", &resolv)?;

    let mut env = exec.env.clone();
    let has = |env: &[String], name: &str| {
        env.iter()
            .any(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == name)
    };
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", exec_user.home));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if terminal && !has(&env, "TERM") {
        env.push("TERM=xterm".to_owned()); // as Docker sets it for a TTY
    }
    // Secret variables go in the spec like the others: it lives on a tmpfs only and
    // is deleted with the step.
    for entry in &exec.secret_env {
        let name = entry.split_once('=').map_or(entry.as_str(), |(n, _)| n);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != name);
        env.push(entry.clone());
    }
    let mut binds: Vec<Bind> = ["hosts", "hostname", "resolv.conf"]
        .iter()
        .map(|name| Bind {
            source: step.dir.join(name),
            destination: format!("/etc/{name}"),
            read_only: false,
        })
        .collect();
    binds.extend(exec.mounts.iter().map(|mount| Bind {
        source: PathBuf::from(&mount.host_path),
        destination: mount.container_path.clone(),
        read_only: mount.read_only,
    }));
    let netns = step.network.as_ref().map(StepNetwork::path);
    let container_cgroup = format!("/{cgroup}/c");
    let cwd = if exec.workdir.is_empty() {
        "/"
    } else {
        exec.workdir.as_str()
    };
    let rootfs = step.dir.join("rootfs");
    let oci_spec = spec::build(&StepSpec {
        rootfs: &rootfs,
        args: &exec.args,
        env,
        cwd,
        user: exec_user,
        hostname,
        binds,
        tmpfs: &exec.tmpfs,
        netns: netns.as_deref(),
        cgroup: &container_cgroup,
        terminal,
        privileged: exec.privileged,
    })
    .map_err(failed(action))?;
    let json = serde_json::to_vec(&oci_spec).expect("specs serialise");
    write("config.json", &json)
}

/// Removes files, those already gone included.
pub(crate) fn remove_files(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

/// Reads a stream to its end, keeping at most `limit` bytes and handing every
/// piece to `live` as it arrives (live step output).
pub(crate) async fn capture(
    mut stream: impl tokio::io::AsyncRead + Unpin,
    live: &OutputSink,
    which: OutputStream,
    limit: usize,
) -> Result<Vec<u8>, RuntimeError> {
    let mut kept = Vec::new();
    let mut dropped = 0usize;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = stream
            .read(&mut buffer)
            .await
            .map_err(|error| RuntimeError::Failed {
                action: "reading a command's output".to_owned(),
                reason: error.to_string(),
            })?;
        if n == 0 {
            break;
        }
        // Live output is not capped: it is passed on as it comes, not kept.
        live.write(which, &buffer[..n]);
        let keep = limit.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buffer[..keep]);
        dropped += n - keep;
    }
    if dropped > 0 {
        tracing::warn!(dropped, limit, "command output exceeded the capture limit");
    }
    Ok(kept)
}

/// Keeps the upper directory as the step's layer; a step that changed nothing
/// yields its base image.
fn commit(
    inner: &Inner,
    base_id: Option<&str>,
    base_layers: Vec<String>,
    upper: &Path,
    tag: &str,
) -> Result<String, Error> {
    let unchanged = std::fs::read_dir(upper)
        .map_err(|source| Error::io("reading a step's changes", upper, source))?
        .next()
        .is_none();
    let id = match (unchanged, base_id) {
        (true, Some(base)) => base.to_owned(),
        _ => {
            let mut layers = base_layers;
            if !unchanged {
                let layer = Store::new_layer_id();
                inner.store.commit_layer(upper, &layer)?;
                layers.push(layer);
            }
            let record = ImageRecord {
                layers,
                config: None,
            };
            let id = record.derived_id();
            inner.store.put_image(&id, &record)?;
            id
        }
    };
    if !tag.is_empty() {
        inner.store.tag(tag, &id)?;
    }
    Ok(id)
}
