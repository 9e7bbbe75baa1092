//! Cosign signatures of a published image, verified with the `sigstore` crate before the image
//! is pulled (no `cosign` binary). `[image] verify_signatures`:
//!
//! - `off`: not checked;
//! - `auto`: a signature that does not verify refuses the image; an unsigned image is pulled
//!   with one warning per run;
//! - `required`: an unsigned image is refused too.
//!
//! With `[image] cosign_public_key` the signature must verify with that key (mirrors that sign
//! with their own key). Without it, the signature must be a keyless one by stockade's release
//! workflow (`keyless`), verified against the Sigstore trust root: the one embedded in this build,
//! or a fresher one when Sigstore's TUF repository answers within a few seconds. Only when no
//! trust root can be had does `auto` warn and pull while `required` refuses (docs/images.md).
//!
//! The signatures are read from the registry as cosign 2 writes them: the `sha256-<hex>.sig` tag
//! next to the image, one simple-signing layer per signature.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciManifest;
use oci_client::secrets::RegistryAuth;
use sha2::{Digest as _, Sha256};
use sigstore::crypto::{CosignVerificationKey, Signature};
use stockade_core::config::{ImageConfig, SignaturePolicy};

use super::keyless::{self, Identity, TrustRoot};
use super::pull::error_chain;
use crate::ui::Ui;

/// What the signature check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// Verified: how (`the key /home/ada/.config/stockade/cosign.pub`).
    Verified(String),
    /// No signature, and the policy let it through (`auto`).
    Unsigned,
    /// Not checked: why (`verify_signatures = "off"`).
    NotChecked(String),
}

impl Signed {
    /// For the `io.stockade.signature` label: `verified with the key …`, `unsigned`, `not
    /// checked (…)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Verified(how) => format!("verified with {how}"),
            Self::Unsigned => "unsigned".to_owned(),
            Self::NotChecked(why) => format!("not checked ({why})"),
        }
    }
}

#[derive(Debug)]
pub enum Error {
    /// The image is refused: the next registry is tried.
    Refused(String),
    /// The signatures could not be fetched: the attempt is retried.
    Unreachable(String),
}

/// The "unsigned" warning is printed once per run.
static WARNED: AtomicBool = AtomicBool::new(false);

fn warn_once(ui: &Ui, message: &str) {
    if !WARNED.swap(true, Ordering::Relaxed) {
        ui.warn(message);
    }
}

/// How the signature client reaches the registries: plain HTTP for these hosts, these extra
/// CA certificates (PEM) trusted.
pub struct Registry {
    pub insecure: Vec<String>,
    pub certificates: Vec<Vec<u8>>,
}

impl Registry {
    fn config(&self) -> ClientConfig {
        ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.insecure.clone()),
            extra_root_certificates: self
                .certificates
                .iter()
                .map(|data| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: data.clone(),
                })
                .collect(),
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(30)),
            ..Default::default()
        }
    }
}

/// Check `repository@digest`'s cosign signatures under the configured policy. A refreshed
/// Sigstore trust root is cached under `cache` (`~/.cache/stockade/sigstore`).
pub async fn check(
    ui: &Ui,
    image: &ImageConfig,
    registry: &Registry,
    auth: &RegistryAuth,
    repository: &str,
    digest: &str,
    cache: &Path,
) -> Result<Signed, Error> {
    let policy = image.verify_signatures;
    if policy == SignaturePolicy::Off {
        return Ok(Signed::NotChecked("verify_signatures = \"off\"".to_owned()));
    }
    let layers = signature_layers(registry, auth, repository, digest).await?;
    if layers.is_empty() {
        return match policy {
            SignaturePolicy::Required => Err(Error::Refused(
                "the image has no cosign signature (verify_signatures = \"required\"): refused"
                    .to_owned(),
            )),
            _ => {
                warn_once(
                    ui,
                    &format!(
                        "{repository}@{digest} has no cosign signature; pulled anyway \
                         (verify_signatures = \"auto\"; \"required\" refuses unsigned images)"
                    ),
                );
                Ok(Signed::Unsigned)
            }
        };
    }
    if let Some(key_path) = &image.cosign_public_key {
        return verify_with_key(key_path, &layers, digest);
    }
    let root = match trust_root(ui, cache).await {
        Ok(root) => root,
        Err(why) => {
            let why = format!(
                "its keyless signature cannot be verified: no usable Sigstore trust root ({why})"
            );
            return match policy {
                SignaturePolicy::Required => Err(Error::Refused(format!(
                    "{why} (verify_signatures = \"required\"; set cosign_public_key to verify \
                     with a key): refused"
                ))),
                _ => {
                    warn_once(ui, &format!("{repository}@{digest}: {why}; pulled anyway"));
                    Ok(Signed::NotChecked("no Sigstore trust root".to_owned()))
                }
            };
        }
    };
    verify_keyless(&layers, digest, &root, &Identity::release())
}

