//! Solver behaviour against `FakeRuntime`: laziness, caching, single-flight,
//! parallelism, failures and secrets. No Docker needed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_core::events::{Event, StepState};
use gantry_core::fake::FakeRuntime;
use gantry_core::ops::{self, ExecArgs, Expect, Sharing};
use gantry_core::runtime::OutputStream;
use gantry_core::store::{MemoryStore, RecordKind, Store};
use gantry_core::{Digest, Engine, EngineOptions, Error};

mod common;
use common::{base, exec};

fn engine_with(runtime: Arc<FakeRuntime>, store: Arc<MemoryStore>) -> Engine {
    Engine::new(
        runtime,
        store,
        EngineOptions {
            max_parallel: 16,
            secret_key: [7; 32],
        },
    )
}

fn new_engine() -> (Engine, Arc<FakeRuntime>, Arc<MemoryStore>) {
    let runtime = Arc::new(FakeRuntime::default());
    let store = Arc::new(MemoryStore::default());
    (engine_with(runtime.clone(), store.clone()), runtime, store)
}

fn env_var(engine: &Engine, parent: Digest, name: &str, value: &str) -> Digest {
    engine
        .add(ops::WithEnvVariable {
            parent,
            name: name.into(),
            value: value.into(),
            expand: false,
        })
        .digest
}

fn secret_var(engine: &Engine, parent: Digest, name: &str, secret: Digest) -> Digest {
    engine
        .add(ops::WithSecretVariable {
            parent,
            name: name.into(),
            secret,
        })
        .digest
}

async fn stdout(engine: &Engine, digest: Digest) -> Result<String, Error> {
    let state = engine.container(digest).await?;
    Ok(state.exec.as_ref().ok_or(Error::NoCommand)?.stdout.clone())
}

