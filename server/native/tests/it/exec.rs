//! Steps: output, exit codes, users, pending layers, every mount kind, secrets, network.

use std::io::{Read as _, Write as _};

use gantry_core::runtime::Runtime as _;

use crate::support::*;

fn tar_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data, mode) in entries {
        let mut header = tar::Header::new_gnu();
        if name.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
        } else {
            header.set_entry_type(tar::EntryType::Regular);
        }
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(1_600_000_000);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

#[tokio::test]
async fn exit_codes_stdin_users_and_workdir() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    assert_eq!(
        fixture.exec(&image, &["no-such-command"]).await.exit_code,
        127
    );
    let not_exec = fixture.exec(&image, &["/etc"]).await;
    assert_eq!(
        not_exec.exit_code,
        126,
        "{}",
        String::from_utf8_lossy(&not_exec.stderr)
    );

    let mut with_stdin = spec(&image, &["sh", "-c", "cat; echo done"]);
    with_stdin.stdin = Some(bytes::Bytes::from_static(b"from stdin\n"));
    assert_eq!(fixture.run(with_stdin).await.stdout, b"from stdin\ndone\n");

    for (user, expected) in [
        ("nonroot", "65532:65532"),
        ("65532:0", "65532:0"),
        ("", "0:0"),
        ("1234", "1234:0"),
    ] {
        let mut step = spec(&image, &["sh", "-c", "echo $(id -u):$(id -g)"]);
        step.user = user.to_owned();
        let out = fixture.run(step).await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            expected,
            "user {user:?}"
        );
    }
    let mut unknown = spec(&image, &["true"]);
    unknown.user = "nobody-here".to_owned();
    let error = fixture.runtime.exec(unknown).await.unwrap_err().to_string();
    assert!(error.contains("nobody-here"), "{error}");

    let mut in_workdir = spec(&image, &["sh", "-c", "pwd; echo $HOME; touch made-here"]);
    in_workdir.workdir = "/work/dir".to_owned();
    let out = fixture.run(in_workdir).await;
    assert_eq!(out.stdout, b"/work/dir\n/root\n");
    assert_eq!(
        fixture.sh(&out.image_id, "ls /work/dir").await,
        "made-here\n"
    );
}

#[tokio::test]
async fn snapshots_chain_and_unchanged_steps_reuse_their_base() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    let unchanged = fixture.exec(&image, &["echo", "nothing written"]).await;
    assert_eq!(
        unchanged.image_id, image,
        "a step that wrote nothing yields its base"
    );

    let first = fixture
        .exec(
            &image,
            &[
                "sh",
                "-c",
                "echo one > /one; rm /bin/ls; mkdir -p /d && echo x > /d/x",
            ],
        )
        .await;
    assert_ne!(first.image_id, image);
    let second = fixture
        .exec(
            &first.image_id,
            &[
                "sh",
                "-c",
                "echo two > /two; rm -r /d; mkdir /d; echo y > /d/y",
            ],
        )
        .await;
    let listing = fixture
        .sh(
            &second.image_id,
            "cat /one /two; ls /d; test -e /bin/ls || echo no-ls",
        )
        .await;
    assert_eq!(listing, "one\ntwo\ny\nno-ls\n");
    // The snapshot holds no mount points of the runtime's (/proc, /etc/hosts…):
    // the busybox image has neither.
    let names = listing_of(
        &fixture
            .runtime
            .read_path(&rootfs(&first.image_id), "/")
            .await
            .unwrap(),
    );
    assert!(names.iter().any(|n| n == "one"), "{names:?}");
    for absent in [
        "proc/",
        "sys/",
        "dev/",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/hostname",
    ] {
        assert!(!names.iter().any(|n| n == absent), "{absent} in {names:?}");
    }
}

fn rootfs(image: &str) -> gantry_core::runtime::RootfsSpec {
    gantry_core::runtime::RootfsSpec {
        image_id: Some(image.to_owned()),
        layers: Vec::new(),
    }
}

fn listing_of(tar: &[u8]) -> Vec<String> {
    listing(tar).into_iter().map(|entry| entry.0).collect()
}

