//! What each tier would be built from now and its content hash (shared by the lazy build and
//! `stockade check`), and the chain's status on the engine without building anything.

use std::path::PathBuf;

use serde::Serialize;
use stockade_core::chain::{self, BaseSource, DirContext, Freshness, ProjectParent, RuntimeLayer};
use stockade_core::config::Config;
use stockade_core::config::Toolset;
use stockade_core::dirs::Dirs;
use stockade_core::foundation::FoundationPlan;
use stockade_core::full::FullPlan;
use stockade_core::names::Namespace;
use stockade_core::project::Project;
use stockade_core::project_files::{ProjectFiles, ReadContext, Referenced};
use stockade_core::published::{Decision, Made};
use stockade_engine::{Engine, ImageInfo};

use crate::context::Context;
use crate::exit::CliError;
use crate::launch::Prepared;

/// The global base tier as configured now.
pub enum BasePlan {
    /// `stockade:base` is an alias of the foundation.
    Foundation,
    /// The global Dockerfile, its context and hash.
    Dockerfile {
        path: PathBuf,
        context: DirContext,
        hash: String,
    },
    /// A custom image by name, extended with the runtime layer.
    Image {
        name: String,
        dockerfile: Option<PathBuf>,
        /// `base_dockerfile`'s context as read, when it lies in the project.
        context: Option<ReadContext>,
    },
}

/// The project tier: `.stockade/Dockerfile`, its context as read once (in memory: what was
/// hashed and approved is what is sent) and hash, and what it builds on.
pub struct ProjectPlan {
    pub dockerfile: PathBuf,
    pub context: ReadContext,
    pub hash: String,
    pub parent: ProjectParent,
}

/// What each tier would be built from now: the foundation from the CA bytes read, the global
/// base's context scanned and hashed, the project's context as the launch read it. Pure file
/// work (no engine), so a launch can do it while it talks to the engine.
pub struct ChainPlan {
    pub foundation: FoundationPlan,
    /// The full toolset image, with `[image] toolset = "full"` (and no custom base image).
    pub full: Option<FullPlan>,
    pub base: BasePlan,
    pub project: Option<ProjectPlan>,
}

impl ChainPlan {
    pub fn new(
        dirs: &Dirs,
        namespace: &Namespace,
        config: &Config,
        project: Option<ReadContext>,
        certificates: &[Referenced],
        custom_base: Option<ReadContext>,
    ) -> Result<Self, CliError> {
        let mut base = base_plan(dirs, config)?;
        if let BasePlan::Image { context, .. } = &mut base {
            *context = custom_base;
        }
        Ok(Self {
            foundation: FoundationPlan::with_certificates(&config.image, certificates),
            full: full_plan(config, &base)?,
            base,
            project: project.map(|context| project_plan(namespace, context)),
        })
    }

    /// The plan of a prepared launch, on a blocking thread, started now, awaited when the chain
    /// is ensured.
    pub fn spawn(
        ctx: &Context,
        prepared: &Prepared,
    ) -> tokio::task::JoinHandle<Result<Self, CliError>> {
        let (dirs, namespace) = (ctx.dirs.clone(), ctx.namespace.clone());
        let config = prepared.resolved.config.clone();
        let context = prepared.files.context.clone();
        let certificates = prepared.certificates.clone();
        let custom_base = prepared.custom_base.clone();
        tokio::task::spawn_blocking(move || {
            Self::new(
                &dirs,
                &namespace,
                &config,
                context,
                &certificates,
                custom_base,
            )
        })
    }

    /// The plan of a prepared launch, now.
    pub fn of(ctx: &Context, prepared: &Prepared) -> Result<Self, CliError> {
        Self::new(
            &ctx.dirs,
            &ctx.namespace,
            &prepared.resolved.config,
            prepared.files.context.clone(),
            &prepared.certificates,
            prepared.custom_base.clone(),
        )
    }
}

/// The full toolset tier, when configured: `toolset = "full"` puts it between the foundation
/// and the base, unless the base is a custom image (which is not built on the foundation).
pub fn full_plan(config: &Config, base: &BasePlan) -> Result<Option<FullPlan>, CliError> {
    if config.image.toolset != Toolset::Full || matches!(base, BasePlan::Image { .. }) {
        return Ok(None);
    }
    FullPlan::embedded()
        .map(Some)
        .map_err(|e| CliError::caused("cannot plan the full toolset image", e, None))
}

