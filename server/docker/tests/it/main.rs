//! DockerRuntime against a real dockerd and the local test registry (`make setup`).
//! Each test skips with a printed reason when no daemon answers, unless
//! `GANTRY_TEST_REQUIRE_DOCKER=1` turns that into a failure.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bytes::Bytes;
use gantry_core::runtime::{
    CacheLayer, ExecSpec, ImageConfig, OutputSink, OutputStream, RegistryAuth, RootfsSpec, Runtime,
    RuntimeError, TarLayer,
};
use gantry_docker::{DockerRuntime, LABEL_ENGINE_PID, LABEL_MANAGED};

const BUSYBOX: &str = "127.0.0.1:5000/gantry-fixtures/busybox:latest";
const TEST_LABEL: &str = "dev.gantry.test";

#[expect(clippy::print_stderr, reason = "a skipped test says why")]
async fn runtime() -> Option<DockerRuntime> {
    match DockerRuntime::connect().await {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            let mut reason = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                reason = format!("{reason}: {cause}");
                source = cause.source();
            }
            if std::env::var("GANTRY_TEST_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("GANTRY_TEST_REQUIRE_DOCKER=1 but dockerd is unavailable: {reason}");
            }
            eprintln!("skipping: {reason}");
            None
        }
    }
}

/// A name no other test or run uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn busybox(runtime: &DockerRuntime) -> String {
    runtime
        .pull(BUSYBOX, None)
        .await
        .unwrap_or_else(|e| panic!("fixture {BUSYBOX} missing (run `make setup`): {e}"))
        .image_id
}

fn spec(image_id: &str, args: &[&str]) -> ExecSpec {
    ExecSpec {
        rootfs: RootfsSpec {
            image_id: Some(image_id.to_owned()),
            layers: Vec::new(),
        },
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        workdir: "/".into(),
        commit_tag: format!("gantry.local/test-docker:{}", unique("exec")),
        ..Default::default()
    }
}

/// A tar holding `files` (path, content, mode).
fn tar_of(files: &[(&str, &[u8], u32)]) -> Bytes {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        builder.append_data(&mut header, path, *data).unwrap();
    }
    builder.into_inner().unwrap().into()
}

/// (name, kind, link target, content) of each entry.
fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, Option<String>, Vec<u8>)> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let kind = entry.header().entry_type();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            (name, kind, link, data)
        })
        .collect()
}

async fn cleanup(runtime: &DockerRuntime, images: &[String]) {
    runtime.remove_images(images).await.unwrap();
}

#[tokio::test]
async fn pull_resolves_digest_and_config() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let pulled = runtime.pull(BUSYBOX, None).await.unwrap();
    assert!(pulled.image_id.starts_with("sha256:"), "{pulled:?}");
    assert!(
        pulled
            .resolved_ref
            .starts_with(&format!("{BUSYBOX}@sha256:")),
        "{pulled:?}"
    );
    assert!(
        pulled.config.env.iter().any(|(name, _)| name == "PATH"),
        "{pulled:?}"
    );

    // A local image ID cannot be pulled; it is inspected instead.
    let by_id = runtime.pull(&pulled.image_id, None).await.unwrap();
    assert_eq!(by_id.image_id, pulled.image_id);
    assert_eq!(by_id.config, pulled.config);

    let missing = "127.0.0.1:5000/gantry-fixtures/does-not-exist:latest";
    match runtime.pull(missing, None).await {
        Err(RuntimeError::ImageNotFound { reference, .. }) => assert_eq!(reference, missing),
        other => panic!("expected ImageNotFound, got {other:?}"),
    }
}

