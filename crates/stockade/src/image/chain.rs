//! `ensure_chain`: foundation → base → project, parent first, each built only when stale.

use std::collections::HashMap;

use stockade_core::chain::{self, CustomTags, DockerfileEdit, ProjectParent, RuntimeLayer};
use stockade_core::config::{Config, DEFAULT_FROM};
use stockade_core::context::{BuildContext, ContextFile};
use stockade_core::foundation::FoundationPlan;
use stockade_core::full::FullPlan;
use stockade_core::labels;
use stockade_core::project::Project;
use stockade_core::published::{self, Current, Decision, PULLED_ARG, UserLayer};
use stockade_engine::Engine;

use super::plan::{BasePlan, ChainPlan, ProjectPlan};
use super::{BuildMode, ChainRun, Ready, TierBuild, alias, ensure_built, pull};
use crate::context::Context;
use crate::exit::CliError;
use crate::launch::Prepared;

/// The chain, ready: the image a sandbox for this project runs.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The foundation; absent when a pulled full image stands in for it (the published full
    /// image contains the foundation) and nothing of this chain builds on the foundation itself.
    pub foundation: Option<Ready>,
    /// The full toolset image, with `[image] toolset = "full"`.
    pub full: Option<Ready>,
    pub base: Ready,
    pub project: Option<Ready>,
}

impl Chain {
    /// The tag of the image sandboxes run: the project image, else the base.
    pub fn image(&self) -> &str {
        self.project.as_ref().unwrap_or(&self.base).tag.as_str()
    }

    /// The ID of the image sandboxes run on.
    pub fn image_id(&self) -> &str {
        self.project.as_ref().unwrap_or(&self.base).id.as_str()
    }

    /// The image stockade's helper containers run (installs, the home volume): the foundation,
    /// else the pulled full image, which contains it.
    pub fn helper(&self) -> &Ready {
        self.foundation
            .as_ref()
            .or(self.full.as_ref())
            .unwrap_or(&self.base)
    }

    /// Whether this run built (or re-pointed) any tier.
    pub fn built_any(&self) -> bool {
        self.foundation.as_ref().is_some_and(|f| f.built)
            || self.full.as_ref().is_some_and(|f| f.built)
            || self.base.built
            || self.project.as_ref().is_some_and(|p| p.built)
    }
}

/// Make every tier current for a prepared (read, resolved and approved) project, parent first;
/// remove what the rebuilds replaced.
pub async fn ensure_chain(
    engine: &Engine,
    ctx: &Context,
    prepared: &Prepared,
    mode: BuildMode,
) -> Result<Chain, CliError> {
    let plan = ChainPlan::of(ctx, prepared)?;
    let run = ChainRun::prefetch(engine, &chain_tags(ctx, prepared)).await?;
    let config = &prepared.resolved.config;
    ensure_planned(engine, ctx, config, &prepared.project, plan, run, mode).await
}

/// The foundation alone, current, for helpers that need nothing of a project's images (the git
/// helpers of worktrees). Its keys are global-only, so no project approval is needed.
pub async fn ensure_foundation_only(
    engine: &Engine,
    ctx: &Context,
    prepared: &Prepared,
) -> Result<String, CliError> {
    let config = &prepared.resolved.config;
    let plan = FoundationPlan::with_certificates(&config.image, &prepared.certificates);
    let mut run = ChainRun::prefetch(engine, &[ctx.namespace.foundation_image()]).await?;
    let result = ensure_foundation(engine, ctx, config, plan, BuildMode::IfStale, &mut run).await;
    run.remove(engine).await;
    Ok(result?.tag)
}

/// The tags of the tiers a project's chain has: foundation, base, and its project image when it
/// has a Dockerfile (as read).
pub fn chain_tags(ctx: &Context, prepared: &Prepared) -> Vec<String> {
    let mut tags = vec![ctx.namespace.foundation_image()];
    let config = &prepared.resolved.config;
    if config.image.toolset == stockade_core::config::Toolset::Full && config.image.base.is_none() {
        tags.push(ctx.namespace.full_image());
    }
    tags.push(ctx.namespace.base_image());
    if prepared.files.context.is_some() {
        tags.push(ctx.namespace.project_image(&prepared.project.id()));
    }
    tags
}

