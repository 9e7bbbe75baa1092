//! A service's password (`stockade serve`): generated once from the OS's random source, kept
//! 0600 in the user's state directory (per namespace and project), read back on every start so
//! the service keeps it across `serve stop` and `serve`.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::exit::CliError;

/// Random bytes in a password: 24 bytes are 32 url-safe base64 characters (192 bits).
const RANDOM_BYTES: usize = 24;

/// Where the password of `service` in `project_id` lives:
/// `<state>/services/<namespace or "default">/<project id>/<service>.password`.
pub fn path(state: &Path, namespace: &str, project_id: &str, service: &str) -> PathBuf {
    let namespace = if namespace.is_empty() {
        "default"
    } else {
        namespace
    };
    state
        .join("services")
        .join(namespace)
        .join(project_id)
        .join(format!("{service}.password"))
}

/// The password stored at `path`, made (and stored, 0600) when there is none.
pub fn load_or_create(path: &Path) -> Result<String, CliError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => read(path, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(CliError::caused(
            format!("cannot read the service password {}", path.display()),
            e,
            Some("check the permissions of stockade's state directory"),
        )),
    }
}

/// The stored password, if there is one (`serve url`).
pub fn load(path: &Path) -> Result<Option<String>, CliError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => read(path, &meta).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::caused(
            format!("cannot read the service password {}", path.display()),
            e,
            Some("check the permissions of stockade's state directory"),
        )),
    }
}

fn read(path: &Path, meta: &std::fs::Metadata) -> Result<String, CliError> {
    let fix = format!(
        "remove {} and start the service again: a new password is made",
        path.display()
    );
    if !meta.is_file() || meta.mode() & 0o077 != 0 {
        return Err(CliError::refused(
            "password-unsafe",
            format!(
                "the service password {} is not a regular file readable by you alone",
                path.display()
            ),
            Some(&fix),
        )
        .at(path));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::caused(
            format!("cannot read the service password {}", path.display()),
            e,
            Some(&fix),
        )
    })?;
    let password = text.trim_end_matches('\n');
    if !is_password(password) {
        return Err(CliError::other(
            format!(
                "the service password {} is not one stockade made",
                path.display()
            ),
            Some(&fix),
        ));
    }
    Ok(password.to_owned())
}

fn create(path: &Path) -> Result<String, CliError> {
    let failed = |e: std::io::Error| {
        CliError::caused(
            format!("cannot store the service password in {}", path.display()),
            e,
            Some("check that stockade's state directory is writable"),
        )
    };
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(failed)?;
    }
    let password = generate()?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    file.write_all(format!("{password}\n").as_bytes())
        .map_err(failed)?;
    Ok(password)
}

/// A new password: url-safe base64 of random bytes from the OS.
pub(crate) fn generate() -> Result<String, CliError> {
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| {
        CliError::other(
            format!("the operating system's random source failed: {e}"),
            None,
        )
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What [`generate`] makes: also safe inside single quotes and a curl config line.
fn is_password(text: &str) -> bool {
    text.len() >= 32
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_32_url_safe_characters_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 32);
        assert!(is_password(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn stored_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), "", "0123456789ab", "opencode");
        assert!(file.ends_with("services/default/0123456789ab/opencode.password"));
        let made = load_or_create(&file).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(file.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        assert_eq!(load_or_create(&file).unwrap(), made);
        assert_eq!(load(&file).unwrap(), Some(made));
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        assert_eq!(load(&file).unwrap_err().code(), "password-unsafe");
    }
}
