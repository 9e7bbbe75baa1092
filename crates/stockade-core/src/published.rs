//! The published images (`<prefix>/foundation:<version>`, `<prefix>/full:<version>`): their pins,
//! whether a run pulls or builds, and the user's thin layer over a pulled image (its CA
//! certificates), with the content hash that decides whether the layer on the engine is current.

use std::collections::HashMap;

use crate::chain::Freshness;
use crate::config::{DEFAULT_FROM, ImageConfig, ImageSource};
use crate::context::{BuildContext, ContextFile};
use crate::hash::ContentHasher;
use crate::labels;

/// The pins compiled into a release binary (absent in development builds).
pub const BUILT_IN_FOUNDATION_DIGEST: Option<&str> = option_env!("STOCKADE_FOUNDATION_DIGEST");
pub const BUILT_IN_FULL_DIGEST: Option<&str> = option_env!("STOCKADE_FULL_DIGEST");

/// The build argument that carries the pulled image (`repository@sha256:…`) into the layer.
pub const PULLED_ARG: &str = "STOCKADE_PULLED";

/// One published image to pull: its repository name under each registry prefix, the tag and
/// the digest it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `foundation` or `full`.
    pub name: String,
    /// The tag: stockade's version.
    pub version: String,
    /// `sha256:…`: what the tag must name, and what is pulled.
    pub pin: String,
    /// Where the pin comes from, for messages (`[image] foundation_digest`, `this binary`).
    pub pin_source: &'static str,
}

impl Published {
    /// The published foundation, when there is a pin for it.
    pub fn foundation(image: &ImageConfig) -> Option<Self> {
        Self::pinned(
            "foundation",
            image.foundation_digest.as_deref(),
            "[image] foundation_digest",
            BUILT_IN_FOUNDATION_DIGEST,
        )
    }

    /// The published full image, when there is a pin for it.
    pub fn full(image: &ImageConfig) -> Option<Self> {
        Self::pinned(
            "full",
            image.full_digest.as_deref(),
            "[image] full_digest",
            BUILT_IN_FULL_DIGEST,
        )
    }

    fn pinned(
        name: &str,
        configured: Option<&str>,
        key: &'static str,
        built_in: Option<&str>,
    ) -> Option<Self> {
        let (pin, pin_source) = match (configured, built_in.filter(|d| is_digest(d))) {
            (Some(pin), _) => (pin, key),
            (None, Some(pin)) => (pin, "this stockade binary"),
            (None, None) => return None,
        };
        Some(Self {
            name: name.to_owned(),
            version: crate::labels::STOCKADE_VERSION.to_owned(),
            pin: pin.to_owned(),
            pin_source,
        })
    }

    /// `<prefix>/<name>`.
    pub fn repository(&self, prefix: &str) -> String {
        format!("{}/{}", prefix.trim_end_matches('/'), self.name)
    }

    /// `<prefix>/<name>:<version>`: the tag whose digest must be the pin.
    pub fn tagged(&self, prefix: &str) -> String {
        format!("{}:{}", self.repository(prefix), self.version)
    }

    /// `<prefix>/<name>@<pin>`: what the engine pulls.
    pub fn pinned_reference(&self, prefix: &str) -> String {
        format!("{}@{}", self.repository(prefix), self.pin)
    }
}

/// `sha256:` and 64 lower-case hex digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What a run does for a published tier (the foundation, or the full image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Build it locally (`build`, or `auto` when the image would not be the published one or
    /// nothing is pinned).
    Build,
    /// Pull the published image; `fallback`: build when the pull fails (`auto`).
    Pull {
        published: Published,
        fallback: bool,
    },
    /// `source = "pull"` with nothing pinned: an error (nothing is pulled without a pin).
    NoPin,
}

impl Decision {
    /// The foundation's decision for these settings.
    pub fn foundation(image: &ImageConfig) -> Self {
        Self::of(image, Published::foundation(image))
    }

    /// The full image's decision for these settings. It follows the same rules as the
    /// foundation's (with `from` set under `auto`, neither is the published image: both build).
    pub fn full(image: &ImageConfig) -> Self {
        Self::of(image, Published::full(image))
    }

