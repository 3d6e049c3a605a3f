//! `withExec`: run a command in the container and continue from its
//! filesystem. Allowed outcomes are cached persistently under the op's
//! cache key; failures are handed to every waiter and never cached.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{debug, info_span, Instrument};

use super::read::read_container_path;
use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, ExecFailure, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::events::{exec_name, StepEvent, StepState};
use crate::history::{self, StepInputs};
use crate::launch;
use crate::output::{LiveOutput, TAIL_LINES};
use crate::runtime::ExecOutput;
use crate::store::RecordKind;
use crate::terminal;
use crate::text::{expand_vars, scrub_secrets, tail as tail_of};
use crate::tree::{self, Entry, Tree};
use crate::value::{
    ContainerState, ExecRecord, FileValue, Kind, Layer, MountSource, Rootfs, SecretValue, Value,
};

/// The most output an exec error carries per stream.
const ERROR_OUTPUT_CAP: usize = 100 * 1024;

/// Which exit codes a `withExec` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Expect {
    #[default]
    Success,
    Failure,
    Any,
}

impl Expect {
    /// Dagger's rule: 128-191 (killed by a signal) always fails.
    pub(crate) fn allows(self, code: i64) -> bool {
        let signalled = (128..=191).contains(&code);
        match self {
            Expect::Success => code == 0,
            Expect::Failure => code != 0 && !signalled && (0..=255).contains(&code),
            Expect::Any => !signalled && (0..=255).contains(&code),
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Expect::Success => "success",
            Expect::Failure => "failure",
            Expect::Any => "any",
        }
    }
}

/// `withExec`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExecArgs {
    pub args: Vec<String>,
    pub use_entrypoint: bool,
    pub stdin: String,
    pub redirect_stdin: String,
    pub redirect_stdout: String,
    pub redirect_stderr: String,
    pub expect: Expect,
    pub expand: bool,
    /// Run with every root capability (the runtime's privileged mode).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_root_capabilities: bool,
    /// Give the command the API: a nested session of its own, on the
    /// host's network (`NestedSessions`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub experimental_privileged_nesting: bool,
}

/// `Container.withExec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithExec {
    pub parent: Digest,
    pub exec: ExecArgs,
}

impl Operation for WithExec {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        let exec = &self.exec;
        e.input(&self.parent)
            .strs(&exec.args)
            .bool(exec.use_entrypoint)
            .str(&exec.stdin)
            .str(&exec.redirect_stdin)
            .str(&exec.redirect_stdout)
            .str(&exec.redirect_stderr)
            .str(exec.expect.tag())
            .bool(exec.expand);
        // Written only when set, so every other exec keeps its digest.
        if exec.insecure_root_capabilities {
            e.str("insecure-root-capabilities");
        }
        if exec.experimental_privileged_nesting {
            e.str("experimental-privileged-nesting");
        }
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let record = run_exec(cx, call, &parent, &self.exec).await?;
        let mut state = state_after(cx, &parent, &record)?;
        state.key = Some(call.key);
        // Redirected output under a mount went into the mount during the
        // run (`PreparedMounts::write_output`); the rest becomes a layer.
        for (target, output) in redirects(&parent, &self.exec, &record)? {
            if state.mount_at(&target).is_none() {
                let layer = file_layer(cx, &target, output.as_bytes(), 0o644)?;
                state.rootfs.layers.push(layer);
            }
        }
        state.image_ref = None;
        state.exec = Some(record);
        Ok(Value::Container(Arc::new(state)))
    }
}

/// `parent` as the command of `record` left it: its filesystem, and its
/// writable directory mounts with what the command wrote there.
fn state_after(
    cx: &Context,
    parent: &ContainerState,
    record: &ExecRecord,
) -> Result<ContainerState> {
    let mut state = parent.clone();
    state.rootfs = Rootfs {
        image_id: Some(record.image_id.clone()),
        layers: Vec::new(),
    };
    for (path, content) in &record.mounts {
        let tree = crate::host::load_tree(cx.store.as_ref(), content)?;
        for mount in &mut state.mounts {
            if mount.path == *path {
                if let MountSource::Directory { read_only, .. } = mount.source {
                    mount.source = MountSource::Directory {
                        tree: tree.clone(),
                        read_only,
                    };
                }
            }
        }
    }
    Ok(state)
}

