//! Named volumes (agent tools, per-project homes) and file uploads into created containers.

use std::collections::{BTreeSet, HashMap};

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::StreamExt;
use tracing::debug;

use stockade_core::labels;

use crate::connect::Engine;
use crate::error::EngineError;
use crate::image::Removal;

/// A volume as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub name: String,
    pub labels: HashMap<String, String>,
    /// RFC 3339: when stockade created it ([`labels::CREATED`]), else what the engine reports.
    pub created: String,
}

impl VolumeInfo {
    fn new(name: String, labels: HashMap<String, String>, engine_created: Option<String>) -> Self {
        let created = labels
            .get(labels::CREATED)
            .cloned()
            .or(engine_created)
            .unwrap_or_default();
        Self {
            name,
            labels,
            created,
        }
    }
}

impl Engine {
    /// `None` when the volume does not exist.
    pub async fn inspect_volume(&self, name: &str) -> Result<Option<VolumeInfo>, EngineError> {
        let operation = format!("GET /volumes/{name}");
        let result = self
            .call(&operation, self.docker.inspect_volume(name))
            .await;
        let found = EngineError::tolerate(result, &[404])?;
        Ok(found.map(|v| VolumeInfo::new(v.name, v.labels, v.created_at.map(|d| d.to_string()))))
    }

    /// Create a volume with `labels`, and [`labels::CREATED`] set to now.
    pub async fn create_volume(
        &self,
        name: &str,
        mut labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        labels.insert(
            labels::CREATED.to_owned(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        );
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        let operation = format!("POST /volumes/create name={name}");
        self.call(&operation, self.docker.create_volume(request))
            .await?;
        Ok(())
    }

    /// Remove a volume, never forced: one a container uses is [`Removal::InUse`].
    pub async fn remove_volume(&self, name: &str) -> Result<Removal, EngineError> {
        let options = RemoveVolumeOptionsBuilder::default().force(false).build();
        let result = self
            .call(
                &format!("DELETE /volumes/{name}"),
                self.docker.remove_volume(name, Some(options)),
            )
            .await;
        Removal::of(result)
    }

    /// Volumes carrying all of the given labels (`key=value` or `key`).
    pub async fn list_volumes(&self, labels: &[String]) -> Result<Vec<VolumeInfo>, EngineError> {
        let filters = HashMap::from([("label".to_owned(), labels.to_vec())]);
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .call(
                &format!("GET /volumes label={}", labels.join(",")),
                self.docker.list_volumes(Some(options)),
            )
            .await?;
        let mut volumes: Vec<VolumeInfo> = list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| crate::podman::has_labels(&v.labels, labels))
            .map(|v| VolumeInfo::new(v.name, v.labels, v.created_at.map(|d| d.to_string())))
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// Names of the volumes mounted by any container (running or not): those are in use.
    pub async fn volumes_in_use(&self) -> Result<BTreeSet<String>, EngineError> {
        Ok(self
            .list_containers(&[])
            .await?
            .into_iter()
            .flat_map(|c| c.volumes)
            .collect())
    }

    /// A path of a container's file system as a tar archive (`GET /containers/{id}/archive`),
    /// at most about `limit` bytes; `None` when it is missing or larger.
    pub async fn download_archive(
        &self,
        id: &str,
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let operation = format!(
            "GET /containers/{}/archive path={path}",
            id.get(..12).unwrap_or(id)
        );
        debug!(target: "engine", "{operation}");
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(id, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    tar.extend_from_slice(&bytes);
                    // The tar's files, headers and padding.
                    if tar.len() as u64 > limit + 64 * 1024 {
                        return Ok(None);
                    }
                }
                Err(e) => {
                    // 404: no such file in the image.
                    EngineError::tolerate::<()>(Err(self.err(&operation, e)), &[404])?;
                    return Ok(None);
                }
            }
        }
        Ok(Some(tar))
    }

    /// One file of a container (`None`: missing, not a regular file, or over `limit`).
    pub async fn download_file(
        &self,
        id: &str,
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self
            .download_archive(id, path, limit)
            .await?
            .and_then(|tar| stockade_core::handover::first_file(&tar, limit)))
    }

    /// Upload a tar archive into a created (not yet started) container, extracted at `path`.
    /// Works on remote engines too. The archive's content is never logged.
    pub async fn upload(&self, id: &str, path: &str, tar: Vec<u8>) -> Result<(), EngineError> {
        let operation = format!(
            "PUT /containers/{}/archive path={path} ({} bytes)",
            id.get(..12).unwrap_or(id),
            tar.len()
        );
        let options = UploadToContainerOptionsBuilder::default()
            .path(path)
            .build();
        let body = bollard::body_full(Bytes::from(tar));
        self.call(
            &operation,
            self.docker.upload_to_container(id, Some(options), body),
        )
        .await
    }
}
