//! Mounted directories, files, secrets and temp dirs: visible to execs,
//! never part of the image.

use std::fs;

use serde_json::json;

use crate::support::{self, busybox, Server};
use crate::support::{at, data, error_message, run, text};

#[test]
fn mounts_are_visible_to_execs_but_never_part_of_the_image() {
    require_runtime!();
    let server = Server::start();
    let marker = support::unique("mount-content");
    let ids = run(
        &server,
        r#"query($marker: String!) {
            dir: directory { withNewFile(path: "m.txt", contents: $marker) { id } }
            file: directory { withNewFile(path: "f.txt", contents: "file-content") { file(path: "f.txt") { id } } } }"#,
        json!({ "marker": marker }),
    );
    let dir = text(&ids, "dir.withNewFile.id");
    let file = text(&ids, "file.withNewFile.file.id");
    let query = r#"query($image: String!, $dir: ID!, $file: ID!) { container { from(address: $image) {
        withMountedDirectory(path: "/mnt/d", source: $dir) { withMountedFile(path: "/mnt/f.txt", source: $file) {
          withMountedTemp(path: "/scratch") {
            mounts
            withoutMount(path: "/scratch") { mounts }
            withExec(args: ["sh", "-c", "cat /mnt/d/m.txt /mnt/f.txt; echo tmp > /scratch/t; echo kept > /kept.txt; echo new > /mnt/d/new.txt"]) {
              id stdout
              rootfs { glob(pattern: "**/m.txt") kept: glob(pattern: "kept.txt") scratch: glob(pattern: "scratch/*") }
              mounted: directory(path: "/mnt/d") { entries }
              keptFile: file(path: "/kept.txt") { contents }
              again: withExec(args: ["sh", "-c", "ls /scratch; cat /mnt/d/m.txt"]) { stdout }
              unmounted: withoutMount(path: "/mnt/d") { withExec(args: ["ls", "-A", "/mnt/d"]) { stdout } }
            } } } } } } }"#;
    let out = run(
        &server,
        query,
        json!({ "image": busybox(), "dir": dir, "file": file }),
    );
    let temp = at(
        &out,
        "container.from.withMountedDirectory.withMountedFile.withMountedTemp",
    );
    assert_eq!(temp["mounts"], json!(["/mnt/d", "/mnt/f.txt", "/scratch"]));
    assert_eq!(
        temp["withoutMount"]["mounts"],
        json!(["/mnt/d", "/mnt/f.txt"])
    );
    let exec = &temp["withExec"];
    assert_eq!(exec["stdout"], format!("{marker}file-content"));
    assert_eq!(exec["rootfs"]["glob"], json!([]));
    assert_eq!(exec["rootfs"]["kept"], json!(["kept.txt"]));
    assert_eq!(exec["rootfs"]["scratch"], json!([]));
    // Under a writable directory mount, what the last exec left.
    assert_eq!(exec["mounted"]["entries"], json!(["m.txt", "new.txt"]));
    assert_eq!(exec["keptFile"]["contents"], "kept\n");
    // The tmpfs is fresh for each exec; the directory mount stays.
    assert_eq!(exec["again"]["stdout"], marker);
    assert_eq!(exec["unmounted"]["withExec"]["stdout"], "");
    let exec_id = text(exec, "id");

    // Under a temporary mount there is nothing to read.
    let out = server.query_vars(
        r#"query($id: ID!) { loadContainerFromID(id: $id) { file(path: "/scratch/t") { contents } } }"#,
        &json!({ "id": exec_id }),
    );
    assert!(error_message(&out).contains("mount"), "{out}");

    // Nor in an exported or published image.
    let host = tempfile::tempdir().unwrap();
    let out = data(server.query_in(
        host.path(),
        r#"query($id: ID!) { loadContainerFromID(id: $id) { export(path: "image.tar") } }"#,
        &json!({ "id": exec_id }),
    ));
    let tarball = fs::read(host.path().join("image.tar")).unwrap();
    assert_eq!(
        at(&out, "loadContainerFromID.export"),
        &json!(host.path().join("image.tar").display().to_string())
    );
    assert!(!support::contains_bytes(&tarball, marker.as_bytes()));
    assert!(!support::contains_bytes(&tarball, b"file-content"));
    let address = format!("{}/gantry-test/mounts:{}", support::registry(), marker);
    let out = run(
        &server,
        r#"query($id: ID!, $address: String!) { loadContainerFromID(id: $id) { publish(address: $address) } }"#,
        json!({ "id": exec_id, "address": address }),
    );
    let published = text(&out, "loadContainerFromID.publish");
    assert!(!support::docker_save_contains(
        &published,
        marker.as_bytes()
    ));
    let ls = support::docker(&[
        "run",
        "--rm",
        &published,
        "sh",
        "-c",
        "cat /kept.txt; ls -A /mnt/d /scratch",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout),
        "kept\n/mnt/d:\n\n/scratch:\n"
    );
}