#[tokio::test]
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
async fn pull_with_wrong_credentials_is_unauthorized() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let registry = std::env::var("GANTRY_TEST_AUTH_REGISTRY").unwrap_or_default();
    if registry.is_empty() {
        eprintln!("skipping: GANTRY_TEST_AUTH_REGISTRY is not set");
        return;
    }
    let password = "not-the-password-ZZ9";
    let auth = RegistryAuth {
        server: registry.clone(),
        username: "gantry".into(),
        password: password.into(),
    };
    let reference = format!("{registry}/gantry-fixtures/busybox:latest");
    match runtime.pull(&reference, Some(&auth)).await {
        Err(error @ RuntimeError::Unauthorized { .. }) => {
            assert!(!error.to_string().contains(password), "{error}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let image = busybox(&runtime).await;
    let target = format!("{registry}/gantry-test/docker-it:{}", unique("denied"));
    match runtime.push(&image, &target, Some(&auth)).await {
        Err(error @ RuntimeError::Unauthorized { .. }) => {
            assert!(!error.to_string().contains(password), "{error}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    let good = RegistryAuth {
        password: std::env::var("GANTRY_TEST_AUTH_REGISTRY_PASSWORD").unwrap_or_default(),
        username: std::env::var("GANTRY_TEST_AUTH_REGISTRY_USER").unwrap_or_default(),
        ..auth
    };
    let pulled = runtime.pull(&reference, Some(&good)).await.unwrap();
    assert!(
        pulled
            .resolved_ref
            .starts_with(&format!("{reference}@sha256:")),
        "{pulled:?}"
    );
    cleanup(&runtime, &[target]).await;
}

#[tokio::test]
async fn exec_separates_stdout_stderr_and_exit_code() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let out = runtime
        .exec(spec(
            &image,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        ))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, 3);
    assert!(out.image_id.starts_with("sha256:"));
    cleanup(&runtime, &[out.image_id]).await;
}

#[tokio::test]
async fn exec_streams_output_while_the_command_runs() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut exec_spec = spec(
        &image,
        &[
            "sh",
            "-c",
            "echo first; echo oops >&2; sleep 3; echo second",
        ],
    );
    exec_spec.output = OutputSink::new(move |stream, bytes| {
        let _ = sender.send((stream, bytes.to_vec(), Instant::now()));
    });
    let runtime = std::sync::Arc::new(runtime);
    let running = runtime.clone();
    let exec = tokio::spawn(async move {
        let out = running.exec(exec_spec).await;
        out.map(|out| (out, Instant::now()))
    });
    let mut pieces: Vec<(OutputStream, Vec<u8>, Instant)> = Vec::new();
    while let Some(piece) = receiver.recv().await {
        pieces.push(piece);
    }
    let (out, ended) = exec.await.unwrap().unwrap();
    let first = pieces
        .iter()
        .find(|(stream, bytes, _)| *stream == OutputStream::Stdout && bytes.starts_with(b"first"))
        .expect("the first line came live");
    // It came while the command slept, not at its end.
    assert!(ended.duration_since(first.2) >= Duration::from_secs(2));
    let joined = |wanted: OutputStream| -> Vec<u8> {
        pieces
            .iter()
            .filter(|(stream, _, _)| *stream == wanted)
            .flat_map(|(_, bytes, _)| bytes.clone())
            .collect()
    };
    assert_eq!(joined(OutputStream::Stdout), b"first\nsecond\n");
    assert_eq!(joined(OutputStream::Stderr), b"oops\n");
    assert_eq!(out.stdout, b"first\nsecond\n");
    cleanup(&runtime, &[out.image_id]).await;
}

#[tokio::test]
async fn exec_feeds_stdin_and_keeps_binary_output() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let input: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let mut exec = spec(&image, &["cat"]);
    exec.stdin = Some(Bytes::from(input.clone()));
    let out = runtime.exec(exec).await.unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), input.len());
    assert!(out.stdout == input, "stdin did not round-trip");
    cleanup(&runtime, &[out.image_id]).await;
}

#[tokio::test]
async fn exec_ignoring_stdin_still_finishes() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let mut exec = spec(
        &image,
        &["sh", "-c", "head -c 3000000 /dev/zero; echo done >&2"],
    );
    exec.stdin = Some(Bytes::from(vec![b'x'; 4_000_000]));
    let out = tokio::time::timeout(Duration::from_secs(20), runtime.exec(exec))
        .await
        .expect("exec hung")
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout.len(), 3_000_000);
    assert_eq!(out.stderr, b"done\n");
    cleanup(&runtime, &[out.image_id]).await;

    // The output closes before the input is read: the input is still delivered.
    let mut exec = spec(
        &image,
        &["sh", "-c", "exec >/dev/null 2>&1; sleep 0.3; cat > /late"],
    );
    exec.stdin = Some(Bytes::from_static(b"late input"));
    let late = runtime.exec(exec).await.unwrap();
    let read = runtime
        .exec(spec(&late.image_id, &["cat", "/late"]))
        .await
        .unwrap();
    assert_eq!(read.stdout, b"late input");
    cleanup(&runtime, &[read.image_id, late.image_id]).await;

    let mut exec = spec(&image, &["wc", "-c"]);
    exec.stdin = Some(Bytes::new());
    let out = runtime.exec(exec).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    cleanup(&runtime, &[out.image_id]).await;
}

