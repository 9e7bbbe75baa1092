//! Engine failures as typed errors with a short message and a fix.

use crate::endpoint::EndpointError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot find a container engine: {0}")]
    NoEndpoint(#[from] EndpointError),

    #[error("cannot reach the container engine at {endpoint} ({reason})")]
    Unreachable { endpoint: String, reason: String },

    #[error("permission denied on the engine socket {endpoint}")]
    PermissionDenied { endpoint: String },

    #[error("the container engine at {endpoint} did not answer within {seconds} s")]
    Timeout { endpoint: String, seconds: u64 },

    #[error("the engine's API version {server} is too old: stockade needs {minimum} or newer")]
    ApiTooOld { server: String, minimum: String },

    #[error("{endpoint} is not a container engine's API: GET /version answered {status}")]
    NotAnEngine { endpoint: String, status: u16 },

    #[error("image {image} was not found on the engine")]
    ImageNotFound { image: String },

    #[error("{operation} failed: {message}")]
    Api {
        operation: String,
        status: u16,
        message: String,
    },

    #[error("building {image} failed{}: {message}", step.as_deref().map(|s| format!(" at {s}")).unwrap_or_default())]
    BuildFailed {
        image: String,
        /// The Dockerfile step that failed (`Step 4/9 : RUN …`), when the engine said.
        step: Option<String>,
        message: String,
        /// The last lines of build output.
        tail: Vec<String>,
    },

    #[error("{operation} failed: {source}")]
    Transport {
        operation: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("{operation} failed: {source}")]
    Io {
        operation: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// The engine could not be reached at all (as opposed to refusing one request).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::NoEndpoint(_)
                | Self::NotAnEngine { .. }
                | Self::Unreachable { .. }
                | Self::PermissionDenied { .. }
                | Self::Timeout { .. }
                | Self::ApiTooOld { .. }
        )
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoEndpoint(EndpointError::Unsupported { origin, .. }) => Some(format!(
                "fix {origin} (e.g. unix:///var/run/docker.sock), or unset it to use the \
                 default socket"
            )),
            Self::NoEndpoint(EndpointError::NoSuchContext { .. }) => Some(
                "`docker context ls` lists the contexts; select one that exists \
                 (`docker context use NAME`), or unset DOCKER_CONTEXT"
                    .to_owned(),
            ),
            Self::NoEndpoint(EndpointError::Context { .. }) => Some(
                "repair the context (`docker context inspect NAME`), or select another \
                 (`docker context use default`)"
                    .to_owned(),
            ),
            Self::NotAnEngine { .. } => Some(
                "point DOCKER_HOST at Docker's or Podman's API (a socket such as \
                 unix:///var/run/docker.sock, or tcp://host:2375)"
                    .to_owned(),
            ),
            Self::NoEndpoint(_) | Self::Unreachable { .. } | Self::Timeout { .. } => Some(
                "start the engine (`sudo systemctl start docker`, Docker Desktop, or \
                 `systemctl --user start podman.socket`), or point DOCKER_HOST at a running one"
                    .to_owned(),
            ),
            Self::PermissionDenied { .. } => Some(
                "add yourself to the docker group (`sudo usermod -aG docker $USER`) and log in \
                 again, or use a rootless engine"
                    .to_owned(),
            ),
            Self::ApiTooOld { .. } => {
                Some("upgrade the engine to Docker 20.10 or Podman 4 or newer".to_owned())
            }
            Self::BuildFailed { .. } => Some(
                "fix the failing step and run again; the previous image stays in use until a build succeeds"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// Map a bollard error from `operation` against `endpoint` to a typed error.
    pub(crate) fn from_bollard(
        operation: &str,
        endpoint: &str,
        error: bollard::errors::Error,
    ) -> Self {
        use bollard::errors::Error as B;
        match error {
            B::DockerResponseServerError {
                status_code,
                message,
            } => Self::Api {
                operation: operation.to_owned(),
                status: status_code,
                message: message.trim().to_owned(),
            },
            B::SocketNotFoundError(path) => Self::Unreachable {
                endpoint: endpoint.to_owned(),
                reason: format!("no socket at {path}"),
            },
            B::RequestTimeoutError => Self::Timeout {
                endpoint: endpoint.to_owned(),
                seconds: 0,
            },
            other => match io_kind(&other) {
                Some(std::io::ErrorKind::PermissionDenied) => Self::PermissionDenied {
                    endpoint: endpoint.to_owned(),
                },
                Some(
                    kind @ (std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::AddrNotAvailable),
                ) => Self::Unreachable {
                    endpoint: endpoint.to_owned(),
                    reason: describe_kind(kind),
                },
                _ => Self::Transport {
                    operation: operation.to_owned(),
                    source: other,
                },
            },
        }
    }

    /// `Ok(None)` for an API error with one of `statuses` (e.g. 404 when removing what is gone).
    pub(crate) fn tolerate<T>(
        result: Result<T, Self>,
        statuses: &[u16],
    ) -> Result<Option<T>, Self> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Self::Api { status, .. }) if statuses.contains(&status) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn describe_kind(kind: std::io::ErrorKind) -> String {
    match kind {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::NotFound => "no such socket".to_owned(),
        std::io::ErrorKind::TimedOut => "timed out".to_owned(),
        other => other.to_string(),
    }
}

/// The kind of the first `std::io::Error` in the source chain.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = err.source();
    }
    None
}
