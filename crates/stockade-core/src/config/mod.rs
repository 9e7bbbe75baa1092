//! Configuration: the TOML schema, loading with file:line:column errors, and merging of the
//! global and project layers into plain settings.
//!
//! Merge rules: scalars — the later layer wins; lists — concatenated, duplicates dropped.

mod agents;
mod error;
mod load;
mod schema;

pub use agents::{
    AgentConfig, DEFAULT_VERSION_CACHE_HOURS, INSTALL_KINDS, is_agent_name, is_version,
};
pub use error::{ConfigError, InvalidConfig};
pub use load::{LoadedFile, expand_home, load_file, parse, resolve_path};
pub use schema::{ConfigFile, ImageSection, SandboxSection};

use std::path::{Path, PathBuf};

/// The default `[image] from`.
pub const DEFAULT_FROM: &str = "debian:bookworm-slim";

/// Resolved configuration: what commands use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    pub image: ImageConfig,
    pub sandbox: SandboxConfig,
    /// `[agents.<name>]`: custom agents and overrides of built-in ones, merged field by field.
    pub agents: std::collections::BTreeMap<String, AgentConfig>,
    /// `[tools] version_cache_hours`.
    pub version_cache_hours: u64,
    /// The configuration files that were found and applied, global first.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageConfig {
    /// The image the foundation is built `FROM`.
    pub from: String,
    /// Extra CA certificates (absolute paths) trusted inside every image.
    pub ca_certificates: Vec<PathBuf>,
    /// A custom base image by name (`[image] base`), used instead of the global Dockerfile.
    pub base: Option<String>,
    /// `[image] base_dockerfile`: builds the custom base when it is missing and cannot be pulled.
    /// Relative paths are resolved against the project root, then the global config directory.
    pub base_dockerfile: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SandboxConfig {
    /// Host variables passed through to sandboxes when set.
    pub env: Vec<String>,
    /// Forward the host's SSH agent.
    pub ssh_agent: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            image: ImageConfig {
                from: DEFAULT_FROM.to_owned(),
                ca_certificates: Vec::new(),
                base: None,
                base_dockerfile: None,
            },
            sandbox: SandboxConfig::default(),
            agents: std::collections::BTreeMap::new(),
            version_cache_hours: DEFAULT_VERSION_CACHE_HOURS,
            files: Vec::new(),
        }
    }
}

impl Config {
    /// Load the global file and then the project file (each optional), merged over the defaults.
    /// `home` expands `~/` in paths.
    pub fn load(global: &Path, project: &Path, home: &Path) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for path in [global, project] {
            if let Some(file) = load_file(path, home)? {
                config.apply(file);
            }
        }
        Ok(config)
    }

    fn apply(&mut self, file: LoadedFile) {
        if let Some(from) = file.from {
            self.image.from = from;
        }
        if let Some(base) = file.base {
            self.image.base = Some(base);
        }
        if let Some(dockerfile) = file.base_dockerfile {
            self.image.base_dockerfile = Some(dockerfile);
        }
        for ca in file.ca_certificates {
            push_unique(&mut self.image.ca_certificates, ca);
        }
        for name in file.env {
            push_unique(&mut self.sandbox.env, name);
        }
        if let Some(ssh_agent) = file.ssh_agent {
            self.sandbox.ssh_agent = ssh_agent;
        }
        for (name, agent) in file.agents {
            self.agents.entry(name).or_default().merge(agent);
        }
        if let Some(hours) = file.version_cache_hours {
            self.version_cache_hours = hours;
        }
        self.files.push(file.path);
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests;
