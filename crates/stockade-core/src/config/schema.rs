//! The TOML schema, exactly as users write it. Unknown keys are errors.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub image: Option<ImageSection>,
    pub sandbox: Option<SandboxSection>,
    pub agents: Option<std::collections::BTreeMap<Spanned<String>, super::agents::AgentSection>>,
    pub tools: Option<super::agents::ToolsSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// Image the foundation is built from (a mirror, or a local image on air-gapped machines).
    pub from: Option<Spanned<String>>,
    /// PEM files of extra CA certificates to trust inside every image.
    pub ca_certificates: Option<Vec<Spanned<String>>>,
    /// A custom base image by name (e.g. `ruby:3.3`), extended with stockade's runtime layer.
    pub base: Option<Spanned<String>>,
    /// A Dockerfile that builds the custom base when it is missing and cannot be pulled.
    pub base_dockerfile: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// Names of host environment variables passed through to the sandbox when set.
    pub env: Option<Vec<Spanned<String>>>,
    /// Forward the host's SSH agent (`SSH_AUTH_SOCK`) into sandboxes.
    pub ssh_agent: Option<bool>,
}
