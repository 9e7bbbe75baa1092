//! What the engine says about itself, for `stockade check`.

use serde::Serialize;

use crate::connect::Engine;
use crate::error::EngineError;

#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    pub endpoint: String,
    pub endpoint_source: String,
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
    pub rootless: bool,
    pub podman: bool,
}

impl Engine {
    pub async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self.call("GET /info", self.docker.info()).await?;
        let security = info.security_options.unwrap_or_default();
        let rootless = security.iter().any(|o| o.contains("name=rootless"));
        let name = info.name.unwrap_or_default();
        Ok(EngineInfo {
            endpoint: self.address(),
            endpoint_source: self.endpoint.source.to_string(),
            name,
            version: self.version.clone(),
            api_version: self.api_version.clone(),
            os: info.os_type.unwrap_or_default(),
            arch: info.architecture.unwrap_or_default(),
            rootless,
            podman: self.is_podman(),
        })
    }
}
