//! Pulling a published image (`<prefix>/<name>:<version>`, pinned by digest) from the first of
//! `[image] registries` that serves it: resolve the tag's manifest digest and refuse a tag that
//! names another digest (before anything is pulled), check the cosign signature, then have the
//! engine pull `repository@sha256:…`. Each registry gets [`ATTEMPTS`] attempts with exponential
//! backoff for transient failures; a refusal (wrong digest, bad signature) moves on at once.
//! `-v` shows each attempt and each failover. The name and pin are parameters: the foundation
//! and the full image use the same code.

use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use stockade_core::config::ImageConfig;
use stockade_core::published::Published;
use stockade_engine::{Engine, RegistryCredentials};

use super::credentials;
use super::progress::PullView;
use super::signature::{self, Signed};
use crate::context::Context;
use crate::exit::CliError;
use crate::ui::seconds;

/// Attempts per registry before the next one is tried.
pub const ATTEMPTS: u32 = 3;
/// The wait after the first failed attempt; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// A published image on the engine.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The registry prefix it came from.
    pub prefix: String,
    /// `repository@sha256:…`, as the engine pulled it.
    pub reference: String,
    pub digest: String,
    /// The image's ID on the engine.
    pub id: String,
    pub signature: Signed,
}

/// Why one registry did not serve the image.
#[derive(Debug, Clone)]
pub struct RegistryError {
    /// `<prefix>/<name>:<version>`.
    pub image: String,
    pub error: String,
}

/// Every registry failed.
#[derive(Debug, Clone)]
pub struct PullFailed {
    pub errors: Vec<RegistryError>,
}

