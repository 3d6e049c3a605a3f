//! `gantry cache ls|du|prune`: what the local store holds, what it costs and
//! removing part of it (docs/cache.md, "Managing the cache"). Removal goes
//! through `prune::prune_local`, shared with `gantry prune` and the engines'
//! `--cache-max-size`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _, Result};
use gantry_core::store::{RecordKind, Store as _};
use gantry_core::value::ExecRecord;
use gantry_store::{Bucket, DiskStore, Keep, Policy, RecordInfo, StateDir};
use serde_json::{json, Value};

use crate::prune::{self, Options};
use crate::remote_admin::{RemoteEntry, Repository};
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
    /// Remove entries not used for this long: 30m, 12h, 7d, 2w
    #[arg(long, value_name = "DURATION")]
    older_than: Option<String>,
    /// Then remove the least recently used entries until records and blobs fit in SIZE: 500MB, 10GB
    #[arg(long, value_name = "SIZE")]
    max_size: Option<String>,
    /// Remove everything (as `gantry prune`); refused while an engine uses the state directory
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

async fn prune(args: CachePruneArgs) -> Result<()> {
    let keep = if args.all {
        Keep::Nothing
    } else {
        if args.older_than.is_none() && args.max_size.is_none() {
            bail!("say what to remove: --older-than DURATION (e.g. 7d), --max-size SIZE (e.g. 10GB), or --all");
        }
        let unused_before = match &args.older_than {
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

/// Removes the entries pushed before `--older-than`, and the filesystems
/// only they refer to, by manifest digest.
async fn prune_remote(repository: &Repository, args: &CachePruneArgs) -> Result<()> {
    if args.max_size.is_some() || args.all {
        bail!("--remote takes --older-than only (a registry reports no sizes to keep under; delete the repository to remove everything)");
    }
    let Some(older_than) = &args.older_than else {
        bail!("say what to remove from the remote cache: --older-than DURATION (e.g. 30d)");
    };
    let cutoff = SystemTime::now()
        .checked_sub(units::parse_duration(older_than).map_err(anyhow::Error::msg)?)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let entries = repository.entries().await?;
    let (old, kept): (Vec<RemoteEntry>, Vec<RemoteEntry>) = entries
        .into_iter()
        .partition(|entry| from_unix(entry.created) < cutoff);
    // A filesystem another kept entry refers to stays.
    let shared: std::collections::HashSet<&str> =
        kept.iter().map(|entry| entry.filesystem.as_str()).collect();
    let mut filesystems: Vec<&str> = old
        .iter()
        .map(|entry| entry.filesystem.as_str())
        .filter(|digest| !shared.contains(digest) && !digest.is_empty())
        .collect();
    filesystems.sort();
    filesystems.dedup();
    if !args.dry_run {
        repository.remove(&old, &filesystems).await?;
    }
    if args.target.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dry_run": args.dry_run,
                "entries": old,
                "filesystems": filesystems,
                "kept": kept.len(),
            }))?
        );
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        eprintln!(
            "gantry: {verb} {} remote cache entries and {} filesystems; {} entries kept",
            old.len(),
            filesystems.len(),
            kept.len()
        );
    }
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
