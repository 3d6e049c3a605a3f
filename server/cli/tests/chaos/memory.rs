//! Memory bounded by design: a 1 GiB host file (sparse) loads with the
//! engine's peak RSS under 100 MB, and `contents` of it is refused with an
//! error naming the cap and `export`.

use std::time::Duration;

use serde_json::json;

use crate::engine::{self, Engine, Spec};
use crate::Outcome;

const MB: u64 = 1024 * 1024;

pub(crate) fn run() -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::under(dir.path());
    let big = dir.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1024 * MB)
        .unwrap();
    let engine = Engine::start(&spec);
    let answer = engine::query_socket(
        &spec.socket,
        r#"query($path: String!) { host { file(path: $path) { size } } }"#,
        &json!({ "path": big }),
        Duration::from_secs(300),
    )
    .unwrap_or_else(|error| json!({ "errors": [{ "message": error }] }));
    let loaded = answer["data"]["host"]["file"]["size"].as_u64() == Some(1024 * MB);
    let peak = engine.peak_rss();
    let contents = engine::query_socket(
        &spec.socket,
        r#"query($path: String!) { host { file(path: $path) { contents } } }"#,
        &json!({ "path": big }),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|error| json!({ "errors": [{ "message": error }] }));
    let refusal = engine::error_of(&contents).unwrap_or_default();
    let refused = refusal.contains("export") && refusal.to_lowercase().contains("cap");
    let figure = format!(
        "load: {}, peak RSS {} MB; contents: {}",
        if loaded {
            "ok".to_owned()
        } else {
            format!("failed: {answer}")
        },
        peak / MB,
        if refused {
            "refused naming the cap and export".to_owned()
        } else if refusal.is_empty() {
            "answered (whole file in memory)".to_owned()
        } else {
            format!("error without the cap: {refusal}")
        }
    );
    drop(engine);
    Outcome::new(figure, loaded && peak < 100 * MB && refused)
}
