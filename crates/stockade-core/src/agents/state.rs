//! What stockade remembers about agents on this host: the version each agent (and each runtime)
//! uses (state dir, `agents.json`) and answers to "what is the latest version?" (cache dir, `versions.json`).
//! Both are small JSON files written atomically; a missing or unreadable file is empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::libc::{Build, LibcProbe};

/// The installed version an agent uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub version: String,
    pub volume: String,
    /// Unix seconds.
    pub installed_at: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub agents: BTreeMap<String, Installed>,
    /// The installed release of each runtime spec in use, by [`Runtime::key`](super::Runtime::key)
    /// (`node@22`).
    #[serde(default)]
    pub runtimes: BTreeMap<String, Installed>,
    /// The installed version of each native agent's musl build in use (for musl-based images),
    /// by agent name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub musl: BTreeMap<String, Installed>,
    /// What the libc probe found in an image, by image id (an id names one content, so its
    /// answer never changes); the most recent [`LIBC_ANSWERS`] are kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub libc: BTreeMap<String, ProbedImage>,
}

/// The most libc probe answers the state keeps.
pub const LIBC_ANSWERS: usize = 32;

/// A libc probe's answer for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbedImage {
    #[serde(flatten)]
    pub probe: LibcProbe,
    /// Unix seconds.
    pub checked_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedVersion {
    pub version: String,
    /// Unix seconds.
    pub checked_at: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionCache {
    /// Key: `<install kind>:<package>@<spec>`.
    pub entries: BTreeMap<String, CachedVersion>,
}

impl State {
    pub fn path(state_dir: &Path, namespace: &str) -> PathBuf {
        state_dir.join(file_name("agents", namespace))
    }
    pub fn load(path: &Path) -> Self {
        read_json(path)
    }
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        write_json(path, self)
    }

    /// The records of one build: every agent's package installs, or native agents' musl builds.
    pub fn builds(&self, build: Build) -> &BTreeMap<String, Installed> {
        match build {
            Build::Package => &self.agents,
            Build::Musl => &self.musl,
        }
    }

    pub fn builds_mut(&mut self, build: Build) -> &mut BTreeMap<String, Installed> {
        match build {
            Build::Package => &mut self.agents,
            Build::Musl => &mut self.musl,
        }
    }

    /// Remember a libc probe's answer for an image, keeping the most recent [`LIBC_ANSWERS`].
    pub fn remember_libc(&mut self, image_id: &str, probe: LibcProbe, now: u64) {
        self.libc.insert(
            image_id.to_owned(),
            ProbedImage {
                probe,
                checked_at: now,
            },
        );
        while self.libc.len() > LIBC_ANSWERS {
            let oldest = self
                .libc
                .iter()
                .min_by_key(|(id, answer)| (answer.checked_at, (*id).clone()))
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.libc.remove(&id),
                None => break,
            };
        }
    }
}

impl VersionCache {
    pub fn path(cache_dir: &Path, namespace: &str) -> PathBuf {
        cache_dir.join(file_name("versions", namespace))
    }
    pub fn load(path: &Path) -> Self {
        read_json(path)
    }
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        write_json(path, self)
    }

    pub fn key(kind: &str, package: &str, spec: &str) -> String {
        format!("{kind}:{package}@{spec}")
    }

    /// A cached answer younger than `ttl_secs` at `now`.
    pub fn fresh(&self, key: &str, now: u64, ttl_secs: u64) -> Option<&CachedVersion> {
        self.entries
            .get(key)
            .filter(|entry| now.saturating_sub(entry.checked_at) < ttl_secs)
    }
}

/// `agents.json`, or `agents-<ns>.json` under a namespace (so test runs never share state).
fn file_name(stem: &str, namespace: &str) -> String {
    if namespace.is_empty() {
        format!("{stem}.json")
    } else {
        format!("{stem}-{namespace}.json")
    }
}

fn read_json<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> T {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let scratch = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&scratch, text)?;
    std::fs::rename(&scratch, path)
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let path = VersionCache::path(dir.path(), "t");
        let mut cache = VersionCache::load(&path);
        let key = VersionCache::key("npm", "x", "latest");
        cache.entries.insert(
            key.clone(),
            CachedVersion {
                version: "1.0.0".into(),
                checked_at: 1000,
            },
        );
        cache.save(&path).unwrap();
        let cache = VersionCache::load(&path);
        assert!(cache.fresh(&key, 1000 + 3599, 3600).is_some());
        assert!(cache.fresh(&key, 1000 + 3600, 3600).is_none());
        assert!(path.ends_with("versions-t.json"));
    }

    #[test]
    fn libc_answers_are_bounded() {
        let mut state = State::default();
        for n in 0..(LIBC_ANSWERS as u64 + 3) {
            state.remember_libc(&format!("sha256:{n:03}"), LibcProbe::default(), n);
        }
        assert_eq!(state.libc.len(), LIBC_ANSWERS);
        assert!(!state.libc.contains_key("sha256:002"));
        assert!(state.libc.contains_key("sha256:003"));
        // An old state file (no musl, no libc) reads, and an empty map is not written.
        let old: State = serde_json::from_str(r#"{"agents": {}}"#).unwrap();
        assert_eq!(old, State::default());
        let text = serde_json::to_string(&State::default()).unwrap();
        assert!(!text.contains("musl") && !text.contains("libc"), "{text}");
    }

    #[test]
    fn missing_state_is_empty() {
        assert_eq!(
            State::load(Path::new("/nonexistent/x.json")),
            State::default()
        );
    }
}
