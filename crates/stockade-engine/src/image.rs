//! Image inspection, tagging and removal.

use std::collections::HashMap;

use bollard::query_parameters::{RemoveImageOptionsBuilder, TagImageOptionsBuilder};
use tracing::debug;

use crate::connect::Engine;
use crate::error::EngineError;

/// What stockade needs to know of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub size: i64,
    pub created: String,
}

impl Engine {
    /// Inspect `image`; `None` when the engine has no such image.
    pub async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>, EngineError> {
        let operation = format!("GET /images/{image}/json");
        debug!(target: "engine", "{operation}");
        let result = self.docker.inspect_image(image).await;
        let found = EngineError::tolerate(result.map_err(|e| self.err(&operation, e)), &[404])?;
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
        let operation = format!("POST /images/{image}/tag {repo}:{tag}");
        debug!(target: "engine", "{operation}");
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(|e| self.err(&operation, e))
    }

    /// Remove an image (or a tag of it). Missing images are not an error.
    pub async fn remove_image(&self, image: &str) -> Result<(), EngineError> {
        let operation = format!("DELETE /images/{image}");
        debug!(target: "engine", "{operation}");
        let options = RemoveImageOptionsBuilder::default().noprune(false).build();
        let result = self.docker.remove_image(image, Some(options), None).await;
        EngineError::tolerate(result.map_err(|e| self.err(&operation, e)), &[404])?;
        Ok(())
    }
}