    /// Whether this decision pulls (first; under `auto`, a failed pull falls back to a build).
    pub fn pulls(&self) -> bool {
        matches!(self, Self::Pull { .. })
    }

    /// Which images count as the current tier under this decision (the one place that says
    /// so, for the chain, `check` and `images`): `built` is the hash a local build would have
    /// now, `certificates` the user's CA files (the layer over a pulled image).
    pub fn current(&self, built: &str, certificates: &[(String, Vec<u8>)]) -> Current {
        match self {
            Self::Build | Self::NoPin => Current {
                layer: None,
                built: Some(built.to_owned()),
            },
            Self::Pull {
                published,
                fallback,
            } => Current {
                layer: Some(UserLayer::new(&published.pin, certificates)),
                // Under `auto`, a tier built after a failed pull stays until its inputs change
                // (`stockade build --force` tries the pull again).
                built: fallback.then(|| built.to_owned()),
            },
        }
    }

    /// The decision for a published image and its pin (the foundation's, or `full`'s).
    pub fn of(image: &ImageConfig, published: Option<Published>) -> Self {
        match (image.source, published) {
            (ImageSource::Build, _) => Self::Build,
            (ImageSource::Pull, Some(published)) => Self::Pull {
                published,
                fallback: false,
            },
            (ImageSource::Pull, None) => Self::NoPin,
            // With `from` set the image would not be the published one.
            (ImageSource::Auto, Some(published)) if image.from == DEFAULT_FROM => Self::Pull {
                published,
                fallback: true,
            },
            (ImageSource::Auto, _) => Self::Build,
        }
    }
}

/// The images that count as a tier's current one (see [`Decision::current`]).
#[derive(Debug, Clone)]
pub struct Current {
    /// The user's layer over the pulled image, when the decision pulls.
    pub layer: Option<UserLayer>,
    /// The hash of the tier built locally, when a built one counts (`build`; `auto`'s fallback).
    pub built: Option<String>,
}

impl Current {
    /// The hash the next pull or build makes (the layer's when the decision pulls).
    pub fn expected(&self) -> &str {
        match (&self.layer, &self.built) {
            (Some(layer), _) => &layer.hash,
            (None, Some(built)) => built,
            (None, None) => "",
        }
    }

    /// How the image with `image_labels` was made, when its hash is one that counts: the
    /// user's layer over the pinned image, or a local build (whose parent is still to check).
    pub fn made_by(&self, image_labels: Option<&HashMap<String, String>>) -> Option<Made> {
        let found = image_labels?.get(labels::HASH)?;
        if self.layer.as_ref().is_some_and(|l| l.hash == *found) {
            Some(Made::Pulled)
        } else if self.built.as_ref() == Some(found) {
            Some(Made::Built)
        } else {
            None
        }
    }

    /// Whether the image with `image_labels` (`None`: no image) is current: the user's layer
    /// over the pin (its parent is the pulled image, which the pin names), or a built tier on
    /// `parent` (the image it builds on, when stockade tracks it) where a built one counts.
    pub fn freshness(
        &self,
        image_labels: Option<&HashMap<String, String>>,
        parent: Option<&str>,
    ) -> Freshness {
        if self.made_by(image_labels) == Some(Made::Pulled) {
            return Freshness::UpToDate;
        }
        match &self.built {
            Some(built) => Freshness::of(image_labels, built, parent),
            None => Freshness::of(image_labels, self.expected(), None),
        }
    }
}

/// How a tier whose hash counts was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// The user's layer over the pulled image.
    Pulled,
    /// Built locally.
    Built,
}

/// The user's layer over a pulled image: the CA certificates of `[image] ca_certificates`
/// (nothing else of the user's goes into an image; proxies are build arguments). Its hash
/// covers the pin and the certificates, not the registry the image came from (same digest,
/// same image).
#[derive(Debug, Clone)]
pub struct UserLayer {
    pub context: BuildContext,
    pub hash: String,
}