#[tokio::test]
async fn pending_layers_apply_through_symlinks_inside_the_root() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    let linked = fixture
        .exec(&image, &["sh", "-c", "mkdir -p /real && ln -s /real /link"])
        .await
        .image_id;
    let mut step = spec(
        &linked,
        &["sh", "-c", "cat /real/in.txt; stat -c %a /real/in.txt"],
    );
    step.rootfs.layers = vec![layer(
        "/link",
        tar_of(&[("in.txt", b"through the link", 0o640)]),
    )];
    let out = fixture.run(step).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "through the link640\n"
    );
    // Absolute symlinks resolve inside the root, never on the host.
    let escape = fixture
        .exec(&image, &["sh", "-c", "ln -s /tmp/gantry-host-escape /esc"])
        .await
        .image_id;
    let mut step = spec(
        &escape,
        &[
            "sh",
            "-c",
            "test -d /esc && ! test -L /esc && ! test -e /tmp/gantry-host-escape && cat /esc/f",
        ],
    );
    step.rootfs.layers = vec![layer("/esc", tar_of(&[("f", b"x", 0o644)]))];
    // A dangling symlink as destination becomes a directory, as with Docker; nothing
    // reaches the host.
    let out = fixture.run(step).await;
    assert_eq!(
        (out.exit_code, String::from_utf8_lossy(&out.stdout).as_ref()),
        (0, "x"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!std::path::Path::new("/tmp/gantry-host-escape").exists());
    // read_path: a directory as `./` plus its entries, a file as one entry.
    let tar = fixture
        .runtime
        .read_path(
            &gantry_core::runtime::RootfsSpec {
                image_id: Some(linked.clone()),
                layers: vec![layer(
                    "/work",
                    tar_of(&[
                        ("a.txt", b"A", 0o600),
                        ("sub/", b"", 0o755),
                        ("sub/b", b"B", 0o644),
                    ]),
                )],
            },
            "/work",
        )
        .await
        .unwrap();
    let entries = listing(&tar);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["./", "a.txt", "sub/", "sub/b"]);
    assert_eq!(entries[1].2, 0o600);
    assert_eq!(entries[1].6, b"A");
    let file = listing(
        &fixture
            .runtime
            .read_path(&rootfs(&linked), "/etc/passwd")
            .await
            .unwrap(),
    );
    assert_eq!(file.len(), 1);
    assert_eq!(file[0].0, "passwd");
    let missing = fixture
        .runtime
        .read_path(&rootfs(&linked), "/nope")
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            gantry_core::runtime::RuntimeError::PathNotFound { .. }
        ),
        "{missing}"
    );
}

#[tokio::test]
async fn every_mount_kind_and_secrets_stay_off_disk() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    let host = tempfile::tempdir().unwrap();
    let cache = host.path().join("cache");
    let ro = host.path().join("ro");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("given"), b"read only").unwrap();
    let file = host.path().join("one-file");
    std::fs::write(&file, b"a mounted file").unwrap();
    let secret_value = format!("s3cret-{:x}", rand_u64());
    // The solver writes secret files to /dev/shm (a tmpfs) before the exec.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let secret_file = shm.path().join("secret");
    std::fs::write(&secret_file, &secret_value).unwrap();

    let mut step = spec(
        &image,
        &[
            "sh",
            "-c",
            "echo cached >> /cache/log; cat /ro/given; echo; touch /ro/x 2>/dev/null || echo ro-refused; \
             cat /mnt/file; echo; echo tmp > /scratch/t; cat /run/secrets/token; echo; echo \"$TOKEN\"; \
             echo $PLAIN; grep -c tmpfs /proc/mounts >/dev/null && echo mounted",
        ],
    );
    step.mounts = vec![
        bind(&cache, "/cache", false),
        bind(&ro, "/ro", true),
        bind(&file, "/mnt/file", false),
        bind(&secret_file, "/run/secrets/token", true),
    ];
    step.tmpfs = vec![gantry_core::runtime::Tmpfs {
        path: "/scratch".to_owned(),
        size: Some(4 << 20),
    }];
    step.env.push("PLAIN=visible".to_owned());
    step.secret_env = vec![format!("TOKEN={secret_value}")];
    let out = fixture.run(step).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout,
        format!("read only\nro-refused\na mounted file\n{secret_value}\n{secret_value}\nvisible\nmounted\n")
    );
    assert_eq!(
        std::fs::read_to_string(cache.join("log")).unwrap(),
        "cached\n"
    );
    // Nothing of the tmpfs or of the secrets is in the snapshot or anywhere in the store.
    let after = fixture
        .sh(
            &out.image_id,
            "ls -a /scratch | wc -l; cat /run/secrets/token | wc -c",
        )
        .await;
    assert_eq!(after, "2\n0\n");
    let hits = files_containing(fixture.state.path(), secret_value.as_bytes());
    assert!(hits.is_empty(), "secret found on disk in {hits:?}");
}

