//! The pre-launch secret scan: one parallel walk of the project tree that flags likely secrets
//! by file name (private keys, .env files, cloud credentials, keystores, Terraform state…). Only
//! names are looked at, never contents, so it stays fast on large trees. Findings are marked when
//! git ignores them (a common place for secrets, and invisible in `git status`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::gitignore::Gitignore;
use ignore::{WalkBuilder, WalkState};
use serde::Serialize;

/// Directories never descended into: version control, dependencies and build output.
pub const SKIPPED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "bower_components",
    "target",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".terraform",
    ".next",
    ".nuxt",
    ".gradle",
    ".cache",
    ".yarn",
    ".direnv",
    "vendor",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One likely secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Relative to the project root.
    pub path: PathBuf,
    pub kind: &'static str,
    pub severity: Severity,
    pub git_ignored: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    /// Most severe first, then by path.
    pub findings: Vec<Finding>,
    /// Files looked at.
    pub files: usize,
    /// Findings the allowlist accepted.
    pub allowed: usize,
}

impl ScanReport {
    pub fn highest(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("secrets.allowlist: {0}")]
    Allowlist(#[from] globset::Error),
}

/// Classify a file by its name (and its parent directory's name).
pub fn classify(name: &str, parent: Option<&str>) -> Option<(&'static str, Severity)> {
    use Severity::*;
    let lower = name.to_ascii_lowercase();
    let n = lower.as_str();
    let ext = n.rsplit_once('.').map(|(_, e)| e);
    let hit = match n {
        "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519" | "id_ecdsa_sk" | "id_ed25519_sk" => {
            ("SSH private key", High)
        }
        ".env" => ("dotenv file", High),
        ".env.example" | ".env.sample" | ".env.template" | ".env.dist" | ".env.defaults" => {
            return None;
        }
        _ if n.starts_with(".env.") => ("dotenv file", High),
        "terraform.tfstate" | "terraform.tfstate.backup" => ("Terraform state", High),
        ".git-credentials" | ".netrc" | "_netrc" | ".pgpass" | ".vault-token" => {
            ("credentials file", High)
        }
        "application_default_credentials.json" | "credentials.db" | "access_tokens.db" => {
            ("cloud credentials", High)
        }
        "credentials" if parent == Some(".aws") => ("AWS credentials", High),
        "config.json" if parent == Some(".docker") => ("Docker registry credentials", Medium),
        "credentials" | "credentials.json" | "credentials.yml" | "credentials.yaml" => {
            ("credentials file", Medium)
        }
        ".npmrc" | ".pypirc" | ".dockercfg" | ".gem-credentials" | "kubeconfig" | ".htpasswd" => {
            ("package or cluster credentials", Medium)
        }
        "secrets.yml" | "secrets.yaml" | "secrets.json" | "secrets.toml" => {
            ("secrets file", Medium)
        }
        ".envrc" | ".bash_history" | ".zsh_history" | ".python_history" | ".psql_history" => {
            ("shell file that may hold tokens", Low)
        }
        _ => match ext {
            Some("key") => ("private key", High),
            Some("p12" | "pfx") => ("PKCS#12 keystore", High),
            Some("jks" | "keystore" | "bks") => ("Java keystore", High),
            Some("kdbx") => ("KeePass database", High),
            Some("tfstate") => ("Terraform state", High),
            Some("ppk") => ("PuTTY private key", High),
            Some("pem") => ("PEM file (certificate or private key)", Medium),
            Some("tfvars") => ("Terraform variables", Medium),
            Some("ovpn") => ("VPN profile", Medium),
            Some("asc" | "gpg") if n.contains("secret") || n.contains("private") => {
                ("PGP private key", High)
            }
            Some("json") if n.contains("service-account") || n.contains("serviceaccount") => {
                ("cloud service account key", High)
            }
            _ => return None,
        },
    };
    Some(hit)
}

/// Walk `root` once and report likely secrets, except those `allowlist` (globs relative to the
/// root) accepts.
pub fn scan(root: &Path, allowlist: &[String]) -> Result<ScanReport, ScanError> {
    let allow = allow_set(allowlist)?;
    let files = AtomicUsize::new(0);
    let found: Mutex<Vec<Hit>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(false)
        .threads(threads)
        .filter_entry(|entry| {
            !(entry.depth() > 0
                && entry.file_type().is_some_and(|t| t.is_dir())
                && entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| SKIPPED_DIRS.contains(&n)))
        })
        .build_parallel()
        .run(|| {
            let mut collector = Collector {
                files: &files,
                found: &found,
                count: 0,
                local: Vec::new(),
            };
            Box::new(move |entry| {
                if let Ok(entry) = entry
                    && entry.file_type().is_some_and(|t| !t.is_dir())
                {
                    collector.count += 1;
                    let path = entry.path();
                    if let Some(name) = entry.file_name().to_str() {
                        let parent = path
                            .parent()
                            .and_then(Path::file_name)
                            .and_then(|p| p.to_str());
                        if let Some((kind, severity)) = classify(name, parent) {
                            collector.local.push((path.to_path_buf(), kind, severity));
                        }
                    }
                }
                WalkState::Continue
            })
        });
    let mut report = ScanReport::default();
    let found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    report.files = files.into_inner();
    let mut ignores = GitignoreCache::default();
    for (path, kind, severity) in found {
        let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        if allow.is_match(&relative) {
            report.allowed += 1;
            continue;
        }
        let git_ignored = ignores.is_ignored(root, &path);
        report.findings.push(Finding {
            path: relative,
            kind,
            severity,
            git_ignored,
        });
    }
    report.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
    });
    Ok(report)
}

