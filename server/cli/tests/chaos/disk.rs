//! A full disk: the state directory on a small tmpfs, filled to the last
//! byte. A step that must write there fails with an error naming the OS
//! cause and the path, leaves no temp file, `gantry prune` works on the full
//! disk, and the same engine recovers by itself once space returns.

use std::io::Write as _;
use std::process::Command;

use serde_json::json;

use crate::engine::{self, Engine, Spec};
use crate::Outcome;

/// Unmounts the tmpfs when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

pub(crate) fn run() -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::under(dir.path());
    std::fs::create_dir_all(&spec.state).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&spec.state)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "cannot mount a tmpfs (the scenario needs root)"
    );
    let _tmpfs = Tmpfs(spec.state.clone());
    let engine = Engine::start(&spec);
    let marker = format!("disk-{:x}", engine::random_u64());
    let step = |n: u32| {
        format!(
            r#"{{ container {{ from(address: "{}") {{ withExec(args: ["sh", "-c", "echo {marker}-{n}"]) {{ stdout }} }} }} }}"#,
            crate::support::busybox()
        )
    };
    let warm = engine.query(&step(0), &json!(null));
    assert!(warm["errors"].is_null(), "{warm}");
    fill(&spec.state.join("filler"));
    let full = engine.query(&step(1), &json!(null));
    let error = engine::error_of(&full).unwrap_or_default();
    let lower = error.to_lowercase();
    let named = lower.contains("no space left on device")
        && error.contains(&spec.state.display().to_string());
    let left = engine::files_under(&spec.state.join("store/tmp")).len()
        + std::fs::read_dir(spec.state.join("scratch"))
            .map(|e| e.count())
            .unwrap_or(0);
    let prune = spec
        .command(&["prune", "--keep-storage", "1MB"])
        .output()
        .unwrap();
    std::fs::remove_file(spec.state.join("filler")).unwrap();
    let recovered = engine.query(&step(1), &json!(null));
    let recovered_ok =
        recovered["errors"].is_null() && recovered.to_string().contains(&format!("{marker}-1"));
    let figure = format!(
        "error names cause and path: {} ({error:?}); temp files left: {left}; prune on the full disk: {}; recovered: {}",
        yes(named),
        if prune.status.success() { "ok".to_owned() } else { format!("failed: {}", String::from_utf8_lossy(&prune.stderr).trim()) },
        yes(recovered_ok),
    );
    drop(engine);
    Outcome::new(
        figure,
        named && left == 0 && prune.status.success() && recovered_ok,
    )
}

fn yes(flag: bool) -> &'static str {
    if flag {
        "y"
    } else {
        "n"
    }
}

/// Writes `path` until the filesystem is full.
fn fill(path: &std::path::Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a; 64 * 1024];
    loop {
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    // The last partial chunk: byte by byte.
    while file.write_all(&[0x5a]).is_ok() {}
    let _ = file.sync_all();
}
