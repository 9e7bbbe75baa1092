//! The sandbox specification: everything about a container stockade creates, decided without
//! an engine. The engine layer turns it into an API request; `--dry-run` prints it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::Config;
use crate::foundation::PROXY_VARS;
use crate::identity::Identity;
use crate::labels;
use crate::names::{Namespace, sanitize};
use crate::project::Project;

/// Capabilities the entrypoint needs while it maps the user as root. A command that runs as the
/// (non-root) host user has none of them: dropping to a non-zero uid clears every capability.
pub const ENTRYPOINT_CAPS: &[&str] = &["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"];

/// Default limit on processes in a sandbox.
pub const DEFAULT_PIDS_LIMIT: i64 = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxSpec {
    pub name: String,
    pub image: String,
    /// The command; empty means the user's login shell.
    pub command: Vec<String>,
    pub workdir: PathBuf,
    pub user: Identity,
    /// Environment set in the container. Values here are not secret (ids, proxies, TERM, and
    /// variables the user listed for pass-through).
    #[serde(serialize_with = "names_only")]
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Named volumes (agent tools, the per-project home).
    pub volumes: Vec<VolumeMount>,
    /// Secret environment (API keys, `[sandbox] env`): never in the container's configuration;
    /// handed over in a root-only file the entrypoint reads and deletes before dropping privileges.
    #[serde(serialize_with = "names_only")]
    pub secrets: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub security: Security,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeMount {
    pub volume: String,
    pub target: PathBuf,
    pub read_only: bool,
    /// Labels the engine puts on the volume when this mount creates it.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Security {
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub no_new_privileges: bool,
    pub pids_limit: i64,
    pub privileged: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            cap_drop: vec!["ALL".to_owned()],
            cap_add: ENTRYPOINT_CAPS.iter().map(|c| (*c).to_owned()).collect(),
            no_new_privileges: true,
            pids_limit: DEFAULT_PIDS_LIMIT,
            privileged: false,
        }
    }
}

/// Inputs of a sandbox that come from the host at run time.
pub struct SandboxRequest<'a> {
    pub namespace: &'a Namespace,
    pub project: &'a Project,
    pub user: &'a Identity,
    pub config: &'a Config,
    pub image: String,
    pub command: Vec<String>,
    pub tty: bool,
    /// Random suffix for the container name.
    pub suffix: String,
}

impl SandboxSpec {
    /// Build the spec; `host_env` looks up host environment variables.
    pub fn new(request: SandboxRequest<'_>, host_env: impl Fn(&str) -> Option<String>) -> Self {
        let SandboxRequest {
            namespace,
            project,
            user,
            config,
            image,
            command,
            tty,
            suffix,
        } = request;

        let mut env: Vec<(String, String)> = vec![
            ("STOCKADE_UID".into(), user.uid.to_string()),
            ("STOCKADE_GID".into(), user.gid.to_string()),
            ("STOCKADE_USER".into(), user.name.clone()),
            (
                "STOCKADE_HOME".into(),
                user.home.to_string_lossy().into_owned(),
            ),
        ];
        let mut pass = |name: &str| {
            if env.iter().any(|(existing, _)| existing == name) {
                return;
            }
            if let Some(value) = host_env(name) {
                env.push((name.to_owned(), value));
            }
        };
        if tty {
            pass("TERM");
        }
        for name in PROXY_VARS {
            pass(name);
        }
        // `[sandbox] env` values may be secrets: they go through the secrets file, not the env.
        let secrets = config
            .sandbox
            .env
            .iter()
            .filter(|name| !env.iter().any(|(existing, _)| existing == *name))
            .filter_map(|name| host_env(name).map(|value| (name.clone(), value)))
            .collect();

        let labels = BTreeMap::from([
            (labels::KIND.to_owned(), "sandbox".to_owned()),
            (
                labels::PROJECT.to_owned(),
                project.root.to_string_lossy().into_owned(),
            ),
            (labels::NAMESPACE.to_owned(), namespace.as_str().to_owned()),
            (
                labels::VERSION.to_owned(),
                labels::STOCKADE_VERSION.to_owned(),
            ),
        ]);

        Self {
            name: namespace.container_name(&format!("{}-{suffix}", sanitize(&project.name(), 24))),
            image,
            command,
            workdir: project.cwd.clone(),
            user: user.clone(),
            env,
            mounts: vec![Mount {
                source: project.root.clone(),
                target: project.root.clone(),
                read_only: false,
            }],
            volumes: Vec::new(),
            secrets,
            labels,
            tty,
            security: Security::default(),
        }
    }
}