pub fn base_plan(dirs: &Dirs, config: &Config) -> Result<BasePlan, CliError> {
    Ok(match BaseSource::resolve(&config.image, &dirs.config) {
        BaseSource::Foundation => BasePlan::Foundation,
        BaseSource::Image { name, dockerfile } => BasePlan::Image {
            name,
            dockerfile,
            context: None,
        },
        BaseSource::Dockerfile { path } => {
            let (context, hash) = hashed_context(dirs, &dirs.config, "base")?;
            BasePlan::Dockerfile {
                path,
                context,
                hash,
            }
        }
    })
}

/// The project tier from its context as read: the hash is of exactly these bytes.
pub fn project_plan(namespace: &Namespace, context: ReadContext) -> ProjectPlan {
    let parent = ProjectParent::of(&context.dockerfile(), namespace);
    ProjectPlan {
        dockerfile: context.dir.join(chain::DOCKERFILE),
        hash: chain::context_tier_hash("project", &context.hash),
        context,
        parent,
    }
}

/// Scan a context directory (its `config.toml` is never part of it) and hash it through the
/// per-directory cache.
fn hashed_context(
    dirs: &Dirs,
    dir: &std::path::Path,
    tier: &str,
) -> Result<(DirContext, String), CliError> {
    let fail = |e: chain::ContextError| {
        CliError::other(
            e.to_string(),
            Some("fix the file or its permissions, or leave it out with .dockerignore"),
        )
    };
    let context = DirContext::scan(dir).map_err(fail)?;
    let cache = chain::context_cache_file(&dirs.cache, dir);
    let content = context.content_hash(&cache).map_err(fail)?;
    Ok((context, chain::context_tier_hash(tier, &content)))
}

/// A tier's state on the engine, serialized as `stockade check --json` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierState {
    Missing,
    UpToDate,
    Stale,
    /// The tier is not configured (no project Dockerfile).
    None,
    /// It could not be looked up (engine or configuration unavailable).
    Unknown,
}

impl From<&Freshness> for TierState {
    fn from(freshness: &Freshness) -> Self {
        match freshness {
            Freshness::Missing => Self::Missing,
            Freshness::UpToDate => Self::UpToDate,
            Freshness::Stale(_) => Self::Stale,
        }
    }
}

/// One tier's state on the engine, for `stockade check`.
#[derive(Debug, Clone, Serialize)]
pub struct TierStatus {
    pub tag: String,
    /// `default`, `dockerfile` or `image` for the base; `dockerfile` or `none` for the project;
    /// `manifest` for the full toolset tier.
    pub source: &'static str,
    /// The Dockerfile path or the custom image name.
    pub from: Option<String>,
    pub status: TierState,
    /// Why it is stale (or unknown).
    pub reason: Option<String>,
    pub id: Option<String>,
    /// `pulled from <registry> at <digest>` for a full image made from the published one (its
    /// labels say so); absent for one built here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
}

/// The base and project tiers' state (the foundation is reported on its own).
pub struct ChainStatus {
    /// The full toolset tier, when configured.
    pub full: Option<TierStatus>,
    pub base: TierStatus,
    pub project: TierStatus,
}

