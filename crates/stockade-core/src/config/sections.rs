//! Sections the key table does not describe key by key (`[agents.<name>]`, whose keys are names
//! the user picks, and `[tools]`). The loader reads them with the file (`agents.rs`), checking
//! every field, and keeps where each was written ([`RawSection`]: trust reviews a project's,
//! `config show --sources` names the files).

use std::path::PathBuf;
use std::sync::Arc;

use toml::Spanned;

use super::error::InvalidConfig;
use super::source::Scope;

/// Top-level sections the key table does not describe key by key.
pub const MAP_SECTIONS: &[&str] = &["agents", "tools"];

/// Where one such section is written: its file and that file's text.
#[derive(Debug, Clone)]
pub struct RawSection {
    pub name: String,
    pub scope: Scope,
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// Problems found in one file's section values, each underlined.
#[derive(Debug)]
pub struct Validator {
    path: PathBuf,
    text: Arc<str>,
    pub errors: Vec<InvalidConfig>,
}

impl Validator {
    pub fn new(path: PathBuf, text: Arc<str>) -> Self {
        Self {
            path,
            text,
            errors: Vec::new(),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn text(&self) -> Arc<str> {
        self.text.clone()
    }

    pub fn error<T>(
        &mut self,
        at: &Spanned<T>,
        message: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) {
        self.errors.push(InvalidConfig::new(
            self.path.clone(),
            &self.text,
            at.span(),
            message,
            label,
            help,
        ));
    }
}
