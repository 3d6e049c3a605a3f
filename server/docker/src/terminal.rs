//! `Runtime::terminal`: a command with a TTY in a fresh container, attached
//! to the user's terminal through `TerminalIo`; nothing is committed.

use bollard::container::{AttachContainerResults, LogOutput};
use bollard::query_parameters::{AttachContainerOptionsBuilder, ResizeContainerTTYOptionsBuilder};
use futures::StreamExt as _;
use gantry_core::runtime::{ExecSpec, RuntimeError, TerminalInput, TerminalIo, TerminalSize};
use tokio::io::AsyncWriteExt as _;

use crate::exec::{other, wait_exit, Prepared};
use crate::DockerRuntime;

impl DockerRuntime {
    /// `Runtime::terminal`.
    pub(crate) async fn run_terminal(
        &self,
        spec: ExecSpec,
        io: TerminalIo,
    ) -> Result<i64, RuntimeError> {
        let TerminalIo {
            mut input,
            output,
            size,
        } = io;
        let Prepared {
            mut body,
            secret_env,
            base: _,
        } = self.prepare(&spec, true).await?;
        // One stream, as a terminal has: stdin stays open for the session.
        body.tty = Some(true);
        body.stdin_once = Some(false);
        self.join_for(&mut body, &spec).await?;
        let container = self.create_container(body).await?;
        let name = container.name().to_owned();
        self.apply_layers(&name, &spec.rootfs.layers).await?;
        let options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .build();
        let AttachContainerResults {
            output: mut from_container,
            input: mut to_container,
        } = self
            .docker
            .attach_container(&name, Some(options))
            .await
            .map_err(|error| other("attaching to a container", &error))?;
        let started = self
            .start_forgetting_secrets(&name, &spec.remove_after_start, secret_env.as_ref())
            .await;
        started.map_err(|error| other("starting a terminal container", &error))?;
        self.resize(&name, size).await;
        // Output until the process closes it; keystrokes and resizes until
        // then (the user's side ending first leaves the shell to exit on
        // its own closed stdin).
        let mut input_open = true;
        loop {
            tokio::select! {
                chunk = from_container.next() => match chunk {
                    Some(Ok(LogOutput::Console { message }
                        | LogOutput::StdOut { message }
                        | LogOutput::StdErr { message })) => {
                        if output.send(message).await.is_err() {
                            tracing::debug!("terminal detached before its process ended");
                        }
                    }
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                    Some(Err(error)) => {
                        tracing::debug!(%error, "terminal output ended");
                        break;
                    }
                    None => break,
                },
                received = input.recv(), if input_open => match received {
                    Some(TerminalInput::Data(bytes)) => {
                        if to_container.write_all(&bytes).await.is_err() {
                            input_open = false;
                        }
                        let _ = to_container.flush().await;
                    }
                    Some(TerminalInput::Resize(size)) => self.resize(&name, size).await,
                    None => {
                        input_open = false;
                        let _ = to_container.shutdown().await;
                    }
                },
            }
        }
        let exit_code = wait_exit(&self.docker, &name).await?;
        drop(output);
        if let Err(error) = container.remove().await {
            tracing::warn!(container = %name, %error, "cannot remove container");
        }
        drop(secret_env);
        Ok(exit_code)
    }

    async fn resize(&self, name: &str, size: TerminalSize) {
        let options = ResizeContainerTTYOptionsBuilder::new()
            .h(i32::from(size.rows))
            .w(i32::from(size.cols))
            .build();
        if let Err(error) = self.docker.resize_container_tty(name, options).await {
            tracing::debug!(%error, "cannot resize a terminal");
        }
    }
}
