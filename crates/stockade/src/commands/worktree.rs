//! `stockade worktree list [--json]` and `stockade worktree rm NAME [--force]`: the worktrees
//! stockade made for this repository (`--worktree NAME`). Git runs in helpers, never on the
//! host (crate::worktree).

use serde::Serialize;
use stockade_core::labels;
use stockade_engine::{ContainerSummary, Engine};

use crate::context::Context;
use crate::exit::CliError;
use crate::launch::{self, Prepared};
use crate::sessions;
use crate::ui::{print_json, print_table};
use crate::worktree::{self, Record, Records};

/// One worktree as `list --json` prints it.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    branch: String,
    path: String,
    /// `clean`, `dirty`, `missing` (the directory is gone) or `broken` (git cannot read it).
    state: &'static str,
    /// Files with uncommitted changes (`git status --porcelain` lines).
    changes: usize,
    /// The sessions of the sandboxes running in it.
    sandboxes: Vec<String>,
}

/// The repository's recorded worktrees, read once.
struct Found {
    prepared: Prepared,
    records: Vec<Record>,
}

fn found(ctx: &Context) -> Result<Found, CliError> {
    let prepared = launch::prepare(ctx, Vec::new())?;
    let repository = worktree::repository(ctx, &prepared.project)?;
    let records = Records::new(ctx).of(&repository);
    Ok(Found { prepared, records })
}

/// The sessions of the sandboxes running in `record`'s worktree.
fn running_in(all: &[ContainerSummary], record: &Record) -> Vec<String> {
    let path = record.path.display().to_string();
    let mut names: Vec<String> = all
        .iter()
        .filter(|c| c.state == "running")
        .filter(|c| c.labels.get(labels::PROJECT) == Some(&path))
        .map(|c| {
            c.labels
                .get(labels::SESSION)
                .cloned()
                .unwrap_or_else(|| c.name.clone())
        })
        .collect();
    names.sort();
    names
}

async fn sandboxes(engine: &Engine, ctx: &Context) -> Result<Vec<ContainerSummary>, CliError> {
    sessions::list(engine, &ctx.namespace, None).await
}

pub async fn list(ctx: &Context, json: bool) -> Result<u8, CliError> {
    let Found { prepared, records } = found(ctx)?;
    if records.is_empty() {
        if json {
            print_json(&Vec::<Row>::new())?;
        } else {
            ctx.ui.info(
                "No worktrees made by stockade for this repository; `stockade claude --worktree \
                 NAME` makes one",
            );
        }
        return Ok(0);
    }
    let engine = ctx.connect().await?;
    let git = worktree::git(&engine, ctx, &prepared, false).await?;
    let states = git.status(&records).await?;
    let all = sandboxes(&engine, ctx).await?;
    let rows: Vec<Row> = records
        .iter()
        .zip(states)
        .map(|(record, state)| {
            let (state, changes) = match state {
                Ok(lines) if lines.is_empty() => ("clean", 0),
                Ok(lines) => ("dirty", lines.len()),
                Err(why) if why == "missing" => ("missing", 0),
                Err(_) => ("broken", 0),
            };
            Row {
                name: record.name.clone(),
                branch: record.branch.clone(),
                path: record.path.display().to_string(),
                state,
                changes,
                sandboxes: running_in(&all, record),
            }
        })
        .collect();
    if json {
        print_json(&rows)?;
        return Ok(0);
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            let changes = match row.state {
                "dirty" => format!("{} changed", row.changes),
                other => other.to_owned(),
            };
            let sandboxes = if row.sandboxes.is_empty() {
                "-".to_owned()
            } else {
                row.sandboxes.join(",")
            };
            [
                row.name.clone(),
                row.branch.clone(),
                changes,
                sandboxes,
                row.path.clone(),
            ]
        })
        .collect();
    print_table(&["NAME", "BRANCH", "CHANGES", "SANDBOXES", "PATH"], &table);
    Ok(0)
}

pub async fn rm(ctx: &Context, name: &str, force: bool) -> Result<u8, CliError> {
    worktree::validate_name(name)?;
    let Found { prepared, records } = found(ctx)?;
    let Some(record) = records.into_iter().find(|r| r.name == name) else {
        return Err(CliError::other(
            format!("stockade made no worktree named {name} for this repository"),
            Some("`stockade worktree list` shows the ones it made"),
        ));
    };
    let engine = ctx.connect().await?;
    let running = running_in(&sandboxes(&engine, ctx).await?, &record);
    if !running.is_empty() {
        return Err(CliError::refused(
            "worktree-busy",
            format!(
                "a sandbox runs in the worktree {name} ({}): {}",
                record.path.display(),
                running.join(", ")
            ),
            Some(&format!(
                "stop it first (`stockade stop {}`), then remove the worktree",
                running.join(" ")
            )),
        ));
    }
    let git = worktree::git(&engine, ctx, &prepared, false).await?;
    if !force
        && let Some(Ok(lines)) = git.status(std::slice::from_ref(&record)).await?.pop()
        && !lines.is_empty()
    {
        let listed: Vec<String> = lines.iter().map(|l| format!("  {l}")).collect();
        return Err(CliError::refused(
            "worktree-dirty",
            format!(
                "the worktree {name} ({}) has uncommitted changes:\n{}",
                record.path.display(),
                listed.join("\n")
            ),
            Some(&format!(
                "commit them on its branch {}, or pass --force to discard them",
                record.branch
            )),
        ));
    }
    git.remove(&record, force).await?;
    ctx.ui.success(&format!(
        "Removed the worktree {name} ({}); its branch {} is kept",
        record.path.display(),
        record.branch
    ));
    Ok(0)
}
