//! `gantry cache ls|du|prune`: what the local store holds, what it costs and
//! removing part of it (docs/cache.md, "Managing the cache"). Removal goes
//! through `prune::prune_local`, shared with `gantry prune` and the engines'
//! `--cache-max-size`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _, Result};
use gantry_core::store::{RecordKind, Store as _};
use gantry_core::value::ExecRecord;
use gantry_store::{Bucket, DiskStore, Keep, Policy, RecordInfo, StateDir};
use serde_json::{json, Value};

use crate::prune::{self, Options};
use crate::remote_admin::{Footprint, RemoteEntry, Repository};
use crate::runtime::RuntimeChoice;
use crate::units;

#[derive(Debug, clap::Args)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// List the cached entries, most recently used first
    Ls(LsArgs),
    /// Show what the cache holds, by kind
    Du(DuArgs),
    /// Remove cached entries (and the images of removed results)
    Prune(CachePruneArgs),
}

/// Where the state directory is (as for the engine commands).
#[derive(Debug, Clone, clap::Args)]
struct StoreArgs {
    /// Directory for the persistent cache [env: GANTRY_STATE_DIR] [default: ~/.cache/gantry]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Container runtime whose images go with removed results: auto, native or docker [env: GANTRY_RUNTIME]
    #[arg(long, value_enum)]
    runtime: Option<RuntimeChoice>,
}

impl StoreArgs {
    fn root(&self) -> PathBuf {
        crate::engine::resolve_state_dir(self.state_dir.as_ref())
    }
}

/// A remote cache repository instead of the local store.
#[derive(Debug, Clone, clap::Args)]
struct RemoteArgs {
    /// The remote cache (as --cache takes it), e.g. 127.0.0.1:5000/team/cache or oci-layout:DIR
    #[arg(long, value_name = "REF")]
    remote: Option<String>,
    /// Speak plain HTTP to a registry that is not on a loopback address
    #[arg(long, requires = "remote")]
    cache_insecure: bool,
    /// Registry credentials, USER:env:VAR (default: the Docker configuration) [env: GANTRY_CACHE_AUTH]
    #[arg(long, value_name = "USER:env:VAR", requires = "remote")]
    cache_auth: Option<String>,
}

impl RemoteArgs {
    async fn open(&self) -> Result<Option<Repository>> {
        let Some(reference) = &self.remote else {
            return Ok(None);
        };
        Ok(Some(
            Repository::open(reference, self.cache_insecure, self.cache_auth.as_deref()).await?,
        ))
    }
}

/// What `ls` and `prune` act on (the local store, or `--remote REF`) and how they print.
#[derive(Debug, clap::Args)]
struct Target {
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
struct DuArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Args)]
struct CachePruneArgs {
    /// Remove entries not used for this long: 30m, 12h, 7d, 2w (with --remote: pushed this long ago)
    #[arg(long, value_name = "DURATION")]
    older_than: Option<String>,
    /// Then remove the least recently used entries until records and blobs fit in SIZE: 500MB, 10GB (with --remote: the oldest pushed, until the kept entries' manifests, records and filesystem images fit)
    #[arg(long, value_name = "SIZE")]
    max_size: Option<String>,
    /// Remove everything (as `gantry prune`); refused while an engine uses the state directory; not with --remote
    #[arg(long, conflicts_with_all = ["older_than", "max_size"])]
    all: bool,
    /// Say what would be removed, and remove nothing
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    target: Target,
}

pub(crate) async fn run(args: CacheArgs) -> Result<()> {
    match args.command {
        CacheCommand::Ls(args) => match args.target.remote.open().await? {
            Some(repository) => ls_remote(&repository, args.target.json).await,
            None => ls(args),
        },
        CacheCommand::Du(args) => du(args).await,
        CacheCommand::Prune(args) => match args.target.remote.open().await? {
            Some(repository) => prune_remote(&repository, &args).await,
            None => prune(args).await,
        },
    }
}