/// One signature: a keyless one by `identity` verifies; otherwise every layer's refusal, each
/// once.
fn verify_keyless(
    layers: &[Layer],
    digest: &str,
    root: &TrustRoot,
    identity: &Identity,
) -> Result<Signed, Error> {
    let mut refusals: Vec<String> = Vec::new();
    for layer in layers {
        let refusal = match layer.parts() {
            Some(parts) => match keyless::verify(&parts, digest, root, identity) {
                Ok(verified) => {
                    return Ok(Signed::Verified(format!(
                        "the release identity {} (Rekor entry {})",
                        verified.subject, verified.log_index
                    )));
                }
                Err(refusal) => refusal.to_string(),
            },
            None => "a signature layer has no signature".to_owned(),
        };
        if !refusals.contains(&refusal) {
            refusals.push(refusal);
        }
    }
    Err(Error::Refused(format!(
        "its signature is not stockade's release signature: {} (a mirror that signs with its own \
         key needs `[image] cosign_public_key`): refused",
        refusals.join("; ")
    )))
}

fn verify_with_key(key_path: &Path, layers: &[Layer], digest: &str) -> Result<Signed, Error> {
    let key = stockade_core::fsread::read_outside(
        key_path,
        stockade_core::fsread::FILE_CAP,
        "the cosign public key",
    )
    .map_err(|e| Error::Refused(e.to_string()))?
    .ok_or_else(|| {
        Error::Refused(format!(
            "the cosign public key {} does not exist",
            key_path.display()
        ))
    })?;
    let key = CosignVerificationKey::try_from_pem(&key).map_err(|e| {
        Error::Refused(format!(
            "{} is not a cosign public key: {e}",
            key_path.display()
        ))
    })?;
    let signed = layers.iter().any(|layer| {
        layer.signature().is_some_and(|signature| {
            key.verify_signature(
                Signature::Base64Encoded(signature.as_bytes()),
                &layer.payload,
            )
            .is_ok()
                && keyless::signed_digest(&layer.payload).is_ok_and(|d| d == digest)
        })
    });
    if signed {
        Ok(Signed::Verified(format!("the key {}", key_path.display())))
    } else {
        Err(Error::Refused(format!(
            "its signature does not verify with the key {}: refused",
            key_path.display()
        )))
    }
}

/// How long the trust root's refresh may take before the embedded one is used.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// The trust root of this run: loaded (and refreshed) once.
static TRUST_ROOT: OnceLock<Result<Arc<TrustRoot>, String>> = OnceLock::new();

async fn trust_root(ui: &Ui, cache: &Path) -> Result<Arc<TrustRoot>, String> {
    if let Some(root) = TRUST_ROOT.get() {
        return root.clone();
    }
    let (root, which) = load_trust_root(cache).await;
    ui.detail(&format!("Sigstore trust root: {which}"));
    TRUST_ROOT.get_or_init(|| root.map(Arc::new)).clone()
}

