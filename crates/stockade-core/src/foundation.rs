//! The foundation image: the Dockerfile and assets embedded in the binary, the build arguments,
//! and the content hash that decides whether the image on the engine is current.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::ImageConfig;
use crate::context::{BuildContext, ContextFile};
use crate::hash::ContentHasher;

/// The embedded assets: (path in the build context, contents, mode).
pub const ASSETS: &[(&str, &[u8], u32)] = &[
    (
        "Dockerfile",
        include_bytes!("../../../assets/foundation/Dockerfile"),
        0o644,
    ),
    (
        "entrypoint.sh",
        include_bytes!("../../../assets/foundation/entrypoint.sh"),
        0o755,
    ),
    (
        "ssh-proxy",
        include_bytes!("../../../assets/foundation/ssh-proxy"),
        0o755,
    ),
];

/// The build argument that carries `[image] from`.
pub const FROM_ARG: &str = "STOCKADE_FROM";

/// Host proxy variables passed to builds and sandboxes. Not part of the content hash: a proxy
/// change does not change what gets built.
pub const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// Everything needed to build the foundation image, and its content hash.
#[derive(Debug, Clone)]
pub struct FoundationPlan {
    pub context: BuildContext,
    /// Build arguments that are part of the hash (today: the FROM image).
    pub build_args: BTreeMap<String, String>,
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read CA certificate {}: {source}", path.display())]
pub struct CaReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl FoundationPlan {
    /// Plan the foundation for the given image settings; reads the CA files (regular files
    /// only, under a size cap). A launch reads them once with the project's files and uses
    /// [`Self::with_certificates`] instead.
    pub fn new(image: &ImageConfig) -> Result<Self, CaReadError> {
        let mut certificates = Vec::with_capacity(image.ca_certificates.len());
        for path in &image.ca_certificates {
            let bytes = crate::fsread::read_outside(path, crate::fsread::FILE_CAP, "a CA file")
                .map_err(|e| CaReadError {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?
                .ok_or_else(|| CaReadError {
                    path: path.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })?;
            certificates.push((path.as_path(), bytes));
        }
        Ok(Self::from_parts(ASSETS, &image.from, &certificates))
    }

    /// Plan the foundation from CA files already read (the bytes the approval saw).
    pub fn with_certificates(
        image: &ImageConfig,
        read: &[crate::project_files::Referenced],
    ) -> Self {
        let certificates: Vec<(&Path, Vec<u8>)> = read
            .iter()
            .map(|r| (r.path.as_path(), r.bytes.clone()))
            .collect();
        Self::from_parts(ASSETS, &image.from, &certificates)
    }

    /// Plan from explicit parts (the assets are a parameter so tests can vary them).
    pub fn from_parts(
        assets: &[(&str, &[u8], u32)],
        from: &str,
        certificates: &[(&Path, Vec<u8>)],
    ) -> Self {
        let mut files: Vec<ContextFile> = assets
            .iter()
            .map(|(path, bytes, mode)| ContextFile::new(*path, bytes.to_vec(), *mode))
            .collect();
        files.push(ContextFile::dir("ca-certificates"));
        for (index, (path, bytes)) in certificates.iter().enumerate() {
            let stem = path
                .file_stem()
                .map(|s| crate::names::sanitize(&s.to_string_lossy(), 40))
                .unwrap_or_else(|| "ca".to_owned());
            // update-ca-certificates only picks up `*.crt`; the index keeps order and names unique.
            files.push(ContextFile::new(
                format!("ca-certificates/{index:02}-{stem}.crt"),
                bytes.clone(),
                0o644,
            ));
        }
        let context = BuildContext::new(files);
        let build_args = BTreeMap::from([(FROM_ARG.to_owned(), from.to_owned())]);

        let mut hasher = ContentHasher::new("stockade-foundation-v1");
        context.hash_into(&mut hasher);
        for (key, value) in &build_args {
            hasher.part(key.as_bytes()).part(value.as_bytes());
        }
        Self {
            context,
            build_args,
            hash: hasher.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(assets: &[(&str, &[u8], u32)], from: &str, ca: &[u8]) -> FoundationPlan {
        let certs = if ca.is_empty() {
            vec![]
        } else {
            vec![(Path::new("/etc/corp.pem"), ca.to_vec())]
        };
        FoundationPlan::from_parts(assets, from, &certs)
    }

    #[test]
    fn hash_is_stable() {
        let a = plan(ASSETS, "debian:bookworm-slim", b"");
        let b = plan(ASSETS, "debian:bookworm-slim", b"");
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.hash.len(), 64);
    }

    #[test]
    fn every_input_changes_the_hash() {
        let base = plan(ASSETS, "debian:bookworm-slim", b"CERT").hash;
        assert_ne!(base, plan(ASSETS, "mirror/debian:12", b"CERT").hash, "FROM");
        assert_ne!(
            base,
            plan(ASSETS, "debian:bookworm-slim", b"CERT2").hash,
            "CA"
        );
        assert_ne!(
            base,
            plan(ASSETS, "debian:bookworm-slim", b"").hash,
            "no CA"
        );
        for changed in 0..ASSETS.len() {
            let mut assets = ASSETS.to_vec();
            let mut bytes = assets[changed].1.to_vec();
            bytes.push(b'\n');
            assets[changed].1 = &bytes;
            assert_ne!(
                base,
                plan(&assets, "debian:bookworm-slim", b"CERT").hash,
                "asset {}",
                ASSETS[changed].0
            );
            let mut assets = ASSETS.to_vec();
            assets[changed].2 ^= 0o111;
            assert_ne!(
                base,
                plan(&assets, "debian:bookworm-slim", b"CERT").hash,
                "mode of {}",
                ASSETS[changed].0
            );
        }
    }

    #[test]
    fn ca_files_become_crt_files_in_the_context() {
        let p = plan(ASSETS, "x", b"CERT");
        let names: Vec<_> = p.context.files().iter().map(|f| f.path.as_str()).collect();
        assert!(names.contains(&"ca-certificates/00-corp.crt"), "{names:?}");
        assert!(names.contains(&"Dockerfile"));
        assert!(names.contains(&"entrypoint.sh"));
    }

    #[test]
    fn dockerfile_uses_the_from_argument() {
        let dockerfile = std::str::from_utf8(ASSETS[0].1).unwrap();
        assert!(dockerfile.contains(&format!("ARG {FROM_ARG}=")));
        assert!(dockerfile.contains(&format!("FROM ${{{FROM_ARG}}}")));
    }
}
