//! A build context on disk: the files a directory sends to the engine (after `.dockerignore`),
//! their content hash, and the tar that carries them.
//!
//! Confirming that an unchanged context is unchanged must be cheap, so hashing goes through a
//! cache under the XDG cache directory: one walk stats every file, and when the stat fingerprint
//! (path, type, mode, size, mtime, ctime of every entry) equals the cached one, the cached hash is
//! the answer: no file is read. When it differs, only the files whose stat changed are read again.
//!
//! This serves the user's own contexts only (the global base in `~/.config/stockade/`, a custom
//! base Dockerfile outside the project). Contexts in the project are hostile input: they go
//! through `fsread` (`project_files::read_context`, with a cache of its own), and what a build
//! sends is checked against the approved hash. Neither cache trusts a stat that could hide an
//! edit: ctime cannot be set from user space, and entries changed within the last 2 seconds are
//! always read again.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::dockerignore::{DockerIgnore, InvalidPattern};
use crate::hash::{ContentHasher, sha256_hex};

/// Files changed this recently are hashed again on the next run even when their stat looks
/// unchanged: a write within the same timestamp tick would not show in mtime.
const RACY_WINDOW_NS: i128 = 2_000_000_000;

/// Version of the cache format and of the hash encoding.
const CACHE_VERSION: &str = "stockade-context-v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Relative path, `/`-separated.
    path: String,
    kind: Kind,
    mode: u32,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

/// Why a context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot read the build context {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} {source}", path.display())]
    Ignore {
        path: PathBuf,
        source: InvalidPattern,
    },
}

/// The files of a build context directory, as the engine will receive them.
#[derive(Debug, Clone)]
pub struct DirContext {
    root: PathBuf,
    entries: Vec<Entry>,
}

