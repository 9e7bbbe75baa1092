//! `stockade build [--force] [--no-cache] [--trust]`: ensure the image chain for the current
//! project now.

use crate::cli::BuildArgs;
use crate::context::Context;
use crate::exit::CliError;
use crate::image::{BuildMode, ensure_chain};
use crate::launch;

pub async fn run(ctx: &Context, args: &BuildArgs) -> Result<u8, CliError> {
    let &BuildArgs {
        force,
        no_cache,
        trust,
    } = args;
    // A build runs the project Dockerfile's commands: the same read-once and approval as a
    // launch.
    let prepared = launch::prepare(ctx, Vec::new())?;
    launch::check_trust(ctx, &prepared, trust)?;
    let engine = ctx.connect().await?;
    let mode = if force || no_cache {
        BuildMode::Force { no_cache }
    } else {
        BuildMode::IfStale
    };
    let chain = ensure_chain(&engine, ctx, &prepared, mode).await?;
    if !chain.built_any() {
        ctx.ui
            .success(&format!("Images up to date ({})", chain.image()));
    }
    Ok(0)
}
