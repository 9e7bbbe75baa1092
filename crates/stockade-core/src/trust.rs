//! Project-configuration trust. `.stockade/config.toml` and `.stockade/Dockerfile` arrive with a
//! clone, so what they add to the sandbox beyond the project itself is shown and approved once;
//! approvals are stored by content hash, so an edit asks again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::keys::{self, Class};
use crate::config::{Config, EnvSetting, RawSection, Resolved, Scope, Setting, Source, Value};
use crate::hash::{ContentHasher, sha256_hex};
use crate::project_files::{ProjectFiles, Referenced};

/// Something a project file adds that widens the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Concern {
    pub what: String,
    pub source: Option<Source>,
}

/// The fingerprint an approval pins, made from the launch's one read of the project
/// ([`ProjectFiles`]): the project root, the bytes of `.stockade/config.toml`, the content hash
/// of the whole `.stockade/` build context (the Dockerfile and every file it may `COPY`), the
/// bytes of every file the configuration refers to (CA files, …), and the resolved concerns.
/// `None` when the project has neither a configuration file nor a Dockerfile.
pub fn fingerprint(
    files: &ProjectFiles,
    referenced: &[Referenced],
    concerns: &[Concern],
) -> Option<String> {
    fingerprint_as(files, referenced, concerns, files.dir.root())
}

/// [`fingerprint`] as if the files were read at `root` instead: the fingerprint a worktree's
/// `.stockade/` has when its main project at `root` holds the same content (paths under the
/// worktree, in referenced files and concerns, are taken as the same paths under `root`). A
/// worktree stockade made shares its main project's approval while the two are equal.
pub fn fingerprint_as(
    files: &ProjectFiles,
    referenced: &[Referenced],
    concerns: &[Concern],
    root: &Path,
) -> Option<String> {
    if files.config.is_none() && files.context.is_none() {
        return None;
    }
    let read_at = files.dir.root();
    let as_root = |path: &Path| match path.strip_prefix(read_at) {
        Ok(rel) if read_at != root => root.join(rel),
        _ => path.to_path_buf(),
    };
    let mut hasher = ContentHasher::new("stockade-trust-v2");
    hasher.part(root.as_os_str().as_encoded_bytes());
    match &files.config {
        Some(text) => hasher.part(b"config").part(text.as_bytes()),
        None => hasher.part(b"config absent"),
    };
    match &files.context {
        Some(context) => hasher.part(b"context").part(context.hash.as_bytes()),
        None => hasher.part(b"context absent"),
    };
    for file in referenced {
        hasher
            .part(b"file")
            .part(as_root(&file.path).as_os_str().as_encoded_bytes())
            .part(&file.bytes);
    }
    let (from, to) = (read_at.display().to_string(), root.display().to_string());
    for concern in concerns {
        let what = if read_at == root {
            concern.what.clone()
        } else {
            replace_path(&concern.what, &from, &to)
        };
        hasher.part(b"concern").part(what.as_bytes());
    }
    Some(hasher.finish())
}