/// `--interactive`: a shell on the user's terminal in the state the failed
/// command left (its filesystem, mounts, environment and workdir), before
/// the step fails with `error` as it would have. A shell that cannot open
/// is logged, and the step fails as before.
async fn debug_failure(
    cx: &Context,
    parent: &ContainerState,
    exec: &ExecArgs,
    record: &ExecRecord,
    error: &Error,
) {
    if !cx.debug_failures.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let opened = async {
        let state = state_after(cx, parent, record)?;
        let cmd = terminal::command(&state, &[]);
        let title = format!(
            "step failed, opening {} in its container: {error}",
            cmd.join(" ")
        );
        // As privileged as the command that failed, with a nested session
        // as it had, to retry it there.
        let privileged = exec.insecure_root_capabilities;
        let nesting = exec.experimental_privileged_nesting;
        terminal::open(
            cx,
            &state,
            cmd,
            privileged,
            nesting,
            "--interactive",
            &title,
        )
        .await
    };
    if let Err(error) = opened.await {
        tracing::warn!(%error, "cannot open a shell in the failed step");
    }
}

/// The absolute paths `redirectStdout`/`redirectStderr` name, with the
/// output each receives.
fn redirects<'a>(
    parent: &ContainerState,
    exec: &ExecArgs,
    record: &'a ExecRecord,
) -> Result<Vec<(String, &'a str)>> {
    let workdir = parent.workdir();
    [
        (&exec.redirect_stdout, record.stdout.as_str()),
        (&exec.redirect_stderr, record.stderr.as_str()),
    ]
    .into_iter()
    .filter(|(path, _)| !path.is_empty())
    .map(|(path, output)| Ok((tree::absolute(&workdir, path)?, output)))
    .collect()
}

/// A layer holding one file at `path` (absolute).
fn file_layer(cx: &Context, path: &str, contents: &[u8], mode: u32) -> Result<Layer> {
    let (dir, name) = tree::split_parent(path);
    let blob = cx.store.put_blob(contents)?;
    let entry = Entry::File {
        blob,
        size: contents.len() as u64,
        mode,
        mtime: 0,
        owner: crate::tree::Owner::ROOT,
    };
    Ok(Layer {
        dest: dir,
        tree: Arc::new(Tree::single(&name, entry)?),
    })
}

/// Runs (or recalls) one exec. Failures are returned as errors and never
/// cached; allowed outcomes are cached persistently under the call's key.
async fn run_exec(
    cx: &Context,
    call: &Call,
    parent: &ContainerState,
    exec: &ExecArgs,
) -> Result<Arc<ExecRecord>> {
    let key = call.key;
    let cmd = command_line(parent, exec)?;
    if !exec.stdin.is_empty() && !exec.redirect_stdin.is_empty() {
        return Err(Error::InvalidArgument {
            message: "cannot set both stdin and redirectStdin".into(),
        });
    }
    let step = Step {
        cx,
        call,
        cmd: &cmd,
    };
    if let Some(record) = recall(cx, &key).await? {
        step.emit(StepState::Cached, |_| {});
        return Ok(Arc::new(record));
    }
    cx.execs
        .run(key, || async {
            // Other engines on this state directory (every `gantry run` is
            // one) may be running the same step: wait for the one that
            // holds its lock, then look again.
            let lock = cx.lock_record(RecordKind::Exec, key).await?;
            let _lock = match stored(cx, &key)? {
                // Produced while we waited. The lock is not held while its
                // image is checked, so waiting engines go on at once.
                Some(record) => {
                    drop(lock);
                    if usable(cx, &key, &record).await? {
                        step.emit(StepState::Cached, |_| {});
                        return Ok(Arc::new(record));
                    }
                    cx.lock_record(RecordKind::Exec, key).await?
                }
                None => lock,
            };
            if let Some(record) = remote_recall(cx, &key).await? {
                step.emit(StepState::Cached, |_| {});
                return Ok(Arc::new(record));
            }
            let stdin = stdin(cx, parent, exec).await?;
            let mut process =
                launch::prepare(cx, parent, cmd.clone())
                    .await
                    .inspect_err(|error| {
                        step.emit(StepState::Failed, |event| {
                            event.detail = Some(error.to_string());
                        });
                    })?;
            if exec.experimental_privileged_nesting {
                process.nest(cx).await?;
            }
            let plaintexts: Vec<&str> = process.secrets.iter().map(|s| &*s.plaintext).collect();
            let live = LiveOutput::new(&cx.events, call.node, &plaintexts);
            process.spec.stdin = stdin;
            process.spec.privileged = exec.insecure_root_capabilities;
            process.spec.output = live.sink();
            process.spec.labels = [(crate::reproducible::STEP_LABEL.to_owned(), key.hex())].into();
            process.spec.commit_tag = cx.images.step(&key);
            let _slot = cx
                .exec_slots
                .acquire()
                .await
                .expect("the exec semaphore is never closed");
            let miss = step.explain_miss();
            step.emit(StepState::Running, |event| event.cache_miss = miss);
            let _running = crate::busy::step();
            let run = cx
                .runtime
                .exec(process.spec.clone())
                .instrument(info_span!("exec", %key));
            // A bound service that stops fails the step at once (dropping
            // the exec removes its container) rather than leave it hanging.
            let output = tokio::select! {
                output = run => output.map_err(Error::from),
                error = process.services.exited() => Err(error),
            };
            let tail = live.finish();
            // What the command left in writable directory mounts, read back
            // before the scratch copies go.
            let output = output.and_then(|output| {
                let record = record_of(output.clone(), cmd.clone(), Vec::new(), &process.secrets);
                for (target, text) in redirects(parent, exec, &record)? {
                    process
                        .mounts
                        .write_output(cx, parent, &target, text.as_bytes())?;
                }
                Ok((output, process.mounts.read_back(cx)?))
            });
            let (output, mount_trees) = output.inspect_err(|error| {
                step.remember(None, false);
                step.emit(StepState::Failed, |event| {
                    event.detail = Some(error.to_string());
                });
            })?;
            let record = record_of(output, cmd.clone(), mount_trees, &process.secrets);
            let had_secrets = !process.secrets.is_empty();
            drop(process);
            let allowed = exec.expect.allows(record.exit_code);
            step.remember(Some(record.exit_code), allowed);
            if let Err(error) = check_outcome(&step, exec, &record, tail) {
                drop(_slot);
                debug_failure(cx, parent, exec, &record, &error).await;
                return Err(error);
            }
            let json = serde_json::to_vec(&record).expect("records always serialise");
            cx.store.put(RecordKind::Exec, &key, &json)?;
            if let Some(remote) = &cx.remote_cache {
                remote.offer(&key, &json, had_secrets);
            }
            step.emit(StepState::Done, |event| {
                event.exit_code = Some(record.exit_code);
            });
            Ok(Arc::new(record))
        })
        .await
}