fn names_only<S: serde::Serializer>(env: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(env.iter().map(|(name, _)| name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(tty: bool, env: &[(&str, &str)], passthrough: &[&str]) -> SandboxSpec {
        let project = Project {
            root: "/work/My App".into(),
            cwd: "/work/My App/src".into(),
            is_git: true,
        };
        let user = Identity {
            uid: 1234,
            gid: 1235,
            name: "ada".into(),
            home: "/home/ada".into(),
        };
        let mut config = Config::default();
        config.sandbox.env = passthrough.iter().map(|s| s.to_string()).collect();
        let ns = Namespace::default();
        let host: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SandboxSpec::new(
            SandboxRequest {
                namespace: &ns,
                project: &project,
                user: &user,
                config: &config,
                image: "stockade:foundation".into(),
                command: vec!["true".into()],
                tty,
                suffix: "a1b2c3".into(),
            },
            |name| host.get(name).cloned(),
        )
    }

    #[test]
    fn project_is_mounted_at_its_own_path_and_cwd_is_kept() {
        let s = spec(false, &[], &[]);
        assert_eq!(s.name, "stockade-my-app-a1b2c3");
        assert_eq!(s.workdir, Path::new("/work/My App/src"));
        assert_eq!(
            s.mounts,
            vec![Mount {
                source: "/work/My App".into(),
                target: "/work/My App".into(),
                read_only: false
            }]
        );
        assert_eq!(s.labels[labels::PROJECT], "/work/My App");
    }

    #[test]
    fn user_mapping_goes_to_the_entrypoint() {
        let s = spec(false, &[], &[]);
        let env: BTreeMap<_, _> = s.env.iter().cloned().collect();
        assert_eq!(env["STOCKADE_UID"], "1234");
        assert_eq!(env["STOCKADE_GID"], "1235");
        assert_eq!(env["STOCKADE_USER"], "ada");
        assert_eq!(env["STOCKADE_HOME"], "/home/ada");
    }

    #[test]
    fn only_set_variables_pass_through() {
        let s = spec(
            true,
            &[
                ("TERM", "xterm"),
                ("FOO", "1"),
                ("https_proxy", "http://p:3128"),
            ],
            &["FOO", "BAR"],
        );
        let names: Vec<_> = s.env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"TERM"));
        assert!(!names.contains(&"FOO"), "[sandbox] env is secret, not env");
        assert_eq!(s.secrets, [("FOO".to_owned(), "1".to_owned())]);
        assert!(names.contains(&"https_proxy"));
        assert!(!names.contains(&"BAR"));
        let no_tty = spec(false, &[("TERM", "xterm")], &[]);
        assert!(!no_tty.env.iter().any(|(k, _)| k == "TERM"));
    }

    #[test]
    fn hardened_by_default() {
        let s = spec(false, &[], &[]);
        assert_eq!(s.security.cap_drop, vec!["ALL"]);
        assert!(s.security.no_new_privileges);
        assert!(!s.security.privileged);
        assert_eq!(s.security.pids_limit, DEFAULT_PIDS_LIMIT);
    }

    #[test]
    fn serialized_spec_shows_env_names_not_values() {
        let s = spec(false, &[("FOO", "s3cret")], &["FOO"]);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"FOO\""));
        assert!(json.contains("\"secrets\":[\"FOO\"]"), "{json}");
        assert!(!json.contains("s3cret"));
    }
}
