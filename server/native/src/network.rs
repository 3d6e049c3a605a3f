//! Step networking: a network namespace per step on a bridge of gantry's own, with
//! outbound traffic masqueraded.
//!
//! - The bridge `gantry0` holds the gateway `10.87.0.1/16`; each step's namespace gets
//!   a veth pair (`eth0` inside, `gv…` on the bridge), an address and a default route.
//!   Steps and services reach each other by address (their names are `/etc/hosts`
//!   lines: `service`). The engine listens for containers (`Host.service`) on `/32`
//!   addresses of its block added to the bridge ([`Network::host_address`]).
//! - Each engine holds one `/24` block of the subnet (`10.87.<block>.0`), claimed with
//!   a lock file for as long as it runs, so engines sharing the machine never hand
//!   out the same address and a killed engine's block frees itself.
//! - NAT and forwarding use rules in chains gantry creates and names
//!   (`GANTRY-POSTROUTING` in `nat`, `GANTRY-FORWARD` in `filter`), reached through one
//!   jump each from `POSTROUTING` and `FORWARD`. The last engine to stop removes the
//!   jumps, the chains and the bridge. The host's own rules, `/etc/resolv.conf` and
//!   routes are never edited; a step's `/etc/resolv.conf` is a copy of the host's
//!   without loopback name servers (unreachable from a namespace).
//! - `net.ipv4.ip_forward` must be 1 for steps to reach beyond the host; gantry turns
//!   it on when it is off (as Docker does) and says so in its log.
//!
//! - Creating a namespace takes two `ip` processes, and deleting one two more: neither
//!   is on a step's path. The engine keeps a few namespaces ready ([`READY`]), made at
//!   start (once dead engines' leftovers are gone) and refilled in the background as
//!   steps take them, and deletes a finished
//!   step's namespace in the background too ([`Network::release_later`]); its address is
//!   handed out again only once that is done. [`Network::shutdown`] waits for both and
//!   deletes the unused ready ones.
//!
//! Host networking (`NetworkMode::Host`) is an explicit opt-in: steps then share the
//! engine's network namespace and none of the above is set up.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt as _;

use crate::error::Error;

pub(crate) const BRIDGE: &str = "gantry0";
const SUBNET_PREFIX: &str = "10.87";
const NAT_CHAIN: &str = "GANTRY-POSTROUTING";
const FORWARD_CHAIN: &str = "GANTRY-FORWARD";
const NETNS_DIR: &str = "/run/netns";
/// Namespaces kept ready for the next steps: enough for a chain of steps and the first
/// of a few parallel ones to start without waiting for `ip`.
const READY: usize = 2;

/// How steps reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// A namespace per step on gantry's bridge, with NAT (the default).
    #[default]
    Bridge,
    /// The host's network namespace.
    Host,
}

/// The bridge network of one engine.
#[derive(Debug)]
pub(crate) struct Network {
    block: u8,
    /// Held for the engine's lifetime: the claim on `block`.
    _block_lock: OwnedFd,
    free: Mutex<BTreeSet<u8>>,
    last: Mutex<u8>,
    run_root: PathBuf,
    resolv_conf: Vec<u8>,
    /// `<pid>-<n>` of the engine: namespaces are named `gantry-<engine>-<sequence>`.
    engine: String,
    sequence: AtomicU64,
    /// Namespaces made ahead, not yet given to a step.
    ready: Mutex<Vec<StepNetwork>>,
    /// A refill of `ready` is under way.
    filling: AtomicBool,
    /// Background refills and deletions, awaited by [`Network::shutdown`].
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// One step's namespace, removed by [`Network::release`].
#[derive(Debug)]
pub(crate) struct StepNetwork {
    pub(crate) name: String,
    pub(crate) address: String,
    host: u8,
}

impl StepNetwork {
    pub(crate) fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }
}

