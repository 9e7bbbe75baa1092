//! Names of what stockade creates on the engine, under an optional namespace.
//!
//! `STOCKADE_NAMESPACE` lets several independent stockade installations (a development build
//! beside the installed one, a test run) share one engine without touching each other's images:
//! with namespace `dev`, the foundation image is `dev-stockade:foundation` instead of
//! `stockade:foundation`.

use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace(Option<String>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid STOCKADE_NAMESPACE {0:?}: use 1-40 characters of lower-case letters, digits and '-', starting with a letter or digit"
)]
pub struct InvalidNamespace(pub String);

impl Namespace {
    pub fn new(value: Option<&str>) -> Result<Self, InvalidNamespace> {
        match value {
            None | Some("") => Ok(Self(None)),
            Some(ns) => {
                let valid = ns.len() <= 40
                    && ns
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !ns.starts_with('-');
                if valid {
                    Ok(Self(Some(ns.to_owned())))
                } else {
                    Err(InvalidNamespace(ns.to_owned()))
                }
            }
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// `stockade`, or `<ns>-stockade` under a namespace: the repository of stockade's images.
    pub fn repository(&self) -> String {
        self.prefixed("stockade")
    }

    /// The foundation image's tag.
    pub fn foundation_image(&self) -> String {
        format!("{}:foundation", self.repository())
    }

    /// The full toolset image's tag (`[image] toolset = "full"`), between the foundation and
    /// the base.
    pub fn full_image(&self) -> String {
        format!("{}:full", self.repository())
    }

    /// The global base image's tag: the user's Dockerfile build, a custom image extended with
    /// stockade's runtime layer, or an alias of the foundation.
    pub fn base_image(&self) -> String {
        format!("{}:base", self.repository())
    }

    /// A project image's tag: `stockade-project:<12 hex of the project path>`.
    pub fn project_image(&self, project_id: &str) -> String {
        format!("{}:{project_id}", self.prefixed("stockade-project"))
    }

    /// A custom base image extended with the runtime layer: `stockade-<sanitised name>:<version>`.
    pub fn custom_base_image(&self, custom: &str, runtime_version: &str) -> String {
        format!(
            "{}:{runtime_version}",
            self.prefixed(&format!("stockade-{}", sanitize(custom, 80)))
        )
    }

    /// The runtime layer over a custom base that a project names for itself (`[image] base` in
    /// its own file): `stockade-<sanitised name>-<project id>:<version>`. It belongs to that
    /// project, so no other project uses or rebuilds it.
    pub fn project_custom_base_image(
        &self,
        project_id: &str,
        custom: &str,
        runtime_version: &str,
    ) -> String {
        format!(
            "{}:{runtime_version}",
            self.prefixed(&format!("stockade-{}-{project_id}", sanitize(custom, 60)))
        )
    }

    /// The image stockade builds from a project's own `base_dockerfile`:
    /// `stockade-custom-<project id>:<sanitised name>`, never the shared name itself.
    pub fn project_custom_build(&self, project_id: &str, custom: &str) -> String {
        format!(
            "{}:{}",
            self.prefixed(&format!("stockade-custom-{project_id}")),
            sanitize(custom, 100)
        )
    }

    /// Whether an image repository (`name` of `name:tag`) is one stockade names in this
    /// namespace: the foundation/base repository, project images and custom-base layers.
    pub fn owns_repository(&self, repository: &str) -> bool {
        repository == self.repository()
            || repository
                .strip_prefix(&self.prefixed("stockade-"))
                .is_some_and(|rest| !rest.is_empty())
    }

    /// A container name prefix: `stockade-…` or `<ns>-stockade-…`.
    pub fn container_name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.repository())
    }

    /// The tools volume of an agent at a version: `stockade-tools-<agent>-<version>`.
    pub fn tools_volume(&self, agent: &str, version: &str) -> String {
        self.versioned_volume("tools", agent, version)
    }

    /// The tools volume of a native agent's musl build at a version:
    /// `stockade-tools-<agent>-<version>-musl`.
    pub fn musl_tools_volume(&self, agent: &str, version: &str) -> String {
        format!("{}-musl", self.tools_volume(agent, version))
    }

    /// A runtime's volume (`stockade-runtime-node-22.11.0`): shared by every agent on it.
    pub fn runtime_volume(&self, runtime: &str, version: &str) -> String {
        self.versioned_volume("runtime", runtime, version)
    }

    fn versioned_volume(&self, kind: &str, name: &str, version: &str) -> String {
        let version: String = version
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.prefixed(&format!("stockade-{kind}-{name}-{version}"))
    }

