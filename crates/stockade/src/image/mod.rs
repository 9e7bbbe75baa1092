//! Keeping the image chain current: compare each tier's content hash and parent with the
//! engine's labels, build lazily what is stale, build once when several stockade processes need
//! the same image, and clean up the images a rebuild supersedes.

mod chain;
mod credentials;
mod custom;
mod interrupt;
mod keyless;
mod plan;
mod progress;
pub mod pull;
mod signature;

use std::collections::HashMap;

use stockade_core::chain::{DockerfileEdit, Freshness};
use stockade_core::foundation::PROXY_VARS;
use stockade_core::labels;
use stockade_engine::{BuildEvent, BuildRequest, Engine, ImageInfo, Removal};

use crate::context::{Context, env};
use crate::exit::CliError;
use crate::lock::FileLock;
use crate::ui::seconds;

pub use chain::{chain_image, chain_tags, ensure_chain, ensure_foundation_only, ensure_planned};
pub use interrupt::Forwarding;
pub use plan::{ChainPlan, TierState, TierStatus, chain_status};

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
    pub id: String,
    /// Whether this run built it (false: it was already current).
    pub built: bool,
}

/// One image to keep current: what it is, how to recognise a current one, how to build it.
pub struct TierBuild {
    /// `foundation`, `base` or `project` (the `io.stockade.tier` label).
    pub tier: &'static str,
    /// For messages: "global base image".
    pub title: String,
    pub tag: String,
    /// The Dockerfile's name in the context.
    pub dockerfile: String,
    pub hash: String,
    /// The ID of the image this one is built on, when stockade tracks it.
    pub parent: Option<String>,
    pub build_args: HashMap<String, String>,
    /// Labels beyond tier, hash, parent, version and namespace.
    pub labels: HashMap<String, String>,
}

/// One pass over the chain: what the engine said about each tag at the start (asked all at
/// once), and the images a rebuild replaced (removed at the end, children first).
#[derive(Debug, Default)]
pub struct ChainRun {
    seen: HashMap<String, Option<ImageInfo>>,
    replaced: Vec<String>,
}

impl ChainRun {
    /// Inspect `tags` concurrently: the first look at each tier costs one round trip in all.
    pub async fn prefetch(engine: &Engine, tags: &[String]) -> Result<Self, CliError> {
        let answers =
            futures_util::future::join_all(tags.iter().map(|tag| engine.inspect_image(tag))).await;
        let mut seen = HashMap::new();
        for (tag, answer) in tags.iter().zip(answers) {
            seen.insert(tag.clone(), answer?);
        }
        Ok(Self {
            seen,
            replaced: Vec::new(),
        })
    }

    /// The image under `tag`: the prefetched answer the first time, the engine's afterwards.
    async fn first_look(
        &mut self,
        engine: &Engine,
        tag: &str,
    ) -> Result<Option<ImageInfo>, CliError> {
        match self.seen.remove(tag) {
            Some(info) => Ok(info),
            None => Ok(engine.inspect_image(tag).await?),
        }
    }

    /// Remember `old` when it is an image of this tier and namespace that `new_id` replaced.
    fn note(&mut self, ctx: &Context, tier: &str, old: Option<&ImageInfo>, new_id: &str) {
        if let Some(old) = old
            && old.id != new_id
            && old.labels.get(labels::TIER).map(String::as_str) == Some(tier)
            && old.labels.get(labels::NAMESPACE).map(String::as_str) == Some(ctx.namespace.as_str())
        {
            self.replaced.push(old.id.clone());
        }
    }

    /// Remove what was replaced, newest first (a project image before the base it was built
    /// on). An image still used by a container or another image stays for `stockade prune`.
    pub async fn remove(self, engine: &Engine) {
        for id in self.replaced.iter().rev() {
            match engine.remove_image(id).await {
                Ok(Removal::InUse(why)) => tracing::debug!("kept run image {id}: {why}"),
                Ok(_) => {}
                Err(e) => tracing::debug!("removing run image {id}: {e}"),
            }
        }
    }
}

