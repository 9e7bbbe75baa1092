//! Typed configuration values and the parsers that turn what a user wrote (in a file, a
//! variable or a flag) into them. Parsers return a message and a fix; the caller adds the place.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A problem with one value: what is wrong, a short label for the underline, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub message: String,
    pub label: &'static str,
    pub help: Option<String>,
}

impl Bad {
    pub fn new(message: impl Into<String>, label: &'static str, help: Option<&str>) -> Self {
        Self {
            message: message.into(),
            label,
            help: help.map(str::to_owned),
        }
    }
}

/// What a value was written as, before the key's parser looked at it. A file's values have a
/// TOML type, and a value of the wrong type is an error (`sudo = "yes"` is a string, not a
/// boolean): nothing is coerced. Variables and flags are text without a type ([`Raw::Text`]):
/// the text is read as the key's type would be written in a file (`true`, `1024`, `4g`).
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    /// The text of a `STOCKADE_*` variable or a flag.
    Text(String),
}

impl Raw {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Str(_) => "a string",
            Self::Bool(_) => "a boolean",
            Self::Int(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Text(_) => "text",
        }
    }
}

/// The error for a value of the wrong type: "expected a boolean, found a string".
pub fn wrong_type(expects: &str, raw: &Raw, help: &str) -> Bad {
    Bad::new(
        format!("expected {expects}, found {}", raw.type_name()),
        "wrong type",
        Some(help),
    )
}

/// Where relative paths and `~` point while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext<'a> {
    /// Where this layer's relative paths start (mount sources, `base_dockerfile`, CA files):
    /// the global file's own directory for the global file, never the project; the project
    /// root for the project file, variables and flags.
    pub relative_to: &'a Path,
    /// The project root.
    pub project_root: &'a Path,
    pub home: &'a Path,
}

/// A typed configuration value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Str(String),
    Path(PathBuf),
    Bool(bool),
    Int(i64),
    /// A size in bytes (memory).
    Bytes(u64),
    /// Thousandths of a CPU.
    Cpus(u32),
    Network(Network),
    Egress(Egress),
    Toolset(Toolset),
    Mount(MountSetting),
    Port(PortSetting),
    Env(EnvSetting),
    EngineOption(EngineOption),
}

impl fmt::Display for Value {
    /// As TOML would spell it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Path(p) => write!(f, "{:?}", p.display().to_string()),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Bytes(b) => write!(f, "{:?}", format_bytes(*b)),
            Self::Cpus(m) => write!(f, "{}", format_cpus(*m)),
            Self::Network(n) => write!(f, "{:?}", n.as_str()),
            Self::Egress(e) => write!(f, "{:?}", e.as_str()),
            Self::Toolset(t) => write!(f, "{:?}", t.as_str()),
            Self::Mount(m) => write!(f, "{:?}", m.to_string()),
            Self::Port(p) => write!(f, "{:?}", p.to_string()),
            Self::Env(e) => write!(f, "{:?}", e.display_redacted()),
            Self::EngineOption(o) => write!(f, "{:?}", o.to_string()),
        }
    }
}

/// A setting written as one of a few words: the enum, its words, `as_str` and `parse`.
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                [$(Self::$variant,)+].into_iter().find(|s| s.as_str() == text)
            }
        }
    };
}

word_enum! {
    /// `[image] source`: where the published tiers come from.
    ImageSource {
        /// Build locally, always.
        Build = "build",
        /// Pull the published image; a failure is an error.
        Pull = "pull",
        /// Pull when the image would be the published one and a pin exists, else build; a
        /// failed pull falls back to a build.
        #[default]
        Auto = "auto",
    }
}

word_enum! {
    /// `[image] verify_signatures`: what a pull requires of the image's cosign signature.
    SignaturePolicy {
        /// A bad signature refuses the image; a missing one warns.
        #[default]
        Auto = "auto",
        /// A missing or bad signature refuses the image.
        Required = "required",
        /// Not checked.
        Off = "off",
    }
}

/// `[sandbox] network`, the old name of `[network] egress` (kept as an alias: `bridge` is
/// `open`, `none` is `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    Bridge,
    None,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::None => "none",
        }
    }

    /// The `[network] egress` mode this alias value stands for.
    pub fn egress(self) -> Egress {
        match self {
            Self::Bridge => Egress::Open,
            Self::None => Egress::None,
        }
    }
}

/// `[network] egress`: what a sandbox may reach outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Egress {
    /// Only the allowed hosts, through stockade's gateway (the default).
    #[default]
    Allowlist,
    /// Anywhere (the engine's default bridge network).
    Open,
    /// No network at all.
    None,
}

