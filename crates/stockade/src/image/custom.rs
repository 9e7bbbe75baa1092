//! A custom base image named in `[image] base`: on the engine already, pulled, or built from
//! `[image] base_dockerfile`.

use std::collections::HashMap;
use std::path::PathBuf;

use stockade_core::chain::{self, DirContext, GLOBAL_CONTEXT_EXCLUDED};
use stockade_core::labels;
use stockade_core::project::Project;
use stockade_core::project_files::ReadContext;
use stockade_engine::Engine;

use super::{BuildMode, ChainRun, TierBuild, ensure_built};
use crate::context::Context;
use crate::exit::CliError;

/// The `io.stockade.tier` of a custom base that stockade built from `base_dockerfile`.
const CUSTOM_TIER: &str = "custom";

/// The custom image's ID. An image stockade built from `base_dockerfile` is kept current with
/// that Dockerfile; an image that came from elsewhere is used as it is.
#[allow(clippy::too_many_arguments)]
pub async fn ensure_custom_image(
    engine: &Engine,
    ctx: &Context,
    project: &Project,
    name: &str,
    dockerfile: Option<PathBuf>,
    read: Option<ReadContext>,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<String, CliError> {
    let info = engine.inspect_image(name).await?;
    let built_by_stockade = info
        .as_ref()
        .is_some_and(|i| i.labels.get(labels::TIER).map(String::as_str) == Some(CUSTOM_TIER));
    match (info, dockerfile) {
        (Some(_), Some(dockerfile)) if built_by_stockade => {
            build(engine, ctx, project, name, &dockerfile, read, mode, run).await
        }
        (Some(info), _) => Ok(info.id),
        (None, dockerfile) => {
            let task = ctx.ui.task(&format!("Pulling custom base image {name}…"));
            let pulled = engine.pull_image(name, |_| {}).await;
            task.finish();
            match (pulled, dockerfile) {
                (Ok(()), _) => match engine.inspect_image(name).await? {
                    Some(info) => {
                        ctx.ui.success(&format!("Pulled {name}"));
                        Ok(info.id)
                    }
                    None => Err(missing(
                        name,
                        "the engine reported a pull but has no such image",
                        None,
                    )),
                },
                (Err(e), _) if e.is_unreachable() => Err(e.into()),
                (Err(e), Some(dockerfile)) => {
                    tracing::debug!("pulling {name}: {e}");
                    ctx.ui.info(&format!(
                        "Could not pull {name}; building it from {}",
                        dockerfile.display()
                    ));
                    build(engine, ctx, project, name, &dockerfile, read, mode, run).await
                }
                (Err(e), None) => Err(missing(name, &format!("could not be pulled ({e})"), None)),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn build(
    engine: &Engine,
    ctx: &Context,
    project: &Project,
    name: &str,
    configured: &std::path::Path,
    read: Option<ReadContext>,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<String, CliError> {
    // A Dockerfile in the project was read (and approved) at the start of the launch: built
    // from those bytes, never from the disk again.
    if let Some(read) = read {
        return build_read(engine, ctx, name, configured, read, mode, run).await;
    }
    let path = chain::find_base_dockerfile(configured, &project.root, &ctx.dirs.config).map_err(
        |looked| {
            let places: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
            missing(
                name,
                "it could not be pulled",
                Some(format!(
                    "`[image] base_dockerfile = {:?}` was not found (looked at {})",
                    configured.display().to_string(),
                    places.join(" and ")
                )),
            )
        },
    )?;
    let dir = path
        .parent()
        .unwrap_or(std::path::Path::new("/"))
        .to_path_buf();
    let fail = |e: chain::ContextError| CliError::other(e.to_string(), None);
    let context = DirContext::scan(&dir, GLOBAL_CONTEXT_EXCLUDED).map_err(fail)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| chain::DOCKERFILE.to_owned());
    let content = context
        .content_hash(&chain::context_cache_file(&ctx.dirs.cache, &dir))
        .map_err(fail)?;
    let build = TierBuild {
        tier: CUSTOM_TIER,
        title: format!("custom base image {name} from {}", path.display()),
        tag: name.to_owned(),
        dockerfile: file_name.clone(),
        hash: chain::context_tier_hash(&format!("custom:{file_name}"), &content),
        parent: None,
        build_args: HashMap::new(),
        labels: HashMap::new(),
    };
    let ready = ensure_built(engine, ctx, build, mode, run, |labels| {
        context.to_tar(&file_name, labels).map_err(fail)
    })
    .await?;
    Ok(ready.id)
}

/// Build the custom base from its context as read.
async fn build_read(
    engine: &Engine,
    ctx: &Context,
    name: &str,
    configured: &std::path::Path,
    read: ReadContext,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<String, CliError> {
    let file_name = read.dockerfile_name.clone();
    let build = TierBuild {
        tier: CUSTOM_TIER,
        title: format!(
            "custom base image {name} from {}",
            read.dir.join(&file_name).display()
        ),
        tag: name.to_owned(),
        dockerfile: file_name.clone(),
        hash: chain::context_tier_hash(&format!("custom:{file_name}"), &read.hash),
        parent: None,
        build_args: HashMap::new(),
        labels: HashMap::new(),
    };
    tracing::debug!(
        "custom base {name} from {} (read once)",
        configured.display()
    );
    let ready = ensure_built(engine, ctx, build, mode, run, |labels| {
        let mut context = read.load().map_err(crate::launch::files_error)?;
        context.append_to(&file_name, labels);
        context.to_tar().map_err(|e| {
            CliError::other(format!("cannot pack the custom base's context: {e}"), None)
        })
    })
    .await?;
    Ok(ready.id)
}

fn missing(name: &str, why: &str, detail: Option<String>) -> CliError {
    let mut message = format!("custom base image {name} is not on the engine and {why}");
    if let Some(detail) = detail {
        message.push_str(&format!("; {detail}"));
    }
    CliError::Other {
        message,
        help: Some(format!(
            "pull or build it yourself (`docker pull {name}`, or `docker build -t {name} …`), \
             or set `[image] base_dockerfile = \"path/to/Dockerfile\"` so stockade builds it \
             when it is missing (relative paths: the project root, then ~/.config/stockade/)"
        )),
    }
}
