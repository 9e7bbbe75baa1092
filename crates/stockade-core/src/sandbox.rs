//! The sandbox specification: everything about a container stockade creates, decided without
//! an engine. The engine layer turns it into an API request; `--dry-run` prints it.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Config, Egress, EngineOption, PortSetting};
use crate::foundation::PROXY_VARS;
use crate::identity::Identity;
use crate::labels;
use crate::names::{Namespace, SessionName};
use crate::project::Project;

/// The uid:gid stockade's helper containers run as: unprivileged, and the owner of the tools
/// volumes they install into.
pub const HELPER_UID: u32 = 65532;

/// With `sudo = true` (the one opt-in that starts as root): the engine's usual default set, so
/// the entrypoint can add the user to sudoers and `sudo` (which needs AUDIT_WRITE) and what people
/// run with it (package managers) work. The bounding set keeps them for sudo.
pub const SUDO_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

pub use crate::config::DEFAULT_PIDS_LIMIT;

/// Mount options of the sandbox's `/tmp` (and, with a read-only root, its other writable places).
pub const TMPFS_OPTIONS: &str = "rw,nosuid,nodev,exec,mode=1777";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxSpec {
    pub name: String,
    pub image: String,
    /// The command; empty means the user's login shell.
    pub command: Vec<String>,
    pub workdir: PathBuf,
    pub user: Identity,
    /// `uid:gid` the container's first process starts as: the host user's, so nothing in the
    /// sandbox is ever root with capabilities; `0:0` only with `sudo = true`.
    pub start_as: String,
    /// Directories under HOME created for the user before start (parents of mounts there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub home_dirs: Vec<PathBuf>,
    /// Environment set in the container. Values here are not secret (ids, proxies, TERM, and
    /// variables the user listed for pass-through).
    #[serde(serialize_with = "names_only")]
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Named volumes (agent tools, the per-project home).
    pub volumes: Vec<VolumeMount>,
    /// Secret environment (API keys, `[sandbox] env`, proxy URLs with credentials): never in the
    /// container's configuration; handed over in a file only the sandbox user can read, which
    /// the entrypoint sources as its last step (see `handover`).
    #[serde(serialize_with = "names_only")]
    pub secrets: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    /// Detached (`-d`) or a service: it outlives this stockade process, is labelled
    /// `io.stockade.keep`, and is removed by `stockade stop` (not by the engine when it exits).
    pub detached: bool,
    /// Seconds the sandbox has to stop when asked (SIGTERM, SIGHUP) before it is killed.
    pub stop_timeout: u64,
    pub security: Security,
    pub limits: Limits,
    /// Where the sandbox's network traffic goes.
    pub network: NetworkMode,
    /// The egress policy behind the gateway (`egress = "allowlist"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<crate::egress::Policy>,
    /// Namespaced kernel settings (`net.ipv6.conf.all.disable_ipv6` behind the gateway).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    pub ports: Vec<PortSetting>,
    /// tmpfs mounts: path → mount options.
    pub tmpfs: BTreeMap<PathBuf, String>,
    /// Extra supplementary groups (by gid) for the user, e.g. the engine socket's group.
    pub groups: Vec<u32>,
    /// Expert options from `[sandbox] engine_options`, already validated.
    pub engine_options: Vec<EngineOption>,
    /// Replaces the image's entrypoint (stockade's helper containers skip the user mapping);
    /// `None` for sandboxes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// What the engine does when the sandbox's command ends: nothing, or start it again (a
    /// service: also after an engine restart).
    #[serde(skip_serializing_if = "Restart::is_never")]
    pub restart: Restart,
    /// The engine's health check (a service); `None`: the image's own, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
}

/// A sandbox's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// The engine's default bridge: anywhere (`egress = "open"`).
    Bridge,
    /// No network at all (`egress = "none"`).
    None,
    /// An internal network whose only way out is stockade's gateway (`egress = "allowlist"`).
    Internal(String),
    /// The network namespace of another container: the holder of the project's internal
    /// network (`egress = "allowlist"` at launch, crates/stockade/src/gateway.rs). The engine
    /// makes no network for the sandbox then, which starts it faster.
    Joined(String),
}

