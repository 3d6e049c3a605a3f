//! Cache volumes: persistent, shared or locked, and out of cache keys.

use serde_json::json;

use crate::support::{self, busybox, Server};
use crate::support::{error_message, id_of, run, stdout_of, still_serving, text};

const CACHE_EXEC: &str = r#"
query($image: String!, $cache: ID!, $path: String!, $env: String!, $script: String!) {
  container { from(address: $image) { withEnvVariable(name: "PIPELINE", value: $env) {
    withMountedCache(path: $path, cache: $cache) { withExec(args: ["sh", "-c", $script]) { stdout } } } } }
}"#;

fn cache_volume_id(server: &Server, key: &str) -> String {
    id_of(
        server,
        r#"query($key: String!) { cacheVolume(key: $key) { id } }"#,
        json!({ "key": key }),
        "cacheVolume",
    )
}

/// Runs `script` with the volume `key` mounted at `path`.
fn with_cache(server: &Server, key: &str, path: &str, pipeline: &str, script: &str) -> String {
    stdout_of(
        server,
        CACHE_EXEC,
        json!({ "image": busybox(), "cache": cache_volume_id(server, key), "path": path,
                "env": pipeline, "script": script }),
        "container.from.withEnvVariable.withMountedCache.withExec",
    )
}

#[test]
fn cache_volumes_persist_are_shared_and_stay_out_of_cache_keys() {
    require_runtime!();
    let mut server = Server::start();
    let key = support::unique("vol");
    assert_eq!(
        with_cache(
            &server,
            &key,
            "/cache",
            "one",
            "echo run1 >> /cache/log; cat /cache/log"
        ),
        "run1\n"
    );
    // Another pipeline naming the same volume (mounted elsewhere) sees it.
    assert_eq!(
        with_cache(
            &server,
            &key,
            "/other",
            "two",
            "echo run2 >> /other/log; cat /other/log"
        ),
        "run1\nrun2\n"
    );
    let read = |server: &Server| with_cache(server, &key, "/cache", "reader", "cat /cache/log");
    assert_eq!(read(&server), "run1\nrun2\n");
    // A changed volume does not invalidate a cached step: its contents are in no key.
    with_cache(&server, &key, "/cache", "three", "echo run3 >> /cache/log");
    let since = support::now();
    assert_eq!(read(&server), "run1\nrun2\n");
    assert_eq!(support::containers_created_since(&since, server.pid()), 0);
    // The volume outlives the engine.
    server.restart();
    assert_eq!(read(&server), "run1\nrun2\n", "still the cached result");
    assert_eq!(
        with_cache(
            &server,
            &key,
            "/cache",
            "four",
            "echo run4 >> /cache/log; cat /cache/log"
        ),
        "run1\nrun2\nrun3\nrun4\n"
    );
    // Another key is another volume.
    let other = support::unique("vol-other");
    assert_eq!(
        with_cache(
            &server,
            &other,
            "/cache",
            "five",
            "cat /cache/log 2>/dev/null || echo empty"
        ),
        "empty\n"
    );

    // source and owner seed a volume when it is first created.
    let seeded = support::unique("vol-seeded");
    let out = run(
        &server,
        r#"query($key: String!) { cacheVolume(key: $key) { id }
           directory { withNewFile(path: "seed.txt", contents: "seeded") { id } } }"#,
        json!({ "key": seeded }),
    );
    let stdout = stdout_of(
        &server,
        r#"query($image: String!, $cache: ID!, $source: ID!) { container { from(address: $image) {
            withMountedCache(path: "/c", cache: $cache, source: $source, owner: "1000:1000") {
              withExec(args: ["sh", "-c", "cat /c/seed.txt; stat -c ' %u' /c"]) { stdout } } } } }"#,
        json!({ "image": busybox(), "cache": text(&out, "cacheVolume.id"),
                "source": text(&out, "directory.withNewFile.id") }),
        "container.from.withMountedCache.withExec",
    );
    assert_eq!(stdout, "seeded 1000\n");
}

/// (start, end) of each `name` in a log of `start NAME T` / `end NAME T` lines.
fn intervals(log: &str) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    for line in log.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [what, name, time] = parts[..] else {
            panic!("bad log line {line:?} in {log}");
        };
        let time: f64 = time.parse().unwrap();
        match what {
            "start" => out.push((name.to_owned(), time, f64::NAN)),
            "end" => {
                out.iter_mut()
                    .find(|(n, _, _)| n == name)
                    .unwrap_or_else(|| panic!("end before start in {log}"))
                    .2 = time
            }
            _ => panic!("bad log line {line:?}"),
        }
    }
    assert_eq!(out.len(), 2, "{log}");
    out
}