impl UserLayer {
    /// The layer over the image pinned at `pin`, with `certificates` (name in the context under
    /// `ca-certificates/`, bytes), as the foundation's plan read them.
    pub fn new(pin: &str, certificates: &[(String, Vec<u8>)]) -> Self {
        let mut dockerfile = format!(
            "# The user's layer over the pulled image (generated by stockade).\n\
             ARG {PULLED_ARG}\nFROM ${{{PULLED_ARG}}}\n"
        );
        let mut files = Vec::new();
        if !certificates.is_empty() {
            dockerfile.push_str(
                "COPY ca-certificates/ /usr/local/share/ca-certificates/stockade/\n\
                 RUN update-ca-certificates >/dev/null 2>&1\n",
            );
            files.push(ContextFile::dir("ca-certificates"));
            for (name, bytes) in certificates {
                files.push(ContextFile::new(
                    format!("ca-certificates/{name}"),
                    bytes.clone(),
                    0o644,
                ));
            }
        }
        files.push(ContextFile::new(
            "Dockerfile",
            dockerfile.into_bytes(),
            0o644,
        ));
        let context = BuildContext::new(files);
        let mut hasher = ContentHasher::new("stockade-user-layer-v1");
        hasher.part(pin.as_bytes());
        context.hash_into(&mut hasher);
        Self {
            context,
            hash: hasher.finish(),
        }
    }

