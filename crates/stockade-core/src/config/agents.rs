//! `[agents.<name>]` and `[tools]`: agent descriptions and overrides of built-in agents, as users
//! write them, validated into [`AgentConfig`] (every field optional: a layer only overrides what
//! it sets). The catalog (`crate::agents`) merges them with the built-in descriptions.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::error::InvalidConfig;
use super::sections::Validator;
use super::source::Origin;
use super::source::Scope;
use super::value::{did_you_mean, is_env_name};

/// `[agents.<name>]` as one file writes it, every field checked for its type.
#[derive(Debug, Default)]
struct AgentSection {
    install: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
    config_dirs: Option<Vec<Spanned<String>>>,
    config_files: Option<Vec<Spanned<String>>>,
    api_keys: Option<Vec<Spanned<String>>>,
    args: Option<Vec<String>>,
    env: Option<Vec<(Spanned<String>, String)>>,
    isolate: Option<bool>,
    login_files: Option<Vec<Spanned<String>>>,
    share_config: Option<Spanned<bool>>,
    skip_permissions: Option<bool>,
    egress: Option<Vec<Spanned<String>>>,
}

/// The keys of an `[agents.<name>]` table, in the order docs/configuration.md lists them.
pub const AGENT_KEYS: &[&str] = &[
    "install",
    "package",
    "command",
    "version",
    "node",
    "config_dirs",
    "config_files",
    "login_files",
    "share_config",
    "api_keys",
    "args",
    "env",
    "isolate",
    "skip_permissions",
    "egress",
];

/// The keys of `[tools]`.
pub const TOOLS_KEYS: &[&str] = &["version_cache_hours"];

/// `[tools]` as merged: what the layers set over the defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ToolsConfig {
    /// How long an answer to "what is the latest version?" is reused, in hours.
    pub version_cache_hours: u64,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            version_cache_hours: DEFAULT_VERSION_CACHE_HOURS,
        }
    }
}

/// The TOML type of a value, as messages name it ("a string", "an integer"…).
pub fn found(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Reads the fields of one table (`[tools]`, `[agents.<name>]`): each value of the wrong type
/// and each unknown key is reported (all of them, not the first), and left out.
struct Fields<'v> {
    v: &'v mut Validator,
    /// `agents.aider`, `tools`: how messages name the table.
    table: String,
}

impl Fields<'_> {
    fn wrong(&mut self, key: &str, value: &Spanned<DeValue<'_>>, expects: &str, help: &str) {
        self.v.error(
            value,
            format!(
                "`{}.{key}`: expected {expects}, found {}",
                self.table,
                found(value.get_ref())
            ),
            "wrong type",
            Some(help.to_owned()),
        );
    }

    fn unknown(&mut self, key: &Spanned<std::borrow::Cow<'_, str>>, known: &[&str]) {
        let name = key.get_ref().as_ref();
        self.v.error(
            key,
            format!("unknown key `{name}` in [{}]", self.table),
            "unknown key",
            Some(match did_you_mean(name, known) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("[{}] knows: {}", self.table, known.join(", ")),
            }),
        );
    }

    fn string(&mut self, key: &str, value: &Spanned<DeValue<'_>>) -> Option<Spanned<String>> {
        match value.get_ref() {
            DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
            _ => {
                self.wrong(key, value, "a string", "put the value in double quotes");
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, value: &Spanned<DeValue<'_>>) -> Option<Spanned<bool>> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(value.span(), *b)),
            _ => {
                self.wrong(
                    key,
                    value,
                    "a boolean",
                    "write true or false, without quotes",
                );
                None
            }
        }
    }

    fn integer(&mut self, key: &str, value: &Spanned<DeValue<'_>>) -> Option<Spanned<i64>> {
        let help = "write an integer without quotes, e.g. 24";
        match value.get_ref() {
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Some(Spanned::new(value.span(), n)),
                    Err(_) => {
                        self.v.error(
                            value,
                            format!("`{}.{key}`: integer out of range", self.table),
                            "out of range",
                            None,
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong(key, value, "an integer", help);
                None
            }
        }
    }

    /// A list of strings: each element of another type is reported.
    fn strings(&mut self, key: &str, value: &Spanned<DeValue<'_>>) -> Option<Vec<Spanned<String>>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong(
                key,
                value,
                "a list of strings",
                "write a list: [\"…\", \"…\"]",
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            if let Some(s) = self.string(key, item) {
                out.push(s);
            }
        }
        Some(out)
    }

    /// A table of strings (`env = { NAME = "value" }`).
    fn string_map(
        &mut self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Option<Vec<(Spanned<String>, String)>> {
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong(
                key,
                value,
                "a table of strings",
                "write a table: { NAME = \"value\" }",
            );
            return None;
        };
        let mut out = Vec::new();
        for (name, item) in table.iter() {
            if let Some(s) = self.string(key, item) {
                out.push((
                    Spanned::new(name.span(), name.get_ref().to_string()),
                    s.into_inner(),
                ));
            }
        }
        Some(out)
    }

    /// The table's entries, or `None` (reported) when the value is not a table.
    fn table<'a>(
        &mut self,
        value: &'a Spanned<DeValue<'a>>,
        help: &str,
    ) -> Option<&'a toml::de::DeTable<'a>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                self.v.error(
                    value,
                    format!("`{}` must be a table, found {}", self.table, found(other)),
                    "wrong type",
                    Some(help.to_owned()),
                );
                None
            }
        }
    }
}

