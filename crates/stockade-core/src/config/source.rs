//! Where a value came from: a file (with line and column), a variable, a flag, or the default.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::error::{InvalidConfig, line_column};
use super::keys::Key;
use super::value::Value;

/// The layer a value belongs to, in merge order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Default,
    Global,
    Project,
    Env,
    Flag,
}

/// Where one value came from, as `config show --sources` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    Default,
    File {
        scope: Scope,
        path: PathBuf,
        line: usize,
        column: usize,
    },
    Env {
        var: String,
    },
    Flag {
        flag: String,
    },
}

impl Source {
    pub fn scope(&self) -> Scope {
        match self {
            Self::Default => Scope::Default,
            Self::File { scope, .. } => *scope,
            Self::Env { .. } => Scope::Env,
            Self::Flag { .. } => Scope::Flag,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => write!(f, "default"),
            Self::File {
                path, line, column, ..
            } => write!(f, "{}:{line}:{column}", path.display()),
            Self::Env { var } => write!(f, "env {var}"),
            Self::Flag { flag } => write!(f, "flag {flag}"),
        }
    }
}

/// The text a value was read from and its span, so later checks can underline it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Source,
    /// The name errors are reported under (a file path, `$VAR`, `--flag`).
    pub name: PathBuf,
    pub text: Arc<str>,
    pub span: Range<usize>,
}

impl Origin {
    pub fn file(scope: Scope, path: PathBuf, text: Arc<str>, span: Range<usize>) -> Self {
        let (line, column) = line_column(&text, span.start);
        Self {
            source: Source::File {
                scope,
                path: path.clone(),
                line,
                column,
            },
            name: path,
            text,
            span,
        }
    }

    pub fn env(var: &str, text: Arc<str>, span: Range<usize>) -> Self {
        Self {
            source: Source::Env {
                var: var.to_owned(),
            },
            name: PathBuf::from(format!("${var}")),
            text,
            span,
        }
    }

    pub fn flag(flag: &str, text: Arc<str>) -> Self {
        let span = 0..text.len();
        Self {
            source: Source::Flag {
                flag: flag.to_owned(),
            },
            name: PathBuf::from(flag),
            text,
            span,
        }
    }

    pub fn error(
        &self,
        message: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) -> InvalidConfig {
        InvalidConfig::new(
            self.name.clone(),
            &self.text,
            self.span.clone(),
            message,
            label,
            help,
        )
    }
}

/// One value of one key (one element, for lists), with its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static Key,
    pub value: Value,
    pub origin: Origin,
}
