//! `stockade prune [--dry-run] [-y]`: remove stockade's containers that have stopped (a sandbox
//! whose engine went away mid-run), orphaned stockade images and unused volumes (old agent
//! versions, homes of deleted projects) and deleted projects' egress networks — never an image a
//! container uses (the engine is never asked to force).

use std::collections::HashSet;

use stockade_core::labels;
use stockade_engine::{ContainerSummary, Engine, Removal};

use crate::context::Context;
use crate::exit::CliError;
use crate::inventory::{self, OwnedImage, human_size};
use crate::ui::confirm;

pub async fn run(ctx: &Context, dry_run: bool, yes: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let engine = ctx.connect().await?;
    let stopped = stopped_containers(&engine, ctx).await?;
    let leaving: HashSet<String> = stopped.iter().map(|c| c.id.clone()).collect();
    let images = inventory::images_without(&engine, ctx, &config, &leaving).await?;
    let (in_use, orphaned): (Vec<&OwnedImage>, Vec<&OwnedImage>) = images
        .iter()
        .filter(|image| image.orphaned.is_some())
        .partition(|image| image.in_use);
    for image in &in_use {
        ctx.ui.info(&format!(
            "Keeping {} ({}): a container uses it",
            describe(image),
            image.state()
        ));
    }
    let volumes = super::volumes::unused(&engine, ctx).await?;
    let networks = crate::gateway::orphaned_networks(&engine, ctx).await?;
    if orphaned.is_empty() && volumes.is_empty() && stopped.is_empty() && networks.is_empty() {
        ctx.ui.success("Nothing to prune");
        return Ok(0);
    }
    for container in &stopped {
        let kind = container
            .labels
            .get(labels::KIND)
            .map_or("container", String::as_str);
        let why = match container.labels.get(labels::PROJECT) {
            Some(root) if container.labels.contains_key(labels::KEEP) => {
                format!("a detached {kind} of {root}, which is gone")
            }
            _ => format!("a {kind} that {} and was never removed", container.state),
        };
        println!(
            "{} container {} — {why}",
            if dry_run { "would remove" } else { "remove" },
            container.name,
        );
    }
    let container_count = stopped.len();
    for volume in &volumes {
        println!(
            "{} volume {} — {}",
            if dry_run { "would remove" } else { "remove" },
            volume.name,
            volume.reason()
        );
    }
    let volume_count = volumes.len();
    for network in &networks {
        println!(
            "{} network {network} — the egress network of a project whose directory is gone",
            if dry_run { "would remove" } else { "remove" },
        );
    }
    let total: i64 = orphaned.iter().map(|image| image.size).sum();
    // "3 images (1.2 GB) and 2 volumes and 1 container", naming only what goes.
    let mut parts = Vec::new();
    if !orphaned.is_empty() {
        parts.push(format!(
            "{} ({})",
            counted(orphaned.len(), "image"),
            human_size(total)
        ));
    }
    if volume_count > 0 {
        parts.push(counted(volume_count, "volume"));
    }
    if container_count > 0 {
        parts.push(counted(container_count, "container"));
    }
    if !networks.is_empty() {
        parts.push(counted(networks.len(), "network"));
    }
    let what = parts.join(" and ");
    for image in &orphaned {
        println!(
            "{} {} — {}",
            if dry_run { "would remove" } else { "remove" },
            describe(image),
            image.orphaned.as_deref().unwrap_or_default()
        );
    }
    if dry_run {
        ctx.ui.info(&format!(
            "{what} would be removed; run without --dry-run to remove them"
        ));
        return Ok(0);
    }
    if !yes && !confirm(&format!("Remove {what}?")).ok_or_else(needs_confirmation)? {
        ctx.ui.info("Nothing removed.");
        return Ok(1);
    }
    // Containers first: the images they were created from are then no longer in use.
    for container in &stopped {
        engine.remove(&container.id).await?;
        crate::gateway::release(&engine, ctx, &container.name).await;
    }
    if container_count > 0 {
        ctx.ui.success(&format!(
            "Removed {}",
            counted(container_count, "stopped container")
        ));
    }
    let image_count = orphaned.len();
    let (mut removed, mut freed) = (0, 0);
    for image in orphaned {
        let mut kept = false;
        for name in image.removal_names() {
            if let Removal::InUse(why) = engine.remove_image(&name).await? {
                ctx.ui.warn(&format!("kept {name}: {why}"));
                kept = true;
            }
        }
        if !kept {
            removed += 1;
            freed += image.size;
        }
    }
    if image_count > 0 {
        ctx.ui.success(&format!(
            "Removed {} ({})",
            counted(removed, "image"),
            human_size(freed)
        ));
    }
    if volume_count > 0 {
        let gone = super::volumes::remove(&engine, volumes).await?;
        ctx.ui
            .success(&format!("Removed {}", counted(gone.len(), "volume")));
    }
    if !networks.is_empty() {
        let gone = crate::gateway::remove_networks(&engine, ctx, &networks).await?;
        ctx.ui
            .success(&format!("Removed {}", counted(gone, "network")));
    }
    Ok(0)
}

/// This namespace's stockade containers that have stopped (exited, dead) and are not meant to
/// stay (`io.stockade.keep`): a live sandbox removes its container when it ends, so one that is
/// left was abandoned (the engine went away mid-run, or stockade was killed). A kept one (a
/// finished detached session) goes too once its project directory is gone: `stockade stop`,
/// which is run in the project, can no longer reach it.
async fn stopped_containers(
    engine: &Engine,
    ctx: &Context,
) -> Result<Vec<ContainerSummary>, CliError> {
    let namespace = format!("{}={}", labels::NAMESPACE, ctx.namespace.as_str());
    let mut stopped: Vec<ContainerSummary> = engine
        .list_containers(&[labels::KIND.to_owned(), namespace])
        .await?
        .into_iter()
        .filter(|c| matches!(c.state.as_str(), "exited" | "dead"))
        .filter(|c| {
            !c.labels.contains_key(labels::KEEP)
                || c.labels
                    .get(labels::PROJECT)
                    .is_some_and(|root| !std::path::Path::new(root).is_dir())
        })
        .collect();
    stopped.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(stopped)
}

/// `1 image`, `2 images`.
fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn describe(image: &OwnedImage) -> String {
    let name = image
        .tags
        .first()
        .cloned()
        .unwrap_or_else(|| image.id.chars().take(19).collect());
    format!("{name} [{}, {}]", image.tier, human_size(image.size))
}

/// Without a terminal to ask on, prune refuses and says how to proceed.
fn needs_confirmation() -> CliError {
    CliError::refused(
        "needs-confirmation",
        "prune needs confirmation, and there is no terminal to ask on",
        Some("pass -y to remove without asking, or --dry-run to see what would go"),
    )
}
