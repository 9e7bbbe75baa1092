//! The image chain: foundation → base → project. Which source each tier has, what its content
//! hash is, and whether the image on the engine is current — decided without an engine.
//!
//! An image is current when it exists, its `io.stockade.hash` equals the hash of what would be
//! built now, and its `io.stockade.parent` equals the ID of the image it is built on. So a
//! foundation change rebuilds the base, and a base change rebuilds every project image the next
//! time its project runs.

pub mod dir_context;
pub mod dockerignore;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::ImageConfig;
use crate::hash::{ContentHasher, sha256_hex};
use crate::labels;
use crate::names::Namespace;

pub use dir_context::{ContextError, DirContext};

/// The file name of the global and project Dockerfiles.
pub const DOCKERFILE: &str = "Dockerfile";

/// The project context's own file that is never part of it (`.stockade/config.toml`).
pub const PROJECT_CONTEXT_EXCLUDED: &[&str] = &["config.toml"];

/// Whether `rel` (a path relative to a context directory of the user's own: the global config
/// directory, a `base_dockerfile`'s directory) is one of stockade's own files there, never sent
/// and never hashed: a TOML file at the top, with its backups and editor copies
/// (`config.toml`, `notes.toml`, `config.toml.bak`, `config.toml~`). Trust and state files live
/// under the state directory, never here. Files in subdirectories are the user's.
pub fn is_own_file(rel: &str) -> bool {
    !rel.contains('/')
        && (rel.ends_with(".toml") || rel.contains(".toml.") || rel.ends_with(".toml~"))
}

/// Where the global base image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// Neither a global Dockerfile nor a custom image: `stockade:base` is the foundation.
    Foundation,
    /// `~/.config/stockade/Dockerfile`, built with its directory as the context.
    Dockerfile { path: PathBuf },
    /// `[image] base = "<name>"`: a custom image, extended with stockade's runtime layer.
    Image {
        name: String,
        /// `[image] base_dockerfile` as configured, for when the image is missing.
        dockerfile: Option<PathBuf>,
    },
}

impl BaseSource {
    /// `[image] base` wins over the global Dockerfile; the Dockerfile's presence is the switch.
    pub fn resolve(image: &ImageConfig, config_dir: &Path) -> Self {
        if let Some(name) = &image.base {
            return Self::Image {
                name: name.clone(),
                dockerfile: image.base_dockerfile.clone(),
            };
        }
        let path = config_dir.join(DOCKERFILE);
        if path.is_file() {
            Self::Dockerfile { path }
        } else {
            Self::Foundation
        }
    }
}

/// Find `[image] base_dockerfile`. The loader made it absolute against the file that set it
/// (the global file's own directory, or the project root for the project file), so it is only
/// looked for there: a relative path in the global file never finds a project's file.
pub fn find_base_dockerfile(configured: &Path) -> Result<PathBuf, Vec<PathBuf>> {
    if configured.is_absolute() && configured.is_file() {
        Ok(configured.to_path_buf())
    } else {
        Err(vec![configured.to_path_buf()])
    }
}

/// The tags a custom base (`[image] base`) makes: the image stockade builds from
/// `base_dockerfile` when the named one is missing, and the runtime layer over it. A custom base
/// the project file names belongs to that project: both tags carry the project's id, so it is
/// never a shared tag that another project would use or rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomTags {
    /// Where an image built from `base_dockerfile` is tagged.
    pub build: String,
    /// The runtime layer's tag.
    pub layer: String,
    /// Whether the project owns them.
    pub project_owned: bool,
}

impl CustomTags {
    pub fn of(namespace: &Namespace, image: &ImageConfig, name: &str, project_id: &str) -> Self {
        if image.base_from_project {
            Self {
                build: namespace.project_custom_build(project_id, name),
                layer: namespace.project_custom_base_image(
                    project_id,
                    name,
                    labels::STOCKADE_VERSION,
                ),
                project_owned: true,
            }
        } else {
            Self {
                build: name.to_owned(),
                layer: namespace.custom_base_image(name, labels::STOCKADE_VERSION),
                project_owned: false,
            }
        }
    }
}

/// What stockade does to a Dockerfile's bytes before they go to the engine (in memory, over the
/// bytes that were read and hashed): `stockade:base` and `stockade:foundation` named in `FROM`
/// or `--from=` become this namespace's tiers, and the `LABEL` instruction is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileEdit {
    pub namespace: Namespace,
    /// The `LABEL` instruction (see `labels::dockerfile_instruction`).
    pub labels: String,
}