/// Two concurrent execs mounting one volume with `sharing`; returns the
/// log of start and end times (from /proc/uptime, one clock for every
/// container) they wrote into it. Each waits, after its start, until the
/// other has started too: up to 60 s for SHARED, so execs that may overlap
/// always do, however slowly the machine starts containers; 2 s otherwise,
/// since serialised execs cannot meet (the check is the order of the
/// times, never their distance).
fn two_writers(server: &Server, sharing: &str) -> String {
    let key = support::unique(&format!("vol-{sharing}"));
    let cache = cache_volume_id(server, &key);
    let tries = if sharing == "SHARED" { 600 } else { 20 };
    let script = format!("echo start $0 $(cut -d' ' -f1 /proc/uptime) >> /c/log; i=0; while [ $(grep -c start /c/log) -lt 2 ] && [ $i -lt {tries} ]; do sleep 0.1; i=$((i+1)); done; echo end $0 $(cut -d' ' -f1 /proc/uptime) >> /c/log");
    let query = format!(
        r#"query($image: String!, $cache: ID!) {{ container {{ from(address: $image) {{
            withMountedCache(path: "/c", cache: $cache, sharing: {sharing}) {{
              one: withExec(args: ["sh", "-c", "{script}", "one"]) {{ exitCode }}
              two: withExec(args: ["sh", "-c", "{script}", "two"]) {{ exitCode }} }} }} }} }}"#
    );
    run(
        server,
        &query,
        json!({ "image": busybox(), "cache": cache }),
    );
    let marker = support::unique("read");
    stdout_of(
        server,
        r#"query($image: String!, $cache: ID!, $marker: String!) { container { from(address: $image) {
            withMountedCache(path: "/c", cache: $cache) {
              withExec(args: ["sh", "-c", "cat /c/log", $marker]) { stdout } } } } }"#,
        json!({ "image": busybox(), "cache": cache, "marker": marker }),
        "container.from.withMountedCache.withExec",
    )
}

#[test]
fn locked_cache_volumes_serialise_execs() {
    require_runtime!();
    let server = Server::start();
    // Warm the pull.
    run(
        &server,
        r#"query($image: String!) { container { from(address: $image) { id: sync } } }"#,
        json!({ "image": busybox() }),
    );
    for sharing in ["LOCKED", "PRIVATE"] {
        let log = two_writers(&server, sharing);
        let runs = intervals(&log);
        let (first, second) = if runs[0].1 <= runs[1].1 {
            (&runs[0], &runs[1])
        } else {
            (&runs[1], &runs[0])
        };
        assert!(first.2 <= second.1, "{sharing} execs overlapped:\n{log}");
    }
    // The control: SHARED lets them overlap, so the check above can fail. The
    // log's line order decides (both starts before the first end): /proc/uptime
    // ticks every 10 ms, so a start and an end can carry the same time.
    let log = two_writers(&server, "SHARED");
    assert_eq!(intervals(&log).len(), 2, "{log}");
    let before_first_end: Vec<&str> = log
        .lines()
        .take_while(|line| !line.starts_with("end "))
        .collect();
    assert!(
        before_first_end.len() == 2 && before_first_end.iter().all(|l| l.starts_with("start ")),
        "SHARED execs did not overlap:\n{log}"
    );

    // One LOCKED volume at two paths of one container: a clear error, no container.
    let key = support::unique("vol-twice");
    let cache = cache_volume_id(&server, &key);
    let since = support::now();
    let out = server.query_vars(
        r#"query($image: String!, $cache: ID!) { container { from(address: $image) {
            withMountedCache(path: "/a", cache: $cache, sharing: LOCKED) {
              withMountedCache(path: "/b", cache: $cache, sharing: LOCKED) {
                withExec(args: ["true"]) { stdout } } } } } }"#,
        &json!({ "image": busybox(), "cache": cache }),
    );
    let message = error_message(&out);
    assert!(
        message.contains(&key) && message.contains("/a") && message.contains("only once"),
        "{message}"
    );
    assert_eq!(support::containers_created_since(&since, server.pid()), 0);
    still_serving(&server);
}
