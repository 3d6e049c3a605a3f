//! Cache explanations. Each exec's cache key is a digest of its inputs;
//! `StepInputs` lists those inputs named for people (the image, host
//! directories and files by path, environment variables and secrets by
//! name, upstream steps by command), each with a digest of what it was.
//! Every run of a command that misses the cache is kept in a
//! `RecordKind::StepRuns` record for that command line (the last
//! `KEPT_RUNS`), so the next miss can be compared with the nearest earlier
//! run: the one whose inputs differ least.
//!
//! Never a value of a secret or a variable: secrets are named and
//! fingerprinted by their MAC, variables by a digest of their value.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Domain, Encoder};
use crate::error::Result;
use crate::host::load_tree;
use crate::store::{RecordKind, Store};
use crate::tree::{Entry, Tree};

/// How many earlier runs of one command line are kept.
const KEPT_RUNS: usize = 8;
/// How many files of a changed directory an explanation names.
const NAMED_FILES: usize = 10;

/// What kind of thing an input of a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum InputKind {
    /// An image a container started from (`from`), by address.
    Image,
    /// A directory read from the client's host, by absolute path.
    HostDirectory,
    /// A file read from the client's host, by absolute path.
    HostFile,
    /// An environment variable, by name.
    Env,
    /// A secret, by name (its digest is the value's MAC).
    Secret,
    /// An exec this step builds on, by command (its digest is its cache key).
    Upstream,
    /// A cache volume, by name (its contents are in no key).
    CacheVolume,
    /// Any other call of the pipeline, by what it is called and its path.
    Call,
}

/// One named input of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepInput {
    pub(crate) kind: InputKind,
    pub(crate) name: String,
    /// What it was: content digest, MAC, cache key or digest of a value.
    pub(crate) digest: Digest,
    /// For images: the digest-qualified reference the address resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// Everything an exec's cache key covers, named, in a stable order (the
/// solver walks the recipe from the exec down to images, host reads,
/// secrets and upstream execs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StepInputs {
    /// The image the step's container started from (through upstream
    /// steps too), by address.
    pub(crate) image: Option<String>,
    pub(crate) inputs: Vec<StepInput>,
}

/// One earlier run of a command.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepRun {
    key: Digest,
    /// Seconds since the Unix epoch.
    time: u64,
    exit_code: Option<i64>,
    /// Whether its outcome was stored (an allowed exit code).
    cached: bool,
    inputs: Vec<StepInput>,
}

/// The runs of one command line, newest first.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StepRuns {
    runs: Vec<StepRun>,
}

