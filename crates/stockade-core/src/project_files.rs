//! The *read* step of a launch: every file of the project that stockade uses is read once, here,
//! through [`crate::fsread`], and its bytes are kept. Parsing (`config.toml`), the approval
//! fingerprint ([`crate::trust::fingerprint`]) and the build (the `.stockade/` context tar) all
//! use these bytes; nothing later opens the files again, so what was checked is what is used.

use std::path::{Path, PathBuf};

use crate::chain::dockerignore::{DockerIgnore, InvalidPattern};
use crate::chain::{DOCKERFILE, GLOBAL_CONTEXT_EXCLUDED};
use crate::context::{BuildContext, ContextFile};
use crate::fsread::{self, ProjectDir, ReadError, TreeEntry, Visit};
use crate::hash::ContentHasher;

/// The project's configuration file, relative to the root.
pub const CONFIG_FILE: &str = ".stockade/config.toml";
/// The project's build context directory, relative to the root.
pub const CONTEXT_DIR: &str = ".stockade";

/// Why the project's files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectFilesError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{} is not valid UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error("{} {source}", path.display())]
    Ignore {
        path: PathBuf,
        source: InvalidPattern,
    },
}

impl ProjectFilesError {
    pub fn help(&self) -> &'static str {
        match self {
            Self::Read(e) => e.help(),
            Self::NotText { .. } => "save the file as UTF-8",
            Self::Ignore { .. } => "fix the pattern in .stockade/.dockerignore",
        }
    }
}

/// The project's files as read for this launch.
#[derive(Debug)]
pub struct ProjectFiles {
    /// The project root, open: later checks (mount sources) resolve from the same directory.
    pub dir: ProjectDir,
    /// `.stockade/config.toml`, when present.
    pub config: Option<String>,
    /// `.stockade/` as a build context, when it holds a Dockerfile.
    pub context: Option<ReadContext>,
}

/// A file the configuration refers to, as read for this launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referenced {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// A build context read into memory: what is hashed is what is sent.
#[derive(Debug, Clone)]
pub struct ReadContext {
    /// The directory it was read from (for messages).
    pub dir: PathBuf,
    /// The Dockerfile's name in the context (`Dockerfile` for `.stockade/`).
    pub dockerfile_name: String,
    pub build: BuildContext,
    /// The content hash of `build` (paths, kinds, modes, bytes).
    pub hash: String,
}

impl ReadContext {
    /// The Dockerfile's text, as read.
    pub fn dockerfile(&self) -> String {
        String::from_utf8_lossy(self.build.file(&self.dockerfile_name).unwrap_or_default())
            .into_owned()
    }
}

impl ProjectFiles {
    /// Read the project's configuration file and, when `.stockade/Dockerfile` exists, the whole
    /// `.stockade/` build context.
    pub fn read(root: &Path) -> Result<Self, ProjectFilesError> {
        let dir = ProjectDir::open(root)?;
        let config = match dir.read_file(
            Path::new(CONFIG_FILE),
            fsread::CONFIG_CAP,
            "a configuration file",
        )? {
            Some(bytes) => {
                Some(
                    String::from_utf8(bytes).map_err(|_| ProjectFilesError::NotText {
                        path: root.join(CONFIG_FILE),
                    })?,
                )
            }
            None => None,
        };
        let context = read_context(&dir, Path::new(CONTEXT_DIR), DOCKERFILE)?;
        Ok(Self {
            dir,
            config,
            context,
        })
    }

    /// Read the files the configuration refers to (CA files, …): inside the project through
    /// [`ProjectDir`] (no link followed, so an approved file replaced by a link to
    /// `~/.ssh/id_rsa` is refused), outside it as the user's own files. Regular files only,
    /// each under [`fsread::FILE_CAP`]; a missing file is an error.
    pub fn read_referenced(
        &self,
        paths: &[PathBuf],
        what: &'static str,
    ) -> Result<Vec<Referenced>, ProjectFilesError> {
        paths
            .iter()
            .map(|path| {
                let bytes = match self.dir.relative(path).filter(|_| path.is_absolute()) {
                    Some(rel) => self.dir.read_file(rel, fsread::FILE_CAP, what)?,
                    None => fsread::read_outside(path, fsread::FILE_CAP, what)?,
                };
                let bytes = bytes.ok_or_else(|| ReadError::Io {
                    path: path.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })?;
                Ok(Referenced {
                    path: path.clone(),
                    bytes,
                })
            })
            .collect()
    }

    /// The project file's path (for messages and the configuration loader).
    pub fn config_path(&self) -> PathBuf {
        self.dir.root().join(CONFIG_FILE)
    }
}

