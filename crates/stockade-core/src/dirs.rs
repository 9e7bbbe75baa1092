//! Where stockade keeps its files: XDG base directories, resolved once from the environment.

use std::path::{Path, PathBuf};

/// The directories stockade reads and writes on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// `$XDG_CONFIG_HOME/stockade` (default `~/.config/stockade`).
    pub config: PathBuf,
    /// `$XDG_CACHE_HOME/stockade` (default `~/.cache/stockade`).
    pub cache: PathBuf,
    /// `$XDG_STATE_HOME/stockade` (default `~/.local/state/stockade`).
    pub state: PathBuf,
}

impl Dirs {
    /// Resolve from a home directory and an environment lookup (`std::env::var_os` in the binary).
    /// Relative XDG values are ignored, as the XDG spec demands.
    pub fn resolve(home: &Path, env: impl Fn(&str) -> Option<String>) -> Self {
        let xdg = |var: &str, default: &[&str]| -> PathBuf {
            let base = env(var)
                .filter(|value| Path::new(value).is_absolute())
                .map(PathBuf::from)
                .unwrap_or_else(|| default.iter().fold(home.to_path_buf(), |p, s| p.join(s)));
            base.join("stockade")
        };
        Self {
            config: xdg("XDG_CONFIG_HOME", &[".config"]),
            cache: xdg("XDG_CACHE_HOME", &[".cache"]),
            state: xdg("XDG_STATE_HOME", &[".local", "state"]),
        }
    }

    /// The global configuration file.
    pub fn global_config(&self) -> PathBuf {
        self.config.join("config.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_live_under_home() {
        let dirs = Dirs::resolve(Path::new("/home/ada"), |_| None);
        assert_eq!(dirs.config, Path::new("/home/ada/.config/stockade"));
        assert_eq!(dirs.cache, Path::new("/home/ada/.cache/stockade"));
        assert_eq!(dirs.state, Path::new("/home/ada/.local/state/stockade"));
        assert_eq!(
            dirs.global_config(),
            Path::new("/home/ada/.config/stockade/config.toml")
        );
    }

    #[test]
    fn xdg_variables_win_when_absolute() {
        let dirs = Dirs::resolve(Path::new("/home/ada"), |var| match var {
            "XDG_CONFIG_HOME" => Some("/xdg/config".into()),
            "XDG_CACHE_HOME" => Some("relative/ignored".into()),
            _ => None,
        });
        assert_eq!(dirs.config, Path::new("/xdg/config/stockade"));
        assert_eq!(dirs.cache, Path::new("/home/ada/.cache/stockade"));
    }
}