/// A record kind's short name, as `ls` prints it.
fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Exec => "exec",
        RecordKind::PathRead => "path-read",
        RecordKind::HostTree => "host-tree",
        RecordKind::HostIndex => "host-index",
        RecordKind::Recipe => "recipe",
        RecordKind::Fetch => "fetch",
        RecordKind::StepRuns => "step-runs",
    }
}

/// Every record of the state directory at `root`, most recently used first;
/// none when it does not exist.
fn all_records(root: &std::path::Path) -> Result<Option<(DiskStore, Vec<RecordInfo>)>> {
    if !root.exists() {
        return Ok(None);
    }
    let store = DiskStore::open(root)
        .with_context(|| format!("while opening the state directory {}", root.display()))?;
    let mut records = Vec::new();
    for kind in RecordKind::ALL {
        records.extend(
            store
                .state_dir()
                .records(kind)
                .context("while listing cached records")?,
        );
    }
    records.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.key.cmp(&b.key)));
    Ok(Some((store, records)))
}

/// The command an exec result ran, when the record is one and reads.
fn command_of(store: &DiskStore, record: &RecordInfo) -> Option<String> {
    if record.kind != RecordKind::Exec {
        return None;
    }
    let bytes = store.get(RecordKind::Exec, &record.key).ok()??;
    let exec: ExecRecord = serde_json::from_slice(&bytes).ok()?;
    Some(exec.cmd.join(" "))
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn entry_json(store: &DiskStore, record: &RecordInfo) -> Value {
    json!({
        "key": record.key.hex(),
        "kind": kind_name(record.kind),
        "bytes": record.bytes,
        "last_used": unix_seconds(record.modified),
        "command": command_of(store, record),
    })
}

fn ls(args: LsArgs) -> Result<()> {
    let root = args.target.store.root();
    let Some((store, records)) = all_records(&root)? else {
        if args.target.json {
            println!("[]");
        } else {
            eprintln!("gantry: {} holds no cache", root.display());
        }
        return Ok(());
    };
    if args.target.json {
        let entries: Vec<Value> = records.iter().map(|r| entry_json(&store, r)).collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{:<12}  {:<10}  {:>9}  {:<9}  COMMAND",
        "KEY", "KIND", "SIZE", "LAST USED"
    );
    let now = SystemTime::now();
    for record in &records {
        let command = command_of(&store, record).unwrap_or_default();
        println!(
            "{:<12}  {:<10}  {:>9}  {:<9}  {}",
            &record.key.hex()[..12],
            kind_name(record.kind),
            units::format_size(record.bytes),
            ago(now, record.modified),
            truncate(&command, 60)
        );
    }
    Ok(())
}

/// What `du` reports for one kind of thing the cache holds.
struct Line {
    name: &'static str,
    entries: u64,
    /// `None`: not measured (Docker images share layers with other images).
    bytes: Option<u64>,
}

async fn du(args: DuArgs) -> Result<()> {
    let root = args.store.root();
    let lines = if root.exists() {
        let state = StateDir::open(&root)
            .with_context(|| format!("while opening the state directory {}", root.display()))?;
        du_lines(&state, args.store.runtime).await?
    } else {
        Vec::new()
    };
    let total: u64 = lines.iter().filter_map(|line| line.bytes).sum();
    if args.json {
        let mut object = serde_json::Map::new();
        for line in &lines {
            object.insert(
                line.name.replace(' ', "_"),
                json!({ "entries": line.entries, "bytes": line.bytes }),
            );
        }
        object.insert("total_bytes".to_owned(), json!(total));
        println!("{}", serde_json::to_string_pretty(&Value::Object(object))?);
        return Ok(());
    }
    println!("{:<16}  {:>8}  {:>9}", "KIND", "ENTRIES", "SIZE");
    for line in &lines {
        let size = line
            .bytes
            .map_or_else(|| "-".to_owned(), units::format_size);
        println!("{:<16}  {:>8}  {:>9}", line.name, line.entries, size);
    }
    println!(
        "{:<16}  {:>8}  {:>9}",
        "total",
        "",
        units::format_size(total)
    );
    Ok(())
}

async fn du_lines(state: &StateDir, runtime: Option<RuntimeChoice>) -> Result<Vec<Line>> {
    let usage = state
        .usage()
        .context("while measuring the state directory")?;
    let sum = |buckets: &[Bucket]| {
        let mut size = gantry_store::Size::default();
        for bucket in buckets {
            size += usage.of(*bucket);
        }
        size
    };
    let records = sum(&RecordKind::ALL.map(Bucket::Records));
    let blobs = usage.of(Bucket::Blobs);
    let volumes = usage.of(Bucket::CacheVolumes);
    let other = sum(&[
        Bucket::Scratch,
        Bucket::Temp,
        Bucket::Locks,
        Bucket::Modules,
    ]);
    // Step images: the native runtime's are the snapshot bucket; Docker's
    // are counted by tag (their layers are shared, so no size is summed).
    let images = match RuntimeChoice::resolve(runtime)?.settle()? {
        crate::runtime::Settled::Native => {
            let snapshots = usage.of(Bucket::Snapshots);
            let names = state.image_names();
            let tags = gantry_native::tags_in(
                &state.bucket(Bucket::Snapshots),
                &[names.step_repo(), names.built_repo()],
            );
            Line {
                name: "images",
                entries: tags.len() as u64,
                bytes: Some(snapshots.bytes),
            }
        }
        crate::runtime::Settled::Docker => {
            let names = state.image_names();
            let tags = match gantry_docker::DockerRuntime::connect().await {
                Ok(docker) => docker
                    .tags_in(&[names.step_repo(), names.built_repo()])
                    .await
                    .map(|tags| tags.len() as u64)
                    .unwrap_or(0),
                Err(_) => 0,
            };
            Line {
                name: "images",
                entries: tags,
                bytes: None,
            }
        }
    };
    Ok(vec![
        Line {
            name: "records",
            entries: records.entries,
            bytes: Some(records.bytes),
        },
        Line {
            name: "blobs",
            entries: blobs.entries,
            bytes: Some(blobs.bytes),
        },
        images,
        Line {
            name: "cache volumes",
            entries: volumes.entries,
            bytes: Some(volumes.bytes),
        },
        Line {
            name: "other",
            entries: other.entries,
            bytes: Some(other.bytes),
        },
    ])
}

/// `--older-than` as the time before which entries go, and `--max-size`
/// in bytes, as given.
fn age_and_size(args: &CachePruneArgs) -> Result<(Option<SystemTime>, Option<u64>)> {
    let before = match &args.older_than {
        Some(text) => Some(
            SystemTime::now()
                .checked_sub(units::parse_duration(text).map_err(anyhow::Error::msg)?)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        ),
        None => None,
    };
    let max_bytes = args
        .max_size
        .as_deref()
        .map(|text| units::parse_size(text).map_err(anyhow::Error::msg))
        .transpose()?;
    Ok((before, max_bytes))
}

async fn prune(args: CachePruneArgs) -> Result<()> {
    let keep = if args.all {
        Keep::Nothing
    } else {
        if args.older_than.is_none() && args.max_size.is_none() {
            bail!("say what to remove: --older-than DURATION (e.g. 7d), --max-size SIZE (e.g. 10GB), or --all");
        }
        let (unused_before, max_bytes) = age_and_size(&args)?;
        Keep::Records(Policy {
            unused_before,
            max_bytes,
            used_since_kept: None,
        })
    };
    let root = args.target.store.root();
    let options = Options {
        dry_run: args.dry_run,
        own_session_over: false,
    };
    let report = prune::prune_local(&root, args.target.store.runtime, keep, options).await?;
    if args.target.json {
        // Commands are read only for a dry run (the records are still there).
        let store = args.dry_run.then(|| DiskStore::open(&root).ok()).flatten();
        let entries: Vec<Value> = report
            .plan
            .iter()
            .flat_map(|plan| plan.records())
            .map(|record| match &store {
                Some(store) => entry_json(store, record),
                _ => json!({
                    "key": record.key.hex(),
                    "kind": kind_name(record.kind),
                    "bytes": record.bytes,
                    "last_used": unix_seconds(record.modified),
                }),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dry_run": report.dry_run,
                "records": report.records,
                "bytes": report.bytes,
                "images": report.images,
                "left_bytes": report.left,
                "entries": entries,
            }))?
        );
    } else {
        if args.dry_run {
            if let Some(plan) = &report.plan {
                for record in plan.records() {
                    println!(
                        "{}  {:<10}  {:>9}",
                        &record.key.hex()[..12],
                        kind_name(record.kind),
                        units::format_size(record.bytes)
                    );
                }
            }
        }
        eprintln!("{}", report.summary(&root));
    }
    Ok(())
}