impl Egress {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowlist => "allowlist",
            Self::Open => "open",
            Self::None => "none",
        }
    }

    /// How much it lets out: `none` < `allowlist` < `open` (a larger rank is looser).
    pub fn rank(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Allowlist => 1,
            Self::Open => 2,
        }
    }
}

/// `[image] toolset`: what the image every sandbox builds on carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Toolset {
    /// The foundation alone (the default).
    #[default]
    Minimal,
    /// The foundation and the developer toolset of `assets/full/tools.toml` (docs/images.md).
    Full,
}

impl Toolset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minimal => "minimal",
            Self::Full => "full",
        }
    }
}

/// One extra bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountSetting {
    /// Absolute, symlinks resolved.
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

impl fmt::Display for MountSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source.display(), self.target.display())?;
        if self.read_only {
            write!(f, ":ro")?;
        }
        Ok(())
    }
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSetting {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl fmt::Display for PortSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host_ip.contains(':') {
            write!(f, "[{}]", self.host_ip)?;
        } else {
            write!(f, "{}", self.host_ip)?;
        }
        write!(
            f,
            ":{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// One `[sandbox] env` entry: a host variable passed through by name, or a literal value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EnvSetting {
    Pass {
        name: String,
    },
    Set {
        name: String,
        #[serde(skip)]
        value: String,
    },
}

impl EnvSetting {
    pub fn name(&self) -> &str {
        match self {
            Self::Pass { name } | Self::Set { name, .. } => name,
        }
    }

    /// `NAME` or `NAME=…`: values are never printed (they may be tokens).
    pub fn display_redacted(&self) -> String {
        match self {
            Self::Pass { name } => name.clone(),
            Self::Set { name, .. } => format!("{name}=…"),
        }
    }
}

/// An extra engine option for experts (`[sandbox] engine_options`), from a short list of
/// options that do not undo the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "option", content = "value", rename_all = "kebab-case")]
pub enum EngineOption {
    CapAdd(String),
    ShmSize(u64),
    Ulimit { name: String, soft: i64, hard: i64 },
    AddHost { host: String, ip: String },
    Dns(String),
    Device(String),
    Tmpfs(String),
    Hostname(String),
}

impl fmt::Display for EngineOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CapAdd(c) => write!(f, "--cap-add={c}"),
            Self::ShmSize(b) => write!(f, "--shm-size={}", format_bytes(*b)),
            Self::Ulimit { name, soft, hard } => write!(f, "--ulimit={name}={soft}:{hard}"),
            Self::AddHost { host, ip } => write!(f, "--add-host={host}:{ip}"),
            Self::Dns(ip) => write!(f, "--dns={ip}"),
            Self::Device(d) => write!(f, "--device={d}"),
            Self::Tmpfs(t) => write!(f, "--tmpfs={t}"),
            Self::Hostname(h) => write!(f, "--hostname={h}"),
        }
    }
}

/// The engine options `engine_options` accepts.
pub const ENGINE_OPTIONS: &[&str] = &[
    "cap-add", "shm-size", "ulimit", "add-host", "dns", "device", "tmpfs", "hostname",
];

// ---- parsers -------------------------------------------------------------------------------

pub fn string(raw: &Raw) -> Result<&str, Bad> {
    match raw {
        Raw::Str(s) | Raw::Text(s) => Ok(s),
        other => Err(wrong_type(
            "a string",
            other,
            "put the value in double quotes",
        )),
    }
}

/// `true` or `false`: a TOML boolean in a file (`"yes"`, `"false"` and `1` are not), the text
/// `true` or `false` in a variable or flag.
pub fn boolean(raw: &Raw) -> Result<Value, Bad> {
    match raw {
        Raw::Bool(b) => Ok(Value::Bool(*b)),
        Raw::Text(s) => match s.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(Bad::new(
                format!("expected true or false, found {s:?}"),
                "not a boolean",
                Some("write true or false"),
            )),
        },
        other => Err(wrong_type(
            "a boolean",
            other,
            "write true or false, without quotes",
        )),
    }
}

/// A non-empty image reference without white space, e.g. `debian:bookworm-slim`.
pub fn image_reference(raw: &Raw) -> Result<Value, Bad> {
    let value = string(raw)?.trim();
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(Bad::new(
            "not an image reference such as \"debian:bookworm-slim\"",
            "not an image reference",
            None,
        ));
    }
    Ok(Value::Str(value.to_owned()))
}

/// `[image] source`: `build`, `pull` or `auto`.
pub fn image_source(raw: &Raw) -> Result<Value, Bad> {
    word(
        raw,
        ImageSource::parse,
        ImageSource::as_str,
        ("image source", "not build, pull or auto"),
        "`auto` (pull the published image when it can be, else build), `pull` (pull or fail) \
         or `build` (always build locally)",
    )
}

