//! Agents as data: the built-in catalog, custom agents from `[agents.<name>]`, and what an
//! install needs (scripts run in a helper container, volume names, recorded versions).

mod catalog;
mod install;
mod libc;
mod runtime;
mod state;

pub use catalog::BUILTIN;
pub use install::{
    COMPLETE_MARKER, DEBUG_LOG_MARKER, TOOLS_ROOT, install_script, mount_path, musl_install_script,
    parse_version, query_command, query_script, verify_script,
};
pub use libc::{
    Build, Libc, LibcProbe, MuslBuild, PROBED_LIBRARIES, Unfit, libc_probe_script, native_build,
};
pub use runtime::{
    DEFAULT_NODE, NPM_CLIENT, RUNTIMES_ROOT, Runtime, release_key, runtime_install_script,
    runtime_mount, runtime_query_script, runtime_verify_script,
};
pub use state::{CachedVersion, Installed, LIBC_ANSWERS, ProbedImage, State, VersionCache, now};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{AgentConfig, Config};

/// How an agent is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallKind {
    /// An npm package (also agents that ship a release binary inside an npm package).
    Npm,
    /// A PyPI package, installed into a virtual environment.
    Pypi,
}

impl InstallKind {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "npm" => Some(Self::Npm),
            "pypi" => Some(Self::Pypi),
            _ => None,
        }
    }

    /// As configured (`install = "npm"`) and reported.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::Pypi => "pypi",
        }
    }

    /// The package registry's kind, for version-cache keys.
    pub fn runtime(self) -> &'static str {
        match self {
            Self::Npm => "node",
            Self::Pypi => "python3",
        }
    }
}

/// A fully resolved agent: the built-in description (if any) with every config layer applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub name: String,
    pub builtin: bool,
    pub install: InstallKind,
    pub package: String,
    pub command: String,
    /// `latest` or an exact version.
    pub version: String,
    /// npm agents: the Node.js they run on (a major such as `22`, or exact), from a runtime
    /// volume ([`Runtime`]); `None` for PyPI agents.
    pub node: Option<String>,
    /// The oldest Node.js major it runs on (built-ins that declare one).
    pub min_node: Option<u32>,
    /// Its command is a native program (its package installs a glibc build): the sandbox image
    /// must have glibc, or musl when it has a [`musl`](Self::musl) build.
    pub native: bool,
    /// Its musl build, for a musl-based image.
    pub musl: Option<MuslBuild>,
    pub config_dirs: Vec<String>,
    pub config_files: Vec<String>,
    pub api_keys: Vec<String>,
    /// Default arguments put before the user's.
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Files holding the agent's login, relative to HOME, shared by every project.
    pub login_files: Vec<String>,
    /// `share_config = true` (global only): the host's config dirs and files are mounted.
    pub share_config: bool,
    /// The agent's API and login endpoints (`[network] presets = ["agent"]`), as allow entries.
    pub egress: Vec<String>,
}

impl Agent {
    /// Whether the version is `latest` (resolved at install time) rather than pinned.
    pub fn is_latest(&self) -> bool {
        self.version == "latest"
    }

    /// The Node.js major it runs on (npm agents).
    pub fn own_node_major(&self) -> Option<u32> {
        node_major(self.node.as_deref()?)
    }

    /// The runtime stockade brings for it in a volume (npm agents: Node.js).
    pub fn runtime(&self) -> Option<Runtime> {
        match self.install {
            InstallKind::Npm => Some(Runtime::node(self.node.as_deref().unwrap_or(DEFAULT_NODE))),
            InstallKind::Pypi => None,
        }
    }

    /// The build of it that runs on an image the libc probe looked at (always the package's
    /// own for an agent that is not a native program).
    pub fn build_for(&self, probe: &LibcProbe) -> Result<Build, Unfit> {
        if self.native {
            native_build(self.musl.as_ref(), probe)
        } else {
            Ok(Build::Package)
        }
    }

