//! Terminals against `FakeRuntime` and a fake user terminal: which command
//! runs where, the error without a terminal, `--interactive` on a failed
//! step. The real terminal (tmux) is tested end to end in server/cli.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gantry_core::fake::FakeRuntime;
use gantry_core::ops;
use gantry_core::runtime::{
    NestedSession, NestedSessions, RuntimeError, TerminalHost, TerminalIo, TerminalSize,
};
use gantry_core::store::MemoryStore;
use gantry_core::{Engine, EngineOptions, Error};

mod common;
use common::{base, exec};

/// A terminal that records the titles it was attached with.
#[derive(Default)]
struct RecordingTerminal {
    titles: Mutex<Vec<String>>,
}

#[async_trait]
impl TerminalHost for RecordingTerminal {
    async fn attach(&self, title: &str) -> Result<TerminalIo, RuntimeError> {
        self.titles.lock().unwrap().push(title.to_owned());
        let (_keys, input) = tokio::sync::mpsc::channel(1);
        let (output, mut shown) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        tokio::spawn(async move { while shown.recv().await.is_some() {} });
        Ok(TerminalIo {
            input,
            output,
            size: TerminalSize::default(),
        })
    }
}

fn engine() -> (Engine, Arc<FakeRuntime>) {
    let runtime = Arc::new(FakeRuntime::default());
    let engine = Engine::new(
        runtime.clone(),
        Arc::new(MemoryStore::default()),
        EngineOptions {
            max_parallel: 4,
            secret_key: [3; 32],
        },
    );
    (engine, runtime)
}

#[tokio::test]
async fn without_a_terminal_the_request_fails_at_once_naming_the_fix() {
    let (engine, runtime) = engine();
    let container = exec(&engine, base(&engine), &["echo", "built"]);
    let error = engine
        .terminal(container, &[], false, false, "Container.terminal")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NoTerminal { .. }), "{error}");
    assert_eq!(error.code(), "NO_TERMINAL");
    assert!(error.to_string().contains("gantry run -- CMD"), "{error}");
    // Nothing was built for a terminal that cannot open.
    assert_eq!(runtime.execs(), 0);
    assert!(runtime.terminals.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_command_is_cmd_else_the_default_terminal_cmd_else_sh() {
    let (engine, runtime) = engine();
    let terminal = Arc::new(RecordingTerminal::default());
    engine.attach_terminal(terminal.clone(), false);
    let built = exec(&engine, base(&engine), &["echo", "built"]);
    engine
        .terminal(built, &[], false, false, "Container.terminal")
        .await
        .unwrap();
    let with_default = engine
        .add(ops::WithDefaultTerminalCmd {
            parent: built,
            args: vec!["bash".into(), "-l".into()],
            insecure_root_capabilities: false,
            experimental_privileged_nesting: false,
        })
        .digest;
    engine
        .terminal(with_default, &[], false, false, "Container.terminal")
        .await
        .unwrap();
    engine
        .terminal(
            with_default,
            &["zsh".to_owned()],
            false,
            false,
            "Container.terminal",
        )
        .await
        .unwrap();
    let terminals = runtime.terminals.lock().unwrap().clone();
    let commands: Vec<Vec<String>> = terminals.iter().map(|(args, _)| args.clone()).collect();
    assert_eq!(
        commands,
        [
            vec!["sh".to_owned()],
            vec!["bash".into(), "-l".into()],
            vec!["zsh".into()]
        ]
    );
    // In the built state: the image the exec committed.
    assert!(terminals
        .iter()
        .all(|(_, image)| image.as_deref() == Some("fake-committed:1")));
    assert_eq!(terminal.titles.lock().unwrap().len(), 3);
    // A default terminal command changes no step's inputs: the same exec
    // after it is a cache hit.
    let after = exec(&engine, with_default, &["echo", "next"]);
    let again = exec(&engine, built, &["echo", "next"]);
    engine.container(after).await.unwrap();
    engine.container(again).await.unwrap();
    assert_eq!(runtime.execs(), 2);
}

#[tokio::test]
async fn insecure_root_capabilities_run_the_terminal_privileged() {
    let (engine, runtime) = engine();
    engine.attach_terminal(Arc::new(RecordingTerminal::default()), false);
    let built = exec(&engine, base(&engine), &["echo", "built"]);
    engine
        .terminal(built, &[], true, false, "Container.terminal")
        .await
        .unwrap();
    // A default command set privileged runs so when it is what runs.
    let with_default = engine
        .add(ops::WithDefaultTerminalCmd {
            parent: built,
            args: vec!["bash".into()],
            insecure_root_capabilities: true,
            experimental_privileged_nesting: false,
        })
        .digest;
    engine
        .terminal(with_default, &[], false, false, "Container.terminal")
        .await
        .unwrap();
    engine
        .terminal(
            with_default,
            &["sh".to_owned()],
            false,
            false,
            "Container.terminal",
        )
        .await
        .unwrap();
    assert_eq!(
        *runtime.privileged_terminals.lock().unwrap(),
        [true, true, false]
    );
}

/// Opens sessions on port 4242 with the token `nested-token`.
struct FixedSessions;

#[async_trait]
impl NestedSessions for FixedSessions {
    async fn open(&self) -> Result<NestedSession, String> {
        Ok(NestedSession {
            port: 4242,
            token: "nested-token".into(),
            serving: Box::new(()),
        })
    }
}

#[tokio::test]
async fn nesting_gives_the_terminal_a_session_on_the_hosts_network() {
    let (engine, runtime) = engine();
    engine.attach_terminal(Arc::new(RecordingTerminal::default()), false);
    let built = exec(&engine, base(&engine), &["echo", "built"]);
    // Without sessions to open, nesting is refused, naming the option.
    let error = engine
        .terminal(built, &[], false, true, "Container.terminal")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("experimentalPrivilegedNesting"),
        "{error}"
    );
    engine.attach_nesting(Arc::new(FixedSessions));
    engine
        .terminal(built, &[], false, true, "Container.terminal")
        .await
        .unwrap();
    engine
        .terminal(built, &[], false, false, "Container.terminal")
        .await
        .unwrap();
    // A default command set with nesting gets a session when it is what runs.
    let with_default = engine
        .add(ops::WithDefaultTerminalCmd {
            parent: built,
            args: vec!["bash".into()],
            insecure_root_capabilities: false,
            experimental_privileged_nesting: true,
        })
        .digest;
    engine
        .terminal(with_default, &[], false, false, "Container.terminal")
        .await
        .unwrap();
    engine
        .terminal(
            with_default,
            &["sh".to_owned()],
            false,
            false,
            "Container.terminal",
        )
        .await
        .unwrap();
    let port = Some("4242".to_owned());
    assert_eq!(
        *runtime.nested_terminals.lock().unwrap(),
        [port.clone(), None, port, None]
    );
}

