//! A running sandbox, joined later: inspect, attach, logs, exec, stop. (Creating and running
//! one in the foreground is `container.rs`.)

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    LogsOptionsBuilder, ResizeExecOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use tracing::debug;

use crate::connect::Engine;
use crate::container::{Attached, OutputChunk, short};
use crate::error::EngineError;

/// A sandbox's state as `GET /containers/{id}/json` reports it: what `ps`, `serve status` and
/// `attach` need beyond its listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerState {
    /// `running`, `restarting`, `exited`…
    pub status: String,
    pub running: bool,
    /// When its command last started (RFC 3339).
    pub started_at: Option<String>,
    /// `starting`, `healthy` or `unhealthy`; `None` without a health check (or where the engine
    /// runs none: Podman without systemd).
    pub health: Option<String>,
    /// How often the engine restarted it (its restart policy).
    pub restart_count: i64,
    /// Published ports, sorted: (container port/protocol, host ip, host port).
    pub ports: Vec<(String, String, String)>,
    pub exit_code: Option<i64>,
}

/// Which part of a sandbox's output `logs` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsRequest {
    pub follow: bool,
    /// The last N lines (`None`: all).
    pub tail: Option<u64>,
    /// Only output since this Unix time.
    pub since: Option<i64>,
}

/// A command to run in a running sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub command: Vec<String>,
    /// `uid:gid`.
    pub user: String,
    pub workdir: Option<String>,
    pub tty: bool,
}

/// An output stream of the engine as [`OutputChunk`]s.
pub(crate) fn chunks(
    engine: &Engine,
    what: &'static str,
    stream: impl Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send + 'static,
) -> Pin<Box<dyn Stream<Item = Result<OutputChunk, EngineError>> + Send>> {
    let engine = engine.clone();
    Box::pin(stream.filter_map(move |item| {
        let mapped = match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                Some(Ok(OutputChunk::Stdout(message)))
            }
            Ok(LogOutput::StdErr { message }) => Some(Ok(OutputChunk::Stderr(message))),
            Ok(LogOutput::StdIn { .. }) => None,
            Err(e) => Some(Err(engine.err(what, e))),
        };
        std::future::ready(mapped)
    }))
}

impl Engine {
    /// The container's state; `None` when it does not exist.
    pub async fn container_state(&self, id: &str) -> Result<Option<ContainerState>, EngineError> {
        let info = match self.inspect_container(id).await {
            Ok(info) => info,
            Err(EngineError::Api { status: 404, .. }) => return Ok(None),
            // Podman 4.3 answers 500 for a container removed while it is asked about.
            Err(EngineError::Api { message, .. })
                if self.is_podman() && message.contains("no such container") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let state = info.state.unwrap_or_default();
        let mut ports: Vec<(String, String, String)> = info
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(port, bindings)| {
                bindings.unwrap_or_default().into_iter().map(move |b| {
                    (
                        port.clone(),
                        b.host_ip.unwrap_or_default(),
                        b.host_port.unwrap_or_default(),
                    )
                })
            })
            .collect();
        ports.sort();
        Ok(Some(ContainerState {
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running == Some(true),
            started_at: state.started_at,
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            restart_count: info.restart_count.unwrap_or(0),
            ports,
            exit_code: state.exit_code,
        }))
    }

    /// A sandbox's output as the engine kept it (json-file), then live with `follow`.
    pub fn logs(
        &self,
        id: &str,
        request: &LogsRequest,
    ) -> Pin<Box<dyn Stream<Item = Result<OutputChunk, EngineError>> + Send>> {
        let tail = request
            .tail
            .map_or_else(|| "all".to_owned(), |n| n.to_string());
        debug!(target: "engine", "GET /containers/{}/logs tail={tail} follow={}", short(id), request.follow);
        let mut options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(request.follow)
            .tail(&tail);
        if let Some(since) = request.since {
            options = options.since(i32::try_from(since).unwrap_or(i32::MAX));
        }
        chunks(
            self,
            "log stream",
            self.docker.logs(id, Some(options.build())),
        )
    }