    /// The per-project home volume: `stockade-home-<project id>`.
    pub fn home_volume(&self, project_id: &str) -> String {
        self.prefixed(&format!("stockade-home-{project_id}"))
    }

    fn prefixed(&self, name: &str) -> String {
        match &self.0 {
            Some(ns) => format!("{ns}-{name}"),
            None => name.to_owned(),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session name (`--name`): what `attach`, `logs`, `exec --in` and `stop` take. Unique among
/// a project's sandboxes; part of the container's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid session name {0:?}: use 1-40 characters of letters, digits, '_', '.' and '-', starting with a letter or digit"
)]
pub struct InvalidSessionName(pub String);

impl SessionName {
    pub fn new(name: &str) -> Result<Self, InvalidSessionName> {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidSessionName(name.to_owned()))
        }
    }

    /// A generated name: `base-<6 hex>` (a foreground sandbox without `--name`).
    pub fn generated(base: &str, suffix: &str) -> Self {
        Self(format!("{}-{suffix}", sanitize(base, 30)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Namespace {
    /// A sandbox's container name: `stockade-<project name>-<6 of the project id>-<session>`,
    /// unique on the engine because the session name is unique in its project.
    pub fn sandbox_name(
        &self,
        project_name: &str,
        project_id: &str,
        session: &SessionName,
    ) -> String {
        let id = project_id.get(..6).unwrap_or(project_id);
        self.container_name(&format!("{}-{id}-{session}", sanitize(project_name, 24)))
    }
}

/// Turn any text into a name component the engine accepts (`[a-z0-9-]`, at most `max` chars).
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_namespace_uses_plain_names() {
        let ns = Namespace::new(None).unwrap_or_default();
        assert_eq!(ns.foundation_image(), "stockade:foundation");
        assert_eq!(ns.container_name("web-1a2b"), "stockade-web-1a2b");
    }

    #[test]
    fn namespace_prefixes_names() {
        let ns = Namespace::new(Some("dev")).unwrap_or_default();
        assert_eq!(ns.foundation_image(), "dev-stockade:foundation");
        assert_eq!(
            ns.tools_volume("opencode", "1.18.33+b"),
            "dev-stockade-tools-opencode-1.18.33_b"
        );
        assert_eq!(
            ns.runtime_volume("node", "22.11.0"),
            "dev-stockade-runtime-node-22.11.0"
        );
        assert_eq!(
            ns.home_volume("0123abcd4567"),
            "dev-stockade-home-0123abcd4567"
        );
        assert_eq!(ns.base_image(), "dev-stockade:base");
        assert_eq!(
            ns.project_image("0123456789ab"),
            "dev-stockade-project:0123456789ab"
        );
    }

    #[test]
    fn owned_repositories() {
        let ns = Namespace::default();
        assert!(ns.owns_repository("stockade"));
        assert!(ns.owns_repository("stockade-project"));
        assert!(ns.owns_repository("stockade-ruby-3-3"));
        assert!(!ns.owns_repository("ruby"));
        assert!(!ns.owns_repository("stockade-"));
        let dev = Namespace::new(Some("dev")).unwrap();
        assert!(dev.owns_repository("dev-stockade-project"));
        assert!(!dev.owns_repository("stockade-project"));
    }

    #[test]
    fn custom_bases_get_a_sanitised_name() {
        let ns = Namespace::default();
        assert_eq!(ns.base_image(), "stockade:base");
        assert_eq!(
            ns.custom_base_image("ruby:3.3", "0.1.0"),
            "stockade-ruby-3-3:0.1.0"
        );
        assert_eq!(
            ns.custom_base_image("registry.example.com:5000/team/img:v2", "0.1.0"),
            "stockade-registry-example-com-5000-team-img-v2:0.1.0"
        );
    }

    #[test]
    fn bad_namespaces_are_refused() {
        for bad in ["Dev", "-x", "a b", "a_b", &"x".repeat(41)] {
            assert!(Namespace::new(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn session_names() {
        for good in ["claude", "a", "fix-tests_2.1", &"x".repeat(40)] {
            assert!(SessionName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "ä", &"x".repeat(41)] {
            assert!(SessionName::new(bad).is_err(), "{bad}");
        }
        let name = SessionName::new("web").unwrap();
        assert_eq!(
            Namespace::default().sandbox_name("My App", "0123456789ab", &name),
            "stockade-my-app-012345-web"
        );
        assert_eq!(
            SessionName::generated("claude", "0a1b2c").as_str(),
            "claude-0a1b2c"
        );
    }

    #[test]
    fn sanitize_names() {
        assert_eq!(sanitize("My Project!", 30), "my-project");
        assert_eq!(sanitize("___", 30), "x");
        assert_eq!(sanitize("abcdef", 3), "abc");
    }
}
