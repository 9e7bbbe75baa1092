//! The project a sandbox is for: the git work tree containing the current directory, else the
//! current directory itself. Like git's `safe.directory`, discovery never adopts what another
//! user owns: the walk up stops at the first directory not owned by the user, and a `.git` owned
//! by someone else does not make its directory the project.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::hash::sha256_hex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Canonical absolute path of the project root (mounted at the same path in the sandbox).
    pub root: PathBuf,
    /// Canonical absolute current directory (the sandbox's working directory); inside `root`.
    pub cwd: PathBuf,
    /// Whether `root` is a git work tree (a `.git` directory or file was found).
    pub is_git: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot resolve the current directory {path}: {source}")]
    Cwd {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "refusing to launch: the project configuration {path} is owned by uid {owner}, not by you \
         (uid {uid}); stockade reads project configuration only from directories you own, as git's \
         safe.directory does"
    )]
    ForeignConfig { path: PathBuf, owner: u32, uid: u32 },
}

impl ProjectError {
    /// How to fix it.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            Self::Cwd { .. } => None,
            Self::ForeignConfig { .. } => Some(
                "work in a copy of the project that you own, or ask the directory's owner to remove it",
            ),
        }
    }
}

impl Project {
    /// Discover the project for `cwd`: walk up to the nearest directory holding `.git` (a
    /// directory, or a file as in worktrees and submodules); without one, `cwd` is the project.
    pub fn discover(cwd: &Path) -> Result<Self, ProjectError> {
        Ok(Self::discover_as(cwd, nix::unistd::geteuid().as_raw())?.0)
    }

    /// [`Project::discover`] for the user `uid`, with a note for each directory above that was
    /// not adopted because another user owns it (for a warning).
    pub fn discover_as(cwd: &Path, uid: u32) -> Result<(Self, Vec<String>), ProjectError> {
        let cwd = cwd.canonicalize().map_err(|source| ProjectError::Cwd {
            path: cwd.to_path_buf(),
            source,
        })?;
        let owner = |path: &Path| std::fs::symlink_metadata(path).ok().map(|m| m.uid());
        let mut notes = Vec::new();
        let mut git_root = None;
        for dir in cwd.ancestors() {
            let dot_git = dir.join(".git");
            let git_owner = owner(&dot_git);
            let dir_owner = owner(dir);
            if dir_owner != Some(uid) && dir != cwd.as_path() {
                let marker = [".git", ".stockade"]
                    .into_iter()
                    .find(|m| owner(&dir.join(m)).is_some());
                if let Some(marker) = marker {
                    notes.push(format!(
                        "{} was not adopted as the project: {} is owned by uid {}, not by you \
                         (uid {uid}); stockade, like git's safe.directory, stops at directories \
                         of other users. The project is {}",
                        dir.join(marker).display(),
                        dir.display(),
                        dir_owner.map_or_else(|| "?".to_owned(), |o| o.to_string()),
                        cwd.display()
                    ));
                }
                break;
            }
            match git_owner {
                Some(o) if o == uid => {
                    git_root = Some(dir.to_path_buf());
                    break;
                }
                Some(o) => {
                    notes.push(format!(
                        "{} was not adopted as the project: it is owned by uid {o}, not by you \
                         (uid {uid}); stockade, like git's safe.directory, does not use other users' \
                         repositories. The project is {}",
                        dot_git.display(),
                        cwd.display()
                    ));
                    break;
                }
                None if dir_owner != Some(uid) => break,
                None => {}
            }
        }
        let project = match git_root {
            Some(root) => Self {
                root,
                cwd,
                is_git: true,
            },
            None => Self {
                root: cwd.clone(),
                cwd,
                is_git: false,
            },
        };
        let config_dir = project.root.join(".stockade");
        if let Some(o) = owner(&config_dir).filter(|o| *o != uid) {
            return Err(ProjectError::ForeignConfig {
                path: config_dir,
                owner: o,
                uid,
            });
        }
        Ok((project, notes))
    }

    /// The project's configuration file, `.stockade/config.toml` at the root.
    pub fn config_file(&self) -> PathBuf {
        self.root.join(".stockade").join("config.toml")
    }

    /// 12 hex characters identifying the project by its canonical path.
    pub fn id(&self) -> String {
        sha256_hex(self.root.as_os_str().as_encoded_bytes())[..12].to_owned()
    }

    /// The root's last path component, for container names.
    pub fn name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_directory_is_its_own_project() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(project.root, dir.path().canonicalize().unwrap());
        assert_eq!(project.cwd, project.root);
        assert!(!project.is_git);
    }

    #[test]
    fn git_root_above_cwd_is_the_project() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let sub = dir.path().join("src/deep");
        std::fs::create_dir_all(&sub).unwrap();
        let project = Project::discover(&sub).unwrap();
        assert_eq!(project.root, dir.path().canonicalize().unwrap());
        assert_eq!(project.cwd, sub.canonicalize().unwrap());
        assert!(project.is_git);
        assert_eq!(project.id().len(), 12);
    }

    #[test]
    fn other_users_repositories_above_are_not_adopted() {
        if !nix::unistd::geteuid().is_root() {
            return; // needs chown
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let me = 4242;
        let sub = root.join("shared/mine/deep");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir(root.join("shared/.git")).unwrap();
        for path in [root.join("shared/mine"), sub.clone()] {
            std::os::unix::fs::chown(&path, Some(me), Some(me)).unwrap();
        }
        // `shared` (with its `.git`) belongs to root: the walk stops below it.
        let (project, notes) = Project::discover_as(&sub, me).unwrap();
        assert_eq!(project.root, sub);
        assert!(!project.is_git);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("shared/.git was not adopted"),
            "{notes:?}"
        );

        // A `.git` of another user inside a directory of mine is not adopted either.
        std::fs::create_dir(root.join("shared/mine/.git")).unwrap();
        let (project, notes) = Project::discover_as(&sub, me).unwrap();
        assert_eq!(project.root, sub);
        assert!(notes[0].contains("mine/.git was not adopted"), "{notes:?}");
        std::os::unix::fs::chown(root.join("shared/mine/.git"), Some(me), Some(me)).unwrap();
        let (project, notes) = Project::discover_as(&sub, me).unwrap();
        assert_eq!(project.root, root.join("shared/mine"));
        assert!(notes.is_empty());

        // Another user's `.stockade` in the project is refused.
        std::fs::create_dir(root.join("shared/mine/.stockade")).unwrap();
        let error = Project::discover_as(&sub, me).unwrap_err().to_string();
        assert!(error.contains("owned by uid 0"), "{error}");
    }

    #[test]
    fn worktree_git_file_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".git"), "gitdir: /elsewhere\n").unwrap();
        let project = Project::discover(dir.path()).unwrap();
        assert!(project.is_git);
    }
}
