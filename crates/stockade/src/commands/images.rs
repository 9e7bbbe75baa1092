//! `stockade images [--json]`: stockade's images on the engine — tier, project, size, age, and
//! whether they are current, in use or orphaned.

use crate::context::Context;
use crate::exit::CliError;
use crate::inventory::{self, human_age, human_size};
use crate::ui::{print_json, print_table};

pub async fn run(ctx: &Context, json: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let engine = ctx.connect().await?;
    let images = inventory::images(&engine, ctx, &config).await?;
    if json {
        print_json(&images)?;
        return Ok(0);
    }
    if images.is_empty() {
        ctx.ui.info("No stockade images on this engine yet.");
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = images
        .iter()
        .map(|image| {
            [
                if image.tags.is_empty() {
                    "<none>".to_owned()
                } else {
                    image.tags.join(", ")
                },
                image.tier.to_string(),
                image.source.clone(),
                image
                    .project
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "-".to_owned()),
                human_size(image.size),
                human_age(image.created),
                image.state(),
            ]
        })
        .collect();
    print_table(
        &[
            "IMAGE", "TIER", "SOURCE", "PROJECT", "SIZE", "CREATED", "STATE",
        ],
        &rows,
    );
    Ok(0)
}
