//! Keyless (Sigstore) verification of one cosign signature layer, as cosign 2 writes it in the
//! `sha256-<digest>.sig` tag: a simple-signing payload, its signature, the Fulcio certificate
//! that signed it and the Rekor bundle (the transparency log's signed entry timestamp, SET).
//!
//! Pure logic over bytes: the trust root and the identity policy are parameters, so the unit
//! tests below verify a recorded public-good signature offline (tests/fixtures/keyless).
//!
//! What is checked, in order (the first failure is the refusal):
//! 1. the Rekor bundle: its SET verifies with a Rekor key of the trust root that was valid at the
//!    entry's integrated time;
//! 2. the certificate chains to a Fulcio CA of the trust root, for code signing, at that
//!    integrated time (Fulcio certificates live ten minutes: the log's time, which the SET signs,
//!    is the signing time, as cosign does);
//! 3. the signature verifies over the payload with the certificate's key;
//! 4. the log entry is about this signature: a `hashedrekord` whose hash is the payload's, whose
//!    signature is this one and whose certificate is this one;
//! 5. the certificate's OIDC issuer and subject (SAN) satisfy the identity policy;
//! 6. the payload is a cosign image signature of the expected digest.
//!
//! Not checked: the certificate's embedded SCT (the CT log's promise); the Rekor SET is the
//! transparency evidence this verification relies on (docs/images.md).
//!
//! Why not the `sigstore` crate's own cosign path (`trusted_signature_layers` with a trust root):
//! in 0.15, for the bundle annotation cosign 2 writes, it verifies the SET but does not bind the
//! logged `hashedrekord` entry to this signature and certificate (its body check covers DSSE
//! entries only), so an entry logged for anything else would lend its time to this signature; and
//! a certificate that fails its chain is dropped silently rather than refused. The crate still
//! parses the bundle and verifies the signatures (`Bundle`, `CosignVerificationKey`); the chain is
//! rustls-webpki's.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use sigstore::cosign::bundle::{Bundle, SignedArtifactBundle};
use sigstore::crypto::{CosignVerificationKey, Signature};
use x509_cert::Certificate;
use x509_cert::der::asn1::Utf8StringRef;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode as _, pem::PemLabel as _};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// The public-good Sigstore trust root this build embeds (assets/sigstore/README.md).
pub const EMBEDDED_TRUSTED_ROOT: &[u8] =
    include_bytes!("../../../../assets/sigstore/trusted_root.json");

/// GitHub Actions' OIDC issuer.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// stockade's release workflow, up to the version: `…@refs/tags/v` + a release version.
pub const RELEASE_IDENTITY_PREFIX: &str =
    "https://github.com/stockade-dev/stockade/.github/workflows/release.yml@refs/tags/v";

/// Fulcio's OIDC issuer extension: v1 (raw bytes) and v2 (a DER UTF8String).
const ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
const ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER contents.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// The payload type cosign writes for an image signature.
const COSIGN_PAYLOAD_TYPE: &str = "cosign container image signature";

/// Who must have signed: the certificate's OIDC issuer and its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: Subject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Exactly this SAN (URI or email): the recorded fixture's signer, in the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    Exact(String),
    /// This prefix (ending in `@refs/tags/v`), then a release version (`1.2.3`, `1.2.3-rc.1`)
    /// and nothing else.
    ReleaseTag(String),
}

impl Identity {
    /// stockade's release workflow at any release tag.
    pub fn release() -> Self {
        Self {
            issuer: GITHUB_ISSUER.to_owned(),
            subject: Subject::ReleaseTag(RELEASE_IDENTITY_PREFIX.to_owned()),
        }
    }

    /// `https://…/release.yml@refs/tags/v*`, for messages.
    pub fn describe_subject(&self) -> String {
        match &self.subject {
            Subject::Exact(s) => s.clone(),
            Subject::ReleaseTag(prefix) => format!("{prefix}*"),
        }
    }

    pub fn matches_subject(&self, san: &str) -> bool {
        match &self.subject {
            Subject::Exact(s) => s == san,
            Subject::ReleaseTag(prefix) => san
                .strip_prefix(prefix.as_str())
                .is_some_and(is_release_version),
        }
    }
}

