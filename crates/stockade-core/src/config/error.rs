//! Configuration errors that point at the file, line and column, with the text underlined.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// One problem in one configuration file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct InvalidConfig {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[source_code]
    pub source_code: NamedSource<String>,
    #[label("{label}")]
    pub span: SourceSpan,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

impl InvalidConfig {
    pub fn new(
        path: PathBuf,
        text: &str,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        let start = span.start.min(text.len());
        let (line, column) = line_column(text, start);
        let name = path.display().to_string();
        Self {
            path,
            line,
            column,
            message: message.into(),
            source_code: NamedSource::new(name, text.to_owned()),
            span: (start, span.end.min(text.len()).saturating_sub(start)).into(),
            label: label.into(),
            help,
        }
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    #[diagnostic(code(stockade::config::read))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", summary(errors))]
    #[diagnostic(code(stockade::config::invalid))]
    Invalid {
        #[related]
        errors: Vec<InvalidConfig>,
    },
}

fn summary(errors: &[InvalidConfig]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!("{} errors in configuration", many.len()),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}