async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), Error> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| Error::Command {
        program: program.to_owned(),
        action: "setting up the step network",
        detail: format!("cannot start it: {source} (install iproute2 and iptables)"),
    })?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        let _ = input.write_all(text.as_bytes()).await;
        drop(input);
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|source| Error::Command {
            program: program.to_owned(),
            action: "setting up the step network",
            detail: source.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            program: format!("{program} {}", args.join(" ")),
            action: "setting up the step network",
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

async fn succeeds(program: &str, args: &[&str]) -> bool {
    tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

fn lock_file(path: &Path, wait: bool) -> Result<Option<OwnedFd>, Error> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::CREATE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(|errno| Error::io("opening a lock file", path, errno.into()))?;
    let operation = if wait {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    };
    match rustix::fs::flock(&fd, operation) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(errno) => Err(Error::io("locking", path, errno.into())),
    }
}

/// The host's name servers a namespace can reach (loopback ones cannot be).
fn step_resolv_conf() -> Vec<u8> {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    for line in host.lines() {
        let loopback = line
            .strip_prefix("nameserver")
            .map(str::trim)
            .is_some_and(|server| server.starts_with("127.") || server == "::1");
        if !loopback {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

impl Network {
    /// Sets up the bridge and the rules (once per machine) and claims a block.
    pub(crate) async fn start(run_root: &Path, engine: &str) -> Result<Self, Error> {
        let net_dir = run_root.join("net");
        std::fs::create_dir_all(&net_dir)
            .map_err(|source| Error::io("creating", &net_dir, source))?;
        let guard =
            lock_file(&net_dir.join("setup.lock"), true)?.expect("a blocking lock is taken");
        let mut claimed = None;
        for block in 1..=254u8 {
            if let Some(lock) = lock_file(&net_dir.join(format!("block-{block}.lock")), false)? {
                claimed = Some((block, lock));
                break;
            }
        }
        let (block, block_lock) = claimed.ok_or_else(|| Error::Unsupported {
            reason:
                "every address block of the step network is held by a running engine (254 at most)"
                    .to_owned(),
        })?;
        let outcome = Self::ensure_shared().await;
        drop(guard);
        outcome?;
        remove_stale_links(block).await;
        // Host service addresses an earlier holder of the block left behind.
        for (stale, host) in bridge_host_addresses() {
            if stale == block {
                delete_bridge_address(block, host);
            }
        }
        Ok(Self {
            block,
            _block_lock: block_lock,
            free: Mutex::new((2..=254).collect()),
            last: Mutex::new(1),
            run_root: run_root.to_owned(),
            resolv_conf: step_resolv_conf(),
            engine: engine.to_owned(),
            sequence: AtomicU64::new(0),
            ready: Mutex::new(Vec::new()),
            filling: AtomicBool::new(false),
            background: Mutex::new(Vec::new()),
        })
    }

    /// The bridge, the chains and their jumps, each created when missing.
    async fn ensure_shared() -> Result<(), Error> {
        if !Path::new(&format!("/sys/class/net/{BRIDGE}")).exists() {
            let gateway = format!("{SUBNET_PREFIX}.0.1/16");
            let batch = format!(
                "link add {BRIDGE} type bridge\naddr add {gateway} dev {BRIDGE}\nlink set {BRIDGE} up\n"
            );
            if let Err(error) = run("ip", &["-batch", "-"], Some(&batch)).await {
                // Another engine may have raced us to it.
                if !Path::new(&format!("/sys/class/net/{BRIDGE}")).exists() {
                    return Err(error);
                }
            }
            tracing::info!(bridge = BRIDGE, %gateway, "created the step network bridge");
        }
        let subnet = format!("{SUBNET_PREFIX}.0.0/16");
        let rules: [(&str, &str, &str, Vec<Vec<&str>>); 2] = [
            (
                "nat",
                "POSTROUTING",
                NAT_CHAIN,
                vec![vec!["-s", &subnet, "!", "-o", BRIDGE, "-j", "MASQUERADE"]],
            ),
            (
                "filter",
                "FORWARD",
                FORWARD_CHAIN,
                vec![
                    vec!["-i", BRIDGE, "-j", "ACCEPT"],
                    vec![
                        "-o",
                        BRIDGE,
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "RELATED,ESTABLISHED",
                        "-j",
                        "ACCEPT",
                    ],
                ],
            ),
        ];
        for (table, hook, chain, chain_rules) in rules {
            if !succeeds("iptables", &["-t", table, "-L", chain, "-n"]).await {
                run("iptables", &["-t", table, "-N", chain], None).await?;
            }
            for rule in chain_rules {
                let mut check = vec!["-t", table, "-C", chain];
                check.extend(&rule);
                if !succeeds("iptables", &check).await {
                    let mut add = vec!["-t", table, "-A", chain];
                    add.extend(&rule);
                    run("iptables", &add, None).await?;
                }
            }
            if !succeeds("iptables", &["-t", table, "-C", hook, "-j", chain]).await {
                run("iptables", &["-t", table, "-I", hook, "-j", chain], None).await?;
            }
        }
        if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "0") {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1").map_err(|source| {
                Error::io(
                    "enabling IPv4 forwarding",
                    Path::new("/proc/sys/net/ipv4/ip_forward"),
                    source,
                )
            })?;
            tracing::info!("enabled net.ipv4.ip_forward for the step network");
        }
        Ok(())
    }

    /// A namespace for one step: a ready one if there is, else a new one. Either way a
    /// refill of the ready ones starts in the background.
    pub(crate) async fn take(self: &Arc<Self>) -> Result<StepNetwork, Error> {
        let ready = self
            .ready
            .lock()
            .expect("the ready set is never poisoned")
            .pop();
        self.refill();
        match ready {
            Some(step) => Ok(step),
            None => self.create().await,
        }
    }

    /// Starts making namespaces until [`READY`] are waiting (unless a refill is under way).
    pub(crate) fn refill(self: &Arc<Self>) {
        if self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let network = self.clone();
        self.track(tokio::spawn(async move {
            loop {
                let missing = READY.saturating_sub(
                    network
                        .ready
                        .lock()
                        .expect("the ready set is never poisoned")
                        .len(),
                );
                if missing == 0 {
                    break;
                }
                match network.create().await {
                    Ok(step) => network
                        .ready
                        .lock()
                        .expect("the ready set is never poisoned")
                        .push(step),
                    Err(error) => {
                        // Steps then make their own, and report the error themselves.
                        tracing::debug!(%error, "cannot make a step network ahead");
                        break;
                    }
                }
            }
            network.filling.store(false, Ordering::Release);
        }));
    }

    fn track(&self, handle: tokio::task::JoinHandle<()>) {
        let mut background = self
            .background
            .lock()
            .expect("the task list is never poisoned");
        background.retain(|task| !task.is_finished());
        background.push(handle);
    }

    /// Deletes a finished step's namespace in the background (see the module
    /// documentation); its address is free again afterwards.
    pub(crate) fn release_later(self: &Arc<Self>, step: StepNetwork) {
        let network = self.clone();
        self.track(tokio::task::spawn_blocking(move || network.release(step)));
    }

    /// The engine is stopping: waits for the background work and deletes the ready
    /// namespaces.
    pub(crate) async fn shutdown(self: &Arc<Self>) {
        loop {
            let pending = std::mem::take(
                &mut *self
                    .background
                    .lock()
                    .expect("the task list is never poisoned"),
            );
            if pending.is_empty() {
                break;
            }
            for task in pending {
                let _ = task.await;
            }
        }
        let network = self.clone();
        let _ = tokio::task::spawn_blocking(move || network.release_ready()).await;
    }

    /// Deletes the namespaces made ahead and not used. Blocking.
    fn release_ready(&self) {
        let ready =
            std::mem::take(&mut *self.ready.lock().expect("the ready set is never poisoned"));
        for step in ready {
            self.release(step);
        }
    }

    /// A new namespace, connected to the bridge.
    async fn create(&self) -> Result<StepNetwork, Error> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let engine = &self.engine;
        let host = self.allocate()?;
        let step = StepNetwork {
            name: format!("gantry-{engine}-{sequence}"),
            address: format!("{SUBNET_PREFIX}.{}.{host}", self.block),
            host,
        };
        let veth = format!("gv{}-{host}", self.block);
        let host_batch = format!(
            "netns add {name}\nlink add {veth} type veth peer name eth0 netns {name}\nlink set {veth} master {BRIDGE} up\n",
            name = step.name
        );
        let ns_batch = format!(
            "link set lo up\naddr add {address}/16 dev eth0\nlink set eth0 up\nroute add default via {SUBNET_PREFIX}.0.1\n",
            address = step.address
        );
        let outcome = async {
            run("ip", &["-batch", "-"], Some(&host_batch)).await?;
            run("ip", &["-n", &step.name, "-batch", "-"], Some(&ns_batch)).await
        }
        .await;
        match outcome {
            Ok(()) => Ok(step),
            Err(error) => {
                self.release(step);
                Err(error)
            }
        }
    }

    /// A free host number of this engine's block.
    fn allocate(&self) -> Result<u8, Error> {
        // Round robin: an address just released is the last to be reused.
        let mut free = self.free.lock().expect("the address set is never poisoned");
        let mut last = self.last.lock().expect("the cursor is never poisoned");
        let next = free
            .range(last.saturating_add(1)..)
            .next()
            .or_else(|| free.iter().next())
            .copied();
        let host = next.ok_or_else(|| {
            Error::other(
                "giving a step an address",
                "all 253 addresses of this engine are in use",
            )
        })?;
        free.remove(&host);
        *last = host;
        Ok(host)
    }

    /// An address of this engine's block on the bridge itself (a `/32` beside the
    /// gateway), for the engine to listen on where containers reach it
    /// (`Host.service`); removed when the [`HostAddress`] drops. Blocking.
    pub(crate) fn host_address(self: &Arc<Self>) -> Result<HostAddress, Error> {
        let host = self.allocate()?;
        let held = HostAddress {
            network: self.clone(),
            host,
        };
        let address = format!("{}/32", held.address());
        let output = std::process::Command::new("ip")
            .args(["addr", "add", &address, "dev", BRIDGE])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| Error::Command {
                program: "ip".to_owned(),
                action: "adding an address to the step network bridge",
                detail: format!("cannot start it: {source} (install iproute2)"),
            })?;
        if !output.status.success() {
            return Err(Error::Command {
                program: format!("ip addr add {address} dev {BRIDGE}"),
                action: "adding an address to the step network bridge",
                detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(held)
    }

    /// Deletes a step's namespace (its veth pair goes with it) and frees its address.
    /// Blocking.
    pub(crate) fn release(&self, step: StepNetwork) {
        // The namespace itself goes when its last user does, asynchronously, and its
        // veth pair with it: delete the pair now so that its name can be reused.
        let veth = format!("gv{}-{}", self.block, step.host);
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", &veth])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deleted = std::process::Command::new("ip")
            .args(["netns", "delete", &step.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !deleted.is_ok_and(|status| status.success()) {
            tracing::debug!(namespace = %step.name, "cannot delete a step's network namespace");
        }
        self.free
            .lock()
            .expect("the address set is never poisoned")
            .insert(step.host);
    }

    pub(crate) fn block(&self) -> u8 {
        self.block
    }

    pub(crate) fn resolv_conf(&self) -> &[u8] {
        &self.resolv_conf
    }
}

impl Drop for Network {
    /// The engine is stopping: when no other engine holds a block, the bridge, the
    /// chains and the jumps go (blocking: this runs when the runtime is dropped).
    fn drop(&mut self) {
        // Without a `shutdown` (an engine dropped in a test), the ready ones go here.
        self.release_ready();
        let net_dir = self.run_root.join("net");
        let Ok(Some(guard)) = lock_file(&net_dir.join("setup.lock"), true) else {
            return;
        };
        let others = (1..=254u8).filter(|b| *b != self.block).any(|b| {
            let path = net_dir.join(format!("block-{b}.lock"));
            path.exists() && matches!(lock_file(&path, false), Ok(None))
        });
        if !others {
            remove_shared();
        }
        drop(guard);
    }
}

/// Removes the jumps, chains and bridge (each if present).
fn remove_shared() {
    let quiet = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    for (table, hook, chain) in [
        ("nat", "POSTROUTING", NAT_CHAIN),
        ("filter", "FORWARD", FORWARD_CHAIN),
    ] {
        while quiet("iptables", &["-t", table, "-D", hook, "-j", chain]) {}
        quiet("iptables", &["-t", table, "-F", chain]);
        quiet("iptables", &["-t", table, "-X", chain]);
    }
    if Path::new(&format!("/sys/class/net/{BRIDGE}")).exists() {
        quiet("ip", &["link", "delete", BRIDGE]);
    }
    tracing::info!("removed the step network");
}

/// Deletes the veth pairs named for `block` (`gv<block>-<host>`) that an engine which
/// held the block before left behind. Their names are this engine's now, and a dead
/// engine's pairs outlive it: its namespaces are only deleted by the orphan cleanup,
/// and the kernel frees a deleted namespace's devices later, asynchronously. Deleting
/// one end of a pair removes both at once.
async fn remove_stale_links(block: u8) {
    let prefix = format!("gv{block}-");
    for entry in std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
    {
        let link = entry.file_name().to_string_lossy().into_owned();
        if link.starts_with(&prefix) && succeeds("ip", &["link", "delete", &link]).await {
            tracing::info!(%link, "removed a step network link left by a stopped engine");
        }
    }
}

/// An address on the bridge held by the engine itself ([`Network::host_address`]).
pub(crate) struct HostAddress {
    network: Arc<Network>,
    host: u8,
}

impl HostAddress {
    pub(crate) fn address(&self) -> std::net::IpAddr {
        format!("{SUBNET_PREFIX}.{}.{}", self.network.block, self.host)
            .parse()
            .expect("a step network address parses")
    }
}

impl Drop for HostAddress {
    fn drop(&mut self) {
        let address = format!("{}/32", self.address());
        let _ = std::process::Command::new("ip")
            .args(["addr", "del", &address, "dev", BRIDGE])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.network
            .free
            .lock()
            .expect("the address set is never poisoned")
            .insert(self.host);
    }
}

/// The `/32` addresses on the bridge (`Network::host_address`) as (block, host).
fn bridge_host_addresses() -> Vec<(u8, u8)> {
    let Ok(output) = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", BRIDGE])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let prefix = format!("{SUBNET_PREFIX}.");
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|word| *word == "inet")?;
            let cidr = words.next()?;
            let host = cidr.strip_suffix("/32")?.strip_prefix(&prefix)?;
            let (block, host) = host.split_once('.')?;
            Some((block.parse().ok()?, host.parse().ok()?))
        })
        .collect()
}

