//! Registry credentials from the user's Docker client configuration (`$DOCKER_CONFIG/config.json`,
//! default `~/.docker/config.json`), as the `docker` CLI finds them: a credential helper named for
//! the registry (`credHelpers`), else the default store (`credsStore`), else the `auths` entry.
//! The engine reads no client configuration, so stockade sends what it finds with the pull, and
//! uses it for the manifest and signature requests. Anonymous when nothing is found.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;
use stockade_engine::RegistryCredentials;

/// The user's Docker client configuration, the parts that name credentials.
#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What a credential helper answers to `get`.
#[derive(Debug, Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The host part of a repository prefix (`docker.io/stockadedev` → `docker.io`). A first part
/// without a dot, a colon or `localhost` is a Docker Hub namespace.
pub fn registry_host(prefix: &str) -> String {
    match prefix.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_owned()
        }
        _ => "docker.io".to_owned(),
    }
}

/// Whether the engine and stockade talk plain HTTP to this registry: loopback addresses, as
/// the engine's own default insecure range (127.0.0.0/8) does.
pub fn is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

/// The keys a registry's entry may have in the configuration.
fn keys_for(host: &str) -> Vec<String> {
    if host == "docker.io" {
        return vec![
            "https://index.docker.io/v1/".to_owned(),
            "index.docker.io".to_owned(),
            "docker.io".to_owned(),
            "registry-1.docker.io".to_owned(),
        ];
    }
    vec![
        host.to_owned(),
        format!("https://{host}"),
        format!("http://{host}"),
    ]
}

fn config_file(home: &Path) -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".docker"))
        .join("config.json")
}

/// Credentials for `host`, or `None` (anonymous). Problems (an unreadable file, a helper that
/// fails) are logged at debug level and mean anonymous: the registry then says what it needs.
pub fn for_host(home: &Path, host: &str) -> Option<RegistryCredentials> {
    from_file(&config_file(home), home, host)
}

fn from_file(path: &Path, home: &Path, host: &str) -> Option<RegistryCredentials> {
    let bytes = match stockade_core::fsread::read_outside(
        path,
        stockade_core::fsread::FILE_CAP,
        "the Docker client configuration",
    ) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => {
            tracing::debug!("registry credentials: {e}");
            return None;
        }
    };
    let config: DockerConfig = match serde_json::from_slice(&bytes) {
        Ok(config) => config,
        Err(e) => {
            tracing::debug!("registry credentials: {}: {e}", path.display());
            return None;
        }
    };
    let keys = keys_for(host);
    let helper = keys
        .iter()
        .find_map(|k| config.cred_helpers.get(k))
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper
        && let Some(found) = from_helper(home, helper, &keys[0], host)
    {
        return Some(found);
    }
    let entry = keys.iter().find_map(|k| config.auths.get(k))?;
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(auth) = &entry.auth
        && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth.trim())
        && let Ok(text) = String::from_utf8(decoded)
        && let Some((user, pass)) = text.split_once(':')
    {
        username = Some(user.to_owned());
        password = Some(pass.to_owned());
    }
    if username.is_none() && entry.identitytoken.is_none() {
        return None;
    }
    Some(RegistryCredentials {
        server: keys[0].clone(),
        username,
        password,
        identity_token: entry.identitytoken.clone(),
    })
}

/// Ask `docker-credential-<helper>` (run in HOME, never in the project) for `server`.
fn from_helper(home: &Path, helper: &str, server: &str, host: &str) -> Option<RegistryCredentials> {
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    let program = format!("docker-credential-{helper}");
    let run = Command::new(&program)
        .arg("get")
        .current_dir(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            if let Some(mut stdin) = child.stdin.take() {
                std::io::Write::write_all(&mut stdin, server.as_bytes())?;
            }
            child.wait_with_output()
        });
    let output = match run {
        Ok(output) if output.status.success() => output,
        Ok(_) => {
            tracing::debug!("registry credentials: {program} has nothing for {host}");
            return None;
        }
        Err(e) => {
            tracing::debug!("registry credentials: cannot run {program}: {e}");
            return None;
        }
    };
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).ok()?;
    Some(if answer.username == "<token>" {
        RegistryCredentials {
            server: server.to_owned(),
            username: None,
            password: None,
            identity_token: Some(answer.secret),
        }
    } else {
        RegistryCredentials {
            server: server.to_owned(),
            username: Some(answer.username),
            password: Some(answer.secret),
            identity_token: None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_loopback() {
        assert_eq!(registry_host("docker.io/stockadedev"), "docker.io");
        assert_eq!(registry_host("stockadedev"), "docker.io");
        assert_eq!(registry_host("ghcr.io/stockade-dev"), "ghcr.io");
        assert_eq!(registry_host("127.0.0.1:5101/x/y"), "127.0.0.1:5101");
        assert!(is_loopback("127.0.0.1:5101"));
        assert!(is_loopback("localhost:5000"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("127x.example:5000"));
    }

    #[test]
    fn auths_entries_are_decoded() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".docker")).unwrap();
        std::fs::write(
            home.path().join(".docker/config.json"),
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "YWRhOnNlY3JldA=="},
                          "ghcr.io": {"identitytoken": "tok"}}}"#,
        )
        .unwrap();
        let file = home.path().join(".docker/config.json");
        let hub = from_file(&file, home.path(), "docker.io").unwrap();
        assert_eq!(hub.username.as_deref(), Some("ada"));
        assert_eq!(hub.password.as_deref(), Some("secret"));
        let ghcr = from_file(&file, home.path(), "ghcr.io").unwrap();
        assert_eq!(ghcr.identity_token.as_deref(), Some("tok"));
        assert!(from_file(&file, home.path(), "quay.io").is_none());
        assert!(!format!("{hub:?}").contains("secret"));
    }
}