impl DockerfileEdit {
    /// The Dockerfile to send. Bytes that are not UTF-8 are only appended to.
    pub fn apply(&self, dockerfile: &[u8]) -> Vec<u8> {
        let mut out = match std::str::from_utf8(dockerfile) {
            Ok(text) => resolve_tiers(text, &self.namespace).into_bytes(),
            Err(_) => dockerfile.to_vec(),
        };
        out.extend_from_slice(self.labels.as_bytes());
        out
    }
}

/// `text` with the un-namespaced tier names in `FROM` lines and `--from=` flags replaced by this
/// namespace's (`FROM stockade:base` → `FROM dev-stockade:base`); unchanged without a namespace.
/// Everything else, whitespace included, stays as it was.
pub fn resolve_tiers(text: &str, namespace: &Namespace) -> String {
    let plain = Namespace::default();
    let tiers = [
        (plain.base_image(), namespace.base_image()),
        (plain.foundation_image(), namespace.foundation_image()),
        (plain.full_image(), namespace.full_image()),
    ];
    if tiers.iter().all(|(from, to)| from == to) {
        return text.to_owned();
    }
    let resolve = |word: &str| -> Option<String> {
        let (flag, image) = match word.split_once('=') {
            Some((flag, image)) if flag.eq_ignore_ascii_case("--from") => {
                (&word[..flag.len() + 1], image)
            }
            _ => ("", word),
        };
        tiers
            .iter()
            .find(|(from, _)| from == image)
            .map(|(_, to)| format!("{flag}{to}"))
    };
    let mut out = String::with_capacity(text.len() + 32);
    for line in text.split_inclusive('\n') {
        let is_from = line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"));
        let mut rest = line;
        while !rest.is_empty() {
            let start = rest.len() - rest.trim_start().len();
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            let resolved = if is_from || word.starts_with("--") {
                resolve(word)
            } else {
                None
            };
            out.push_str(resolved.as_deref().unwrap_or(word));
            rest = &rest[end..];
        }
    }
    out
}

/// Which image a project Dockerfile builds on: the base (recommended) or the foundation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectParent {
    Base,
    Foundation,
}

impl ProjectParent {
    /// Read from the Dockerfile's `FROM` lines: the foundation when one names the foundation's
    /// tag and none names the base's; otherwise the base.
    pub fn of(dockerfile: &str, namespace: &Namespace) -> Self {
        let dockerfile = resolve_tiers(dockerfile, namespace);
        let base = namespace.base_image();
        let foundation = namespace.foundation_image();
        let mut names_foundation = false;
        for line in dockerfile.lines() {
            let mut words = line.split_whitespace();
            if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
                continue;
            }
            for word in words {
                if word == base {
                    return Self::Base;
                }
                names_foundation |= word == foundation;
            }
        }
        if names_foundation {
            Self::Foundation
        } else {
            Self::Base
        }
    }
}

/// Whether an image on the engine is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    Missing,
    UpToDate,
    Stale(StaleReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// What goes into the image changed (Dockerfile, a context file, a build argument).
    ContentChanged,
    /// The image it is built on was rebuilt.
    ParentChanged,
}

impl StaleReason {
    pub fn describe(self) -> &'static str {
        match self {
            Self::ContentChanged => "its Dockerfile or build context changed",
            Self::ParentChanged => "the image it builds on changed",
        }
    }
}

impl Freshness {
    /// Compare an image's labels (`None`: no such image) with what would be built now.
    pub fn of(
        image_labels: Option<&HashMap<String, String>>,
        expected_hash: &str,
        expected_parent: Option<&str>,
    ) -> Self {
        let Some(found) = image_labels else {
            return Self::Missing;
        };
        if found.get(labels::HASH).map(String::as_str) != Some(expected_hash) {
            Self::Stale(StaleReason::ContentChanged)
        } else if let Some(parent) = expected_parent
            && found.get(labels::PARENT).map(String::as_str) != Some(parent)
        {
            Self::Stale(StaleReason::ParentChanged)
        } else {
            Self::UpToDate
        }
    }
}