    /// The certificates of a foundation build context (`ca-certificates/NN-name.crt`).
    pub fn certificates_of(context: &BuildContext) -> Vec<(String, Vec<u8>)> {
        context
            .files()
            .iter()
            .filter_map(|f| {
                let name = f.path.strip_prefix("ca-certificates/")?;
                (!name.is_empty() && !f.is_dir).then(|| (name.to_owned(), f.bytes.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const PIN: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image(source: ImageSource, from: &str, pin: Option<&str>) -> ImageConfig {
        let mut image = Config::default().image;
        image.source = source;
        image.from = from.to_owned();
        image.foundation_digest = pin.map(str::to_owned);
        image
    }

    #[test]
    fn auto_pulls_only_the_published_image_with_a_pin() {
        let pull = |i: &ImageConfig| matches!(Decision::foundation(i), Decision::Pull { .. });
        assert!(pull(&image(ImageSource::Auto, DEFAULT_FROM, Some(PIN))));
        // `from` set: the image would not be the published one.
        assert!(!pull(&image(
            ImageSource::Auto,
            "mirror/debian:12",
            Some(PIN)
        )));
        // No pin in a development build: build.
        if BUILT_IN_FOUNDATION_DIGEST.is_none() {
            assert_eq!(
                Decision::foundation(&image(ImageSource::Auto, DEFAULT_FROM, None)),
                Decision::Build
            );
            assert_eq!(
                Decision::foundation(&image(ImageSource::Pull, DEFAULT_FROM, None)),
                Decision::NoPin
            );
        }
        assert_eq!(
            Decision::foundation(&image(ImageSource::Build, DEFAULT_FROM, Some(PIN))),
            Decision::Build
        );
        // `pull` pulls even with `from` set (the caller warns that it does not apply).
        assert_eq!(
            Decision::foundation(&image(ImageSource::Pull, "x:1", Some(PIN))),
            Decision::Pull {
                published: Published::foundation(&image(ImageSource::Pull, "x:1", Some(PIN)))
                    .unwrap(),
                fallback: false
            }
        );
    }

    #[test]
    fn the_full_image_is_decided_by_the_same_rules_with_its_own_pin() {
        let mut full = image(ImageSource::Auto, DEFAULT_FROM, None);
        full.full_digest = Some(PIN.to_owned());
        match Decision::full(&full) {
            Decision::Pull {
                published,
                fallback: true,
            } => {
                assert_eq!(published.name, "full");
                assert_eq!(published.pin_source, "[image] full_digest");
            }
            other => panic!("{other:?}"),
        }
        // With `from` set neither is the published image: both build.
        full.from = "mirror/debian:12".to_owned();
        full.foundation_digest = Some(PIN.to_owned());
        assert_eq!(Decision::full(&full), Decision::Build);
        assert_eq!(Decision::foundation(&full), Decision::Build);
        full.source = ImageSource::Build;
        full.from = DEFAULT_FROM.to_owned();
        assert_eq!(Decision::full(&full), Decision::Build);
    }

    fn labelled(hash: &str, parent: &str) -> HashMap<String, String> {
        HashMap::from([
            (labels::HASH.to_owned(), hash.to_owned()),
            (labels::PARENT.to_owned(), parent.to_owned()),
        ])
    }

    #[test]
    fn one_decision_says_which_images_are_current() {
        let pulled = image(ImageSource::Pull, DEFAULT_FROM, Some(PIN));
        let auto = image(ImageSource::Auto, DEFAULT_FROM, Some(PIN));
        let build = image(ImageSource::Build, DEFAULT_FROM, Some(PIN));
        let certificates = [("00-corp.crt".to_owned(), b"CERT".to_vec())];
        let layer = UserLayer::new(PIN, &certificates).hash;
        let current = |i: &ImageConfig| Decision::foundation(i).current("BUILT", &certificates);

        // `pull`: only the user's layer over the pin, whatever its parent (the pin names it).
        let c = current(&pulled);
        assert_eq!(c.expected(), layer);
        assert_eq!(
            c.freshness(Some(&labelled(&layer, "any")), Some("F")),
            Freshness::UpToDate
        );
        assert_eq!(
            c.made_by(Some(&labelled(&layer, "any"))),
            Some(Made::Pulled)
        );
        assert!(matches!(
            c.freshness(Some(&labelled("BUILT", "F")), Some("F")),
            Freshness::Stale(_)
        ));
        assert_eq!(c.freshness(None, None), Freshness::Missing);

        // `auto`: the layer, or a tier built after a failed pull on the current parent.
        let c = current(&auto);
        assert_eq!(c.expected(), layer);
        assert_eq!(
            c.made_by(Some(&labelled("BUILT", "old"))),
            Some(Made::Built)
        );
        assert_eq!(
            c.freshness(Some(&labelled("BUILT", "F")), Some("F")),
            Freshness::UpToDate
        );
        assert!(matches!(
            c.freshness(Some(&labelled("BUILT", "old")), Some("F")),
            Freshness::Stale(crate::chain::StaleReason::ParentChanged)
        ));

        // `build`: the built hash alone.
        let c = current(&build);
        assert_eq!(c.expected(), "BUILT");
        assert_eq!(c.made_by(Some(&labelled(&layer, "any"))), None);
        assert_eq!(
            c.freshness(Some(&labelled("BUILT", "F")), Some("F")),
            Freshness::UpToDate
        );
    }

    #[test]
    fn references_are_made_from_the_prefix() {
        let p = Published::foundation(&image(ImageSource::Pull, DEFAULT_FROM, Some(PIN))).unwrap();
        assert_eq!(p.pin_source, "[image] foundation_digest");
        let version = crate::labels::STOCKADE_VERSION;
        assert_eq!(
            p.tagged("127.0.0.1:5000/m/"),
            format!("127.0.0.1:5000/m/foundation:{version}")
        );
        assert_eq!(
            p.pinned_reference("docker.io/stockadedev"),
            format!("docker.io/stockadedev/foundation@{PIN}")
        );
    }

    #[test]
    fn the_layer_hash_follows_the_pin_and_the_certificates() {
        let none = UserLayer::new(PIN, &[]);
        let ca = UserLayer::new(PIN, &[("00-corp.crt".to_owned(), b"CERT".to_vec())]);
        let other = PIN.replace('0', "1");
        assert_ne!(none.hash, ca.hash);
        assert_ne!(none.hash, UserLayer::new(&other, &[]).hash);
        assert_eq!(none.hash, UserLayer::new(PIN, &[]).hash);
        let dockerfile = |l: &UserLayer| {
            String::from_utf8(l.context.file("Dockerfile").unwrap().to_vec()).unwrap()
        };
        assert!(!dockerfile(&none).contains("RUN"), "{}", dockerfile(&none));
        assert!(dockerfile(&ca).contains("update-ca-certificates"));
    }

    #[test]
    fn certificates_are_read_back_from_the_foundation_context() {
        let plan = crate::foundation::FoundationPlan::from_parts(
            crate::foundation::ASSETS,
            DEFAULT_FROM,
            &[(std::path::Path::new("/etc/corp.pem"), b"CERT".to_vec())],
        );
        assert_eq!(
            UserLayer::certificates_of(&plan.context),
            [("00-corp.crt".to_owned(), b"CERT".to_vec())]
        );
    }
}
