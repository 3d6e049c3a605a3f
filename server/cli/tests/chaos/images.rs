//! Images belong to the state directory that made them: two state
//! directories on one daemon run the same step, one is pruned, the other
//! loses nothing; the pruned one keeps none of its images (failed steps and
//! built images included). And a cached result whose image was removed
//! behind gantry's back is run again, in the same engine and after a restart.

use serde_json::json;

use crate::engine::{self, Engine, Spec};
use crate::Outcome;

fn exec(args: &str) -> String {
    format!(
        r#"{{ container {{ from(address: "{}") {{ withExec(args: {args}) {{ stdout }} }} }} }}"#,
        crate::support::busybox()
    )
}

pub(crate) fn prune() -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let (a_spec, b_spec) = (Spec::under(&a_dir), Spec::under(&b_dir));
    let marker = format!("prune-{:x}", engine::random_u64());
    let step = exec(&json!(["sh", "-c", format!("echo {marker} > /x; cat /x")]).to_string());
    let events = engine::Events::watch();
    let a = Engine::start(&a_spec);
    let b = Engine::start(&b_spec);
    let first = a.query(&step, &json!(null));
    let second = b.query(&step, &json!(null));
    assert!(
        first["errors"].is_null() && second["errors"].is_null(),
        "{first} {second}"
    );
    // A failed step and a built image (asTarball) in A.
    let failing = exec(&json!(["sh", "-c", format!("echo {marker} > /y; exit 3")]).to_string());
    assert!(engine::error_of(&a.query(&failing, &json!(null))).is_some());
    let tarball = format!(
        r#"{{ container {{ from(address: "{}") {{ withEnvVariable(name: "M", value: "{marker}") {{ withExec(args: ["sh", "-c", "echo $M > /z"]) {{ asTarball {{ size }} }} }} }} }} }}"#,
        crate::support::busybox()
    );
    let built = a.query(&tarball, &json!(null));
    assert!(built["errors"].is_null(), "{built}");
    let seen = events.stop();
    let a_images = seen.committed(&[a.pid()]);
    let b_images = seen.committed(&[b.pid()]);
    drop(a);
    let pruned = a_spec.command(&["prune"]).output().unwrap();
    let lost = b_images
        .iter()
        .filter(|id| !crate::support::docker_image_exists(id))
        .count();
    let left = a_images
        .iter()
        .filter(|id| crate::support::docker_image_exists(id))
        .count();
    // B still answers from its cache, without running anything.
    let events = engine::Events::watch();
    let again = b.query(
        &format!(
            r#"{{ container {{ from(address: "{}") {{ withExec(args: ["sh", "-c", "echo {marker} > /x; cat /x"]) {{ withExec(args: ["cat", "/x"]) {{ stdout }} }} }} }} }}"#,
            crate::support::busybox()
        ),
        &json!(null),
    );
    let b_ok = again["errors"].is_null();
    let b_reran = events.stop().created(&[b.pid()]);
    for id in a_images.iter().chain(&b_images) {
        let _ = crate::support::docker(&["rmi", "-f", id]);
    }
    let figure = format!(
        "prune A: {}; B's images lost: {lost}/{}; A's images left: {left}/{} (failed step and built image included); \
         B after: {} ({b_reran} containers: the cached step reused, one new step)",
        if pruned.status.success() { "ok" } else { "failed" },
        b_images.len(),
        a_images.len(),
        if b_ok { "ok".to_owned() } else { engine::error_of(&again).unwrap_or_default() },
    );
    Outcome::new(
        figure,
        pruned.status.success() && lost == 0 && left == 0 && b_ok && b_reran == 1,
    )
}

pub(crate) fn missing() -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::under(dir.path());
    let engine = Engine::start(&spec);
    let same = Step::new("same");
    let images = same.run(&engine);
    remove(&images);
    let same = same.use_on_top(&engine);
    let restart = Step::new("restart");
    let images = restart.run(&engine);
    drop(engine);
    let engine = Engine::start(&spec);
    remove(&images);
    let after = restart.use_on_top(&engine);
    Outcome::new(
        format!("same engine: {}; after a restart: {}", same.0, after.0),
        same.1 && after.1,
    )
}

fn remove(images: &[String]) {
    for image in images {
        let out = crate::support::docker(&["rmi", "-f", image]);
        assert!(
            out.status.success(),
            "docker rmi {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A step that prints a fresh UUID (and keeps it in /u).
struct Step {
    head: String,
}

impl Step {
    fn new(name: &str) -> Self {
        let marker = format!("missing-{name}-{:x}", engine::random_u64());
        let head = format!(
            r#"container {{ from(address: "{}") {{ withEnvVariable(name: "M", value: "{marker}") {{
                withExec(args: ["sh", "-c", "cat /proc/sys/kernel/random/uuid > /u; cat /u"]) {{ "#,
            crate::support::busybox()
        );
        Self { head }
    }

    /// Runs it; returns the images it committed.
    fn run(&self, engine: &Engine) -> Vec<String> {
        let events = engine::Events::watch();
        let answer = engine.query(
            &format!("{{ {} stdout }} }} }} }} }}", self.head),
            &json!(null),
        );
        assert!(answer["errors"].is_null(), "{answer}");
        let images = events.stop().committed(&[engine.pid()]);
        assert!(!images.is_empty(), "the step committed no image");
        images
    }

    /// Asks for a step on top of it; returns the figure and whether it
    /// answered after running the removed step again, once.
    fn use_on_top(&self, engine: &Engine) -> (String, bool) {
        let events = engine::Events::watch();
        let answer = engine.query(
            &format!(
                "{{ {} withExec(args: [\"cat\", \"/u\"]) {{ stdout }} }} }} }} }} }}",
                self.head
            ),
            &json!(null),
        );
        let created = events.stop().created(&[engine.pid()]);
        match engine::error_of(&answer) {
            // The removed step and the new one.
            None => (format!("ok, {created} containers"), created == 2),
            Some(error) => (format!("error: {error}"), false),
        }
    }
}