/// The hash of a tier built from a directory context.
pub fn context_tier_hash(tier: &str, context_hash: &str) -> String {
    let mut hasher = ContentHasher::new("stockade-tier-v1");
    hasher.part(tier.as_bytes()).part(context_hash.as_bytes());
    hasher.finish()
}

/// Where the content-hash cache of a context directory lives.
pub fn context_cache_file(cache_dir: &Path, context_dir: &Path) -> PathBuf {
    let key = sha256_hex(context_dir.as_os_str().as_encoded_bytes());
    cache_dir.join("contexts").join(&key[..24])
}

/// The runtime layer that makes any Linux image a sandbox base: stockade's `/opt/stockade`
/// (static init, privilege drop, entrypoint) copied from the foundation, run as root so the
/// entrypoint can map the user. Only COPY/ENV/ENTRYPOINT: no shell needed in the custom image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLayer {
    pub dockerfile: String,
    pub hash: String,
}

impl RuntimeLayer {
    pub fn new(foundation_tag: &str, foundation_id: &str, custom: &str, with_ca: bool) -> Self {
        let mut dockerfile = format!(
            "# stockade's runtime layer over a custom base image.\n\
             FROM {foundation_tag} AS stockade\n\
             FROM {custom}\n\
             USER root\n\
             COPY --from=stockade /opt/stockade /opt/stockade\n"
        );
        if with_ca {
            // The foundation's trust store holds `[image] ca_certificates`; images without
            // ca-certificates (busybox, distroless) get it too.
            let bundle = "/opt/stockade/ca-certificates.crt";
            dockerfile.push_str(&format!(
                "COPY --from=stockade /etc/ssl/certs/ca-certificates.crt {bundle}\n\
                 ENV SSL_CERT_FILE={bundle} NODE_EXTRA_CA_CERTS={bundle} REQUESTS_CA_BUNDLE={bundle}\n"
            ));
        }
        dockerfile.push_str(
            "ENTRYPOINT [\"/opt/stockade/bin/tini\", \"--\", \"/opt/stockade/entrypoint.sh\"]\n\
             CMD []\n",
        );
        let mut hasher = ContentHasher::new("stockade-runtime-layer-v1");
        hasher
            .part(dockerfile.as_bytes())
            .part(foundation_id.as_bytes());
        Self {
            hash: hasher.finish(),
            dockerfile,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(hash: &str, parent: &str) -> HashMap<String, String> {
        HashMap::from([
            (labels::HASH.to_owned(), hash.to_owned()),
            (labels::PARENT.to_owned(), parent.to_owned()),
        ])
    }

    #[test]
    fn freshness_compares_hash_then_parent() {
        let l = labels("h1", "p1");
        assert_eq!(Freshness::of(None, "h1", Some("p1")), Freshness::Missing);
        assert_eq!(
            Freshness::of(Some(&l), "h1", Some("p1")),
            Freshness::UpToDate
        );
        assert_eq!(
            Freshness::of(Some(&l), "h2", Some("p1")),
            Freshness::Stale(StaleReason::ContentChanged)
        );
        assert_eq!(
            Freshness::of(Some(&l), "h1", Some("p2")),
            Freshness::Stale(StaleReason::ParentChanged)
        );
        assert_eq!(Freshness::of(Some(&l), "h1", None), Freshness::UpToDate);
    }

    #[test]
    fn project_parent_follows_the_from_line() {
        let ns = Namespace::default();
        assert_eq!(
            ProjectParent::of("FROM stockade:base\nRUN x\n", &ns),
            ProjectParent::Base
        );
        assert_eq!(
            ProjectParent::of("from stockade:foundation AS b\n", &ns),
            ProjectParent::Foundation
        );
        assert_eq!(
            ProjectParent::of("FROM --platform=linux/amd64 stockade:foundation\n", &ns),
            ProjectParent::Foundation
        );
        assert_eq!(ProjectParent::of("FROM ubuntu\n", &ns), ProjectParent::Base);
        let dev = Namespace::new(Some("dev")).unwrap();
        assert_eq!(
            ProjectParent::of("FROM dev-stockade:foundation\n", &dev),
            ProjectParent::Foundation
        );
        // The un-namespaced names mean this namespace's tiers.
        assert_eq!(
            ProjectParent::of("FROM stockade:foundation\n", &dev),
            ProjectParent::Foundation
        );
        assert_eq!(
            ProjectParent::of("FROM stockade:foundation AS f\nFROM stockade:base\n", &dev),
            ProjectParent::Base
        );
    }

    #[test]
    fn tiers_resolve_to_the_namespace_in_from_lines_only() {
        let dev = Namespace::new(Some("dev")).unwrap();
        let text = "# FROM stockade:base\nFROM  --platform=linux/amd64 stockade:base AS b\n\
                    from stockade:foundation\nCOPY --from=stockade:foundation /a /a\n\
                    RUN echo stockade:base\nFROM stockade:based\n";
        assert_eq!(
            resolve_tiers(text, &dev),
            "# FROM stockade:base\nFROM  --platform=linux/amd64 dev-stockade:base AS b\n\
             from dev-stockade:foundation\nCOPY --from=dev-stockade:foundation /a /a\n\
             RUN echo stockade:base\nFROM stockade:based\n"
        );
        assert_eq!(resolve_tiers(text, &Namespace::default()), text);
        let edit = DockerfileEdit {
            namespace: dev,
            labels: "\nLABEL a=b\n".to_owned(),
        };
        assert_eq!(
            edit.apply(b"FROM stockade:base"),
            b"FROM dev-stockade:base\nLABEL a=b\n"
        );
        assert_eq!(edit.apply(b"FROM \xff"), b"FROM \xff\nLABEL a=b\n");
    }

    #[test]
    fn base_source_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = crate::config::Config::default().image;
        assert_eq!(
            BaseSource::resolve(&image, dir.path()),
            BaseSource::Foundation
        );
        std::fs::write(dir.path().join(DOCKERFILE), "FROM stockade:foundation\n").unwrap();
        assert_eq!(
            BaseSource::resolve(&image, dir.path()),
            BaseSource::Dockerfile {
                path: dir.path().join(DOCKERFILE)
            }
        );
        image.base = Some("ruby:3.3".into());
        assert!(matches!(
            BaseSource::resolve(&image, dir.path()),
            BaseSource::Image { name, .. } if name == "ruby:3.3"
        ));
    }

    #[test]
    fn base_dockerfile_is_only_looked_for_where_it_was_resolved() {
        let config = tempfile::tempdir().unwrap();
        let path = config.path().join("images/Dockerfile");
        assert_eq!(find_base_dockerfile(&path).unwrap_err(), vec![path.clone()]);
        std::fs::create_dir_all(config.path().join("images")).unwrap();
        std::fs::write(&path, "FROM x\n").unwrap();
        assert_eq!(find_base_dockerfile(&path).unwrap(), path);
        // Never relative to whatever the working directory is.
        let rel = Path::new("images/Dockerfile");
        assert!(find_base_dockerfile(rel).is_err());
    }

    #[test]
    fn a_project_custom_base_carries_the_project_id() {
        let ns = Namespace::default();
        let mut image = crate::config::Config::default().image;
        let shared = CustomTags::of(&ns, &image, "ruby:3.3", "0123456789ab");
        assert_eq!(shared.build, "ruby:3.3");
        assert!(!shared.project_owned);
        image.base_from_project = true;
        let owned = CustomTags::of(&ns, &image, "ruby:3.3", "0123456789ab");
        assert_eq!(owned.build, "stockade-custom-0123456789ab:ruby-3-3");
        assert!(owned.layer.starts_with("stockade-ruby-3-3-0123456789ab:"));
        assert!(ns.owns_repository(owned.build.split(':').next().unwrap()));
    }

    #[test]
    fn runtime_layer_needs_no_shell_and_follows_the_foundation() {
        let a = RuntimeLayer::new("stockade:foundation", "sha256:1", "busybox:1", false);
        assert!(!a.dockerfile.contains("RUN"));
        assert!(
            a.dockerfile
                .contains("COPY --from=stockade /opt/stockade /opt/stockade")
        );
        assert!(a.dockerfile.contains("USER root"));
        let b = RuntimeLayer::new("stockade:foundation", "sha256:2", "busybox:1", false);
        assert_ne!(a.hash, b.hash, "a new foundation rebuilds the layer");
        let c = RuntimeLayer::new("stockade:foundation", "sha256:1", "busybox:1", true);
        assert!(c.dockerfile.contains("SSL_CERT_FILE"));
        assert_ne!(a.hash, c.hash);
    }
}
