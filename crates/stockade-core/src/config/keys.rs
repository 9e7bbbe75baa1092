//! Every configuration key stockade knows, in one table: its section, how layers apply it
//! (shape), its class (what a project file setting it does: widens, narrows, neutral,
//! global-only), its default, its parser, where it lives in [`Config`] (`get`, `set`), its
//! command-line flag, its launch warning and one line of help. Files, `STOCKADE_<SECTION>_<KEY>`
//! variables and flags are all checked against this table; `Config::default()`, the merge,
//! `config show`, the CLI's sandbox flags, the approval check (`trust::concerns`) and the
//! project-file rules (`rules.rs`) read it: no other place matches a key by its name.
//! Top-level entries that are not keys (`extends`, `[agents]`, `[tools]`) are classed in
//! [`ENTRIES`]. Tests fail when an entry has no class, when a widening or narrowing key has no
//! concern test sample, and when docs/configuration.md disagrees on a class or default.

use super::Config;
use super::source::Scope;
use super::value::{self, Bad, EnvSetting, ParseContext, Raw, Value};

/// How a key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One value; the later layer wins.
    Scalar,
    /// A list; layers are concatenated, duplicates dropped.
    List,
}

/// What a value set in a project file does to the sandbox: the class decides whether the
/// project layer may set the key and whether doing so needs the user's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Gives the sandbox more than the project (host files, variables, ports, privilege…): a
    /// project that sets it needs approval.
    Widens,
    /// A limit or protection: a project value stricter than the layers below it is fine; a
    /// looser one (see [`looser`]) needs approval.
    Narrows,
    /// Changes nothing about what the sandbox can reach.
    Neutral,
    /// Shapes what every project shares (the foundation image…): only the user's own layers
    /// (global file, variables, flags) may set it; a project file setting it is refused.
    GlobalOnly,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Widens => "widens",
            Self::Narrows => "narrows",
            Self::Neutral => "neutral",
            Self::GlobalOnly => "global-only",
        }
    }
}

/// One key of the schema.
pub struct Key {
    pub section: &'static str,
    pub name: &'static str,
    /// How layers apply: a scalar replaces, a list appends.
    pub shape: Shape,
    pub class: Class,
    /// The default as a user would write it (parsed by `parse`); `None`: unset (lists: empty).
    pub default: Option<&'static str>,
    /// Parses one value (one element of a list).
    pub parse: fn(&Raw, &ParseContext<'_>) -> Result<Value, Bad>,
    /// What the value looks like, for messages (`a string`, `a list of strings`…).
    pub expects: &'static str,
    pub help: &'static str,
    /// The command-line flag that sets it (the flag layer), if any.
    pub flag: Option<Flag>,
    /// Its value in a resolved configuration (`None`: unset, or a list key).
    pub get: fn(&Config) -> Option<Value>,
    /// Applies one value the merge decided on (a scalar replaces, a list element appends);
    /// the scope is the layer it came from.
    pub set: fn(&mut Config, &Value, Scope),
    /// A warning printed at each launch (and by `check`) while the resolved value is `true`.
    pub warning: Option<&'static str>,
    /// What a project file's value gives the sandbox, as the approval prompt says it (`None`
    /// here: said from the value's kind, e.g. a mount or a port; `None` returned: nothing).
    pub concern: Option<fn(&Value) -> Option<String>>,
}

/// A key's command-line flag, on `exec`, `shell`, before an agent's name and on `config show`.
/// The CLI builds these flags from the table: a list key's flag repeats, a boolean key's flag
/// is a switch that sets `true`.
#[derive(Debug)]
pub struct Flag {
    /// `--<long>`.
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's placeholder in `--help`; `None`: a switch without a value (sets `true`).
    /// Its help text is the key's.
    pub value_name: Option<&'static str>,
}

impl Flag {
    /// A flag with a value (`--memory 4g`).
    const fn value(long: &'static str, value_name: &'static str) -> Self {
        Self {
            long,
            short: None,
            value_name: Some(value_name),
        }
    }