/// Inspect the chain without building. `foundation` is the foundation's image, if current;
/// `certificates` the user's CA files (a pulled tier's layer carries them).
pub async fn chain_status(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    project: &Project,
    foundation: Option<&ImageInfo>,
    certificates: &[(String, Vec<u8>)],
) -> Result<ChainStatus, CliError> {
    let ns = &ctx.namespace;
    let base_tag = ns.base_image();
    let base_info = engine.inspect_image(&base_tag).await?;
    let foundation_id = foundation.map(|f| f.id.as_str());

    let planned_base = base_plan(&ctx.dirs, config)?;
    let full = match full_plan(config, &planned_base)? {
        Some(plan) => {
            let info = engine.inspect_image(&ns.full_image()).await?;
            let labels = info.as_ref().map(|i| &i.labels);
            // Pulled (the user's layer over the pin) or built on the current foundation, as
            // the chain decides.
            let decision = Decision::full(&config.image);
            let current = decision.current(&plan.hash, certificates);
            let freshness =
                current.freshness(labels, Some(foundation_id.unwrap_or("(rebuilt first)")));
            let mut status = status_of(ns.full_image(), "manifest", None, info.as_ref(), freshness);
            let built = current.made_by(labels) == Some(Made::Built);
            if status.status != TierState::UpToDate && decision.pulls() && !built {
                status.reason = Some("pulled on the next run".to_owned());
            } else if foundation_id.is_none() && status.status == TierState::Stale {
                status.reason = Some("the foundation is rebuilt first".to_owned());
            }
            status.provenance = labels.and_then(crate::inventory::provenance);
            Some(status)
        }
        None => None,
    };
    // The tier the global base builds on: the full image when configured and current.
    let below_id = match &full {
        Some(full) => full
            .id
            .as_deref()
            .filter(|_| full.status == TierState::UpToDate),
        None => foundation_id,
    };

    let base = match planned_base {
        BasePlan::Foundation => {
            let aliased =
                base_info.as_ref().map(|b| b.id.as_str()) == below_id && below_id.is_some();
            TierStatus {
                tag: base_tag.clone(),
                source: "default",
                from: None,
                // The alias is made on the next run; a missing one is missing, not stale.
                status: match (aliased, &base_info) {
                    (true, _) => TierState::UpToDate,
                    (false, None) => TierState::Missing,
                    (false, Some(_)) => TierState::Stale,
                },
                reason: match (aliased, &base_info) {
                    (true, _) => None,
                    (false, None) => Some("made on the next run".to_owned()),
                    (false, Some(_)) => Some(format!(
                        "re-pointed at the {} on the next run",
                        if full.is_some() {
                            "full image"
                        } else {
                            "foundation"
                        }
                    )),
                },
                id: base_info.as_ref().map(|b| b.id.clone()),
                provenance: None,
            }
        }
        BasePlan::Dockerfile { path, hash, .. } => tier_status(
            base_tag.clone(),
            "dockerfile",
            Some(path.display().to_string()),
            base_info.as_ref(),
            &hash,
            below_id,
        ),
        BasePlan::Image { name, .. } => {
            let tag = chain::CustomTags::of(ns, &config.image, &name, &project.id()).layer;
            let layer_info = engine.inspect_image(&tag).await?;
            let custom = engine.inspect_image(&name).await?;
            match (custom, foundation) {
                (Some(custom), Some(foundation)) => {
                    let layer = RuntimeLayer::new(
                        &ns.foundation_image(),
                        &foundation.id,
                        &name,
                        !config.image.ca_certificates.is_empty(),
                    );
                    tier_status(
                        tag,
                        "image",
                        Some(name),
                        layer_info.as_ref(),
                        &layer.hash,
                        Some(&custom.id),
                    )
                }
                (custom, _) => TierStatus {
                    tag,
                    source: "image",
                    from: Some(name.clone()),
                    status: if layer_info.is_some() {
                        TierState::Stale
                    } else {
                        TierState::Missing
                    },
                    reason: Some(if custom.is_none() {
                        format!("{name} is not on the engine: pulled or built on the next run")
                    } else {
                        "the foundation is rebuilt first".to_owned()
                    }),
                    id: layer_info.map(|i| i.id),
                    provenance: None,
                },
            }
        }
    };

    let project_tag = ns.project_image(&project.id());
    // Read safely, like a launch; `check` builds nothing.
    let files = ProjectFiles::read(&project.root, Some(&ctx.dirs.cache))
        .map_err(crate::launch::files_error)?;
    let project = match files.context.map(|context| project_plan(ns, context)) {
        None => TierStatus {
            tag: project_tag,
            source: "none",
            from: None,
            status: TierState::None,
            reason: None,
            id: None,
            provenance: None,
        },
        Some(plan) => {
            let info = engine.inspect_image(&project_tag).await?;
            let parent = match plan.parent {
                ProjectParent::Base => base
                    .id
                    .as_deref()
                    .filter(|_| base.status == TierState::UpToDate),
                ProjectParent::Foundation => foundation_id,
            };
            let mut status = tier_status(
                project_tag,
                "dockerfile",
                Some(plan.dockerfile.display().to_string()),
                info.as_ref(),
                &plan.hash,
                // An unknown parent (stale base) makes the project stale too.
                Some(parent.unwrap_or("(rebuilt first)")),
            );
            if parent.is_none() && status.status == TierState::Stale {
                status.reason = Some("the image it builds on is rebuilt first".to_owned());
            }
            status
        }
    };
    Ok(ChainStatus {
        full,
        base,
        project,
    })
}

fn tier_status(
    tag: String,
    source: &'static str,
    from: Option<String>,
    info: Option<&ImageInfo>,
    hash: &str,
    parent: Option<&str>,
) -> TierStatus {
    let freshness = Freshness::of(info.map(|i| &i.labels), hash, parent);
    status_of(tag, source, from, info, freshness)
}

fn status_of(
    tag: String,
    source: &'static str,
    from: Option<String>,
    info: Option<&ImageInfo>,
    freshness: Freshness,
) -> TierStatus {
    TierStatus {
        tag,
        source,
        from,
        status: TierState::from(&freshness),
        reason: match freshness {
            Freshness::Stale(reason) => Some(reason.describe().to_owned()),
            _ => None,
        },
        id: info.map(|i| i.id.clone()),
        provenance: None,
    }
}