async fn ls_remote(repository: &Repository, json: bool) -> Result<()> {
    let entries = repository.entries().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!("{:<12}  {:<9}  COMMAND", "KEY", "PUSHED");
    let now = SystemTime::now();
    for entry in entries.iter().rev() {
        println!(
            "{:<12}  {:<9}  {}",
            &entry.key[..12],
            ago(now, from_unix(entry.created)),
            truncate(&entry.command, 60)
        );
    }
    Ok(())
}

fn from_unix(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

/// What `prune --remote` removes: `--older-than` (by push time), then
/// `--max-size` (the oldest pushed first), as the local prune orders them.
struct RemotePolicy {
    pushed_before: Option<SystemTime>,
    max_bytes: Option<u64>,
}

impl RemotePolicy {
    fn of(args: &CachePruneArgs) -> Result<Self> {
        if args.all {
            bail!("--remote does not take --all: delete the repository (or the layout directory) to remove everything, or give --older-than 0s");
        }
        if args.older_than.is_none() && args.max_size.is_none() {
            bail!("say what to remove from the remote cache: --older-than DURATION (e.g. 30d), --max-size SIZE (e.g. 10GB), or both");
        }
        let (pushed_before, max_bytes) = age_and_size(args)?;
        Ok(Self {
            pushed_before,
            max_bytes,
        })
    }
}

/// The entries a remote prune removes and keeps (both oldest first), and,
/// with `--max-size`, the bytes the removed ones alone occupied and the
/// kept ones occupy.
struct RemotePlan {
    removed: Vec<RemoteEntry>,
    kept: Vec<RemoteEntry>,
    bytes: Option<(u64, u64)>,
}

impl RemotePlan {
    /// The filesystem images only removed entries refer to (an image a kept
    /// entry shares stays).
    fn filesystems(&self) -> Vec<&str> {
        let shared: std::collections::HashSet<&str> = self
            .kept
            .iter()
            .map(|entry| entry.filesystem.as_str())
            .collect();
        let mut filesystems: Vec<&str> = self
            .removed
            .iter()
            .map(|entry| entry.filesystem.as_str())
            .filter(|digest| !shared.contains(digest) && !digest.is_empty())
            .collect();
        filesystems.sort();
        filesystems.dedup();
        filesystems
    }
}

/// What `policy` removes from `entries` (oldest first).
async fn plan_remote(
    repository: &Repository,
    entries: Vec<RemoteEntry>,
    policy: &RemotePolicy,
) -> Result<RemotePlan> {
    // Footprints cost a manifest per filesystem image: read only for --max-size.
    let footprints = match policy.max_bytes {
        Some(_) => repository.footprints(&entries).await?,
        None => vec![Footprint::new(); entries.len()],
    };
    Ok(select_remote(
        entries.into_iter().zip(footprints).collect(),
        policy,
    ))
}

/// The entries pushed before `policy`'s cutoff, then the oldest pushed of
/// the rest until what they occupy fits in its size; `measured` is every
/// entry with its footprint, oldest first. Since both go by push time, the
/// age and the size select a run of the oldest entries.
fn select_remote(measured: Vec<(RemoteEntry, Footprint)>, policy: &RemotePolicy) -> RemotePlan {
    let (old, young): (Vec<_>, Vec<_>) = measured.into_iter().partition(|(entry, _)| {
        policy
            .pushed_before
            .is_some_and(|cutoff| from_unix(entry.created) < cutoff)
    });
    let (over, bytes) = match policy.max_bytes {
        Some(max_bytes) => {
            let footprints: Vec<&Footprint> =
                young.iter().map(|(_, footprint)| footprint).collect();
            let over = oldest_over(&footprints, max_bytes);
            let all = unique_bytes(old.iter().chain(&young).map(|(_, footprint)| footprint));
            let left = unique_bytes(footprints[over..].iter().copied());
            (over, Some((all - left, left)))
        }
        None => (0, None),
    };
    let mut removed: Vec<RemoteEntry> = old.into_iter().map(|(entry, _)| entry).collect();
    let mut kept: Vec<RemoteEntry> = young.into_iter().map(|(entry, _)| entry).collect();
    removed.extend(kept.drain(..over));
    RemotePlan {
        removed,
        kept,
        bytes,
    }
}

/// How many of `footprints` (oldest first) go, oldest first, until the
/// blobs the rest occupy fit in `max_bytes`; a blob several entries share
/// counts once, and is freed only with the last of them.
fn oldest_over(footprints: &[&Footprint], max_bytes: u64) -> usize {
    let mut users: HashMap<&str, (usize, u64)> = HashMap::new();
    for footprint in footprints {
        for (digest, bytes) in *footprint {
            users.entry(digest).or_insert((0, *bytes)).0 += 1;
        }
    }
    let mut total: u64 = users.values().map(|(_, bytes)| bytes).sum();
    let mut over = 0;
    for footprint in footprints {
        if total <= max_bytes {
            break;
        }
        for digest in footprint.keys() {
            let (count, bytes) = users
                .get_mut(digest.as_str())
                .expect("every digest was counted");
            *count -= 1;
            if *count == 0 {
                total -= *bytes;
            }
        }
        over += 1;
    }
    over
}

/// The bytes `footprints` occupy together (shared blobs once).
fn unique_bytes<'a>(footprints: impl Iterator<Item = &'a Footprint>) -> u64 {
    let mut seen = HashMap::new();
    for footprint in footprints {
        seen.extend(footprint.iter());
    }
    seen.values().copied().sum()
}