/// `text` with the path `from` replaced by `to` where it is a whole path or a prefix of one
/// (followed by `/` or by a character no path name here has), not a prefix of a longer name.
fn replace_path(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let after = &rest[at + from.len()..];
        let whole = after
            .chars()
            .next()
            .is_none_or(|c| c == '/' || !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_')));
        out.push_str(&rest[..at]);
        out.push_str(if whole { to } else { from });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The project Dockerfile as a concern, decided from the bytes read (not from the disk again).
pub fn context_concern(files: &ProjectFiles) -> Option<Concern> {
    files.context.as_ref().map(|context| Concern {
        what: format!(
            "builds the project image from {}/Dockerfile and the files beside it (its \
             commands run at build time)",
            context.dir.display(),
        ),
        source: None,
    })
}

/// What the project layer adds that needs approval, decided by each key's class in the key
/// table: every widening value ([`Class::Widens`]: a mount whose source or target is outside
/// the project, a host variable passed through, a port, sudo, the SSH agent, the engine socket,
/// an engine option, a secret-scan exception, a custom base); every limit or protection the
/// project loosens compared with the layers below it ([`Class::Narrows`]: defaults ← global
/// file); `extends = false` with what it drops; and a project Dockerfile. Neutral keys and
/// stricter limits need none; global-only keys never get here (the loader refuses them).
pub fn concerns(resolved: &Resolved, root: &Path) -> Vec<Concern> {
    let mut out = Vec::new();
    if resolved.global_ignored {
        out.push(Concern {
            what: extends_false(resolved),
            source: resolved.extends_at.clone(),
        });
    }
    for s in &resolved.project_settings {
        let what = match s.key.class {
            Class::Widens => widens(s, root),
            Class::Narrows => loosens(s, &resolved.below_project),
            Class::Neutral | Class::GlobalOnly => None,
        };
        if let Some(what) = what {
            out.push(Concern {
                what,
                source: Some(s.origin.source.clone()),
            });
        }
    }
    // The project Dockerfile is a concern too: `context_concern`, from the bytes read.
    out
}

/// What a value of a widening key gives the sandbox, if anything.
fn widens(s: &Setting, root: &Path) -> Option<String> {
    if let Some(concern) = s.key.concern {
        return concern(&s.value);
    }
    match &s.value {
        Value::Mount(m) if !m.source.starts_with(root) || !m.target.starts_with(root) => {
            Some(format!(
                "mounts {}{} at {}{}{}",
                m.source.display(),
                if m.source.starts_with(root) {
                    ""
                } else {
                    " (outside the project)"
                },
                m.target.display(),
                if m.target.starts_with(root) {
                    ""
                } else {
                    " (outside the project)"
                },
                if m.read_only {
                    ", read-only"
                } else {
                    ", read-write"
                }
            ))
        }
        Value::Mount(_) => None,
        Value::Env(EnvSetting::Pass { name }) => {
            Some(format!("passes your environment variable {name} through"))
        }
        // A literal value reaches only the sandbox (reserved names are refused by the loader).
        Value::Env(EnvSetting::Set { .. }) => None,
        Value::Port(p) => Some(format!("publishes port {p}")),
        Value::Bool(_) => None,
        Value::EngineOption(o) => Some(format!("adds the engine option {o}")),
        other => Some(format!("sets {} = {other}", s.key.path())),
    }
}

/// A project limit or protection looser than what the layers below it give.
fn loosens(s: &Setting, below: &Config) -> Option<String> {
    let under = below.value_of(s.key)?;
    keys::looser(s.key, &s.value, &under).then(|| {
        format!(
            "loosens {} to {} (your configuration and the defaults give {under})",
            s.key.path(),
            s.value
        )
    })
}

/// `extends = false`: what the project drops of the user's global file.
fn extends_false(resolved: &Resolved) -> String {
    let mut dropped: Vec<String> = resolved
        .global_settings
        .iter()
        .map(|s| s.key.path())
        .collect();
    dropped.dedup();
    if dropped.is_empty() {
        "ignores your global configuration (extends = false); it sets nothing today".to_owned()
    } else {
        format!(
            "ignores your global configuration (extends = false), dropping {}",
            dropped.join(", ")
        )
    }
}

/// What the project file's own sections add: a section whose entry is [`Class::Widens`]
/// (`[agents.<name>]` decides which packages are installed and which commands run).
pub fn section_concerns(sections: &[RawSection]) -> Vec<Concern> {
    sections
        .iter()
        .filter(|s| {
            s.scope == Scope::Project
                && keys::entry(&s.name).is_some_and(|e| e.class == Class::Widens)
        })
        .map(|s| Concern {
            what: format!(
                "defines or changes agents in [{}] (what is installed and run)",
                s.name
            ),
            source: Some(Source::File {
                scope: Scope::Project,
                path: s.path.clone(),
                line: line_of(&s.text, &format!("[{}", s.name)),
                column: 1,
            }),
        })
        .collect()
}

/// The 1-based line where `needle` first starts a line (1 when it is not found).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.trim_start().starts_with(needle))
        .map_or(1, |i| i + 1)
}

/// Approvals under the state directory: one file per project root.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Approval {
    root: PathBuf,
    fingerprint: String,
}

impl TrustStore {
    /// `state` is stockade's XDG state directory.
    pub fn new(state: &Path) -> Self {
        Self {
            dir: state.join("trust"),
        }
    }