impl PullFailed {
    /// `R1: why; R2: why`, for the one line `auto` prints before it builds.
    pub fn one_line(&self) -> String {
        self.errors
            .iter()
            .map(|e| format!("{}: {}", e.image, e.error))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The error of `source = "pull"`: every registry and its error.
    pub fn into_error(self, published: &Published) -> CliError {
        let mut message = format!(
            "cannot pull the published {} image from any registry:",
            published.name
        );
        for e in &self.errors {
            message.push_str(&format!("\n  - {}: {}", e.image, e.error));
        }
        CliError::refused(
            "pull-failed",
            message,
            Some(
                "check that the registries are reachable (`[image] registries`) and serve this \
                 version, or set `[image] source = \"build\"` (or \"auto\") to build the image \
                 locally",
            ),
        )
    }
}

/// How one attempt failed.
enum Failure {
    /// Transient (the registry or the engine did not answer): try again.
    Retry(String),
    /// The registry answered, and the answer is refused (wrong digest, bad signature, no such
    /// tag): the next registry.
    Refuse(String),
}

/// Pull `published` from the first registry that serves it with its pin.
pub async fn pull_published(
    engine: &Engine,
    ctx: &Context,
    image: &ImageConfig,
    certificates: &[(String, Vec<u8>)],
    published: &Published,
) -> Result<Pulled, PullFailed> {
    let prefixes = image.registries();
    let ui = &ctx.ui;
    let mut errors = Vec::new();
    for (index, prefix) in prefixes.iter().enumerate() {
        let tagged = published.tagged(prefix);
        let host = credentials::registry_host(prefix);
        let creds = credentials::for_host(&ctx.identity.home, &host);
        let mut attempt = 1;
        let outcome = loop {
            ui.detail(&format!("pull {tagged}: attempt {attempt}/{ATTEMPTS}"));
            let result = attempt_pull(
                engine,
                ctx,
                image,
                certificates,
                published,
                prefix,
                &prefixes,
                creds.clone(),
            )
            .await;
            match result {
                Ok(pulled) => break Ok(pulled),
                Err(Failure::Refuse(why)) => break Err(why),
                Err(Failure::Retry(why)) if attempt < ATTEMPTS => {
                    let wait = FIRST_BACKOFF * 2u32.pow(attempt - 1);
                    ui.detail(&format!(
                        "pull {tagged}: attempt {attempt} failed: {why}; retrying in {}",
                        seconds(wait)
                    ));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(Failure::Retry(why)) => break Err(why),
            }
        };
        match outcome {
            Ok(pulled) => return Ok(pulled),
            Err(why) => {
                match prefixes.get(index + 1) {
                    Some(next) => ui.detail(&format!(
                        "pull {tagged} failed: {why}; failing over to {}",
                        published.tagged(next)
                    )),
                    None => ui.detail(&format!("pull {tagged} failed: {why}")),
                }
                errors.push(RegistryError {
                    image: tagged,
                    error: why,
                });
            }
        }
    }
    Err(PullFailed { errors })
}

/// One attempt at one registry: the tag's digest, the signature, the engine's pull by digest.
#[allow(clippy::too_many_arguments)]
async fn attempt_pull(
    engine: &Engine,
    ctx: &Context,
    image: &ImageConfig,
    certificates: &[(String, Vec<u8>)],
    published: &Published,
    prefix: &str,
    prefixes: &[String],
    creds: Option<RegistryCredentials>,
) -> Result<Pulled, Failure> {
    let tagged = published.tagged(prefix);
    let reference: oci_client::Reference = tagged
        .parse()
        .map_err(|e| Failure::Refuse(format!("not an image reference: {e}")))?;
    let auth = registry_auth(creds.as_ref());
    let client = oci_client::Client::new(client_config(prefixes, certificates));
    let digest = client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .map_err(|e| classify(&e))?;
    if digest != published.pin {
        return Err(Failure::Refuse(format!(
            "the tag names {digest}, not {} (the pin from {}): refused before pulling",
            published.pin, published.pin_source
        )));
    }
    let repository = published.repository(prefix);
    let registry = signature::Registry {
        insecure: insecure_hosts(prefixes),
        certificates: certificates.iter().map(|(_, pem)| pem.clone()).collect(),
    };
    let signature = signature::check(
        &ctx.ui,
        image,
        &registry,
        &auth,
        &repository,
        &published.pin,
        &ctx.dirs.cache,
    )
    .await
    .map_err(|e| match e {
        signature::Error::Refused(why) => Failure::Refuse(why),
        signature::Error::Unreachable(why) => Failure::Retry(why),
    })?;

    let pinned = published.pinned_reference(prefix);
    let mut view = PullView::new(&ctx.ui, &pinned);
    let pulled = engine
        .pull_with_progress(&pinned, creds, |progress| view.update(progress))
        .await;
    view.finish();
    pulled.map_err(|e| Failure::Retry(e.to_string()))?;
    let info = engine
        .inspect_image(&pinned)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?
        .ok_or_else(|| Failure::Retry(format!("the engine has no {pinned} after pulling it")))?;
    let verified = match &signature {
        Signed::Verified(how) => format!(", signature verified with {how}"),
        _ => String::new(),
    };
    ctx.ui.success(&format!(
        "Pulled {tagged} at {}{verified}",
        short_digest(&published.pin)
    ));
    Ok(Pulled {
        prefix: prefix.to_owned(),
        reference: pinned,
        digest,
        id: info.id,
        signature,
    })
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

/// The registry client's settings: plain HTTP for loopback registries (as the engine's own
/// default insecure range), and the user's extra CA certificates trusted (a TLS proxy).
pub fn client_config(prefixes: &[String], certificates: &[(String, Vec<u8>)]) -> ClientConfig {
    ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure_hosts(prefixes)),
        extra_root_certificates: certificates
            .iter()
            .map(|(_, bytes)| Certificate {
                encoding: CertificateEncoding::Pem,
                data: bytes.clone(),
            })
            .collect(),
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    }
}

/// The registries' hosts that are reached over plain HTTP (loopback).
fn insecure_hosts(prefixes: &[String]) -> Vec<String> {
    prefixes
        .iter()
        .map(|p| credentials::registry_host(p))
        .filter(|h| credentials::is_loopback(h))
        .collect()
}

pub fn registry_auth(creds: Option<&RegistryCredentials>) -> RegistryAuth {
    match creds {
        Some(RegistryCredentials {
            username: Some(user),
            password: Some(password),
            ..
        }) => RegistryAuth::Basic(user.clone(), password.clone()),
        Some(RegistryCredentials {
            identity_token: Some(token),
            ..
        }) => RegistryAuth::Bearer(token.clone()),
        _ => RegistryAuth::Anonymous,
    }
}

/// A registry client error: transient (no answer, a server error, too many requests) or final.
fn classify(e: &OciDistributionError) -> Failure {
    let text = error_chain(e);
    match e {
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => {
            Failure::Retry(text)
        }
        OciDistributionError::ServerError { code, .. } if *code >= 500 || *code == 429 => {
            Failure::Retry(text)
        }
        _ => Failure::Refuse(text),
    }
}

/// An error and its sources, each once: `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        let waits: Vec<Duration> = (1..ATTEMPTS)
            .map(|a| FIRST_BACKOFF * 2u32.pow(a - 1))
            .collect();
        assert_eq!(
            waits,
            [Duration::from_millis(500), Duration::from_millis(1000)]
        );
    }

    #[test]
    fn the_one_line_names_every_registry() {
        let failed = PullFailed {
            errors: vec![
                RegistryError {
                    image: "a/foundation:1".to_owned(),
                    error: "down".to_owned(),
                },
                RegistryError {
                    image: "b/foundation:1".to_owned(),
                    error: "wrong digest".to_owned(),
                },
            ],
        };
        assert_eq!(
            failed.one_line(),
            "a/foundation:1: down; b/foundation:1: wrong digest"
        );
    }
}