/// `[image] verify_signatures`: `auto`, `required` or `off`.
pub fn signature_policy(raw: &Raw) -> Result<Value, Bad> {
    word(
        raw,
        SignaturePolicy::parse,
        SignaturePolicy::as_str,
        ("signature policy", "not auto, required or off"),
        "`auto` (a bad signature refuses the image, a missing one warns), `required` (an \
         unsigned image is refused) or `off`",
    )
}

/// One of a few words (a word enum's), kept as its word.
fn word<T: Copy>(
    raw: &Raw,
    parse: fn(&str) -> Option<T>,
    as_str: fn(T) -> &'static str,
    (what, label): (&str, &'static str),
    help: &str,
) -> Result<Value, Bad> {
    let text = string(raw)?;
    match parse(text) {
        Some(found) => Ok(Value::Str(as_str(found).to_owned())),
        None => Err(Bad::new(
            format!("unknown {what} {text:?}"),
            label,
            Some(help),
        )),
    }
}

/// One `[image] registries` entry: a repository prefix such as `docker.io/stockadedev` or
/// `127.0.0.1:5000/mirror` (the image is `<prefix>/foundation:<version>`).
pub fn registry_prefix(raw: &Raw) -> Result<Value, Bad> {
    let value = string(raw)?.trim().trim_end_matches('/');
    let bad = value.is_empty()
        || value.chars().any(|c| c.is_whitespace() || c == '@')
        || value.split('/').any(str::is_empty)
        || value
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
    if bad {
        return Err(Bad::new(
            format!("{value:?} is not a repository prefix"),
            "not a repository prefix",
            Some(
                "write a registry host and path without a tag, e.g. \"docker.io/stockadedev\" or \
                 \"registry.example.com:5000/mirror\"",
            ),
        ));
    }
    Ok(Value::Str(value.to_owned()))
}

/// A digest pin: `sha256:` and 64 lower-case hex digits.
pub fn digest(raw: &Raw) -> Result<Value, Bad> {
    let value = string(raw)?.trim();
    let valid = value.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if !valid {
        return Err(Bad::new(
            format!("{value:?} is not a sha256 digest"),
            "not sha256:<64 hex digits>",
            Some(
                "copy the image's manifest digest, e.g. from `docker buildx imagetools inspect \
                 IMAGE`: \"sha256:\" and 64 lower-case hex digits",
            ),
        ));
    }
    Ok(Value::Str(value.to_owned()))
}

/// A PEM public key file that must exist; relative paths start at the config file's directory.
pub fn public_key_file(raw: &Raw, cx: &ParseContext<'_>) -> Result<Value, Bad> {
    let resolved = resolve_path(string(raw)?, cx.relative_to, cx.home);
    match std::fs::metadata(&resolved) {
        Ok(meta) if meta.is_file() => Ok(Value::Path(resolved)),
        Ok(_) => Err(Bad::new(
            format!("public key {} is not a file", resolved.display()),
            "not a file",
            Some("name a PEM file holding the cosign public key (cosign.pub)"),
        )),
        Err(e) => Err(Bad::new(
            format!("cannot read public key {}: {e}", resolved.display()),
            "this file",
            Some("fix the path (relative paths start at this file's directory) or remove the key"),
        )),
    }
}

/// A CA file that must exist; relative paths start at the config file's directory.
pub fn ca_file(raw: &Raw, cx: &ParseContext<'_>) -> Result<Value, Bad> {
    let resolved = resolve_path(string(raw)?, cx.relative_to, cx.home);
    match std::fs::metadata(&resolved) {
        Ok(meta) if meta.is_file() => Ok(Value::Path(resolved)),
        Ok(_) => Err(Bad::new(
            format!("CA certificate {} is not a file", resolved.display()),
            "not a file",
            Some("name a PEM file with one or more certificates"),
        )),
        Err(e) => Err(Bad::new(
            format!("cannot read CA certificate {}: {e}", resolved.display()),
            "this file",
            Some(
                "fix the path (relative paths start at this file's directory) or remove the entry",
            ),
        )),
    }
}

pub fn dockerfile_path(raw: &Raw, cx: &ParseContext<'_>) -> Result<Value, Bad> {
    nonempty_path(
        raw,
        cx,
        "`image.base_dockerfile` must be a path to a Dockerfile",
        None,
    )
}

/// A directory path (it may not exist yet); relative paths start at the file's directory.
pub fn directory_path(raw: &Raw, cx: &ParseContext<'_>) -> Result<Value, Bad> {
    nonempty_path(
        raw,
        cx,
        "expected a path to a directory",
        Some("name a directory, e.g. \"~/worktrees\""),
    )
}

/// A path that is not empty, resolved like every path of the layer.
fn nonempty_path(
    raw: &Raw,
    cx: &ParseContext<'_>,
    empty: &str,
    help: Option<&str>,
) -> Result<Value, Bad> {
    let value = string(raw)?;
    if value.trim().is_empty() {
        return Err(Bad::new(empty, "empty path", help));
    }
    Ok(Value::Path(resolve_path(value, cx.relative_to, cx.home)))
}

pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `NAME` (pass the host's value through when set) or `NAME=value` (a literal).
pub fn env_entry(raw: &Raw) -> Result<Value, Bad> {
    let text = string(raw)?;
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (text, None),
    };
    if !is_env_name(name) {
        return Err(Bad::new(
            format!("{name:?} is not an environment variable name"),
            "invalid name",
            Some(
                "names are letters, digits and '_', not starting with a digit: NAME passes the host's value through, NAME=value sets one",
            ),
        ));
    }
    Ok(Value::Env(match value {
        Some(value) => EnvSetting::Set {
            name: name.to_owned(),
            value: value.to_owned(),
        },
        None => EnvSetting::Pass {
            name: name.to_owned(),
        },
    }))
}

/// Host paths that must never be mounted into a sandbox by `mounts`.
const ENGINE_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
    "/var/run/podman/podman.sock",
];

