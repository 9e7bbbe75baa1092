//! `stockade agents [--json]`: every agent, its pinned and installed versions, the latest known.

use std::collections::BTreeSet;

use serde::Serialize;
use stockade_core::agents::{self, State, VersionCache};
use stockade_core::labels;

use crate::context::Context;
use crate::exit::CliError;

#[derive(Debug, Serialize)]
pub struct AgentRow {
    pub name: String,
    pub builtin: bool,
    pub install: String,
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
            install: String::new(),
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
                    install: format!("{:?}", agent.install).to_lowercase(),
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
        let text = serde_json::to_string_pretty(&rows)
            .map_err(|e| CliError::other(format!("cannot render JSON: {e}"), None))?;
        println!("{text}");
        return Ok(0);
    }
    println!(
        "{:<12} {:<10} {:<14} {:<14} {:<30}",
        "AGENT", "VERSION", "INSTALLED", "LATEST KNOWN", "PACKAGE"
    );
    for row in rows {
        let installed = match (&row.installed, row.volume_present) {
            (Some(v), true) => v.clone(),
            (Some(v), false) => format!("{v} (volume gone)"),
            (None, _) => "-".to_owned(),
        };
        println!(
            "{:<12} {:<10} {:<14} {:<14} {:<30}{}",
            row.name,
            row.version,
            installed,
            row.latest_known.as_deref().unwrap_or("-"),
            format!("{} ({})", row.package, row.install),
            row.error
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
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
    pub error: Option<String>,
}

/// The agents section of `stockade check`. Looks into `image` (when given) with one helper
/// container for the runtimes agents need.
pub async fn check_section(
    engine: Option<&stockade_engine::Engine>,
    ctx: &Context,
    config: &stockade_core::config::Config,
    image: Option<&str>,
) -> Vec<AgentCheck> {
    let mut present: Option<BTreeSet<String>> = None;
    if let (Some(engine), Some(image)) = (engine, image) {
        let script = "for t in node python3; do command -v \"$t\" >/dev/null 2>&1 && echo \"$t\"; done; true";
        match crate::helper::run(engine, &ctx.namespace, image, script, Vec::new(), false).await {
            Ok(out) if out.ok() => {
                present = Some(out.stdout.lines().map(|l| l.trim().to_owned()).collect());
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
                    AgentCheck {
                        name,
                        version: agent.version.clone(),
                        installed,
                        runtime,
                        runtime_present: runtime
                            .and_then(|r| present.as_ref().map(|p| p.contains(r))),
                        error: None,
                    }
                }
                Err(e) => AgentCheck {
                    name,
                    version: String::new(),
                    installed,
                    runtime: None,
                    runtime_present: None,
                    error: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// Human lines for `stockade check`.
pub fn print_check(ui: &crate::ui::Ui, checks: &[AgentCheck]) {
    for check in checks {
        let (ok, detail) = match (&check.error, check.runtime, check.runtime_present) {
            (Some(e), _, _) => (false, e.clone()),
            (None, Some(runtime), Some(false)) => (
                false,
                format!(
                    "needs {runtime}, which the sandbox image does not have: install {runtime} in the base image, or (npm agents) set `[agents.{}] node = \"22\"`",
                    check.name
                ),
            ),
            (None, _, _) => (
                true,
                match &check.installed {
                    Some(v) => format!("{} installed", v),
                    None => format!("{} (installed on first use)", check.version),
                },
            ),
        };
        let mark = if ok {
            ui.paint("32", "ok  ")
        } else {
            ui.paint("31", "FAIL")
        };
        println!("{mark} Agent {}: {detail}", check.name);
    }
}
