//! Exit codes (documented in docs/exit-codes.md) and the errors that map to them.

use miette::Diagnostic;
use stockade_core::config::ConfigError;
use stockade_engine::EngineError;

/// stockade itself failed: bad configuration, a failed build, bad input.
pub const FAILURE: u8 = 1;
/// The command line was not understood (clap's own code, kept for JSON usage errors).
pub const USAGE: u8 = 2;
/// The container engine could not be reached or refused a request.
pub const ENGINE: u8 = 125;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum CliError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),

    #[error("{0}")]
    Engine(#[from] EngineError),

    #[error("{message}")]
    Other {
        message: String,
        #[help]
        help: Option<String>,
    },

    /// A failure and the error that caused it, kept as its source: shown as the chain under the
    /// message, never flattened into it.
    #[error("{message}")]
    Caused {
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        #[help]
        help: Option<String>,
    },

    /// A launch (or prune) that stockade refuses on purpose; `code` names why, for `--json`.
    #[error("{message}")]
    Refused {
        code: &'static str,
        message: String,
        #[help]
        help: Option<String>,
        /// The file or directory the refusal is about, for `--json`'s `location`.
        location: Option<String>,
    },
}

impl CliError {
    pub fn other(message: impl Into<String>, help: Option<&str>) -> Self {
        Self::Other {
            message: message.into(),
            help: help.map(str::to_owned),
        }
    }

    pub fn caused(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
        help: Option<&str>,
    ) -> Self {
        Self::Caused {
            message: message.into(),
            source: source.into(),
            help: help.map(str::to_owned),
        }
    }

    /// A refusal: exit 1, with a stable `code` for `--json` (docs/exit-codes.md lists them).
    pub fn refused(code: &'static str, message: impl Into<String>, help: Option<&str>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
            help: help.map(str::to_owned),
            location: None,
        }
    }

    /// A refusal about `path` (its JSON `location`).
    pub fn at(mut self, path: &std::path::Path) -> Self {
        if let Self::Refused { location, .. } = &mut self {
            *location = Some(path.display().to_string());
        }
        self
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Engine(e) if e.is_unreachable() => ENGINE,
            Self::Engine(EngineError::BuildFailed { .. }) => FAILURE,
            Self::Engine(_) => ENGINE,
            Self::Config(_) | Self::Other { .. } | Self::Caused { .. } | Self::Refused { .. } => {
                FAILURE
            }
        }
    }

    /// The stable name of this kind of error, the `code` of a JSON error (docs/exit-codes.md).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(ConfigError::Read { .. }) => "config-unreadable",
            Self::Config(ConfigError::Invalid { .. }) => "config-invalid",
            Self::Engine(e) if e.is_unreachable() => "engine-unreachable",
            Self::Engine(EngineError::BuildFailed { .. }) => "build-failed",
            Self::Engine(_) => "engine-error",
            Self::Refused { code, .. } => code,
            Self::Other { .. } | Self::Caused { .. } => "failed",
        }
    }

    /// This error as `--json` reports it.
    pub fn to_json(&self) -> JsonError {
        let code = self.code();
        match self {
            Self::Config(ConfigError::Invalid { errors }) => {
                let each: Vec<JsonError> = errors
                    .iter()
                    .map(|e| JsonError {
                        error: e.message.clone(),
                        code,
                        hint: e.help.clone(),
                        location: Some(format!("{}:{}:{}", e.path.display(), e.line, e.column)),
                        errors: None,
                    })
                    .collect();
                match <[JsonError; 1]>::try_from(each) {
                    Ok([one]) => one,
                    Err(each) => JsonError {
                        error: format!("{} errors in configuration; nothing was run", each.len()),
                        code,
                        hint: Some("fix each; `errors` lists them with their locations".to_owned()),
                        location: each.first().and_then(|e| e.location.clone()),
                        errors: Some(each),
                    },
                }
            }
            Self::Config(ConfigError::Read { path, .. }) => JsonError {
                error: self.to_string(),
                code,
                hint: Some("fix the file's permissions, or remove it".to_owned()),
                location: Some(path.display().to_string()),
                errors: None,
            },
            Self::Engine(engine) => JsonError {
                error: engine.to_string(),
                code,
                hint: engine.hint(),
                location: None,
                errors: None,
            },
            Self::Caused {
                message,
                source,
                help,
            } => {
                // The cause chain, joined: JSON has no place for miette's tree.
                let mut text = message.clone();
                let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
                while let Some(e) = cause {
                    text.push_str(&format!(": {e}"));
                    cause = e.source();
                }
                JsonError {
                    error: text,
                    code,
                    hint: help.clone(),
                    location: None,
                    errors: None,
                }
            }
            Self::Other { message, help } => JsonError {
                error: message.clone(),
                code,
                hint: help.clone(),
                location: None,
                errors: None,
            },
            Self::Refused {
                message,
                help,
                location,
                ..
            } => JsonError {
                error: message.clone(),
                code,
                hint: help.clone(),
                location: location.clone(),
                errors: None,
            },
        }
    }
}

/// An error as `--json` prints it: one object on stderr (docs/exit-codes.md).
#[derive(Debug, serde::Serialize)]
pub struct JsonError {
    pub error: String,
    pub code: &'static str,
    pub hint: Option<String>,
    /// `file:line:column` (or the file) the error is about, when there is one.
    pub location: Option<String>,
    /// Every configuration error, when there are several (the first is the object itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<JsonError>>,
}
