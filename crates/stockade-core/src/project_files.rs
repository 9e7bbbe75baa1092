//! The *read* step of a launch: every file of the project that stockade uses is read once, here,
//! through [`crate::fsread`], and its bytes are kept. Parsing (`config.toml`), the approval
//! fingerprint ([`crate::trust::fingerprint`]) and the build (the `.stockade/` context tar) all
//! use these bytes; nothing later opens the files again, so what was checked is what is used.

use std::path::{Path, PathBuf};

use crate::chain::dockerignore::{DockerIgnore, InvalidPattern};
use crate::chain::{DOCKERFILE, PROJECT_CONTEXT_EXCLUDED};
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
    #[error(
        "{} changed during the launch (it no longer matches what was checked and approved)",
        path.display()
    )]
    Changed { path: PathBuf },
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
            Self::Changed { .. } => "run the command again once nothing is writing to it",
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

/// A build context in the project, hashed from its bytes. The bytes are kept when they were
/// read for this launch; when the content-hash cache vouched for an untouched context instead
/// (every entry's size, mtime and ctime as when it was hashed, none changed in the last 2 s),
/// they are read at build time by [`ReadContext::load`], which refuses bytes that do not hash
/// to [`ReadContext::hash`]: what is sent is always what was fingerprinted and approved.
#[derive(Debug, Clone)]
pub struct ReadContext {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// The project root and the directory relative to it.
    root: PathBuf,
    rel: PathBuf,
    /// The Dockerfile's name in the context (`Dockerfile` for `.stockade/`).
    pub dockerfile_name: String,
    /// The Dockerfile's bytes (to tell which image it builds on).
    dockerfile: Vec<u8>,
    /// The whole context, when it was read in this launch.
    build: Option<BuildContext>,
    /// The content hash of the context (paths, kinds, modes, bytes).
    pub hash: String,
}

impl ReadContext {
    /// The Dockerfile's text, as read.
    pub fn dockerfile(&self) -> String {
        String::from_utf8_lossy(&self.dockerfile).into_owned()
    }

    /// The context's bytes to send: those read for this launch, or read now and checked
    /// against the hash that was fingerprinted.
    pub fn load(&self) -> Result<BuildContext, ProjectFilesError> {
        if let Some(build) = &self.build {
            return Ok(build.clone());
        }
        let dir = ProjectDir::open(&self.root)?;
        let fresh = read_full(&dir, &self.rel, &self.dockerfile_name)?;
        match fresh {
            Some((build, hash, _)) if hash == self.hash => Ok(build),
            _ => Err(ProjectFilesError::Changed {
                path: self.dir.clone(),
            }),
        }
    }
}