impl NetworkMode {
    /// The mode a configuration asks for. `allowlist` names no network until the gateway's
    /// plan (crates/stockade/src/gateway.rs) gives the project's: a sandbox created without
    /// that plan fails (closed) instead of reaching anywhere.
    pub fn of(egress: Egress) -> Self {
        match egress {
            Egress::Open => Self::Bridge,
            Egress::None => Self::None,
            Egress::Allowlist => Self::Internal(String::new()),
        }
    }
}

/// The engine's restart policy for a sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Never restarted (every sandbox but a service).
    #[default]
    Never,
    /// Restarted whenever it ends, and when the engine starts, unless `stockade stop` (the
    /// engine's stop) ended it.
    UnlessStopped,
}

impl Restart {
    fn is_never(&self) -> bool {
        *self == Self::Never
    }
}

/// An engine health check. Everything here is visible in `docker inspect`: no secret may be in
/// `test` (a check that needs one reads it from the secrets file inside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// A shell command line (`CMD-SHELL`): exit 0 healthy, else unhealthy.
    pub shell: String,
    pub interval_secs: u64,
    pub timeout_secs: u64,
    /// Failures in a row before the sandbox is unhealthy.
    pub retries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub pids: i64,
    /// Bytes.
    pub memory: Option<i64>,
    /// Billionths of a CPU.
    pub nano_cpus: Option<i64>,
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
    pub privileged: bool,
    pub read_only_root: bool,
    /// Passwordless sudo inside (no-new-privileges lifted).
    pub sudo: bool,
    /// The engine socket is mounted (`docker_socket = true`).
    pub engine_socket: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            cap_drop: vec!["ALL".to_owned()],
            cap_add: Vec::new(),
            no_new_privileges: true,
            privileged: false,
            read_only_root: false,
            sudo: false,
            engine_socket: false,
        }
    }
}

impl Security {
    fn from_config(config: &Config) -> Self {
        let sandbox = &config.sandbox;
        let mut security = Self {
            read_only_root: sandbox.read_only_root,
            ..Self::default()
        };
        if sandbox.sudo {
            security.sudo = true;
            security.no_new_privileges = false;
            security.cap_add = SUDO_CAPS.iter().map(|c| (*c).to_owned()).collect();
            // Extra capabilities are reachable only through sudo, so only then are they added.
            for cap in added_capabilities(config) {
                if !security.cap_add.contains(cap) {
                    security.cap_add.push(cap.clone());
                }
            }
        }
        security
    }
}

/// The capabilities `engine_options` asks for (`--cap-add`).
fn added_capabilities(config: &Config) -> impl Iterator<Item = &String> {
    config
        .sandbox
        .engine_options
        .iter()
        .filter_map(|o| match o {
            EngineOption::CapAdd(cap) => Some(cap),
            _ => None,
        })
}

