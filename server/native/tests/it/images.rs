//! Images: pull fidelity (through a registry), save/load, deterministic publishing,
//! registry credentials.

use std::io::Write as _;

use gantry_core::runtime::{ImageConfig, RegistryAuth, RootfsSpec, Runtime as _, RuntimeError};
use oci_client::secrets::RegistryAuth as OciAuth;

use crate::support::*;

fn digest(bytes: &[u8]) -> String {
    gantry_core::Digest::of_bytes(bytes).to_string()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

enum Item<'a> {
    Dir(u32, u64),
    File(&'a [u8], u32, u64),
    Symlink(&'a str),
    Hardlink(&'a str),
    Fifo,
    Xattr(&'a [u8], &'a str, &'a [u8]),
}

fn layer_tar(entries: &[(&str, Item<'_>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, item) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_600_000_000);
        header.set_mode(0o644);
        header.set_size(0);
        match item {
            Item::Dir(mode, owner) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_uid(*owner);
                header.set_gid(*owner);
                builder
                    .append_data(&mut header, name, std::io::empty())
                    .unwrap();
            }
            Item::File(data, mode, owner) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_uid(*owner);
                header.set_gid(*owner);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, name, *data).unwrap();
            }
            Item::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                builder.append_link(&mut header, name, target).unwrap();
            }
            Item::Hardlink(target) => {
                header.set_entry_type(tar::EntryType::Link);
                builder.append_link(&mut header, name, target).unwrap();
            }
            Item::Fifo => {
                header.set_entry_type(tar::EntryType::Fifo);
                builder
                    .append_data(&mut header, name, std::io::empty())
                    .unwrap();
            }
            Item::Xattr(data, key, value) => {
                builder
                    .append_pax_extensions([(format!("SCHILY.xattr.{key}").as_str(), *value)])
                    .unwrap();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, name, *data).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// Pushes busybox plus `extra` layers as `repository:tag` in the local registry.
async fn push_image_with(repository: &str, tag: &str, extra: &[Vec<u8>]) -> (String, Vec<String>) {
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let base: oci_client::Reference = busybox().parse().unwrap();
    let (manifest, _, config) = client
        .pull_manifest_and_config(&base, &OciAuth::Anonymous)
        .await
        .unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let target: oci_client::Reference = format!("{}/{repository}:{tag}", registry())
        .parse()
        .unwrap();
    let mut layers = Vec::new();
    for descriptor in &manifest.layers {
        let mut blob = Vec::new();
        client
            .pull_blob(&base, descriptor, &mut blob)
            .await
            .unwrap();
        client
            .push_blob(&target, blob, &descriptor.digest)
            .await
            .unwrap();
        layers.push(serde_json::json!({ "mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size }));
    }
    let mut diff_ids = Vec::new();
    for tar in extra {
        let compressed = gzip(tar);
        diff_ids.push(digest(tar));
        client
            .push_blob(&target, compressed.clone(), &digest(&compressed))
            .await
            .unwrap();
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest(&compressed),
            "size": compressed.len(),
        }));
    }
    let ids = config["rootfs"]["diff_ids"].as_array_mut().unwrap();
    ids.extend(diff_ids.iter().map(|d| serde_json::Value::from(d.clone())));
    let config = serde_json::to_vec(&config).unwrap();
    client
        .push_blob(&target, config.clone(), &digest(&config))
        .await
        .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len() },
        "layers": layers,
    }))
    .unwrap();
    client
        .push_manifest_raw(
            &target,
            manifest,
            http::HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
        )
        .await
        .unwrap();
    (target.whole(), diff_ids)
}

const CHECK: &str = "stat -c '%n %a %u %g %F' /fid /fid/setuid /fid/fifo /etc/fid-owned; readlink /fid/link; readlink /fid/abs; \
    [ $(stat -c %i /fid/setuid) = $(stat -c %i /fid/hard) ] && echo hardlinked; \
    test -e /fid/gone || echo gone; ls /fid/opaque; test -e /bin/ls || echo no-ls";
const EXPECTED: &str = "/fid 750 1000 1000 directory\n/fid/setuid 4755 0 0 regular file\n/fid/fifo 644 0 0 fifo\n\
    /etc/fid-owned 600 65532 65532 regular file\nsetuid\n/etc/passwd\nhardlinked\ngone\nnew\nno-ls\n";

