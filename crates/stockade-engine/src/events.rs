//! How a container that is already gone ended, from the engine's event log.
//!
//! Sandboxes are created with the engine's auto-remove as a backstop (a sandbox whose stockade
//! or engine went away mid-run is removed by the engine, at the latest when it restarts), so a
//! short command may be gone before its exit code or OOM state is asked for. The engine keeps
//! recent events: the container's `die` event carries its exit code, and an `oom` event says the
//! kernel's OOM killer hit it.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use tracing::debug;

use crate::connect::Engine;
use crate::error::EngineError;

/// How a container ended, as its events tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExitRecord {
    /// From the `die` event, when it is still in the log.
    pub code: Option<i64>,
    pub oom_killed: bool,
}

impl Engine {
    /// The events of container `id` up to now (the stream ends at `until`).
    pub(crate) async fn exit_record(&self, id: &str) -> Result<ExitRecord, EngineError> {
        let operation = format!("GET /events container={}", id.get(..12).unwrap_or(id));
        debug!(target: "engine", "{operation}");
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() + 1)
            .unwrap_or_default()
            .to_string();
        let filters = HashMap::from([
            ("type", vec!["container"]),
            ("container", vec![id]),
            ("event", vec!["die", "oom"]),
        ]);
        let options = EventsOptionsBuilder::default()
            .since("0")
            .until(&until)
            .filters(&filters)
            .build();
        let mut stream = self.docker.events(Some(options));
        let mut record = ExitRecord::default();
        while let Some(event) = stream.next().await {
            let event = event.map_err(|e| self.err(&operation, e))?;
            let attributes = event
                .actor
                .and_then(|actor| actor.attributes)
                .unwrap_or_default();
            match event.action.as_deref() {
                Some("oom") => record.oom_killed = true,
                Some("die" | "died") => {
                    // Docker says `exitCode`; Podman's compatible API `containerExitCode`.
                    record.code = ["exitCode", "containerExitCode"]
                        .iter()
                        .find_map(|key| attributes.get(*key)?.parse().ok());
                }
                _ => {}
            }
        }
        Ok(record)
    }
}