    fn file(&self, root: &Path) -> PathBuf {
        let id = sha256_hex(root.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{}.json", &id[..16]))
    }

    /// Whether `fingerprint` is the approved one for `root`.
    pub fn is_trusted(&self, root: &Path, fingerprint: &str) -> bool {
        std::fs::read(self.file(root))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Approval>(&bytes).ok())
            .is_some_and(|a| a.root == root && a.fingerprint == fingerprint)
    }

    pub fn approve(&self, root: &Path, fingerprint: &str) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let approval = Approval {
            root: root.to_path_buf(),
            fingerprint: fingerprint.to_owned(),
        };
        let bytes = serde_json::to_vec_pretty(&approval).map_err(std::io::Error::other)?;
        let path = self.file(root);
        let scratch = path.with_extension("json.tmp");
        std::fs::write(&scratch, bytes)?;
        std::fs::rename(&scratch, &path)?;
        Ok(path)
    }

    /// Remove the approval; `Ok(false)` when there was none.
    pub fn revoke(&self, root: &Path) -> std::io::Result<bool> {
        match std::fs::remove_file(self.file(root)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::keys::{ENTRIES, KEYS, Key, SECTIONS, TOP_LEVEL, entry};
    use crate::config::{ConfigError, Loader, MAP_SECTIONS};

    /// A home with a global file and a project with a project file, both written as given.
    struct Setup {
        _dir: tempfile::TempDir,
        root: PathBuf,
        loader: Loader,
    }

    fn setup(global: &str, project: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("project");
        let config = base.join("home/.config/stockade");
        std::fs::create_dir_all(root.join(".stockade")).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(config.join("src")).unwrap();
        std::fs::create_dir_all(base.join("data")).unwrap();
        std::fs::write(config.join("config.toml"), global).unwrap();
        std::fs::write(root.join(".stockade/config.toml"), project).unwrap();
        let loader = Loader {
            global: config.join("config.toml"),
            project: root.join(".stockade/config.toml"),
            project_root: root.clone(),
            home: base.join("home"),
            env: Vec::new(),
            flags: Vec::new(),
        };
        Setup {
            _dir: dir,
            root,
            loader,
        }
    }

    fn concerns_of(global: &str, project: &str) -> Vec<String> {
        let s = setup(global, project);
        let resolved = match s.loader.load() {
            Ok(r) => r,
            Err(e) => panic!("{project}: {e:?}"),
        };
        let mut out: Vec<String> = concerns(&resolved, &s.root)
            .into_iter()
            .map(|c| c.what)
            .collect();
        out.extend(
            section_concerns(&resolved.sections)
                .into_iter()
                .map(|c| c.what),
        );
        out
    }

    fn toml_line(key: &Key, value: &str) -> String {
        format!("[{}]\n{} = {value}\n", key.section, key.name)
    }

    /// A value of each widening key that widens the sandbox.
    fn widening_sample(key: &Key) -> Option<&'static str> {
        Some(match (key.section, key.name) {
            ("image", "base") => "\"ruby:3.3\"",
            ("image", "base_dockerfile") => "\"base.Dockerfile\"",
            ("sandbox", "env") => "[\"TOKEN\"]",
            ("sandbox", "mounts") => "[\"src:/src\"]",
            ("sandbox", "ports") => "[\"3000:3000\"]",
            ("sandbox", "sudo" | "ssh_agent" | "docker_socket") => "true",
            ("sandbox", "engine_options") => "[\"--shm-size=1g\"]",
            ("secrets", "allowlist") => "[\"*.pem\"]",
            ("network", "allow") => "[\"example.com\"]",
            ("network", "presets") => "[\"packages\"]",
            _ => return None,
        })
    }

    /// For each limit: (the global value, a looser project value, a stricter one if any).
    fn narrowing_sample(key: &Key) -> Option<(&'static str, &'static str, Option<&'static str>)> {
        Some(match (key.section, key.name) {
            ("sandbox", "memory") => ("\"2g\"", "\"4g\"", Some("\"1g\"")),
            ("sandbox", "cpus") => ("2", "4", Some("1")),
            ("sandbox", "pids_limit") => ("256", "512", Some("128")),
            ("sandbox", "tmp_size") => ("\"1g\"", "\"2g\"", Some("\"512m\"")),
            ("sandbox", "network") => ("\"none\"", "\"bridge\"", None),
            ("network", "egress") => ("\"allowlist\"", "\"open\"", Some("\"none\"")),
            ("sandbox", "read_only_root") => ("true", "false", None),
            ("secrets", "scan") => ("true", "false", None),
            _ => return None,
        })
    }

    #[test]
    fn every_key_and_entry_has_a_class() {
        // Keys carry their class by construction; top-level entries and map sections are
        // looked up by name, so a new one without an entry fails here.
        for name in TOP_LEVEL.iter().chain(MAP_SECTIONS) {
            assert!(
                entry(name).is_some(),
                "top-level `{name}` has no class in ENTRIES"
            );
        }
        for e in ENTRIES {
            assert!(
                TOP_LEVEL.contains(&e.name) || MAP_SECTIONS.contains(&e.name),
                "ENTRIES names `{}`, which the loader does not know",
                e.name
            );
        }
        let tools = entry("tools").map(|e| e.default).unwrap_or_default();
        assert!(
            tools.ends_with(&crate::config::DEFAULT_VERSION_CACHE_HOURS.to_string()),
            "{tools}"
        );
        for key in KEYS {
            assert!(SECTIONS.contains(&key.section), "{key:?}");
            let parses = match key.shape {
                crate::config::keys::Shape::Scalar => {
                    crate::config::keys::default_value(key).is_some()
                }
                // A list's default: a non-empty list of elements the key accepts.
                crate::config::keys::Shape::List => {
                    let list = crate::config::keys::list_default(key);
                    !list.is_empty()
                        && list.iter().all(|e| {
                            let raw = crate::config::value::Raw::Str(e.clone());
                            let cx = crate::config::value::ParseContext {
                                relative_to: Path::new("/"),
                                project_root: Path::new("/"),
                                home: Path::new("/"),
                            };
                            (key.parse)(&raw, &cx).is_ok()
                        })
                }
            };
            assert!(
                key.default.is_none() || parses,
                "the default of {key:?} does not parse"
            );
        }
    }

    #[test]
    fn every_widening_key_set_in_a_project_is_a_concern() {
        for key in KEYS.iter().filter(|k| k.class == Class::Widens) {
            let Some(sample) = widening_sample(key) else {
                panic!("no widening sample for {key:?}: add one");
            };
            let what = concerns_of("", &toml_line(key, sample));
            assert_eq!(what.len(), 1, "{key:?}: {what:?}");
        }
        // And the same value from the user's own global file needs no approval.
        for key in KEYS.iter().filter(|k| k.class == Class::Widens) {
            let sample = widening_sample(key).unwrap_or_default();
            if key.name == "base_dockerfile" {
                continue;
            }
            assert_eq!(
                concerns_of(&toml_line(key, sample), ""),
                Vec::<String>::new()
            );
        }
        let what = concerns_of("", "[sandbox]\nssh_agent = true\n");
        assert_eq!(
            what,
            ["forwards your SSH agent (it can sign with your keys)"]
        );
        for entry in ENTRIES.iter().filter(|e| e.class == Class::Widens) {
            let text = format!("[{0}.x]\ninstall = \"npm\"\npackage = \"x\"\n", entry.name);
            assert_eq!(concerns_of("", &text).len(), 1, "{}", entry.name);
        }
    }

    #[test]
    fn every_limit_a_project_loosens_is_a_concern_and_tightening_is_not() {
        for key in KEYS.iter().filter(|k| k.class == Class::Narrows) {
            let Some((global, looser, tighter)) = narrowing_sample(key) else {
                panic!("no limit sample for {key:?}: add one");
            };
            let global = toml_line(key, global);
            let what = concerns_of(&global, &toml_line(key, looser));
            assert_eq!(what.len(), 1, "{key:?}: {what:?}");
            assert!(
                what[0].starts_with(&format!("loosens {}", key.path())),
                "{what:?}"
            );
            if let Some(tighter) = tighter {
                assert_eq!(
                    concerns_of(&global, &toml_line(key, tighter)),
                    Vec::<String>::new()
                );
            }
            // The same value as the layers below is no loosening.
            assert_eq!(
                concerns_of(&global, &global),
                Vec::<String>::new(),
                "{key:?}"
            );
        }
        // Against the defaults too: more memory or /tmp than the default is a loosening.
        assert_eq!(concerns_of("", "[sandbox]\nmemory = \"64g\"\n").len(), 1);
        assert_eq!(concerns_of("", "[sandbox]\npids_limit = 4096\n").len(), 1);
        assert!(concerns_of("", "[sandbox]\nmemory = \"1g\"\n").is_empty());
    }

    #[test]
    fn a_project_narrowing_egress_needs_no_approval_and_widening_it_does() {
        let global = "[network]\nallow = [\"a.example.com\"]\n";
        // Removing a global host or a default preset, or cutting the network off.
        for project in [
            "[network]\nallow = [\"!a.example.com\"]\npresets = [\"!git-hosts\", \"!packages\"]\n",
            "[network]\negress = \"none\"\n",
            "[sandbox]\nnetwork = \"none\"\n",
        ] {
            assert_eq!(
                concerns_of(global, project),
                Vec::<String>::new(),
                "{project}"
            );
        }
        let what = concerns_of(
            global,
            "[network]\nallow = [\"b.example.com:22\", \"!a.example.com\"]\npresets = [\"packages\"]\negress = \"open\"\n",
        );
        assert_eq!(
            what,
            [
                "allows egress to b.example.com:22",
                "adds the egress preset packages",
                "loosens network.egress to \"open\" (your configuration and the defaults give \"allowlist\")",
            ]
        );
        // The old name is compared with the mode below it: "bridge" is "open".
        assert_eq!(
            concerns_of("", "[sandbox]\nnetwork = \"bridge\"\n"),
            [
                "loosens sandbox.network to \"bridge\" (your configuration and the defaults give \"allowlist\")"
            ]
        );
    }

    #[test]
    fn extends_false_is_a_concern_naming_what_it_drops() {
        let global = "[sandbox]\nnetwork = \"none\"\nmemory = \"2g\"\n";
        let what = concerns_of(global, "extends = false\n");
        assert_eq!(
            what,
            [
                "ignores your global configuration (extends = false), dropping sandbox.network, \
              sandbox.memory"
            ]
        );
        assert_eq!(concerns_of("", "extends = false\n").len(), 1);
        assert!(concerns_of(global, "extends = true\n").is_empty());
    }

    #[test]
    fn a_worktree_fingerprinted_as_its_main_project_matches_while_the_content_is_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let (main, tree) = (base.join("app"), base.join("app.worktrees/a"));
        for root in [&main, &tree] {
            std::fs::create_dir_all(root.join(".stockade")).unwrap();
            std::fs::write(
                root.join(".stockade/config.toml"),
                "[sandbox]\nenv = [\"X\"]\n",
            )
            .unwrap();
        }
        let concern = |root: &Path| Concern {
            what: format!(
                "mounts {}/data at /data (outside the project)",
                root.display()
            ),
            source: None,
        };
        let read = |root: &Path| ProjectFiles::read(root, None).unwrap();
        let approved = fingerprint(&read(&main), &[], &[concern(&main)]).unwrap();
        let files = read(&tree);
        let concerns = [concern(&tree)];
        assert_ne!(fingerprint(&files, &[], &concerns).unwrap(), approved);
        assert_eq!(
            fingerprint_as(&files, &[], &concerns, &main).unwrap(),
            approved
        );
        // Changed in the worktree: no longer the approved content.
        std::fs::write(
            tree.join(".stockade/config.toml"),
            "[sandbox]\nenv = [\"Y\"]\n",
        )
        .unwrap();
        let files = read(&tree);
        assert_ne!(
            fingerprint_as(&files, &[], &concerns, &main).unwrap(),
            approved
        );
    }

    #[test]
    fn a_worktree_path_is_replaced_only_as_a_whole_path() {
        let (from, to) = ("/src/app.worktrees/a", "/src/app");
        assert_eq!(
            replace_path("mounts /src/app.worktrees/a/x (outside)", from, to),
            "mounts /src/app/x (outside)"
        );
        assert_eq!(
            replace_path("in /src/app.worktrees/a", from, to),
            "in /src/app"
        );
        assert_eq!(
            replace_path(
                "mounts /src/app.worktrees/ab/x and /src/app.worktrees/a.b",
                from,
                to
            ),
            "mounts /src/app.worktrees/ab/x and /src/app.worktrees/a.b"
        );
    }

    #[test]
    fn every_global_only_key_set_in_a_project_is_refused() {
        let keys: Vec<&Key> = KEYS
            .iter()
            .filter(|k| k.class == Class::GlobalOnly)
            .collect();
        assert!(keys.len() >= 2, "{keys:?}");
        for key in keys {
            // A value the key accepts: its default where it has one (a choice such as
            // `toolset` takes no other word), a digest for the pins, else any string.
            let value = match (key.shape, key.name, key.default) {
                (crate::config::keys::Shape::List, _, _) => "[\"ca.pem\"]".to_owned(),
                (_, "foundation_digest" | "full_digest", _) => {
                    format!("\"sha256:{}\"", "0".repeat(64))
                }
                (_, _, Some(default)) => format!("{default:?}"),
                _ => "\"x\"".to_owned(),
            };
            let value = value.as_str();
            let s = setup("", &toml_line(key, value));
            match s.loader.load() {
                Err(ConfigError::Invalid { errors }) => {
                    assert_eq!(errors.len(), 1, "{errors:?}");
                    assert_eq!((errors[0].line, errors[0].column), (2, 1), "{key:?}");
                    assert!(errors[0].message.contains("global configuration"));
                }
                other => panic!("{key:?}: {other:?}"),
            }
            // From the global file it is accepted (a CA or key file must exist there).
            if key.name != "ca_certificates" && key.name != "cosign_public_key" {
                assert!(
                    setup(&toml_line(key, value), "").loader.load().is_ok(),
                    "{key:?}"
                );
            }
        }
    }

    #[test]
    fn project_mounts_inside_the_project_need_no_approval() {
        let s = setup("", "");
        let text = format!(
            "[sandbox]\nmounts = [\"src:{0}/src2\", \"src\", \"{1}/data:/data:ro\"]\nenv = [\"MODE=dev\"]\n",
            s.root.display(),
            s.root.parent().unwrap().display()
        );
        std::fs::write(&s.loader.project, text).unwrap();
        let resolved = s.loader.load().unwrap();
        let what: Vec<String> = concerns(&resolved, &s.root)
            .into_iter()
            .map(|c| c.what)
            .collect();
        assert_eq!(what.len(), 1, "{what:?}");
        assert!(what[0].contains("(outside the project) at /data (outside the project)"));
    }

    #[test]
    fn approvals_follow_the_content() {
        let project = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let root = project.path();
        let read = || ProjectFiles::read(root, None).unwrap();
        assert_eq!(fingerprint(&read(), &[], &[]), None);
        std::fs::create_dir_all(root.join(".stockade")).unwrap();
        std::fs::write(root.join(".stockade/config.toml"), "[sandbox]\n").unwrap();
        let first = fingerprint(&read(), &[], &[]).unwrap();
        let store = TrustStore::new(state.path());
        assert!(!store.is_trusted(root, &first));
        store.approve(root, &first).unwrap();
        assert!(store.is_trusted(root, &first));
        // The Dockerfile, a file beside it, a referenced file and the concerns all count.
        std::fs::write(root.join(".stockade/Dockerfile"), "FROM x\n").unwrap();
        let second = fingerprint(&read(), &[], &[]).unwrap();
        assert_ne!(first, second);
        assert!(!store.is_trusted(root, &second));
        std::fs::write(root.join(".stockade/setup.sh"), "echo\n").unwrap();
        let third = fingerprint(&read(), &[], &[]).unwrap();
        assert_ne!(second, third);
        let ca = Referenced {
            path: root.join("ca.crt"),
            bytes: b"pem".to_vec(),
        };
        assert_ne!(
            fingerprint(&read(), std::slice::from_ref(&ca), &[]).unwrap(),
            third
        );
        let concern = Concern {
            what: "x".into(),
            source: None,
        };
        assert_ne!(fingerprint(&read(), &[], &[concern]).unwrap(), third);
        assert!(store.revoke(root).unwrap());
        assert!(!store.is_trusted(root, &first));
        assert!(!store.revoke(root).unwrap());
    }
}
