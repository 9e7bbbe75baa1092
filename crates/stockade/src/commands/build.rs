//! `stockade build [--force] [--no-cache]`: ensure the image chain for the current project now.

use crate::context::Context;
use crate::exit::CliError;
use crate::image::{BuildMode, ensure_chain};

pub async fn run(ctx: &Context, force: bool, no_cache: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let engine = ctx.connect().await?;
    let mode = if force || no_cache {
        BuildMode::Force { no_cache }
    } else {
        BuildMode::IfStale
    };
    let chain = ensure_chain(&engine, ctx, &config, &project, mode).await?;
    if !chain.built_any() {
        ctx.ui
            .success(&format!("Images up to date ({})", chain.image()));
    }
    Ok(0)
}
