//! Image inspection, tagging and removal.

use std::collections::HashMap;

use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use tracing::debug;

use crate::connect::Engine;
use crate::error::EngineError;
use crate::podman;

/// What stockade needs to know of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub size: i64,
    pub created: String,
}

/// An image as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: String,
    /// `repo:tag` names; empty for a dangling image.
    pub tags: Vec<String>,
    pub labels: HashMap<String, String>,
    pub size: i64,
    /// Unix seconds.
    pub created: i64,
}

/// One progress message of a pull (`Downloading`, `Extracting`, `Pull complete`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The layer it is about (a short ID), when it is about one.
    pub layer: Option<String>,
    pub status: String,
    /// Bytes done and in all, while a layer downloads or extracts.
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// Credentials for one registry, sent with a pull.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    /// The registry host, as in the client configuration (`docker.io`, `ghcr.io`).
    pub server: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for RegistryCredentials {
    /// Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What became of an image removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// There was no such image.
    Missing,
    /// The engine refused: a container or a child image uses it.
    InUse(String),
}

impl Removal {
    /// What a DELETE answered: 404 is missing, 409 in use.
    pub(crate) fn of<T>(result: Result<T, EngineError>) -> Result<Self, EngineError> {
        match result {
            Ok(_) => Ok(Self::Removed),
            Err(EngineError::Api { status: 404, .. }) => Ok(Self::Missing),
            Err(EngineError::Api {
                status: 409,
                message,
                ..
            }) => Ok(Self::InUse(message)),
            Err(other) => Err(other),
        }
    }
}

impl Engine {
    /// Inspect `image`; `None` when the engine has no such image.
    pub async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>, EngineError> {
        let result = self
            .call(
                &format!("GET /images/{image}/json"),
                self.docker.inspect_image(image),
            )
            .await;
        let found = EngineError::tolerate(result, &[404])?;
        Ok(found.map(|inspect| ImageInfo {
            id: inspect.id.unwrap_or_default(),
            labels: inspect
                .config
                .and_then(|config| config.labels)
                .unwrap_or_default(),
            size: inspect.size.unwrap_or_default(),
            created: inspect.created.unwrap_or_default(),
        }))
    }

    /// Point `repo:tag` at `image`.
    pub async fn tag_image(&self, image: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.call(
            &format!("POST /images/{image}/tag {repo}:{tag}"),
            self.docker.tag_image(image, Some(options)),
        )
        .await
    }

    /// Remove an image (or a tag of it), never forcing: an image a container or another image
    /// uses stays, and the answer says so.
    pub async fn remove_image(&self, image: &str) -> Result<Removal, EngineError> {
        let options = RemoveImageOptionsBuilder::default().noprune(false).build();
        let result = self
            .call(
                &format!("DELETE /images/{image}"),
                self.docker.remove_image(image, Some(options), None),
            )
            .await;
        Removal::of(result)
    }

    /// Top-level images carrying all of the given labels (`key` or `key=value`).
    pub async fn list_images(&self, labels: &[String]) -> Result<Vec<ImageSummary>, EngineError> {
        let operation = format!("GET /images/json label={}", labels.join(","));
        debug!(target: "engine", "{operation}");
        let filters = HashMap::from([("label".to_owned(), labels.to_vec())]);
        let options = ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut attempt = 0;
        let list = loop {
            match self.docker.list_images(Some(options.clone())).await {
                // Podman 4.3 fails the whole listing when an image goes away while it lists
                // ("image not known"); asked again, it lists what is there.
                Err(e) if self.is_podman() && podman::is_vanished_image(&e) => {
                    attempt += 1;
                    if attempt > podman::RETRIES {
                        break Err(e);
                    }
                    tokio::time::sleep(podman::RETRY_DELAY).await;
                }
                other => break other,
            }
        }
        .map_err(|e| self.err(&operation, e))?;
        let podman = self.is_podman();
        Ok(list
            .into_iter()
            .filter(|image| podman::has_labels(&image.labels, labels))
            .map(|image| ImageSummary {
                id: image.id,
                tags: image
                    .repo_tags
                    .into_iter()
                    .filter(|tag| tag != "<none>:<none>")
                    .map(|tag| {
                        if podman {
                            podman::docker_style_tag(tag)
                        } else {
                            tag
                        }
                    })
                    .collect(),
                labels: image.labels,
                size: image.size,
                created: image.created,
            })
            .collect())
    }

    /// Pull `image` from its registry; `on_status` gets the engine's progress lines.
    pub async fn pull_image(
        &self,
        image: &str,
        mut on_status: impl FnMut(&str),
    ) -> Result<(), EngineError> {
        self.pull_with_progress(image, None, |progress| on_status(&progress.status))
            .await
    }

    /// Pull `image` (`repo:tag` or `repo@sha256:…`) with `credentials` for its registry (the
    /// engine reads no client configuration: an API client sends them); `on_progress` gets each
    /// progress message, per layer where the engine says which.
    pub async fn pull_with_progress(
        &self,
        image: &str,
        credentials: Option<RegistryCredentials>,
        mut on_progress: impl FnMut(PullProgress),
    ) -> Result<(), EngineError> {
        let operation = format!("POST /images/create fromImage={image}");
        debug!(target: "engine", "{operation}");
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let credentials = credentials.map(|c| bollard::auth::DockerCredentials {
            username: c.username,
            password: c.password,
            identitytoken: c.identity_token,
            serveraddress: Some(c.server),
            ..Default::default()
        });
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status {
                        let detail = info.progress_detail.unwrap_or_default();
                        on_progress(PullProgress {
                            layer: info.id.filter(|id| !id.is_empty()),
                            status,
                            current: detail.current.and_then(|c| u64::try_from(c).ok()),
                            total: detail.total.and_then(|t| u64::try_from(t).ok()),
                        });
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(EngineError::Api {
                        operation,
                        status: 0,
                        message: error.trim().to_owned(),
                    });
                }
                Err(e) => return Err(self.err(&operation, e)),
            }
        }
        Ok(())
    }
}
