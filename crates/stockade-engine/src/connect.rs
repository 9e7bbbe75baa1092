//! Connecting to the engine and checking that it speaks a recent enough API.

use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};
use tracing::debug;

use crate::MIN_API_VERSION;
use crate::endpoint::{Endpoint, ResolvedEndpoint};
use crate::error::EngineError;
use crate::podman::EngineKind;

/// How long to wait for the engine's first answer before calling it unreachable. Podman's
/// service answers `/version` by running conmon and the OCI runtime, which takes seconds on a
/// busy machine; a socket nobody listens on fails at once anyway.
const FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// Per-request limit until the response headers arrive (builds stream for longer).
const REQUEST_TIMEOUT_SECS: u64 = 600;

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    pub endpoint: ResolvedEndpoint,
    /// The engine's API version, e.g. `1.41`.
    pub api_version: String,
    /// The engine's own version, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// Docker or Podman (what differs is in `podman.rs`).
    pub kind: EngineKind,
}

impl Engine {
    /// Connect and ask the engine for its version (one round trip).
    pub async fn connect(endpoint: ResolvedEndpoint) -> Result<Self, EngineError> {
        let address = endpoint.endpoint.to_string();
        debug!(target: "engine", "connect {address} (from {})", endpoint.source);
        let docker = match &endpoint.endpoint {
            Endpoint::Unix(path) => Docker::connect_with_unix(
                &path.to_string_lossy(),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
            Endpoint::Tcp(addr) => Docker::connect_with_http(
                &format!("http://{addr}"),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
        }
        .map_err(|e| EngineError::from_bollard("connect", &address, e))?;

        debug!(target: "engine", "GET /version");
        let version = tokio::time::timeout(FIRST_ANSWER_TIMEOUT, docker.version())
            .await
            .map_err(|_| EngineError::Timeout {
                endpoint: address.clone(),
                seconds: FIRST_ANSWER_TIMEOUT.as_secs(),
            })?
            .map_err(
                |e| match EngineError::from_bollard("GET /version", &address, e) {
                    // Something answered, but not an engine API (a web server, a wrong port).
                    EngineError::Api { status, .. } | EngineError::NotAnEngine { status, .. } => {
                        EngineError::NotAnEngine {
                            endpoint: address.clone(),
                            status,
                        }
                    }
                    other => other,
                },
            )?;

        let kind = EngineKind::of(&version);
        let api_version = version.api_version.unwrap_or_default();
        if !api_at_least(&api_version, MIN_API_VERSION) {
            return Err(EngineError::ApiTooOld {
                server: if api_version.is_empty() {
                    "unknown".to_owned()
                } else {
                    api_version
                },
                minimum: format!("{}.{}", MIN_API_VERSION.0, MIN_API_VERSION.1),
            });
        }
        Ok(Self {
            docker,
            endpoint,
            api_version,
            version: version.version.unwrap_or_default(),
            kind,
        })
    }

    pub fn is_podman(&self) -> bool {
        self.kind == EngineKind::Podman
    }

    pub(crate) fn address(&self) -> String {
        self.endpoint.endpoint.to_string()
    }

    pub(crate) fn err(&self, operation: &str, error: bollard::errors::Error) -> EngineError {
        EngineError::from_bollard(operation, &self.address(), error)
    }

    /// One engine request: logged (`-v`) as `operation`, its failure an [`EngineError`] that
    /// names it.
    pub(crate) async fn call<T>(
        &self,
        operation: &str,
        request: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, EngineError> {
        debug!(target: "engine", "{operation}");
        request.await.map_err(|e| self.err(operation, e))
    }
}

fn api_at_least(version: &str, (major, minor): (usize, usize)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<usize>());
    match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b) >= (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_numerically() {
        assert!(api_at_least("1.41", (1, 41)));
        assert!(api_at_least("1.100", (1, 41)));
        assert!(api_at_least("2.0", (1, 41)));
        assert!(!api_at_least("1.40", (1, 41)));
        assert!(!api_at_least("", (1, 41)));
        assert!(!api_at_least("garbage", (1, 41)));
    }
}
