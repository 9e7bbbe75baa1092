//! What stockade owns on the engine, and which of it is orphaned (for `images` and `prune`).
//!
//! An image is stockade's when it carries `io.stockade.tier` and this namespace's
//! `io.stockade.namespace`, and is either untagged or tagged only in stockade's repositories
//! (an image a user built `FROM stockade:base` inherits the labels but keeps its own name, so it
//! is never counted). It is orphaned when nothing will use it again:
//! - untagged: a rebuild replaced it;
//! - a project image whose project directory is gone;
//! - a custom base's runtime layer that the configuration no longer names;
//! - a full toolset image while the toolset is `minimal`.
//!
//! An image of the current chain is never orphaned, whatever its labels say: the namespace's
//! foundation, full toolset image and base, and every image a kept image names as its `io.stockade.parent` (a
//! project image inherits its parent's labels, a custom base's among them).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;
use stockade_core::config::Config;
use stockade_core::labels;
use stockade_engine::Engine;

use crate::context::Context;
use crate::exit::CliError;

#[derive(Debug, Clone, Serialize)]
pub struct OwnedImage {
    pub id: String,
    pub tags: Vec<String>,
    pub tier: Tier,
    /// The project directory of a project image.
    pub project: Option<PathBuf>,
    pub size: i64,
    /// Unix seconds.
    pub created: i64,
    /// A container (running or not) was created from it.
    pub in_use: bool,
    /// Why nothing will use it again, when that is so.
    pub orphaned: Option<String>,
    /// Where it came from: `built`, or `pulled from <registry> at <digest>`.
    pub source: String,
}

impl OwnedImage {
    /// `in use`, `orphaned (<why>)` or `current`.
    pub fn state(&self) -> String {
        match (&self.orphaned, self.in_use) {
            (_, true) => "in use".to_owned(),
            (Some(why), false) => format!("orphaned ({why})"),
            (None, false) => "current".to_owned(),
        }
    }

    /// The name to remove it by: each tag (removing by ID fails while several tags point at
    /// it), or the ID when it has none.
    pub fn removal_names(&self) -> Vec<String> {
        if self.tags.is_empty() {
            vec![self.id.clone()]
        } else {
            self.tags.clone()
        }
    }
}

pub async fn images(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
) -> Result<Vec<OwnedImage>, CliError> {
    images_without(engine, ctx, config, &HashSet::new()).await
}

/// `images`, as if the containers `leaving` (IDs prune removes first) were gone already.
pub async fn images_without(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    leaving: &HashSet<String>,
) -> Result<Vec<OwnedImage>, CliError> {
    let ns = &ctx.namespace;
    let listed = engine.list_images(&[labels::TIER.to_owned()]).await?;
    let used: HashSet<String> = engine
        .list_containers(&[])
        .await?
        .into_iter()
        .filter(|c| !leaving.contains(&c.id))
        .map(|c| c.image_id)
        .collect();
    let base_id = engine.inspect_image(&ns.base_image()).await?.map(|i| i.id);
    let foundation_id = engine
        .inspect_image(&ns.foundation_image())
        .await?
        .map(|i| i.id);
    // The full toolset image is current while `toolset = "full"` names it.
    let full_id = match config.image.toolset {
        stockade_core::config::Toolset::Full => {
            engine.inspect_image(&ns.full_image()).await?.map(|i| i.id)
        }
        stockade_core::config::Toolset::Minimal => None,
    };
    let configured_layer = config
        .image
        .base
        .as_deref()
        .map(|name| ns.custom_base_image(name, labels::STOCKADE_VERSION));

    let mut parents: HashMap<String, Option<String>> = HashMap::new();
    let mut owned: Vec<OwnedImage> = listed
        .into_iter()
        .filter(|image| {
            image.labels.get(labels::NAMESPACE).map(String::as_str) == Some(ns.as_str())
                && image.tags.iter().all(|tag| {
                    let repo = tag.rsplit_once(':').map_or(tag.as_str(), |(repo, _)| repo);
                    ns.owns_repository(repo)
                })
        })
        .map(|image| {
            let tier = Tier::of(image.labels.get(labels::TIER).map(String::as_str));
            // Project images, and a project's own custom base (which carries its project).
            let project = image.labels.get(labels::PROJECT).map(PathBuf::from);
            let orphaned = if image.tags.is_empty() {
                Some("superseded by a rebuild".to_owned())
            } else if project.as_ref().is_some_and(|dir| !dir.is_dir()) {
                Some("its project directory is gone".to_owned())
            } else if image.labels.contains_key(labels::CUSTOM_BASE)
                && project.is_none()
                && base_id.as_deref() != Some(image.id.as_str())
                && !image
                    .tags
                    .iter()
                    .any(|t| Some(t) == configured_layer.as_ref())
            {
                Some("custom base no longer configured".to_owned())
            } else if tier == Tier::Full && full_id.as_deref() != Some(image.id.as_str()) {
                Some("the toolset is no longer full".to_owned())
            } else {
                None
            };
            parents.insert(image.id.clone(), image.labels.get(labels::PARENT).cloned());
            let source = if matches!(tier, Tier::Foundation | Tier::Full) {
                provenance(&image.labels)
            } else {
                None
            };
            OwnedImage {
                source: source.unwrap_or_else(|| "built".to_owned()),
                in_use: used.contains(&image.id),
                id: image.id,
                tags: image.tags,
                tier,
                project,
                size: image.size,
                created: image.created,
                orphaned,
            }
        })
        .collect();
    keep_the_current_chain(
        &mut owned,
        &parents,
        [
            base_id.as_deref(),
            foundation_id.as_deref(),
            full_id.as_deref(),
        ],
    );
    owned.sort_by(|a, b| a.tier.cmp(&b.tier).then(b.created.cmp(&a.created)));
    Ok(owned)
}

