//! Cosign signatures of a published image, verified with the `sigstore` crate before the image
//! is pulled (no `cosign` binary). `[image] verify_signatures`:
//!
//! - `off`: not checked;
//! - `auto`: a signature that does not verify refuses the image; an unsigned image is pulled
//!   with one warning per run;
//! - `required`: an unsigned image is refused too.
//!
//! With `[image] cosign_public_key` the signature must verify with that key (mirrors that sign
//! with their own key). Without it, the release's keyless identity would be checked against the
//! Sigstore trust root; this build embeds no trust root, so a signed image's keyless signature
//! cannot be verified: `auto` warns and pulls, `required` refuses (docs/images.md).

use std::sync::atomic::{AtomicBool, Ordering};

use oci_client::secrets::RegistryAuth;
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::registry::{
    Auth, Certificate, CertificateEncoding, ClientConfig, ClientProtocol, OciReference,
};
use stockade_core::config::{ImageConfig, SignaturePolicy};

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
            ..Default::default()
        }
    }
}

/// Check `repository@digest`'s cosign signatures under the configured policy.
pub async fn check(
    ui: &Ui,
    image: &ImageConfig,
    registry: &Registry,
    auth: &RegistryAuth,
    repository: &str,
    digest: &str,
) -> Result<Signed, Error> {
    let policy = image.verify_signatures;
    if policy == SignaturePolicy::Off {
        return Ok(Signed::NotChecked("verify_signatures = \"off\"".to_owned()));
    }
    let layers = signature_layers(registry.config(), auth, repository, digest).await?;
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
    let Some(key_path) = &image.cosign_public_key else {
        // Keyless: the release identity needs the Sigstore trust root, not embedded here.
        let why = "its keyless signature cannot be verified: this build embeds no Sigstore \
                   trust root";
        return match policy {
            SignaturePolicy::Required => Err(Error::Refused(format!(
                "{why} (verify_signatures = \"required\"; set cosign_public_key to verify with a \
                 key): refused"
            ))),
            _ => {
                warn_once(ui, &format!("{repository}@{digest}: {why}; pulled anyway"));
                Ok(Signed::NotChecked(
                    "keyless verification unavailable".to_owned(),
                ))
            }
        };
    };
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
    let verifier = PublicKeyVerifier::try_from(&key).map_err(|e| {
        Error::Refused(format!(
            "{} is not a cosign public key: {e}",
            key_path.display()
        ))
    })?;
    let constraints: VerificationConstraintVec = vec![Box::new(verifier)];
    match sigstore::cosign::verify_constraints(&layers, constraints.iter()) {
        Ok(()) => Ok(Signed::Verified(format!("the key {}", key_path.display()))),
        Err(_) => Err(Error::Refused(format!(
            "its signature does not verify with the key {}: refused",
            key_path.display()
        ))),
    }
}

/// The image's signature layers that are about this digest.
async fn signature_layers(
    oci: ClientConfig,
    auth: &RegistryAuth,
    repository: &str,
    digest: &str,
) -> Result<Vec<SignatureLayer>, Error> {
    let mut client = ClientBuilder::default()
        .with_oci_client_config(oci)
        .build()
        .map_err(|e| Error::Unreachable(format!("cannot make a signature client: {e}")))?;
    let reference: OciReference = format!("{repository}@{digest}")
        .parse()
        .map_err(|e| Error::Refused(format!("not an image reference: {e}")))?;
    let auth = match auth {
        RegistryAuth::Anonymous => Auth::Anonymous,
        RegistryAuth::Basic(user, password) => Auth::Basic(user.clone(), password.clone()),
        RegistryAuth::Bearer(token) => Auth::Bearer(token.clone()),
    };
    let layers = client
        .trusted_signature_layers(&auth, &reference)
        .await
        .map_err(|e| Error::Unreachable(format!("cannot fetch its signatures: {e}")))?;
    Ok(layers
        .into_iter()
        .filter(|l| l.simple_signing.critical.image.docker_manifest_digest == digest)
        .collect())
}