#[tokio::test]
async fn exec_sees_env_workdir_user_and_mounts() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    // A ':' in the path: the older `Binds` strings could not carry one.
    let host_dir = std::env::temp_dir().join(unique("gantry-docker-it-mount:a"));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("m.txt"), "mounted").unwrap();
    let mut exec = spec(
        &image,
        &[
            "sh",
            "-c",
            "echo $GREETING; pwd; id -u; cat /mnt/m.txt; echo; touch /tmp/t/x && echo tmpfs; df -k /tmp/t | tail -n 1 | awk '{print $2}'",
        ],
    );
    exec.env.push("GREETING=hello world".into());
    exec.workdir = "/work/dir".into();
    exec.user = "1000".into();
    exec.mounts.push(gantry_core::runtime::BindMount {
        host_path: host_dir.to_str().unwrap().to_owned(),
        container_path: "/mnt".into(),
        read_only: true,
    });
    exec.tmpfs.push(gantry_core::runtime::Tmpfs {
        path: "/tmp/t".into(),
        size: Some(2 * 1024 * 1024),
    });
    let out = runtime.exec(exec).await.unwrap();
    std::fs::remove_dir_all(&host_dir).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello world\n/work/dir\n1000\nmounted\ntmpfs\n2048\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cleanup(&runtime, &[out.image_id]).await;

    // A bind source that is gone (a secret file unlinked, a dead engine's swept tmpfs
    // directory) fails the exec, naming it; dockerd neither makes it on the host nor
    // mounts an empty directory in its place.
    let mut exec = spec(&image, &["ls", "-la", "/mnt/gone"]);
    exec.mounts.push(gantry_core::runtime::BindMount {
        host_path: host_dir.join("gone").to_str().unwrap().to_owned(),
        container_path: "/mnt/gone".into(),
        read_only: true,
    });
    let error = runtime.exec(exec).await.unwrap_err().to_string();
    assert!(
        error.contains("gone") && error.contains("does not exist"),
        "{error}"
    );
    assert!(!host_dir.exists(), "dockerd made the missing bind source");
}

#[tokio::test]
async fn exec_applies_layers_and_commits() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let mut exec = spec(
        &image,
        &[
            "sh",
            "-c",
            "cat /data/in/f.txt /data/in/g.txt; stat -c %a /data/in/f.txt; echo hi > /f",
        ],
    );
    exec.rootfs.layers = vec![
        TarLayer {
            // Missing directory: created first.
            dest: "/data/in".into(),
            tar: tar_of(&[("f.txt", b"one\n", 0o640)]),
        },
        TarLayer {
            dest: "/data/in".into(),
            tar: tar_of(&[("g.txt", b"two\n", 0o644)]),
        },
    ];
    let first = runtime.exec(exec).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "one\ntwo\n640\n",
        "stderr: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(first.exit_code, 0);

    // The committed image holds both the layers and what the command wrote.
    let second = runtime
        .exec(spec(&first.image_id, &["cat", "/f", "/data/in/g.txt"]))
        .await
        .unwrap();
    assert_eq!(second.stdout, b"hi\ntwo\n");
    cleanup(&runtime, &[second.image_id, first.image_id]).await;
}

#[tokio::test]
async fn exec_on_scratch_runs_a_static_binary_from_a_layer() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let busybox_binary = std::fs::read("/bin/busybox");
    let Ok(busybox_binary) = busybox_binary else {
        return;
    };
    let mut exec = spec("unused", &["/bin/busybox", "echo", "from scratch"]);
    exec.rootfs = RootfsSpec {
        image_id: None,
        layers: vec![TarLayer {
            dest: "/bin".into(),
            tar: tar_of(&[("busybox", &busybox_binary, 0o755)]),
        }],
    };
    let out = runtime.exec(exec).await.unwrap();
    assert_eq!(out.stdout, b"from scratch\n");
    cleanup(&runtime, &[out.image_id]).await;
}