/// What the configuration asks for that a sandbox without sudo does not do: `--cap-add` (the
/// sandbox runs as the user, so a capability could only be used through sudo). For a warning.
pub fn unapplied_options(config: &Config) -> Vec<String> {
    if config.sandbox.sudo {
        return Vec::new();
    }
    added_capabilities(config)
        .map(|cap| format!("engine option --cap-add={cap} has no effect without sudo = true: the sandbox holds no capabilities"))
        .collect()
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
    /// The session's name, unique in the project; the container's name contains it.
    pub session: &'a SessionName,
    /// Outlives this process (`-d`, a service).
    pub detached: bool,
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
            session,
            detached,
        } = request;

        let home = user.home.to_string_lossy().into_owned();
        let mut env: Vec<(String, String)> = vec![
            ("HOME".into(), home.clone()),
            ("USER".into(), user.name.clone()),
            ("LOGNAME".into(), user.name.clone()),
        ];
        if config.sandbox.sudo {
            // Read by the entrypoint's root stage, the only one there is, and only with sudo.
            env.extend([
                ("STOCKADE_SUDO".into(), "1".into()),
                ("STOCKADE_UID".into(), user.uid.to_string()),
                ("STOCKADE_GID".into(), user.gid.to_string()),
                ("STOCKADE_USER".into(), user.name.clone()),
            ]);
        }
        if tty && let Some(term) = host_env("TERM") {
            env.push(("TERM".into(), term));
        }
        // Proxy settings pass through; one that carries credentials (`http://user:pass@host`)
        // travels as a secret, never in the container's configuration.
        let mut secrets: Vec<(String, String)> = Vec::new();
        for name in PROXY_VARS {
            if let Some(value) = host_env(name) {
                if has_credentials(&value) {
                    secrets.push(((*name).to_owned(), value));
                } else {
                    env.push(((*name).to_owned(), value));
                }
            }
        }
        // `[sandbox] env` values may be secrets: pass-through and literal values both go through
        // the secrets file, never the container's configuration. A literal value wins.
        for name in &config.sandbox.env {
            let taken = env
                .iter()
                .chain(&secrets)
                .any(|(existing, _)| existing == name);
            if !taken && let Some(value) = host_env(name) {
                secrets.push((name.clone(), value));
            }
        }
        for (name, value) in &config.sandbox.set_env {
            // stockade's own contract variables stay; the value reaches only the command.
            env.retain(|(existing, _)| existing != name || existing.starts_with("STOCKADE_"));
            secrets.retain(|(existing, _)| existing != name);
            secrets.push((name.clone(), value.clone()));
        }

        let mut labels = BTreeMap::from([
            (labels::KIND.to_owned(), "sandbox".to_owned()),
            (labels::SESSION.to_owned(), session.as_str().to_owned()),
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
        if detached {
            labels.insert(labels::KEEP.to_owned(), "true".to_owned());
        }

        Self {
            name: namespace.sandbox_name(&project.name(), &project.id(), session),
            image,
            command,
            workdir: project.cwd.clone(),
            user: user.clone(),
            start_as: if config.sandbox.sudo {
                "0:0".to_owned()
            } else {
                format!("{}:{}", user.uid, user.gid)
            },
            home_dirs: Vec::new(),
            env,
            mounts: std::iter::once(Mount {
                source: project.root.clone(),
                target: project.root.clone(),
                read_only: false,
            })
            .chain(config.sandbox.mounts.iter().map(|m| Mount {
                source: m.source.clone(),
                target: m.target.clone(),
                read_only: m.read_only,
            }))
            .collect(),
            volumes: Vec::new(),
            secrets,
            labels,
            tty,
            detached,
            stop_timeout: u64::try_from(config.sandbox.stop_timeout).unwrap_or(0),
            security: Security::from_config(config),
            limits: Limits {
                pids: config.sandbox.pids_limit,
                memory: config.sandbox.memory.and_then(|b| i64::try_from(b).ok()),
                nano_cpus: config.sandbox.cpus.map(|m| i64::from(m) * 1_000_000),
            },
            network: NetworkMode::of(config.network.egress),
            sysctls: BTreeMap::new(),
            egress: None,
            ports: config.sandbox.ports.clone(),
            tmpfs: tmpfs(config, user),
            groups: Vec::new(),
            engine_options: config
                .sandbox
                .engine_options
                .iter()
                .filter(|o| !matches!(o, EngineOption::CapAdd(_)))
                .cloned()
                .collect(),
            entrypoint: None,
            restart: Restart::Never,
            health: None,
        }
    }

    /// Mount the engine's unix socket (`docker_socket = true`) at the usual path, with its group
    /// added to the user's so the user can reach it.
    pub fn mount_engine_socket(&mut self, socket: PathBuf, gid: Option<u32>) {
        self.mounts.push(Mount {
            source: socket,
            target: PathBuf::from("/var/run/docker.sock"),
            read_only: false,
        });
        if let Some(gid) = gid.filter(|g| *g != 0) {
            self.groups.push(gid);
        }
        self.security.engine_socket = true;
    }

    /// A helper's container: the foundation's init and `sh -c script`, as [`HELPER_UID`], no
    /// capabilities, no-new-privileges, HOME in /tmp.
    pub fn helper(
        namespace: &Namespace,
        image: &str,
        script: &str,
        volumes: Vec<VolumeMount>,
        mut env_vars: Vec<(String, String)>,
    ) -> SandboxSpec {
        env_vars.push(("HOME".into(), "/tmp".into()));
        SandboxSpec {
            name: namespace.container_name(&format!("helper-{}", random_suffix())),
            image: image.to_owned(),
            command: vec!["sh".into(), "-c".into(), script.to_owned()],
            workdir: "/tmp".into(),
            user: Identity {
                uid: HELPER_UID,
                gid: HELPER_UID,
                name: "stockade-helper".into(),
                home: "/tmp".into(),
            },
            start_as: format!("{HELPER_UID}:{HELPER_UID}"),
            home_dirs: Vec::new(),
            env: env_vars,
            mounts: Vec::new(),
            volumes,
            secrets: Vec::new(),
            labels: BTreeMap::from([
                (labels::KIND.to_owned(), "helper".to_owned()),
                (labels::NAMESPACE.to_owned(), namespace.as_str().to_owned()),
                (
                    labels::VERSION.to_owned(),
                    labels::STOCKADE_VERSION.to_owned(),
                ),
            ]),
            tty: false,
            detached: false,
            stop_timeout: 10,
            security: Security::default(),
            limits: Limits {
                pids: DEFAULT_PIDS_LIMIT,
                memory: None,
                nano_cpus: None,
            },
            network: NetworkMode::Bridge,
            sysctls: BTreeMap::new(),
            egress: None,
            ports: Vec::new(),
            tmpfs: BTreeMap::new(),
            groups: Vec::new(),
            engine_options: Vec::new(),
            // stockade's own scripts: only the init, not the sandbox entrypoint.
            entrypoint: Some(vec!["/opt/stockade/bin/tini".into(), "--".into()]),
            restart: Restart::Never,
            health: None,
        }
    }
}

