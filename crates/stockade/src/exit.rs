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
        }
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
}
