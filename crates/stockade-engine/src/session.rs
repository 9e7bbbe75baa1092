//! A running sandbox, joined later: inspect, attach, logs, exec, stop. (Creating and running
//! one in the foreground is `container.rs`.)

use std::collections::BTreeMap;
use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    LogsOptionsBuilder, ResizeExecOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use tracing::debug;

use crate::connect::Engine;
use crate::container::{Attached, OutputChunk};
use crate::error::EngineError;

/// What `ps` and `attach` need to know of a sandbox beyond its listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionInfo {
    pub running: bool,
    /// RFC 3339, as the engine reports it.
    pub started_at: Option<String>,
    /// `starting`, `healthy` or `unhealthy`; `None` without a health check.
    pub health: Option<String>,
    /// Published ports: `container port/proto` → `host ip:port` bindings.
    pub ports: BTreeMap<String, Vec<String>>,
    pub exit_code: Option<i64>,
    pub tty: bool,
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
    pub async fn inspect_session(&self, id: &str) -> Result<SessionInfo, EngineError> {
        let info = self
            .call(
                &format!("GET /containers/{}/json", short(id)),
                self.docker.inspect_container(
                    id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                ),
            )
            .await?;
        let state = info.state.unwrap_or_default();
        let ports = info
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(port, bindings)| {
                let bindings: Vec<String> = bindings?
                    .into_iter()
                    .map(|b| {
                        format!(
                            "{}:{}",
                            b.host_ip.unwrap_or_default(),
                            b.host_port.unwrap_or_default()
                        )
                    })
                    .collect();
                (!bindings.is_empty()).then_some((port, bindings))
            })
            .collect();
        Ok(SessionInfo {
            running: state.running == Some(true),
            started_at: state.started_at,
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            ports,
            exit_code: state.exit_code,
            tty: info.config.and_then(|c| c.tty).unwrap_or(false),
        })
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

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
