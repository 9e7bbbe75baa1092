//! Safe reads of files the project controls. The project tree is hostile input (the agent writes
//! it, a clone brings it), so every read of one of its files goes through here:
//!
//! - paths are resolved component by component from the project root with `openat(2)` and
//!   `O_NOFOLLOW`, so no symbolic link anywhere on the way is followed: `.stockade` as a link to
//!   `~/.config/stockade`, or `config.toml -> /dev/zero`, is refused with an explanation;
//! - only regular files are read: the type is checked before the open and again with `fstat(2)`
//!   on the opened descriptor, and the open carries `O_NONBLOCK`, so a FIFO cannot block it;
//! - every read has a size cap, enforced on the bytes actually read (a file growing after the
//!   `fstat` still stops at the cap), with an error that names the file, the cap and the fix.
//!
//! Files outside the project (named by the user's own configuration) may be reached through the
//! user's own links, but are still read only when regular and under the cap.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

/// The cap for a configuration file (`.stockade/config.toml`, the global `config.toml`).
pub const CONFIG_CAP: u64 = 1 << 20;
/// The cap for a single file that configuration refers to (a CA bundle, a Dockerfile).
pub const FILE_CAP: u64 = 8 << 20;
/// The cap for a whole build context read from the project (`.stockade/`).
pub const CONTEXT_CAP: u64 = 256 << 20;

/// Why a project file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "{} is a symbolic link{}: stockade does not follow links in the project, so that a \
         project file cannot make it read or send a file from elsewhere on the host",
        path.display(),
        target.as_ref().map(|t| format!(" (to {})", t.display())).unwrap_or_default()
    )]
    Symlink {
        path: PathBuf,
        target: Option<PathBuf>,
    },
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{} is larger than the {} stockade reads for {what} ({} bytes or more)",
        path.display(),
        human(*cap),
        size
    )]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        size: u64,
        cap: u64,
    },
    #[error("{} leads outside the project {}", path.display(), root.display())]
    Outside { path: PathBuf, root: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ReadError {
    /// How to fix it, for the CLI's help line.
    pub fn help(&self) -> &'static str {
        match self {
            Self::Symlink { .. } => {
                "replace the link with the file or directory itself; a file outside the project \
                 can be named in your global config (~/.config/stockade/config.toml) instead"
            }
            Self::NotRegular { .. } => "replace it with a regular file, or remove it",
            Self::TooLarge { .. } => {
                "make the file smaller; for a build context, leave large files out with \
                 .stockade/.dockerignore or put them in the global base image"
            }
            Self::Outside { .. } => "name a path inside the project",
            Self::Io { .. } => "check that the file exists and that you can read it",
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Symlink { path, .. }
            | Self::NotRegular { path, .. }
            | Self::TooLarge { path, .. }
            | Self::Outside { path, .. }
            | Self::Io { path, .. } => path,
        }
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

fn kind_of(stat: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO (named pipe)",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFLNK => "a symbolic link",
        _ => "a regular file",
    }
}

fn is_type(stat: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == kind
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
const FILE_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_CLOEXEC);

/// One entry of a directory tree read with [`ProjectDir::read_tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEntry {
    File {
        path: String,
        mode: u32,
        /// Empty when the tree was only stat'ed ([`ProjectDir::stat_tree`]).
        bytes: Vec<u8>,
        stamp: Stamp,
    },
    Dir {
        path: String,
        mode: u32,
    },
    /// A link inside the tree is kept as a link (its target is data; it is never followed).
    Symlink {
        path: String,
        target: OsString,
    },
}

impl TreeEntry {
    pub fn path(&self) -> &str {
        match self {
            Self::File { path, .. } | Self::Dir { path, .. } | Self::Symlink { path, .. } => path,
        }
    }
}

/// A file's stat as the content-hash cache compares it: size, mtime and ctime (ctime cannot be
/// set from user space, so an edit always changes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl Stamp {
    fn of(stat: &FileStat) -> Self {
        Self {
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mtime_ns: i128::from(stat.st_mtime) * 1_000_000_000 + i128::from(stat.st_mtime_nsec),
            ctime_ns: i128::from(stat.st_ctime) * 1_000_000_000 + i128::from(stat.st_ctime_nsec),
        }
    }
}

