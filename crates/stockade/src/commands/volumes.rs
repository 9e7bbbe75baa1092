//! `stockade volumes [--json]` and `stockade volumes prune`: agent tools volumes, runtime volumes
//! and per-project home volumes. Prune never removes a volume a container uses (and the engine refuses anyway).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use stockade_core::agents::State;
use stockade_core::labels;
use stockade_engine::{Engine, Removal, VolumeInfo};

use crate::cli::VolumesAction;
use crate::context::Context;
use crate::exit::CliError;
use crate::ui::{print_json, print_table};

/// What a stockade volume holds (its `io.stockade.kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    /// An agent's installed tools, one volume per version.
    Tools,
    /// A runtime (Node.js), one volume per release.
    Runtime,
    /// A project's home directory.
    Home,
}

impl VolumeKind {
    fn of(label: &str) -> Option<Self> {
        match label {
            "tools" => Some(Self::Tools),
            "runtime" => Some(Self::Runtime),
            "home" => Some(Self::Home),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Runtime => "runtime",
            Self::Home => "home",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VolumeRow {
    pub name: String,
    pub kind: VolumeKind,
    /// Tools: the agent and version; runtime: the runtime (`node`) and release; home: the
    /// project path.
    pub agent: Option<String>,
    pub version: Option<String>,
    pub project: Option<String>,
    /// Tools: `musl` for a native agent's musl build (absent: the package's own install).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libc: Option<String>,
    /// Mounted by a container (running or not).
    pub in_use: bool,
    /// Tools: the version an agent currently uses (recorded on this host), or the newest
    /// install of its agent on the engine (another user's current version, likely).
    pub current: bool,
    pub created: String,
}

impl VolumeRow {
    /// Tools and runtimes: `claude 2.1.332`, `claude 2.1.332 (musl)`, `node 22.23.3`.
    fn what(&self) -> String {
        let mut what = format!(
            "{} {}",
            self.agent.as_deref().unwrap_or("?"),
            self.version.as_deref().unwrap_or("?")
        );
        if let Some(libc) = &self.libc {
            what.push_str(&format!(" ({libc})"));
        }
        what
    }

    /// Why prune removes it.
    pub fn reason(&self) -> String {
        match self.kind {
            VolumeKind::Tools | VolumeKind::Runtime => {
                format!("{}: not the current version", self.what())
            }
            VolumeKind::Home => format!(
                "home of {}: the project is gone",
                self.project.as_deref().unwrap_or("?")
            ),
        }
    }

    /// Removable by prune: not mounted, and either an agent version no longer current or the
    /// home of a project directory that no longer exists.
    pub fn unused(&self) -> bool {
        !self.in_use
            && match self.kind {
                VolumeKind::Tools | VolumeKind::Runtime => !self.current,
                VolumeKind::Home => self
                    .project
                    .as_deref()
                    .is_some_and(|p| !Path::new(p).exists()),
            }
    }
}

pub async fn run(ctx: &Context, json: bool, action: Option<VolumesAction>) -> Result<u8, CliError> {
    let engine = ctx.connect().await?;
    match action {
        None => {
            let rows = list(&engine, ctx).await?;
            if json {
                print_json(&rows)?;
            } else {
                let table: Vec<[String; 5]> = rows
                    .into_iter()
                    .map(|row| {
                        let what = match row.kind {
                            VolumeKind::Tools | VolumeKind::Runtime => row.what(),
                            VolumeKind::Home => row.project.clone().unwrap_or_default(),
                        };
                        [
                            row.name,
                            row.kind.as_str().to_owned(),
                            if row.in_use { "yes" } else { "no" }.to_owned(),
                            if row.current { "yes" } else { "-" }.to_owned(),
                            what,
                        ]
                    })
                    .collect();
                print_table(&["VOLUME", "KIND", "IN USE", "CURRENT", "WHAT"], &table);
            }
            Ok(0)
        }
        Some(VolumesAction::Prune) => {
            let removed = prune_unused_volumes(&engine, ctx).await?;
            if removed.is_empty() {
                ctx.ui.info("No unused volumes");
            }
            for name in &removed {
                println!("{name}");
            }
            Ok(0)
        }
    }
}

/// stockade's volumes in this namespace, with use.
pub async fn list(engine: &Engine, ctx: &Context) -> Result<Vec<VolumeRow>, CliError> {
    let ns = ctx.namespace.as_str();
    let volumes = engine
        .list_volumes(&[format!("{}={ns}", labels::NAMESPACE)])
        .await?;
    let in_use = engine.volumes_in_use().await?;
    let state = State::load(&State::path(&ctx.dirs.state, ns));
    let mut current: BTreeSet<&str> = state
        .agents
        .values()
        .chain(state.musl.values())
        .chain(state.runtimes.values())
        .map(|i| i.volume.as_str())
        .collect();
    // The newest install of each agent (and runtime) counts as current too: the state file is
    // per user, the volumes are shared by everyone using the engine. An agent's musl build is
    // a line of its own (a user on a musl base and one on a glibc base each keep theirs).
    let mut newest: std::collections::BTreeMap<(&str, &str, &str), &VolumeInfo> =
        Default::default();
    for v in &volumes {
        let name = match v.labels.get(labels::KIND).map(String::as_str) {
            Some("tools") => v.labels.get(labels::AGENT),
            Some("runtime") => v.labels.get(labels::RUNTIME),
            _ => continue,
        };
        if let Some(name) = name {
            let kind = v.labels.get(labels::KIND).map_or("", String::as_str);
            let libc = v.labels.get(labels::LIBC).map_or("", String::as_str);
            let entry = newest.entry((kind, name.as_str(), libc)).or_insert(v);
            if (&v.created, &v.name) > (&entry.created, &entry.name) {
                *entry = v;
            }
        }
    }
    let newest: BTreeSet<String> = newest.values().map(|v| v.name.clone()).collect();
    current.extend(newest.iter().map(String::as_str));
    let current: BTreeSet<String> = current.into_iter().map(str::to_owned).collect();
    Ok(volumes
        .into_iter()
        .filter_map(|v| row(v, &in_use, &current))
        .collect())
}

fn row(v: VolumeInfo, in_use: &BTreeSet<String>, current: &BTreeSet<String>) -> Option<VolumeRow> {
    let kind = VolumeKind::of(v.labels.get(labels::KIND)?)?;
    Some(VolumeRow {
        in_use: in_use.contains(&v.name),
        current: current.contains(&v.name),
        agent: v
            .labels
            .get(labels::AGENT)
            .or_else(|| v.labels.get(labels::RUNTIME))
            .cloned(),
        version: v
            .labels
            .get(labels::AGENT_VERSION)
            .or_else(|| v.labels.get(labels::RUNTIME_VERSION))
            .cloned(),
        project: v.labels.get(labels::PROJECT).cloned(),
        libc: v.labels.get(labels::LIBC).cloned(),
        created: v.created,
        kind,
        name: v.name,
    })
}

/// The volumes prune would remove (see [`VolumeRow::unused`]).
pub async fn unused(engine: &Engine, ctx: &Context) -> Result<Vec<VolumeRow>, CliError> {
    Ok(list(engine, ctx)
        .await?
        .into_iter()
        .filter(VolumeRow::unused)
        .collect())
}

/// Remove unused volumes; returns their names. `stockade prune` calls this too.
pub async fn prune_unused_volumes(engine: &Engine, ctx: &Context) -> Result<Vec<String>, CliError> {
    let rows = unused(engine, ctx).await?;
    remove(engine, rows).await
}

/// Remove these volumes, keeping any a container started to use meanwhile.
pub async fn remove(engine: &Engine, rows: Vec<VolumeRow>) -> Result<Vec<String>, CliError> {
    let mut removed = Vec::new();
    for row in rows {
        match engine.remove_volume(&row.name).await? {
            Removal::Removed | Removal::Missing => removed.push(row.name),
            // In use after all (a container started meanwhile): keep it.
            Removal::InUse(why) => tracing::debug!("kept {}: {why}", row.name),
        }
    }
    Ok(removed)
}
