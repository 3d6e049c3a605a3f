//! Lifecycle: cancelling kills the whole process tree; a killed engine's containers,
//! mounts, cgroups and namespaces are cleaned up by the next one; deep chains flatten.

use std::path::Path;
use std::time::{Duration, Instant};

use gantry_core::runtime::Runtime as _;

use crate::support::*;

/// Pids whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mounts_mentioning(needle: &str) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test]
async fn cancelling_a_step_kills_its_whole_process_tree() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    let seconds = 3000 + rand_u64() % 5000;
    let script = format!("sleep {seconds} & sleep {seconds} & (sleep {seconds}; echo) & wait");
    let step = fixture.runtime.exec(spec(&image, &["sh", "-c", &script]));
    let needle = format!("sleep {seconds}");
    let watcher = {
        let needle = needle.clone();
        tokio::task::spawn_blocking(move || {
            wait_until("the step's processes", Duration::from_secs(30), || {
                processes_with(&needle).len() >= 3
            })
        })
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::select! {
            _ = step => panic!("the step ended by itself"),
            started = watcher => started.unwrap(),
        }
    })
    .await;
    outcome.expect("the processes started");
    // The exec future was dropped by select!: everything it started must go.
    let needle2 = needle.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(
            "the processes to be killed",
            Duration::from_secs(15),
            || processes_with(&needle2).is_empty(),
        )
    })
    .await
    .unwrap();
    let run_dir = fixture.runtime.run_dir().to_owned();
    tokio::task::spawn_blocking(move || {
        wait_until(
            "the step's mount and run directory to go",
            Duration::from_secs(15),
            || {
                mounts_mentioning(&run_dir.display().to_string()) == 0
                    && std::fs::read_dir(run_dir.join("steps"))
                        .map(|d| d.count())
                        .unwrap_or(0)
                        == 0
            },
        )
    })
    .await
    .unwrap();
}

/// The child half of `a_killed_engines_leftovers_are_cleaned_by_the_next`: an engine
/// that starts a long step on the state directory it is given, then waits to be killed.
#[tokio::test]
async fn child_engine_process() {
    let (Ok(state), Ok(seconds)) = (
        std::env::var("GANTRY_NATIVE_TEST_CHILD_STATE"),
        std::env::var("GANTRY_NATIVE_TEST_CHILD_SLEEP"),
    ) else {
        return; // only meaningful when the parent test runs it
    };
    let runtime = start_runtime(Path::new(&state)).await;
    let image = runtime.pull(&busybox(), None).await.unwrap().image_id;
    let script = format!("echo partial > /partial; sleep {seconds} & sleep {seconds}");
    let _ = runtime.exec(spec(&image, &["sh", "-c", &script])).await;
    panic!("the child engine should have been killed");
}

#[tokio::test]
async fn a_killed_engines_leftovers_are_cleaned_by_the_next() {
    if !native_available() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let seconds = 3000 + rand_u64() % 5000;
    let needle = format!("sleep {seconds}");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lifecycle::child_engine_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GANTRY_NATIVE_TEST_CHILD_STATE", state.path())
        .env("GANTRY_NATIVE_TEST_CHILD_SLEEP", seconds.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the child engine's step", Duration::from_secs(60), || {
        processes_with(&needle).len() >= 2
    });
    let child_pid = child.id();
    child.kill().unwrap(); // SIGKILL: no cleanup of its own
    child.wait().unwrap();
    // Its step outlived it, with its mount, cgroup, namespace and unfinished layer.
    assert!(processes_with(&needle).len() >= 2);
    let engine = format!("{child_pid}-");
    assert!(
        mounts_mentioning(&format!("/engines/{engine}")) > 0,
        "the child's overlay is mounted"
    );
    let tmp = crate::support::store_root(state.path()).join("tmp");
    let leftovers = |prefix: &str| {
        std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .count()
    };
    assert!(leftovers(&format!("{child_pid}-")) > 0);
    let netns = || {
        std::fs::read_dir("/run/netns")
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("gantry-{engine}"))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(netns() > 0, "the child's network namespace exists");

    let next = start_runtime(state.path()).await;
    let removed = next.remove_orphans().await.unwrap();
    assert!(removed >= 1, "removed {removed}");
    wait_until(
        "the orphaned processes to be killed",
        Duration::from_secs(15),
        || processes_with(&needle).is_empty(),
    );
    assert_eq!(mounts_mentioning(&format!("/engines/{engine}")), 0);
    assert_eq!(leftovers(&format!("{child_pid}-")), 0);
    assert_eq!(netns(), 0);
    let cgroups_left = [
        "/sys/fs/cgroup/memory/gantry",
        "/sys/fs/cgroup/pids/gantry",
        "/sys/fs/cgroup/gantry",
    ]
    .iter()
    .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
    .filter(|e| e.file_name().to_string_lossy().starts_with(&engine))
    .count();
    assert_eq!(cgroups_left, 0);
    // The store still works, and nothing of the half-finished step became an image.
    let image = next.pull(&busybox(), None).await.unwrap().image_id;
    let out = next
        .exec(spec(
            &image,
            &["sh", "-c", "test -e /partial || echo clean"],
        ))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"clean\n");
}

