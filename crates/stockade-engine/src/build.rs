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
    /// The build committed a new image for a step (an untagged intermediate: neither the image
    /// `FROM` names nor one taken from the build cache). A build that does not finish leaves
    /// these behind; whoever stops it removes them.
    Layer(String),
}

/// Reads the classic builder's (and Podman's) progress lines for the images a build creates.
#[derive(Debug, Default)]
struct LayerWatch {
    /// The current step is a `FROM` (its image is the parent, not a product of this build).
    from_step: bool,
    /// The current step's result came from the build cache.
    cached: bool,
}

impl LayerWatch {
    /// The ID this line announces as newly made, if it does.
    fn line(&mut self, line: &str) -> Option<String> {
        let trimmed = line.trim();
        if let Some(step) = step_instruction(trimmed) {
            self.from_step = step
                .split_whitespace()
                .next()
                .is_some_and(|word| word.eq_ignore_ascii_case("FROM"));
            self.cached = false;
            return None;
        }
        if trimmed.eq_ignore_ascii_case("---> Using cache") || trimmed.starts_with("Using cache ") {
            self.cached = true;
            return None;
        }
        let id = trimmed
            .strip_prefix("---> ")
            .or_else(|| trimmed.strip_prefix("--> "))?
            .trim();
        let is_id = id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit());
        (is_id && !self.from_step && !self.cached).then(|| id.to_owned())
    }
}

/// `RUN x` of `Step 2/3 : RUN x` (Docker) or `STEP 2/3: RUN x` (Podman).
fn step_instruction(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("Step ")
        .or_else(|| line.strip_prefix("STEP "))?;
    let (_, instruction) = rest.split_once(':')?;
    Some(instruction.trim_start())
}

/// Why a failed build is worth one more try: Podman's builder (buildah before 1.43; Podman 4.x
/// ships it) races with an image removal another process makes during the build
/// (containers/buildah#5674, containers/podman#18659). Nothing was built either way.
#[derive(Debug, PartialEq, Eq)]
enum Race<'a> {
    /// The cache lookup met an image whose layers were being removed.
    CacheLookup,
    /// The `FROM` lookup met such an image, took the base for missing and tried to pull it:
    /// worth a retry only if the base is in fact here (asked after the failure).
    FromLookup { image: &'a str },
}

fn builder_race(error: &EngineError) -> Option<Race<'_>> {
    let EngineError::BuildFailed { message, .. } = error else {
        return None;
    };
    if message.contains("checking if cached image exists") && message.contains("layer not known") {
        return Some(Race::CacheLookup);
    }
    let (_, rest) =
        message.split_once("creating build container: initializing source docker://")?;
    let (image, _) = rest.split_once(": ")?;
    (!image.is_empty()).then_some(Race::FromLookup { image })
}

impl Engine {
    /// Build and tag an image; returns its ID.
    pub async fn build(
        &self,
        mut request: BuildRequest,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<String, EngineError> {
        // Shared by both attempts without a copy.
        let context = bytes::Bytes::from(std::mem::take(&mut request.context));
        let error = match self
            .build_once(&request, context.clone(), &mut on_event)
            .await
        {
            Err(error) => error,
            built => return built,
        };
        let again = match builder_race(&error) {
            Some(Race::CacheLookup) => true,
            // The base must be here now; a base that is really missing fails as it did.
            Some(Race::FromLookup { image }) => {
                matches!(self.inspect_image(image).await, Ok(Some(_)))
            }
            None => false,
        };
        if !again {
            return Err(error);
        }
        debug!(
            target: "engine",
            "the builder met an image being removed ({error}); building {} again",
            request.tag
        );
        self.build_once(&request, context, &mut on_event).await
    }

    async fn build_once(
        &self,
        request: &BuildRequest,
        context: bytes::Bytes,
        on_event: &mut impl FnMut(BuildEvent),
    ) -> Result<String, EngineError> {
        let operation = format!("POST /build -t {}", request.tag);
        debug!(target: "engine", "{operation} ({} bytes of context)", context.len());
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile)
            .t(&request.tag)
            .rm(true)
            .forcerm(true)
            .nocache(request.no_cache)
            .buildargs(&request.build_args)
            .build();
        let mut stream = self
            .docker
            .build_image(options, None, Some(bollard::body_full(context)));

        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let mut step: Option<String> = None;
        let mut image_id: Option<String> = None;
        let mut pending = String::new();
        let mut layers = LayerWatch::default();
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
                    if let Some(id) = layers.line(&line) {
                        on_event(BuildEvent::Layer(id));
                    }
                    if step_instruction(&line).is_some() {
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
                    image: request.tag.clone(),
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
                .ok_or_else(|| EngineError::ImageNotFound {
                    image: request.tag.clone(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(message: &str) -> EngineError {
        EngineError::BuildFailed {
            image: "t".to_owned(),
            step: None,
            message: message.to_owned(),
            tail: Vec::new(),
        }
    }

    #[test]
    fn only_the_builder_s_removal_races_are_built_again() {
        assert_eq!(
            builder_race(&failed(
                "checking if cached image exists from a previous build: getting top layer info: \
                 layer not known"
            )),
            Some(Race::CacheLookup)
        );
        assert_eq!(
            builder_race(&failed(
                "creating build container: initializing source docker://ns-stockade:base: \
                 pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": \
                 dial tcp: lookup registry-1.docker.io: no such host"
            )),
            Some(Race::FromLookup {
                image: "ns-stockade:base"
            })
        );
        assert_eq!(
            builder_race(&failed(
                "The command '/bin/sh -c false' returned a non-zero code: 1"
            )),
            None
        );
        assert_eq!(builder_race(&failed("layer not known")), None);
        assert_eq!(
            builder_race(&failed(
                "creating build container: initializing source docker://: x"
            )),
            None
        );
        assert_eq!(
            builder_race(&EngineError::ImageNotFound {
                image: "t".to_owned()
            }),
            None
        );
    }

    #[test]
    fn layers_are_the_images_a_build_made() {
        let stream = "Step 1/4 : FROM stockade:base\n ---> 0123456789ab\n\
                      Step 2/4 : RUN true\n ---> Using cache\n ---> 1123456789ab\n\
                      Step 3/4 : RUN sleep 1\n ---> Running in 2123456789ab\n\
                      Removing intermediate container 2123456789ab\n ---> 3123456789ab\n\
                      Step 4/4 : LABEL a=b\n ---> Running in 4123456789ab\n ---> 5123456789ab\n\
                      STEP 5/5: from x\n--> 6123456789ab\nSTEP 6/6: RUN y\n--> 7123456789ab\n";
        let mut watch = LayerWatch::default();
        let made: Vec<String> = stream.lines().filter_map(|l| watch.line(l)).collect();
        assert_eq!(made, ["3123456789ab", "5123456789ab", "7123456789ab"]);
    }
}