    /// A flag with a value and a one-letter form (`-e NAME`).
    const fn short(short: char, long: &'static str, value_name: &'static str) -> Self {
        Self {
            short: Some(short),
            ..Self::value(long, value_name)
        }
    }

    /// A switch: it sets `true`.
    const fn switch(long: &'static str) -> Self {
        Self {
            long,
            short: None,
            value_name: None,
        }
    }

    /// `--long`, as typed.
    pub fn name(&self) -> String {
        format!("--{}", self.long)
    }
}

impl Key {
    /// `section.name`, as `config show` prints it.
    pub fn path(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }

    /// `STOCKADE_SECTION_NAME`.
    pub fn env_var(&self) -> String {
        format!(
            "STOCKADE_{}_{}",
            self.section.to_ascii_uppercase(),
            self.name.to_ascii_uppercase()
        )
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}.{})", self.section, self.name)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.section == other.section && self.name == other.name
    }
}
impl Eq for Key {}

/// The sections, in the order `config show` prints them.
pub const SECTIONS: &[&str] = &["image", "sandbox", "network", "secrets"];

/// Keys kept under an old name: (the old key's path, the key it stands for). The old key's
/// value sets the new one, reads as the new one's value, and loading fails when both are set
/// and disagree.
pub const ALIASES: &[(&str, &str)] = &[("sandbox.network", "network.egress")];

/// The key an old name stands for (see [`ALIASES`]).
pub fn alias_target(key: &Key) -> Option<&'static Key> {
    let path = key.path();
    let (_, target) = ALIASES.iter().find(|(old, _)| *old == path)?;
    let (section, name) = target.split_once('.')?;
    find(section, name)
}

/// Top-level keys that are not sections.
pub const TOP_LEVEL: &[&str] = &["extends"];

/// A top-level entry the key table does not describe key by key: `extends` and the sections
/// read by their own walker (`[agents.<name>]`, `[tools]`: see `agents.rs`).
#[derive(Debug)]
pub struct Entry {
    pub name: &'static str,
    pub class: Class,
    /// The default, as a user would write it.
    pub default: &'static str,
    /// How the layers apply it.
    pub applies: &'static str,
    pub help: &'static str,
}

/// Every such entry with its class. `extends = false` drops the global layer (its image, CA
/// certificates and limits), so it is a loosening; `[agents]` decides what is installed and run.
pub static ENTRIES: &[Entry] = &[
    Entry {
        name: "extends",
        class: Class::Narrows,
        default: "true",
        applies: "project file only; false drops the global file's layer",
        help: "false ignores the global file (project files only)",
    },
    Entry {
        name: "agents",
        class: Class::Widens,
        default: "{} (the built-in catalog)",
        applies: "a map merged by agent name, then field by field (a later layer's field wins)",
        help: "[agents.<name>]: custom agents and overrides of built-in ones",
    },
    Entry {
        name: "tools",
        class: Class::Neutral,
        default: "version_cache_hours = 24",
        applies: "a map merged by key (a later layer's value wins)",
        help: "[tools] version_cache_hours: how long resolved agent versions are cached",
    },
];

/// The class of a top-level entry (`extends`, `agents`, `tools`).
pub fn entry(name: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.name == name)
}

/// For a [`Class::Narrows`] key: whether `value` (a project's) is less restrictive than `below`
/// (what the layers under the project give). Values of other keys are never looser.
pub fn looser(key: &Key, value: &Value, below: &Value) -> bool {
    if key.class != Class::Narrows {
        return false;
    }
    match (value, below) {
        (Value::Bytes(a), Value::Bytes(b)) => a > b,
        (Value::Cpus(a), Value::Cpus(b)) => a > b,
        (Value::Int(a), Value::Int(b)) => a > b,
        // `egress`, and `[sandbox] network` (its alias), against the mode below: none <
        // allowlist < open.
        (Value::Egress(a), Value::Egress(b)) => a.rank() > b.rank(),
        (Value::Network(a), Value::Egress(b)) => a.egress().rank() > b.rank(),
        // read_only_root, secrets.scan: `true` is the protection.
        (Value::Bool(a), Value::Bool(b)) => !*a && *b,
        _ => false,
    }
}