/// The stored result of the exec with cache `key`, when there is one and
/// its image is still there: an image removed behind gantry's back (`docker
/// rmi`, an image prune) makes the step run again rather than break every
/// step downstream.
pub(super) async fn recall(cx: &Context, key: &Digest) -> Result<Option<ExecRecord>> {
    match stored(cx, key)? {
        Some(record) if usable(cx, key, &record).await? => Ok(Some(record)),
        _ => Ok(None),
    }
}

/// The stored result of the exec with cache `key`, if any.
pub(super) fn stored(cx: &Context, key: &Digest) -> Result<Option<ExecRecord>> {
    Ok(cx
        .store
        .get(RecordKind::Exec, key)?
        .and_then(|bytes| serde_json::from_slice::<ExecRecord>(&bytes).ok()))
}

/// The result the remote cache tier (if any) shares under `key`. Its image
/// may be fetched only when a later step or export needs the filesystem.
/// It is stored locally too (with the image ID the remote cache gave it),
/// so the next engine on this state directory needs no lookup.
async fn remote_recall(cx: &Context, key: &Digest) -> Result<Option<ExecRecord>> {
    let Some(cache) = cx.remote_cache.as_ref() else {
        return Ok(None);
    };
    let Some(bytes) = cache.lookup(key).await else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<ExecRecord>(&bytes) else {
        return Ok(None);
    };
    debug!(%key, "remote cache hit");
    cx.store.put(RecordKind::Exec, key, &bytes)?;
    Ok(Some(record))
}

/// Whether a stored result's image is still on the runtime. An image the
/// runtime cannot even look up (a remote cache's filesystem, recorded by an
/// engine with `--cache`, asked of one without) counts as gone.
pub(super) async fn usable(cx: &Context, key: &Digest, record: &ExecRecord) -> Result<bool> {
    match cx.runtime.image_exists(&record.image_id).await {
        Ok(true) => {
            debug!(%key, "exec cache hit");
            return Ok(true);
        }
        Ok(false) => {}
        Err(error) => debug!(%key, %error, "cannot look a cached step's image up"),
    }
    tracing::warn!(%key, image = %record.image_id, "a cached step's image is gone; running the step again");
    Ok(false)
}

/// One exec step as its events and history see it.
struct Step<'a> {
    cx: &'a Context,
    call: &'a Call,
    cmd: &'a [String],
}