/// Removes the entries pushed before `--older-than`, then the oldest pushed
/// until the rest fit in `--max-size`, and the filesystems only they refer
/// to, by manifest digest.
async fn prune_remote(repository: &Repository, args: &CachePruneArgs) -> Result<()> {
    let policy = RemotePolicy::of(args)?;
    let entries = repository.entries().await?;
    let plan = plan_remote(repository, entries, &policy).await?;
    let filesystems = plan.filesystems();
    if !args.dry_run {
        repository.remove(&plan.removed, &filesystems).await?;
    }
    let (bytes, left_bytes) = plan.bytes.unzip();
    if args.target.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dry_run": args.dry_run,
                "entries": plan.removed,
                "filesystems": filesystems,
                "kept": plan.kept.len(),
                "bytes": bytes,
                "left_bytes": left_bytes,
            }))?
        );
        return Ok(());
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let size = |bytes: Option<u64>| {
        bytes.map_or_else(String::new, |b| format!(" ({})", units::format_size(b)))
    };
    eprintln!(
        "gantry: {verb} {} remote cache entries{} and {} filesystems; {} entries kept{}",
        plan.removed.len(),
        size(bytes),
        filesystems.len(),
        plan.kept.len(),
        size(left_bytes),
    );
    Ok(())
}

