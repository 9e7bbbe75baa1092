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