/// A release version as scripts/release.py accepts it (without the `v`): Semantic Versioning
/// 2.0.0 without build metadata. Nothing else: no `/`, no `..`, no trailing text.
pub fn is_release_version(text: &str) -> bool {
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (text, None),
    };
    let numeric = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return false;
    }
    pre.is_none_or(|pre| {
        pre.split('.').all(|ident| {
            !ident.is_empty()
                && ident
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (numeric(ident) || !ident.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

/// A validity window in Unix seconds; an open end is unbounded.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    start: Option<i64>,
    end: Option<i64>,
}

impl Window {
    fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

struct Authority {
    anchor: TrustAnchor<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    valid: Window,
}

struct Log {
    /// DER SubjectPublicKeyInfo.
    key: Vec<u8>,
    valid: Window,
}

/// The Fulcio CAs and Rekor keys of a Sigstore `trusted_root.json`.
pub struct TrustRoot {
    authorities: Vec<Authority>,
    /// By log id (hex), as the bundle names it.
    logs: BTreeMap<String, Log>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
    #[serde(default)]
    tlogs: Vec<RawLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    cert_chain: RawChain,
    #[serde(default)]
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct RawWindow {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    #[serde(default)]
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

fn unix_seconds(text: &str) -> Result<i64, String> {
    let time = humantime::parse_rfc3339(text).map_err(|e| format!("{text:?}: {e}"))?;
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{text:?} is before 1970"))?
        .as_secs();
    i64::try_from(seconds).map_err(|_| format!("{text:?} is out of range"))
}

fn window(raw: Option<&RawWindow>) -> Result<Window, String> {
    let Some(raw) = raw else {
        return Ok(Window::default());
    };
    Ok(Window {
        start: raw.start.as_deref().map(unix_seconds).transpose()?,
        end: raw.end.as_deref().map(unix_seconds).transpose()?,
    })
}

fn base64(what: &str, text: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(text)
        .map_err(|e| format!("{what} is not base64: {e}"))
}

impl TrustRoot {
    /// Parse a `trusted_root.json` (application/vnd.dev.sigstore.trustedroot+json). It must name
    /// at least one Fulcio CA and one Rekor key.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawRoot = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a Sigstore trusted root: {e}"))?;
        let mut authorities = Vec::new();
        for ca in &raw.certificate_authorities {
            // The chain runs from the issuing CA up to the root, which is the anchor.
            let mut chain = ca
                .cert_chain
                .certificates
                .iter()
                .map(|c| base64("a CA certificate", &c.raw_bytes).map(CertificateDer::from))
                .collect::<Result<Vec<_>, _>>()?;
            let Some(root) = chain.pop() else {
                return Err("a certificate authority has an empty chain".to_owned());
            };
            let anchor = webpki::anchor_from_trusted_cert(&root)
                .map_err(|e| format!("a CA certificate cannot be read: {e}"))?
                .to_owned();
            authorities.push(Authority {
                anchor,
                intermediates: chain,
                valid: window(ca.valid_for.as_ref())?,
            });
        }
        let mut logs = BTreeMap::new();
        for log in &raw.tlogs {
            let key = base64("a Rekor key", &log.public_key.raw_bytes)?;
            let id = hex::encode(base64("a Rekor log id", &log.log_id.key_id)?);
            logs.insert(
                id,
                Log {
                    key,
                    valid: window(log.public_key.valid_for.as_ref())?,
                },
            );
        }
        if authorities.is_empty() || logs.is_empty() {
            return Err("it names no Fulcio CA or no Rekor key".to_owned());
        }
        Ok(Self { authorities, logs })
    }

    /// The embedded public-good trust root.
    pub fn embedded() -> Result<Self, String> {
        Self::from_json(EMBEDDED_TRUSTED_ROOT)
    }
}

/// One signature layer's parts, as the registry holds them.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// The layer's bytes: the simple-signing payload.
    pub payload: &'a [u8],
    /// `dev.cosignproject.cosign/signature` (base64).
    pub signature: &'a str,
    /// `dev.sigstore.cosign/certificate` (PEM), if any.
    pub certificate: Option<&'a str>,
    /// `dev.sigstore.cosign/bundle` (JSON), if any.
    pub bundle: Option<&'a str>,
}

/// What a verified signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The certificate's subject (SAN).
    pub subject: String,
    pub issuer: String,
    /// The Rekor entry: when it was logged (Unix seconds) and where.
    pub integrated_time: i64,
    pub log_index: i64,
}

/// Why a signature is refused, in a user's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is not a keyless signature (no Fulcio certificate)")]
    NoCertificate,
    #[error(
        "it has no transparency-log entry (Rekor bundle), so its signing time cannot be proven"
    )]
    NoBundle,
    #[error("its certificate cannot be read: {0}")]
    Certificate(String),
    #[error("its transparency-log entry does not verify: {0}")]
    Log(String),
    #[error("its transparency-log entry is about another signature: {0}")]
    LogMismatch(&'static str),
    #[error(
        "its certificate does not chain to a Fulcio CA of the Sigstore trust root at its signing \
         time ({time}): {reason}"
    )]
    Chain { time: String, reason: String },
    #[error(
        "its signature does not verify with its certificate's key (payload or signature altered)"
    )]
    Signature,
    #[error("its certificate was issued through {found}, not {expected}")]
    Issuer { found: String, expected: String },
    #[error("signed by {found}, not by {expected}")]
    Identity { found: String, expected: String },
    #[error("its payload is not a cosign image signature: {0}")]
    Payload(String),
    #[error("it signs {signed}, not {expected}")]
    Digest { signed: String, expected: String },
}