/// One file's `[tools]`: the value it sets. Problems go to `v`.
pub(super) fn read_tools(v: &mut Validator, item: &Spanned<DeValue<'_>>) -> Option<u64> {
    let mut f = Fields {
        v,
        table: "tools".to_owned(),
    };
    let table = f.table(item, "write a [tools] section")?;
    let mut hours = None;
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "version_cache_hours" => {
                let Some(n) = f.integer("version_cache_hours", value) else {
                    continue;
                };
                match u64::try_from(*n.get_ref()) {
                    Ok(h) => hours = Some(h),
                    Err(_) => f.v.error(
                        &n,
                        "`tools.version_cache_hours` must be 0 or more",
                        "negative",
                        Some("0 asks for the latest version every time".to_owned()),
                    ),
                }
            }
            _ => f.unknown(key, TOOLS_KEYS),
        }
    }
    hours
}

/// Where one file describes an agent, and which of its keys it writes (valid or not).
#[derive(Debug, Clone)]
pub struct AgentWritten {
    pub name: String,
    /// The agent's name in its `[agents.<name>]` header.
    pub at: Origin,
    pub keys: Vec<&'static str>,
}

/// One file's `[agents]`: each agent it describes, with only the fields it sets, and where.
/// Problems go to `v`, all of them.
pub(super) fn read_agents(
    v: &mut Validator,
    item: &Spanned<DeValue<'_>>,
    scope: Scope,
) -> (BTreeMap<String, AgentConfig>, Vec<AgentWritten>) {
    let mut f = Fields {
        v,
        table: "agents".to_owned(),
    };
    let Some(agents) = f.table(item, "write one [agents.<name>] section per agent") else {
        return (BTreeMap::new(), Vec::new());
    };
    let mut sections = Vec::new();
    let mut written = Vec::new();
    for (name, value) in agents.iter() {
        let name = Spanned::new(name.span(), name.get_ref().to_string());
        f.table = format!("agents.{}", name.get_ref());
        let Some(table) = f.table(value, "write the agent as a [agents.<name>] section") else {
            continue;
        };
        let mut section = AgentSection::default();
        let mut keys = Vec::new();
        for (key, value) in table.iter() {
            let k = key.get_ref().as_ref();
            keys.extend(AGENT_KEYS.iter().find(|known| **known == k));
            match k {
                "install" => section.install = f.string(k, value),
                "package" => section.package = f.string(k, value),
                "command" => section.command = f.string(k, value),
                "version" => section.version = f.string(k, value),
                "node" => section.node = f.string(k, value),
                "config_dirs" => section.config_dirs = f.strings(k, value),
                "config_files" => section.config_files = f.strings(k, value),
                "api_keys" => section.api_keys = f.strings(k, value),
                "login_files" => section.login_files = f.strings(k, value),
                "egress" => section.egress = f.strings(k, value),
                "args" => {
                    section.args = f
                        .strings(k, value)
                        .map(|list| list.into_iter().map(Spanned::into_inner).collect());
                }
                "env" => section.env = f.string_map(k, value),
                "isolate" => section.isolate = f.boolean(k, value).map(Spanned::into_inner),
                "share_config" => section.share_config = f.boolean(k, value),
                "skip_permissions" => {
                    section.skip_permissions = f.boolean(k, value).map(Spanned::into_inner);
                }
                _ => {
                    // A misspelt key counts as the key meant: its error says so already.
                    keys.extend(
                        did_you_mean(k, AGENT_KEYS)
                            .and_then(|near| AGENT_KEYS.iter().find(|known| **known == near)),
                    );
                    f.unknown(key, AGENT_KEYS);
                }
            }
        }
        if !is_agent_name(name.get_ref()) {
            // Reported by the validation below; not an agent.
            sections.push((name, section));
            continue;
        }
        written.push(AgentWritten {
            name: name.get_ref().clone(),
            at: Origin::file(scope, f.v.path().to_path_buf(), f.v.text(), name.span()),
            keys,
        });
        sections.push((name, section));
    }
    (validate_agents(f.v, sections, scope), written)
}

