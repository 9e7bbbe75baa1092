//! `stockade prune [--dry-run] [-y]`: remove orphaned stockade images — never one a container
//! uses (the engine is never asked to force).

use std::io::{IsTerminal, Write};

use stockade_engine::Removal;

use crate::context::Context;
use crate::exit::CliError;
use crate::inventory::{self, OwnedImage, human_size};

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
    if orphaned.is_empty() {
        ctx.ui.success("Nothing to prune");
        return Ok(0);
    }
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
            "{} images ({}) would be removed; run without --dry-run to remove them",
            orphaned.len(),
            human_size(total)
        ));
        return Ok(0);
    }
    if !yes
        && !confirm(&format!(
            "Remove {} images ({})?",
            orphaned.len(),
            human_size(total)
        ))?
    {
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

/// Ask on the terminal; without one, refuse and say how to proceed.
fn confirm(question: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::other(
            "prune needs confirmation, and stdin is not a terminal",
            Some("pass -y to remove without asking, or --dry-run to see what would go"),
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::other(format!("cannot read the answer: {e}"), None))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}