type Hit = (PathBuf, &'static str, Severity);

/// One walker thread's tally, added to the shared one when the thread is done.
struct Collector<'a> {
    files: &'a AtomicUsize,
    found: &'a Mutex<Vec<Hit>>,
    count: usize,
    local: Vec<Hit>,
}

impl Drop for Collector<'_> {
    fn drop(&mut self) {
        self.files.fetch_add(self.count, Ordering::Relaxed);
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.append(&mut self.local);
    }
}

fn allow_set(allowlist: &[String]) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in allowlist {
        builder.add(GlobBuilder::new(pattern).literal_separator(false).build()?);
    }
    builder.build()
}

/// `.gitignore` files along a path, parsed once each. Deeper files win, as in git.
#[derive(Default)]
struct GitignoreCache {
    by_dir: HashMap<PathBuf, Option<Gitignore>>,
}

impl GitignoreCache {
    fn is_ignored(&mut self, root: &Path, path: &Path) -> bool {
        let mut dirs: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .take_while(|d| d.starts_with(root))
            .collect();
        dirs.reverse();
        let mut ignored = false;
        for dir in dirs {
            let matcher = self.by_dir.entry(dir.to_path_buf()).or_insert_with(|| {
                let mut files = vec![dir.join(".gitignore")];
                if dir == root {
                    files.push(root.join(".git/info/exclude"));
                }
                let mut builder = ignore::gitignore::GitignoreBuilder::new(dir);
                let mut any = false;
                // Read like every project file (fsread): regular files only, no link followed,
                // under a cap, so a FIFO or a huge file cannot stall the scan. An unreadable
                // file only loses its marks.
                let project = crate::fsread::ProjectDir::open(root).ok();
                for file in &files {
                    let Some(rel) = file.strip_prefix(root).ok() else {
                        continue;
                    };
                    let Some(Ok(Some(bytes))) = project
                        .as_ref()
                        .map(|p| p.read_file(rel, crate::fsread::CONFIG_CAP, "an ignore file"))
                    else {
                        continue;
                    };
                    any = true;
                    for line in String::from_utf8_lossy(&bytes).lines() {
                        // A malformed line is skipped by git too.
                        let _ = builder.add_line(Some(file.clone()), line);
                    }
                }
                any.then(|| builder.build().ok()).flatten()
            });
            if let Some(matcher) = matcher {
                let m = matcher.matched_path_or_any_parents(path, false);
                if m.is_ignore() {
                    ignored = true;
                } else if m.is_whitelist() {
                    ignored = false;
                }
            }
        }
        ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified() {
        assert_eq!(
            classify("id_ed25519", None).map(|c| c.1),
            Some(Severity::High)
        );
        assert_eq!(classify("id_ed25519.pub", None), None);
        assert_eq!(classify(".env", None).map(|c| c.1), Some(Severity::High));
        assert_eq!(
            classify(".env.production", None).map(|c| c.1),
            Some(Severity::High)
        );
        assert_eq!(classify(".env.example", None), None);
        assert_eq!(
            classify("credentials", Some(".aws")).map(|c| c.0),
            Some("AWS credentials")
        );
        assert_eq!(
            classify("server.pem", None).map(|c| c.1),
            Some(Severity::Medium)
        );
        assert_eq!(
            classify("terraform.tfstate", None).map(|c| c.1),
            Some(Severity::High)
        );
        assert_eq!(
            classify("release.keystore", None).map(|c| c.1),
            Some(Severity::High)
        );
        assert_eq!(classify("main.rs", None), None);
        assert_eq!(classify("keyboard.rs", None), None);
    }

    #[test]
    fn scan_finds_marks_skips_and_allows() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in [
            (".gitignore", ".env\nsecret/\n"),
            (".env", "A=1"),
            ("deploy/prod.key", "k"),
            ("secret/id_rsa", "k"),
            ("node_modules/pkg/.env", "x"),
            ("target/debug/x.pem", "x"),
            ("config/dev.env.local", "x"),
            (".env.example", "x"),
            ("src/main.rs", "fn main() {}"),
            ("certs/ca.pem", "x"),
        ] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let report = scan(root, &["certs/*.pem".to_owned()]).unwrap();
        let got: Vec<(String, Severity, bool)> = report
            .findings
            .iter()
            .map(|f| (f.path.display().to_string(), f.severity, f.git_ignored))
            .collect();
        assert_eq!(
            got,
            vec![
                (".env".to_owned(), Severity::High, true),
                ("deploy/prod.key".to_owned(), Severity::High, false),
                ("secret/id_rsa".to_owned(), Severity::High, true),
            ]
        );
        assert_eq!(report.allowed, 1);
        assert_eq!(report.files, 8, "skipped directories are not walked");
    }
}
