//! The project a sandbox is for: the git work tree containing the current directory, else the
//! current directory itself.

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
}

impl Project {
    /// Discover the project for `cwd`: walk up to the nearest directory holding `.git` (a
    /// directory, or a file as in worktrees and submodules); without one, `cwd` is the project.
    pub fn discover(cwd: &Path) -> Result<Self, ProjectError> {
        let cwd = cwd.canonicalize().map_err(|source| ProjectError::Cwd {
            path: cwd.to_path_buf(),
            source,
        })?;
        let git_root = cwd
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .map(Path::to_path_buf);
        Ok(match git_root {
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
        })
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
    fn worktree_git_file_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".git"), "gitdir: /elsewhere\n").unwrap();
        let project = Project::discover(dir.path()).unwrap();
        assert!(project.is_git);
    }
}