/// Verify one keyless signature layer of the image `digest` against `root` and `identity`.
pub fn verify(
    parts: &Parts<'_>,
    digest: &str,
    root: &TrustRoot,
    identity: &Identity,
) -> Result<Verified, Refusal> {
    let pem = parts.certificate.ok_or(Refusal::NoCertificate)?;
    let bundle_json = parts.bundle.ok_or(Refusal::NoBundle)?;
    let cert_der = certificate_der(pem)?;
    let cert = Certificate::from_der(&cert_der).map_err(|e| Refusal::Certificate(e.to_string()))?;

    // 1. The Rekor SET, with a key that was the log's at that time.
    let bundle: Bundle =
        serde_json::from_str(bundle_json).map_err(|e| Refusal::Log(format!("unreadable: {e}")))?;
    let time = bundle.payload.integrated_time;
    let log = root.logs.get(&bundle.payload.log_id).ok_or_else(|| {
        Refusal::Log(format!(
            "it is from a log the trust root does not know ({})",
            bundle.payload.log_id
        ))
    })?;
    if !log.valid.contains(time) {
        return Err(Refusal::Log(format!(
            "the log's key was not valid at {}",
            show_time(time)
        )));
    }
    let key = CosignVerificationKey::try_from_der(&log.key).map_err(|e| {
        Refusal::Log(format!(
            "the trust root's key for this log is unusable: {e}"
        ))
    })?;
    let keys = BTreeMap::from([(bundle.payload.log_id.clone(), key)]);
    let artifact = serde_json::json!({
        "base64Signature": parts.signature,
        "cert": BASE64.encode(pem),
        "rekorBundle": bundle,
    });
    SignedArtifactBundle::new_verified(&artifact.to_string(), &keys).map_err(|_| {
        Refusal::Log("its signed entry timestamp (SET) is not the log's".to_owned())
    })?;

    // 2. The certificate chain, at the signing time.
    verify_chain(&cert_der, root, time)?;

    // 3. The signature over the payload, with the certificate's key.
    let cert_key =
        CosignVerificationKey::try_from(cert.tbs_certificate().subject_public_key_info())
            .map_err(|e| Refusal::Certificate(format!("its public key: {e}")))?;
    cert_key
        .verify_signature(
            Signature::Base64Encoded(parts.signature.as_bytes()),
            parts.payload,
        )
        .map_err(|_| Refusal::Signature)?;

    // 4. The log entry is about this payload, signature and certificate.
    log_entry_matches(&bundle.payload.body, parts, &cert_der)?;

    // 5. Who signed.
    let issuer = issuer(&cert)?;
    if issuer != identity.issuer {
        return Err(Refusal::Issuer {
            found: issuer,
            expected: identity.issuer.clone(),
        });
    }
    let subject = subject(&cert)?;
    if !identity.matches_subject(&subject) {
        return Err(Refusal::Identity {
            found: subject,
            expected: identity.describe_subject(),
        });
    }

    // 6. What was signed.
    let signed = signed_digest(parts.payload)?;
    if signed != digest {
        return Err(Refusal::Digest {
            signed,
            expected: digest.to_owned(),
        });
    }
    Ok(Verified {
        subject,
        issuer,
        integrated_time: time,
        log_index: bundle.payload.log_index,
    })
}

