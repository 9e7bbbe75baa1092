//! `stockade agents [--json]`: every agent, its pinned and installed versions, the latest known.

use std::collections::BTreeSet;

use serde::Serialize;
use stockade_core::agents::{
    self, Build, Libc, LibcProbe, State, Unfit, VersionCache, libc_probe_script,
};
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
    /// A native agent's musl build in use (for musl-based images), if any: its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub musl: Option<String>,
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
            musl: state.musl.get(&name).map(|r| r.version.clone()),
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
            let mut installed = match (&row.installed, row.volume_present) {
                (Some(v), true) => v.clone(),
                (Some(v), false) => format!("{v} (volume gone)"),
                (None, _) => "-".to_owned(),
            };
            if let Some(musl) = &row.musl {
                installed.push_str(&format!(", musl build {musl}"));
            }
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

/// One runtime in `stockade check`: a Node.js line the configured npm agents run on, and the
/// release installed for it.
#[derive(Debug, Serialize)]
pub struct RuntimeCheck {
    /// `node`.
    pub name: &'static str,
    /// The line or release asked for (`22`).
    pub spec: String,
    /// The release installed for it (recorded), if any.
    pub installed: Option<String>,
    pub volume: Option<String>,
    /// Whether the recorded volume exists (`null`: nothing recorded, or the engine is not
    /// reachable).
    pub volume_present: Option<bool>,
    /// The agents that run on it.
    pub agents: Vec<String>,
}

impl RuntimeCheck {
    /// Its line in `stockade check`.
    pub fn verdict(&self) -> (Mark, String, Option<String>) {
        let used_by = format!("for {}", self.agents.join(", "));
        let detail = match (&self.installed, self.volume_present) {
            (Some(version), Some(true) | None) => format!("{version} installed, {used_by}"),
            (Some(version), Some(false)) => {
                format!("installed on first use ({version}'s volume is gone), {used_by}")
            }
            (None, _) => format!("installed on first use, {used_by}"),
        };
        (Mark::Ok, detail, None)
    }
}

/// The runtimes section of `stockade check`: each runtime spec the configured agents use.
pub async fn runtimes_section(
    engine: Option<&stockade_engine::Engine>,
    ctx: &Context,
    config: &stockade_core::config::Config,
) -> Vec<RuntimeCheck> {
    let state = State::load(&State::path(&ctx.dirs.state, ctx.namespace.as_str()));
    let mut specs: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for name in agents::names(config) {
        if let Ok(agent) = agents::resolve(&name, config)
            && let Some(runtime) = agent.runtime()
        {
            specs.entry(runtime.spec).or_default().push(name);
        }
    }
    let mut checks = Vec::new();
    for (spec, users) in specs {
        let runtime = agents::Runtime::node(&spec);
        let recorded = state.runtimes.get(&runtime.key());
        let volume_present = match (engine, recorded) {
            (Some(engine), Some(recorded)) => engine
                .inspect_volume(&recorded.volume)
                .await
                .ok()
                .map(|v| v.is_some()),
            _ => None,
        };
        checks.push(RuntimeCheck {
            name: runtime.name,
            spec,
            installed: recorded.map(|r| r.version.clone()),
            volume: recorded.map(|r| r.volume.clone()),
            volume_present,
            agents: users,
        });
    }
    checks
}

