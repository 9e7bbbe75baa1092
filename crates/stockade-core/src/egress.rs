//! Egress policy: which hosts a sandbox under `egress = "allowlist"` may reach, resolved from
//! `[network]` (its `allow` entries and `presets`) and the running agent's own endpoints. The
//! gateway (crates/stockade/src/gateway) enforces it; this module only decides it.
//!
//! An entry is `host`, `*.domain` (subdomains only, not the apex), `host:port`, or an IP address
//! (with or without a port). Without a port it allows 443 and 80. `!entry` in a later layer
//! removes an entry (or, in `presets`, a preset) that a lower layer gave.

use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;

/// The presets `[network] presets` starts from.
pub const DEFAULT_PRESETS: &[&str] = &["agent", "packages", "git-hosts"];

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// A lowercase host name, `*.domain`, or an IP address as written.
    pub host: String,
    /// The ports allowed; an entry without a port allows 443 and 80.
    pub ports: Vec<u16>,
}

/// What a sandbox may reach: the gateway's input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The presets in effect, in order (for `check` and the dry run).
    pub presets: Vec<String>,
    /// Every allowed destination: the presets' hosts, then `allow`.
    pub rules: Vec<Rule>,
    /// Names admitted although they resolve to private addresses (`allow_private`).
    pub private: Vec<Rule>,
}

/// Parse one entry (`host`, `*.domain`, `host:port`, an IP address, `[v6]:port`).
pub fn parse_rule(entry: &str) -> Result<Rule, String> {
    let entry = entry.trim();
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => (host, Some(port)),
        _ => (entry, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ports = match port {
        None => vec![443, 80],
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => vec![p],
            _ => {
                return Err(format!(
                    "{entry:?}: the port {p:?} is not a number from 1 to 65535"
                ));
            }
        },
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(Rule {
            host: host.to_owned(),
            ports,
        });
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(format!(
            "{entry:?} is not a host name: write `host`, `*.domain` or `host:port`"
        ));
    }
    Ok(Rule {
        host: host.to_ascii_lowercase(),
        ports,
    })
}

/// The hosts of a preset (`None`: no such preset). `agent` is the running agent's own list.
pub fn preset(name: &str) -> Option<&'static [&'static str]> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

/// The presets kept as data (`agent` is not here: each agent lists its own endpoints).
pub const PRESETS: &[(&str, &[&str])] = &[
    (
        "packages",
        &[
            "registry.npmjs.org",
            "registry.yarnpkg.com",
            "pypi.org",
            "files.pythonhosted.org",
            "crates.io",
            "index.crates.io",
            "static.crates.io",
            "proxy.golang.org",
            "sum.golang.org",
            "rubygems.org",
            "repo.maven.apache.org",
            "repo1.maven.org",
            "deb.debian.org",
            "security.debian.org",
            "archive.ubuntu.com",
            "security.ubuntu.com",
            "dl-cdn.alpinelinux.org",
        ],
    ),
    (
        "git-hosts",
        &[
            "github.com",
            "api.github.com",
            "raw.githubusercontent.com",
            "objects.githubusercontent.com",
            "codeload.github.com",
            "gitlab.com",
            "bitbucket.org",
            "api.bitbucket.org",
        ],
    ),
];

/// Apply `!entry` removals: an entry is dropped when a later `!entry` names it.
fn without_removed(entries: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for entry in entries {
        match entry.strip_prefix('!') {
            Some(removed) => out.retain(|e| *e != removed.trim()),
            None if !out.contains(&entry.as_str()) => out.push(entry),
            None => {}
        }
    }
    out
}

/// The policy of a sandbox running `agent_hosts`' agent under `network`.
pub fn policy(network: &NetworkConfig, agent_hosts: &[String]) -> Policy {
    let mut presets: Vec<String> = DEFAULT_PRESETS.iter().map(|p| (*p).to_owned()).collect();
    presets.extend(network.presets.iter().cloned());
    let presets: Vec<String> = without_removed(&presets)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut hosts: Vec<String> = Vec::new();
    for name in &presets {
        match name.as_str() {
            "agent" => hosts.extend(agent_hosts.iter().cloned()),
            other => hosts.extend(preset(other).unwrap_or(&[]).iter().map(|h| (*h).to_owned())),
        }
    }
    hosts.extend(network.allow.iter().cloned());
    let mut rules: Vec<Rule> = Vec::new();
    for entry in without_removed(&hosts) {
        if let Ok(rule) = parse_rule(entry)
            && !rules.contains(&rule)
        {
            rules.push(rule);
        }
    }
    let private = without_removed(&network.allow_private)
        .into_iter()
        .filter_map(|e| parse_rule(e).ok())
        .collect();
    Policy {
        presets,
        rules,
        private,
    }
}
