//! Keeping the sandbox image current: compare the content hash with the engine's label, build
//! lazily when stale, and build once when several stockade processes need the same image.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::PathBuf;

use stockade_core::config::Config;
use stockade_core::foundation::{FoundationPlan, PROXY_VARS};
use stockade_core::labels;
use stockade_core::names::sanitize;
use stockade_engine::{BuildEvent, BuildRequest, Engine, ImageInfo};

use crate::context::{Context, env};
use crate::exit::CliError;
use crate::ui::seconds;

/// The state of an image tier on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    Missing,
    UpToDate {
        id: String,
    },
    Stale {
        id: String,
        found_hash: Option<String>,
    },
}

impl ImageStatus {
    pub fn of(info: Option<&ImageInfo>, expected_hash: &str) -> Self {
        match info {
            None => Self::Missing,
            Some(info) => {
                let found = info.labels.get(labels::HASH);
                if found.map(String::as_str) == Some(expected_hash) {
                    Self::UpToDate {
                        id: info.id.clone(),
                    }
                } else {
                    Self::Stale {
                        id: info.id.clone(),
                        found_hash: found.cloned(),
                    }
                }
            }
        }
    }

    /// The status as `stockade check --json` reports it.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::UpToDate { .. } => "up-to-date",
            Self::Stale { .. } => "stale",
        }
    }
}

/// Build now (even when current) or only when stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    IfStale,
    Force { no_cache: bool },
}

/// An image that is ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub tag: String,
    /// Whether this call built it (false: it was already current).
    pub built: bool,
}

/// Make sure the foundation image is current.
pub async fn ensure_foundation(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    mode: BuildMode,
) -> Result<Ready, CliError> {
    let plan = FoundationPlan::new(&config.image).map_err(|e| {
        CliError::other(
            e.to_string(),
            Some("fix or remove the entry in `[image] ca_certificates`"),
        )
    })?;
    let tag = ctx.namespace.foundation_image();
    let current = |tag: String| Ok(Ready { tag, built: false });
    if mode == BuildMode::IfStale && is_current(engine, &tag, &plan.hash).await? {
        return current(tag);
    }

    let _lock = BuildLock::acquire(ctx, &tag)?;
    // Another process may have built it while we waited for the lock.
    if mode == BuildMode::IfStale && is_current(engine, &tag, &plan.hash).await? {
        return current(tag);
    }

    let mut build_args: HashMap<String, String> = plan.build_args.clone().into_iter().collect();
    for name in PROXY_VARS {
        if let Some(value) = env(name) {
            build_args.insert((*name).to_owned(), value);
        }
    }
    let image_labels = HashMap::from([
        (labels::TIER.to_owned(), "foundation".to_owned()),
        (labels::HASH.to_owned(), plan.hash.clone()),
        (
            labels::VERSION.to_owned(),
            labels::STOCKADE_VERSION.to_owned(),
        ),
        (
            labels::NAMESPACE.to_owned(),
            ctx.namespace.as_str().to_owned(),
        ),
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
    ]);
    let context = plan.context.to_tar().map_err(|e| {
        CliError::other(
            format!("cannot pack the foundation build context: {e}"),
            None,
        )
    })?;

    let ui = &ctx.ui;
    let task = ui.task(&format!(
        "Building foundation image ({tag}) from {}…",
        config.image.from
    ));
    let no_cache = matches!(mode, BuildMode::Force { no_cache: true });
    let result = engine
        .build(
            BuildRequest {
                tag: tag.clone(),
                context,
                build_args,
                labels: image_labels,
                no_cache,
            },
            |event| match event {
                BuildEvent::Step(line) => ui.build_output(&task, &line, true),
                BuildEvent::Output(line) => ui.build_output(&task, &line, false),
            },
        )
        .await;
    let elapsed = task.elapsed();
    task.finish();
    result?;
    ui.success(&format!("Foundation image built ({})", seconds(elapsed)));
    Ok(Ready { tag, built: true })
}

async fn is_current(engine: &Engine, tag: &str, hash: &str) -> Result<bool, CliError> {
    let info = engine.inspect_image(tag).await?;
    Ok(matches!(
        ImageStatus::of(info.as_ref(), hash),
        ImageStatus::UpToDate { .. }
    ))
}

/// An exclusive lock per image tag under the state directory, so concurrent stockade processes
/// build an image once. Released when dropped (or when the process dies).
struct BuildLock {
    _file: File,
}

impl BuildLock {
    fn acquire(ctx: &Context, tag: &str) -> Result<Self, CliError> {
        let dir: PathBuf = ctx.dirs.state.join("locks");
        let path = dir.join(format!("{}.lock", sanitize(tag, 100)));
        let io_error = |e: std::io::Error| {
            CliError::other(
                format!("cannot create the build lock {}: {e}", path.display()),
                Some("check the permissions of stockade's state directory"),
            )
        };
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                ctx.ui.info(&format!(
                    "Waiting for another stockade process to build {tag}…"
                ));
                file.lock().map_err(io_error)?;
            }
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
        Ok(Self { _file: file })
    }
}
