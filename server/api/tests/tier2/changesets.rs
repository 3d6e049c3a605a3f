//! Changeset: paths, stats, layer, patch, export, merges; Directory.changes,
//! withChanges, withPatch.

use serde_json::json;

use super::{data, error, run_in, schema};

const OLD: &str = r#"directory { withNewFile(path: "mod.txt", contents: "one\nold\n") {
    withNewFile(path: "gone/a.txt", contents: "a\n") { withNewFile(path: "keep.txt", contents: "k\n") {
    withNewFile(path: "old-name.txt", contents: "same\n") { id } } } } }"#;

async fn ids(schema: &gantry_api::GantrySchema) -> (String, String) {
    let old = data(schema, &format!("{{ {OLD} }}")).await;
    let old = old["directory"]["withNewFile"]["withNewFile"]["withNewFile"]["withNewFile"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = data(
        schema,
        &format!(
            r#"{{ loadDirectoryFromID(id: "{old}") {{ withNewFile(path: "mod.txt", contents: "one\nnew\n") {{
                 withoutDirectory(path: "gone") {{ withNewFile(path: "new/added.txt", contents: "fresh\n") {{
                 withoutFile(path: "old-name.txt") {{ withNewFile(path: "new-name.txt", contents: "same\n") {{ id }} }} }} }} }} }} }}"#
        ),
    )
    .await;
    let new = new["loadDirectoryFromID"]["withNewFile"]["withoutDirectory"]["withNewFile"]
        ["withoutFile"]["withNewFile"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (old, new)
}

#[tokio::test]
async fn changes_list_paths_stats_and_layers() {
    let (schema, runtime) = schema();
    let (old, new) = ids(&schema).await;
    let out = data(
        &schema,
        &format!(
            r#"{{ loadDirectoryFromID(id: "{new}") {{ changes(from: "{old}") {{
                 addedPaths modifiedPaths removedPaths isEmpty
                 diffStats {{ path oldPath kind addedLines removedLines }}
                 layer {{ glob(pattern: "**") }}
                 before {{ entries }} after {{ entries }}
               }} }}
               empty: changeset {{ isEmpty addedPaths }} }}"#
        ),
    )
    .await;
    let c = &out["loadDirectoryFromID"]["changes"];
    assert_eq!(
        c["addedPaths"],
        json!(["new-name.txt", "new/", "new/added.txt"])
    );
    assert_eq!(c["modifiedPaths"], json!(["mod.txt"]));
    assert_eq!(c["removedPaths"], json!(["gone/", "old-name.txt"]));
    assert_eq!(c["isEmpty"], false);
    assert_eq!(
        c["diffStats"],
        json!([
            {"path": "gone/", "oldPath": null, "kind": "REMOVED", "addedLines": 0, "removedLines": 0},
            {"path": "gone/a.txt", "oldPath": null, "kind": "REMOVED", "addedLines": 0, "removedLines": 1},
            {"path": "mod.txt", "oldPath": null, "kind": "MODIFIED", "addedLines": 1, "removedLines": 1},
            {"path": "new-name.txt", "oldPath": "old-name.txt", "kind": "RENAMED", "addedLines": 0, "removedLines": 0},
            {"path": "new/", "oldPath": null, "kind": "ADDED", "addedLines": 0, "removedLines": 0},
            {"path": "new/added.txt", "oldPath": null, "kind": "ADDED", "addedLines": 1, "removedLines": 0},
        ])
    );
    assert_eq!(
        c["layer"]["glob"],
        json!(["mod.txt", "new/", "new-name.txt", "new/added.txt"])
    );
    assert_eq!(
        c["before"]["entries"],
        json!(["gone/", "keep.txt", "mod.txt", "old-name.txt"])
    );
    assert_eq!(
        c["after"]["entries"],
        json!(["keep.txt", "mod.txt", "new/", "new-name.txt"])
    );
    assert_eq!(out["empty"], json!({"isEmpty": true, "addedPaths": []}));
    assert_eq!(runtime.execs(), 0);
}