/// Refresh the trust root through Sigstore's TUF repository (bounded by REFRESH_TIMEOUT), into
/// `cache/sigstore/trusted_root.json`; else the embedded one. Also says which one it is.
async fn load_trust_root(cache: &Path) -> (Result<TrustRoot, String>, String) {
    let dir = cache.join("sigstore");
    let refreshed = match std::fs::create_dir_all(&dir) {
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
        Ok(()) => match tokio::time::timeout(
            REFRESH_TIMEOUT,
            sigstore::trust::sigstore::SigstoreTrustRoot::new(Some(&dir)),
        )
        .await
        {
            Err(_) => Err(format!("no answer within {} s", REFRESH_TIMEOUT.as_secs())),
            Ok(Err(e)) => Err(error_chain(&e)),
            // TUF verified this file before writing it.
            Ok(Ok(_)) => stockade_core::fsread::read_outside(
                &dir.join("trusted_root.json"),
                stockade_core::fsread::FILE_CAP,
                "the Sigstore trust root",
            )
            .map_err(|e| e.to_string())
            .and_then(|bytes| bytes.ok_or_else(|| "TUF wrote no trusted_root.json".to_owned()))
            .and_then(|bytes| TrustRoot::from_json(&bytes)),
        },
    };
    match refreshed {
        Ok(root) => (
            Ok(root),
            format!(
                "refreshed from Sigstore's TUF repository (cached in {})",
                dir.display()
            ),
        ),
        Err(why) => (
            TrustRoot::embedded(),
            format!(
                "the one embedded in this build (the refresh from Sigstore's TUF repository failed: {why})"
            ),
        ),
    }
}

/// The media type of a cosign simple-signing layer.
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// A signature payload is a few hundred bytes; more is not a signature.
const PAYLOAD_CAP: i64 = 1 << 20;

/// One layer of the signature image: the payload and its annotations.
struct Layer {
    payload: Vec<u8>,
    annotations: BTreeMap<String, String>,
}

impl Layer {
    fn signature(&self) -> Option<&str> {
        self.annotations
            .get("dev.cosignproject.cosign/signature")
            .map(String::as_str)
    }

    fn parts(&self) -> Option<keyless::Parts<'_>> {
        Some(keyless::Parts {
            payload: &self.payload,
            signature: self.signature()?,
            certificate: self
                .annotations
                .get("dev.sigstore.cosign/certificate")
                .map(String::as_str),
            bundle: self
                .annotations
                .get("dev.sigstore.cosign/bundle")
                .map(String::as_str),
        })
    }
}

/// No signature tag: the registry does not know that manifest.
fn not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}

/// The simple-signing layers of `repository@digest`'s signature tag (none: unsigned).
async fn signature_layers(
    registry: &Registry,
    auth: &RegistryAuth,
    repository: &str,
    digest: &str,
) -> Result<Vec<Layer>, Error> {
    let client = oci_client::Client::new(registry.config());
    let tag = format!("{repository}:{}.sig", digest.replace(':', "-"));
    let reference: oci_client::Reference = tag
        .parse()
        .map_err(|e| Error::Refused(format!("not an image reference: {e}")))?;
    let manifest = match client.pull_manifest(&reference, auth).await {
        Ok((OciManifest::Image(manifest), _)) => manifest,
        Ok((OciManifest::ImageIndex(_), _)) => {
            return Err(Error::Refused(format!(
                "its signature tag {tag} holds an image index, not a cosign signature: refused"
            )));
        }
        Err(e) if not_found(&e) => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Unreachable(format!(
                "cannot fetch its signatures ({tag}): {}",
                error_chain(&e)
            )));
        }
    };
    let mut layers = Vec::new();
    for descriptor in manifest
        .layers
        .iter()
        .filter(|d| d.media_type == SIMPLE_SIGNING)
    {
        if !(0..=PAYLOAD_CAP).contains(&descriptor.size) {
            return Err(Error::Refused(format!(
                "a signature layer of {tag} is {} bytes, not a signature: refused",
                descriptor.size
            )));
        }
        let mut payload = Vec::new();
        client
            .pull_blob(&reference, descriptor, &mut payload)
            .await
            .map_err(|e| {
                Error::Unreachable(format!(
                    "cannot fetch its signature {}: {}",
                    descriptor.digest,
                    error_chain(&e)
                ))
            })?;
        if format!("sha256:{}", hex::encode(Sha256::digest(&payload))) != descriptor.digest {
            return Err(Error::Refused(format!(
                "a signature layer of {tag} does not match its digest {}: refused",
                descriptor.digest
            )));
        }
        layers.push(Layer {
            payload,
            annotations: descriptor.annotations.clone().unwrap_or_default(),
        });
    }
    Ok(layers)
}
