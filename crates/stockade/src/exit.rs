//! Exit codes (documented in docs/exit-codes.md) and the errors that map to them.

use miette::Diagnostic;
use stockade_core::config::ConfigError;
use stockade_engine::EngineError;

/// stockade itself failed: bad configuration, a failed build, bad input.
pub const FAILURE: u8 = 1;
// 2: the command line was not understood (clap exits with it before any command runs).
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

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Engine(e) if e.is_unreachable() => ENGINE,
            Self::Engine(EngineError::BuildFailed { .. }) => FAILURE,
            Self::Engine(_) => ENGINE,
            Self::Config(_) | Self::Other { .. } | Self::Caused { .. } => FAILURE,
        }
    }
}