/// Directories under HOME whose mount earns a warning.
pub const SENSITIVE_HOME_DIRS: &[&str] = &[".ssh", ".aws", ".gnupg", ".kube", ".docker"];

/// `src[:dst][:ro|rw]`: `~` expanded, relative sources against the project root, the source
/// must exist. The home directory itself (or a parent of it), `/` and engine sockets are refused.
pub fn mount(raw: &Raw, cx: &ParseContext<'_>) -> Result<Value, Bad> {
    let text = string(raw)?;
    let parts: Vec<&str> = text.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [src] => (*src, None, None),
        [src, mode] if matches!(*mode, "ro" | "rw") => (*src, None, Some(*mode)),
        [src, dst] => (*src, Some(*dst), None),
        [src, dst, mode] => (*src, Some(*dst), Some(*mode)),
        _ => {
            return Err(Bad::new(
                format!("{text:?} is not a mount"),
                "not src[:dst][:ro]",
                Some("write \"SOURCE\", \"SOURCE:TARGET\" or \"SOURCE:TARGET:ro\""),
            ));
        }
    };
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => {
            return Err(Bad::new(
                format!("unknown mount mode {other:?}"),
                "not ro or rw",
                Some("the third part is `ro` (read-only) or `rw`"),
            ));
        }
    };
    if src.trim().is_empty() {
        return Err(Bad::new(
            "the mount source is empty",
            "empty",
            Some("write \"SOURCE[:TARGET][:ro]\""),
        ));
    }
    let written = resolve_path(src, cx.relative_to, cx.home);
    if ENGINE_SOCKETS.iter().any(|s| Path::new(s) == written) || is_socket(&written) {
        return Err(Bad::new(
            format!(
                "{} is a socket: mounting the engine socket gives the sandbox control of the host",
                written.display()
            ),
            "engine socket refused",
            Some(
                "set `docker_socket = true` in [sandbox] if you really want the engine inside (read docs/security.md first)",
            ),
        ));
    }
    let source = written.canonicalize().map_err(|e| {
        Bad::new(
            format!("mount source {} does not exist: {e}", written.display()),
            "missing source",
            Some("create it, fix the path (relative paths start at the project root; in the global file, at its own directory) or remove the entry"),
        )
    })?;
    if source == Path::new("/") {
        return Err(Bad::new(
            "mounting / would expose the whole host",
            "refused",
            Some("mount the directories you need"),
        ));
    }
    let home = cx
        .home
        .canonicalize()
        .unwrap_or_else(|_| cx.home.to_path_buf());
    if home.starts_with(&source) {
        return Err(Bad::new(
            format!(
                "mounting {} would expose your home directory and every credential in it",
                source.display()
            ),
            "home directory refused",
            Some("mount the directories you need, e.g. \"~/src/lib:ro\""),
        ));
    }
    let target = match dst {
        Some(dst) => {
            let target = expand_home(dst, cx.home);
            if !target.is_absolute() {
                return Err(Bad::new(
                    format!("mount target {dst:?} is not an absolute path"),
                    "relative target",
                    Some("targets are paths inside the sandbox, starting with / or ~/"),
                ));
            }
            target
        }
        None => source.clone(),
    };
    Ok(Value::Mount(MountSetting {
        source,
        target,
        read_only,
    }))
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The sensitive directory a mount source exposes, if any (e.g. `~/.ssh`).
pub fn sensitive_mount(source: &Path, home: &Path) -> Option<PathBuf> {
    let home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    SENSITIVE_HOME_DIRS
        .iter()
        .map(|dir| home.join(dir))
        .find(|dir| source.starts_with(dir))
}