#[tokio::test]
async fn a_patch_and_with_changes_reproduce_the_new_directory() {
    let (schema, _) = schema();
    let (old, new) = ids(&schema).await;
    let out = data(
        &schema,
        &format!(
            r#"{{ loadDirectoryFromID(id: "{new}") {{ digest changes(from: "{old}") {{
                 asPatch {{ name contents id }} id }} }}
               old: loadDirectoryFromID(id: "{old}") {{ digest }} }}"#
        ),
    )
    .await;
    let new_digest = out["loadDirectoryFromID"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let changes = &out["loadDirectoryFromID"]["changes"];
    let patch = changes["asPatch"]["contents"].as_str().unwrap();
    assert_eq!(changes["asPatch"]["name"], "diff.patch");
    assert!(
        patch.contains("diff --git a/mod.txt b/mod.txt\n--- a/mod.txt\n+++ b/mod.txt\n"),
        "{patch}"
    );
    assert!(
        patch.contains("deleted file mode 100644\n--- a/gone/a.txt\n+++ /dev/null\n"),
        "{patch}"
    );
    let patch_id = changes["asPatch"]["id"].as_str().unwrap();
    let changes_id = changes["id"].as_str().unwrap();
    let applied = data(
        &schema,
        &format!(
            r#"{{ viaPatch: loadDirectoryFromID(id: "{old}") {{ withPatch(patch: {patch}) {{ digest }} }}
               viaFile: loadDirectoryFromID(id: "{old}") {{ withPatchFile(patch: "{patch_id}") {{ digest }} }}
               viaChanges: loadDirectoryFromID(id: "{old}") {{ withChanges(changes: "{changes_id}") {{ digest }} }} }}"#,
            patch = serde_json::to_string(patch).unwrap()
        ),
    )
    .await;
    assert_eq!(
        applied["viaPatch"]["withPatch"]["digest"],
        new_digest.as_str()
    );
    assert_eq!(
        applied["viaFile"]["withPatchFile"]["digest"],
        new_digest.as_str()
    );
    assert_eq!(
        applied["viaChanges"]["withChanges"]["digest"],
        new_digest.as_str()
    );
    let (message, code) = error(
        &schema,
        &format!(r#"{{ loadDirectoryFromID(id: "{new}") {{ withPatchFile(patch: "{patch_id}") {{ digest }} }} }}"#),
    )
    .await;
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(message.contains("patch does not apply"), "{message}");
    let (message, code) = error(
        &schema,
        &format!(r#"{{ directory {{ changes(from: "{patch_id}") {{ isEmpty }} }} }}"#),
    )
    .await;
    assert_eq!(code, "INVALID_ID");
    assert!(
        message.contains("File ID passed where a Directory ID is expected"),
        "{message}"
    );
}

#[tokio::test]
async fn merges_combine_changes_and_refuse_conflicts() {
    let (schema, _) = schema();
    let base = r#"directory { withNewFile(path: "f", contents: "1\n2\n3\n4\n5\n") { id } }"#;
    let base = data(&schema, &format!("{{ {base} }}")).await["directory"]["withNewFile"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |path: &str, contents: &str| {
        format!(
            r#"loadDirectoryFromID(id: "{base}") {{ withNewFile(path: "{path}", contents: "{contents}") {{ changes(from: "{base}") {{ id }} }} }}"#
        )
    };
    let out = data(
        &schema,
        &format!(
            "{{ ours: {} theirs: {} clash: {} other: {} }}",
            change("f", "one\\n2\\n3\\n4\\n5\\n"),
            change("f", "1\\n2\\n3\\n4\\nfive\\n"),
            change("f", "uno\\n2\\n3\\n4\\n5\\n"),
            change("g", "g\\n")
        ),
    )
    .await;
    let id = |name: &str| {
        out[name]["withNewFile"]["changes"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ours, theirs, clash, other) = (id("ours"), id("theirs"), id("clash"), id("other"));
    let merged = data(
        &schema,
        &format!(
            r#"{{ loadChangesetFromID(id: "{ours}") {{
                 withChangeset(changes: "{theirs}") {{ after {{ file(path: "f") {{ contents }} }} }}
                 withChangesets(changes: ["{theirs}", "{other}"]) {{ addedPaths modifiedPaths }}
                 preferred: withChangeset(changes: "{clash}", onConflict: PREFER_THEIRS) {{ after {{ file(path: "f") {{ contents }} }} }}
                 markers: withChangeset(changes: "{clash}", onConflict: LEAVE_CONFLICT_MARKERS) {{ after {{ file(path: "f") {{ contents }} }} }}
               }} }}"#
        ),
    )
    .await;
    let m = &merged["loadChangesetFromID"];
    assert_eq!(
        m["withChangeset"]["after"]["file"]["contents"],
        "one\n2\n3\n4\nfive\n"
    );
    assert_eq!(
        m["withChangesets"],
        json!({"addedPaths": ["g"], "modifiedPaths": ["f"]})
    );
    assert_eq!(
        m["preferred"]["after"]["file"]["contents"],
        "uno\n2\n3\n4\n5\n"
    );
    assert!(m["markers"]["after"]["file"]["contents"]
        .as_str()
        .unwrap()
        .contains("<<<<<<<"));
    let (message, _) = error(
        &schema,
        &format!(r#"{{ loadChangesetFromID(id: "{ours}") {{ withChangeset(changes: "{clash}") {{ isEmpty }} }} }}"#),
    )
    .await;
    assert!(message.contains("changesets conflict on f"), "{message}");
    let (message, _) = error(
        &schema,
        &format!(r#"{{ loadChangesetFromID(id: "{ours}") {{ withChangeset(changes: "{theirs}", onConflict: FAIL_EARLY) {{ isEmpty }} }} }}"#),
    )
    .await;
    assert!(message.contains("conflict on f"), "{message}");
}

#[tokio::test]
async fn export_applies_the_changes_to_a_host_directory() {
    let (schema, _) = schema();
    let (old, new) = ids(&schema).await;
    let host = tempfile::tempdir().unwrap();
    let out_dir = host.path().join("out");
    std::fs::create_dir_all(out_dir.join("gone")).unwrap();
    std::fs::write(out_dir.join("gone/a.txt"), "a\n").unwrap();
    std::fs::write(out_dir.join("old-name.txt"), "same\n").unwrap();
    std::fs::write(out_dir.join("unrelated.txt"), "u\n").unwrap();
    let out = run_in(
        &schema,
        host.path().to_owned(),
        &format!(r#"{{ loadDirectoryFromID(id: "{new}") {{ changes(from: "{old}") {{ export(path: "out") }} }} }}"#),
    )
    .await;
    assert!(out["errors"].is_null(), "{out}");
    let mut left: Vec<String> = walk(&out_dir);
    left.sort();
    assert_eq!(
        left,
        ["mod.txt", "new-name.txt", "new/added.txt", "unrelated.txt"]
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("mod.txt")).unwrap(),
        "one\nnew\n"
    );
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for inner in walk(&path) {
                out.push(format!(
                    "{}/{inner}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        } else {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}