/// Clear the orphan mark of the namespace's tiers (`current`) and of every image a kept image
/// is built on, up the chain.
fn keep_the_current_chain(
    owned: &mut [OwnedImage],
    parents: &HashMap<String, Option<String>>,
    current: [Option<&str>; 3],
) {
    let mut kept: HashSet<String> = current.into_iter().flatten().map(str::to_owned).collect();
    kept.extend(
        owned
            .iter()
            .filter(|image| image.orphaned.is_none())
            .map(|image| image.id.clone()),
    );
    // Each round adds the parents of what is kept; a chain is a few tiers deep.
    loop {
        let more: Vec<String> = kept
            .iter()
            .filter_map(|id| parents.get(id).cloned().flatten())
            .filter(|parent| !kept.contains(parent))
            .collect();
        if more.is_empty() {
            break;
        }
        kept.extend(more);
    }
    for image in owned.iter_mut() {
        if kept.contains(&image.id) {
            image.orphaned = None;
        }
    }
}

/// `pulled from <registry> at <digest>` for a foundation or full image made from a published
/// image (its labels say so), `None` for one built here. Only those tiers' own labels count:
/// the tiers built on a pulled one inherit them (a full image built here says
/// `io.stockade.source=build` over what it inherits).
pub fn provenance(labels: &HashMap<String, String>) -> Option<String> {
    if labels.get(labels::SOURCE).map(String::as_str) != Some("pull") {
        return None;
    }
    Some(format!(
        "pulled from {} at {}",
        labels.get(labels::REGISTRY).map_or("?", String::as_str),
        labels.get(labels::DIGEST).map_or("?", String::as_str)
    ))
}

/// An image's tier (its `io.stockade.tier` label), in the order `images` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Foundation,
    /// The full toolset image (`[image] toolset = "full"`).
    Full,
    Base,
    Project,
    /// A custom base built from `[image] base_dockerfile`.
    Custom,
    /// The egress gateway (docs/egress.md), built on the foundation.
    Gateway,
    /// A label value this version does not know.
    Unknown,
}

impl Tier {
    fn of(label: Option<&str>) -> Self {
        match label {
            Some("foundation") => Self::Foundation,
            Some("full") => Self::Full,
            Some("base") => Self::Base,
            Some("project") => Self::Project,
            Some("custom") => Self::Custom,
            Some("gateway") => Self::Gateway,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Foundation => "foundation",
            Self::Full => "full",
            Self::Base => "base",
            Self::Project => "project",
            Self::Custom => "custom",
            Self::Gateway => "gateway",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `1.2 GB`, `640 MB`, `12 kB` (decimal units, as the engine's CLI prints).
pub fn human_size(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", units[unit])
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// `3 days ago`, from Unix seconds.
pub fn human_age(created: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(created);
    let seconds = (now - created).max(0);
    let (value, unit) = match seconds {
        s if s < 60 => return "just now".to_owned(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{value} {unit}{} ago", if value == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_serialize_as_their_labels_and_sort_in_chain_order() {
        for label in ["foundation", "full", "base", "project", "custom"] {
            let tier = Tier::of(Some(label));
            assert_eq!(tier.as_str(), label);
            assert_eq!(serde_json::to_value(tier).unwrap(), label);
        }
        assert_eq!(Tier::of(Some("other")), Tier::Unknown);
        assert!(Tier::Foundation < Tier::Full && Tier::Full < Tier::Base);
        assert!(Tier::Base < Tier::Project);
    }

    #[test]
    fn sizes_read_like_the_engine_cli() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(12_345), "12.3 kB");
        assert_eq!(human_size(704_000_000), "704.0 MB");
        assert_eq!(human_size(-1), "0 B");
    }
}