#[tokio::test]
async fn pulled_layers_keep_modes_owners_links_xattrs_and_whiteouts() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let first = layer_tar(&[
        ("fid/", Item::Dir(0o750, 1000)),
        ("fid/setuid", Item::File(b"x", 0o4755, 0)),
        ("fid/link", Item::Symlink("setuid")),
        ("fid/abs", Item::Symlink("/etc/passwd")),
        ("fid/hard", Item::Hardlink("fid/setuid")),
        ("fid/fifo", Item::Fifo),
        (
            "fid/xattr",
            Item::Xattr(b"with attributes", "user.gantry", b"kept"),
        ),
        (
            "fid/gone",
            Item::File(b"removed by the next layer", 0o644, 0),
        ),
        ("fid/opaque/", Item::Dir(0o755, 0)),
        (
            "fid/opaque/old",
            Item::File(b"hidden by the opaque marker", 0o644, 0),
        ),
        ("etc/fid-owned", Item::File(b"private", 0o600, 65532)),
    ]);
    let second = layer_tar(&[
        ("fid/", Item::Dir(0o750, 1000)),
        ("fid/.wh.gone", Item::File(b"", 0o644, 0)),
        ("fid/opaque/", Item::Dir(0o755, 0)),
        ("fid/opaque/.wh..wh..opq", Item::File(b"", 0o644, 0)),
        ("fid/opaque/new", Item::File(b"new", 0o644, 0)),
        ("bin/.wh.ls", Item::File(b"", 0o644, 0)),
    ]);
    let tag = format!("t{:x}", rand_u64());
    let (reference, diff_ids) =
        push_image_with("gantry-test/fidelity", &tag, &[first, second]).await;
    let image = fixture.pull(&reference).await.image_id;
    assert_eq!(fixture.sh(&image, CHECK).await, EXPECTED);

    // On disk: overlayfs form (a 0/0 character device, the opaque xattr) and the xattr.
    let layers = fixture.store_root().join("layers");
    let first_dir = layers.join(&diff_ids[0]["sha256:".len().."sha256:".len() + 32]);
    let second_dir = layers.join(&diff_ids[1]["sha256:".len().."sha256:".len() + 32]);
    let mut value = [0u8; 16];
    let len =
        rustix::fs::lgetxattr(first_dir.join("fid/xattr"), "user.gantry", &mut value[..]).unwrap();
    assert_eq!(&value[..len], b"kept");
    let whiteout = std::fs::symlink_metadata(second_dir.join("fid/gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &whiteout.file_type()
    ));
    let len = rustix::fs::lgetxattr(
        second_dir.join("fid/opaque"),
        "trusted.overlay.opaque",
        &mut value[..],
    )
    .unwrap();
    assert_eq!(&value[..len], b"y");

    // Saved and loaded into another store, the image is the same filesystem.
    let tarball = fixture
        .runtime
        .save_image(&image, "gantry.local/fidelity:saved")
        .await
        .unwrap();
    let other = Fixture::start().await.unwrap();
    let loaded = other.runtime.load_image(tarball.clone()).await.unwrap();
    assert_eq!(other.sh(&loaded.image_id, CHECK).await, EXPECTED);
    // And Docker reads the same tarball.
    if let Ok(mut child) = std::process::Command::new("docker")
        .args(["load", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        child.stdin.take().unwrap().write_all(&tarball).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::process::Command::new("docker")
            .args(["rmi", "gantry.local/fidelity:saved"])
            .output();
    }
}

#[tokio::test]
async fn the_same_pipeline_publishes_the_same_digest() {
    let Some(first) = Fixture::start().await else {
        return;
    };
    let second = Fixture::start().await.unwrap();
    let config = ImageConfig {
        env: vec![("PATH".into(), "/bin:/usr/bin".into())],
        workdir: "/app".into(),
        cmd: vec!["cat".into(), "/app/out".into()],
        ..Default::default()
    };
    let mut digests = Vec::new();
    for (n, fixture) in [&first, &second].into_iter().enumerate() {
        let base = fixture.pull(&busybox()).await.image_id;
        // Files written at different times in each run.
        std::thread::sleep(std::time::Duration::from_millis(1100 * n as u64));
        let built = fixture
            .exec(
                &base,
                &[
                    "sh",
                    "-c",
                    "mkdir -p /app && echo built > /app/out && ln -s out /app/link && rm /bin/ls",
                ],
            )
            .await;
        let rootfs = RootfsSpec {
            image_id: Some(built.image_id.clone()),
            layers: vec![layer("/app", {
                let mut b = tar::Builder::new(Vec::new());
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(5);
                h.set_mode(0o644);
                b.append_data(&mut h, "added", &b"added"[..]).unwrap();
                b.into_inner().unwrap()
            })],
        };
        let image = fixture
            .runtime
            .build_image(&rootfs, &config, "gantry.local/image:determinism")
            .await
            .unwrap();
        let reference = format!(
            "{}/gantry-test/determinism:run{n}-{:x}",
            registry(),
            rand_u64()
        );
        let pushed = fixture
            .runtime
            .push(&image, &reference, None)
            .await
            .unwrap();
        digests.push((reference, pushed));
    }
    assert_eq!(digests[0].1, digests[1].1, "{digests:?}");
    // What was pushed runs elsewhere with its configuration.
    let third = Fixture::start().await.unwrap();
    let pulled = third
        .pull(&format!(
            "{}@{}",
            digests[0]
                .0
                .split(':')
                .take(2)
                .collect::<Vec<_>>()
                .join(":"),
            digests[0].1
        ))
        .await;
    assert_eq!(pulled.config.workdir, "/app");
    assert_eq!(pulled.config.cmd, ["cat", "/app/out"]);
    assert_eq!(
        third
            .sh(
                &pulled.image_id,
                "cat /app/out /app/added; readlink /app/link; test -e /bin/ls || echo no-ls"
            )
            .await,
        "built\naddedout\nno-ls\n"
    );
}

#[tokio::test]
async fn registry_credentials_are_used_and_refusals_reported() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let server = test_env("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001");
    let reference = format!("{server}/gantry-fixtures/busybox:latest");
    let password = test_env("GANTRY_TEST_AUTH_REGISTRY_PASSWORD", "gantry-test-password");
    let auth = RegistryAuth {
        server: server.clone(),
        username: test_env("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry"),
        password: password.clone(),
    };
    let pulled = fixture.runtime.pull(&reference, Some(&auth)).await.unwrap();
    assert_eq!(fixture.sh(&pulled.image_id, "echo ok").await, "ok\n");
    let wrong = RegistryAuth {
        password: "not-the-password".into(),
        ..auth
    };
    let other = Fixture::start().await.unwrap();
    let refused = other
        .runtime
        .pull(&reference, Some(&wrong))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RuntimeError::Unauthorized { .. }),
        "{refused}"
    );
    assert!(
        !refused.to_string().contains("not-the-password"),
        "{refused}"
    );
    let missing = other
        .runtime
        .pull(
            &format!("{}/gantry-fixtures/no-such-image:1", registry()),
            None,
        )
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no-such-image"), "{missing}");
}