fn delete_bridge_address(block: u8, host: u8) -> bool {
    let address = format!("{SUBNET_PREFIX}.{block}.{host}/32");
    let deleted = std::process::Command::new("ip")
        .args(["addr", "del", &address, "dev", BRIDGE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if deleted {
        tracing::info!(%address, "removed a host service address left by a stopped engine");
    }
    deleted
}

/// Host service addresses on the bridge of engines that are gone (their block's lock
/// is free), or of an earlier holder of `own` (orphan cleanup). Blocking.
pub(crate) fn remove_stale_addresses(run_root: &Path, own: u8) -> usize {
    let net_dir = run_root.join("net");
    // No engine claims a block meanwhile.
    let Ok(Some(guard)) = lock_file(&net_dir.join("setup.lock"), true) else {
        return 0;
    };
    let mut removed = 0;
    for (block, host) in bridge_host_addresses() {
        let stale = block != own && {
            let path = net_dir.join(format!("block-{block}.lock"));
            matches!(lock_file(&path, false), Ok(Some(_)))
        };
        if stale && delete_bridge_address(block, host) {
            removed += 1;
        }
    }
    drop(guard);
    removed
}

/// Network namespaces left by the engine `name` (orphan cleanup).
pub(crate) async fn remove_namespaces_of(name: &str) -> usize {
    let prefix = format!("gantry-{name}-");
    let mut removed = 0;
    for entry in std::fs::read_dir(NETNS_DIR).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && succeeds("ip", &["netns", "delete", &name]).await {
            removed += 1;
        }
    }
    removed
}