/// What [`ProjectDir::read_tree`] does with an entry, asked with its tree-relative path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Record it (and walk into it when it is a directory).
    Keep,
    /// Leave it out, but walk into it (a directory may hold kept entries).
    SkipButDescend,
    /// Leave it and everything below it out.
    Skip,
}

/// Decides, per tree-relative path (and whether it is a directory), what a tree walk keeps.
pub type Visitor<'v> = dyn Fn(&str, bool) -> Visit + Sync + 'v;

/// The project root, opened once; every path below it is resolved without following links.
#[derive(Debug)]
pub struct ProjectDir {
    root: PathBuf,
    fd: OwnedFd,
}

impl ProjectDir {
    /// Open the project root (the root itself was found from the working directory and is
    /// opened as it resolves).
    pub fn open(root: &Path) -> Result<Self, ReadError> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(root, e))?;
        Ok(Self {
            root: root.to_path_buf(),
            fd,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` relative to the root when it lies (lexically) inside it.
    pub fn relative<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        if path.is_absolute() {
            path.strip_prefix(&self.root).ok()
        } else {
            Some(path)
        }
    }

    /// Read the regular file at `rel` (relative to the root); `Ok(None)` when it (or a
    /// directory on its way) does not exist.
    pub fn read_file(
        &self,
        rel: &Path,
        cap: u64,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, ReadError> {
        let Some((dir, name)) = self.parent_of(rel)? else {
            return Ok(None);
        };
        let path = self.root.join(rel);
        read_regular(dir.as_ref().unwrap_or(&self.fd), name, &path, cap, what)
    }

    /// Whether `rel` exists, reached without any link on its way and not a link itself (a
    /// link is an error). Used for mount sources, which cannot be fingerprinted by bytes.
    pub fn check_path(&self, rel: &Path) -> Result<bool, ReadError> {
        let Some((dir, name)) = self.parent_of(rel)? else {
            return Ok(false);
        };
        let dir = dir.as_ref().unwrap_or(&self.fd);
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if is_type(&stat, SFlag::S_IFLNK) => Err(ReadError::Symlink {
                path: self.root.join(rel),
                target: readlinkat(dir, name).ok().map(PathBuf::from),
            }),
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(io(&self.root.join(rel), e)),
        }
    }

    /// Read the directory tree at `rel`: every entry `visit` keeps, files with their bytes
    /// (`cap` for all of them together), links as links. `Ok(None)` when `rel` is missing.
    pub fn read_tree(
        &self,
        rel: &Path,
        cap: u64,
        what: &'static str,
        visit: &Visitor<'_>,
    ) -> Result<Option<Vec<TreeEntry>>, ReadError> {
        self.walk_tree(rel, cap, what, visit, true)
    }

    /// [`Self::read_tree`] without the files' bytes: their stamps only (no file is opened).
    pub fn stat_tree(
        &self,
        rel: &Path,
        cap: u64,
        what: &'static str,
        visit: &Visitor<'_>,
    ) -> Result<Option<Vec<TreeEntry>>, ReadError> {
        self.walk_tree(rel, cap, what, visit, false)
    }

    fn walk_tree(
        &self,
        rel: &Path,
        cap: u64,
        what: &'static str,
        visit: &Visitor<'_>,
        with_bytes: bool,
    ) -> Result<Option<Vec<TreeEntry>>, ReadError> {
        let Some(fd) = self.open_dir(rel)? else {
            return Ok(None);
        };
        let top = self.root.join(rel);
        let tree = |pending| Tree {
            with_bytes,
            out: Vec::new(),
            budget: cap,
            cap,
            what,
            top: top.clone(),
            visit,
            pending,
        };
        let mut main = tree(vec![(fd, top.clone(), String::new())]);
        let threads = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .clamp(1, 8);
        if with_bytes || threads == 1 {
            main.run()?;
        } else {
            // A stat walk (the warm path) shares the directories between threads, breadth-first
            // until there are enough to share: stat calls dominate and run in parallel.
            while !main.pending.is_empty() && main.pending.len() < threads * 4 {
                let (fd, path, prefix) = main.pending.remove(0);
                main.list(fd, &path, &prefix)?;
            }
            let mut shares: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
            for (i, item) in std::mem::take(&mut main.pending).into_iter().enumerate() {
                shares[i % threads].push(item);
            }
            let results = std::thread::scope(|scope| {
                let handles: Vec<_> = shares
                    .into_iter()
                    .map(|share| {
                        let mut part = tree(share);
                        scope.spawn(move || part.run().map(|()| part.out))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(io(&top, Errno::EIO))))
                    .collect::<Vec<_>>()
            });
            for result in results {
                main.out.extend(result?);
            }
            let total: u64 = main
                .out
                .iter()
                .map(|e| match e {
                    TreeEntry::File { stamp, .. } => stamp.size,
                    _ => 0,
                })
                .sum();
            if total > cap {
                return Err(ReadError::TooLarge {
                    path: top,
                    what,
                    size: total,
                    cap,
                });
            }
        }
        main.out.sort_by(|a, b| a.path().cmp(b.path()));
        Ok(Some(main.out))
    }

    /// Open the directory at `rel` (`.` for the root) without following links.
    fn open_dir(&self, rel: &Path) -> Result<Option<OwnedFd>, ReadError> {
        let names = self.components(rel)?;
        let mut current: Option<OwnedFd> = None;
        let mut walked = self.root.clone();
        for name in names {
            walked.push(name);
            let parent = current.as_ref().unwrap_or(&self.fd);
            match open_subdir(parent, name, &walked)? {
                Some(fd) => current = Some(fd),
                None => return Ok(None),
            }
        }
        match current {
            Some(fd) => Ok(Some(fd)),
            None => nix::unistd::dup(&self.fd)
                .map(Some)
                .map_err(|e| io(&self.root, e)),
        }
    }

    /// The directory holding `rel` (`None` inside: the root itself) and `rel`'s last name.
    #[allow(clippy::type_complexity)]
    fn parent_of<'a>(
        &self,
        rel: &'a Path,
    ) -> Result<Option<(Option<OwnedFd>, &'a OsStr)>, ReadError> {
        let mut names = self.components(rel)?;
        let Some(name) = names.pop() else {
            return Err(ReadError::NotRegular {
                path: self.root.clone(),
                kind: "a directory",
            });
        };
        if names.is_empty() {
            return Ok(Some((None, name)));
        }
        let dir: PathBuf = names.iter().collect();
        Ok(self.open_dir(&dir)?.map(|fd| (Some(fd), name)))
    }

    fn components<'a>(&self, rel: &'a Path) -> Result<Vec<&'a OsStr>, ReadError> {
        let rel = self.relative(rel).ok_or_else(|| ReadError::Outside {
            path: rel.to_path_buf(),
            root: self.root.clone(),
        })?;
        let mut names = Vec::new();
        for component in rel.components() {
            match component {
                Component::Normal(name) => names.push(name),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(ReadError::Outside {
                        path: self.root.join(rel),
                        root: self.root.clone(),
                    });
                }
            }
        }
        Ok(names)
    }
}

/// Read a file the user's own configuration names outside the project: links on its way are the
/// user's own, but it must still be a regular file under the cap. `Ok(None)` when missing.
pub fn read_outside(
    path: &Path,
    cap: u64,
    what: &'static str,
) -> Result<Option<Vec<u8>>, ReadError> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name),
        _ => {
            return Err(ReadError::NotRegular {
                path: path.to_path_buf(),
                kind: "a directory",
            });
        }
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let fd = match nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(io(dir, e)),
    };
    // The last component may be the user's own link (e.g. into a dotfiles repository).
    match fstatat(&fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if is_type(&stat, SFlag::S_IFLNK) => {
            let target = std::fs::canonicalize(path).map_err(|e| ReadError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
            read_outside_final(&target, cap, what)
        }
        Ok(_) => read_regular(&fd, name, path, cap, what),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Read a configuration file as text: the project's beneath the project root (no link
/// followed), the user's own with [`read_outside`]; regular files only, under [`CONFIG_CAP`].
/// The error carries the explanation and the fix.
pub fn read_config(
    path: &Path,
    in_project: bool,
    project_root: &Path,
) -> Result<Option<String>, std::io::Error> {
    let what = "a configuration file";
    let read = if in_project {
        ProjectDir::open(project_root).and_then(|dir| {
            let rel = dir.relative(path).map(Path::to_path_buf);
            match rel {
                Some(rel) => dir.read_file(&rel, CONFIG_CAP, what),
                None => read_outside(path, CONFIG_CAP, what),
            }
        })
    } else {
        read_outside(path, CONFIG_CAP, what)
    };
    let read = match read {
        // No project root, no project file.
        Err(ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        other => other,
    };
    let explain = |e: ReadError| std::io::Error::other(format!("{e}; {}", e.help()));
    match read.map_err(explain)? {
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| std::io::Error::other("it is not valid UTF-8 text; save it as UTF-8")),
        None => Ok(None),
    }
}

fn read_outside_final(
    path: &Path,
    cap: u64,
    what: &'static str,
) -> Result<Option<Vec<u8>>, ReadError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: "a directory",
        });
    };
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(dir, e))?;
    read_regular(&fd, name, path, cap, what)
}

fn io(path: &Path, e: Errno) -> ReadError {
    ReadError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::from(e),
    }
}

/// The error for a name that could not be opened with `O_NOFOLLOW`: a link is named as one.
fn explain(dir: &impl AsFd, name: &OsStr, path: &Path, e: Errno) -> ReadError {
    if let Ok(stat) = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        if is_type(&stat, SFlag::S_IFLNK) {
            return ReadError::Symlink {
                path: path.to_path_buf(),
                target: readlinkat(dir, name).ok().map(PathBuf::from),
            };
        }
        if e == Errno::ENOTDIR {
            return ReadError::NotRegular {
                path: path.to_path_buf(),
                kind: kind_of(&stat),
            };
        }
    }
    io(path, e)
}

fn open_subdir(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<Option<OwnedFd>, ReadError> {
    match openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(explain(parent, name, path, e)),
    }
}

/// Open `name` in `dir` as a regular file (checked before and after the open) and read it.
fn read_regular(
    dir: &impl AsFd,
    name: &OsStr,
    path: &Path,
    cap: u64,
    what: &'static str,
) -> Result<Option<Vec<u8>>, ReadError> {
    // Check the type first, so that a device or FIFO is never even opened.
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if is_type(&stat, SFlag::S_IFLNK) => {
            return Err(ReadError::Symlink {
                path: path.to_path_buf(),
                target: readlinkat(dir, name).ok().map(PathBuf::from),
            });
        }
        Ok(stat) if !is_type(&stat, SFlag::S_IFREG) => {
            return Err(ReadError::NotRegular {
                path: path.to_path_buf(),
                kind: kind_of(&stat),
            });
        }
        Ok(_) => {}
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(io(path, e)),
    }
    let fd = match openat(dir, name, FILE_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(explain(dir, name, path, e)),
    };
    read_open(fd, path, cap, what).map(Some)
}

/// Read an opened descriptor after checking (again, on the descriptor) that it is a regular
/// file; at most `cap` bytes.
fn read_open(fd: OwnedFd, path: &Path, cap: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let stat = fstat(&fd).map_err(|e| io(path, e))?;
    if !is_type(&stat, SFlag::S_IFREG) {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&stat),
        });
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > cap {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            what,
            size,
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    File::from(fd)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            what,
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(bytes)
}

/// The state of one [`ProjectDir::read_tree`].
struct Tree<'a> {
    with_bytes: bool,
    out: Vec<TreeEntry>,
    budget: u64,
    cap: u64,
    what: &'static str,
    top: PathBuf,
    visit: &'a Visitor<'a>,
    pending: Vec<(OwnedFd, PathBuf, String)>,
}

impl Tree<'_> {
    /// Walk every pending directory and everything below it.
    fn run(&mut self) -> Result<(), ReadError> {
        while let Some((fd, path, prefix)) = self.pending.pop() {
            self.list(fd, &path, &prefix)?;
        }
        Ok(())
    }

    /// Record the kept entries of one directory; queue its subdirectories.
    fn list(&mut self, dir: OwnedFd, path: &Path, prefix: &str) -> Result<(), ReadError> {
        let reader = nix::unistd::dup(&dir).map_err(|e| io(path, e))?;
        let mut listing = nix::dir::Dir::from_fd(reader).map_err(|e| io(path, e))?;
        let mut names: Vec<OsString> = Vec::new();
        for entry in listing.iter() {
            let entry = entry.map_err(|e| io(path, e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_os_string());
            }
        }
        for name in names {
            let child = path.join(&name);
            let rel = if prefix.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{prefix}/{}", name.to_string_lossy())
            };
            let stat = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::ENOENT) => continue, // removed while listed
                Err(e) => return Err(io(&child, e)),
            };
            let mode = stat.st_mode & 0o7777;
            if is_type(&stat, SFlag::S_IFDIR) {
                let visit = (self.visit)(&rel, true);
                if visit == Visit::Skip {
                    continue;
                }
                if visit == Visit::Keep {
                    self.out.push(TreeEntry::Dir {
                        path: rel.clone(),
                        mode,
                    });
                }
                if let Some(fd) = open_subdir(&dir, &name, &child)? {
                    self.pending.push((fd, child, rel));
                }
            } else if is_type(&stat, SFlag::S_IFLNK) {
                if (self.visit)(&rel, false) != Visit::Keep {
                    continue;
                }
                let target = readlinkat(&dir, name.as_os_str()).map_err(|e| io(&child, e))?;
                self.out.push(TreeEntry::Symlink { path: rel, target });
            } else if is_type(&stat, SFlag::S_IFREG) {
                if (self.visit)(&rel, false) != Visit::Keep {
                    continue;
                }
                if !self.with_bytes {
                    let stamp = Stamp::of(&stat);
                    if stamp.size > self.budget {
                        return Err(ReadError::TooLarge {
                            path: self.top.clone(),
                            what: self.what,
                            size: self.cap - self.budget + stamp.size,
                            cap: self.cap,
                        });
                    }
                    self.budget -= stamp.size;
                    self.out.push(TreeEntry::File {
                        path: rel,
                        mode,
                        bytes: Vec::new(),
                        stamp,
                    });
                    continue;
                }
                let fd = match openat(&dir, name.as_os_str(), FILE_FLAGS, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(explain(&dir, &name, &child, e)),
                };
                // The stamp of what is read: taken on the open descriptor.
                let stamp = fstat(&fd)
                    .map(|s| Stamp::of(&s))
                    .map_err(|e| io(&child, e))?;
                let bytes = read_open(fd, &child, self.budget, self.what).map_err(|e| match e {
                    ReadError::TooLarge { size, .. } => ReadError::TooLarge {
                        path: self.top.clone(),
                        what: self.what,
                        size: self.cap - self.budget + size,
                        cap: self.cap,
                    },
                    other => other,
                })?;
                self.budget -= bytes.len() as u64;
                self.out.push(TreeEntry::File {
                    path: rel,
                    mode,
                    bytes,
                    stamp,
                });
            }
            // Sockets, FIFOs and devices: the engine cannot use them; they are left out.
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn project() -> (tempfile::TempDir, ProjectDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".stockade")).unwrap();
        let root = ProjectDir::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn reads_a_regular_file_and_reports_a_missing_one() {
        let (dir, root) = project();
        std::fs::write(dir.path().join(".stockade/config.toml"), "x = 1\n").unwrap();
        let rel = Path::new(".stockade/config.toml");
        assert_eq!(
            root.read_file(rel, CONFIG_CAP, "a configuration file")
                .unwrap()
                .unwrap(),
            b"x = 1\n"
        );
        assert_eq!(
            root.read_file(Path::new(".stockade/none"), CONFIG_CAP, "x")
                .unwrap(),
            None
        );
        assert_eq!(
            root.read_file(Path::new("no/such/dir"), CONFIG_CAP, "x")
                .unwrap(),
            None
        );
    }

    #[test]
    fn links_are_refused_wherever_they_are() {
        let (dir, root) = project();
        symlink("/dev/zero", dir.path().join(".stockade/config.toml")).unwrap();
        let err = root
            .read_file(Path::new(".stockade/config.toml"), CONFIG_CAP, "x")
            .unwrap_err();
        assert!(
            matches!(&err, ReadError::Symlink { target: Some(t), .. } if t == Path::new("/dev/zero")),
            "{err}"
        );
        // A link as a directory on the way.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("config.toml"), "secret").unwrap();
        std::fs::remove_dir_all(dir.path().join(".stockade")).unwrap();
        symlink(outside.path(), dir.path().join(".stockade")).unwrap();
        let err = root
            .read_file(Path::new(".stockade/config.toml"), CONFIG_CAP, "x")
            .unwrap_err();
        assert!(matches!(err, ReadError::Symlink { .. }), "{err}");
        assert!(matches!(
            root.read_tree(Path::new(".stockade"), CONTEXT_CAP, "x", &|_, _| {
                Visit::Keep
            }),
            Err(ReadError::Symlink { .. })
        ));
        assert!(matches!(
            root.read_file(Path::new("../x"), CONFIG_CAP, "x"),
            Err(ReadError::Outside { .. })
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let (dir, root) = project();
        let path = dir.path().join(".stockade/config.toml");
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o644)).unwrap();
        let err = root
            .read_file(Path::new(".stockade/config.toml"), CONFIG_CAP, "x")
            .unwrap_err();
        assert!(matches!(err, ReadError::NotRegular { kind, .. } if kind.contains("FIFO")));
        // In a tree, a FIFO is left out (the engine could not use it) and nothing blocks.
        let tree = root
            .read_tree(Path::new(".stockade"), CONTEXT_CAP, "x", &|_, _| {
                Visit::Keep
            })
            .unwrap()
            .unwrap();
        assert!(tree.is_empty());
    }

    #[test]
    fn the_cap_holds() {
        let (dir, root) = project();
        std::fs::write(dir.path().join(".stockade/big"), vec![b'a'; 2048]).unwrap();
        let err = root
            .read_file(Path::new(".stockade/big"), 1024, "a configuration file")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}/.stockade/big is larger than the 1 KiB stockade reads for a configuration \
                 file (2048 bytes or more)",
                dir.path().display()
            )
        );
        std::fs::write(dir.path().join(".stockade/small"), vec![b'a'; 800]).unwrap();
        assert!(matches!(
            root.read_tree(Path::new(".stockade"), 2500, "a build context", &|_, _| {
                Visit::Keep
            }),
            Err(ReadError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_tree_keeps_links_as_links_and_follows_the_filter() {
        let (dir, root) = project();
        let ctx = dir.path().join(".stockade");
        std::fs::write(ctx.join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::create_dir_all(ctx.join("sub/skip")).unwrap();
        std::fs::write(ctx.join("sub/f"), "data").unwrap();
        std::fs::write(ctx.join("sub/skip/g"), "no").unwrap();
        symlink("/etc/passwd", ctx.join("link")).unwrap();
        let tree = root
            .read_tree(Path::new(".stockade"), CONTEXT_CAP, "x", &|p, _| {
                if p == "sub/skip" {
                    Visit::Skip
                } else {
                    Visit::Keep
                }
            })
            .unwrap()
            .unwrap();
        let paths: Vec<&str> = tree.iter().map(TreeEntry::path).collect();
        assert_eq!(paths, ["Dockerfile", "link", "sub", "sub/f"]);
        assert!(matches!(&tree[1], TreeEntry::Symlink { target, .. } if target == "/etc/passwd"));
    }

    #[test]
    fn outside_files_must_be_regular() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "pem").unwrap();
        symlink(dir.path().join("ca.crt"), dir.path().join("link.crt")).unwrap();
        assert_eq!(
            read_outside(&dir.path().join("link.crt"), FILE_CAP, "x")
                .unwrap()
                .unwrap(),
            b"pem"
        );
        symlink("/dev/zero", dir.path().join("zero.crt")).unwrap();
        assert!(matches!(
            read_outside(&dir.path().join("zero.crt"), FILE_CAP, "x"),
            Err(ReadError::NotRegular { .. })
        ));
        assert_eq!(
            read_outside(&dir.path().join("none"), FILE_CAP, "x").unwrap(),
            None
        );
    }
}