/// The key of a command line's record.
fn runs_key(cmd: &[String]) -> Digest {
    let mut encoder = Encoder::new(Domain::StepRuns);
    encoder.strs(cmd);
    encoder.finish()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

fn load(store: &dyn Store, cmd: &[String]) -> StepRuns {
    match store.get(RecordKind::StepRuns, &runs_key(cmd)) {
        // A record from another version, or damaged: start over.
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Ok(None) => StepRuns::default(),
        Err(error) => {
            tracing::debug!(%error, "cannot read earlier runs of a step");
            StepRuns::default()
        }
    }
}

/// Keeps this run of `cmd` as the newest. Best effort: two engines
/// recording the same command at once may lose one run.
pub(crate) fn record(
    store: &dyn Store,
    cmd: &[String],
    key: Digest,
    inputs: &StepInputs,
    exit_code: Option<i64>,
    cached: bool,
) -> Result<()> {
    let mut runs = load(store, cmd);
    runs.runs.retain(|run| run.key != key);
    runs.runs.insert(
        0,
        StepRun {
            key,
            time: now(),
            exit_code,
            cached,
            inputs: inputs.inputs.clone(),
        },
    );
    runs.runs.truncate(KEPT_RUNS);
    let json = serde_json::to_vec(&runs).expect("step runs always serialise");
    store.put(RecordKind::StepRuns, &runs_key(cmd), &json)
}

/// Why `cmd` with cache key `key` and `inputs` missed the cache, one
/// reason a line, against the nearest earlier run.
pub(crate) fn explain(
    store: &dyn Store,
    cmd: &[String],
    key: Digest,
    inputs: &StepInputs,
) -> Vec<String> {
    let runs = load(store, cmd);
    let nearest = runs
        .runs
        .iter()
        .map(|run| (run, changes(&run.inputs, &inputs.inputs)))
        // `min_by_key` keeps the first of equals: the newest.
        .min_by_key(|(run, changes)| (run.key != key, changes.len()));
    let Some((run, changes)) = nearest else {
        return vec!["new step: no earlier run of this command".to_owned()];
    };
    let when = ago(run.time);
    if run.key == key {
        return vec![if run.cached {
            format!("the same inputs ran {when}, but that result is no longer stored (pruned, or its image was removed)")
        } else {
            let code = run
                .exit_code
                .map_or_else(|| "an error".to_owned(), |code| format!("exit code {code}"));
            format!("the same inputs ran {when} and failed ({code}): failures are not cached")
        }];
    }
    if changes.is_empty() {
        return vec![format!(
            "the inputs are those of the run {when}, yet its key differs: an option of a call changed, or gantry's cache encoding did"
        )];
    }
    let mut reasons = vec![format!("compared with the run {when}:")];
    for change in changes {
        reasons.extend(describe(store, &change));
    }
    reasons
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`.
fn ago(time: u64) -> String {
    let seconds = now().saturating_sub(time);
    match seconds {
        0..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86400),
    }
}

/// How one input differs between two runs.
#[derive(Debug, PartialEq, Eq)]
enum Change<'a> {
    Changed {
        before: &'a StepInput,
        now: &'a StepInput,
    },
    Added(&'a StepInput),
    Removed(&'a StepInput),
}

/// The inputs that differ between `before` and `now`. Inputs are matched by
/// kind and name, the n-th of one name with the n-th (a variable set twice).
fn changes<'a>(before: &'a [StepInput], now: &'a [StepInput]) -> Vec<Change<'a>> {
    let same = |a: &StepInput, b: &StepInput| a.kind == b.kind && a.name == b.name;
    let nth = |list: &'a [StepInput], input: &StepInput, n: usize| {
        list.iter().filter(|other| same(other, input)).nth(n)
    };
    let index = |list: &[StepInput], at: usize| {
        list[..at]
            .iter()
            .filter(|other| same(other, &list[at]))
            .count()
    };
    let mut out = Vec::new();
    for (at, input) in now.iter().enumerate() {
        match nth(before, input, index(now, at)) {
            Some(old) if old.digest != input.digest => out.push(Change::Changed {
                before: old,
                now: input,
            }),
            Some(_) => {}
            None => out.push(Change::Added(input)),
        }
    }
    for (at, input) in before.iter().enumerate() {
        if nth(now, input, index(before, at)).is_none() {
            out.push(Change::Removed(input));
        }
    }
    out
}

fn kind_name(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Image => "image",
        InputKind::HostDirectory => "host directory",
        InputKind::HostFile => "host file",
        InputKind::Env => "env var",
        InputKind::Secret => "secret",
        InputKind::Upstream => "upstream step",
        InputKind::CacheVolume => "cache volume",
        InputKind::Call => "call",
    }
}

/// One change as lines for people.
fn describe(store: &dyn Store, change: &Change<'_>) -> Vec<String> {
    let (before, now) = match change {
        Change::Added(input) => {
            return vec![format!("  {} {} is new", kind_name(input.kind), input.name)]
        }
        Change::Removed(input) => {
            return vec![format!(
                "  {} {} is gone",
                kind_name(input.kind),
                input.name
            )]
        }
        Change::Changed { before, now } => (before, now),
    };
    let name = &now.name;
    let line = match now.kind {
        InputKind::Image => format!(
            "  image {name} changed: {} (was {})",
            image_digest(now),
            image_digest(before)
        ),
        InputKind::HostDirectory => return directory_changes(store, before, now),
        InputKind::HostFile => format!("  host file {name} changed"),
        InputKind::Env => format!("  env var {name} changed"),
        InputKind::Secret => format!("  secret {name} changed (its value)"),
        InputKind::Upstream => format!("  upstream step {name} has a new result"),
        InputKind::CacheVolume => format!("  cache volume {name} changed"),
        InputKind::Call => format!("  {name} changed"),
    };
    vec![line]
}

/// The image ID part of an image input's reference, shortened.
fn image_digest(input: &StepInput) -> String {
    let detail = input.detail.as_deref().unwrap_or_default();
    let digest = detail.rsplit_once('@').map_or(detail, |(_, digest)| digest);
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", &hex[..12]),
        _ => digest.to_owned(),
    }
}

/// The files that differ between two reads of a host directory, by path;
/// the directory alone when either read is no longer stored.
fn directory_changes(store: &dyn Store, before: &StepInput, now: &StepInput) -> Vec<String> {
    let root = &now.name;
    let (Ok(old), Ok(new)) = (
        load_tree(store, &before.digest),
        load_tree(store, &now.digest),
    ) else {
        return vec![format!("  host directory {root} changed")];
    };
    let files = file_changes(&old, &new);
    let mut lines: Vec<String> = files
        .iter()
        .take(NAMED_FILES)
        .map(|(path, what)| format!("  host file {}/{path} {what}", root.trim_end_matches('/')))
        .collect();
    if files.len() > NAMED_FILES {
        lines.push(format!(
            "  … and {} more in host directory {root}",
            files.len() - NAMED_FILES
        ));
    }
    if lines.is_empty() {
        // Only directories' modes differ.
        lines.push(format!("  host directory {root} changed"));
    }
    lines
}

/// Files and symlinks added, removed or changed from `old` to `new`.
fn file_changes(old: &Tree, new: &Tree) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for (path, entry) in &new.entries {
        if matches!(entry, Entry::Dir { .. }) {
            continue;
        }
        match old.entries.get(path) {
            None => out.push((path.clone(), "is new")),
            Some(old_entry) if old_entry != entry => out.push((path.clone(), "changed")),
            Some(_) => {}
        }
    }
    for (path, entry) in &old.entries {
        if !matches!(entry, Entry::Dir { .. }) && !new.entries.contains_key(path) {
            out.push((path.clone(), "was removed"));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn input(kind: InputKind, name: &str, what: &str) -> StepInput {
        StepInput {
            kind,
            name: name.into(),
            digest: Digest::of_bytes(what.as_bytes()),
            detail: None,
        }
    }

    fn inputs(list: Vec<StepInput>) -> StepInputs {
        StepInputs {
            image: None,
            inputs: list,
        }
    }

    fn cmd() -> Vec<String> {
        vec!["go".into(), "test".into()]
    }

    #[test]
    fn a_command_never_run_is_a_new_step() {
        let store = MemoryStore::default();
        let reasons = explain(&store, &cmd(), Digest::of_bytes(b"k"), &inputs(vec![]));
        assert_eq!(reasons, ["new step: no earlier run of this command"]);
    }

    #[test]
    fn the_nearest_run_names_what_changed_and_never_a_value() {
        let store = MemoryStore::default();
        let first = inputs(vec![
            input(InputKind::Env, "GOFLAGS", "-v"),
            input(InputKind::Secret, "token", "mac-1"),
            input(InputKind::Call, "withWorkdir", "/src"),
        ]);
        record(
            &store,
            &cmd(),
            Digest::of_bytes(b"k1"),
            &first,
            Some(0),
            true,
        )
        .unwrap();
        // An unrelated run of the same command in between.
        let other = inputs(vec![input(InputKind::Env, "OTHER", "x")]);
        record(
            &store,
            &cmd(),
            Digest::of_bytes(b"k2"),
            &other,
            Some(0),
            true,
        )
        .unwrap();
        let now = inputs(vec![
            input(InputKind::Env, "GOFLAGS", "-race"),
            input(InputKind::Secret, "token", "mac-2"),
            input(InputKind::Call, "withWorkdir", "/src"),
            input(InputKind::Env, "CGO_ENABLED", "0"),
        ]);
        let reasons = explain(&store, &cmd(), Digest::of_bytes(b"k3"), &now);
        assert_eq!(reasons[0], "compared with the run 0s ago:");
        assert_eq!(
            reasons[1..],
            [
                "  env var GOFLAGS changed",
                "  secret token changed (its value)",
                "  env var CGO_ENABLED is new",
            ]
        );
    }

    #[test]
    fn the_same_inputs_again_say_why_they_were_not_cached() {
        let store = MemoryStore::default();
        let same = inputs(vec![input(InputKind::Env, "A", "1")]);
        let key = Digest::of_bytes(b"k");
        record(&store, &cmd(), key, &same, Some(2), false).unwrap();
        let reasons = explain(&store, &cmd(), key, &same);
        assert_eq!(
            reasons,
            ["the same inputs ran 0s ago and failed (exit code 2): failures are not cached"]
        );
        record(&store, &cmd(), key, &same, Some(0), true).unwrap();
        let reasons = explain(&store, &cmd(), key, &same);
        assert!(reasons[0].contains("no longer stored"), "{reasons:?}");
    }

    #[test]
    fn a_changed_host_directory_names_its_files() {
        let store = MemoryStore::default();
        let tree = |files: &[(&str, &str)]| {
            let mut tree = Tree::default();
            for (path, contents) in files {
                let blob = store.put_blob(contents.as_bytes()).unwrap();
                let entry = Entry::File {
                    blob,
                    size: contents.len() as u64,
                    mode: 0o644,
                    mtime: 0,
                    owner: crate::tree::Owner::ROOT,
                };
                tree.insert(path, entry).unwrap();
            }
            let digest = tree.digest();
            let json = serde_json::to_vec(&tree).unwrap();
            store
                .put(RecordKind::HostTree, &crate::host::tree_key(&digest), &json)
                .unwrap();
            digest
        };
        let old = tree(&[
            ("main.go", "package main"),
            ("lib/a.go", "a"),
            ("gone.txt", "x"),
        ]);
        let new = tree(&[
            ("main.go", "package main"),
            ("lib/a.go", "b"),
            ("new.txt", "y"),
        ]);
        let dir = |digest| StepInput {
            kind: InputKind::HostDirectory,
            name: "/src/app".into(),
            digest,
            detail: None,
        };
        record(
            &store,
            &cmd(),
            Digest::of_bytes(b"k1"),
            &inputs(vec![dir(old)]),
            Some(0),
            true,
        )
        .unwrap();
        let reasons = explain(
            &store,
            &cmd(),
            Digest::of_bytes(b"k2"),
            &inputs(vec![dir(new)]),
        );
        assert_eq!(
            reasons[1..],
            [
                "  host file /src/app/gone.txt was removed",
                "  host file /src/app/lib/a.go changed",
                "  host file /src/app/new.txt is new",
            ]
        );
    }

    #[test]
    fn only_the_last_runs_are_kept() {
        let store = MemoryStore::default();
        for n in 0..(KEPT_RUNS as u8 + 3) {
            let key = Digest::of_bytes(&[n]);
            record(&store, &cmd(), key, &inputs(vec![]), Some(0), true).unwrap();
        }
        assert_eq!(load(&store, &cmd()).runs.len(), KEPT_RUNS);
        assert_eq!(
            load(&store, &cmd()).runs[0].key,
            Digest::of_bytes(&[KEPT_RUNS as u8 + 2])
        );
    }
}
