//! `Runtime::exec`: one command in a fresh container, its output captured, its
//! filesystem committed.

use std::collections::{HashMap, HashSet};

use bollard::container::{AttachContainerResults, LogOutput};
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig, Mount, MountTypeEnum};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CommitContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;
use gantry_core::runtime::{ExecOutput, ExecSpec, OutputSink, OutputStream, RuntimeError};
use tokio::io::AsyncWriteExt;

use crate::error::{message, runtime_error, Operation};
use crate::reference::split_tag;
use crate::{DockerRuntime, LABEL_MANAGED};

/// A container about to be created: `DockerRuntime::prepare`.
pub(crate) struct Prepared {
    pub(crate) body: ContainerCreateBody,
    /// Holds the secret variables file until the container has started.
    pub(crate) secret_env: Option<SecretEnv>,
    pub(crate) base: String,
}

/// Captured output beyond this many bytes per stream is dropped (and a warning logged):
/// the result lives in memory and in the cache.
const MAX_CAPTURE: usize = gantry_core::runtime::OUTPUT_CAP;

impl DockerRuntime {
    /// Starts a created container, then deletes the host files that held its
    /// secrets: the container has its bind mounts now (or never will), so no
    /// secret value outlives the start on the host, whatever happens next.
    pub(crate) async fn start_forgetting_secrets(
        &self,
        name: &str,
        remove_after_start: &[String],
        secret_env: Option<&SecretEnv>,
    ) -> Result<(), bollard::errors::Error> {
        let started = self
            .docker
            .start_container(name, None::<StartContainerOptions>)
            .await;
        for path in remove_after_start {
            let _ = std::fs::remove_file(path);
        }
        if let Some(secret_env) = secret_env {
            secret_env.remove_file();
        }
        started
    }

    /// `Runtime::exec`.
    pub(crate) async fn run(&self, spec: ExecSpec) -> Result<ExecOutput, RuntimeError> {
        let failed = |reason: &str| RuntimeError::Failed {
            action: "running a command".to_owned(),
            reason: reason.to_owned(),
        };
        if spec.args.is_empty() {
            return Err(failed("the command line is empty"));
        }
        let has_stdin = spec.stdin.is_some();
        let Prepared {
            mut body,
            secret_env,
            base,
        } = self.prepare(&spec, has_stdin).await?;
        let base_config = self.inspect_config(&base).await?;
        self.join_for(&mut body, &spec).await?;
        tracing::debug!(
            args = spec.args.len(),
            env = spec.env.len(),
            mounts = spec.mounts.len(),
            tmpfs = spec.tmpfs.len(),
            stdin = has_stdin,
            "creating container"
        );
        let container = self.create_container(body).await?;
        let name = container.name().to_owned();
        self.apply_layers(&name, &spec.rootfs.layers).await?;

        // Attaching before the start is what guarantees that nothing a fast command
        // prints is missed, whatever logging driver the daemon uses.
        let attach_options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdin(has_stdin)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = self
            .docker
            .attach_container(&name, Some(attach_options))
            .await
            .map_err(|error| other("attaching to a container", &error))?;

        let started = self
            .start_forgetting_secrets(&name, &spec.remove_after_start, secret_env.as_ref())
            .await;
        let (output, exit_code) = match started {
            Ok(()) => {
                let AttachContainerResults { output, input } = attached;
                // stdin is fed while the output is collected (a command may fill its
                // output pipe before reading all its input) and until the command has
                // exited: its output may end earlier, and once it has exited dockerd
                // stops reading stdin, so a command ignoring a large input would leave
                // the write blocked forever.
                let mut feed = std::pin::pin!(feed_stdin(input, spec.stdin));
                let output = tokio::select! {
                    output = collect_output(output, MAX_CAPTURE, &spec.output) => output
                        .map_err(|error| other("reading a container's output", &error))?,
                    never = &mut feed => match never {},
                };
                let exit_code = tokio::select! {
                    exit_code = wait_exit(&self.docker, &name) => exit_code?,
                    never = &mut feed => match never {},
                };
                (output, exit_code)
            }
            Err(error) if secret_env.is_some() && message(&error).contains(SECRET_ENV_SHELL) => {
                return Err(failed(&format!(
                    "secret variables need {SECRET_ENV_SHELL} in the container, which has none: \
                     gantry passes them through a shell so that their values stay out of the \
                     container's configuration and the committed image; mount the secret as a \
                     file with withMountedSecret instead ({})",
                    message(&error)
                )));
            }
            Err(error) => match exec_failure_code(&error) {
                // The process never ran (no such executable, not executable): report it
                // the way a shell would rather than as a runtime failure.
                Some(code) => {
                    drop(attached);
                    let mut stderr = message(&error).into_bytes();
                    stderr.push(b'\n');
                    let output = Captured {
                        combined: stderr.clone(),
                        stderr,
                        ..Default::default()
                    };
                    (output, code)
                }
                None => return Err(other("starting a container", &error)),
            },
        };
        tracing::debug!(
            exit_code,
            stdout = output.stdout.len(),
            stderr = output.stderr.len(),
            "command finished"
        );

        // A command that changed no file (most test and check steps) needs no
        // commit: asking dockerd for the changes costs a fraction of one, and
        // the base image, tagged for this step, is the result.
        let image_id = if spec.rootfs.layers.is_empty() && self.unchanged(&name).await {
            let (repo, tag) = split_tag(&spec.commit_tag);
            self.tag(&base, &repo, &tag).await?;
            tracing::debug!(container = %name, image = %base, "no changes; base image reused");
            base.clone()
        } else {
            // The committed configuration is the base's, not the container's: the
            // container's holds `spec.env` (see `exec_commit_config`).
            let config = exec_commit_config(base_config.as_ref(), &spec.env);
            self.commit(&name, &spec.commit_tag, config).await?
        };
        if let Err(error) = container.remove().await {
            tracing::warn!(container = %name, %error, "cannot remove container");
        }
        drop(secret_env);
        Ok(ExecOutput {
            image_id,
            stdout: output.stdout,
            stderr: output.stderr,
            combined: Some(output.combined),
            exit_code,
        })
    }

