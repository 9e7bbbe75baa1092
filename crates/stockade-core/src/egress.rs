//! Egress policy: which hosts a sandbox under `egress = "allowlist"` may reach, resolved from
//! `[network]` (its `allow` entries and `presets`) and the running agent's own endpoints. The
//! gateway (crates/stockade/src/gateway) enforces it; this module only decides it.
//!
//! An entry is `host`, `*.domain` (subdomains only, not the apex), `host:port`, or an IP address
//! (with or without a port). Without a port it allows 443 and 80. `!entry` in a later layer
//! removes an entry (or, in `presets`, a preset) that a lower layer gave.

use std::sync::LazyLock;

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
    if host.starts_with("*.") && !name.contains('.') {
        return Err(format!(
            "{entry:?} would allow every name under .{name}: name a domain, e.g. `*.example.com`"
        ));
    }
    Ok(Rule {
        host: host.to_ascii_lowercase(),
        ports,
    })
}

/// One preset: a named list of entries kept as data (`egress/presets.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    /// What it is for, one line (for `check` and docs).
    pub description: String,
    /// Entries as in `[network] allow`.
    pub hosts: Vec<String>,
}

/// The presets kept as data, in file order (`agent` is not here: each agent of the catalog lists
/// its own endpoints, `Agent::egress`).
pub static PRESETS: LazyLock<Vec<Preset>> = LazyLock::new(|| {
    #[derive(Deserialize)]
    struct File {
        preset: Vec<Preset>,
    }
    // Built into the binary, not read at run time: a test parses it, so it cannot fail in a
    // build that passed its tests. Were it broken, no preset would exist (nothing allowed by a
    // preset), which fails closed.
    toml::from_str::<File>(include_str!("egress/presets.toml"))
        .map(|f| f.preset)
        .unwrap_or_default()
});

/// The name of the preset that stands for the running agent's own endpoints.
pub const AGENT_PRESET: &str = "agent";

/// The hosts of a preset (`None`: no such preset). `agent` is the running agent's own list, so
/// it has none here.
pub fn preset(name: &str) -> Option<&'static [String]> {
    PRESETS
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.hosts.as_slice())
}

/// Every preset's name: `agent`, then the data file's.
pub fn preset_names() -> Vec<&'static str> {
    std::iter::once(AGENT_PRESET)
        .chain(PRESETS.iter().map(|p| p.name.as_str()))
        .collect()
}

/// Whether `!removed` removes `entry`: the same entry, or, for a host written without a port,
/// any entry of that host (`!github.com` also drops `github.com:22`).
fn removes(removed: &str, entry: &str) -> bool {
    entry == removed
        || (!removed.contains(':')
            && entry
                .rsplit_once(':')
                .is_some_and(|(host, port)| host == removed && port.parse::<u16>().is_ok()))
}