/// The default of a scalar key as a typed value (`None` when the key has none, and for lists:
/// see [`list_default`]).
pub fn default_value(key: &Key) -> Option<Value> {
    if key.shape == Shape::List {
        return None;
    }
    let text = key.default?;
    let cx = ParseContext {
        relative_to: std::path::Path::new("/"),
        project_root: std::path::Path::new("/"),
        home: std::path::Path::new("/"),
    };
    (key.parse)(&Raw::Text(text.to_owned()), &cx).ok()
}

/// The elements a list key starts from (its `default`, a TOML array of strings), which the
/// resolved [`Config`] does not hold: `[network] presets` starts from the default presets, and
/// `crate::egress::policy` puts them first. Empty for other lists.
pub fn list_default(key: &Key) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct List {
        list: Vec<String>,
    }
    match (key.shape, key.default) {
        (Shape::List, Some(text)) => toml::from_str::<List>(&format!("list = {text}"))
            .map(|l| l.list)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A boolean key's approval concern: said when a project sets it to `true`.
fn when_true(value: &Value, what: &str) -> Option<String> {
    (*value == Value::Bool(true)).then(|| what.to_owned())
}

/// `Key::get` of a field (`get!(Bool, sandbox.sudo)`).
macro_rules! get {
    ($kind:ident, $($field:ident).+) => {
        |c: &Config| Some(Value::$kind(c.$($field).+.clone()))
    };
}

/// `Key::get` of an optional field.
macro_rules! get_some {
    ($kind:ident, $($field:ident).+) => {
        |c: &Config| c.$($field).+.clone().map(Value::$kind)
    };
}

/// `Key::set` of a field: the value replaces it.
macro_rules! set {
    ($kind:ident, $($field:ident).+) => {
        |c: &mut Config, v: &Value, _: Scope| {
            if let Value::$kind(x) = v {
                c.$($field).+ = x.clone();
            }
        }
    };
}

/// `Key::set` of an optional field.
macro_rules! set_some {
    ($kind:ident, $($field:ident).+) => {
        |c: &mut Config, v: &Value, _: Scope| {
            if let Value::$kind(x) = v {
                c.$($field).+ = Some(x.clone());
            }
        }
    };
}

/// `Key::set` of a field holding one of a few words (a [`value`] word enum).
macro_rules! set_word {
    ($kind:ident, $($field:ident).+) => {
        |c: &mut Config, v: &Value, _: Scope| {
            if let Value::Str(text) = v
                && let Some(x) = value::$kind::parse(text)
            {
                c.$($field).+ = x;
            }
        }
    };
}

/// `Key::set` of a list: the value is appended.
macro_rules! push {
    ($kind:ident, $($field:ident).+) => {
        |c: &mut Config, v: &Value, _: Scope| {
            if let Value::$kind(x) = v {
                c.$($field).+.push(x.clone());
            }
        }
    };
}

/// `Key::set` of `[image] base` or `base_dockerfile`: set in a project file, the custom base
/// belongs to that project.
macro_rules! set_base {
    ($kind:ident, $field:ident) => {
        |c: &mut Config, v: &Value, scope: Scope| {
            if let Value::$kind(x) = v {
                c.image.$field = Some(x.clone());
                c.image.base_from_project |= scope == Scope::Project;
            }
        }
    };
}

pub static KEYS: &[Key] = &[
    Key {
        section: "image",
        name: "from",
        shape: Shape::Scalar,
        class: Class::GlobalOnly,
        default: Some("debian:bookworm-slim"),
        parse: |raw, _| value::image_reference(raw),
        expects: "a string",
        help: "image the foundation is built FROM (a mirror, or a local image when offline)",
        flag: None,
        get: get!(Str, image.from),
        set: set!(Str, image.from),
        warning: None,
        concern: None,
    },
    Key {
        section: "image",
        name: "ca_certificates",
        shape: Shape::List,
        class: Class::GlobalOnly,
        default: None,
        parse: value::ca_file,
        expects: "a list of paths",
        help: "PEM files of extra CA certificates trusted inside every image",
        flag: None,
        get: |_| None,
        set: push!(Path, image.ca_certificates),
        warning: None,
        concern: None,
    },
    Key {
        section: "image",
        name: "toolset",
        shape: Shape::Scalar,
        class: Class::GlobalOnly,
        default: Some("minimal"),
        parse: |raw, _| value::toolset(raw),
        expects: "a string",
        help: "\"minimal\" (the foundation alone) or \"full\" (the foundation and the developer toolset image beneath every sandbox)",
        flag: None,
        get: get!(Toolset, image.toolset),
        set: set!(Toolset, image.toolset),
        warning: None,
        concern: None,
    },
    Key {
        section: "image",
        name: "base",
        shape: Shape::Scalar,
        class: Class::Widens,
        default: None,
        parse: |raw, _| value::image_reference(raw),
        expects: "a string",
        help: "a custom base image by name, extended with stockade's runtime layer",
        flag: None,
        get: get_some!(Str, image.base),
        set: set_base!(Str, base),
        warning: None,
        concern: Some(|v| match v {
            Value::Str(image) => Some(format!(
                "builds this project's sandbox on the image {image}"
            )),
            _ => None,
        }),
    },
    Key {
        section: "image",
        name: "base_dockerfile",
        shape: Shape::Scalar,
        class: Class::Widens,
        default: None,
        parse: value::dockerfile_path,
        expects: "a path",
        help: "a Dockerfile that builds the custom base when it is missing",
        flag: None,
        get: get_some!(Path, image.base_dockerfile),
        set: set_base!(Path, base_dockerfile),
        warning: None,
        concern: Some(|v| match v {
            Value::Path(p) => Some(format!(
                "builds this project's custom base from {} (its commands run at build time)",
                p.display()
            )),
            _ => None,
        }),
    },
    Key {
        section: "image",
        name: "source",
        shape: Shape::Scalar,
        class: Class::GlobalOnly,
        default: Some("auto"),
        parse: |raw, _| value::image_source(raw),
        expects: "a string",
        help: "pull the published foundation, build it locally, or auto (pull when it can be)",
        flag: None,
        get: |c| Some(Value::Str(c.image.source.as_str().to_owned())),
        set: set_word!(ImageSource, image.source),
        warning: None,
        concern: None,
    },
    Key {
        section: "image",
        name: "registries",
        shape: Shape::List,
        class: Class::GlobalOnly,
        default: Some("[\"docker.io/stockadedev\", \"ghcr.io/stockade-dev\"]"),
        parse: |raw, _| value::registry_prefix(raw),
        expects: "a list of strings",
        help: "repository prefixes the published images are pulled from, in order",
        flag: None,
        get: |_| None,
        set: push!(Str, image.registries),
        warning: None,
        concern: None,
    },
    Key {
        section: "image",
        name: "foundation_digest",
        shape: Shape::Scalar,
        class: Class::GlobalOnly,
        default: None,
        parse: |raw, _| value::digest(raw),
        expects: "a string",
        help: "the digest the published foundation must have (overrides the binary's pin)",
        flag: None,
        get: get_some!(Str, image.foundation_digest),
        set: set_some!(Str, image.foundation_digest),
        warning: None,
        concern: None,
    },
    Key {
        section: "image",
        name: "full_digest",
        shape: Shape::Scalar,
        class: Class::GlobalOnly,
        default: None,
        parse: |raw, _| value::digest(raw),
        expects: "a string",
        help: "the digest the published full image must have (overrides the binary's pin)",
        flag: None,
        get: get_some!(Str, image.full_digest),
        set: set_some!(Str, image.full_digest),
        warning: None,
        concern: None,
    },
    Key {
        section: "image",
        name: "verify_signatures",
        shape: Shape::Scalar,
        class: Class::GlobalOnly,
        default: Some("auto"),
        parse: |raw, _| value::signature_policy(raw),
        expects: "a string",
        help: "cosign signatures of pulled images: auto, required or off",
        flag: None,
        get: |c| Some(Value::Str(c.image.verify_signatures.as_str().to_owned())),
        set: set_word!(SignaturePolicy, image.verify_signatures),
        warning: None,
        concern: None,
    },
    Key {
        section: "image",
        name: "cosign_public_key",
        shape: Shape::Scalar,
        class: Class::GlobalOnly,
        default: None,
        parse: value::public_key_file,
        expects: "a path",
        help: "a PEM public key pulled images must be signed with (instead of the release identity)",
        flag: None,
        get: get_some!(Path, image.cosign_public_key),
        set: set_some!(Path, image.cosign_public_key),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "env",
        shape: Shape::List,
        class: Class::Widens,
        default: None,
        parse: |raw, _| value::env_entry(raw),
        expects: "a list of strings",
        help: "NAME passes a host variable through when set; NAME=value sets one",
        flag: Some(Flag::short('e', "env", "NAME[=VALUE]")),
        get: |_| None,
        set: |c, v, _| match v {
            Value::Env(EnvSetting::Pass { name }) => c.sandbox.env.push(name.clone()),
            Value::Env(EnvSetting::Set { name, value }) => {
                c.sandbox.set_env.push((name.clone(), value.clone()));
            }
            _ => {}
        },
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "mounts",
        shape: Shape::List,
        class: Class::Widens,
        default: None,
        parse: value::mount,
        expects: "a list of strings",
        help: "extra bind mounts, \"src[:dst][:ro]\"",
        flag: Some(Flag::value("mount", "SRC[:DST][:ro]")),
        get: |_| None,
        set: push!(Mount, sandbox.mounts),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "ports",
        shape: Shape::List,
        class: Class::Widens,
        default: None,
        parse: |raw, _| value::port(raw),
        expects: "a list of strings",
        help: "published ports, \"[ip:]host:container[/proto]\" (ip defaults to 127.0.0.1)",
        flag: Some(Flag::short('p', "port", "PORT")),
        get: |_| None,
        set: push!(Port, sandbox.ports),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "memory",
        shape: Shape::Scalar,
        class: Class::Narrows,
        default: Some("8g"),
        parse: |raw, _| value::memory(raw),
        expects: "a size",
        help: "memory limit, e.g. \"4g\"",
        flag: Some(Flag::value("memory", "SIZE")),
        get: get_some!(Bytes, sandbox.memory),
        set: set_some!(Bytes, sandbox.memory),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "cpus",
        shape: Shape::Scalar,
        class: Class::Narrows,
        default: None,
        parse: |raw, _| value::cpus(raw),
        expects: "a number",
        help: "CPU limit, e.g. 2 or 1.5",
        flag: Some(Flag::value("cpus", "N")),
        get: get_some!(Cpus, sandbox.cpus),
        set: set_some!(Cpus, sandbox.cpus),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "pids_limit",
        shape: Shape::Scalar,
        class: Class::Narrows,
        default: Some("1024"),
        parse: |raw, _| value::pids_limit(raw),
        expects: "an integer",
        help: "maximum number of processes",
        flag: Some(Flag::value("pids-limit", "N")),
        get: get!(Int, sandbox.pids_limit),
        set: set!(Int, sandbox.pids_limit),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "tmp_size",
        shape: Shape::Scalar,
        class: Class::Narrows,
        default: Some("2g"),
        parse: |raw, _| value::tmp_size(raw),
        expects: "a size",
        help: "size limit of the /tmp tmpfs (it counts against memory), e.g. \"2g\"",
        flag: None,
        get: get!(Bytes, sandbox.tmp_size),
        set: set!(Bytes, sandbox.tmp_size),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "stop_timeout",
        shape: Shape::Scalar,
        class: Class::Neutral,
        default: Some("10"),
        parse: |raw, _| value::stop_timeout(raw),
        expects: "an integer",
        help: "seconds a sandbox asked to stop (SIGTERM, SIGHUP to stockade) has before it is killed",
        flag: None,
        get: get!(Int, sandbox.stop_timeout),
        set: set!(Int, sandbox.stop_timeout),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "detach_keys",
        shape: Shape::Scalar,
        class: Class::Neutral,
        default: Some("ctrl-p,ctrl-q"),
        parse: |raw, _| value::detach_keys(raw),
        expects: "a string",
        help: "the keys that leave `stockade attach` with the sandbox running, e.g. \"ctrl-p,ctrl-q\"",
        flag: None,
        get: get!(Str, sandbox.detach_keys),
        set: set!(Str, sandbox.detach_keys),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "network",
        shape: Shape::Scalar,
        class: Class::Narrows,
        default: None,
        parse: |raw, _| value::network(raw),
        expects: "a string",
        help: "the old name of [network] egress: \"bridge\" is egress \"open\", \"none\" is \"none\"",
        flag: Some(Flag::value("network", "NETWORK")),
        // An alias reads as the mode it stands for, so that a project's `network = "bridge"` is
        // compared with the mode below it (see `looser`).
        get: |c| Some(Value::Egress(c.network.egress)),
        set: |c, v, _| {
            if let Value::Network(n) = v {
                c.network.egress = n.egress();
            }
        },
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "read_only_root",
        shape: Shape::Scalar,
        class: Class::Narrows,
        default: Some("false"),
        parse: |raw, _| value::boolean(raw),
        expects: "a boolean",
        help: "mount the image's file system read-only (writable: project, mounts, /tmp, HOME)",
        flag: Some(Flag::switch("read-only-root")),
        get: get!(Bool, sandbox.read_only_root),
        set: set!(Bool, sandbox.read_only_root),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "sudo",
        shape: Shape::Scalar,
        class: Class::Widens,
        default: Some("false"),
        parse: |raw, _| value::boolean(raw),
        expects: "a boolean",
        help: "passwordless sudo inside; lifts no-new-privileges for this sandbox",
        flag: Some(Flag::switch("sudo")),
        get: get!(Bool, sandbox.sudo),
        set: set!(Bool, sandbox.sudo),
        warning: None,
        concern: Some(|v| when_true(v, "enables sudo inside (no-new-privileges lifted)")),
    },
    Key {
        section: "sandbox",
        name: "ssh_agent",
        shape: Shape::Scalar,
        class: Class::Widens,
        default: Some("false"),
        parse: |raw, _| value::boolean(raw),
        expects: "a boolean",
        help: "forward the host's SSH agent (SSH_AUTH_SOCK) into sandboxes",
        flag: Some(Flag::switch("ssh-agent")),
        get: get!(Bool, sandbox.ssh_agent),
        set: set!(Bool, sandbox.ssh_agent),
        warning: None,
        concern: Some(|v| when_true(v, "forwards your SSH agent (it can sign with your keys)")),
    },
    Key {
        section: "sandbox",
        name: "docker_socket",
        shape: Shape::Scalar,
        class: Class::Widens,
        default: Some("false"),
        parse: |raw, _| value::boolean(raw),
        expects: "a boolean",
        help: "mount the engine socket: gives the sandbox control of the host",
        flag: None,
        get: get!(Bool, sandbox.docker_socket),
        set: set!(Bool, sandbox.docker_socket),
        warning: Some(
            "docker_socket = true: the sandbox can control the container engine, \
             which is root on this host in all but name",
        ),
        concern: Some(|v| {
            when_true(
                v,
                "mounts the engine socket (control of the host's containers)",
            )
        }),
    },
    Key {
        section: "sandbox",
        name: "worktrees_dir",
        shape: Shape::Scalar,
        class: Class::GlobalOnly,
        default: None,
        parse: value::directory_path,
        expects: "a path",
        help: "where `--worktree` makes worktrees (default: beside the repository)",
        flag: None,
        get: get_some!(Path, sandbox.worktrees_dir),
        set: set_some!(Path, sandbox.worktrees_dir),
        warning: None,
        concern: None,
    },
    Key {
        section: "sandbox",
        name: "engine_options",
        shape: Shape::List,
        class: Class::Widens,
        default: None,
        parse: |raw, _| value::engine_option(raw),
        expects: "a list of strings",
        help: "extra engine options for experts, e.g. \"--shm-size=1g\"",
        flag: None,
        get: |_| None,
        set: push!(EngineOption, sandbox.engine_options),
        warning: None,
        concern: None,
    },
    Key {
        section: "network",
        name: "egress",
        shape: Shape::Scalar,
        class: Class::Narrows,
        default: Some("allowlist"),
        parse: |raw, _| value::egress(raw),
        expects: "a string",
        help: "what a sandbox may reach: \"allowlist\" (the allowed hosts, through stockade's gateway), \"open\" or \"none\"",
        flag: Some(Flag::value("egress", "MODE")),
        get: get!(Egress, network.egress),
        set: set!(Egress, network.egress),
        warning: None,
        concern: None,
    },
    Key {
        section: "network",
        name: "allow",
        shape: Shape::List,
        class: Class::Widens,
        default: None,
        parse: |raw, _| value::egress_entry(raw),
        expects: "a list of strings",
        help: "hosts a sandbox may reach: \"host\", \"*.domain\", \"host:port\"; \"!entry\" removes one a lower layer gave",
        flag: None,
        get: |_| None,
        set: push!(Str, network.allow),
        warning: None,
        concern: Some(|v| match v {
            Value::Str(entry) if !entry.starts_with('!') => {
                Some(format!("allows egress to {entry}"))
            }
            _ => None,
        }),
    },
    Key {
        section: "network",
        name: "presets",
        shape: Shape::List,
        class: Class::Widens,
        default: Some("[\"agent\", \"packages\", \"git-hosts\"]"),
        parse: |raw, _| value::egress_preset(raw),
        expects: "a list of strings",
        help: "named lists of hosts stockade keeps (agent, packages, git-hosts); \"!name\" removes one",
        flag: None,
        get: |_| None,
        set: push!(Str, network.presets),
        warning: None,
        concern: Some(|v| match v {
            Value::Str(name) if !name.starts_with('!') => {
                Some(format!("adds the egress preset {name}"))
            }
            _ => None,
        }),
    },
    Key {
        section: "network",
        name: "allow_private",
        shape: Shape::List,
        class: Class::GlobalOnly,
        default: None,
        parse: |raw, _| value::egress_entry(raw),
        expects: "a list of strings",
        help: "allowed names that may resolve to private addresses (corporate mirrors)",
        flag: None,
        get: |_| None,
        set: push!(Str, network.allow_private),
        warning: None,
        concern: None,
    },
    Key {
        section: "secrets",
        name: "scan",
        shape: Shape::Scalar,
        class: Class::Narrows,
        default: Some("true"),
        parse: |raw, _| value::boolean(raw),
        expects: "a boolean",
        help: "scan the project for likely secrets before each launch",
        flag: None,
        get: get!(Bool, secrets.scan),
        set: set!(Bool, secrets.scan),
        warning: None,
        concern: None,
    },
    Key {
        section: "secrets",
        name: "allowlist",
        shape: Shape::List,
        class: Class::Widens,
        default: None,
        parse: |raw, _| value::glob(raw),
        expects: "a list of strings",
        help: "globs (relative to the project root) the secret scan accepts",
        flag: None,
        get: |_| None,
        set: push!(Str, secrets.allowlist),
        warning: None,
        concern: Some(|v| Some(format!("lets the secret scan accept {v}"))),
    },
];

pub fn find(section: &str, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// The keys that have a command-line flag, in table order.
pub fn flagged() -> impl Iterator<Item = (&'static Key, &'static Flag)> {
    KEYS.iter().filter_map(|k| Some((k, k.flag.as_ref()?)))
}

pub fn names_in(section: &str) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|k| k.section == section)
        .map(|k| k.name)
        .collect()
}