fn show_time(t: i64) -> String {
    u64::try_from(t)
        .map(|s| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// The one certificate of a PEM text, as DER.
fn certificate_der(pem: &str) -> Result<Vec<u8>, Refusal> {
    match x509_cert::der::pem::decode_vec(pem.trim().as_bytes()) {
        Ok((label, der)) if label == Certificate::PEM_LABEL => Ok(der),
        Ok((label, _)) => Err(Refusal::Certificate(format!(
            "it is a PEM {label}, not a CERTIFICATE"
        ))),
        Err(e) => Err(Refusal::Certificate(e.to_string())),
    }
}

/// The certificate chains, for code signing, to a Fulcio CA that was valid at `time`.
fn verify_chain(cert_der: &[u8], root: &TrustRoot, time: i64) -> Result<(), Refusal> {
    let chain_error = |reason: String| Refusal::Chain {
        time: show_time(time),
        reason,
    };
    let der = CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| chain_error(e.to_string()))?;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(time).map_err(|_| chain_error("a negative time".to_owned()))?,
    ));
    let mut last = "no Fulcio CA of the trust root was valid then".to_owned();
    for ca in root.authorities.iter().filter(|ca| ca.valid.contains(time)) {
        match cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            std::slice::from_ref(&ca.anchor),
            &ca.intermediates,
            at,
            webpki::KeyUsage::required(EKU_CODE_SIGNING),
            None,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(chain_error(last))
}

/// The Rekor entry's body (base64 JSON) is a `hashedrekord` of this payload, signature and
/// certificate.
fn log_entry_matches(body: &str, parts: &Parts<'_>, cert_der: &[u8]) -> Result<(), Refusal> {
    let body = BASE64
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .ok_or(Refusal::LogMismatch("its body is unreadable"))?;
    let text = |pointer: &str| body.pointer(pointer).and_then(serde_json::Value::as_str);
    if text("/kind") != Some("hashedrekord") || text("/apiVersion") != Some("0.0.1") {
        return Err(Refusal::LogMismatch("it is not a hashedrekord 0.0.1 entry"));
    }
    if text("/spec/data/hash/algorithm") != Some("sha256")
        || text("/spec/data/hash/value")
            != Some(hex::encode(Sha256::digest(parts.payload)).as_str())
    {
        return Err(Refusal::LogMismatch("it logs another payload"));
    }
    let logged_signature = text("/spec/signature/content").and_then(|s| BASE64.decode(s).ok());
    if logged_signature.is_none() || logged_signature != BASE64.decode(parts.signature).ok() {
        return Err(Refusal::LogMismatch("it logs another signature"));
    }
    let logged_cert = text("/spec/signature/publicKey/content")
        .and_then(|s| BASE64.decode(s).ok())
        .and_then(|pem| String::from_utf8(pem).ok())
        .and_then(|pem| certificate_der(&pem).ok());
    if logged_cert.as_deref() != Some(cert_der) {
        return Err(Refusal::LogMismatch("it logs another certificate"));
    }
    Ok(())
}

/// The OIDC issuer Fulcio recorded: the v2 extension (a UTF8String), else v1 (raw text). Both
/// present must agree.
fn issuer(cert: &Certificate) -> Result<String, Refusal> {
    let extensions = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or_default();
    let find = |oid: ObjectIdentifier| {
        extensions
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    };
    let v2 = find(ISSUER_V2)
        .map(|bytes| {
            Utf8StringRef::from_der(bytes)
                .map(|s| s.as_str().to_owned())
                .map_err(|e| Refusal::Certificate(format!("its issuer extension: {e}")))
        })
        .transpose()?;
    let v1 = find(ISSUER_V1)
        .map(|bytes| {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| Refusal::Certificate("its issuer extension is not text".to_owned()))
        })
        .transpose()?;
    match (v2, v1) {
        (Some(a), Some(b)) if a != b => Err(Refusal::Certificate(format!(
            "it names two OIDC issuers ({a}, {b})"
        ))),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(Refusal::Certificate(
            "it names no OIDC issuer (not a Fulcio certificate)".to_owned(),
        )),
    }
}