impl DirContext {
    /// Walk `root`, leaving out what its `.dockerignore` names and stockade's own files there
    /// ([`super::is_own_file`]: its configuration, so neither an edit of it nor a backup copy
    /// rebuilds anything). The Dockerfile is always sent.
    pub fn scan(root: &Path) -> Result<Self, ContextError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContextError::Io { path, source }
        };
        let ignore_path = root.join(".dockerignore");
        let mut ignore = match fs::read_to_string(&ignore_path) {
            Ok(text) => DockerIgnore::parse(&text).map_err(|source| ContextError::Ignore {
                path: ignore_path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
            Err(e) => return Err(io(&ignore_path)(e)),
        };
        ignore.keep("Dockerfile");

        let walker = Walker { ignore };
        let threads = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .clamp(1, 8);
        // Breadth-first until there are enough directories to share, then each thread walks
        // its share depth-first: stat calls dominate, and they run in parallel.
        let mut entries = Vec::new();
        let mut frontier = vec![(root.to_path_buf(), String::new())];
        while !frontier.is_empty() && (threads == 1 || frontier.len() < threads * 8) {
            let mut next = Vec::new();
            for (dir, prefix) in &frontier {
                walker.read_dir(dir, prefix, &mut entries, &mut next)?;
            }
            frontier = next;
        }
        if !frontier.is_empty() {
            let shares: Vec<Vec<(PathBuf, String)>> = (0..threads)
                .map(|i| frontier.iter().skip(i).step_by(threads).cloned().collect())
                .collect();
            let walker = &walker;
            let results = std::thread::scope(|scope| {
                let handles: Vec<_> = shares
                    .into_iter()
                    .map(|share| scope.spawn(move || walker.walk(share)))
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| {
                        handle.join().unwrap_or_else(|_| {
                            Err(io(root)(std::io::Error::other("directory walk failed")))
                        })
                    })
                    .collect::<Vec<_>>()
            });
            for result in results {
                entries.extend(result?);
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self {
            root: root.to_path_buf(),
            entries,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many files and directories the context holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A hash of every entry's stat: equal fingerprints mean nothing was touched.
    fn fingerprint(&self) -> String {
        let mut hasher = ContentHasher::new(CACHE_VERSION);
        for e in &self.entries {
            hasher
                .part(e.path.as_bytes())
                .part(&[e.kind as u8])
                .part(&e.mode.to_le_bytes())
                .part(&e.size.to_le_bytes())
                .part(&e.mtime_ns.to_le_bytes())
                .part(&e.ctime_ns.to_le_bytes());
        }
        hasher.finish()
    }

    /// The content hash of the context: every entry's path, kind, mode and content (a symlink's
    /// target). `cache_file` remembers stats and file hashes between runs; a missing or broken
    /// cache only costs time.
    pub fn content_hash(&self, cache_file: &Path) -> Result<String, ContextError> {
        self.content_hash_at(cache_file, now_ns())
    }

    fn content_hash_at(&self, cache_file: &Path, now: i128) -> Result<String, ContextError> {
        let fingerprint = self.fingerprint();
        let cache = Cache::read(cache_file);
        if let Some(cache) = &cache
            && cache.fingerprint == fingerprint
        {
            return Ok(cache.hash.clone());
        }
        let known = cache.map(Cache::files).unwrap_or_default();
        let mut hasher = ContentHasher::new(CACHE_VERSION);
        let mut files = Vec::with_capacity(self.entries.len());
        let mut racy = false;
        for e in &self.entries {
            let digest = match e.kind {
                Kind::Dir => String::new(),
                Kind::Symlink => {
                    let path = self.root.join(&e.path);
                    let target = fs::read_link(&path).map_err(|source| ContextError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    sha256_hex(target.as_os_str().as_encoded_bytes())
                }
                Kind::File => {
                    let recent = now - e.mtime_ns.max(e.ctime_ns) < RACY_WINDOW_NS;
                    racy |= recent;
                    match known.get(&e.path) {
                        Some(cached) if !recent && cached.0 == stat_key(e) => cached.1.clone(),
                        _ => hash_file(&self.root.join(&e.path))?,
                    }
                }
            };
            hasher
                .part(e.path.as_bytes())
                .part(&[e.kind as u8])
                .part(&e.mode.to_le_bytes())
                .part(digest.as_bytes());
            if e.kind == Kind::File {
                files.push((e, digest));
            }
        }
        let hash = hasher.finish();
        // A racy entry makes the fingerprint untrustworthy: keep the per-file hashes, but make
        // the next run compare stats again.
        let stored_fingerprint = if racy { "racy" } else { fingerprint.as_str() };
        // The cache only saves time; failing to write it is not an error.
        let _ = Cache::write(cache_file, stored_fingerprint, &hash, &files, now);
        Ok(hash)
    }

    /// The context as an uncompressed tar, read from disk, with the file `dockerfile` replaced
    /// by `edit` of its bytes (stockade's edit: tiers resolved, the `LABEL` instruction).
    pub fn to_tar(
        &self,
        dockerfile: &str,
        edit: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Result<Vec<u8>, ContextError> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        for e in &self.entries {
            let path = self.root.join(&e.path);
            let io = |source| ContextError::Io {
                path: path.clone(),
                source,
            };
            if e.kind == Kind::File && e.path == dockerfile {
                let bytes = edit(&fs::read(&path).map_err(io)?);
                let mut header = tar::Header::new_gnu();
                header.set_mode(e.mode);
                header.set_size(bytes.len() as u64);
                header.set_entry_type(tar::EntryType::Regular);
                builder
                    .append_data(&mut header, &e.path, bytes.as_slice())
                    .map_err(io)?;
            } else {
                builder.append_path_with_name(&path, &e.path).map_err(io)?;
            }
        }
        builder.into_inner().map_err(|source| ContextError::Io {
            path: self.root.clone(),
            source,
        })
    }
}

/// Reads directories of a context: what to leave out, and how to record what is kept.
struct Walker {
    ignore: DockerIgnore,
}

impl Walker {
    /// Walk `pending` directories and everything below them.
    fn walk(&self, mut pending: Vec<(PathBuf, String)>) -> Result<Vec<Entry>, ContextError> {
        let mut entries = Vec::new();
        while let Some((dir, prefix)) = pending.pop() {
            self.read_dir(&dir, &prefix, &mut entries, &mut pending)?;
        }
        Ok(entries)
    }

    /// Record the kept entries of one directory; queue its subdirectories that may hold some.
    fn read_dir(
        &self,
        dir: &Path,
        prefix: &str,
        entries: &mut Vec<Entry>,
        subdirs: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), ContextError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContextError::Io { path, source }
        };
        for item in fs::read_dir(dir).map_err(io(dir))? {
            let item = item.map_err(io(dir))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            let rel = if prefix.is_empty() {
                name.into_owned()
            } else {
                format!("{prefix}/{name}")
            };
            if super::is_own_file(&rel) {
                continue;
            }
            let meta = item.metadata().map_err(io(&item.path()))?;
            let kind = if meta.is_dir() {
                Kind::Dir
            } else if meta.file_type().is_symlink() {
                Kind::Symlink
            } else if meta.is_file() {
                Kind::File
            } else {
                continue; // sockets, fifos, devices: the engine cannot use them
            };
            let excluded = self.ignore.is_excluded(&rel);
            if kind == Kind::Dir && (!excluded || self.ignore.has_exceptions()) {
                subdirs.push((item.path(), rel.clone()));
            }
            if excluded {
                continue;
            }
            entries.push(Entry {
                kind,
                mode: meta.mode() & 0o7777,
                size: if kind == Kind::Dir { 0 } else { meta.size() },
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
                path: rel,
            });
        }
        Ok(())
    }
}

fn stat_key(e: &Entry) -> String {
    format!("{}:{}:{}:{}", e.size, e.mtime_ns, e.ctime_ns, e.mode)
}

fn hash_file(path: &Path) -> Result<String, ContextError> {
    let error = |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::open(path).map_err(error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// The cache file: a header line `<version> <fingerprint> <hash>`, then one line per file:
/// `<stat key> <sha256> <path>`. The per-file lines are read only when the fingerprint differs.
struct Cache {
    fingerprint: String,
    hash: String,
    rest: BufReader<fs::File>,
}

impl Cache {
    fn read(path: &Path) -> Option<Self> {
        let mut rest = BufReader::new(fs::File::open(path).ok()?);
        let mut header = String::new();
        rest.read_line(&mut header).ok()?;
        let mut parts = header.split_whitespace();
        if parts.next()? != CACHE_VERSION {
            return None;
        }
        Some(Self {
            fingerprint: parts.next()?.to_owned(),
            hash: parts.next()?.to_owned(),
            rest,
        })
    }

    /// path → (stat key, sha256)
    fn files(self) -> HashMap<String, (String, String)> {
        self.rest
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                let (key, digest, path) = (parts.next()?, parts.next()?, parts.next()?);
                Some((path.to_owned(), (key.to_owned(), digest.to_owned())))
            })
            .collect()
    }

    fn write(
        path: &Path,
        fingerprint: &str,
        hash: &str,
        files: &[(&Entry, String)],
        now: i128,
    ) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let scratch = path.with_extension(format!("tmp{}", std::process::id()));
        {
            let mut out = std::io::BufWriter::new(fs::File::create(&scratch)?);
            writeln!(out, "{CACHE_VERSION} {fingerprint} {hash}")?;
            for (entry, digest) in files {
                // Never remember a hash for a file that may still be changing.
                if now - entry.mtime_ns.max(entry.ctime_ns) >= RACY_WINDOW_NS {
                    writeln!(out, "{} {digest} {}", stat_key(entry), entry.path)?;
                }
            }
            out.flush()?;
        }
        fs::rename(&scratch, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, text: &str) {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn paths(context: &DirContext) -> Vec<&str> {
        context.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn dockerignore_and_exclusions_shape_the_context() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Dockerfile", "FROM x\n");
        write(dir.path(), ".dockerignore", "*.log\nDockerfile\nbuild\n");
        write(dir.path(), "a.log", "");
        write(dir.path(), "src/main.rs", "");
        write(dir.path(), "build/out.o", "");
        write(dir.path(), "config.toml", "");
        write(dir.path(), "config.toml.bak", "");
        write(dir.path(), "config.toml~", "");
        write(dir.path(), "notes.toml", "");
        write(dir.path(), "src/Cargo.toml", "");
        let context = DirContext::scan(dir.path()).unwrap();
        assert_eq!(
            paths(&context),
            vec![
                ".dockerignore",
                "Dockerfile",
                "src",
                "src/Cargo.toml",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn wide_trees_are_walked_in_parallel_with_the_same_result() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Dockerfile", "FROM x\n");
        write(dir.path(), ".dockerignore", "tree/d1*\n!tree/d10/keep\n");
        for d in 0..40 {
            for f in 0..3 {
                write(dir.path(), &format!("tree/d{d}/sub/f{f}"), "x");
            }
        }
        write(dir.path(), "tree/d10/keep", "kept");
        let context = DirContext::scan(dir.path()).unwrap();
        let names = paths(&context);
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // 40 dirs, minus d1 and d10..d19 (11 dirs, but d10/keep comes back): 29 × (dir, sub,
        // 3 files) + tree + Dockerfile + .dockerignore + d10/keep.
        assert_eq!(names.len(), 29 * 5 + 4, "{names:?}");
        assert!(names.contains(&"tree/d10/keep"));
        assert!(!names.contains(&"tree/d12/sub/f0"));
    }

    #[test]
    fn hash_follows_content_mode_and_names_not_times() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let cache = cache.path().join("ctx");
        write(dir.path(), "Dockerfile", "FROM x\nCOPY . /\n");
        write(dir.path(), "data/a.txt", "one");
        let hash = |c: &Path| {
            DirContext::scan(dir.path())
                .unwrap()
                .content_hash(c)
                .unwrap()
        };
        let first = hash(&cache);
        assert_eq!(first, hash(&cache), "cached");
        let other_cache = cache.with_extension("other");
        assert_eq!(first, hash(&other_cache), "same without a cache");

        write(dir.path(), "data/a.txt", "two");
        let edited = hash(&cache);
        assert_ne!(first, edited, "content");

        fs::rename(dir.path().join("data/a.txt"), dir.path().join("data/b.txt")).unwrap();
        let renamed = hash(&cache);
        assert_ne!(edited, renamed, "name");

        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            dir.path().join("data/b.txt"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(renamed, hash(&cache), "mode");
    }

    #[test]
    fn a_stale_cache_entry_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = cache_dir.path().join("ctx");
        write(dir.path(), "Dockerfile", "FROM x\n");
        let context = DirContext::scan(dir.path()).unwrap();
        let real = context.content_hash(&cache).unwrap();
        // A cache that claims another hash for this very fingerprint is believed (that is the
        // point of the cache) — but one written for other stats is not.
        fs::write(
            &cache,
            format!("{CACHE_VERSION} someotherfingerprint deadbeef\n"),
        )
        .unwrap();
        assert_eq!(context.content_hash(&cache).unwrap(), real);
    }

    #[test]
    fn an_untouched_context_is_confirmed_from_the_cache_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = cache_dir.path().join("ctx");
        write(dir.path(), "Dockerfile", "FROM x\n");
        write(dir.path(), "big.bin", "payload");
        let later = now_ns() + 10 * RACY_WINDOW_NS;
        let context = DirContext::scan(dir.path()).unwrap();
        let real = context.content_hash_at(&cache, later).unwrap();
        // Prove no file is read on the fast path: the cached answer is returned as is.
        let text = fs::read_to_string(&cache).unwrap();
        let header = text.lines().next().unwrap().replace(&real, "cafe");
        fs::write(&cache, format!("{header}\n")).unwrap();
        assert_eq!(context.content_hash_at(&cache, later).unwrap(), "cafe");
        // Any stat change falls back to hashing (and the per-file lines were dropped above).
        write(dir.path(), "big.bin", "payload2");
        let rescanned = DirContext::scan(dir.path()).unwrap();
        let changed = rescanned.content_hash_at(&cache, later).unwrap();
        assert_ne!(changed, "cafe");
        assert_ne!(changed, real);
    }

    #[test]
    fn tar_holds_the_context() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Dockerfile", "FROM x\n");
        write(dir.path(), "sub/f", "data");
        std::os::unix::fs::symlink("sub/f", dir.path().join("link")).unwrap();
        let bytes = DirContext::scan(dir.path())
            .unwrap()
            .to_tar("Dockerfile", |bytes| [bytes, b"\nLABEL a=b\n"].concat())
            .unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name == "Dockerfile" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                assert_eq!(text, "FROM x\n\nLABEL a=b\n");
            }
            names.push(name);
        }
        names.sort();
        assert_eq!(names, vec!["Dockerfile", "link", "sub", "sub/f"]);
    }
}