/// `[ip:]host:container[/proto]`; the host address defaults to 127.0.0.1.
pub fn port(raw: &Raw) -> Result<Value, Bad> {
    let text = string(raw)?;
    let bad = |why: &str| {
        Bad::new(
            format!("{text:?} is not a port mapping: {why}"),
            "not [ip:]host:container[/proto]",
            Some(
                "e.g. \"8080:80\" (bound to 127.0.0.1), \"0.0.0.0:8080:80/tcp\" or \"[::1]:53:53/udp\"",
            ),
        )
    };
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, proto)) => (spec, proto.to_ascii_lowercase()),
        None => (text, "tcp".to_owned()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("the protocol is tcp, udp or sctp"));
    }
    let (ip, rest) = if let Some(after) = spec.strip_prefix('[') {
        let (ip, rest) = after
            .split_once("]:")
            .ok_or_else(|| bad("an IPv6 address is written [addr]:host:container"))?;
        (Some(ip), rest)
    } else {
        match spec.matches(':').count() {
            1 => (None, spec),
            2 => {
                let (ip, rest) = spec.split_once(':').ok_or_else(|| bad("missing port"))?;
                (Some(ip), rest)
            }
            _ => return Err(bad("expected host:container")),
        }
    };
    let host_ip = match ip {
        Some(ip) => ip
            .parse::<IpAddr>()
            .map_err(|_| bad("the address is not an IP address"))?
            .to_string(),
        None => "127.0.0.1".to_owned(),
    };
    let (host, container) = rest.split_once(':').ok_or_else(|| bad("missing port"))?;
    let number = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("ports are numbers from 1 to 65535"))
    };
    Ok(Value::Port(PortSetting {
        host_ip,
        host_port: number(host)?,
        container_port: number(container)?,
        protocol,
    }))
}

/// Sizes: an integer of bytes, or a string like "512m", "2g", "1.5GiB".
pub fn size(raw: &Raw, minimum: u64) -> Result<u64, Bad> {
    let bad = |what: String| {
        Bad::new(
            what,
            "not a size",
            Some("write an integer of bytes or a string like \"512m\" or \"4g\""),
        )
    };
    let bytes = match raw {
        Raw::Int(i) => u64::try_from(*i).map_err(|_| bad(format!("{i} is negative")))?,
        Raw::Str(s) | Raw::Text(s) => {
            let lower = s.trim().to_ascii_lowercase();
            let digits_end = lower
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(lower.len());
            let (number, unit) = lower.split_at(digits_end);
            let number: f64 = number
                .parse()
                .map_err(|_| bad(format!("{s:?} is not a size")))?;
            let factor: u64 = match unit.trim() {
                "" | "b" => 1,
                "k" | "kb" | "kib" => 1 << 10,
                "m" | "mb" | "mib" => 1 << 20,
                "g" | "gb" | "gib" => 1 << 30,
                "t" | "tb" | "tib" => 1 << 40,
                _ => return Err(bad(format!("{s:?} has an unknown unit"))),
            };
            let value = number * factor as f64;
            if !value.is_finite() || value >= u64::MAX as f64 {
                return Err(bad(format!("{s:?} is too large")));
            }
            value as u64
        }
        other => {
            return Err(wrong_type(
                "a size",
                other,
                "write an integer of bytes or a string like \"512m\" or \"4g\"",
            ));
        }
    };
    if bytes < minimum {
        return Err(Bad::new(
            format!(
                "{} is less than the minimum of {}",
                format_bytes(bytes),
                format_bytes(minimum)
            ),
            "too small",
            None,
        ));
    }
    Ok(bytes)
}

/// `[sandbox] tmp_size`: at least 1 MiB.
pub fn tmp_size(raw: &Raw) -> Result<Value, Bad> {
    size(raw, 1 << 20).map(Value::Bytes)
}

pub fn memory(raw: &Raw) -> Result<Value, Bad> {
    // The engine refuses less than 6 MiB.
    size(raw, 6 << 20).map(Value::Bytes)
}