    /// Start `spec` in a running sandbox, attached; returns the exec's ID and its streams.
    pub async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<(String, Attached), EngineError> {
        let created = self
            .call(
                &format!("POST /containers/{}/exec user={}", short(id), spec.user),
                self.docker.create_exec(
                    id,
                    CreateExecOptions::<String> {
                        attach_stdin: Some(true),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        tty: Some(spec.tty),
                        cmd: Some(spec.command.clone()),
                        user: Some(spec.user.clone()),
                        working_dir: spec.workdir.clone(),
                        ..Default::default()
                    },
                ),
            )
            .await?;
        let started = self
            .call(
                &format!("POST /exec/{}/start", short(&created.id)),
                self.docker.start_exec(
                    &created.id,
                    Some(StartExecOptions {
                        detach: false,
                        tty: spec.tty,
                        output_capacity: None,
                    }),
                ),
            )
            .await?;
        match started {
            StartExecResults::Attached { output, input } => Ok((
                created.id,
                Attached {
                    output: chunks(self, "exec stream", output),
                    input,
                },
            )),
            StartExecResults::Detached => Err(EngineError::Api {
                operation: format!("POST /exec/{}/start", short(&created.id)),
                status: 0,
                message: "the engine started the command detached".to_owned(),
            }),
        }
    }

    /// Run `spec` in a running container to its end: its exit code and its output (stdout, then
    /// stderr, as text).
    pub async fn exec_to_end(
        &self,
        id: &str,
        spec: &ExecSpec,
    ) -> Result<(i64, String), EngineError> {
        let (exec_id, Attached { mut output, input }) = self.exec(id, spec).await?;
        drop(input);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(chunk) = output.next().await {
            match chunk? {
                OutputChunk::Stdout(bytes) => out.extend_from_slice(&bytes),
                OutputChunk::Stderr(bytes) => err.extend_from_slice(&bytes),
            }
        }
        out.extend_from_slice(&err);
        // The output ends a moment before the engine records the exit.
        for _ in 0..100 {
            if let Some(code) = self.exec_exit_code(&exec_id).await? {
                return Ok((code, String::from_utf8_lossy(&out).into_owned()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok((-1, String::from_utf8_lossy(&out).into_owned()))
    }

    /// The exit code of a finished exec (`None` while it runs).
    pub async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, EngineError> {
        let info = self
            .call(
                &format!("GET /exec/{}/json", short(exec_id)),
                self.docker.inspect_exec(exec_id),
            )
            .await?;
        Ok(if info.running == Some(true) {
            None
        } else {
            info.exit_code
        })
    }

    pub async fn resize_exec(
        &self,
        exec_id: &str,
        cols: u16,
        rows: u16,
    ) -> Result<(), EngineError> {
        let options = ResizeExecOptionsBuilder::default()
            .h(i32::from(rows))
            .w(i32::from(cols))
            .build();
        self.call(
            &format!("POST /exec/{}/resize h={rows} w={cols}", short(exec_id)),
            self.docker.resize_exec(exec_id, options),
        )
        .await
    }

    /// Stop a sandbox: SIGTERM, SIGKILL after `timeout` seconds (`None`: the container's own
    /// stop timeout). Already stopped or gone is fine.
    pub async fn stop(&self, id: &str, timeout: Option<u64>) -> Result<(), EngineError> {
        let mut options = StopContainerOptionsBuilder::default();
        if let Some(seconds) = timeout {
            options = options.t(i32::try_from(seconds).unwrap_or(i32::MAX));
        }
        let result = self
            .call(
                &format!("POST /containers/{}/stop", short(id)),
                self.docker.stop_container(id, Some(options.build())),
            )
            .await;
        // 304: not running; 404: gone.
        EngineError::tolerate(result, &[304, 404]).map(|_| ())
    }
}