#[tokio::test]
async fn exec_keeps_env_values_out_of_the_committed_image() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let mut exec = spec(&image, &["sh", "-c", "echo $TOKEN $PLAIN"]);
    exec.env.push("PLAIN=plain-value".into());
    exec.secret_env
        .push("TOKEN=s3cr3t-value with 'quotes' and $dollars".into());
    exec.user = "65532".into();
    let out = runtime.exec(exec).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "s3cr3t-value with 'quotes' and $dollars plain-value\n"
    );
    let committed = runtime.pull(&out.image_id, None).await.unwrap();
    assert!(
        !format!("{:?}", committed.config).contains("plain-value"),
        "{committed:?}"
    );
    // `docker save` holds the image's `container_config` too, where dockerd records the
    // configuration of the container the image was committed from.
    let name = format!("gantry.local/test-docker-secret:{}", unique("s"));
    let saved = runtime.save_image(&out.image_id, &name).await.unwrap();
    assert!(
        !saved.windows(12).any(|w| w == b"s3cr3t-value"),
        "the secret reached the committed image"
    );
    cleanup(&runtime, &[name, out.image_id]).await;
}

#[tokio::test]
async fn secret_variables_need_a_shell() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let mut exec = spec("", &["/hello"]);
    exec.rootfs = RootfsSpec::default();
    exec.secret_env.push("TOKEN=x".into());
    let error = runtime.exec(exec).await.unwrap_err();
    assert!(error.to_string().contains("/bin/sh"), "{error}");
}

#[tokio::test]
async fn exec_missing_command_exits_127() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let out = runtime
        .exec(spec(&image, &["nonexistent-cmd", "arg"]))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 127);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("executable file not found"), "{stderr}");
    assert!(out.stdout.is_empty());
    cleanup(&runtime, &[out.image_id]).await;
}

#[tokio::test]
async fn read_path_of_a_directory_and_a_file() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let made = runtime
        .exec(spec(
            &image,
            &[
                "sh",
                "-c",
                "mkdir -p /out/sub && printf a > /out/a && printf b > /out/sub/b \
                 && ln -s a /out/l && chmod 750 /out/sub",
            ],
        ))
        .await
        .unwrap();
    assert_eq!(made.exit_code, 0);
    let rootfs = RootfsSpec {
        image_id: Some(made.image_id.clone()),
        layers: vec![TarLayer {
            dest: "/out/extra".into(),
            tar: tar_of(&[("x", b"x", 0o600)]),
        }],
    };

    let dir = runtime.read_path(&rootfs, "/out").await.unwrap();
    let mut got = entries(&dir);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        ["./", "a", "extra/", "extra/x", "l", "sub/", "sub/b"]
    );
    let link = got.iter().find(|e| e.0 == "l").unwrap();
    assert_eq!(link.1, tar::EntryType::Symlink);
    assert_eq!(link.2.as_deref(), Some("a"));
    assert_eq!(got.iter().find(|e| e.0 == "sub/b").unwrap().3, b"b");
    let modes: HashMap<String, u32> = tar::Archive::new(&dir[..])
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                e.header().mode().unwrap() & 0o7777,
            )
        })
        .collect();
    assert_eq!(modes["sub/"], 0o750);

    let file = runtime.read_path(&rootfs, "/out/sub/b").await.unwrap();
    let got = entries(&file);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "b");
    assert_eq!(got[0].3, b"b");

    let root = runtime.read_path(&rootfs, "/").await.unwrap();
    let root = entries(&root);
    assert_eq!(root[0].0, "./");
    assert!(root.iter().any(|e| e.0 == "out/sub/b"));
    assert!(root.iter().any(|e| e.0 == "bin/busybox"));

    let link = runtime.read_path(&rootfs, "/out/l").await.unwrap();
    let link = entries(&link);
    assert_eq!(link.len(), 1);
    assert_eq!(
        (link[0].1, link[0].2.as_deref()),
        (tar::EntryType::Symlink, Some("a"))
    );

    match runtime.read_path(&rootfs, "/nope/missing").await {
        Err(RuntimeError::PathNotFound { path }) => assert_eq!(path, "/nope/missing"),
        other => panic!("expected PathNotFound, got {other:?}"),
    }
    cleanup(&runtime, &[made.image_id]).await;
}