    /// The container `spec` runs in (not yet created), with the secret
    /// variables file it mounts, and its base image.
    pub(crate) async fn prepare(
        &self,
        spec: &ExecSpec,
        has_stdin: bool,
    ) -> Result<Prepared, RuntimeError> {
        // Secret variables travel in a tmpfs file that /bin/sh sources (see `SecretEnv`).
        let secret_env = if spec.secret_env.is_empty() {
            None
        } else {
            Some(SecretEnv::write(&spec.secret_env)?)
        };
        let mut mounts = spec.mounts.clone();
        let mut args = spec.args.clone();
        if let Some(secret_env) = &secret_env {
            mounts.push(gantry_core::runtime::BindMount {
                host_path: secret_env.host_path(),
                container_path: SECRET_ENV_PATH.to_owned(),
                read_only: true,
            });
            args = SecretEnv::wrap(&spec.args);
        }
        // `Mounts`, not the older `Binds` strings: for a bind source that is missing when
        // the container starts, `Binds` makes an empty directory on the host and mounts that
        // (a secret file unlinked early would become an empty directory in the container,
        // and a stopped engine's tmpfs directory would come back after its sweep), where
        // `Mounts` refuses to start. Paths may hold ':' too.
        let mounts: Vec<Mount> = mounts
            .iter()
            .map(|mount| Mount {
                typ: Some(MountTypeEnum::BIND),
                source: Some(mount.host_path.clone()),
                target: Some(mount.container_path.clone()),
                read_only: Some(mount.read_only),
                ..Default::default()
            })
            .collect();
        // Docker mounts tmpfs `noexec` by default; build steps run binaries from /tmp.
        let tmpfs: HashMap<String, String> = spec
            .tmpfs
            .iter()
            .map(|tmpfs| {
                let options = match tmpfs.size {
                    Some(size) => format!("exec,size={size}"),
                    None => "exec".to_owned(),
                };
                (tmpfs.path.clone(), options)
            })
            .collect();

        let base = self.base_image(&spec.rootfs).await?;
        let body = ContainerCreateBody {
            image: Some(base.clone()),
            cmd: Some(args),
            // Explicitly empty: the solver has already prepended the image's entrypoint
            // when the command asked for it.
            entrypoint: Some(Vec::new()),
            env: Some(spec.env.clone()),
            working_dir: Some(spec.workdir.clone()).filter(|w| !w.is_empty()),
            user: Some(spec.user.clone()).filter(|u| !u.is_empty()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            attach_stdin: Some(has_stdin),
            open_stdin: Some(has_stdin),
            stdin_once: Some(has_stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            host_config: Some(HostConfig {
                mounts: Some(mounts).filter(|m| !m.is_empty()),
                tmpfs: Some(tmpfs).filter(|t| !t.is_empty()),
                ..privileges(spec.privileged)
            }),
            ..Default::default()
        };
        Ok(Prepared {
            body,
            secret_env,
            base,
        })
    }

    /// Whether a stopped container's filesystem is exactly its image's. Any
    /// doubt (an error) answers no, which costs only a commit.
    async fn unchanged(&self, name: &str) -> bool {
        match self.docker.container_changes(name).await {
            Ok(changes) => changes.is_none_or(|changes| changes.is_empty()),
            Err(error) => {
                tracing::debug!(container = %name, %error, "cannot list changes; committing");
                false
            }
        }
    }

    /// Commits a container as `tag` (`repo:tag`) and returns the image ID.
    pub(crate) async fn commit(
        &self,
        container: &str,
        tag: &str,
        config: ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let (repo, tag) = split_tag(tag);
        let options = CommitContainerOptionsBuilder::new()
            .container(container)
            .repo(&repo)
            .tag(&tag)
            .pause(false)
            .build();
        let response = self
            .docker
            .commit_container(options, config)
            .await
            .map_err(|error| other("committing a container", &error))?;
        let image_id = response.id;
        tracing::debug!(container, image = %image_id, "container committed");
        Ok(image_id)
    }
}

/// Waits until a started container has exited; returns its exit code.
pub(crate) async fn wait_exit(docker: &Docker, name: &str) -> Result<i64, RuntimeError> {
    let options = WaitContainerOptionsBuilder::new()
        .condition("not-running")
        .build();
    let mut wait = docker.wait_container(name, Some(options));
    match wait.next().await {
        Some(Ok(response)) => Ok(response.status_code),
        // bollard turns every non-zero exit into this error.
        Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(error)) => Err(other("waiting for a container", &error)),
        None => Err(RuntimeError::Failed {
            action: "waiting for a container".to_owned(),
            reason: "dockerd ended the wait without an exit status".to_owned(),
        }),
    }
}

/// A privileged step's host config (`ExecSpec::privileged`): every
/// capability Docker knows but those the engine's bounding set lacks, no
/// seccomp, AppArmor or masked `/proc` paths, every device allowed. Not
/// Docker's `privileged: true`, which asks for every capability and so
/// fails to start where dockerd itself lacks one (Docker 20.10); nor the
/// engine's set by name, which an older Docker refuses for names it does not
/// know (`CAP_PERFMON`).
fn privileges(privileged: bool) -> HostConfig {
    if !privileged {
        return HostConfig::default();
    }
    let held = gantry_core::runtime::privileged_capabilities();
    HostConfig {
        cap_add: Some(vec!["ALL".to_owned()]),
        cap_drop: Some(
            gantry_core::runtime::CAPABILITIES
                .into_iter()
                .filter(|name| !held.contains(name))
                .map(str::to_owned)
                .collect(),
        )
        .filter(|dropped: &Vec<String>| !dropped.is_empty()),
        security_opt: Some(
            ["seccomp=unconfined", "apparmor=unconfined"]
                .map(str::to_owned)
                .to_vec(),
        ),
        // Empty, not absent: nothing of /proc masked or read-only (the CLI's
        // `--security-opt systempaths=unconfined`).
        masked_paths: Some(Vec::new()),
        readonly_paths: Some(Vec::new()),
        device_cgroup_rules: Some(vec!["a *:* rwm".to_owned()]),
        ..HostConfig::default()
    }
}

pub(crate) fn other(action: &'static str, error: &BollardError) -> RuntimeError {
    runtime_error(Operation::Other { action }, error)
}

/// The exit code a shell reports when it cannot run a command, for the start errors
/// that mean exactly that: 127 for not found, 126 for not executable.
pub(crate) fn exec_failure_code(error: &BollardError) -> Option<i64> {
    let BollardError::DockerResponseServerError { message, .. } = error else {
        return None;
    };
    // runc: `exec: "nonexistent-cmd": executable file not found in $PATH`,
    // `exec: "/x": stat /x: no such file or directory`, `exec: "/etc": permission denied`.
    if !message.contains("exec: \"") {
        return None;
    }
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        Some(127)
    } else if message.contains("permission denied") {
        Some(126)
    } else {
        None
    }
}