#[tokio::test]
async fn interactive_opens_a_shell_in_the_failed_state_then_fails_as_before() {
    let (engine, runtime) = engine();
    let terminal = Arc::new(RecordingTerminal::default());
    engine.attach_terminal(terminal.clone(), true);
    let failing = exec(&engine, base(&engine), &["fail", "3"]);
    let error = engine.container(failing).await.unwrap_err();
    assert!(error.to_string().contains("exit code: 3"), "{error}");
    let terminals = runtime.terminals.lock().unwrap().clone();
    assert_eq!(
        terminals,
        [(vec!["sh".to_owned()], Some("fake-committed:1".to_owned()))],
        "a shell in what the failed command left"
    );
    let titles = terminal.titles.lock().unwrap().clone();
    assert!(
        titles[0].contains("step failed") && titles[0].contains("exit code: 3"),
        "{titles:?}"
    );

    // Without --interactive a failure opens nothing.
    let (engine, runtime) = self::engine();
    engine.attach_terminal(Arc::new(RecordingTerminal::default()), false);
    let failing = exec(&engine, base(&engine), &["fail", "3"]);
    engine.container(failing).await.unwrap_err();
    assert!(runtime.terminals.lock().unwrap().is_empty());
}

#[tokio::test]
async fn service_terminal_opens_the_shell_in_the_service_containers_state() {
    let (engine, runtime) = engine();
    let built = exec(&engine, base(&engine), &["echo", "built"]);
    let service = engine
        .add(ops::AsService {
            container: built,
            args: vec!["sleep".into(), "600".into()],
            use_entrypoint: false,
            expand: false,
            insecure_root_capabilities: false,
        })
        .digest;

    // Without a terminal: the error names the field and the fix.
    let error = engine.service_terminal(service, &[]).await.unwrap_err();
    assert!(matches!(error, Error::NoTerminal { .. }), "{error}");
    assert!(error.to_string().contains("Service.terminal"), "{error}");

    let terminal = Arc::new(RecordingTerminal::default());
    engine.attach_terminal(terminal.clone(), false);
    engine.service_terminal(service, &[]).await.unwrap();
    engine
        .service_terminal(service, &["ls".to_owned(), "/".to_owned()])
        .await
        .unwrap();
    let terminals = runtime.terminals.lock().unwrap().clone();
    // The shell (not the service's command) in the state the service runs
    // in; the service itself was not started.
    assert_eq!(
        terminals,
        [
            (vec!["sh".to_owned()], Some("fake-committed:1".to_owned())),
            (
                vec!["ls".to_owned(), "/".to_owned()],
                Some("fake-committed:1".to_owned())
            )
        ]
    );
    let titles = terminal.titles.lock().unwrap().clone();
    assert!(
        titles[0].contains("service") && titles[0].ends_with(": sh"),
        "{titles:?}"
    );

    // A service of the host's ports has no container to open a shell in.
    let host = engine
        .add(ops::HostService {
            host: "localhost".into(),
            ports: Vec::new(),
        })
        .digest;
    let error = engine.service_terminal(host, &[]).await.unwrap_err();
    assert_eq!(error.code(), "UNSUPPORTED");
    assert!(
        error.to_string().contains("needs a container service")
            && error.to_string().contains("Host.service"),
        "{error}"
    );
    assert_eq!(runtime.terminals.lock().unwrap().len(), 2);
}