/// `remove_after_start`: secret files go from the host as soon as the container has
/// started (while its command still runs), and the container keeps reading them
/// through its bind mount. The command waits for the test to say `go` (a file in a
/// second bind mount), so "still running" does not hang on how long a start takes.
#[tokio::test]
async fn secret_files_are_unlinked_once_the_container_started() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let secret_file = shm.path().join("secret");
    std::fs::write(&secret_file, "s3cret").unwrap();
    let signal = tempfile::tempdir().unwrap();
    let mut step = spec(
        &image,
        &[
            "sh",
            "-c",
            // At most a minute: a runtime that never unlinks fails the
            // assertion below rather than hanging the suite.
            "i=0; while [ ! -e /signal/go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; \
             cat /run/secrets/token",
        ],
    );
    step.mounts = vec![
        bind(&secret_file, "/run/secrets/token", true),
        bind(signal.path(), "/signal", false),
    ];
    step.remove_after_start = vec![secret_file.display().to_string()];
    let watch = async {
        let started = std::time::Instant::now();
        while secret_file.exists() && started.elapsed() < std::time::Duration::from_secs(50) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Gone (or given up on) while the command still waits for this.
        let gone = !secret_file.exists();
        std::fs::write(signal.path().join("go"), "").unwrap();
        gone
    };
    let (out, gone_while_running) = tokio::join!(fixture.run(step), watch);
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "s3cret");
    assert!(
        gone_while_running,
        "the secret file stayed on the host while the command ran"
    );
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                if let Ok(bytes) = std::fs::read(&path) {
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        hits.push(path);
                    }
                }
            }
        }
    }
    hits
}

#[tokio::test]
async fn steps_reach_a_server_on_the_host() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    // Listen on every address: steps come in through gantry's bridge.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let marker = format!("hello-from-host-{:x}", rand_u64());
    let body = marker.clone();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        write!(
            stream,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let out = fixture
        .exec(&image, &["sh", "-c", &format!("ip=$(ip route | awk '/default/ {{print $3}}'); printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 $ip {port} | tail -n 1")])
        .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        marker,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().unwrap();
    // Its own namespace: an address on the bridge, not the host's interfaces.
    let addresses = fixture
        .sh(&image, "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'")
        .await;
    assert!(addresses.starts_with("inet 10.87."), "{addresses}");
}

/// The engine's network namespaces (`gantry-<engine>-…`), by name.
fn namespaces_of(runtime: &gantry_native::NativeRuntime) -> Vec<String> {
    let engine = runtime
        .run_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let prefix = format!("gantry-{engine}-");
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn namespaces_are_made_ahead_used_once_and_gone_at_shutdown() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    // More parallel steps than namespaces kept ready: each still gets its own.
    let address = "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'";
    let outputs = futures::future::join_all((0..4).map(|_| fixture.sh(&image, address))).await;
    let mut distinct = outputs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{outputs:?}");
    // Idle, the engine holds the ready ones only: the steps' went in the background.
    let ready = wait_for_namespaces(&fixture.runtime, |names| names.len() == 2).await;
    // The next step takes one of them, which is deleted after it and not used again.
    let next = fixture.sh(&image, address).await;
    assert!(next.starts_with("inet 10.87."), "{next}");
    wait_for_namespaces(&fixture.runtime, |names| {
        names.len() == 2 && ready.iter().any(|name| !names.contains(name))
    })
    .await;
    fixture.runtime.shutdown().await;
    assert_eq!(namespaces_of(&fixture.runtime), Vec::<String>::new());
}

/// Waits (up to 20 s) until the engine's namespaces satisfy `done`; returns them.
async fn wait_for_namespaces(
    runtime: &gantry_native::NativeRuntime,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let names = namespaces_of(runtime);
        if done(&names) {
            return names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out; the engine's namespaces: {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