/// What `docker commit` should record for an exec container.
///
/// dockerd merges the container's configuration into whatever is passed here: every env
/// key and label of the container that the passed configuration lacks is appended with
/// the container's value. Passing the base image's configuration plus an empty value for
/// every key only the command had keeps the command's values out of the image config
/// (the key names remain, empty); dockerd still records the container's own
/// configuration as the image's `container_config`, which is why secrets never enter it
/// (see `SecretEnv`). The solver owns the image configuration anyway; the committed one
/// only matters as dockerd's defaults for later containers.
fn exec_commit_config(
    base: Option<&bollard::models::ImageConfig>,
    spec_env: &[String],
) -> ContainerConfig {
    let mut env = base.and_then(|b| b.env.clone()).unwrap_or_default();
    let mut known: HashSet<String> = env.iter().map(|e| env_name(e).to_owned()).collect();
    for entry in spec_env {
        let name = env_name(entry);
        if known.insert(name.to_owned()) {
            env.push(format!("{name}="));
        }
    }
    ContainerConfig {
        env: Some(env),
        cmd: Some(base.and_then(|b| b.cmd.clone()).unwrap_or_default()),
        entrypoint: Some(base.and_then(|b| b.entrypoint.clone()).unwrap_or_default()),
        working_dir: Some(base.and_then(|b| b.working_dir.clone()).unwrap_or_default()),
        user: Some(base.and_then(|b| b.user.clone()).unwrap_or_default()),
        labels: Some(HashMap::from([(
            LABEL_MANAGED.to_owned(),
            "true".to_owned(),
        )])),
        ..Default::default()
    }
}

