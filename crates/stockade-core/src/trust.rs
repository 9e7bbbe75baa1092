//! Project-configuration trust. `.stockade/config.toml` and `.stockade/Dockerfile` arrive with a
//! clone, so what they add to the sandbox beyond the project itself is shown and approved once;
//! approvals are stored by content hash, so an edit asks again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{EnvSetting, RawSection, Scope, Setting, Source, Value};
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
    if files.config.is_none() && files.context.is_none() {
        return None;
    }
    let mut hasher = ContentHasher::new("stockade-trust-v2");
    hasher.part(files.dir.root().as_os_str().as_encoded_bytes());
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
            .part(file.path.as_os_str().as_encoded_bytes())
            .part(&file.bytes);
    }
    for concern in concerns {
        hasher.part(b"concern").part(concern.what.as_bytes());
    }
    Some(hasher.finish())
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

/// What the project file's settings (and its Dockerfile) add that needs approval: mounts outside
/// the project, host variables passed through, ports, sudo, the engine
/// socket, engine options, secret-scan exceptions, and a Dockerfile. Limits and the like
/// (`memory`, `network = "none"`…) only narrow the sandbox and need none.
pub fn concerns(project_settings: &[Setting], root: &Path) -> Vec<Concern> {
    let mut out = Vec::new();
    for s in project_settings {
        let what = match &s.value {
            Value::Mount(m) if !m.source.starts_with(root) => Some(format!(
                "mounts {} (outside the project) at {}{}",
                m.source.display(),
                m.target.display(),
                if m.read_only {
                    ", read-only"
                } else {
                    ", read-write"
                }
            )),
            Value::Env(EnvSetting::Pass { name }) => {
                Some(format!("passes your environment variable {name} through"))
            }
            // A literal value reaches only the sandbox: nothing of the host.
            Value::Env(EnvSetting::Set { .. }) => None,
            Value::Port(p) => Some(format!("publishes port {p}")),
            Value::Bool(true) if s.key.name == "sudo" => {
                Some("enables sudo inside (no-new-privileges lifted)".to_owned())
            }
            Value::Bool(true) if s.key.name == "docker_socket" => {
                Some("mounts the engine socket (control of the host's containers)".to_owned())
            }
            Value::Bool(false) if s.key.name == "scan" => {
                Some("turns the secret scan off".to_owned())
            }
            Value::Bool(false) if s.key.name == "read_only_root" => None,
            Value::EngineOption(o) => Some(format!("adds the engine option {o}")),
            Value::Str(glob) if s.key.name == "allowlist" => {
                Some(format!("lets the secret scan accept {glob:?}"))
            }
            Value::Str(image) if s.key.name == "from" || s.key.name == "base" => {
                Some(format!("builds the sandbox from the image {image}"))
            }
            Value::Path(p) if s.key.name == "base_dockerfile" => {
                Some(format!("builds the base from {}", p.display()))
            }
            Value::Path(p) if s.key.name == "ca_certificates" => {
                Some(format!("trusts the CA certificates in {}", p.display()))
            }
            _ => None,
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

/// What the project file's own sections add: `[agents.<name>]` decides which packages are
/// installed and which commands run, so a project that defines or changes agents needs approval.
pub fn section_concerns(sections: &[RawSection]) -> Vec<Concern> {
    sections
        .iter()
        .filter(|s| s.scope == Scope::Project && s.name == "agents")
        .map(|s| Concern {
            what: "defines or changes agents in [agents] (what is installed and run)".to_owned(),
            source: Some(Source::File {
                scope: Scope::Project,
                path: s.path.clone(),
                line: line_of(&s.text, "[agents"),
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

    #[test]
    fn only_what_widens_the_sandbox_is_a_concern() {
        use crate::config::{Places, Scope, parse_file};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        let outside = dir.path().join("data");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let text = format!(
            "[sandbox]\nmounts = [\"src:/src\", \"{}:/data:ro\"]\nenv = [\"TOKEN\", \"MODE=dev\"]\n\
             memory = \"1g\"\nnetwork = \"none\"\nports = [\"3000:3000\"]\nsudo = true\n",
            outside.display()
        );
        let mut errors = Vec::new();
        let layer = parse_file(
            &root.join(".stockade/config.toml"),
            &text,
            Scope::Project,
            Places {
                project_root: &root,
                home: dir.path(),
            },
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let what: Vec<String> = concerns(&layer.settings, &root)
            .into_iter()
            .map(|c| c.what)
            .collect();
        assert_eq!(what.len(), 4, "{what:?}");
        assert!(what[0].starts_with(&format!("mounts {}", outside.display())));
        assert_eq!(what[1], "passes your environment variable TOKEN through");
        assert_eq!(what[2], "publishes port 127.0.0.1:3000:3000/tcp");
        assert!(what[3].starts_with("enables sudo"));
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
