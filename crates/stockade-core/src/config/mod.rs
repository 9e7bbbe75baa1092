//! Configuration: the key table, loading of each layer with file:line:column errors (all at
//! once), the merge into plain settings, and where every value came from.
//!
//! Layers, later wins: defaults ← global file ← project file ← `STOCKADE_<SECTION>_<KEY>`
//! variables ← command-line flags. Scalars: the later layer wins. Lists: concatenated, duplicates
//! dropped (entries with the same identity — an env name, a mount target, a host port — are
//! replaced by the later one). `extends = false` in the project file ignores the global file.

mod agents;
mod error;
pub mod keys;
mod load;
mod merge;
pub mod rules;
mod sections;
mod source;
mod starter;
pub mod value;

pub use agents::{
    AGENT_KEYS, AgentConfig, DEFAULT_VERSION_CACHE_HOURS, INSTALL_KINDS, TOOLS_KEYS, ToolsConfig,
    is_agent_name, is_version,
};
pub use error::{ConfigError, InvalidConfig};
pub use load::{
    FlagValue, Layer, Places, is_config_var, load_file, parse_env, parse_file, parse_flags,
};
pub use merge::{Loader, Resolved, Warning};
pub use sections::{MAP_SECTIONS, RawSection, Validator};
pub use source::{Origin, Scope, Setting, Source};
pub use starter::starter_file;
pub use value::{
    Egress, EngineOption, EnvSetting, ImageSource, MountSetting, Network, PortSetting,
    SignaturePolicy, Toolset, Value, expand_home, resolve_path,
};

use std::path::{Path, PathBuf};

use keys::Key;

use serde::Serialize;

/// The default `[image] from` (the key table's default; a test keeps them equal).
pub const DEFAULT_FROM: &str = "debian:bookworm-slim";

/// Default limit on processes in a sandbox (the key table's default; a test keeps them equal).
pub const DEFAULT_PIDS_LIMIT: i64 = 1024;

/// Resolved configuration: what commands use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub image: ImageConfig,
    pub sandbox: SandboxConfig,
    pub secrets: SecretsConfig,
    pub network: NetworkConfig,
    /// `[agents.<name>]`: custom agents and overrides of built-in ones, merged field by field.
    pub agents: std::collections::BTreeMap<String, AgentConfig>,
    pub tools: ToolsConfig,
    /// The configuration files that were found and applied, global first.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    /// The image the foundation is built `FROM`.
    pub from: String,
    /// Extra CA certificates (absolute paths) trusted inside every image.
    pub ca_certificates: Vec<PathBuf>,
    /// `[image] toolset`: `full` puts the full toolset image between the foundation and the base.
    pub toolset: Toolset,
    /// A custom base image by name (`[image] base`), used instead of the global Dockerfile.
    pub base: Option<String>,
    /// `[image] base_dockerfile`: builds the custom base when it is missing and cannot be pulled.
    /// Absolute: a relative path was resolved against the directory of the global file that
    /// set it, or against the project root when the project file set it.
    pub base_dockerfile: Option<PathBuf>,
    /// Whether the project file set `base` or `base_dockerfile`: then the custom base belongs
    /// to that project, and the images made for it carry the project's id.
    #[serde(skip)]
    pub base_from_project: bool,
    /// `[image] source`: pull the published foundation, build it, or pull when it can be.
    pub source: ImageSource,
    /// `[image] registries` as configured (empty: the defaults; see [`ImageConfig::registries`]).
    pub registries: Vec<String>,
    /// `[image] foundation_digest`: the pin of the published foundation (`sha256:…`).
    pub foundation_digest: Option<String>,
    /// `[image] full_digest`: the pin of the published full image.
    pub full_digest: Option<String>,
    /// `[image] verify_signatures`.
    pub verify_signatures: SignaturePolicy,
    /// `[image] cosign_public_key`: a PEM public key that signs the published images (mirrors).
    pub cosign_public_key: Option<PathBuf>,
}

