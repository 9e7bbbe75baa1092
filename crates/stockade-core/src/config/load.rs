//! Reading one configuration file: parse, validate, resolve paths.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{ConfigError, InvalidConfig};
use super::schema::ConfigFile;

/// One configuration file, validated, with paths made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub from: Option<String>,
    pub ca_certificates: Vec<PathBuf>,
    pub base: Option<String>,
    /// As written, with `~/` expanded: resolved against the project root, then the global
    /// config directory, when the base is built.
    pub base_dockerfile: Option<PathBuf>,
    pub env: Vec<String>,
    pub ssh_agent: Option<bool>,
    pub agents: std::collections::BTreeMap<String, super::agents::AgentConfig>,
    pub version_cache_hours: Option<u64>,
}

/// Load `path` if it exists. Every problem in the file is reported, each with its line and column.
pub fn load_file(path: &Path, home: &Path) -> Result<Option<LoadedFile>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse(path, &text, home).map(Some)
}

/// Parse and validate configuration text that came from `path`.
pub fn parse(path: &Path, text: &str, home: &Path) -> Result<LoadedFile, ConfigError> {
    let raw: ConfigFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let (message, help) = explain_toml_error(e.message());
        ConfigError::Invalid {
            errors: vec![InvalidConfig::new(
                path.to_path_buf(),
                text,
                span,
                message,
                "here",
                help,
            )],
        }
    })?;
    let mut v = Validator {
        path,
        text,
        errors: Vec::new(),
    };
    let base_dir = path.parent().unwrap_or(Path::new("/"));

    let image = raw.image.unwrap_or_default();
    let from = image
        .from
        .and_then(|from| v.image_reference(&from, "image.from"));
    let base = image
        .base
        .and_then(|base| v.image_reference(&base, "image.base"));
    let base_dockerfile = image.base_dockerfile.and_then(|entry| {
        if entry.get_ref().trim().is_empty() {
            v.error(
                &entry,
                "`image.base_dockerfile` must be a path to a Dockerfile",
                "empty path",
                None,
            );
            None
        } else {
            Some(expand_home(entry.get_ref(), home))
        }
    });
    let ca_certificates = image
        .ca_certificates
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| {
            let resolved = resolve_path(entry.get_ref(), base_dir, home);
            match std::fs::metadata(&resolved) {
                Ok(meta) if meta.is_file() => Some(resolved),
                Ok(_) => {
                    v.error(
                        &entry,
                        format!("CA certificate {} is not a file", resolved.display()),
                        "not a file",
                        Some("name a PEM file with one or more certificates".into()),
                    );
                    None
                }
                Err(e) => {
                    v.error(
                        &entry,
                        format!("cannot read CA certificate {}: {e}", resolved.display()),
                        "this file",
                        Some("fix the path (relative paths start at this file's directory) or remove the entry".into()),
                    );
                    None
                }
            }
        })
        .collect();

    let sandbox = raw.sandbox.unwrap_or_default();
    let env = sandbox
        .env
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| {
            if is_env_name(name.get_ref()) {
                Some(name.into_inner())
            } else {
                v.error(
                    &name,
                    format!("{:?} is not an environment variable name", name.get_ref()),
                    "invalid name",
                    Some("names are letters, digits and '_', not starting with a digit; list names only, no values".into()),
                );
                None
            }
        })
        .collect();

    let ssh_agent = sandbox.ssh_agent;
    let agents = super::agents::validate_agents(&mut v, raw.agents);
    let version_cache_hours = super::agents::validate_tools(&mut v, raw.tools);

    if v.errors.is_empty() {
        Ok(LoadedFile {
            path: path.to_path_buf(),
            from,
            ca_certificates,
            base,
            base_dockerfile,
            env,
            ssh_agent,
            agents,
            version_cache_hours,
        })
    } else {
        Err(ConfigError::Invalid { errors: v.errors })
    }
}

pub(super) struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<InvalidConfig>,
}

impl Validator<'_> {
    /// A non-empty image reference without white space, e.g. `debian:bookworm-slim`.
    fn image_reference(&mut self, at: &Spanned<String>, key: &str) -> Option<String> {
        let value = at.get_ref().trim();
        if value.is_empty() || value.chars().any(char::is_whitespace) {
            self.error(
                at,
                format!("`{key}` must be an image reference such as \"debian:bookworm-slim\""),
                "not an image reference",
                None,
            );
            None
        } else {
            Some(value.to_owned())
        }
    }

    pub(super) fn error<T>(
        &mut self,
        at: &Spanned<T>,
        message: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) {
        self.errors.push(InvalidConfig::new(
            self.path.to_path_buf(),
            self.text,
            at.span(),
            message,
            label,
            help,
        ));
    }
}

/// Make toml's messages read as one sentence and add a fix where we know one.
fn explain_toml_error(message: &str) -> (String, Option<String>) {
    let message = message.trim().to_owned();
    let help = if message.starts_with("unknown field") {
        Some("see docs/configuration.md for the keys stockade knows".to_owned())
    } else if message.starts_with("invalid type") {
        Some("check the value's type against docs/configuration.md".to_owned())
    } else {
        None
    };
    (message, help)
}

pub(super) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `~/x` → home/x; relative → against `base`; absolute as is.
pub fn resolve_path(value: &str, base: &Path, home: &Path) -> PathBuf {
    base.join(expand_home(value, home))
}

/// `~` and `~/x` → under `home`; anything else unchanged.
pub fn expand_home(value: &str, home: &Path) -> PathBuf {
    if value == "~" {
        home.to_path_buf()
    } else if let Some(rest) = value.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(value)
    }
}
