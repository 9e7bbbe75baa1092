//! A custom base image named in `[image] base`: on the engine already, pulled, or built from
//! `[image] base_dockerfile`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use stockade_core::chain::{self, CustomTags, DirContext};
use stockade_core::labels;
use stockade_core::project_files::ReadContext;
use stockade_engine::{Engine, ImageInfo};

use super::{BuildMode, ChainRun, TierBuild, ensure_built};
use crate::context::Context;
use crate::exit::CliError;

/// The `io.stockade.tier` of a custom base that stockade built from `base_dockerfile`.
const CUSTOM_TIER: &str = "custom";

/// The custom image's tag and ID. An image stockade built from `base_dockerfile` is kept current
/// with that Dockerfile; an image that came from elsewhere is used as it is. A custom base the
/// project names for itself is built under `tags.build` (carrying the project's id), and an
/// image of the shared name is only ever used, never rebuilt from the project's files.
#[allow(clippy::too_many_arguments)]
pub async fn ensure_custom_image(
    engine: &Engine,
    ctx: &Context,
    name: &str,
    tags: &CustomTags,
    project: &Path,
    dockerfile: Option<PathBuf>,
    read: Option<ReadContext>,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<(String, String), CliError> {
    let owner = tags.project_owned.then_some(project);
    let built_here =
        |info: &ImageInfo| info.labels.get(labels::TIER).map(String::as_str) == Some(CUSTOM_TIER);
    // Decide which Dockerfile to build, if any; an image used as it is returns here.
    let dockerfile = 'decide: {
        if tags.project_owned
            && let Some(dockerfile) = &dockerfile
            && engine.inspect_image(&tags.build).await?.is_some()
        {
            break 'decide dockerfile.clone();
        }
        let info = engine.inspect_image(name).await?;
        let rebuild = !tags.project_owned && info.as_ref().is_some_and(built_here);
        match (info, dockerfile) {
            (Some(_), Some(dockerfile)) if rebuild => dockerfile,
            (Some(info), _) => return Ok((name.to_owned(), info.id)),
            (None, dockerfile) => {
                let task = ctx.ui.task(&format!("Pulling custom base image {name}…"));
                let pulled = engine.pull_image(name, |_| {}).await;
                task.finish();
                match (pulled, dockerfile) {
                    (Ok(()), _) => {
                        return match engine.inspect_image(name).await? {
                            Some(info) => {
                                ctx.ui.success(&format!("Pulled {name}"));
                                Ok((name.to_owned(), info.id))
                            }
                            None => Err(missing(
                                name,
                                "the engine reported a pull but has no such image",
                                None,
                            )),
                        };
                    }
                    (Err(e), _) if e.is_unreachable() => return Err(e.into()),
                    (Err(e), Some(dockerfile)) => {
                        tracing::debug!("pulling {name}: {e}");
                        ctx.ui.info(&format!(
                            "Could not pull {name}; building it from {}",
                            dockerfile.display()
                        ));
                        dockerfile
                    }
                    (Err(e), None) => {
                        return Err(missing(name, &format!("could not be pulled ({e})"), None));
                    }
                }
            }
        }
    };
    let id = build(
        engine,
        ctx,
        owner,
        &tags.build,
        &dockerfile,
        read,
        mode,
        run,
    )
    .await?;
    Ok((tags.build.clone(), id))
}

#[allow(clippy::too_many_arguments)]
async fn build(
    engine: &Engine,
    ctx: &Context,
    project: Option<&Path>,
    name: &str,
    configured: &std::path::Path,
    read: Option<ReadContext>,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<String, CliError> {
    // A Dockerfile in the project was read (and approved) at the start of the launch: built
    // from those bytes, never from the disk again.
    if let Some(read) = read {
        return build_read(engine, ctx, project, name, configured, read, mode, run).await;
    }
    let path = chain::find_base_dockerfile(configured).map_err(|looked| {
        let places: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
        missing(
            name,
            "it could not be pulled",
            Some(format!(
                "`[image] base_dockerfile` was not found (looked at {})",
                places.join(" and ")
            )),
        )
    })?;
    let dir = path
        .parent()
        .unwrap_or(std::path::Path::new("/"))
        .to_path_buf();
    let fail = |e: chain::ContextError| CliError::other(e.to_string(), None);
    let context = DirContext::scan(&dir).map_err(fail)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| chain::DOCKERFILE.to_owned());
    let content = context
        .content_hash(&chain::context_cache_file(&ctx.dirs.cache, &dir))
        .map_err(fail)?;
    let build = custom_build(name, &path, &file_name, &content, project);
    let ready = ensure_built(engine, ctx, build, mode, run, |edit| {
        context
            .to_tar(&file_name, |bytes| edit.apply(bytes))
            .map_err(fail)
    })
    .await?;
    Ok(ready.id)
}

/// The custom base's build, tagged `name`, from the Dockerfile at `path` (`file_name` in a
/// context whose content hash is `content`). A project's own custom base is listed (and pruned)
/// with that project.
fn custom_build(
    name: &str,
    path: &Path,
    file_name: &str,
    content: &str,
    project: Option<&Path>,
) -> TierBuild {
    TierBuild {
        tier: CUSTOM_TIER,
        title: format!("custom base image {name} from {}", path.display()),
        tag: name.to_owned(),
        dockerfile: file_name.to_owned(),
        hash: chain::context_tier_hash(&format!("custom:{file_name}"), content),
        parent: None,
        build_args: HashMap::new(),
        labels: project
            .map(|root| {
                HashMap::from([(
                    labels::PROJECT.to_owned(),
                    root.to_string_lossy().into_owned(),
                )])
            })
            .unwrap_or_default(),
    }
}

/// Build the custom base from its context as read.
#[allow(clippy::too_many_arguments)]
async fn build_read(
    engine: &Engine,
    ctx: &Context,
    project: Option<&Path>,
    name: &str,
    configured: &std::path::Path,
    read: ReadContext,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<String, CliError> {
    let file_name = read.dockerfile_name.clone();
    let build = custom_build(
        name,
        &read.dir.join(&file_name),
        &file_name,
        &read.hash,
        project,
    );
    tracing::debug!(
        "custom base {name} from {} (read once)",
        configured.display()
    );
    let ready = ensure_built(engine, ctx, build, mode, run, |edit| {
        let mut context = read.load().map_err(crate::launch::files_error)?;
        context.edit(&file_name, |bytes| edit.apply(bytes));
        context
            .to_tar()
            .map_err(|e| CliError::caused("cannot pack the custom base's context", e, None))
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
             when it is missing (relative paths start at the directory of the file that sets it; \
             in a project file, at the project root)"
        )),
    }
}