/// Where the secret variables file is bind-mounted: under `/dev`, which Docker mounts as
/// a tmpfs of its own, so not even an empty mount point reaches the committed image.
const SECRET_ENV_PATH: &str = "/dev/.gantry-secret-env";
/// The shell that sources it; every image with a shell has one here.
const SECRET_ENV_SHELL: &str = "/bin/sh";
/// The secret variables of one exec, written as `export NAME='value'` lines to a file on
/// the host's tmpfs (`gantry_core::files::SECRET_FILES_DIR`, in a directory only root can
/// enter), unlinked as soon as the container has started and removed when dropped.
///
/// Why not the container's `Env`: dockerd copies a container's configuration, `Env`
/// included, into every image committed from it (the image's `container_config`), and
/// keeps it on disk for the container's lifetime. Instead the command runs as
/// `/bin/sh -c '. FILE && exec "$@"' sh ARGS…`: the shell reads the file and replaces
/// itself with the command, which then has the variables and nothing else differs.
pub(crate) struct SecretEnv {
    dir: std::path::PathBuf,
}

impl SecretEnv {
    fn write(secret_env: &[String]) -> Result<Self, RuntimeError> {
        use std::io::Write as _;
        let failed = |reason: String| RuntimeError::Failed {
            action: "passing secret variables".to_owned(),
            reason,
        };
        let mut script = String::new();
        for entry in secret_env {
            let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
                && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
            if !valid {
                return Err(failed(format!(
                    "{name:?} is not a valid environment variable name (letters, digits and _, not starting with a digit)"
                )));
            }
            script.push_str(&format!(
                "export {name}='{}'\n",
                value.replace('\'', r"'\''")
            ));
        }
        let dir = gantry_core::files::create_secret_dir()
            .map_err(|error| failed(format!("creating a directory for them: {error}")))?;
        let guard = SecretEnv { dir };
        // Readable by any user in the container (the command may run as non-root); the
        // directory above keeps other users of the host out.
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(guard.file())
            .map_err(|error| failed(format!("writing the secret variables file: {error}")))?;
        file.write_all(script.as_bytes())
            .map_err(|error| failed(format!("writing the secret variables file: {error}")))?;
        Ok(guard)
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.join("env")
    }

