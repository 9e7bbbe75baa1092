//! The secrets file: how secret environment reaches a sandbox without appearing in the
//! container's configuration (`docker inspect`). stockade uploads it into the created container
//! (archive upload, before start, see `handover`) owned by the sandbox user, mode 0400; the
//! entrypoint, already running as that user, sources it as its last step before the command.
//! It stays for the container's life, so a restarted container and `exec --in` read it again.
//! See docs/security.md.

/// Where the file lands in the container (the root file system, so it exists on every base).
pub const SECRETS_PATH: &str = "/.stockade-secrets";

/// With a read-only root file system nothing can be uploaded to `/`: the file goes into a small
/// anonymous volume mounted here instead (removed with the container). An upload cannot reach a
/// tmpfs, which exists only once the container runs.
pub const SECRETS_VOLUME_DIR: &str = "/.stockade-secrets.d";

/// The directory to upload into and the file's name there.
pub fn location(read_only_root: bool) -> (&'static str, &'static str) {
    if read_only_root {
        (SECRETS_VOLUME_DIR, "env")
    } else {
        ("/", ".stockade-secrets")
    }
}

/// `export NAME='value'` lines, single-quoted so any value survives `.` in sh. Only
/// environment-style names are written (configuration refuses others before this): a name is
/// never interpreted by the shell.
pub fn render(secrets: &[(String, String)]) -> String {
    secrets
        .iter()
        .filter(|(name, _)| is_env_name(name))
        .map(|(name, value)| format!("export {name}='{}'\n", value.replace('\'', r"'\''")))
        .collect()
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_sh() {
        let text = render(&[
            ("A".into(), "plain".into()),
            ("B".into(), "it's $HOME `x`\nline2".into()),
            ("C;rm -rf /".into(), "x".into()),
        ]);
        assert_eq!(
            text,
            "export A='plain'\nexport B='it'\\''s $HOME `x`\nline2'\n"
        );
    }
}
