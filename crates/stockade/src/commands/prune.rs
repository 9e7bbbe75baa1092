//! `stockade prune [--dry-run] [-y]`: remove orphaned stockade images and unused volumes (old
//! agent versions, homes of deleted projects) — never one a container uses (the engine is never
//! asked to force).

use stockade_engine::Removal;

use crate::context::Context;
use crate::exit::CliError;
use crate::inventory::{self, OwnedImage, human_size};
use crate::ui::confirm;

pub async fn run(ctx: &Context, dry_run: bool, yes: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let engine = ctx.connect().await?;
    let images = inventory::images(&engine, ctx, &config).await?;
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
    if orphaned.is_empty() && volumes.is_empty() {
        ctx.ui.success("Nothing to prune");
        return Ok(0);
    }
    for volume in &volumes {
        println!(
            "{} volume {} — {}",
            if dry_run { "would remove" } else { "remove" },
            volume.name,
            volume.reason()
        );
    }
    let volume_count = volumes.len();
    let and_volumes = if volume_count > 0 {
        format!(" and {volume_count} volumes")
    } else {
        String::new()
    };
    let total: i64 = orphaned.iter().map(|image| image.size).sum();
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
            "{} images ({}){and_volumes} would be removed; run without --dry-run to remove them",
            orphaned.len(),
            human_size(total)
        ));
        return Ok(0);
    }
    let question = format!(
        "Remove {} images ({}){and_volumes}?",
        orphaned.len(),
        human_size(total)
    );
    if !yes && !confirm(&question).ok_or_else(needs_confirmation)? {
        ctx.ui.info("Nothing removed.");
        return Ok(1);
    }
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
    ctx.ui
        .success(&format!("Removed {removed} images ({})", human_size(freed)));
    if volume_count > 0 {
        let gone = super::volumes::remove(&engine, volumes).await?;
        ctx.ui.success(&format!("Removed {} volumes", gone.len()));
    }
    Ok(0)
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