/// CPUs: a positive number such as 2 or 1.5 (thousandths are kept).
pub fn cpus(raw: &Raw) -> Result<Value, Bad> {
    let value = match raw {
        Raw::Int(i) => *i as f64,
        Raw::Float(f) => *f,
        Raw::Text(s) => s.trim().parse::<f64>().map_err(|_| {
            Bad::new(
                format!("{s:?} is not a number of CPUs"),
                "not a number",
                Some("e.g. 2 or 1.5"),
            )
        })?,
        other => {
            return Err(wrong_type(
                "a number",
                other,
                "write a number without quotes, e.g. 2 or 1.5",
            ));
        }
    };
    if !(0.001..=1024.0).contains(&value) {
        return Err(Bad::new(
            format!("{value} CPUs is out of range"),
            "out of range",
            Some("between 0.001 and 1024"),
        ));
    }
    Ok(Value::Cpus((value * 1000.0).round() as u32))
}

/// An integer: from a file as a TOML integer, from a variable or flag as its text.
fn integer(raw: &Raw, example: &str) -> Result<i64, Bad> {
    match raw {
        Raw::Int(i) => Ok(*i),
        Raw::Text(s) => s.trim().parse::<i64>().map_err(|_| {
            Bad::new(
                format!("{s:?} is not an integer"),
                "not an integer",
                Some(&format!("e.g. {example}")),
            )
        }),
        other => Err(wrong_type(
            "an integer",
            other,
            &format!("write an integer without quotes, e.g. {example}"),
        )),
    }
}

pub fn pids_limit(raw: &Raw) -> Result<Value, Bad> {
    let value = integer(raw, "1024")?;
    if !(16..=4_194_304).contains(&value) {
        return Err(Bad::new(
            format!("a pids limit of {value} is out of range"),
            "out of range",
            Some("between 16 and 4194304; a sandbox always has a limit"),
        ));
    }
    Ok(Value::Int(value))
}

/// `[sandbox] stop_timeout`: seconds, 0 to 600.
pub fn stop_timeout(raw: &Raw) -> Result<Value, Bad> {
    let value = integer(raw, "10")?;
    if !(0..=600).contains(&value) {
        return Err(Bad::new(
            format!("a stop timeout of {value} s is out of range"),
            "out of range",
            Some("between 0 and 600 seconds"),
        ));
    }
    Ok(Value::Int(value))
}

/// `[sandbox] detach_keys`: the engine's notation, comma-separated keys, each a single
/// character or `ctrl-` and one of `a`-`z`, `@`, `[`, `\\`, `]`, `^`, `_`.
pub fn detach_keys(raw: &Raw) -> Result<Value, Bad> {
    let text = string(raw)?;
    let valid_key = |key: &str| match key.strip_prefix("ctrl-") {
        Some(rest) => {
            rest.len() == 1
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || "@[\\]^_".contains(c))
        }
        None => key.chars().count() == 1 && key.chars().all(|c| c.is_ascii_graphic()),
    };
    if text.split(',').all(valid_key) {
        Ok(Value::Str(text.to_owned()))
    } else {
        Err(Bad::new(
            format!("{text:?} is not a sequence of keys"),
            "not keys",
            Some(
                "comma-separated keys, each a character or ctrl-<letter>, e.g. \"ctrl-p,ctrl-q\" or \"ctrl-x,x\"",
            ),
        ))
    }
}

pub fn network(raw: &Raw) -> Result<Value, Bad> {
    match string(raw)? {
        "bridge" => Ok(Value::Network(Network::Bridge)),
        "none" => Ok(Value::Network(Network::None)),
        other => Err(Bad::new(
            format!("unknown network {other:?}"),
            "not bridge or none",
            Some(
                "`bridge` (anywhere) or `none` (no network at all); `network` is the old name of \
                 [network] egress, which also has \"allowlist\"",
            ),
        )),
    }
}

/// `[network] egress`: `allowlist`, `open` or `none`.
pub fn egress(raw: &Raw) -> Result<Value, Bad> {
    match string(raw)? {
        "allowlist" => Ok(Value::Egress(Egress::Allowlist)),
        "open" => Ok(Value::Egress(Egress::Open)),
        "none" => Ok(Value::Egress(Egress::None)),
        other => Err(Bad::new(
            format!("unknown egress mode {other:?}"),
            "not allowlist, open or none",
            Some(
                "`allowlist` (only the allowed hosts, through stockade's gateway), `open` \
                 (anywhere) or `none` (no network at all)",
            ),
        )),
    }
}

/// `[image] toolset`: `minimal` or `full`.
pub fn toolset(raw: &Raw) -> Result<Value, Bad> {
    match string(raw)? {
        "minimal" => Ok(Value::Toolset(Toolset::Minimal)),
        "full" => Ok(Value::Toolset(Toolset::Full)),
        other => Err(Bad::new(
            format!("unknown toolset {other:?}"),
            "not minimal or full",
            Some(
                "`minimal` (the foundation alone) or `full` (the foundation and the developer \
                 toolset, docs/images.md)",
            ),
        )),
    }
}