/// Read the build context in `rel` (relative to the project root) when it holds the Dockerfile
/// `dockerfile`: `.dockerignore` applied, stockade's own `config.toml` left out, links kept as
/// links.
pub fn read_context(
    dir: &ProjectDir,
    rel: &Path,
    dockerfile: &str,
) -> Result<Option<ReadContext>, ProjectFilesError> {
    let full = dir.root().join(rel);
    let ignore_rel = rel.join(".dockerignore");
    let ignore_bytes = dir.read_file(&ignore_rel, fsread::FILE_CAP, "a .dockerignore file")?;
    let mut ignore = match &ignore_bytes {
        Some(bytes) => DockerIgnore::parse(&String::from_utf8_lossy(bytes)).map_err(|source| {
            ProjectFilesError::Ignore {
                path: full.join(".dockerignore"),
                source,
            }
        })?,
        None => DockerIgnore::default(),
    };
    ignore.keep(dockerfile);
    let visit = |path: &str, is_dir: bool| {
        // The .dockerignore sent is the one whose rules were applied (read above).
        if path == ".dockerignore" || GLOBAL_CONTEXT_EXCLUDED.contains(&path) {
            return Visit::Skip;
        }
        if !ignore.is_excluded(path) {
            Visit::Keep
        } else if is_dir && ignore.has_exceptions() {
            Visit::SkipButDescend
        } else {
            Visit::Skip
        }
    };
    let Some(tree) = dir.read_tree(rel, fsread::CONTEXT_CAP, "a build context", &visit)? else {
        return Ok(None);
    };
    let mut files = Vec::with_capacity(tree.len() + 1);
    let mut has_dockerfile = false;
    for entry in tree {
        match entry {
            TreeEntry::File { path, mode, bytes } => {
                has_dockerfile |= path == dockerfile;
                files.push(ContextFile::new(path, bytes, mode));
            }
            TreeEntry::Dir { path, mode } => {
                let mut d = ContextFile::dir(path);
                d.mode = mode;
                files.push(d);
            }
            TreeEntry::Symlink { path, target } => {
                if path == dockerfile {
                    return Err(ReadError::Symlink {
                        path: full.join(dockerfile),
                        target: Some(target.into()),
                    }
                    .into());
                }
                use std::os::unix::ffi::OsStringExt;
                files.push(ContextFile::symlink(path, target.into_vec()));
            }
        }
    }
    if !has_dockerfile {
        return Ok(None);
    }
    if let Some(bytes) = ignore_bytes
        && !ignore.is_excluded(".dockerignore")
    {
        files.push(ContextFile::new(".dockerignore", bytes, 0o644));
    }
    let build = BuildContext::new(files);
    let mut hasher = ContentHasher::new("stockade-read-context-v1");
    build.hash_into(&mut hasher);
    Ok(Some(ReadContext {
        dir: full,
        dockerfile_name: dockerfile.to_owned(),
        build,
        hash: hasher.finish(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_context_is_read_with_its_rules_and_hashed_from_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".stockade/config.toml", "[sandbox]\n");
        write(root, ".stockade/Dockerfile", "FROM x\nCOPY setup.sh /\n");
        write(root, ".stockade/setup.sh", "echo a\n");
        write(root, ".stockade/big/blob", "left out\n");
        write(root, ".stockade/.dockerignore", "big\n");
        let files = ProjectFiles::read(root).unwrap();
        assert_eq!(files.config.as_deref(), Some("[sandbox]\n"));
        let context = files.context.unwrap();
        let paths: Vec<&str> = context
            .build
            .files()
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, [".dockerignore", "Dockerfile", "setup.sh"]);
        assert!(context.dockerfile().starts_with("FROM x"));
        // A COPY'd file changes the hash.
        write(root, ".stockade/setup.sh", "echo b\n");
        let again = ProjectFiles::read(root).unwrap().context.unwrap();
        assert_ne!(again.hash, context.hash);
    }

    #[test]
    fn without_a_dockerfile_there_is_no_context() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), ".stockade/setup.sh", "echo a\n");
        let files = ProjectFiles::read(dir.path()).unwrap();
        assert!(files.config.is_none() && files.context.is_none());
        let empty = tempfile::tempdir().unwrap();
        assert!(ProjectFiles::read(empty.path()).unwrap().context.is_none());
    }

    #[test]
    fn a_linked_stockade_dir_or_dockerfile_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        write(elsewhere.path(), "Dockerfile", "FROM x\n");
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(".stockade")).unwrap();
        assert!(matches!(
            ProjectFiles::read(dir.path()),
            Err(ProjectFilesError::Read(ReadError::Symlink { .. }))
        ));
        std::fs::remove_file(dir.path().join(".stockade")).unwrap();
        std::fs::create_dir(dir.path().join(".stockade")).unwrap();
        std::os::unix::fs::symlink(
            elsewhere.path().join("Dockerfile"),
            dir.path().join(".stockade/Dockerfile"),
        )
        .unwrap();
        assert!(matches!(
            ProjectFiles::read(dir.path()),
            Err(ProjectFilesError::Read(ReadError::Symlink { .. }))
        ));
    }
}
