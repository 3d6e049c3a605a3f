//! API tests of the Tier 2 fields (issue 20) through `schema.execute`,
//! against `FakeRuntime` and `MemoryStore`: no container runs here (the
//! end-to-end tests on Docker are in server/cli/tests/it).

mod changesets;
mod containers;
mod directories;
mod envfile_json;
mod values;

use std::path::PathBuf;
use std::sync::Arc;

use async_graphql::Request;
use gantry_api::ClientInfo;
use gantry_core::fake::FakeRuntime;
use gantry_core::store::MemoryStore;
use gantry_core::{Engine, EngineOptions};
use serde_json::Value;

pub(crate) fn schema() -> (gantry_api::GantrySchema, Arc<FakeRuntime>) {
    let runtime = Arc::new(FakeRuntime::default());
    let engine = Engine::new(
        runtime.clone(),
        Arc::new(MemoryStore::default()),
        EngineOptions {
            max_parallel: 8,
            secret_key: [1; 32],
        },
    );
    (gantry_api::schema(Arc::new(engine)), runtime)
}

/// Runs `query` for a client whose working directory is `workdir`.
pub(crate) async fn run_in(
    schema: &gantry_api::GantrySchema,
    workdir: PathBuf,
    query: &str,
) -> Value {
    let request = Request::new(query).data(ClientInfo::new(Some(workdir)));
    serde_json::to_value(schema.execute(request).await).unwrap()
}

pub(crate) async fn run(schema: &gantry_api::GantrySchema, query: &str) -> Value {
    run_in(schema, std::env::temp_dir(), query).await
}

/// The data of a query that must succeed.
pub(crate) async fn data(schema: &gantry_api::GantrySchema, query: &str) -> Value {
    let out = run(schema, query).await;
    assert!(
        out["errors"].is_null(),
        "{query}\nfailed: {}",
        out["errors"]
    );
    out["data"].clone()
}

/// The first error's message and code of a query that must fail.
pub(crate) async fn error(schema: &gantry_api::GantrySchema, query: &str) -> (String, String) {
    let out = run(schema, query).await;
    let error = &out["errors"][0];
    assert!(!error.is_null(), "{query}\nshould have failed: {out}");
    (
        error["message"].as_str().unwrap_or_default().to_owned(),
        error["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}