impl ProjectFiles {
    /// Read the project's configuration file and, when `.stockade/Dockerfile` exists, the whole
    /// `.stockade/` build context.
    /// `cache` is stockade's cache directory: an untouched `.stockade/` context is then
    /// confirmed from its stats alone (see [`ReadContext`]); `None` reads it in full.
    pub fn read(root: &Path, cache: Option<&Path>) -> Result<Self, ProjectFilesError> {
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
        let context = read_context(&dir, Path::new(CONTEXT_DIR), DOCKERFILE, cache)?;
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

/// The build context in `rel` (relative to the project root) when it holds the Dockerfile
/// `dockerfile`: `.dockerignore` applied, stockade's own `config.toml` left out, links kept as
/// links. With `cache`, an untouched context is confirmed by one stat walk and not read.
pub fn read_context(
    dir: &ProjectDir,
    rel: &Path,
    dockerfile: &str,
    cache: Option<&Path>,
) -> Result<Option<ReadContext>, ProjectFilesError> {
    let full = dir.root().join(rel);
    let context = |build: Option<BuildContext>, bytes: Vec<u8>, hash: String| {
        Some(ReadContext {
            dir: full.clone(),
            root: dir.root().to_path_buf(),
            rel: rel.to_path_buf(),
            dockerfile_name: dockerfile.to_owned(),
            dockerfile: bytes,
            build,
            hash,
        })
    };
    let cache_file = cache.map(|c| crate::chain::context_cache_file(c, &full));
    if let Some(cache_file) = &cache_file {
        let (ignore_bytes, ignore) = read_ignore(dir, rel, dockerfile)?;
        let visit = visitor(&ignore);
        let Some(tree) = dir.stat_tree(rel, fsread::CONTEXT_CAP, "a build context", &visit)? else {
            return Ok(None);
        };
        check_dockerfile(&tree, &full, dockerfile)?;
        let (stamp, racy) = stamp_of(&tree, ignore_bytes.as_deref(), now_ns());
        if !racy && let Some(hash) = cached_hash(cache_file, &stamp) {
            let Some(bytes) =
                dir.read_file(&rel.join(dockerfile), fsread::FILE_CAP, "a Dockerfile")?
            else {
                return Ok(None);
            };
            return Ok(context(None, bytes, hash));
        }
    }
    let Some((build, hash, stamp)) = read_full(dir, rel, dockerfile)? else {
        return Ok(None);
    };
    if let (Some(cache_file), Some(stamp)) = (&cache_file, stamp) {
        // The cache only saves time: failing to write it is not an error.
        let _ = write_cache(cache_file, &stamp, &hash);
    }
    let bytes = build.file(dockerfile).unwrap_or_default().to_vec();
    Ok(context(Some(build), bytes, hash))
}

/// Version of the cache format for project contexts.
const CACHE_VERSION: &str = "stockade-read-context-v1";
/// Entries changed this recently are never vouched for by their stats.
const RACY_WINDOW_NS: i128 = 2_000_000_000;

/// The `.dockerignore` (its bytes and rules; the Dockerfile always kept).
fn read_ignore(
    dir: &ProjectDir,
    rel: &Path,
    dockerfile: &str,
) -> Result<(Option<Vec<u8>>, DockerIgnore), ProjectFilesError> {
    let full = dir.root().join(rel);
    let bytes = dir.read_file(
        &rel.join(".dockerignore"),
        fsread::FILE_CAP,
        "a .dockerignore file",
    )?;
    let mut ignore = match &bytes {
        Some(bytes) => DockerIgnore::parse(&String::from_utf8_lossy(bytes)).map_err(|source| {
            ProjectFilesError::Ignore {
                path: full.join(".dockerignore"),
                source,
            }
        })?,
        None => DockerIgnore::default(),
    };
    ignore.keep(dockerfile);
    Ok((bytes, ignore))
}

fn visitor(ignore: &DockerIgnore) -> impl Fn(&str, bool) -> Visit + Sync + '_ {
    move |path: &str, is_dir: bool| {
        // The .dockerignore sent is the one whose rules were applied (read on its own).
        if path == ".dockerignore" || PROJECT_CONTEXT_EXCLUDED.contains(&path) {
            return Visit::Skip;
        }
        if !ignore.is_excluded(path) {
            Visit::Keep
        } else if is_dir && ignore.has_exceptions() {
            Visit::SkipButDescend
        } else {
            Visit::Skip
        }
    }
}

/// `Ok(false)`: no Dockerfile; a link as the Dockerfile is refused.
fn check_dockerfile(
    tree: &[TreeEntry],
    full: &Path,
    dockerfile: &str,
) -> Result<bool, ProjectFilesError> {
    for entry in tree {
        match entry {
            TreeEntry::File { path, .. } if path == dockerfile => return Ok(true),
            TreeEntry::Symlink { path, target } if path == dockerfile => {
                return Err(ReadError::Symlink {
                    path: full.join(dockerfile),
                    target: Some(target.into()),
                }
                .into());
            }
            _ => {}
        }
    }
    Ok(false)
}

/// The stat fingerprint of a tree (and whether any entry changed within the racy window).
fn stamp_of(tree: &[TreeEntry], ignore: Option<&[u8]>, now: i128) -> (String, bool) {
    let mut hasher = ContentHasher::new(CACHE_VERSION);
    hasher.part(ignore.unwrap_or(b"\0none"));
    let mut racy = false;
    for entry in tree {
        match entry {
            TreeEntry::File {
                path, mode, stamp, ..
            } => {
                racy |= now - stamp.mtime_ns.max(stamp.ctime_ns) < RACY_WINDOW_NS;
                hasher
                    .part(b"f")
                    .part(path.as_bytes())
                    .part(&mode.to_le_bytes())
                    .part(&stamp.size.to_le_bytes())
                    .part(&stamp.mtime_ns.to_le_bytes())
                    .part(&stamp.ctime_ns.to_le_bytes());
            }
            TreeEntry::Dir { path, mode } => {
                hasher
                    .part(b"d")
                    .part(path.as_bytes())
                    .part(&mode.to_le_bytes());
            }
            TreeEntry::Symlink { path, target } => {
                hasher
                    .part(b"l")
                    .part(path.as_bytes())
                    .part(target.as_encoded_bytes());
            }
        }
    }
    (hasher.finish(), racy)
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

fn cached_hash(cache_file: &Path, stamp: &str) -> Option<String> {
    let text = std::fs::read_to_string(cache_file).ok()?;
    let mut parts = text.split_whitespace();
    (parts.next()? == CACHE_VERSION && parts.next()? == stamp)
        .then(|| parts.next().map(str::to_owned))?
}

fn write_cache(cache_file: &Path, stamp: &str, hash: &str) -> std::io::Result<()> {
    if let Some(parent) = cache_file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let scratch = cache_file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&scratch, format!("{CACHE_VERSION} {stamp} {hash}\n"))?;
    std::fs::rename(&scratch, cache_file)
}

/// Read the context in full: its files, their hash, and the stat fingerprint of what was read
/// (`None` when an entry changed within the racy window: not to be cached).
fn read_full(
    dir: &ProjectDir,
    rel: &Path,
    dockerfile: &str,
) -> Result<Option<(BuildContext, String, Option<String>)>, ProjectFilesError> {
    let full = dir.root().join(rel);
    let (ignore_bytes, ignore) = read_ignore(dir, rel, dockerfile)?;
    let visit = visitor(&ignore);
    let Some(tree) = dir.read_tree(rel, fsread::CONTEXT_CAP, "a build context", &visit)? else {
        return Ok(None);
    };
    if !check_dockerfile(&tree, &full, dockerfile)? {
        return Ok(None);
    }
    let (stamp, racy) = stamp_of(&tree, ignore_bytes.as_deref(), now_ns());
    let mut files = Vec::with_capacity(tree.len() + 1);
    for entry in tree {
        match entry {
            TreeEntry::File {
                path, mode, bytes, ..
            } => files.push(ContextFile::new(path, bytes, mode)),
            TreeEntry::Dir { path, mode } => {
                let mut d = ContextFile::dir(path);
                d.mode = mode;
                files.push(d);
            }
            TreeEntry::Symlink { path, target } => {
                use std::os::unix::ffi::OsStringExt;
                files.push(ContextFile::symlink(path, target.into_vec()));
            }
        }
    }
    if let Some(bytes) = ignore_bytes
        && !ignore.is_excluded(".dockerignore")
    {
        files.push(ContextFile::new(".dockerignore", bytes, 0o644));
    }
    let build = BuildContext::new(files);
    let mut hasher = ContentHasher::new("stockade-read-context-v1");
    build.hash_into(&mut hasher);
    Ok(Some((build, hasher.finish(), (!racy).then_some(stamp))))
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
        let files = ProjectFiles::read(root, None).unwrap();
        assert_eq!(files.config.as_deref(), Some("[sandbox]\n"));
        let context = files.context.unwrap();
        let build = context.load().unwrap();
        let paths: Vec<&str> = build.files().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [".dockerignore", "Dockerfile", "setup.sh"]);
        assert!(context.dockerfile().starts_with("FROM x"));
        // A COPY'd file changes the hash.
        write(root, ".stockade/setup.sh", "echo b\n");
        let again = ProjectFiles::read(root, None).unwrap().context.unwrap();
        assert_ne!(again.hash, context.hash);
    }

    /// Make every file of `dir` look older than the racy window.
    fn age(dir: &Path) {
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for entry in std::fs::read_dir(dir).unwrap() {
            let f = std::fs::File::options()
                .write(true)
                .open(entry.unwrap().path())
                .unwrap();
            f.set_modified(old).unwrap();
        }
    }

    #[test]
    fn the_cache_vouches_only_for_untouched_contexts_and_load_checks_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".stockade/Dockerfile", "FROM x\nCOPY setup.sh /\n");
        write(root, ".stockade/setup.sh", "echo a\n");
        age(&root.join(".stockade"));
        // ctime is now (it cannot be set back): the first reads are racy and read in full.
        let first = ProjectFiles::read(root, Some(cache.path()))
            .unwrap()
            .context
            .unwrap();
        assert!(first.build.is_some());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let second = ProjectFiles::read(root, Some(cache.path()))
            .unwrap()
            .context
            .unwrap();
        assert_eq!(second.hash, first.hash);
        let third = ProjectFiles::read(root, Some(cache.path()))
            .unwrap()
            .context
            .unwrap();
        assert!(
            third.build.is_none(),
            "an untouched context is not read again"
        );
        assert_eq!(third.hash, first.hash);
        assert_eq!(third.dockerfile(), "FROM x\nCOPY setup.sh /\n");
        // Bytes that no longer match the hash are refused at build time.
        write(root, ".stockade/setup.sh", "echo b\n");
        assert!(matches!(
            third.load(),
            Err(ProjectFilesError::Changed { .. })
        ));
        // And the edit (new ctime) is seen by the next read, cache or not.
        let fourth = ProjectFiles::read(root, Some(cache.path()))
            .unwrap()
            .context
            .unwrap();
        assert_ne!(fourth.hash, first.hash);
        assert!(fourth.build.is_some());
    }

    #[test]
    fn without_a_dockerfile_there_is_no_context() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), ".stockade/setup.sh", "echo a\n");
        let files = ProjectFiles::read(dir.path(), None).unwrap();
        assert!(files.config.is_none() && files.context.is_none());
        let empty = tempfile::tempdir().unwrap();
        assert!(
            ProjectFiles::read(empty.path(), None)
                .unwrap()
                .context
                .is_none()
        );
    }

    #[test]
    fn a_linked_stockade_dir_or_dockerfile_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        write(elsewhere.path(), "Dockerfile", "FROM x\n");
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(".stockade")).unwrap();
        assert!(matches!(
            ProjectFiles::read(dir.path(), None),
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
            ProjectFiles::read(dir.path(), None),
            Err(ProjectFilesError::Read(ReadError::Symlink { .. }))
        ));
    }
}
