//! `stockade update [AGENT…] [--trust]`: install the latest (or pinned) version into a new volume and switch
//! to it. A failed install changes nothing: the previous version keeps working.

use stockade_core::agents::State;

use crate::context::Context;
use crate::exit::{CliError, FAILURE};
use crate::image::{BuildMode, ensure_chain};
use crate::tools::ToolsCtx;

pub async fn run(ctx: &Context, names: Vec<String>, trust: bool) -> Result<u8, CliError> {
    let prepared = crate::launch::prepare(ctx, Vec::new())?;
    let config = prepared.resolved.config.clone();
    let names = if names.is_empty() {
        let state = State::load(&State::path(&ctx.dirs.state, ctx.namespace.as_str()));
        let installed: Vec<String> = state
            .agents
            .keys()
            .chain(state.musl.keys())
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if installed.is_empty() {
            ctx.ui
                .info("No agent is installed yet; name one: `stockade update claude`");
            return Ok(0);
        }
        installed
    } else {
        names
    };
    let agents = names
        .iter()
        .map(|name| crate::agent::resolve(name, &config))
        .collect::<Result<Vec<_>, _>>()?;
    let engine = ctx.connect().await?;
    crate::launch::check_trust(ctx, &prepared, trust)?;
    let chain = ensure_chain(&engine, ctx, &prepared, BuildMode::IfStale).await?;
    // Installs run in helpers from the foundation.
    let image = chain.helper().tag.clone();
    let tools = ToolsCtx {
        engine: &engine,
        ctx,
        config: &config,
        image: &image,
    };
    let mut failed = Vec::new();
    for agent in &agents {
        // A native agent's build is the one for this project's sandbox image (its glibc or its
        // musl build); an image that can run neither is refused as at launch.
        let build =
            match crate::agent::build_for(&tools, agent, chain.image(), chain.image_id()).await {
                Ok(build) => build,
                Err(error) => {
                    eprintln!("{:?}", miette::Report::new(error));
                    failed.push(agent.name.clone());
                    continue;
                }
            };
        let previous = tools.state().builds(build).get(&agent.name).cloned();
        match tools.update(agent, build).await {
            Ok(result) => {
                let was = previous.map(|p| p.version);
                if was.as_deref() == Some(result.version.as_str()) {
                    ctx.ui.success(&format!(
                        "{} {} is up to date ({})",
                        agent.name, result.version, result.volume
                    ));
                } else {
                    ctx.ui.success(&format!(
                        "{} {} → {} ({})",
                        agent.name,
                        was.as_deref().unwrap_or("not installed"),
                        result.version,
                        result.volume
                    ));
                }
            }
            Err(error) => {
                eprintln!("{:?}", miette::Report::new(error));
                if let Some(previous) = previous {
                    ctx.ui.info(&format!(
                        "{} stays at {} ({})",
                        agent.name, previous.version, previous.volume
                    ));
                }
                failed.push(agent.name.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        ctx.ui
            .warn(&format!("update failed for: {}", failed.join(", ")));
        Ok(FAILURE)
    }
}