#[tokio::test]
async fn building_a_long_chain_runs_nothing() {
    let (engine, runtime, _) = new_engine();
    let mut digest = base(&engine);
    for n in 0..1000 {
        digest = engine
            .add(ops::WithEnvVariable {
                parent: digest,
                name: format!("V{n}"),
                value: n.to_string(),
                expand: false,
            })
            .digest;
        digest = exec(&engine, digest, &["echo", "step"]);
    }
    assert_eq!(runtime.execs(), 0);
    assert_eq!(runtime.pull_count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_leaf_evaluates_only_what_it_needs() {
    let (engine, runtime, _) = new_engine();
    let from = base(&engine);
    let first = exec(&engine, from, &["echo", "one"]);
    let _unused_branch = exec(&engine, from, &["echo", "never"]);
    assert_eq!(stdout(&engine, first).await.unwrap(), "one\n");
    assert_eq!(runtime.execs(), 1);
}

#[tokio::test]
async fn identical_work_is_memoised_and_persisted() {
    let runtime = Arc::new(FakeRuntime::default());
    let store = Arc::new(MemoryStore::default());
    {
        let engine = engine_with(runtime.clone(), store.clone());
        let step = exec(&engine, base(&engine), &["echo", "hi"]);
        assert_eq!(stdout(&engine, step).await.unwrap(), "hi\n");
        assert_eq!(stdout(&engine, step).await.unwrap(), "hi\n");
        assert_eq!(runtime.execs(), 1);
    }
    // A fresh engine over the same store: a restart. Nothing re-runs.
    let engine = engine_with(runtime.clone(), store.clone());
    let step = exec(&engine, base(&engine), &["echo", "hi"]);
    assert_eq!(stdout(&engine, step).await.unwrap(), "hi\n");
    assert_eq!(runtime.execs(), 1);
    assert!(store.record_count(RecordKind::Exec) >= 1);
}

#[tokio::test]
async fn ids_load_after_a_restart() {
    let runtime = Arc::new(FakeRuntime::default());
    let store = Arc::new(MemoryStore::default());
    let step = {
        let engine = engine_with(runtime.clone(), store.clone());
        let step = exec(&engine, base(&engine), &["echo", "persisted"]);
        engine.persist(&step).unwrap();
        step
    };
    let engine = engine_with(runtime.clone(), store);
    assert_eq!(stdout(&engine, step).await.unwrap(), "persisted\n");
    let unknown = Digest::of_bytes(b"never made");
    assert!(matches!(
        engine.node(&unknown),
        Err(Error::UnknownId { .. })
    ));
}

#[tokio::test]
async fn two_identical_concurrent_builds_exec_once() {
    let (engine, runtime, _) = new_engine();
    let engine = Arc::new(engine);
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let step = exec(&engine, base(&engine), &["sleep-ms", "100"]);
            engine.container(step).await.map(|_| ())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(runtime.execs(), 1);
    assert_eq!(runtime.pull_count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn independent_branches_run_in_parallel() {
    let (engine, runtime, _) = new_engine();
    let from = base(&engine);
    // A directory assembled from 8 containers' outputs depends on 8
    // independent execs; evaluating it must run them concurrently.
    let mut dir = engine.add(ops::EmptyDirectory {}).digest;
    let mut files = Vec::new();
    for n in 0..8 {
        let step = exec(&engine, from, &["sleep-ms", "300", &n.to_string()]);
        files.push(step);
    }
    let started = Instant::now();
    let results = futures::future::join_all(files.iter().map(|step| engine.container(*step))).await;
    assert!(results.iter().all(Result::is_ok));
    let elapsed = started.elapsed();
    assert_eq!(runtime.execs(), 8);
    assert_eq!(runtime.max_concurrent.load(Ordering::SeqCst), 8);
    assert!(elapsed < Duration::from_millis(8 * 300), "took {elapsed:?}");
    dir = engine
        .add(ops::DirectoryWithNewFile {
            parent: dir,
            path: "done".into(),
            contents: "yes".into(),
            permissions: 0o644,
        })
        .digest;
    assert!(engine.directory(dir).await.is_ok());
}

#[tokio::test]
async fn a_failed_exec_errors_with_its_output_and_is_not_cached() {
    let (engine, runtime, store) = new_engine();
    let step = exec(&engine, base(&engine), &["fail", "3"]);
    let error = engine.container(step).await.unwrap_err();
    match &error {
        Error::Exec(failure) => {
            assert_eq!(failure.exit_code, 3);
            assert_eq!(failure.cmd, vec!["fail", "3"]);
            assert_eq!(failure.stderr, "fake stderr\n");
        }
        other => panic!("expected an exec error, got {other:?}"),
    }
    assert!(error.to_string().ends_with("exit code: 3"));
    assert_eq!(store.record_count(RecordKind::Exec), 0);
    assert!(engine.container(step).await.is_err());
    assert_eq!(
        runtime.execs(),
        2,
        "a failure must be retried, not replayed from cache"
    );
}

#[tokio::test]
async fn expect_failure_accepts_a_non_zero_exit() {
    let (engine, _, _) = new_engine();
    let step = engine
        .add(ops::WithExec {
            parent: base(&engine),
            exec: ExecArgs {
                args: vec!["fail".into(), "2".into()],
                expect: Expect::Failure,
                ..ExecArgs::default()
            },
        })
        .digest;
    let state = engine.container(step).await.unwrap();
    assert_eq!(state.exec.as_ref().unwrap().exit_code, 2);
}

#[tokio::test]
async fn no_command_is_an_error() {
    let (engine, _, _) = new_engine();
    let scratch = engine.add(ops::Scratch { platform: None }).digest;
    let step = exec(&engine, scratch, &[]);
    assert!(matches!(
        engine.container(step).await,
        Err(Error::NoCommand)
    ));
}

#[tokio::test]
async fn secrets_reach_the_exec_but_not_ids_outputs_or_the_store() {
    let (engine, runtime, store) = new_engine();
    let plaintext = "s3cr3t-value-xyz";
    let secret = engine.set_secret("token", plaintext);
    let with_secret = engine
        .add(ops::WithSecretVariable {
            parent: base(&engine),
            name: "TOKEN".into(),
            secret: secret.digest,
        })
        .digest;
    let step = exec(&engine, with_secret, &["printenv"]);
    engine.persist(&step).unwrap();
    let out = stdout(&engine, step).await.unwrap();
    assert!(out.contains("TOKEN=***"), "{out}");
    assert!(!out.contains(plaintext));
    let envs = runtime.envs.lock().unwrap().clone();
    assert!(envs[0].contains(&format!("TOKEN={plaintext}")));
    let recipe = store
        .get(RecordKind::Recipe, &secret.digest)
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&recipe).contains(plaintext));
    assert!(
        !store.dump_text().contains(plaintext),
        "the store holds the secret"
    );
    // A changed value changes the cache key: the step runs again.
    let other = engine.set_secret("token", "another-value");
    let changed = engine
        .add(ops::WithSecretVariable {
            parent: base(&engine),
            name: "TOKEN".into(),
            secret: other.digest,
        })
        .digest;
    let step2 = exec(&engine, changed, &["printenv"]);
    stdout(&engine, step2).await.unwrap();
    assert_eq!(runtime.execs(), 2);
}

#[tokio::test]
async fn directories_are_pure_values() {
    let (engine, runtime, _) = new_engine();
    let empty = engine.add(ops::EmptyDirectory {}).digest;
    let one = engine
        .add(ops::DirectoryWithNewFile {
            parent: empty,
            path: "src/main.go".into(),
            contents: "package main\n".into(),
            permissions: 0o644,
        })
        .digest;
    let (tree, key) = engine.directory(one).await.unwrap();
    assert_eq!(tree.list("").unwrap(), vec!["src/"]);
    assert_eq!(tree.list("src").unwrap(), vec!["main.go"]);
    let file = engine
        .add(ops::DirectoryFile {
            parent: one,
            path: "src/main.go".into(),
        })
        .digest;
    let value = engine.file(file).await.unwrap();
    assert_eq!(engine.read_blob(&value.blob).unwrap(), b"package main\n");
    // Same content by another recipe has the same content key.
    let two = engine
        .add(ops::DirectoryWithNewDirectory {
            parent: one,
            path: "src".into(),
            permissions: 0o755,
        })
        .digest;
    let (_, key2) = engine.directory(two).await.unwrap();
    assert_eq!(key, key2);
    assert!(matches!(
        engine
            .directory(
                engine
                    .add(ops::Subdirectory {
                        parent: one,
                        path: "../x".into()
                    })
                    .digest
            )
            .await,
        Err(Error::PathEscapes { .. })
    ));
    assert_eq!(runtime.execs(), 0);
}

fn cache_mount(engine: &Engine, parent: Digest, path: &str, key: &str, sharing: Sharing) -> Digest {
    let cache = engine
        .add(ops::CacheVolume {
            key: key.into(),
            source: None,
            sharing: None,
            owner: String::new(),
        })
        .digest;
    engine
        .add(ops::WithMountedCache {
            parent,
            path: path.into(),
            cache,
            source: None,
            sharing: Some(sharing),
            owner: String::new(),
            inherit_owner: false,
        })
        .digest
}

#[tokio::test]
async fn a_locked_volume_mounted_twice_is_an_error_before_anything_runs() {
    let (engine, runtime, _) = new_engine();
    for (first, second) in [
        (Sharing::Locked, Sharing::Locked),
        (Sharing::Shared, Sharing::Private),
        (Sharing::Locked, Sharing::Shared),
    ] {
        let once = cache_mount(&engine, base(&engine), "/a", "vol", first);
        let twice = cache_mount(&engine, once, "/b", "vol", second);
        let error = stdout(&engine, exec(&engine, twice, &["echo", "x"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidArgument { message } if message.contains("\"vol\" is already mounted at /a")),
            "{error}"
        );
    }
    assert_eq!(runtime.execs(), 0);
    // SHARED twice, another volume, or the same path again are fine.
    let shared = cache_mount(&engine, base(&engine), "/a", "vol", Sharing::Shared);
    let shared = cache_mount(&engine, shared, "/b", "vol", Sharing::Shared);
    let other = cache_mount(&engine, shared, "/c", "other", Sharing::Locked);
    let again = cache_mount(&engine, other, "/c", "other", Sharing::Locked);
    stdout(&engine, exec(&engine, again, &["echo", "x"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn cache_volume_owner_names_are_looked_up_in_the_container() {
    let (engine, runtime, _) = new_engine();
    let cache = engine
        .add(ops::CacheVolume {
            key: "v".into(),
            source: None,
            sharing: None,
            owner: String::new(),
        })
        .digest;
    let mounted = engine
        .add(ops::WithMountedCache {
            parent: base(&engine),
            path: "/c".into(),
            cache,
            source: None,
            sharing: None,
            owner: "nobody".into(),
            inherit_owner: false,
        })
        .digest;
    let error = engine.container(mounted).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { message } if message.contains("\"nobody\"") && message.contains("/etc/passwd")),
        "{error}"
    );
    assert_eq!(runtime.execs(), 0);
}

#[tokio::test]
async fn secret_variables_travel_apart_from_the_plain_environment() {
    let (engine, runtime, _) = new_engine();
    let secret = engine.set_secret("token", "s3cr3t");
    let plain = env_var(&engine, base(&engine), "TOKEN", "plain");
    let with_secret = secret_var(&engine, plain, "TOKEN", secret.digest);
    stdout(&engine, exec(&engine, with_secret, &["printenv"]))
        .await
        .unwrap();
    let specs = runtime.specs.lock().unwrap().clone();
    let (env, secret_env) = &specs[0];
    assert!(
        !env.iter().any(|entry| entry.starts_with("TOKEN=")),
        "{env:?}"
    );
    assert_eq!(secret_env, &["TOKEN=s3cr3t".to_owned()]);
}

#[tokio::test]
async fn a_pull_with_other_credentials_is_another_pull() {
    let (engine, runtime, _) = new_engine();
    let from_with = |password: &str| {
        let secret = engine.set_secret("password", password);
        let scratch = engine.add(ops::Scratch { platform: None }).digest;
        let authed = engine
            .add(ops::WithRegistryAuth {
                parent: scratch,
                address: "127.0.0.1:5001".into(),
                username: "user".into(),
                secret: secret.digest,
            })
            .digest;
        engine
            .add(ops::FromImage {
                parent: authed,
                address: "127.0.0.1:5001/app:1".into(),
                registry_service: None,
            })
            .digest
    };
    for password in ["one", "two", "one"] {
        engine.container(from_with(password)).await.unwrap();
    }
    let auths = runtime.pull_auths.lock().unwrap().clone();
    assert_eq!(
        auths,
        [
            Some(("127.0.0.1:5001".to_owned(), "user".to_owned())),
            Some(("127.0.0.1:5001".to_owned(), "user".to_owned()))
        ],
        "one pull per set of credentials, bound to the registry host"
    );
}

#[tokio::test]
async fn timestamps_change_a_directorys_key_but_not_its_digest() {
    let (engine, _, _) = new_engine();
    let empty = engine.add(ops::EmptyDirectory {}).digest;
    let dir = engine
        .add(ops::DirectoryWithNewFile {
            parent: empty,
            path: "f".into(),
            contents: "x".into(),
            permissions: 0o644,
        })
        .digest;
    let stamped = engine
        .add(ops::DirectoryWithTimestamps {
            parent: dir,
            timestamp: 1_000,
        })
        .digest;
    let (plain_tree, plain_key) = engine.directory(dir).await.unwrap();
    let (stamped_tree, stamped_key) = engine.directory(stamped).await.unwrap();
    assert_eq!(plain_tree.digest(), stamped_tree.digest());
    assert_eq!(
        plain_key,
        plain_tree.digest(),
        "no timestamps: the key is the digest"
    );
    assert_ne!(plain_key, stamped_key);
}

/// Every event of `subscription` queued so far.
fn drain(subscription: &mut gantry_core::events::Subscription) -> Vec<Event> {
    std::iter::from_fn(|| subscription.try_recv().ok()).collect()
}

#[tokio::test]
async fn output_streams_as_lines_and_a_secret_split_across_writes_never_shows() {
    let (engine, _, _) = new_engine();
    let mut subscription = engine.events().subscribe();
    let secret = engine.set_secret("token", "s3cr3t-value");
    let with_secret = secret_var(&engine, base(&engine), "TOKEN", secret.digest);
    // `pieces` writes each argument separately: the value arrives in three.
    let step = exec(
        &engine,
        with_secret,
        &["pieces", "first line\nkey=s3c", "r3t-v", "alue end\nlast"],
    );
    stdout(&engine, step).await.unwrap();
    let mut lines = Vec::new();
    let mut states = Vec::new();
    for event in drain(&mut subscription) {
        match event {
            Event::Output(output) => {
                lines.extend(output.lines.into_iter().map(|l| (output.stream, l)))
            }
            Event::Step(step) if step.name.starts_with("exec") => {
                states.push((step.state, step.exit_code))
            }
            Event::Step(_) => {}
        }
    }
    assert_eq!(
        lines,
        [
            (OutputStream::Stdout, "first line".to_owned()),
            (OutputStream::Stdout, "key=*** end".to_owned()),
            (OutputStream::Stderr, "fake stderr".to_owned()),
            // An unfinished line comes when the command ends.
            (OutputStream::Stdout, "last".to_owned()),
        ]
    );
    assert_eq!(
        states,
        [(StepState::Running, None), (StepState::Done, Some(0))]
    );
}

#[tokio::test]
async fn a_failure_detail_holds_both_streams() {
    let (engine, _, _) = new_engine();
    let mut subscription = engine.events().subscribe();
    let step = exec(&engine, base(&engine), &["fail-loud", "3"]);
    stdout(&engine, step).await.unwrap_err();
    let failed = drain(&mut subscription)
        .into_iter()
        .find_map(|event| match event {
            Event::Step(step) if step.state == StepState::Failed => Some(step),
            _ => None,
        })
        .expect("a failed event");
    assert_eq!(failed.exit_code, Some(3));
    assert_eq!(failed.detail.as_deref(), Some("about to fail\nfake stderr"));
}

/// The cache-miss explanation an engine on `store` gives for `printenv`
/// run with `FLAVOUR=flavour` and secret `token`.
async fn explained(store: Arc<MemoryStore>, flavour: &str, token: &str) -> Option<Vec<String>> {
    let engine = engine_with(Arc::new(FakeRuntime::default()), store);
    let mut subscription = engine.events().subscribe().explaining(true);
    let secret = engine.set_secret("token", token);
    let env = env_var(&engine, base(&engine), "FLAVOUR", flavour);
    let with_secret = secret_var(&engine, env, "TOKEN", secret.digest);
    stdout(&engine, exec(&engine, with_secret, &["printenv"]))
        .await
        .unwrap();
    drain(&mut subscription)
        .into_iter()
        .find_map(|event| match event {
            Event::Step(step)
                if step.state == StepState::Running && step.name.starts_with("exec") =>
            {
                Some(step.cache_miss)
            }
            _ => None,
        })
        .expect("the step ran")
}

#[tokio::test]
async fn a_cache_miss_names_what_changed_and_never_a_value() {
    let store = Arc::new(MemoryStore::default());
    let first = explained(store.clone(), "vanilla", "hunter2-old").await;
    assert_eq!(first.unwrap(), ["new step: no earlier run of this command"]);
    let second = explained(store.clone(), "chocolate", "hunter2-new")
        .await
        .unwrap();
    assert_eq!(second[0], "compared with the run 0s ago:");
    assert_eq!(
        second[1..],
        [
            "  env var FLAVOUR changed",
            "  secret token changed (its value)"
        ]
    );
    // Values are not named (the store holds the variable in the step's
    // own output here, so only the secret is checked there).
    let text = format!("{second:?}");
    for value in ["chocolate", "vanilla", "hunter2"] {
        assert!(!text.contains(value), "{value} shows: {text}");
    }
    assert!(!store.dump_text().contains("hunter2"));
    // Without a subscriber that asks, nothing is explained.
    let engine = engine_with(Arc::new(FakeRuntime::default()), store);
    let mut subscription = engine.events().subscribe();
    stdout(&engine, exec(&engine, base(&engine), &["echo", "x"]))
        .await
        .unwrap();
    assert!(drain(&mut subscription).iter().all(|event| match event {
        Event::Step(step) => step.cache_miss.is_none(),
        Event::Output(_) => true,
    }));
}