/// One `[network] allow` or `allow_private` entry: `host`, `*.domain`, `host:port` or an IP
/// address (see [`crate::egress::parse_rule`]), or `!entry` to remove one a lower layer gave.
/// Kept as written, trimmed and in lower case (a removal matches the entry it names).
pub fn egress_entry(raw: &Raw) -> Result<Value, Bad> {
    let text = string(raw)?.trim();
    let (bang, entry) = match text.strip_prefix('!') {
        Some(rest) => ("!", rest.trim()),
        None => ("", text),
    };
    if entry.is_empty() {
        return Err(Bad::new(
            format!("{text:?} names no host"),
            "empty entry",
            Some(
                "write \"host\", \"*.domain\" or \"host:port\"; \"!host\" removes one a lower layer gave",
            ),
        ));
    }
    crate::egress::parse_rule(entry).map_err(|message| {
        Bad::new(
            message,
            "not a host",
            Some(
                "write \"host\" (ports 443 and 80), \"*.domain\" (its subdomains, not the domain \
                 itself), \"host:port\" or an IP address; \"!entry\" removes an entry a lower \
                 layer gave",
            ),
        )
    })?;
    Ok(Value::Str(format!("{bang}{}", entry.to_ascii_lowercase())))
}

/// One `[network] presets` entry: a preset's name, or `!name` to remove one (a default one
/// included).
pub fn egress_preset(raw: &Raw) -> Result<Value, Bad> {
    let text = string(raw)?.trim();
    let (bang, name) = match text.strip_prefix('!') {
        Some(rest) => ("!", rest.trim()),
        None => ("", text),
    };
    let known = crate::egress::preset_names();
    if !known.contains(&name) {
        let list = known.join(", ");
        return Err(Bad {
            message: format!("unknown egress preset {name:?}"),
            label: "not a preset",
            help: Some(match did_you_mean(name, &known) {
                Some(near) => format!("did you mean {bang}{near}? The presets are {list}"),
                None => format!(
                    "the presets are {list} (docs/egress.md lists their hosts); add other hosts \
                     with `allow`"
                ),
            }),
        });
    }
    Ok(Value::Str(format!("{bang}{name}")))
}

/// A glob relative to the project root (`secrets.allowlist`).
pub fn glob(raw: &Raw) -> Result<Value, Bad> {
    let text = string(raw)?;
    globset::Glob::new(text).map_err(|e| {
        Bad::new(
            format!("{text:?} is not a glob: {e}"),
            "bad pattern",
            Some("e.g. \"config/dev.env\" or \"**/*.pem\""),
        )
    })?;
    Ok(Value::Str(text.to_owned()))
}