/// Make sure `build`'s image is current, building it from `context` when it is not. `context`
/// gets the edit to make to the Dockerfile's bytes (tiers resolved to the namespace, the `LABEL`
/// instruction appended).
pub async fn ensure_built(
    engine: &Engine,
    ctx: &Context,
    build: TierBuild,
    mode: BuildMode,
    run: &mut ChainRun,
    context: impl FnOnce(&DockerfileEdit) -> Result<Vec<u8>, CliError>,
) -> Result<Ready, CliError> {
    let fresh = |info: &Option<ImageInfo>| -> Option<Ready> {
        let info = info.as_ref()?;
        let freshness = Freshness::of(Some(&info.labels), &build.hash, build.parent.as_deref());
        (mode == BuildMode::IfStale && freshness == Freshness::UpToDate).then(|| Ready {
            tag: build.tag.clone(),
            id: info.id.clone(),
            built: false,
        })
    };
    let info = run.first_look(engine, &build.tag).await?;
    if let Some(ready) = fresh(&info) {
        return Ok(ready);
    }
    let _lock = FileLock::acquire(ctx, &build.tag, &format!("build {}", build.tag)).await?;
    // Another process may have built it while we waited for the lock.
    let info = engine.inspect_image(&build.tag).await?;
    if let Some(ready) = fresh(&info) {
        return Ok(ready);
    }

    let mut build_args = build.build_args.clone();
    for name in PROXY_VARS {
        if let Some(value) = env(name) {
            build_args.insert((*name).to_owned(), value);
        }
    }
    let mut image_labels = build.labels.clone();
    image_labels.extend([
        (labels::TIER.to_owned(), build.tier.to_owned()),
        (labels::HASH.to_owned(), build.hash.clone()),
        (
            labels::VERSION.to_owned(),
            labels::STOCKADE_VERSION.to_owned(),
        ),
        (
            labels::NAMESPACE.to_owned(),
            ctx.namespace.as_str().to_owned(),
        ),
    ]);
    if let Some(parent) = &build.parent {
        image_labels.insert(labels::PARENT.to_owned(), parent.clone());
    }
    // The labels go into the Dockerfile as one LABEL instruction: the classic builder would make
    // a step of each label passed as a build parameter.
    let context = context(&DockerfileEdit {
        namespace: ctx.namespace.clone(),
        labels: labels::dockerfile_instruction(&image_labels),
    })?;

    let ui = &ctx.ui;
    let task = ui.task(&format!("Building {}…", build.title));
    let no_cache = matches!(mode, BuildMode::Force { no_cache: true });
    let building = interrupt::Building::start()?;
    let mut layers = Vec::new();
    let outcome = tokio::select! {
        result = engine.build(
            BuildRequest {
                tag: build.tag.clone(),
                dockerfile: build.dockerfile.clone(),
                context,
                build_args,
                no_cache,
            },
            |event| match event {
                BuildEvent::Step(line) => ui.build_output(&task, &line, true),
                BuildEvent::Output(line) => ui.build_output(&task, &line, false),
                BuildEvent::Layer(id) => layers.push(id),
            },
        ) => Ok(result),
        code = building.interrupted() => Err(code),
    };
    let elapsed = task.elapsed();
    task.finish();
    let result = match outcome {
        Ok(result) => result,
        Err(code) => {
            // The build's request is dropped: the engine cancels it and tags nothing.
            ui.warn(&format!(
                "interrupted: the build of {} stopped; removing the {} intermediate images it made",
                build.title,
                layers.len()
            ));
            remove_intermediates(engine, &layers).await;
            std::process::exit(code);
        }
    };
    drop(building);
    let id = result?;
    ui.success(&format!(
        "{} built ({})",
        capitalise(&build.title),
        seconds(elapsed)
    ));
    run.note(ctx, build.tier, info.as_ref(), &id);
    Ok(Ready {
        tag: build.tag,
        id,
        built: true,
    })
}

/// Remove the untagged images an unfinished build made, newest first (removing one also removes
/// its untagged parents). The engine may still be removing the container of the step it was
/// running, which holds the newest one: retry for a few seconds while one is in use.
async fn remove_intermediates(engine: &Engine, layers: &[String]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut left: Vec<&String> = layers.iter().rev().collect();
    while !left.is_empty() {
        let mut busy = Vec::new();
        for id in left {
            match engine.remove_image(id).await {
                Ok(Removal::InUse(why)) => {
                    tracing::debug!("intermediate {id} in use: {why}");
                    busy.push(id);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("removing intermediate {id}: {e}"),
            }
        }
        if busy.is_empty() || std::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        left = busy;
    }
}

/// Point `tag` at the image `target` (already on the engine), under the tag's build lock.
/// Returns whether the tag moved.
pub async fn alias(
    engine: &Engine,
    ctx: &Context,
    tier: &str,
    tag: &str,
    target: &Ready,
    run: &mut ChainRun,
) -> Result<bool, CliError> {
    let points_at_target =
        |info: &Option<ImageInfo>| info.as_ref().is_some_and(|info| info.id == target.id);
    let info = run.first_look(engine, tag).await?;
    if points_at_target(&info) {
        return Ok(false);
    }
    let _lock = FileLock::acquire(ctx, tag, &format!("build {tag}")).await?;
    let info = engine.inspect_image(tag).await?;
    if points_at_target(&info) {
        return Ok(false);
    }
    let (repo, name) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    engine.tag_image(&target.id, repo, name).await?;
    run.note(ctx, tier, info.as_ref(), &target.id);
    Ok(true)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