/// The tag of the image a project's sandboxes run (the chain's last tier).
pub fn chain_image(ctx: &Context, prepared: &Prepared) -> String {
    chain_tags(ctx, prepared).pop().unwrap_or_default()
}

/// `ensure_chain` with the plan made and the tiers looked up already (a launch does both while
/// it does other work).
pub async fn ensure_planned(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    project: &Project,
    plan: ChainPlan,
    mut run: ChainRun,
    mode: BuildMode,
) -> Result<Chain, CliError> {
    let ChainPlan {
        foundation: foundation_plan,
        full: full_plan,
        base: base_plan,
        project: project_plan,
    } = plan;
    let result = ensure_tiers(
        engine,
        ctx,
        config,
        project,
        foundation_plan,
        full_plan,
        base_plan,
        project_plan,
        mode,
        &mut run,
    )
    .await;
    run.remove(engine).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn ensure_tiers(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    project: &Project,
    foundation_plan: FoundationPlan,
    full_plan: Option<FullPlan>,
    base_plan: BasePlan,
    project_plan: Option<ProjectPlan>,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<Chain, CliError> {
    // A project Dockerfile `FROM stockade:foundation` needs the foundation itself.
    let project_on_foundation = project_plan
        .as_ref()
        .is_some_and(|p| p.parent == ProjectParent::Foundation);
    let (foundation, full) = match full_plan {
        None => {
            let foundation =
                ensure_foundation(engine, ctx, config, foundation_plan, mode, run).await?;
            (Some(foundation), None)
        }
        Some(plan) => {
            let certificates = UserLayer::certificates_of(&foundation_plan.context);
            let decision = Decision::full(&config.image);
            let current = decision.current(&plan.hash, &certificates);
            let published =
                published_tier(engine, ctx, config, &FULL, &decision, &current, mode, run);
            match published.await? {
                // The published full image contains the foundation: none is made for it.
                Made::Ready(full) => {
                    let foundation = match project_on_foundation {
                        true => Some(
                            ensure_foundation(engine, ctx, config, foundation_plan, mode, run)
                                .await?,
                        ),
                        false => None,
                    };
                    (foundation, Some(full))
                }
                Made::Build => {
                    let foundation =
                        ensure_foundation(engine, ctx, config, foundation_plan, mode, run).await?;
                    let full = ensure_full(engine, ctx, plan, &foundation, mode, run).await?;
                    (Some(foundation), Some(full))
                }
            }
        }
    };
    // The global base builds on the full image when there is one.
    let Some(below) = full.as_ref().or(foundation.as_ref()) else {
        return Err(CliError::other(
            "no foundation or full image was made for the chain (a stockade bug)",
            None,
        ));
    };
    let base = ensure_base(engine, ctx, config, project, base_plan, below, mode, run).await?;
    let project = match project_plan {
        None => None,
        Some(plan) => {
            if plan.parent == ProjectParent::Base && config.image.base_from_project {
                return Err(project_dockerfile_on_shared_base(config));
            }
            let parent = match plan.parent {
                ProjectParent::Base => &base,
                ProjectParent::Foundation => foundation.as_ref().unwrap_or(below),
            };
            let build = TierBuild {
                tier: "project",
                title: "project image".to_owned(),
                tag: ctx.namespace.project_image(&project.id()),
                dockerfile: chain::DOCKERFILE.to_owned(),
                hash: plan.hash,
                parent: Some(parent.id.clone()),
                build_args: HashMap::new(),
                labels: HashMap::from([(
                    labels::PROJECT.to_owned(),
                    project.root.to_string_lossy().into_owned(),
                )]),
            };
            // Only when a build is needed: the bytes read at the start of the launch, or read
            // now and refused unless they hash to what was approved. The label carries that
            // hash, so the image is tagged by exactly what is sent.
            let read = plan.context;
            Some(
                ensure_built(engine, ctx, build, mode, run, |edit| {
                    let mut context = read.load().map_err(crate::launch::files_error)?;
                    context.edit(chain::DOCKERFILE, |bytes| edit.apply(bytes));
                    context.to_tar().map_err(|e| {
                        CliError::caused("cannot pack the project build context", e, None)
                    })
                })
                .await?,
            )
        }
    };
    Ok(Chain {
        foundation,
        full,
        base,
        project,
    })
}

/// The full toolset tier: the embedded manifest and Dockerfile, built on `foundation` (its
/// parent). Current when its hash and parent match; otherwise built under the tag's lock.
pub async fn ensure_full(
    engine: &Engine,
    ctx: &Context,
    plan: FullPlan,
    foundation: &Ready,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<Ready, CliError> {
    let build_args = FullPlan::build_args(
        &foundation.tag,
        option_env!("STOCKADE_REVISION").unwrap_or("unknown"),
        &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    );
    let build = TierBuild {
        tier: "full",
        title: "full toolset image".to_owned(),
        tag: ctx.namespace.full_image(),
        dockerfile: chain::DOCKERFILE.to_owned(),
        hash: plan.hash,
        parent: Some(foundation.id.clone()),
        build_args: build_args.into_iter().collect(),
        // Built here, whatever the foundation's labels (inherited) say of it.
        labels: HashMap::from([(labels::SOURCE.to_owned(), "build".to_owned())]),
    };
    let context = packed(plan.context, "the full image's build context");
    ensure_built(engine, ctx, build, mode, run, context).await
}

/// A published tier: its name in messages and the image's tag and tier label.
struct PublishedTier {
    /// `foundation` or `full` (the `io.stockade.tier` label).
    tier: &'static str,
    /// `foundation`, `full image`: "the published …", "your layer over the pulled …".
    what: &'static str,
    /// The tag in the namespace.
    tag: fn(&stockade_core::names::Namespace) -> String,
}

const FOUNDATION: PublishedTier = PublishedTier {
    tier: "foundation",
    what: "foundation",
    tag: stockade_core::names::Namespace::foundation_image,
};

const FULL: PublishedTier = PublishedTier {
    tier: "full",
    what: "full image",
    tag: stockade_core::names::Namespace::full_image,
};

/// What `published_tier` made of a tier.
enum Made {
    /// Current, or pulled now with the user's layer over it.
    Ready(Ready),
    /// To build locally: the decision builds, a tier built after a failed pull is kept (`auto`),
    /// or the pull failed under `auto` (said in one line).
    Build,
}

/// A tier that may come from a registry, as `decision` says: current already (`current` says
/// which images count), pulled with the user's layer over it, or left to the local build.
#[allow(clippy::too_many_arguments)]
async fn published_tier(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    tier: &PublishedTier,
    decision: &Decision,
    current: &Current,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<Made, CliError> {
    let (published, fallback) = match decision {
        Decision::Build => return Ok(Made::Build),
        Decision::NoPin => return Err(no_pin(tier)),
        Decision::Pull {
            published,
            fallback,
        } => (published, *fallback),
    };
    if !fallback && config.image.from != DEFAULT_FROM {
        ctx.ui.warn(&format!(
            "`[image] from = \"{}\"` does not apply to pulls: the published {} is pulled as it \
             is (`source = \"build\"` builds from it)",
            config.image.from, tier.what
        ));
    }
    let tag = (tier.tag)(&ctx.namespace);
    if mode == BuildMode::IfStale {
        let info = run.first_look(engine, &tag).await?;
        match current.made_by(info.as_ref().map(|i| &i.labels)) {
            Some(published::Made::Pulled) => {
                if let Some(info) = info {
                    return Ok(Made::Ready(Ready {
                        tag,
                        id: info.id,
                        built: false,
                    }));
                }
            }
            // Under `auto`, a tier built after a failed pull stays until its inputs change;
            // the build checks the rest (its parent).
            Some(published::Made::Built) => return Ok(Made::Build),
            None => {}
        }
    }
    let Some(layer) = current.layer.clone() else {
        return Ok(Made::Build);
    };
    // The registries are spoken to with the user's CA files trusted (a TLS proxy).
    let certificates = UserLayer::certificates_of(&layer.context);
    match pull::pull_published(engine, ctx, &config.image, &certificates, published).await {
        Ok(pulled) => {
            let ready = user_layer(engine, ctx, tier, layer, pulled, mode, run).await?;
            Ok(Made::Ready(ready))
        }
        Err(failed) if fallback => {
            ctx.ui.warn(&format!(
                "could not pull the published {} ({}): building it locally",
                tier.what,
                failed.one_line()
            ));
            Ok(Made::Build)
        }
        Err(failed) => Err(failed.into_error(published)),
    }
}

/// The foundation: pulled (the published image and the user's layer over it) or built (the
/// embedded assets, `[image] from` and the CA files), as `[image] source` decides.
async fn ensure_foundation(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    plan: FoundationPlan,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<Ready, CliError> {
    let decision = Decision::foundation(&config.image);
    let certificates = UserLayer::certificates_of(&plan.context);
    let current = decision.current(&plan.hash, &certificates);
    let published = published_tier(
        engine,
        ctx,
        config,
        &FOUNDATION,
        &decision,
        &current,
        mode,
        run,
    );
    match published.await? {
        Made::Ready(ready) => Ok(ready),
        Made::Build => {
            let (build, context) = foundation_build(ctx, config, plan);
            ensure_built(engine, ctx, build, mode, run, context).await
        }
    }
}

/// `source = "pull"` without a pin.
fn no_pin(tier: &PublishedTier) -> CliError {
    let key = format!("{}_digest", tier.tier);
    CliError::refused(
        "no-pin",
        format!(
            "`[image] source = \"pull\"`, but there is no digest to pin the published {} to: \
             this is a development build, and `[image] {key}` is not set",
            tier.what
        ),
        Some(&format!(
            "set `[image] {key} = \"sha256:…\"` (the published image's manifest digest), or \
             `source = \"auto\"` or \"build\" to build it locally"
        )),
    )
}

/// The user's layer over a pulled image (its CA certificates), tagged as the tier and labelled
/// with where the image came from.
async fn user_layer(
    engine: &Engine,
    ctx: &Context,
    tier: &PublishedTier,
    layer: UserLayer,
    pulled: pull::Pulled,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<Ready, CliError> {
    let build = TierBuild {
        tier: tier.tier,
        title: format!("your layer over the pulled {}", tier.what),
        tag: (tier.tag)(&ctx.namespace),
        dockerfile: chain::DOCKERFILE.to_owned(),
        hash: layer.hash.clone(),
        parent: Some(pulled.id.clone()),
        build_args: HashMap::from([(PULLED_ARG.to_owned(), pulled.reference.clone())]),
        labels: HashMap::from([
            (labels::SOURCE.to_owned(), "pull".to_owned()),
            (labels::REGISTRY.to_owned(), pulled.prefix.clone()),
            (labels::DIGEST.to_owned(), pulled.digest.clone()),
            (labels::SIGNATURE.to_owned(), pulled.signature.describe()),
        ]),
    };
    // A pull always builds the layer: the image under the tag is not this one.
    let mode = match mode {
        BuildMode::IfStale => BuildMode::Force { no_cache: false },
        force => force,
    };
    let context = packed(layer.context, "your layer over the pulled image");
    ensure_built(engine, ctx, build, mode, run, context).await
}

/// An in-memory context, packed with its Dockerfile edited (tiers resolved, labels appended).
fn packed(
    mut context: BuildContext,
    what: &'static str,
) -> impl FnOnce(&DockerfileEdit) -> Result<Vec<u8>, CliError> {
    move |edit| {
        context.edit(chain::DOCKERFILE, |bytes| edit.apply(bytes));
        context
            .to_tar()
            .map_err(|e| CliError::caused(format!("cannot pack {what}"), e, None))
    }
}

/// The foundation built locally: the embedded assets, `[image] from` and the CA files (what to
/// build, and its context).
fn foundation_build(
    ctx: &Context,
    config: &Config,
    plan: FoundationPlan,
) -> (
    TierBuild,
    impl FnOnce(&DockerfileEdit) -> Result<Vec<u8>, CliError>,
) {
    let build = TierBuild {
        tier: "foundation",
        title: format!("foundation image from {}", config.image.from),
        tag: ctx.namespace.foundation_image(),
        dockerfile: chain::DOCKERFILE.to_owned(),
        hash: plan.hash.clone(),
        parent: None,
        build_args: plan.build_args.clone().into_iter().collect(),
        labels: HashMap::from([
            (
                "org.opencontainers.image.title".to_owned(),
                "stockade foundation".to_owned(),
            ),
            (
                "org.opencontainers.image.description".to_owned(),
                "The base tier of stockade's sandbox images".to_owned(),
            ),
            (
                "org.opencontainers.image.version".to_owned(),
                labels::STOCKADE_VERSION.to_owned(),
            ),
            (
                "org.opencontainers.image.source".to_owned(),
                env!("CARGO_PKG_REPOSITORY").to_owned(),
            ),
            (
                "org.opencontainers.image.base.name".to_owned(),
                config.image.from.clone(),
            ),
        ]),
    };
    (build, packed(plan.context, "the foundation build context"))
}

#[allow(clippy::too_many_arguments)]
async fn ensure_base(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    project: &Project,
    plan: BasePlan,
    foundation: &Ready,
    mode: BuildMode,
    run: &mut ChainRun,
) -> Result<Ready, CliError> {
    let base_tag = ctx.namespace.base_image();
    match plan {
        BasePlan::Foundation => {
            let moved = alias(engine, ctx, "base", &base_tag, foundation, run).await?;
            Ok(Ready {
                tag: base_tag,
                id: foundation.id.clone(),
                built: moved,
            })
        }
        BasePlan::Dockerfile { context, hash, .. } => {
            let build = TierBuild {
                tier: "base",
                title: "global base image".to_owned(),
                tag: base_tag,
                dockerfile: chain::DOCKERFILE.to_owned(),
                hash,
                parent: Some(foundation.id.clone()),
                build_args: HashMap::new(),
                labels: HashMap::new(),
            };
            ensure_built(engine, ctx, build, mode, run, |edit| {
                context
                    .to_tar(chain::DOCKERFILE, |bytes| edit.apply(bytes))
                    .map_err(context_error)
            })
            .await
        }
        BasePlan::Image {
            name,
            dockerfile,
            context,
        } => {
            let tags = CustomTags::of(&ctx.namespace, &config.image, &name, &project.id());
            let (custom_tag, custom_id) = super::custom::ensure_custom_image(
                engine,
                ctx,
                &name,
                &tags,
                &project.root,
                dockerfile,
                context,
                mode,
                run,
            )
            .await?;
            let layer = RuntimeLayer::new(
                &foundation.tag,
                &foundation.id,
                &custom_tag,
                !config.image.ca_certificates.is_empty(),
            );
            let build = TierBuild {
                tier: "base",
                title: format!("runtime layer over {name}"),
                tag: tags.layer.clone(),
                dockerfile: chain::DOCKERFILE.to_owned(),
                hash: layer.hash,
                parent: Some(custom_id),
                build_args: HashMap::new(),
                labels: {
                    let mut labels =
                        HashMap::from([(labels::CUSTOM_BASE.to_owned(), name.clone())]);
                    if tags.project_owned {
                        labels.insert(
                            labels::PROJECT.to_owned(),
                            project.root.to_string_lossy().into_owned(),
                        );
                    }
                    labels
                },
            };
            let dockerfile = layer.dockerfile;
            let layered = ensure_built(engine, ctx, build, mode, run, |edit| {
                BuildContext::new(vec![ContextFile::new(
                    chain::DOCKERFILE,
                    edit.apply(dockerfile.as_bytes()),
                    0o644,
                )])
                .to_tar()
                .map_err(|e| CliError::caused("cannot pack the runtime layer", e, None))
            })
            .await?;
            // A project's own custom base is that project's alone: `stockade:base`, which every
            // project shares, stays as it is and the sandbox runs the layer itself.
            if tags.project_owned {
                return Ok(layered);
            }
            // The custom image takes the place of `stockade:base` (project Dockerfiles build on it).
            let moved = alias(engine, ctx, "base", &base_tag, &layered, run).await?;
            Ok(Ready {
                tag: base_tag,
                id: layered.id,
                built: layered.built || moved,
            })
        }
    }
}

/// A project that names its own custom base cannot also build `.stockade/Dockerfile` on
/// `stockade:base`: that tag is shared by every project and never points at this project's base.
fn project_dockerfile_on_shared_base(config: &Config) -> CliError {
    CliError::other(
        format!(
            "this project names its own custom base ({}) and .stockade/Dockerfile builds FROM \
             the shared base, which is not that image",
            config.image.base.as_deref().unwrap_or("[image] base")
        ),
        Some(
            "put the project's build steps in its `base_dockerfile`, or move `[image] base` to \
             your global config file",
        ),
    )
}

fn context_error(e: chain::ContextError) -> CliError {
    CliError::other(
        e.to_string(),
        Some("fix the file or its permissions, or leave it out with .dockerignore"),
    )
}