/// Six hex characters that make a container name unique.
pub fn random_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}

/// `/tmp` always; with a read-only root also the other places programs write to.
fn tmpfs(config: &Config, user: &Identity) -> BTreeMap<PathBuf, String> {
    // `/tmp` is sized by `[sandbox] tmp_size` (a tmpfs counts against the memory limit).
    let tmp = format!("{TMPFS_OPTIONS},size={}", config.sandbox.tmp_size);
    let mut tmpfs = BTreeMap::from([(PathBuf::from("/tmp"), tmp)]);
    if config.sandbox.read_only_root {
        for dir in ["/run", "/var/tmp"] {
            tmpfs.insert(PathBuf::from(dir), TMPFS_OPTIONS.to_owned());
        }
        tmpfs.insert(
            user.home.clone(),
            "rw,nosuid,nodev,exec,mode=0755".to_owned(),
        );
    }
    for option in &config.sandbox.engine_options {
        if let EngineOption::Tmpfs(spec) = option {
            let (path, options) = spec.split_once(':').unwrap_or((spec, "rw,nosuid,nodev"));
            tmpfs.insert(PathBuf::from(path), options.to_owned());
        }
    }
    tmpfs
}

/// Whether a proxy URL carries a user name or password (`scheme://user:pass@host…`).
pub fn has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

