//! `stockade agents [--json]`: every agent, its pinned and installed versions, the latest known.

use std::collections::BTreeSet;

use serde::Serialize;
use stockade_core::agents::{self, State, VersionCache};
use stockade_core::labels;

use super::check::Mark;
use crate::context::Context;
use crate::exit::CliError;
use crate::ui::{print_json, print_table};

#[derive(Debug, Serialize)]
pub struct AgentRow {
    pub name: String,
    pub builtin: bool,
    /// `npm` or `pypi` (`null` when the agent's description is incomplete).
    pub install: Option<agents::InstallKind>,
    pub package: String,
    /// `latest` or the pinned version.
    pub version: String,
    /// The installed version in use (recorded), if any.
    pub installed: Option<String>,
    pub volume: Option<String>,
    /// Whether the recorded volume exists on the engine.
    pub volume_present: bool,
    /// The newest version seen by the last query (`null`: never asked).
    pub latest_known: Option<String>,
    pub error: Option<String>,
}

pub async fn run(ctx: &Context, json: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let engine = ctx.connect().await?;
    let ns = ctx.namespace.as_str();
    let present: BTreeSet<String> = engine
        .list_volumes(&[
            format!("{}=tools", labels::KIND),
            format!("{}={ns}", labels::NAMESPACE),
        ])
        .await?
        .into_iter()
        .map(|v| v.name)
        .collect();
    let state = State::load(&State::path(&ctx.dirs.state, ns));
    let cache = VersionCache::load(&VersionCache::path(&ctx.dirs.cache, ns));
    let mut rows = Vec::new();
    for name in agents::names(&config) {
        let recorded = state.agents.get(&name);
        let base = AgentRow {
            name: name.clone(),
            builtin: false,
            install: None,
            package: String::new(),
            version: String::new(),
            installed: recorded.map(|r| r.version.clone()),
            volume: recorded.map(|r| r.volume.clone()),
            volume_present: recorded.is_some_and(|r| present.contains(&r.volume)),
            latest_known: None,
            error: None,
        };
        rows.push(match agents::resolve(&name, &config) {
            Ok(agent) => {
                let key = VersionCache::key(agent.install.runtime(), &agent.package, "latest");
                AgentRow {
                    builtin: agent.builtin,
                    install: Some(agent.install),
                    package: agent.package.clone(),
                    version: agent.version.clone(),
                    latest_known: cache.entries.get(&key).map(|c| c.version.clone()),
                    ..base
                }
            }
            Err(e) => AgentRow {
                error: Some(e.to_string()),
                ..base
            },
        });
    }
    if json {
        print_json(&rows)?;
        return Ok(0);
    }
    let table: Vec<[String; 6]> = rows
        .into_iter()
        .map(|row| {
            let installed = match (&row.installed, row.volume_present) {
                (Some(v), true) => v.clone(),
                (Some(v), false) => format!("{v} (volume gone)"),
                (None, _) => "-".to_owned(),
            };
            [
                row.name,
                row.version,
                installed,
                row.latest_known.unwrap_or_else(|| "-".to_owned()),
                format!(
                    "{} ({})",
                    row.package,
                    row.install.map_or("?", agents::InstallKind::as_str)
                ),
                row.error.map(|e| format!("error: {e}")).unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &[
            "AGENT",
            "VERSION",
            "INSTALLED",
            "LATEST KNOWN",
            "PACKAGE",
            "",
        ],
        &table,
    );
    Ok(0)
}

/// One agent in `stockade check`: its runtime and whether the sandbox image has it.
#[derive(Debug, Serialize)]
pub struct AgentCheck {
    pub name: String,
    pub version: String,
    pub installed: Option<String>,
    /// The runtime the image must provide (`null`: the agent brings its own).
    pub runtime: Option<&'static str>,
    /// Whether the image has it (`null`: unknown, e.g. the image is not built yet).
    pub runtime_present: Option<bool>,
    /// The Node.js major that would run it: its own (`node = "…"`) or the image's (`null`:
    /// not Node.js, or not known).
    pub node: Option<u32>,
    /// The oldest Node.js major it runs on, from the catalog (`null`: none declared).
    pub min_node: Option<u32>,
    /// Agents that bring their own Node.js (the official build, linked against glibc): whether
    /// the image has glibc (`null`: not such an agent, or not known).
    pub glibc_present: Option<bool>,
    pub error: Option<String>,
}

impl AgentCheck {
    /// Its line in `stockade check`: the mark, what it says, and the fix.
    pub fn verdict(&self) -> (Mark, String, Option<String>) {
        let name = &self.name;
        if let Some(error) = &self.error {
            return (Mark::Fail, error.clone(), None);
        }
        if let (Some(node), Some(min)) = (self.node, self.min_node)
            && node < min
        {
            return (
                Mark::Fail,
                format!("needs Node.js {min} or newer; it would run on Node.js {node}"),
                Some(format!(
                    "set `[agents.{name}] node = \"22\"` (Node.js installed beside it), or install Node.js {min}+ in the base image"
                )),
            );
        }
        if self.glibc_present == Some(false) {
            return (
                Mark::Fail,
                "its own Node.js (`node`) is the official build, which needs glibc, and the sandbox image has none".to_owned(),
                Some("use a glibc-based image (Debian, Ubuntu, Fedora…) as the base".to_owned()),
            );
        }
        let installed = match &self.installed {
            Some(v) => format!("{v} installed"),
            None => format!("{} (installed on first use)", self.version),
        };
        match (self.runtime, self.runtime_present) {
            (Some(runtime), Some(false)) => (
                Mark::Fail,
                format!("needs {runtime}, which the sandbox image does not have"),
                Some(format!(
                    "install {runtime} in the base image, or (npm agents) set `[agents.{name}] node = \"22\"`"
                )),
            ),
            (Some(runtime), None) => (
                Mark::Warn,
                format!(
                    "{installed}; {runtime} in the sandbox image not checked (no image to look into)"
                ),
                None,
            ),
            _ => (Mark::Ok, installed, None),
        }
    }
}

/// What the probe found in the image agents run on.
#[derive(Default)]
struct Probe {
    runtimes: BTreeSet<String>,
    node: Option<u32>,
    glibc: bool,
}

/// The agents section of `stockade check`. Looks into `image` (when given) with one helper
/// container for the runtimes agents need and the version of its node.
pub async fn check_section(
    engine: Option<&stockade_engine::Engine>,
    ctx: &Context,
    config: &stockade_core::config::Config,
    image: Option<&str>,
) -> Vec<AgentCheck> {
    let mut probe: Option<Probe> = None;
    if let (Some(engine), Some(image)) = (engine, image) {
        let script = "for t in node python3; do command -v \"$t\" >/dev/null 2>&1 && echo \"$t\"; done; \
                      command -v node >/dev/null 2>&1 && echo \"node-version $(node --version 2>/dev/null)\"; \
                      for f in /lib*/ld-linux-* /lib/*/ld-linux-*; do [ -e \"$f\" ] && echo glibc && break; done; true";
        match crate::helper::run(engine, &ctx.namespace, image, script, Vec::new(), false).await {
            Ok(out) if out.ok() => {
                let mut found = Probe::default();
                for line in out.stdout.lines().map(str::trim) {
                    match line.strip_prefix("node-version ") {
                        Some(version) => found.node = agents::node_major(version),
                        None if line == "glibc" => found.glibc = true,
                        None => {
                            found.runtimes.insert(line.to_owned());
                        }
                    }
                }
                probe = Some(found);
            }
            Ok(out) => tracing::debug!("runtime probe: {}", out.tail(3)),
            Err(e) => tracing::debug!("runtime probe: {e}"),
        }
    }
    let state = State::load(&State::path(&ctx.dirs.state, ctx.namespace.as_str()));
    agents::names(config)
        .into_iter()
        .map(|name| {
            let installed = state.agents.get(&name).map(|i| i.version.clone());
            match agents::resolve(&name, config) {
                Ok(agent) => {
                    let runtime = agent.required_runtime();
                    let node = match (agent.install, agent.own_node_major()) {
                        (agents::InstallKind::Npm, Some(own)) => Some(own),
                        (agents::InstallKind::Npm, None) => probe.as_ref().and_then(|p| p.node),
                        (agents::InstallKind::Pypi, _) => None,
                    };
                    AgentCheck {
                        name,
                        version: agent.version.clone(),
                        installed,
                        runtime,
                        runtime_present: runtime
                            .and_then(|r| probe.as_ref().map(|p| p.runtimes.contains(r))),
                        node,
                        min_node: agent.min_node,
                        glibc_present: agent
                            .own_node_major()
                            .and_then(|_| probe.as_ref().map(|p| p.glibc)),
                        error: None,
                    }
                }
                Err(e) => AgentCheck {
                    name,
                    version: String::new(),
                    installed,
                    runtime: None,
                    runtime_present: None,
                    node: None,
                    min_node: None,
                    glibc_present: None,
                    error: Some(e.to_string()),
                },
            }
        })
        .collect()
}