/// Apply `!entry` removals: an entry is dropped when a later `!entry` names it (`check` shows
/// the `allow` entries left this way).
pub fn without_removed(entries: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for entry in entries {
        match entry.strip_prefix('!') {
            Some(removed) => out.retain(|e| !removes(removed.trim(), e)),
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
            other => hosts.extend(preset(other).unwrap_or(&[]).iter().cloned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;

    fn allows(policy: &Policy, host: &str) -> bool {
        policy.rules.iter().any(|r| r.host == host)
    }

    #[test]
    fn presets_are_valid_data_and_the_docs_list_every_host() {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["packages", "git-hosts"]);
        assert_eq!(preset_names(), ["agent", "packages", "git-hosts"]);
        for name in DEFAULT_PRESETS {
            assert!(preset_names().contains(name), "{name}");
        }
        let doc = include_str!("../../../docs/egress.md");
        for p in PRESETS.iter() {
            assert!(!p.hosts.is_empty() && !p.description.is_empty(), "{p:?}");
            for host in &p.hosts {
                assert!(parse_rule(host).is_ok(), "{}: {host}", p.name);
                assert!(
                    doc.contains(&format!("`{host}`")),
                    "docs/egress.md does not list {host} ({})",
                    p.name
                );
            }
        }
        for agent in crate::agents::BUILTIN {
            for host in agent.egress {
                assert!(parse_rule(host).is_ok(), "{}: {host}", agent.name);
                assert!(
                    doc.contains(&format!("`{host}`")),
                    "docs/egress.md does not list {host} ({})",
                    agent.name
                );
            }
        }
    }

    #[test]
    fn the_issue_s_presets_hold_their_registries_and_git_hosts() {
        let packages = preset("packages").unwrap_or_default();
        for host in [
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
            "deb.debian.org",
            "security.debian.org",
            "archive.ubuntu.com",
            "security.ubuntu.com",
            "dl-cdn.alpinelinux.org",
        ] {
            assert!(packages.iter().any(|h| h == host), "packages: {host}");
        }
        let git = preset("git-hosts").unwrap_or_default();
        for host in [
            "github.com",
            "api.github.com",
            "raw.githubusercontent.com",
            "objects.githubusercontent.com",
            "codeload.github.com",
            "gitlab.com",
            "bitbucket.org",
            "api.bitbucket.org",
        ] {
            assert!(git.iter().any(|h| h == host), "git-hosts: {host}");
        }
        assert_eq!(preset("agent"), None);
        assert_eq!(preset("nope"), None);
    }

    #[test]
    fn entries_parse_as_the_docs_say() {
        let rule = |e: &str| parse_rule(e).map(|r| (r.host, r.ports));
        assert_eq!(
            rule("Example.COM"),
            Ok(("example.com".into(), vec![443, 80]))
        );
        assert_eq!(
            rule("git.example.com:22"),
            Ok(("git.example.com".into(), vec![22]))
        );
        assert_eq!(
            rule("*.example.com"),
            Ok(("*.example.com".into(), vec![443, 80]))
        );
        assert_eq!(rule("10.1.2.3:8443"), Ok(("10.1.2.3".into(), vec![8443])));
        assert_eq!(rule("[fd00::1]:8443"), Ok(("fd00::1".into(), vec![8443])));
        for bad in [
            "",
            "*",
            "*.com",
            "bad host",
            "-x.example.com",
            "x.example.com:0",
            "a:b",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_built_in_agent_s_policy_holds_its_api_and_login_endpoints() {
        let expected: &[(&str, &[&str])] = &[
            (
                "claude",
                &[
                    "api.anthropic.com",
                    "console.anthropic.com",
                    "claude.ai",
                    "platform.claude.com",
                    "statsig.anthropic.com",
                ],
            ),
            (
                "codex",
                &["api.openai.com", "auth.openai.com", "chatgpt.com"],
            ),
            (
                "gemini",
                &[
                    "generativelanguage.googleapis.com",
                    "cloudcode-pa.googleapis.com",
                    "oauth2.googleapis.com",
                    "accounts.google.com",
                ],
            ),
            (
                "opencode",
                &[
                    "models.dev",
                    "opencode.ai",
                    "app.opencode.ai",
                    "api.anthropic.com",
                    "api.openai.com",
                    "openrouter.ai",
                ],
            ),
        ];
        let config = Config::default();
        assert_eq!(
            crate::agents::BUILTIN.len(),
            expected.len(),
            "a new built-in agent needs its endpoints here"
        );
        for (name, hosts) in expected {
            let agent = match crate::agents::resolve(name, &config) {
                Ok(agent) => agent,
                Err(e) => panic!("{name}: {e}"),
            };
            let policy = policy(&config.network, &agent.egress);
            assert_eq!(policy.presets, DEFAULT_PRESETS);
            for host in *hosts {
                assert!(allows(&policy, host), "{name}: {host} in {policy:#?}");
            }
            // With the `agent` preset removed, none of them is left.
            let mut network = config.network.clone();
            network.presets.push("!agent".into());
            let without = super::policy(&network, &agent.egress);
            for host in agent.egress.iter().filter(|h| !h.contains("github")) {
                assert!(!allows(&without, host), "{name}: {host}");
            }
        }
    }

    #[test]
    fn removals_drop_presets_and_hosts_of_lower_layers_and_a_later_entry_adds_back() {
        let mut config = Config::default();
        config.network.presets = vec!["!packages".into()];
        config.network.allow = vec![
            "a.example.com".into(),
            "!a.example.com".into(),
            "!github.com".into(),
            "b.example.com:8443".into(),
        ];
        let p = policy(&config.network, &["api.anthropic.com".into()]);
        assert_eq!(p.presets, ["agent", "git-hosts"]);
        assert!(!allows(&p, "registry.npmjs.org"));
        assert!(!allows(&p, "a.example.com"));
        // `!github.com` drops every entry of the host, `github.com:22` included.
        assert!(!allows(&p, "github.com"));
        assert!(allows(&p, "api.github.com"));
        assert!(allows(&p, "api.anthropic.com"));
        assert!(p.rules.contains(&Rule {
            host: "b.example.com".into(),
            ports: vec![8443]
        }));
        config.network.presets.push("packages".into());
        let p = policy(&config.network, &[]);
        assert_eq!(p.presets, ["agent", "git-hosts", "packages"]);
        assert!(allows(&p, "registry.npmjs.org"));
    }
}