/// One agent in `stockade check`: its runtime and whether the sandbox image has it.
#[derive(Debug, Serialize)]
pub struct AgentCheck {
    pub name: String,
    pub version: String,
    pub installed: Option<String>,
    /// The runtime the image must provide (`python3` for PyPI agents; `null`: stockade brings
    /// it, Node.js for npm agents).
    pub runtime: Option<&'static str>,
    /// Whether the image has it (`null`: unknown, e.g. the image is not built yet).
    pub runtime_present: Option<bool>,
    /// The Node.js major it runs on (npm agents: `[agents.<name>] node`, default 22).
    pub node: Option<u32>,
    /// The oldest Node.js major it runs on, from the catalog (`null`: none declared).
    pub min_node: Option<u32>,
    /// Agents whose command is a native program (opencode, Claude Code): whether the image
    /// has glibc (`null`: not such an agent, or not known).
    pub glibc_present: Option<bool>,
    /// Native agents: the C library of the build that runs on the image (`glibc`: the
    /// package's own, `musl`: its musl build; `null`: not such an agent, not known, or none
    /// can run there).
    pub libc: Option<Libc>,
    pub error: Option<String>,
    #[serde(skip)]
    pub native: bool,
    /// Why a native agent cannot run on the image.
    #[serde(skip)]
    pub unfit: Option<Unfit>,
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
                    "set `[agents.{name}] node = \"22\"` (the Node.js runtime stockade brings for it)"
                )),
            );
        }
        if let Some(unfit) = &self.unfit {
            return (
                Mark::Fail,
                format!("its command is a native program {}", unfit.problem()),
                Some(unfit.fix()),
            );
        }
        let musl = if self.libc == Some(Libc::Musl) {
            "; its musl build"
        } else {
            ""
        };
        let installed = match &self.installed {
            Some(v) => format!("{v} installed{musl}"),
            None => format!("{} (installed on first use{musl})", self.version),
        };
        let unchecked = match (self.runtime, self.runtime_present) {
            (Some(runtime), Some(false)) => {
                return (
                    Mark::Fail,
                    format!("needs {runtime}, which the sandbox image does not have"),
                    Some(format!("install {runtime} in the base image")),
                );
            }
            (Some(runtime), None) => Some(runtime),
            _ if self.native && self.glibc_present.is_none() => Some("the C library"),
            _ => None,
        };
        match unchecked {
            Some(what) => (
                Mark::Warn,
                format!(
                    "{installed}; {what} in the sandbox image not checked (no image to look into)"
                ),
                None,
            ),
            None => (Mark::Ok, installed, None),
        }
    }
}

/// What the probe found in the image agents run on.
struct Probe {
    runtimes: BTreeSet<String>,
    libc: LibcProbe,
}

/// The agents section of `stockade check`. Looks into `image` (when given) with one helper
/// container ([`crate::helper::look`]: the image may be hostile) for the runtimes agents need
/// from it (python3) and for its C library (the launch's libc probe).
pub async fn check_section(
    engine: Option<&stockade_engine::Engine>,
    ctx: &Context,
    config: &stockade_core::config::Config,
    image: Option<&str>,
) -> Vec<AgentCheck> {
    let mut probe: Option<Probe> = None;
    if let (Some(engine), Some(image)) = (engine, image) {
        let script = format!(
            "command -v python3 >/dev/null 2>&1 && echo python3; {}",
            libc_probe_script()
        );
        match crate::helper::look(engine, &ctx.namespace, image, &script).await {
            Ok(Some(out)) if out.ok() => {
                probe = Some(Probe {
                    runtimes: out
                        .stdout
                        .lines()
                        .map(str::trim)
                        .filter(|line| *line == "python3")
                        .map(str::to_owned)
                        .collect(),
                    libc: LibcProbe::parse(&out.stdout),
                });
            }
            Ok(Some(out)) => tracing::debug!("runtime probe: {}", out.tail(3)),
            Ok(None) => tracing::debug!("runtime probe: no answer in time"),
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
                    let build = probe
                        .as_ref()
                        .filter(|_| agent.native)
                        .map(|p| agent.build_for(&p.libc));
                    // The musl build's install is recorded apart from the package's.
                    let installed = match build {
                        Some(Ok(Build::Musl)) => state.musl.get(&name).map(|i| i.version.clone()),
                        _ => installed,
                    };
                    AgentCheck {
                        name,
                        version: agent.version.clone(),
                        installed,
                        runtime,
                        runtime_present: runtime
                            .and_then(|r| probe.as_ref().map(|p| p.runtimes.contains(r))),
                        node: agent.own_node_major(),
                        min_node: agent.min_node,
                        glibc_present: agent
                            .native
                            .then(|| probe.as_ref().map(|p| p.libc.glibc))
                            .flatten(),
                        libc: match &build {
                            Some(Ok(Build::Package)) => Some(Libc::Glibc),
                            Some(Ok(Build::Musl)) => Some(Libc::Musl),
                            _ => None,
                        },
                        error: None,
                        native: agent.native,
                        unfit: build.and_then(Result::err),
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
                    libc: None,
                    error: Some(e.to_string()),
                    native: false,
                    unfit: None,
                },
            }
        })
        .collect()
}