    /// Unlinks the file (the container keeps it through its bind mount).
    pub(crate) fn remove_file(&self) {
        let _ = std::fs::remove_file(self.file());
    }

    fn host_path(&self) -> String {
        self.file().to_string_lossy().into_owned()
    }

    /// `args` run through the shell that sources the variables first.
    fn wrap(args: &[String]) -> Vec<String> {
        let mut wrapped = vec![
            SECRET_ENV_SHELL.to_owned(),
            "-c".to_owned(),
            format!(". {SECRET_ENV_PATH} && exec \"$@\""),
            "sh".to_owned(),
        ];
        wrapped.extend(args.iter().cloned());
        wrapped
    }
}

impl Drop for SecretEnv {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot remove a secret variables file");
        }
    }
}

pub(crate) fn env_name(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(name, _)| name)
}

#[derive(Default)]
pub(crate) struct Captured {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    /// Both streams in the order the frames arrived.
    pub(crate) combined: Vec<u8>,
}

/// Writes `stdin` to the container, then closes it; never completes, so that the write
/// half (and the connection) stays open for as long as the caller polls it.
async fn feed_stdin(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    stdin: Option<Bytes>,
) -> std::convert::Infallible {
    if let Some(data) = stdin {
        // A command may exit without reading its input; that is its business.
        if let Err(error) = input.write_all(&data).await {
            tracing::debug!(%error, "container stopped reading stdin");
        }
        if let Err(error) = input.shutdown().await {
            tracing::debug!(%error, "cannot close container stdin");
        }
    }
    std::future::pending().await
}

/// Collects stdout and stderr until the container's output streams end,
/// the first `cap` bytes of each, handing every piece to `live` as it comes.
pub(crate) async fn collect_output(
    mut output: std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<LogOutput, BollardError>> + Send>,
    >,
    cap: usize,
    live: &OutputSink,
) -> Result<Captured, BollardError> {
    let mut captured = Captured::default();
    let mut dropped = (0usize, 0usize);
    while let Some(item) = output.next().await {
        let (buffer, lost, message, stream) = match item? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => (
                &mut captured.stdout,
                &mut dropped.0,
                message,
                OutputStream::Stdout,
            ),
            LogOutput::StdErr { message } => (
                &mut captured.stderr,
                &mut dropped.1,
                message,
                OutputStream::Stderr,
            ),
            LogOutput::StdIn { .. } => continue,
        };
        // Live output is not capped: it is passed on, not kept.
        live.write(stream, &message);
        let keep = cap.saturating_sub(buffer.len()).min(message.len());
        buffer.extend_from_slice(&message[..keep]);
        *lost += message.len() - keep;
        let room = (2 * MAX_CAPTURE).saturating_sub(captured.combined.len());
        captured
            .combined
            .extend_from_slice(&message[..keep.min(room)]);
    }
    if dropped != (0, 0) {
        tracing::warn!(
            stdout_dropped = dropped.0,
            stderr_dropped = dropped.1,
            limit = cap,
            "command output exceeded the capture limit"
        );
    }
    Ok(captured)
}