fn names_only<S: serde::Serializer>(env: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(env.iter().map(|(name, _)| name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(tty: bool, env: &[(&str, &str)], passthrough: &[&str]) -> SandboxSpec {
        let mut config = Config::default();
        config.sandbox.env = passthrough.iter().map(|s| s.to_string()).collect();
        spec_with(&config, tty, env)
    }

    fn project_id() -> String {
        Project {
            root: "/work/My App".into(),
            cwd: "/work/My App".into(),
            is_git: true,
        }
        .id()
    }

    /// A spec for user ada (1234:1235) in "/work/My App".
    fn spec_with(config: &Config, tty: bool, env: &[(&str, &str)]) -> SandboxSpec {
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
                config,
                image: "stockade:foundation".into(),
                command: vec!["true".into()],
                tty,
                session: &SessionName::new("a1b2c3").unwrap(),
                detached: false,
            },
            |name| host.get(name).cloned(),
        )
    }

    #[test]
    fn project_is_mounted_at_its_own_path_and_cwd_is_kept() {
        let s = spec(false, &[], &[]);
        assert_eq!(
            s.name,
            format!("stockade-my-app-{}-a1b2c3", &project_id()[..6])
        );
        assert_eq!(s.labels[labels::SESSION], "a1b2c3");
        assert!(!s.labels.contains_key(labels::KEEP));
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
    fn the_container_starts_as_the_host_user() {
        let s = spec(false, &[], &[]);
        assert_eq!(s.start_as, "1234:1235");
        let env: BTreeMap<_, _> = s.env.iter().cloned().collect();
        assert_eq!(env["HOME"], "/home/ada");
        assert_eq!(env["USER"], "ada");
        assert!(
            !env.keys().any(|k| k.starts_with("STOCKADE_")),
            "no entrypoint contract without sudo: {env:?}"
        );
        assert!(s.security.cap_add.is_empty());
    }

    #[test]
    fn configured_values_never_replace_the_entrypoint_contract() {
        let mut config = Config::default();
        config.sandbox.sudo = true;
        config.sandbox.set_env = vec![
            ("STOCKADE_UID".into(), "0".into()),
            ("STOCKADE_SUDO".into(), "".into()),
        ];
        let s = spec_with(&config, false, &[]);
        assert!(s.env.contains(&("STOCKADE_UID".into(), "1234".into())));
        assert!(s.env.contains(&("STOCKADE_SUDO".into(), "1".into())));
        // The values still reach the command, through the secrets file sourced last.
        assert!(s.secrets.contains(&("STOCKADE_UID".into(), "0".into())));
    }

    #[test]
    fn proxy_credentials_travel_as_secrets() {
        let s = spec(
            false,
            &[
                ("HTTPS_PROXY", "http://user:pa55@proxy:3128"),
                ("HTTP_PROXY", "http://proxy:3128"),
            ],
            &[],
        );
        assert!(
            s.secrets
                .contains(&("HTTPS_PROXY".into(), "http://user:pa55@proxy:3128".into()))
        );
        assert!(
            s.env
                .contains(&("HTTP_PROXY".into(), "http://proxy:3128".into()))
        );
        assert!(!serde_json::to_string(&s).unwrap().contains("pa55"));
        assert!(has_credentials("socks5://u@h:1080"));
        assert!(!has_credentials("http://proxy:3128/path@x"));
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
        assert!(!s.security.sudo);
        assert_eq!(s.limits.pids, DEFAULT_PIDS_LIMIT);
        assert_eq!(
            s.tmpfs[Path::new("/tmp")],
            format!("{TMPFS_OPTIONS},size={}", 2u64 << 30)
        );
        assert!(!s.security.engine_socket);
        assert!(!s.mounts.iter().any(|m| m.source.ends_with("docker.sock")));
    }

    #[test]
    fn sudo_lifts_no_new_privileges_only_when_asked() {
        let mut config = Config::default();
        config.sandbox.sudo = true;
        config.sandbox.set_env = vec![("TOKEN".into(), "s3cret".into())];
        let s = spec_with(&config, false, &[]);
        assert!(!s.security.no_new_privileges);
        assert!(s.security.cap_add.contains(&"AUDIT_WRITE".to_owned()));
        assert!(s.env.contains(&("STOCKADE_SUDO".into(), "1".into())));
        assert_eq!(
            s.start_as, "0:0",
            "sudo is the one opt-in that starts as root"
        );
        // A literal `[sandbox] env` value travels as a secret, never in the container's env.
        assert!(s.secrets.contains(&("TOKEN".into(), "s3cret".into())));
        assert!(!s.env.iter().any(|(name, _)| name == "TOKEN"));
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("s3cret"));
    }

    #[test]
    fn serialized_spec_shows_env_names_not_values() {
        let s = spec(false, &[("FOO", "s3cret")], &["FOO"]);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"FOO\""));
        assert!(json.contains("\"secrets\":[\"FOO\"]"), "{json}");
        assert!(!json.contains("s3cret"));
    }

    #[test]
    fn a_helper_is_unprivileged_and_runs_its_script_under_the_init_only() {
        let ns = Namespace::new(Some("t")).unwrap();
        let volume = VolumeMount {
            volume: "tools".into(),
            target: "/opt/tools".into(),
            read_only: false,
            labels: BTreeMap::new(),
        };
        let s = SandboxSpec::helper(&ns, "img", "echo hi", vec![volume.clone()], Vec::new());
        assert!(s.name.starts_with("t-stockade-helper-"), "{}", s.name);
        assert_eq!(s.start_as, format!("{HELPER_UID}:{HELPER_UID}"));
        assert_eq!(s.command, ["sh", "-c", "echo hi"]);
        assert_eq!(s.security.cap_drop, vec!["ALL"]);
        assert!(s.security.cap_add.is_empty() && s.security.no_new_privileges);
        assert_eq!(s.env, [("HOME".to_owned(), "/tmp".to_owned())]);
        assert_eq!(s.volumes, [volume]);
        assert_eq!(s.labels[labels::KIND], "helper");
        assert_eq!(
            s.entrypoint,
            Some(vec!["/opt/stockade/bin/tini".to_owned(), "--".to_owned()])
        );
        assert_ne!(random_suffix(), "");
    }
}
