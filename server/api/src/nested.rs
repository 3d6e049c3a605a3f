//! Nested sessions: the API for a command that runs with
//! `withExec(experimentalPrivilegedNesting: true)`. Each such command gets a
//! session of its own on the host's loopback, with a fresh token, served
//! while it runs; the step runs on the host's network to reach it, and the
//! SDKs inside find it through `GANTRY_SESSION_PORT`/`DAGGER_SESSION_PORT`
//! and their tokens (`gantry_core::ops::exec`). Its clients have no host
//! (`ClientInfo::nested`): they run in a container, and the engine's files
//! and environment are not theirs.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use gantry_core::runtime::{NestedSession, NestedSessions};
use gantry_core::Engine;
use tokio::net::TcpListener;

/// Lends `engine` its nested sessions (once per engine).
pub(crate) fn attach(engine: &Arc<Engine>) {
    // Weak: the engine holds this, and a session's schema holds the engine.
    engine.attach_nesting(Arc::new(Sessions {
        engine: Arc::downgrade(engine),
    }));
}

struct Sessions {
    engine: Weak<Engine>,
}

/// Serves a session until dropped.
struct Serving(tokio::task::JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl NestedSessions for Sessions {
    async fn open(&self) -> Result<NestedSession, String> {
        let engine = self
            .engine
            .upgrade()
            .ok_or_else(|| "the engine is shutting down".to_owned())?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| format!("binding a loopback port: {error}"))?;
        let port = listener
            .local_addr()
            .map_err(|error| error.to_string())?
            .port();
        let token = random_token();
        let app =
            crate::http::nested_router(crate::session_schema(engine), Arc::from(token.as_str()));
        let serving = tokio::spawn(async move {
            if let Err(error) = crate::serve_tcp(listener, app).await {
                tracing::warn!(%error, "a nested session stopped serving");
            }
        });
        Ok(NestedSession {
            port,
            token,
            serving: Box::new(Serving(serving)),
        })
    }
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
