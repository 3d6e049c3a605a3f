//! Integration tests of `NativeRuntime` against the local fixture registry
//! (127.0.0.1:5000, `make setup`), with real crun/runc, overlayfs, cgroups and network
//! namespaces. They need root; without what the native runtime needs they print why
//! and pass, unless `GANTRY_TEST_REQUIRE_DOCKER=1` or `GANTRY_TEST_REQUIRE_NATIVE=1`
//! (as `make test` sets), which turns the skip into a failure.

#![allow(clippy::print_stderr, reason = "tests explain why they skip")]

mod support;

mod exec;
mod images;
mod lifecycle;
mod services;

use support::*;

#[tokio::test]
async fn pulls_and_runs_a_command() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await;
    assert!(image.image_id.starts_with("sha256:"), "{image:?}");
    assert!(image.resolved_ref.contains("@sha256:"), "{image:?}");
    let out = fixture
        .exec(
            &image.image_id,
            &["sh", "-c", "echo hello; echo oops >&2; exit 3"],
        )
        .await;
    assert_eq!(out.stdout, b"hello\n");
    assert_eq!(out.stderr, b"oops\n");
    assert_eq!(out.exit_code, 3);
}