    /// What the entrypoint checks before it runs the command (`STOCKADE_NEEDS`): the runtime
    /// the image must provide, and for a native build its C library (`glibc`, `musl`) and the
    /// libraries it needs (`lib:NAME`).
    pub fn needs(&self, build: Build) -> Vec<String> {
        let mut needs: Vec<String> = self
            .required_runtime()
            .into_iter()
            .map(str::to_owned)
            .collect();
        match (self.native, build, &self.musl) {
            (false, _, _) => {}
            (true, Build::Musl, Some(musl)) => {
                needs.push("musl".to_owned());
                needs.extend(musl.libraries.iter().map(|l| format!("lib:{l}")));
            }
            (true, _, _) => needs.push("glibc".to_owned()),
        }
        needs
    }

    /// The runtime the image must provide (`None` when stockade brings it).
    pub fn required_runtime(&self) -> Option<&'static str> {
        match self.install {
            InstallKind::Npm => None,
            InstallKind::Pypi => Some("python3"),
        }
    }
}

/// The major of a Node.js version: `22` of `"22"`, `"v18.19.0"` or `"20.1"`.
pub fn node_major(version: &str) -> Option<u32> {
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Why an agent could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AgentError {
    #[error("unknown agent or command {0:?}")]
    Unknown(String),
    #[error("agent {name:?} in the configuration has no `{key}`")]
    Incomplete { name: String, key: &'static str },
}

/// Every agent name: built-ins and configured ones, sorted.
pub fn names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN.iter().map(|b| b.name.to_owned()).collect();
    for name in config.agents.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names.sort();
    names
}

/// Resolve `name` against the built-in catalog and `[agents.<name>]`.
pub fn resolve(name: &str, config: &Config) -> Result<Agent, AgentError> {
    let builtin = BUILTIN.iter().find(|b| b.name == name);
    let overrides = config.agents.get(name);
    let mut merged = match builtin {
        Some(b) => b.to_config(),
        None if overrides.is_some() => AgentConfig::default(),
        None => return Err(AgentError::Unknown(name.to_owned())),
    };
    if let Some(layer) = overrides {
        merged.merge(layer.clone());
    }
    let missing = |key| AgentError::Incomplete {
        name: name.to_owned(),
        key,
    };
    let install = merged
        .install
        .as_deref()
        .and_then(InstallKind::parse)
        .ok_or_else(|| missing("install"))?;
    let package = merged.package.ok_or_else(|| missing("package"))?;
    let mut args = merged.args.unwrap_or_default();
    let skip = builtin.and_then(|b| b.skip_permissions_arg);
    if let Some(flag) = skip {
        if merged.skip_permissions.unwrap_or(true) {
            if !args.iter().any(|a| a == flag) {
                args.insert(0, flag.to_owned());
            }
        } else {
            args.retain(|a| a != flag);
        }
    }
    Ok(Agent {
        name: name.to_owned(),
        builtin: builtin.is_some(),
        install,
        package,
        command: merged.command.unwrap_or_else(|| name.to_owned()),
        version: merged.version.unwrap_or_else(|| "latest".to_owned()),
        node: match install {
            InstallKind::Npm => Some(merged.node.unwrap_or_else(|| DEFAULT_NODE.to_owned())),
            InstallKind::Pypi => None,
        },
        min_node: builtin.and_then(|b| b.min_node),
        native: builtin.is_some_and(|b| b.native),
        musl: builtin.and_then(|b| b.musl.clone()),
        config_dirs: merged.config_dirs.unwrap_or_default(),
        config_files: merged.config_files.unwrap_or_default(),
        api_keys: merged.api_keys.unwrap_or_default(),
        args,
        env: merged.env.unwrap_or_default(),
        login_files: merged.login_files.unwrap_or_default(),
        share_config: merged.share_config.unwrap_or(false),
        egress: merged.egress.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(agents: &[(&str, AgentConfig)]) -> Config {
        let mut config = Config::default();
        for (name, agent) in agents {
            config.agents.insert((*name).to_owned(), agent.clone());
        }
        config
    }

    #[test]
    fn builtins_resolve() {
        let config = Config::default();
        for name in ["claude", "opencode", "codex", "gemini"] {
            let agent = resolve(name, &config).unwrap();
            assert!(agent.builtin);
            assert!(agent.is_latest());
            assert!(!agent.config_dirs.is_empty(), "{name}");
            // Each built-in lists its login files, inside one of its config dirs.
            assert!(!agent.login_files.is_empty(), "{name}");
            for file in &agent.login_files {
                assert!(
                    agent
                        .config_dirs
                        .iter()
                        .any(|d| file.starts_with(&format!("{d}/"))),
                    "{name}: {file}"
                );
            }
            assert!(!agent.share_config, "{name}");
        }
        assert_eq!(names(&config), ["claude", "codex", "gemini", "opencode"]);
    }

    #[test]
    fn claude_skips_permissions_by_default_and_can_stop() {
        let agent = resolve("claude", &Config::default()).unwrap();
        assert_eq!(agent.args, ["--dangerously-skip-permissions"]);
        let off = config(&[(
            "claude",
            AgentConfig {
                skip_permissions: Some(false),
                ..Default::default()
            },
        )]);
        assert!(resolve("claude", &off).unwrap().args.is_empty());
    }

    #[test]
    fn overrides_apply_field_by_field() {
        let c = config(&[(
            "opencode",
            AgentConfig {
                version: Some("1.2.3".into()),
                share_config: Some(true),
                ..Default::default()
            },
        )]);
        let agent = resolve("opencode", &c).unwrap();
        assert_eq!(agent.version, "1.2.3");
        assert!(agent.share_config);
        assert_eq!(agent.login_files, [".local/share/opencode/auth.json"]);
        assert_eq!(agent.package, "opencode-ai");
    }

    #[test]
    fn custom_agents_need_install_and_package() {
        let c = config(&[(
            "moo",
            AgentConfig {
                install: Some("npm".into()),
                package: Some("cowsay".into()),
                command: Some("cowsay".into()),
                ..Default::default()
            },
        )]);
        let agent = resolve("moo", &c).unwrap();
        assert!(!agent.builtin);
        assert_eq!(agent.command, "cowsay");
        assert_eq!(agent.required_runtime(), None);
        assert_eq!(agent.runtime(), Some(Runtime::node(DEFAULT_NODE)));
        assert!(names(&c).contains(&"moo".to_owned()));

        let incomplete = config(&[("x", AgentConfig::default())]);
        assert_eq!(
            resolve("x", &incomplete),
            Err(AgentError::Incomplete {
                name: "x".into(),
                key: "install"
            })
        );
        assert_eq!(
            resolve("nope", &Config::default()),
            Err(AgentError::Unknown("nope".into()))
        );
    }

    #[test]
    fn npm_agents_run_on_a_node_runtime() {
        let agent = resolve("gemini", &Config::default()).unwrap();
        assert_eq!(agent.node.as_deref(), Some("22"));
        assert_eq!(agent.required_runtime(), None);
        assert_eq!(agent.runtime().unwrap().key(), "node@22");
        assert_eq!(agent.min_node, Some(20));
        assert_eq!(agent.own_node_major(), Some(22));
        assert!(!agent.native);
        assert_eq!(agent.needs(Build::Package), Vec::<String>::new());
        // Native builds: opencode and Claude Code, each with a musl build.
        let opencode = resolve("opencode", &Config::default()).unwrap();
        assert!(opencode.native);
        assert_eq!(opencode.needs(Build::Package), ["glibc"]);
        assert_eq!(
            opencode.needs(Build::Musl),
            ["musl", "lib:libstdc++.so.6", "lib:libgcc_s.so.1"]
        );
        let claude = resolve("claude", &Config::default()).unwrap();
        assert!(claude.native);
        assert_eq!(claude.needs(Build::Musl), ["musl"]);
        for agent in [&opencode, &claude] {
            let musl = agent.musl.as_ref().unwrap();
            assert!(
                musl.libraries.iter().all(|l| PROBED_LIBRARIES.contains(l)),
                "{}: the probe looks for every library a musl build needs",
                agent.name
            );
        }
        let pinned = config(&[(
            "codex",
            AgentConfig {
                node: Some("24.1.0".into()),
                ..Default::default()
            },
        )]);
        assert_eq!(
            resolve("codex", &pinned).unwrap().runtime(),
            Some(Runtime::node("24.1.0"))
        );
    }

    #[test]
    fn node_majors() {
        assert_eq!(node_major("22"), Some(22));
        assert_eq!(node_major("v18.19.0"), Some(18));
        assert_eq!(node_major("20.1"), Some(20));
        assert_eq!(node_major("lts"), None);
    }
}