/// How long ago `then` was, roughly: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
fn ago(now: SystemTime, then: SystemTime) -> String {
    let seconds = now.duration_since(then).unwrap_or_default().as_secs();
    match seconds {
        0..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86_400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footprint(blobs: &[(&str, u64)]) -> Footprint {
        blobs.iter().map(|(d, b)| ((*d).to_owned(), *b)).collect()
    }

    #[test]
    fn the_oldest_entries_go_until_the_rest_fit_and_shared_blobs_count_once() {
        // Three entries on one base layer; the last two share a filesystem.
        let one = footprint(&[("m1", 10), ("r1", 5), ("fs1", 100), ("base", 1000)]);
        let two = footprint(&[("m2", 10), ("r2", 5), ("fs2", 200), ("base", 1000)]);
        let three = footprint(&[("m3", 10), ("r3", 5), ("fs2", 200), ("base", 1000)]);
        let all = [&one, &two, &three];
        assert_eq!(unique_bytes(all.iter().copied()), 1345);
        assert_eq!(oldest_over(&all, 1345), 0);
        // Removing the first frees all but its base layer.
        assert_eq!(oldest_over(&all, 1344), 1);
        assert_eq!(oldest_over(&all, 1230), 1);
        // The second frees only its manifest and record: fs2 stays with the third.
        assert_eq!(oldest_over(&all, 1229), 2);
        assert_eq!(oldest_over(&all, 1215), 2);
        assert_eq!(oldest_over(&all, 1214), 3);
        assert_eq!(oldest_over(&all, 0), 3);
        assert_eq!(oldest_over(&[], 0), 0);
    }

    fn entry(key: &str, created: u64, filesystem: &str) -> RemoteEntry {
        RemoteEntry {
            key: key.to_owned(),
            kind: "exec",
            manifest: format!("m-{key}"),
            filesystem: filesystem.to_owned(),
            created,
            command: String::new(),
            record_bytes: 0,
            record: String::new(),
            manifest_bytes: 0,
            files: Default::default(),
        }
    }

    fn keys(entries: &[RemoteEntry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.key.as_str()).collect()
    }

    #[test]
    fn a_remote_prune_takes_the_age_then_the_size_and_keeps_shared_filesystems() {
        // Four entries 100 s apart; the second and third share a filesystem.
        let measured = |filesystems: [&str; 4]| -> Vec<(RemoteEntry, Footprint)> {
            filesystems
                .iter()
                .enumerate()
                .map(|(at, fs)| {
                    let key = format!("e{at}");
                    let blobs = footprint(&[(&format!("m-{key}"), 10), (fs, 100)]);
                    (entry(&key, 100 * (at as u64 + 1), fs), blobs)
                })
                .collect()
        };
        let policy = |before: Option<u64>, max_bytes: Option<u64>| RemotePolicy {
            pushed_before: before.map(from_unix),
            max_bytes,
        };
        let four = measured(["a", "b", "b", "c"]);
        // Age alone: the first goes; nothing is measured.
        let plan = select_remote(four.clone(), &policy(Some(150), None));
        assert_eq!(keys(&plan.removed), ["e0"]);
        assert_eq!(plan.bytes, None);
        // Size alone: the second goes with the first, its filesystem stays
        // with the third (e2 and e3: 10 + 100 + 10 + 100).
        let plan = select_remote(four.clone(), &policy(None, Some(220)));
        assert_eq!(keys(&plan.removed), ["e0", "e1"]);
        assert_eq!(keys(&plan.kept), ["e2", "e3"]);
        assert_eq!(plan.filesystems(), ["a"]);
        assert_eq!(plan.bytes, Some((120, 220)));
        // Both: the age takes the first two, the size the third.
        let plan = select_remote(four.clone(), &policy(Some(250), Some(110)));
        assert_eq!(keys(&plan.removed), ["e0", "e1", "e2"]);
        assert_eq!(plan.filesystems(), ["a", "b"]);
        assert_eq!(plan.bytes, Some((230, 110)));
        // What fits stays whatever its age.
        let plan = select_remote(four, &policy(None, Some(10_000)));
        assert!(plan.removed.is_empty());
        assert_eq!(plan.bytes, Some((0, 340)));
    }
}
