//! The host user that a sandbox reproduces: uid, gid, name and HOME.

use std::path::PathBuf;

/// Who runs stockade on the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: PathBuf,
}

/// Why the host identity could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "cannot determine the home directory of uid {uid}: HOME is unset and the user has no passwd entry"
    )]
    NoHome { uid: u32 },
}

impl Identity {
    /// The current process's identity. HOME comes from the environment when set (as shells do),
    /// the name from the passwd database, else `$USER`, else `user<uid>`.
    pub fn current() -> Result<Self, IdentityError> {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let entry = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten();
        let name = entry
            .as_ref()
            .map(|user| user.name.clone())
            .or_else(|| std::env::var("USER").ok())
            .filter(|name| is_valid_user_name(name))
            .unwrap_or_else(|| format!("user{uid}"));
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from)
            .or_else(|| entry.map(|user| user.dir))
            .ok_or(IdentityError::NoHome { uid })?;
        Ok(Self {
            uid,
            gid,
            name,
            home,
        })
    }
}

/// A name that is safe to write into `/etc/passwd` inside any image.
pub fn is_valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(is_valid_user_name("ada"));
        assert!(is_valid_user_name("ada.lovelace_1-x"));
        assert!(!is_valid_user_name(""));
        assert!(!is_valid_user_name("-rf"));
        assert!(!is_valid_user_name("ada:0"));
        assert!(!is_valid_user_name("a b"));
    }
}