impl Step<'_> {
    fn inputs(&self) -> Arc<StepInputs> {
        self.call.step.clone().unwrap_or_default()
    }

    /// Emits a step event, with the image the step runs on.
    fn emit(&self, state: StepState, fill: impl FnOnce(&mut StepEvent)) {
        if !self.cx.events.listening() {
            return;
        }
        let mut event = StepEvent::new(&self.call.node, exec_name(self.cmd), state);
        event.image.clone_from(&self.inputs().image);
        fill(&mut event);
        self.cx.events.send(event);
    }

    /// Why the cache missed, when a subscriber asked.
    fn explain_miss(&self) -> Option<Vec<String>> {
        if !self.cx.events.explaining() {
            return None;
        }
        let inputs = self.inputs();
        Some(history::explain(
            self.cx.store.as_ref(),
            self.cmd,
            self.call.key,
            &inputs,
        ))
    }

    /// Keeps this run's inputs for the next miss's explanation.
    fn remember(&self, exit_code: Option<i64>, cached: bool) {
        let inputs = self.inputs();
        let store = self.cx.store.as_ref();
        let kept = history::record(store, self.cmd, self.call.key, &inputs, exit_code, cached);
        if let Err(error) = kept {
            tracing::warn!(%error, "cannot keep the inputs of a run (cache explanations)");
        }
    }
}

/// What the command reads on stdin: a file of the container
/// (`redirectStdin`), the `stdin` text, or nothing.
async fn stdin(cx: &Context, parent: &ContainerState, exec: &ExecArgs) -> Result<Option<Bytes>> {
    if !exec.redirect_stdin.is_empty() {
        let path = tree::absolute(&parent.workdir(), &exec.redirect_stdin)?;
        if let Some(bytes) = crate::mounts::read_input(cx, parent, &path)? {
            return Ok(Some(Bytes::from(bytes)));
        }
        let tree = read_container_path(cx, parent, &path).await?;
        let file = FileValue::in_tree(&tree, Tree::name_of(&path), &path)?;
        Ok(Some(Bytes::from(cx.store.get_blob(&file.blob)?)))
    } else if !exec.stdin.is_empty() {
        Ok(Some(Bytes::from(exec.stdin.clone())))
    } else {
        Ok(None)
    }
}

/// The record of a finished command, its output scrubbed of `secrets`.
fn record_of(
    output: ExecOutput,
    cmd: Vec<String>,
    mounts: Vec<(String, Digest)>,
    secrets: &[SecretValue],
) -> ExecRecord {
    let plaintexts: Vec<&str> = secrets.iter().map(|s| &*s.plaintext).collect();
    ExecRecord {
        image_id: output.image_id,
        cmd,
        stdout: scrub_secrets(&String::from_utf8_lossy(&output.stdout), &plaintexts),
        stderr: scrub_secrets(&String::from_utf8_lossy(&output.stderr), &plaintexts),
        combined: output
            .combined
            .map(|combined| scrub_secrets(&String::from_utf8_lossy(&combined), &plaintexts)),
        exit_code: output.exit_code,
        mounts,
    }
}

/// Fails (and reports the step failed, with the last lines of its
/// output) when `expect` does not allow the command's exit code. `tail` is
/// the live output's tail; without one (the command never started), the
/// tails of the recorded streams.
fn check_outcome(
    step: &Step<'_>,
    exec: &ExecArgs,
    record: &ExecRecord,
    tail: String,
) -> Result<()> {
    if exec.expect.allows(record.exit_code) {
        return Ok(());
    }
    let detail = if tail.is_empty() {
        let lines = |text: &str| {
            let lines: Vec<&str> = text.trim_end().lines().collect();
            lines[lines.len().saturating_sub(TAIL_LINES / 2)..].join("\n")
        };
        [lines(&record.stdout), lines(&record.stderr)]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        tail
    };
    step.emit(StepState::Failed, |event| {
        event.detail = Some(detail);
        event.exit_code = Some(record.exit_code);
    });
    Err(Error::Exec(Box::new(ExecFailure {
        cmd: record.cmd.clone(),
        exit_code: record.exit_code,
        stdout: tail_of(&record.stdout, ERROR_OUTPUT_CAP),
        stderr: tail_of(&record.stderr, ERROR_OUTPUT_CAP),
    })))
}

/// The full command `withExec` runs: entrypoint (when asked) + args, or the
/// default args when `args` is empty.
fn command_line(state: &ContainerState, exec: &ExecArgs) -> Result<Vec<String>> {
    let mut args = if exec.args.is_empty() {
        state.config.cmd.clone()
    } else {
        exec.args.clone()
    };
    if exec.expand {
        args = args
            .iter()
            .map(|arg| expand_vars(arg, &state.config.env))
            .collect();
    }
    if exec.use_entrypoint {
        let mut full = state.config.entrypoint.clone();
        full.extend(args);
        args = full;
    }
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_follows_dagger_rules() {
        assert!(Expect::Success.allows(0));
        assert!(!Expect::Success.allows(1));
        assert!(Expect::Failure.allows(1));
        assert!(!Expect::Failure.allows(0));
        assert!(!Expect::Failure.allows(137));
        assert!(Expect::Any.allows(0) && Expect::Any.allows(200));
        assert!(!Expect::Any.allows(130));
    }
}