impl ImageConfig {
    /// The repository prefixes to pull from, in order: the configured ones, else the defaults.
    pub fn registries(&self) -> Vec<String> {
        if self.registries.is_empty() {
            keys::find("image", "registries")
                .map(keys::list_default)
                .unwrap_or_default()
        } else {
            self.registries.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxConfig {
    /// Host variables passed through to sandboxes when set.
    pub env: Vec<String>,
    /// Variables set to literal values (`NAME=value` entries). Values are never printed.
    #[serde(serialize_with = "names_only")]
    pub set_env: Vec<(String, String)>,
    pub mounts: Vec<MountSetting>,
    pub ports: Vec<PortSetting>,
    /// Memory limit in bytes (8 GiB unless configured).
    pub memory: Option<u64>,
    /// CPU limit in thousandths of a CPU.
    pub cpus: Option<u32>,
    pub pids_limit: i64,
    /// Seconds a sandbox asked to stop has before it is killed.
    pub stop_timeout: i64,
    /// The keys that detach `stockade attach` (the engine's notation).
    pub detach_keys: String,
    /// Size limit of the `/tmp` tmpfs in bytes.
    pub tmp_size: u64,
    pub read_only_root: bool,
    pub sudo: bool,
    /// Forward the host's SSH agent.
    pub ssh_agent: bool,
    pub docker_socket: bool,
    pub engine_options: Vec<EngineOption>,
    /// `[sandbox] worktrees_dir` (global only): where `--worktree` makes worktrees, each
    /// repository's in a directory of its name.
    pub worktrees_dir: Option<PathBuf>,
}

/// `[network]`: what a sandbox may reach outside (see `crate::egress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkConfig {
    /// The mode, with `[sandbox] network` (its alias) applied.
    pub egress: Egress,
    /// `allow` entries in merge order, `!entry` removals included (`crate::egress::policy`
    /// applies them).
    pub allow: Vec<String>,
    /// `presets` in merge order after the default ones, `!name` removals included.
    pub presets: Vec<String>,
    /// `allow_private` (global only): names admitted although they resolve to private addresses.
    pub allow_private: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretsConfig {
    pub scan: bool,
    /// Globs relative to the project root.
    pub allowlist: Vec<String>,
}

impl Default for Config {
    /// Every key's default comes from the key table ([`keys::KEYS`]): nothing here but empties.
    fn default() -> Self {
        let mut config = Self {
            image: ImageConfig {
                from: String::new(),
                ca_certificates: Vec::new(),
                toolset: Toolset::Minimal,
                base: None,
                base_dockerfile: None,
                base_from_project: false,
                source: ImageSource::Auto,
                registries: Vec::new(),
                foundation_digest: None,
                full_digest: None,
                verify_signatures: SignaturePolicy::Auto,
                cosign_public_key: None,
            },
            sandbox: SandboxConfig {
                env: Vec::new(),
                set_env: Vec::new(),
                mounts: Vec::new(),
                ports: Vec::new(),
                memory: None,
                cpus: None,
                pids_limit: 0,
                stop_timeout: 0,
                detach_keys: String::new(),
                tmp_size: 0,
                read_only_root: false,
                sudo: false,
                ssh_agent: false,
                docker_socket: false,
                engine_options: Vec::new(),
                worktrees_dir: None,
            },
            secrets: SecretsConfig {
                scan: false,
                allowlist: Vec::new(),
            },
            network: NetworkConfig {
                egress: Egress::Allowlist,
                allow: Vec::new(),
                presets: Vec::new(),
                allow_private: Vec::new(),
            },
            agents: std::collections::BTreeMap::new(),
            tools: ToolsConfig::default(),
            files: Vec::new(),
        };
        for key in keys::KEYS {
            if let Some(value) = keys::default_value(key) {
                config.set(key, &value, Scope::Default);
            }
        }
        config
    }
}

impl Config {
    /// Load the global file and then the project file (each optional), merged over the defaults,
    /// without variables or flags. `home` expands `~/` in paths; the project root is the
    /// directory holding `.stockade/`.
    pub fn load(global: &Path, project: &Path, home: &Path) -> Result<Self, ConfigError> {
        let root = project
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"));
        Loader {
            global: global.to_path_buf(),
            project: project.to_path_buf(),
            project_root: root.to_path_buf(),
            home: home.to_path_buf(),
            env: Vec::new(),
            flags: Vec::new(),
        }
        .load()
        .map(|resolved| resolved.config)
    }

    /// The value of a scalar key in this configuration (`None`: unset, or a list key).
    pub fn value_of(&self, key: &Key) -> Option<Value> {
        (key.get)(self)
    }

    /// Apply one setting (the merge has decided it wins or adds).
    fn apply(&mut self, setting: &Setting) {
        self.set(setting.key, &setting.value, setting.origin.source.scope());
    }

    fn set(&mut self, key: &Key, value: &Value, scope: Scope) {
        (key.set)(self, value, scope);
    }
}

fn names_only<S: serde::Serializer>(env: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(env.iter().map(|(name, _)| name))
}

#[cfg(test)]
mod tests;