/// The certificate's one subject: its only SAN, a URI or an email address.
fn subject(cert: &Certificate) -> Result<String, Refusal> {
    let (_, san) = cert
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .map_err(|e| Refusal::Certificate(format!("its subject alternative name: {e}")))?
        .ok_or_else(|| Refusal::Certificate("it has no subject alternative name".to_owned()))?;
    match san.0.as_slice() {
        [GeneralName::UniformResourceIdentifier(uri)] => Ok(uri.to_string()),
        [GeneralName::Rfc822Name(email)] => Ok(email.to_string()),
        _ => Err(Refusal::Certificate(
            "its subject is not one URI or email address".to_owned(),
        )),
    }
}

/// The digest a simple-signing payload signs.
pub fn signed_digest(payload: &[u8]) -> Result<String, Refusal> {
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| Refusal::Payload(e.to_string()))?;
    let text = |pointer: &str| value.pointer(pointer).and_then(serde_json::Value::as_str);
    if text("/critical/type") != Some(COSIGN_PAYLOAD_TYPE) {
        return Err(Refusal::Payload(format!(
            "its type is not {COSIGN_PAYLOAD_TYPE:?}"
        )));
    }
    text("/critical/image/docker-manifest-digest")
        .map(str::to_owned)
        .ok_or_else(|| Refusal::Payload("it names no image digest".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = include_bytes!("../../tests/fixtures/keyless/payload.json");
    const MANIFEST: &[u8] = include_bytes!("../../tests/fixtures/keyless/signature-manifest.json");
    /// The image the recorded signature signs.
    const DIGEST: &str = "sha256:c05263d2ff654c3a94243662440913f045075d59c436e2c69e9145ec2b87a321";
    const SAN: &str = "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30";

    struct Recorded {
        signature: String,
        certificate: String,
        bundle: String,
    }

    fn recorded() -> Recorded {
        let manifest: serde_json::Value = serde_json::from_slice(MANIFEST).unwrap();
        let annotations = &manifest["layers"][0]["annotations"];
        let get = |key: &str| annotations[key].as_str().unwrap().to_owned();
        Recorded {
            signature: get("dev.cosignproject.cosign/signature"),
            certificate: get("dev.sigstore.cosign/certificate"),
            bundle: get("dev.sigstore.cosign/bundle"),
        }
    }

    impl Recorded {
        fn parts(&self) -> Parts<'_> {
            Parts {
                payload: PAYLOAD,
                signature: &self.signature,
                certificate: Some(&self.certificate),
                bundle: Some(&self.bundle),
            }
        }
    }

    fn own_identity() -> Identity {
        Identity {
            issuer: GITHUB_ISSUER.to_owned(),
            subject: Subject::Exact(SAN.to_owned()),
        }
    }

    fn embedded() -> TrustRoot {
        TrustRoot::embedded().unwrap()
    }

    /// Why `parts` of the image DIGEST is refused under its own identity and the embedded root.
    fn refused(parts: Parts<'_>) -> Refusal {
        verify(&parts, DIGEST, &embedded(), &own_identity()).unwrap_err()
    }

    #[test]
    fn the_fixture_is_the_recorded_layer() {
        // The payload was rebuilt from the recorded signature's text: its digest is the layer's.
        let manifest: serde_json::Value = serde_json::from_slice(MANIFEST).unwrap();
        assert_eq!(
            manifest["layers"][0]["digest"].as_str().unwrap(),
            format!("sha256:{}", hex::encode(Sha256::digest(PAYLOAD)))
        );
    }

    #[test]
    fn a_recorded_signature_verifies_under_its_own_identity() {
        let r = recorded();
        let verified = verify(&r.parts(), DIGEST, &embedded(), &own_identity()).unwrap();
        assert_eq!(
            verified,
            Verified {
                subject: SAN.to_owned(),
                issuer: GITHUB_ISSUER.to_owned(),
                integrated_time: 1_772_216_446,
                log_index: 1_004_096_555,
            }
        );
        // Its release-tag pattern (that repository's workflow at any v* tag) accepts it too.
        let pattern = Identity {
            issuer: GITHUB_ISSUER.to_owned(),
            subject: Subject::ReleaseTag(
                "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v".to_owned(),
            ),
        };
        assert!(verify(&r.parts(), DIGEST, &embedded(), &pattern).is_ok());
    }

    #[test]
    fn the_expired_certificate_is_checked_at_the_logged_time() {
        // The certificate lived ten minutes in February 2026: the chain only holds at the time
        // Rekor logged the signature, which is the time verify uses.
        let r = recorded();
        let der = certificate_der(&r.certificate).unwrap();
        let root = embedded();
        assert!(verify_chain(&der, &root, 1_772_216_446).is_ok());
        let later = 1_772_216_446 + 3600;
        let err = verify_chain(&der, &root, later).unwrap_err();
        assert!(
            matches!(&err, Refusal::Chain { reason, .. } if reason.contains("Expired")),
            "{err}"
        );
    }

    #[test]
    fn the_release_identity_refuses_another_workflow() {
        let r = recorded();
        let err = verify(&r.parts(), DIGEST, &embedded(), &Identity::release()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "signed by {SAN}, not by https://github.com/stockade-dev/stockade/.github/workflows/release.yml@refs/tags/v*"
            )
        );
    }

    #[test]
    fn another_issuer_is_refused() {
        let r = recorded();
        let identity = Identity {
            issuer: "https://accounts.google.com".to_owned(),
            subject: Subject::Exact(SAN.to_owned()),
        };
        let err = verify(&r.parts(), DIGEST, &embedded(), &identity).unwrap_err();
        assert_eq!(
            err.to_string(),
            "its certificate was issued through https://token.actions.githubusercontent.com, not \
             https://accounts.google.com"
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let r = recorded();
        // The same payload naming another image.
        let other = String::from_utf8(PAYLOAD.to_vec())
            .unwrap()
            .replace("c05263d2", "c05263d3");
        let parts = Parts {
            payload: other.as_bytes(),
            ..r.parts()
        };
        let other_digest = DIGEST.replace("c05263d2", "c05263d3");
        let err = verify(&parts, &other_digest, &embedded(), &own_identity()).unwrap_err();
        assert_eq!(err, Refusal::Signature);
        // And the untouched signature does not sign another digest.
        let err = verify(&r.parts(), &other_digest, &embedded(), &own_identity()).unwrap_err();
        assert_eq!(
            err,
            Refusal::Digest {
                signed: DIGEST.to_owned(),
                expected: other_digest
            }
        );
    }

    #[test]
    fn a_tampered_signature_is_refused() {
        let r = recorded();
        let mut bytes = BASE64.decode(&r.signature).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let signature = BASE64.encode(bytes);
        let parts = Parts {
            signature: &signature,
            ..r.parts()
        };
        assert_eq!(refused(parts), Refusal::Signature);
    }

    #[test]
    fn a_tampered_log_entry_is_refused() {
        let r = recorded();
        // Another integrated time: the SET no longer verifies.
        let bundle = r.bundle.replace("1772216446", "1772216447");
        let parts = Parts {
            bundle: Some(&bundle),
            ..r.parts()
        };
        assert_eq!(
            refused(parts),
            Refusal::Log("its signed entry timestamp (SET) is not the log's".to_owned())
        );
        // No bundle, no certificate: not a keyless signature this verification accepts.
        let no_bundle = Parts {
            bundle: None,
            ..r.parts()
        };
        assert_eq!(refused(no_bundle), Refusal::NoBundle);
        let no_certificate = Parts {
            certificate: None,
            ..r.parts()
        };
        assert_eq!(refused(no_certificate), Refusal::NoCertificate);
    }

    /// The embedded trusted root, changed by `edit`.
    fn edited_root(edit: impl FnOnce(&mut serde_json::Value)) -> TrustRoot {
        let mut json: serde_json::Value = serde_json::from_slice(EMBEDDED_TRUSTED_ROOT).unwrap();
        edit(&mut json);
        TrustRoot::from_json(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_trust_root_without_its_fulcio_ca_refuses_it() {
        let r = recorded();
        // Without the current Fulcio CA (the second; its intermediate issued the certificate),
        // and with the 2021 CA's validity opened so that the chain is really tried against it.
        let root = edited_root(|json| {
            let cas = json["certificateAuthorities"].as_array_mut().unwrap();
            cas.remove(1);
            cas[0].as_object_mut().unwrap().remove("validFor");
        });
        let err = verify(&r.parts(), DIGEST, &root, &own_identity()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "its certificate does not chain to a Fulcio CA of the Sigstore trust root at its \
             signing time (2026-02-27T18:20:46Z): UnknownIssuer"
        );
        // Only the 2021 CA, as published (valid until 2022): none was valid then.
        let root = edited_root(|json| {
            json["certificateAuthorities"]
                .as_array_mut()
                .unwrap()
                .remove(1);
        });
        let err = verify(&r.parts(), DIGEST, &root, &own_identity()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "its certificate does not chain to a Fulcio CA of the Sigstore trust root at its \
             signing time (2026-02-27T18:20:46Z): no Fulcio CA of the trust root was valid then"
        );
        // With the 2021 CA dropped instead, the current one still verifies it.
        let root = edited_root(|json| {
            json["certificateAuthorities"]
                .as_array_mut()
                .unwrap()
                .remove(0);
        });
        assert!(verify(&r.parts(), DIGEST, &root, &own_identity()).is_ok());
    }

    #[test]
    fn a_trust_root_without_its_rekor_log_refuses_it() {
        let r = recorded();
        // Only the Rekor v2 log kept: the v1 log that logged the signature is unknown.
        let root = edited_root(|json| {
            json["tlogs"].as_array_mut().unwrap().remove(0);
        });
        let err = verify(&r.parts(), DIGEST, &root, &own_identity()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "its transparency-log entry does not verify: it is from a log the trust root does not \
             know (c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d)"
        );
    }

    #[test]
    fn the_embedded_root_is_the_public_good_instance() {
        let root = embedded();
        assert_eq!(root.authorities.len(), 2);
        assert!(
            root.logs
                .contains_key("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
        );
        assert!(TrustRoot::from_json(b"{}").is_err());
        assert!(TrustRoot::from_json(b"not json").is_err());
    }

    #[test]
    fn the_release_identity_accepts_release_tags_only() {
        let release = Identity::release();
        let with = |rest: &str| format!("{RELEASE_IDENTITY_PREFIX}{rest}");
        for ok in [
            "0.1.0",
            "1.2.3",
            "10.20.30",
            "1.2.3-rc.1",
            "1.0.0-alpha-1.x",
        ] {
            assert!(release.matches_subject(&with(ok)), "{ok}");
        }
        let repo = "https://github.com/stockade-dev/stockade/.github/workflows";
        for refused in [
            // Branches and other refs.
            format!("{repo}/release.yml@refs/heads/main"),
            format!("{repo}/release.yml@refs/heads/v1.2.3"),
            format!("{repo}/release.yml@refs/pull/1/merge"),
            // Other repositories, owners and workflow files.
            "https://github.com/stockade-dev/stockade-fork/.github/workflows/release.yml@refs/tags/v1.2.3".to_owned(),
            "https://github.com/evil/stockade/.github/workflows/release.yml@refs/tags/v1.2.3".to_owned(),
            format!("{repo}/release.yaml@refs/tags/v1.2.3"),
            format!("{repo}/ci.yml@refs/tags/v1.2.3"),
            format!("{repo}/x/release.yml@refs/tags/v1.2.3"),
            // Path and pattern tricks.
            with("1/../x"),
            with("1.2.3/../../x"),
            with("1.2.3/x"),
            with("1.2.3 "),
            with("1.2.3@refs/heads/main"),
            with("1.2.3+build.1"),
            with(""),
            with("1"),
            with("1.2"),
            with("1.2.3.4"),
            with("01.2.3"),
            with("1.2.3-"),
            with("1.2.3-rc..1"),
            with("1.2.3-01"),
            with("a.b.c"),
            format!("{}v1.2.3", RELEASE_IDENTITY_PREFIX.to_uppercase()),
            "http://github.com/stockade-dev/stockade/.github/workflows/release.yml@refs/tags/v1.2.3".to_owned(),
            format!("{repo}/release.yml@refs/tags/1.2.3"),
        ] {
            assert!(!release.matches_subject(&refused), "{refused}");
        }
        assert_eq!(
            release.describe_subject(),
            "https://github.com/stockade-dev/stockade/.github/workflows/release.yml@refs/tags/v*"
        );
    }
}