/// `--name=value` (or `name=value`) from the short list in [`ENGINE_OPTIONS`].
pub fn engine_option(raw: &Raw) -> Result<Value, Bad> {
    let text = string(raw)?;
    let trimmed = text.trim().trim_start_matches("--");
    let (name, value) = trimmed.split_once(['=', ' ']).unwrap_or((trimmed, ""));
    let value = value.trim();
    let refused = |why: &str| {
        Bad::new(
            format!("engine option --{name} is refused: {why}"),
            "refused",
            None,
        )
    };
    let need_value = || {
        Bad::new(
            format!("engine option --{name} needs a value"),
            "missing value",
            Some("write \"--name=value\""),
        )
    };
    if value.is_empty() && ENGINE_OPTIONS.contains(&name) {
        return Err(need_value());
    }
    let option = match name {
        "cap-add" => {
            let cap = value.to_ascii_uppercase();
            let cap = cap.strip_prefix("CAP_").unwrap_or(&cap).to_owned();
            if matches!(
                cap.as_str(),
                "ALL" | "SYS_ADMIN" | "SYS_MODULE" | "SYS_RAWIO"
            ) {
                return Err(refused(&format!(
                    "CAP_{cap} is the host's root in all but name"
                )));
            }
            if cap.is_empty() || !cap.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return Err(Bad::new(
                    format!("{value:?} is not a capability name"),
                    "not a capability",
                    Some("e.g. SYS_PTRACE"),
                ));
            }
            EngineOption::CapAdd(cap)
        }
        "shm-size" => EngineOption::ShmSize(size(&Raw::Str(value.to_owned()), 1 << 20)?),
        "ulimit" => {
            let bad = || {
                Bad::new(
                    format!("{value:?} is not a ulimit"),
                    "not name=soft[:hard]",
                    Some("e.g. \"--ulimit=nofile=1024:4096\""),
                )
            };
            let (lname, limits) = value.split_once('=').ok_or_else(bad)?;
            let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
            let soft: i64 = soft.parse().map_err(|_| bad())?;
            let hard: i64 = hard.parse().map_err(|_| bad())?;
            if lname.is_empty() || soft > hard {
                return Err(bad());
            }
            EngineOption::Ulimit {
                name: lname.to_owned(),
                soft,
                hard,
            }
        }
        "add-host" => {
            let bad = || {
                Bad::new(
                    format!("{value:?} is not host:ip"),
                    "not host:ip",
                    Some("e.g. \"--add-host=db.local:10.0.0.5\""),
                )
            };
            let (host, ip) = value.split_once(':').ok_or_else(bad)?;
            ip.parse::<IpAddr>().map_err(|_| bad())?;
            if host.is_empty() {
                return Err(bad());
            }
            EngineOption::AddHost {
                host: host.to_owned(),
                ip: ip.to_owned(),
            }
        }
        "dns" => {
            value.parse::<IpAddr>().map_err(|_| {
                Bad::new(format!("{value:?} is not an IP address"), "not an IP", None)
            })?;
            EngineOption::Dns(value.to_owned())
        }
        "device" => {
            if !value.starts_with("/dev/") {
                return Err(Bad::new(
                    format!("{value:?} is not a device under /dev"),
                    "not a device",
                    Some("e.g. \"--device=/dev/fuse\""),
                ));
            }
            EngineOption::Device(value.to_owned())
        }
        "tmpfs" => {
            if !value.starts_with('/') {
                return Err(Bad::new(
                    format!("{value:?} is not an absolute path"),
                    "not a path",
                    Some("e.g. \"--tmpfs=/cache:size=1g\""),
                ));
            }
            EngineOption::Tmpfs(value.to_owned())
        }
        "hostname" => {
            if !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(Bad::new(
                    format!("{value:?} is not a host name"),
                    "not a host name",
                    None,
                ));
            }
            EngineOption::Hostname(value.to_owned())
        }
        "privileged" => return Err(refused("a privileged sandbox is no sandbox")),
        "security-opt" => {
            return Err(refused(
                "seccomp, AppArmor and no-new-privileges stay as stockade sets them (use `sudo = true` for sudo)",
            ));
        }
        "pid" | "ipc" | "uts" | "userns" | "cgroupns" => {
            return Err(refused("sharing a host namespace breaks the isolation"));
        }
        "net" | "network" => return Err(refused("use `network` in [sandbox]")),
        "v" | "volume" | "mount" => return Err(refused("use `mounts` in [sandbox]")),
        "p" | "publish" => return Err(refused("use `ports` in [sandbox]")),
        "e" | "env" => return Err(refused("use `env` in [sandbox]")),
        "m" | "memory" | "cpus" | "pids-limit" => {
            return Err(refused("use `memory`, `cpus` or `pids_limit` in [sandbox]"));
        }
        "cap-drop" | "user" | "u" | "entrypoint" => {
            return Err(refused("stockade sets this itself"));
        }
        other => {
            return Err(Bad {
                message: format!("unknown engine option --{other}"),
                label: "unknown option",
                help: Some(match did_you_mean(other, ENGINE_OPTIONS) {
                    Some(near) => format!(
                        "did you mean --{near}? Supported: --{}",
                        ENGINE_OPTIONS.join(", --")
                    ),
                    None => format!("supported: --{}", ENGINE_OPTIONS.join(", --")),
                }),
            });
        }
    };
    Ok(Value::EngineOption(option))
}

/// The closest candidate to `word`, if one is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

// ---- paths and formatting -------------------------------------------------------------------

/// `~/x` → home/x; relative → against `base`; absolute as is.
pub fn resolve_path(value: &str, base: &Path, home: &Path) -> PathBuf {
    base.join(expand_home(value, home))
}

/// `~` and `~/x` → under `home`; anything else unchanged.
pub fn expand_home(value: &str, home: &Path) -> PathBuf {
    if value == "~" {
        home.to_path_buf()
    } else if let Some(rest) = value.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(value)
    }
}

/// `512m`, `2g`, or bytes when not a whole unit.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, factor) in [
        ("t", 1u64 << 40),
        ("g", 1 << 30),
        ("m", 1 << 20),
        ("k", 1 << 10),
    ] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    format!("{bytes}")
}

pub fn format_cpus(milli: u32) -> String {
    if milli.is_multiple_of(1000) {
        format!("{}", milli / 1000)
    } else {
        format!("{}", f64::from(milli) / 1000.0)
    }
}