#[tokio::test]
async fn dropped_exec_removes_its_container() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let marker = unique("cancel");
    let mut exec = spec(&image, &["sleep", "30"]);
    exec.labels = BTreeMap::from([(TEST_LABEL.to_owned(), marker.clone())]);
    let result = tokio::time::timeout(Duration::from_millis(1500), runtime.exec(exec)).await;
    assert!(result.is_err(), "sleep 30 finished within 1.5s?");

    let docker = runtime.docker();
    let filters = HashMap::from([("label", vec![format!("{TEST_LABEL}={marker}")])]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let left = docker.list_containers(Some(options)).await.unwrap();
        // A container dockerd is already removing counts as removed: the
        // engine's part (kill and remove) is done, and on a busy daemon the
        // removal itself can outlast any fixed wait.
        let removing = |c: &ContainerSummary| c.state == Some(ContainerSummaryStateEnum::REMOVING);
        if left.iter().all(removing) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "container still there (and not being removed) 30s after the exec was dropped: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn build_image_then_push() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let rootfs = RootfsSpec {
        image_id: Some(image.clone()),
        layers: vec![TarLayer {
            dest: "/app".into(),
            tar: tar_of(&[("hello.txt", b"hello\n", 0o644)]),
        }],
    };
    let config = ImageConfig {
        env: vec![
            ("PATH".into(), "/bin".into()),
            ("FOO".into(), "bar=baz".into()),
        ],
        workdir: "/app".into(),
        user: String::new(),
        entrypoint: vec!["/bin/cat".into()],
        cmd: vec!["hello.txt".into()],
        labels: BTreeMap::from([("org.example.x".into(), "y".into())]),
        exposed_ports: vec!["53/udp".into(), "8080/tcp".into()],
        healthcheck: None,
    };
    // A tag in a registry that never saw it: only the local image has it.
    let tag = format!("127.0.0.1:5000/gantry-test/local-only:{}", unique("b"));
    let built = runtime.build_image(&rootfs, &config, &tag).await.unwrap();
    assert!(built.starts_with("sha256:"));

    // A local-only tag cannot be pulled; pull falls back to the local image.
    let local = runtime.pull(&tag, None).await.unwrap();
    assert_eq!(local.image_id, built);
    assert_eq!(local.resolved_ref, built);
    assert_eq!(local.config.entrypoint, config.entrypoint);
    assert_eq!(local.config.cmd, config.cmd);
    assert_eq!(local.config.workdir, "/app");
    assert_eq!(
        local.config.env,
        [
            ("PATH".to_owned(), "/bin".to_owned()),
            ("FOO".to_owned(), "bar=baz".to_owned())
        ]
    );
    assert_eq!(local.config.labels["org.example.x"], "y");
    assert_eq!(local.config.exposed_ports, config.exposed_ports);
    assert_eq!(local.config.labels[LABEL_MANAGED], "true");

    let managed = runtime.managed_images().await.unwrap();
    let built_at = managed.iter().position(|id| *id == built).unwrap();
    let parent_at = managed.iter().position(|id| *id == image);
    assert!(parent_at.is_none(), "the fixture is not gantry's");
    assert!(built_at < managed.len());

    // exec does not apply the image's entrypoint by itself.
    let mut exec = spec(&built, &["echo", "no entrypoint"]);
    exec.workdir = "/app".into();
    let out = runtime.exec(exec).await.unwrap();
    assert_eq!(out.stdout, b"no entrypoint\n");

    let reference = format!("127.0.0.1:5000/gantry-test/docker-it:{}", unique("p"));
    let digest = runtime.push(&built, &reference, None).await.unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(digest.len(), "sha256:".len() + 64, "{digest}");
    let pulled = runtime.pull(&reference, None).await.unwrap();
    assert_eq!(pulled.resolved_ref, format!("{reference}@{digest}"));
    // What is pushed is the image made reproducible (gantry_core::reproducible):
    // the same files and settings, without gantry's own label.
    assert_ne!(pulled.image_id, built);
    assert_eq!(pulled.config.env, local.config.env);
    assert_eq!(pulled.config.labels["org.example.x"], "y");
    assert!(!pulled.config.labels.contains_key(LABEL_MANAGED));
    let again = runtime.push(&built, &reference, None).await.unwrap();
    assert_eq!(again, digest, "pushed twice, the same manifest");
    cleanup(&runtime, &[out.image_id, reference, tag]).await;
}

