//! The secrets file: how secret environment reaches a sandbox without appearing in the
//! container's configuration (`docker inspect`). stockade uploads it into the created container
//! (archive upload, before start) as a root-only file; the entrypoint sources it as root, deletes
//! it and only then drops privileges. See docs/security.md.

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

/// `export NAME='value'` lines, single-quoted so any value survives `.` in sh.
pub fn render(secrets: &[(String, String)]) -> String {
    secrets
        .iter()
        .map(|(name, value)| format!("export {name}='{}'\n", value.replace('\'', r"'\''")))
        .collect()
}

/// A tar archive holding the secrets file `name` (root-owned, mode 0600), to extract in the
/// directory [`location`] names.
pub fn archive(secrets: &[(String, String)], name: &str) -> std::io::Result<Vec<u8>> {
    let text = render(secrets);
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o600);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, text.as_bytes())?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_sh() {
        let text = render(&[
            ("A".into(), "plain".into()),
            ("B".into(), "it's $HOME `x`\nline2".into()),
        ]);
        assert_eq!(
            text,
            "export A='plain'\nexport B='it'\\''s $HOME `x`\nline2'\n"
        );
    }
}
