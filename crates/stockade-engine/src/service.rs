//! What a long-lived sandbox (a service) needs besides create and start: its state and health
//! as the engine reports them, and its log.

use bollard::container::LogOutput;
use bollard::query_parameters::{InspectContainerOptions, LogsOptionsBuilder};
use futures_util::{Stream, StreamExt};
use tracing::debug;

use crate::connect::Engine;
use crate::container::OutputChunk;
use crate::error::EngineError;

/// A container's state, as `GET /containers/{id}/json` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerState {
    /// `running`, `restarting`, `exited`…
    pub status: String,
    /// `starting`, `healthy`, `unhealthy`; `None` without a health check (or where the engine
    /// runs none: Podman without systemd).
    pub health: Option<String>,
    /// How often the engine restarted it (its restart policy).
    pub restart_count: i64,
    /// When its command last started (RFC 3339).
    pub started_at: Option<String>,
    /// The host addresses a container port is published on: (container port/protocol, host ip,
    /// host port).
    pub ports: Vec<(String, String, String)>,
}

impl Engine {
    /// The container's state; `None` when it does not exist.
    pub async fn container_state(&self, id: &str) -> Result<Option<ContainerState>, EngineError> {
        let operation = format!("GET /containers/{}/json", id.get(..12).unwrap_or(id));
        let info = self
            .call(
                &operation,
                self.docker
                    .inspect_container(id, None::<InspectContainerOptions>),
            )
            .await;
        let info = match info {
            Ok(info) => info,
            Err(EngineError::Api { status: 404, .. }) => return Ok(None),
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
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            restart_count: info.restart_count.unwrap_or(0),
            started_at: state.started_at,
            ports,
        }))
    }

    /// The container's log (stdout and stderr): the last `tail` lines (`None`: all), then with
    /// `follow` what it prints until it stops.
    pub fn container_logs(
        &self,
        id: &str,
        tail: Option<usize>,
        follow: bool,
    ) -> impl Stream<Item = Result<OutputChunk, EngineError>> + Send + use<> {
        let operation = format!(
            "GET /containers/{}/logs follow={follow}",
            id.get(..12).unwrap_or(id)
        );
        debug!(target: "engine", "{operation}");
        let tail = tail.map_or_else(|| "all".to_owned(), |n| n.to_string());
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(&tail)
            .build();
        let engine = self.clone();
        self.docker.logs(id, Some(options)).filter_map(move |item| {
            let mapped = match item {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(OutputChunk::Stdout(message)))
                }
                Ok(LogOutput::StdErr { message }) => Some(Ok(OutputChunk::Stderr(message))),
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(engine.err(&operation, e))),
            };
            std::future::ready(mapped)
        })
    }
}

impl Engine {
    /// Stop the container as `docker stop` does (SIGTERM, SIGKILL after `timeout` seconds): the
    /// engine then counts it as stopped by hand, so `unless-stopped` does not start it again.
    /// Missing or already stopped is fine.
    pub async fn stop_container(&self, id: &str, timeout: u64) -> Result<(), EngineError> {
        let options = bollard::query_parameters::StopContainerOptionsBuilder::default()
            .t(i32::try_from(timeout).unwrap_or(i32::MAX))
            .build();
        let result = self
            .call(
                &format!(
                    "POST /containers/{}/stop t={timeout}",
                    id.get(..12).unwrap_or(id)
                ),
                self.docker.stop_container(id, Some(options)),
            )
            .await;
        EngineError::tolerate(result, &[304, 404]).map(|_| ())
    }
}