#[tokio::test]
async fn save_and_load_round_trip() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let made = runtime
        .exec(spec(&image, &["sh", "-c", "echo saved > /saved"]))
        .await
        .unwrap();
    let name = format!("gantry.local/test-docker-save:{}", unique("s"));
    let tarball = runtime.save_image(&made.image_id, &name).await.unwrap();
    assert!(!tarball.is_empty());
    runtime
        .remove_images(&[name.clone(), made.image_id.clone()])
        .await
        .unwrap();
    assert!(!runtime.image_exists(&made.image_id).await.unwrap());

    let loaded = runtime.load_image(tarball.clone()).await.unwrap();
    // Saved made reproducible: another image ID, the same files, and saving
    // the loaded image gives the same bytes again.
    assert_ne!(loaded.image_id, made.image_id);
    assert!(runtime.image_exists(&loaded.image_id).await.unwrap());
    let resaved = runtime.save_image(&loaded.image_id, &name).await.unwrap();
    assert_eq!(resaved, tarball);
    let out = runtime
        .exec(spec(&loaded.image_id, &["cat", "/saved"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"saved\n");
    cleanup(&runtime, &[out.image_id, name, loaded.image_id]).await;
}

#[tokio::test]
async fn cache_layers_pack_the_steps_own_layers_and_name_the_pulled_ones() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let made = runtime
        .exec(spec(
            &image,
            &[
                "sh",
                "-c",
                "echo own > /own && rm /bin/ls && mkdir -p /d && echo x > /d/x",
            ],
        ))
        .await
        .unwrap();
    // Without a directory for its tars the runtime saves whole images.
    assert!(runtime
        .cache_layers(&made.image_id)
        .await
        .unwrap()
        .is_none());

    let dir = tempfile::tempdir().unwrap();
    let tars = dir.path().join("tars");
    let runtime = runtime.with_layer_dir(tars.clone());
    let image = busybox(&runtime).await;
    let cached = runtime
        .cache_layers(&made.image_id)
        .await
        .unwrap()
        .expect("dockerd's overlay2 store is readable here");
    assert_eq!(cached.runtime_id.as_deref(), Some(made.image_id.as_str()));
    let [base, own] = cached.layers.as_slice() else {
        panic!("two layers: {:?}", cached.layers);
    };
    // The base layer: the busybox fixture, named by the digest it was pulled as.
    match base {
        CacheLayer::OfImage {
            reference,
            config,
            index,
        } => {
            assert!(
                reference.starts_with("127.0.0.1:5000/gantry-fixtures/busybox@sha256:"),
                "{reference}"
            );
            assert_eq!((config.as_str(), *index), (image.as_str(), 0));
        }
        other => panic!("the base layer is not named by its image: {other:?}"),
    }
    // The step's layer, packed from dockerd's store: the new files and a
    // whiteout for the removed one; its digest is the file's and the config's.
    let CacheLayer::Tar { path, digest } = own else {
        panic!("the step's layer is not a tar: {own:?}");
    };
    assert!(path.starts_with(&tars));
    let tar = std::fs::read(path).unwrap();
    assert_eq!(*digest, gantry_core::Digest::of_bytes(&tar).to_string());
    let names: Vec<String> = entries(&tar).into_iter().map(|(name, ..)| name).collect();
    for name in ["own", "bin/.wh.ls", "d/", "d/x"] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    let config: serde_json::Value = serde_json::from_slice(&cached.config).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][1], *digest);
    // A second ask packs nothing again.
    let again = runtime.cache_layers(&made.image_id).await.unwrap().unwrap();
    assert_eq!(again.layers, cached.layers);
    cleanup(&runtime, &[made.image_id]).await;
    drop(runtime);
    assert!(!tars.exists(), "the runtime's tars outlive it");
}

