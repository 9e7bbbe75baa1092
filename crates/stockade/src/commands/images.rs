//! `stockade images [--json]`: stockade's images on the engine — tier, project, size, age, and
//! whether they are current, in use or orphaned.

use crate::context::Context;
use crate::exit::CliError;
use crate::inventory::{self, human_age, human_size};

pub async fn run(ctx: &Context, json: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let engine = ctx.connect().await?;
    let images = inventory::images(&engine, ctx, &config).await?;
    if json {
        let text = serde_json::to_string_pretty(&images)
            .map_err(|e| CliError::other(format!("cannot encode the list: {e}"), None))?;
        println!("{text}");
        return Ok(0);
    }
    if images.is_empty() {
        ctx.ui.info("No stockade images on this engine yet.");
        return Ok(0);
    }
    let rows: Vec<[String; 6]> = images
        .iter()
        .map(|image| {
            [
                if image.tags.is_empty() {
                    "<none>".to_owned()
                } else {
                    image.tags.join(", ")
                },
                image.tier.clone(),
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
        &["IMAGE", "TIER", "PROJECT", "SIZE", "CREATED", "STATE"],
        &rows,
    );
    Ok(0)
}

/// Columns padded to their widest cell; the last one is not padded.
pub fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
