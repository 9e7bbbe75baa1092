//! Sections with a serde schema of their own (e.g. `[agents.<name>]`, whose keys are names the
//! user picks). The loader keeps their raw text; the owner deserializes and validates them, with
//! errors that still point at file, line and column.
//!
//! To add one: put its name in [`SERDE_SECTIONS`], then, where the layers are merged, call
//! [`RawSection::deserialize`] on each layer's `sections` and report problems through
//! [`RawSection::validator`].

use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, ValueDeserializer};

use super::error::{ConfigError, InvalidConfig};
use super::source::Scope;

/// Top-level sections the key table does not describe, checked by their own serde schema.
pub const SERDE_SECTIONS: &[&str] = &["agents", "tools"];

/// One such section as written in one file.
#[derive(Debug, Clone)]
pub struct RawSection {
    pub name: String,
    pub scope: Scope,
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl RawSection {
    /// Deserialize the section (`deny_unknown_fields` and `Spanned` fields work as usual).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let error = |span: std::ops::Range<usize>, message: &str| ConfigError::Invalid {
            errors: vec![InvalidConfig::new(
                self.path.clone(),
                &self.text,
                span,
                format!("[{}]: {}", self.name, message.trim()),
                "here",
                Some("see docs/configuration.md".to_owned()),
            )],
        };
        let root =
            DeTable::parse(&self.text).map_err(|e| error(e.span().unwrap_or(0..0), e.message()))?;
        let (_, item) = root
            .get_ref()
            .iter()
            .find(|(key, _)| key.get_ref().as_ref() == self.name.as_str())
            .ok_or_else(|| error(0..0, "the section disappeared while reading"))?;
        T::deserialize(ValueDeserializer::from(item.clone()))
            .map_err(|e| error(e.span().unwrap_or(0..0), e.message()))
    }

    /// Collects further problems (a bad value in a well-formed section), each underlined.
    pub fn validator(&self) -> Validator {
        Validator {
            path: self.path.clone(),
            text: self.text.clone(),
            errors: Vec::new(),
        }
    }
}

/// Problems found in a section's values.
#[derive(Debug)]
pub struct Validator {
    path: PathBuf,
    text: Arc<str>,
    pub errors: Vec<InvalidConfig>,
}

impl Validator {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Agent {
        command: Spanned<String>,
    }

    fn section(text: &str) -> RawSection {
        RawSection {
            name: "agents".to_owned(),
            scope: Scope::Global,
            path: PathBuf::from("/c.toml"),
            text: Arc::from(text),
        }
    }

    #[test]
    fn deserializes_with_spans_and_points_at_errors() {
        let raw = section("[agents.aider]\ncommand = \"aider\"\n");
        let agents: BTreeMap<Spanned<String>, Agent> = raw.deserialize().unwrap();
        let aider = &agents.values().next().unwrap().command;
        assert_eq!(aider.get_ref(), "aider");
        let mut v = raw.validator();
        v.error(aider, "not installed", "here", None);
        assert_eq!((v.errors[0].line, v.errors[0].column), (2, 11));

        let bad = section("[agents.aider]\ncommand = \"aider\"\ncomand = 1\n");
        match bad.deserialize::<BTreeMap<Spanned<String>, Agent>>() {
            Err(ConfigError::Invalid { errors }) => assert_eq!(errors[0].line, 3, "{errors:?}"),
            other => panic!("{other:?}"),
        }
    }
}