/// The keys a custom agent (one not in the built-in catalog) needs from some file.
const CUSTOM_AGENT_NEEDS: &[&str] = &["install", "package"];

/// Custom agents that the applied files, together, leave without `install` or `package`:
/// reported where the last of them describes the agent, with "did you mean" when the name is
/// close to a built-in agent's. `files`: the applied file layers, global first.
pub(super) fn incomplete(files: &[&[AgentWritten]]) -> Vec<InvalidConfig> {
    let builtin: Vec<&str> = crate::agents::BUILTIN.iter().map(|b| b.name).collect();
    // Each agent: where the last file describes it, and the keys all of them write.
    let mut seen: BTreeMap<&str, (&Origin, Vec<&str>)> = BTreeMap::new();
    for agent in files.iter().flat_map(|written| written.iter()) {
        let entry = seen
            .entry(agent.name.as_str())
            .or_insert((&agent.at, Vec::new()));
        entry.0 = &agent.at;
        entry.1.extend(&agent.keys);
    }
    let mut errors = Vec::new();
    for (name, (at, keys)) in seen {
        let missing: Vec<String> = CUSTOM_AGENT_NEEDS
            .iter()
            .filter(|k| !keys.contains(k))
            .map(|k| format!("`{k}`"))
            .collect();
        if builtin.contains(&name) || missing.is_empty() {
            continue;
        }
        let needs = "a custom agent needs `install = \"npm\"` (or \"pypi\") and `package`";
        errors.push(at.error(
            format!("custom agent `{name}` has no {}", missing.join(" and no ")),
            "not a built-in agent",
            Some(match did_you_mean(name, &builtin) {
                Some(near) => format!("did you mean [agents.{near}]? Otherwise {needs}"),
                None => format!("{needs} (see docs/agents.md)"),
            }),
        ));
    }
    errors
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
    /// The agent's API and login endpoints (the `agent` egress preset), as `[network] allow`
    /// entries; a layer's list replaces the one below it.
    pub egress: Option<Vec<String>>,
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
            skip_permissions,
            egress
        );
    }
}

/// Default `[tools] version_cache_hours`.
pub const DEFAULT_VERSION_CACHE_HOURS: u64 = 24;

fn validate_agents(
    v: &mut Validator,
    sections: Vec<(Spanned<String>, AgentSection)>,
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
    for (name, section) in sections {
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
        config.egress = section.egress.map(|list| {
            list.into_iter()
                .filter_map(|entry| match crate::egress::parse_rule(entry.get_ref()) {
                    Ok(_) => Some(entry.get_ref().trim().to_ascii_lowercase()),
                    Err(message) => {
                        v.error(
                            &entry,
                            format!("`agents.{}.egress`: {message}", name.get_ref()),
                            "not a host",
                            Some(
                                "write \"host\" (ports 443 and 80), \"*.domain\" (its subdomains) \
                                 or \"host:port\""
                                    .to_owned(),
                            ),
                        );
                        None
                    }
                })
                .collect()
        });
        // What is shared between projects (logins) and the host's own config dirs are the user's
        // call: a project file may not widen them.
        let global_only = |v: &mut Validator, at: Range<usize>, key: &str| {
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
