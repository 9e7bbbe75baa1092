//! Image builds from an in-memory context, streamed as typed events.

use std::collections::{HashMap, VecDeque};

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use tracing::debug;

use crate::connect::Engine;
use crate::error::EngineError;

/// Lines of build output kept for the error report.
const TAIL_LINES: usize = 25;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The tag the image gets on success (the engine tags only a finished build, so a failed or
    /// interrupted build leaves the previous image under this tag untouched).
    pub tag: String,
    /// The Dockerfile's path in the context.
    pub dockerfile: String,
    /// An uncompressed tar of the build context, holding the Dockerfile.
    pub context: Vec<u8>,
    pub build_args: HashMap<String, String>,
    pub no_cache: bool,
}

/// Progress of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A Dockerfile step started (`Step 3/9 : RUN …`).
    Step(String),
    /// A line of output.
    Output(String),
}

impl Engine {
    /// Build and tag an image; returns its ID.
    pub async fn build(
        &self,
        request: BuildRequest,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<String, EngineError> {
        let operation = format!("POST /build -t {}", request.tag);
        debug!(target: "engine", "{operation} ({} bytes of context)", request.context.len());
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile)
            .t(&request.tag)
            .rm(true)
            .forcerm(true)
            .nocache(request.no_cache)
            .buildargs(&request.build_args)
            .build();
        let mut stream = self.docker.build_image(
            options,
            None,
            Some(bollard::body_full(request.context.into())),
        );

        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let mut step: Option<String> = None;
        let mut image_id: Option<String> = None;
        let mut pending = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| {
                let failed = |message: String| EngineError::BuildFailed {
                    image: request.tag.clone(),
                    step: step.clone(),
                    message,
                    tail: tail.iter().cloned().collect(),
                };
                match e {
                    bollard::errors::Error::DockerStreamError { error } => failed(error),
                    other => match self.err(&operation, other) {
                        EngineError::Api { message, .. } => failed(message),
                        other => other,
                    },
                }
            })?;
            if let Some(text) = info.stream {
                pending.push_str(&text);
                while let Some(newline) = pending.find('\n') {
                    let line: String = pending.drain(..=newline).collect();
                    let line = crate::podman::docker_style_step(line.trim_end());
                    if line.starts_with("Step ") {
                        step = Some(line.clone());
                        on_event(BuildEvent::Step(line.clone()));
                    } else {
                        on_event(BuildEvent::Output(line.clone()));
                    }
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
            if let Some(aux_id) = info.aux.and_then(|aux| aux.id) {
                image_id = Some(aux_id);
            }
            let error = info.error_detail.and_then(|detail| detail.message);
            if let Some(message) = error {
                if !pending.trim().is_empty() {
                    tail.push_back(pending.trim_end().to_owned());
                }
                return Err(EngineError::BuildFailed {
                    image: request.tag,
                    step,
                    message: message.trim().to_owned(),
                    tail: tail.into_iter().collect(),
                });
            }
        }
        match image_id {
            Some(id) => Ok(id),
            None => self
                .inspect_image(&request.tag)
                .await?
                .map(|info| info.id)
                .ok_or(EngineError::ImageNotFound { image: request.tag }),
        }
    }
}