#[tokio::test]
async fn remove_orphans_removes_containers_of_dead_engines() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let dead_pid = (999_999..)
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .unwrap();
    let docker = runtime.docker();
    let name = unique("gantry-orphan");
    let mk = |pid: String| ContainerCreateBody {
        image: Some(image.clone()),
        cmd: Some(vec!["true".into()]),
        labels: Some(HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_ENGINE_PID.to_owned(), pid),
        ])),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    docker
        .create_container(Some(options), mk(dead_pid.to_string()))
        .await
        .unwrap();
    // A container of this (live) engine stays.
    let live = format!("{name}-live");
    let options = CreateContainerOptionsBuilder::new().name(&live).build();
    docker
        .create_container(Some(options), mk(runtime.engine_pid().to_string()))
        .await
        .unwrap();

    // Nor does one whose name says its pid was recorded in another pid namespace.
    let foreign = format!(
        "gantry-00000000-{dead_pid}-0-{}",
        unique("x").replace('-', "")
    );
    let options = CreateContainerOptionsBuilder::new().name(&foreign).build();
    docker
        .create_container(Some(options), mk(dead_pid.to_string()))
        .await
        .unwrap();

    let removed = runtime.remove_orphans().await.unwrap();
    assert!(removed >= 1, "removed {removed}");
    let gone = docker
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await;
    assert!(gone.is_err(), "orphan still there");
    for kept in [&live, &foreign] {
        assert!(
            docker
                .inspect_container(kept, None::<InspectContainerOptions>)
                .await
                .is_ok(),
            "{kept} was removed"
        );
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        docker.remove_container(kept, Some(options)).await.unwrap();
    }
}

/// A service on the step network: reachable by a dependent through its alias
/// (DNS) and its `/etc/hosts` names, signalled, removed when dropped.
#[tokio::test]
async fn services_run_on_the_step_network_and_answer_by_name() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let mut service = spec(
        &image,
        &[
            "sh",
            "-c",
            "echo started; exec nc -ll -p 8080 -e echo hello-from-service",
        ],
    );
    let hostname = unique("svc").replace('-', "");
    let hostname = &hostname[hostname.len() - 20..];
    service.network.hostname = hostname.to_owned();
    service.network.aliases = vec![hostname.to_owned(), format!("{hostname}.gantry.local")];
    service.labels = BTreeMap::from([(TEST_LABEL.to_owned(), "service".to_owned())]);
    let started = runtime.start_container(service).await.unwrap();

    // A dependent: its alias through /etc/hosts, the hostname through Docker's DNS.
    let mut client = spec(
        &image,
        &[
            "sh",
            "-c",
            &format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do nc db 8080 </dev/null && break; sleep 0.3; done; \
             nc {hostname} 8080 </dev/null; nslookup {hostname} >/dev/null && echo dns-ok"
        ),
        ],
    );
    client.network.hosts = vec![("db".to_owned(), started.address)];
    client.network.search = vec!["gantry.local".to_owned()];
    let out = runtime.exec(client).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("hello-from-service").count(),
        2,
        "{stdout} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("dns-ok"), "{stdout}");

    // The engine's host reaches it at its address too.
    let mut stream = tokio::net::TcpStream::connect((started.address, 8080))
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer)
        .await
        .unwrap();
    assert_eq!(answer.trim(), "hello-from-service");

    started.control.signal(true).await.unwrap();
    let exit = started.exited.clone().await;
    assert_eq!(exit.exit_code, Some(137), "{exit:?}");
    assert!(String::from_utf8_lossy(&exit.stdout).contains("started"));
    drop(started);
    runtime.shutdown().await;
}

/// A service that exits at once reports its exit code and output; one whose
/// executable is missing exits 127 like a shell would say.
#[tokio::test]
async fn a_service_that_exits_reports_its_output() {
    let Some(runtime) = runtime().await else {
        return;
    };
    let image = busybox(&runtime).await;
    let started = runtime
        .start_container(spec(&image, &["sh", "-c", "echo bad config >&2; exit 3"]))
        .await
        .unwrap();
    let exit = started.exited.clone().await;
    assert_eq!(exit.exit_code, Some(3));
    assert_eq!(String::from_utf8_lossy(&exit.stderr), "bad config\n");

    let missing = runtime
        .start_container(spec(&image, &["/no/such/server"]))
        .await
        .unwrap();
    let exit = missing.exited.clone().await;
    assert_eq!(exit.exit_code, Some(127));
    assert!(String::from_utf8_lossy(&exit.stderr).contains("/no/such/server"));
    drop((started, missing));
    runtime.shutdown().await;
}
