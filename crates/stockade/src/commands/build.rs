//! `stockade build [--force] [--no-cache]`: ensure the image now.

use crate::context::Context;
use crate::exit::CliError;
use crate::image::{BuildMode, ensure_foundation};

pub async fn run(ctx: &Context, force: bool, no_cache: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let engine = ctx.connect().await?;
    let mode = if force || no_cache {
        BuildMode::Force { no_cache }
    } else {
        BuildMode::IfStale
    };
    let ready = ensure_foundation(&engine, ctx, &config, mode).await?;
    if !ready.built {
        ctx.ui
            .success(&format!("Foundation image up to date ({})", ready.tag));
    }
    Ok(0)
}