/// A killed engine's veth pairs outlive it (its namespaces go with the orphan
/// cleanup, their devices later still): the next engine to hold its address block
/// removes them before its steps need their names.
#[tokio::test]
async fn links_a_dead_engine_left_on_its_address_block_do_not_stop_the_next() {
    if !native_available() {
        return;
    }
    // The blocks the next engines will take (the lowest no engine holds), each
    // given stale veth pairs named as a dead engine's (a killed engine may have
    // left some already).
    let net = Path::new(gantry_native::DEFAULT_RUN_ROOT).join("net");
    let free = |block: &u8| {
        let path = net.join(format!("block-{block}.lock"));
        let Ok(file) = std::fs::OpenOptions::new().read(true).open(&path) else {
            return true;
        };
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
    };
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let exists = |link: &str| Path::new("/sys/class/net").join(link).exists();
    let state = tempfile::tempdir().unwrap();
    // The engine takes the lowest free block. Another test's engine may free a
    // lower one between the look and the start: then the engine is stopped and
    // the test looks again (a few times at most).
    let mut links: Vec<String> = Vec::new();
    let mut attempts = 0;
    let (runtime, block) = loop {
        attempts += 1;
        let blocks: Vec<u8> = (1..=254u8).filter(free).take(3).collect();
        let poisoned: Vec<String> = blocks
            .iter()
            .flat_map(|block| (2..=4).map(move |host| format!("gv{block}-{host}")))
            .collect();
        for link in poisoned.iter().filter(|link| !exists(link)) {
            let peer = link.replacen("gv", "gs", 1);
            let added = ip(&["link", "add", link, "type", "veth", "peer", "name", &peer]);
            assert!(added, "ip link add {link}");
        }
        links.extend(poisoned);
        let runtime = start_runtime(state.path()).await;
        let block = runtime
            .network_block()
            .expect("the bridge network is the default");
        if blocks.contains(&block) || attempts == 5 {
            assert!(
                blocks.contains(&block),
                "took block {block}, not one of {blocks:?} (in {attempts} attempts)"
            );
            break (runtime, block);
        }
        runtime.shutdown().await;
    };
    for host in 2..=4 {
        let link = format!("gv{block}-{host}");
        assert!(!exists(&link), "{link} is still there");
    }
    let image = runtime.pull(&busybox(), None).await.unwrap().image_id;
    for _ in 0..3 {
        let out = runtime.exec(spec(&image, &["echo", "ok"])).await.unwrap();
        assert_eq!(out.stdout, b"ok\n");
    }
    for link in links.iter().filter(|link| exists(link)) {
        ip(&["link", "delete", link]);
    }
}

#[tokio::test]
async fn deep_chains_are_flattened_and_keep_every_change() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let mut image = fixture.pull(&busybox()).await.image_id;
    let steps = gantry_native::MAX_LOWER_LAYERS + 5;
    for n in 0..steps {
        let script = if n == 3 {
            "rm /bin/ls; echo 3 > /f3".to_owned()
        } else {
            format!("echo {n} > /f{n}")
        };
        image = fixture.exec(&image, &["sh", "-c", &script]).await.image_id;
    }
    let out = fixture
        .sh(&image, "cat /f* | wc -l; test -e /bin/ls || echo no-ls")
        .await;
    assert_eq!(out, format!("{steps}\nno-ls\n"));
}
