//! Commands inside a running container, with their standard input streamed in (or held
//! open) and their output collected: what `restore` needs to load a dump and ask for its
//! evidence, and what an `exec` step needs to be stopped when boyong stops waiting for it.

use bollard::models::ExecConfig;
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use super::{Docker, DockerError};

/// What a command in a container did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit code (-1 if the engine did not say).
    pub code: i64,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error (the last 64 KiB).
    pub stderr: Vec<u8>,
}

/// An exec of `cmd` with `env` added (the API's body, never a command line), its output
/// attached, its stdin when asked.
fn exec_config(cmd: &[String], env: &[String], attach_stdin: bool) -> ExecConfig {
    ExecConfig {
        cmd: Some(cmd.to_vec()),
        env: (!env.is_empty()).then(|| env.to_vec()),
        attach_stdin: Some(attach_stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        ..ExecConfig::default()
    }
}

/// What a command's standard input is.
enum Input {
    /// These chunks (none: empty), then its end.
    Feed(Option<tokio::sync::mpsc::Receiver<Bytes>>),
    /// Nothing is written, but it stays open until the command's output ends. When the
    /// caller goes away first (its future dropped: a time limit, Ctrl-C, a crash), the API
    /// connection closes and the engine ends the command's stdin: a command that watches it
    /// learns that nobody waits for it any more.
    Held,
}

impl Docker {
    /// Runs `cmd` in `container` with `env` added to its environment (the API's body, never
    /// a command line), feeding it the chunks of `stdin` (none: an empty stdin) and
    /// collecting its output (stdout up to `max_stdout` bytes).
    ///
    /// # Errors
    /// An API error, or the engine stopped reading the input.
    pub async fn exec_io(
        &self,
        container: &str,
        cmd: &[String],
        env: &[String],
        stdin: Option<tokio::sync::mpsc::Receiver<Bytes>>,
        max_stdout: usize,
    ) -> Result<ExecOutput, DockerError> {
        self.exec_with(container, cmd, env, Input::Feed(stdin), max_stdout)
            .await
    }

    /// Runs `cmd` as [`Docker::exec_io`] does, its stdin held open (nothing written) until
    /// its output ends, or until this future is dropped: then the connection closes and
    /// the command's stdin ends, which a wrapper watching it takes as the signal to stop
    /// the command (`steps/exec.rs`). The engine itself never stops an exec.
    ///
    /// # Errors
    /// An API error.
    pub async fn exec_held(
        &self,
        container: &str,
        cmd: &[String],
        env: &[String],
        max_stdout: usize,
    ) -> Result<ExecOutput, DockerError> {
        self.exec_with(container, cmd, env, Input::Held, max_stdout)
            .await
    }

    /// Runs `cmd` in `container` with `env` added to its environment and an empty stdin,
    /// handing each piece of its standard output to `out` as it comes (nothing is
    /// collected: any size); its exit code and the last 64 KiB of its stderr.
    ///
    /// # Errors
    /// An API error, or `out` failed (the command's output is then not read further).
    pub async fn exec_streamed(
        &self,
        container: &str,
        cmd: &[String],
        env: &[String],
        out: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<ExecOutput, DockerError> {
        let api = |e: bollard::errors::Error| DockerError::Api(e.to_string());
        let exec = self
            .docker
            .create_exec(container, exec_config(cmd, env, false))
            .await
            .map_err(api)?;
        // A long dump: no request time limit for the transfer itself.
        let docker = self
            .docker
            .clone()
            .with_timeout(std::time::Duration::from_secs(7 * 24 * 3600));
        let started = docker.start_exec(&exec.id, None).await.map_err(api)?;
        let bollard::exec::StartExecResults::Attached { mut output, .. } = started else {
            return Err(DockerError::Api("the exec did not attach".into()));
        };
        let mut err = Vec::new();
        while let Some(item) = output.next().await {
            match item.map_err(api)? {
                bollard::container::LogOutput::StdOut { message } => {
                    out(&message).map_err(|e| {
                        DockerError::Api(format!(
                            "writing the output of the command in `{container}`: {e}"
                        ))
                    })?;
                }
                bollard::container::LogOutput::StdErr { message } => {
                    err.extend_from_slice(&message);
                    if err.len() > 64 * 1024 {
                        err.drain(..err.len() - 64 * 1024);
                    }
                }
                _ => {}
            }
        }
        let r = self.docker.inspect_exec(&exec.id).await.map_err(api)?;
        Ok(ExecOutput {
            code: r.exit_code.unwrap_or(-1),
            stdout: Vec::new(),
            stderr: err,
        })
    }

    async fn exec_with(
        &self,
        container: &str,
        cmd: &[String],
        env: &[String],
        stdin: Input,
        max_stdout: usize,
    ) -> Result<ExecOutput, DockerError> {
        let api = |e: bollard::errors::Error| DockerError::Api(e.to_string());
        let attach_stdin = !matches!(stdin, Input::Feed(None));
        let exec = self
            .docker
            .create_exec(container, exec_config(cmd, env, attach_stdin))
            .await
            .map_err(api)?;
        let started = self.docker.start_exec(&exec.id, None).await.map_err(api)?;
        let bollard::exec::StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(DockerError::Api("the exec did not attach".into()));
        };
        let reading = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some(item) = output.next().await {
                match item.map_err(api)? {
                    bollard::container::LogOutput::StdOut { message } if out.len() < max_stdout => {
                        out.extend_from_slice(&message);
                    }
                    bollard::container::LogOutput::StdErr { message } => {
                        err.extend_from_slice(&message);
                        if err.len() > 64 * 1024 {
                            err.drain(..err.len() - 64 * 1024);
                        }
                    }
                    _ => {}
                }
            }
            Ok::<_, DockerError>((out, err))
        };
        let (fed, read) = match stdin {
            Input::Feed(stdin) => {
                let feeding = async move {
                    if let Some(mut rx) = stdin {
                        while let Some(chunk) = rx.recv().await {
                            input.write_all(&chunk).await?;
                        }
                        input.flush().await?;
                    }
                    // EOF for the command's stdin.
                    input.shutdown().await
                };
                tokio::join!(feeding, reading)
            }
            Input::Held => {
                let read = reading.await;
                // The command is done; its stdin may close now (an error is no matter).
                let _ = input.shutdown().await;
                (Ok(()), read)
            }
        };
        let (stdout, stderr) = read?;
        let r = self.docker.inspect_exec(&exec.id).await.map_err(api)?;
        let code = r.exit_code.unwrap_or(-1);
        if let Err(e) = fed
            && code == 0
        {
            return Err(DockerError::Api(format!(
                "the command in `{container}` stopped reading its input: {e}"
            )));
        }
        Ok(ExecOutput {
            code,
            stdout,
            stderr,
        })
    }
}
