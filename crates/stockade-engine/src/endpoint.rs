//! Which engine to talk to, decided as the docker CLI does: `DOCKER_HOST`, else the current
//! Docker context, else the default socket, else Podman's socket.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `tcp://host:port`, spoken as plain HTTP.
    Tcp(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Why this endpoint was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    DockerHost,
    Context(String),
    DefaultSocket,
    PodmanSocket,
}

impl fmt::Display for EndpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DockerHost => f.write_str("DOCKER_HOST"),
            Self::Context(name) => write!(f, "docker context {name:?}"),
            Self::DefaultSocket => f.write_str("default socket"),
            Self::PodmanSocket => f.write_str("podman socket"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEndpoint {
    pub endpoint: Endpoint,
    pub source: EndpointSource,
}

/// Why no endpoint could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "unsupported engine address {value:?} in {origin}: use unix:///path/to/socket or tcp://host:port"
    )]
    Unsupported { value: String, origin: String },
    #[error("docker context {name:?} is selected ({selected_by}) but does not exist")]
    NoSuchContext { name: String, selected_by: String },
    #[error("docker context {name:?} is selected but its endpoint cannot be read from {}: {reason}", path.display())]
    Context {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("no engine socket found (tried {})", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoSocket { tried: Vec<PathBuf> },
}

pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Resolve the endpoint from an environment lookup and the user's home directory.
pub fn resolve_endpoint(
    env: impl Fn(&str) -> Option<String>,
    home: &Path,
) -> Result<ResolvedEndpoint, EndpointError> {
    if let Some(host) = env("DOCKER_HOST").filter(|h| !h.is_empty()) {
        return Ok(ResolvedEndpoint {
            endpoint: parse_host(&host, "DOCKER_HOST")?,
            source: EndpointSource::DockerHost,
        });
    }
    let docker_config = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".docker"));
    let context = env("DOCKER_CONTEXT")
        .filter(|c| !c.is_empty())
        .or_else(|| current_context(&docker_config));
    let selected_by = if env("DOCKER_CONTEXT").is_some_and(|c| !c.is_empty()) {
        "DOCKER_CONTEXT".to_owned()
    } else {
        format!(
            "currentContext in {}",
            docker_config.join("config.json").display()
        )
    };
    if let Some(name) = context.filter(|name| name != "default") {
        let endpoint = context_endpoint(&docker_config, &name, &selected_by)?;
        return Ok(ResolvedEndpoint {
            endpoint,
            source: EndpointSource::Context(name),
        });
    }
    let mut tried = vec![PathBuf::from(DEFAULT_SOCKET)];
    if Path::new(DEFAULT_SOCKET).exists() {
        return Ok(ResolvedEndpoint {
            endpoint: Endpoint::Unix(DEFAULT_SOCKET.into()),
            source: EndpointSource::DefaultSocket,
        });
    }
    let mut podman = Vec::new();
    if let Some(runtime) = env("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        podman.push(Path::new(&runtime).join("podman/podman.sock"));
    }
    podman.push(PathBuf::from("/run/podman/podman.sock"));
    for socket in podman {
        if socket.exists() {
            return Ok(ResolvedEndpoint {
                endpoint: Endpoint::Unix(socket),
                source: EndpointSource::PodmanSocket,
            });
        }
        tried.push(socket);
    }
    Err(EndpointError::NoSocket { tried })
}

fn parse_host(value: &str, source: &str) -> Result<Endpoint, EndpointError> {
    if let Some(path) = value.strip_prefix("unix://") {
        Ok(Endpoint::Unix(PathBuf::from(path)))
    } else if let Some(addr) = value
        .strip_prefix("tcp://")
        .or_else(|| value.strip_prefix("http://"))
    {
        Ok(Endpoint::Tcp(addr.trim_end_matches('/').to_owned()))
    } else {
        Err(EndpointError::Unsupported {
            value: value.to_owned(),
            origin: source.to_owned(),
        })
    }
}

fn current_context(docker_config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(docker_config.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("currentContext")?.as_str().map(str::to_owned)
}

fn context_endpoint(
    docker_config: &Path,
    name: &str,
    selected_by: &str,
) -> Result<Endpoint, EndpointError> {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let path = docker_config
        .join("contexts/meta")
        .join(digest)
        .join("meta.json");
    let error = |reason: String| EndpointError::Context {
        name: name.to_owned(),
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EndpointError::NoSuchContext {
                name: name.to_owned(),
                selected_by: selected_by.to_owned(),
            }
        } else {
            error(e.to_string())
        }
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
    let host = json
        .pointer("/Endpoints/docker/Host")
        .and_then(|h| h.as_str())
        .ok_or_else(|| error("no Endpoints.docker.Host".to_owned()))?;
    parse_host(host, &format!("docker context {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn docker_host_wins() {
        let r = resolve_endpoint(
            env(&[("DOCKER_HOST", "unix:///tmp/d.sock")]),
            Path::new("/h"),
        )
        .unwrap();
        assert_eq!(r.endpoint, Endpoint::Unix("/tmp/d.sock".into()));
        assert_eq!(r.source, EndpointSource::DockerHost);
        let r = resolve_endpoint(
            env(&[("DOCKER_HOST", "tcp://10.0.0.1:2375")]),
            Path::new("/h"),
        )
        .unwrap();
        assert_eq!(r.endpoint, Endpoint::Tcp("10.0.0.1:2375".into()));
    }

    #[test]
    fn unsupported_scheme_is_explained() {
        let err = resolve_endpoint(
            env(&[("DOCKER_HOST", "npipe:////./pipe/x")]),
            Path::new("/h"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unix:///"), "{err}");
    }

    #[test]
    fn current_context_is_read_from_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join(".docker");
        let digest = hex::encode(Sha256::digest(b"remote"));
        let meta = cfg.join("contexts/meta").join(digest);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(cfg.join("config.json"), r#"{"currentContext":"remote"}"#).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Endpoints":{"docker":{"Host":"unix:///run/remote.sock"}}}"#,
        )
        .unwrap();
        let r = resolve_endpoint(env(&[]), dir.path()).unwrap();
        assert_eq!(r.endpoint, Endpoint::Unix("/run/remote.sock".into()));
        assert_eq!(r.source, EndpointSource::Context("remote".into()));
        // DOCKER_CONTEXT overrides config.json; an unknown context is an error naming it.
        let err = resolve_endpoint(env(&[("DOCKER_CONTEXT", "gone")]), dir.path()).unwrap_err();
        assert!(err.to_string().contains("\"gone\""), "{err}");
    }
}
