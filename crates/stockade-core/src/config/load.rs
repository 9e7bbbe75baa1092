//! Reading one layer — a file, the `STOCKADE_*` variables, or flags — into settings. The file
//! is parsed into spanned TOML and checked by hand against the key table, so every problem in
//! it (syntax errors, unknown keys, wrong types, bad values) is reported at once.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::agents::{self, AgentConfig, found};
use super::error::{ConfigError, InvalidConfig};
use super::keys::{self, Class, Key, SECTIONS, Shape, TOP_LEVEL};
use super::rules;
use super::sections::{MAP_SECTIONS, RawSection, Validator};
use super::source::{Origin, Scope, Setting};
use super::value::{ParseContext, Raw, did_you_mean};

/// One layer, read and validated.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// The file read, if this layer is a file that exists.
    pub path: Option<PathBuf>,
    pub settings: Vec<Setting>,
    /// `extends = …`, when the file sets it.
    pub extends: Option<bool>,
    /// Where `extends` is written.
    pub extends_at: Option<super::source::Source>,
    /// Where the sections the key table does not describe ([`super::MAP_SECTIONS`]) are.
    pub sections: Vec<RawSection>,
    /// `[agents.<name>]`: what this layer sets for each agent.
    pub agents: BTreeMap<String, AgentConfig>,
    /// Where this file describes each agent, and which keys it writes.
    pub agents_written: Vec<agents::AgentWritten>,
    /// `[tools] version_cache_hours`, when this layer sets it.
    pub version_cache_hours: Option<u64>,
}

/// Paths that parsers need besides the file's own directory.
#[derive(Debug, Clone, Copy)]
pub struct Places<'a> {
    pub project_root: &'a Path,
    pub home: &'a Path,
}

/// Read `path` if it exists. Problems are added to `errors`.
pub fn load_file(
    path: &Path,
    scope: Scope,
    places: Places<'_>,
    errors: &mut Vec<InvalidConfig>,
) -> Result<Layer, ConfigError> {
    let text = match crate::fsread::read_config(path, scope == Scope::Project, places.project_root)
    {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(Layer::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Ok(parse_file(path, &text, scope, places, errors))
}

/// Parse configuration text that came from `path`. Never panics, whatever the text.
pub fn parse_file(
    path: &Path,
    text: &str,
    scope: Scope,
    places: Places<'_>,
    errors: &mut Vec<InvalidConfig>,
) -> Layer {
    let first = errors.len();
    let mut layer = parse_table(path, text, scope, places, errors);
    // Keys are visited in sorted order: report in text order.
    errors[first..].sort_by_key(|e| (e.line, e.column));
    // The same goes for the settings (list elements keep their order).
    layer.settings.sort_by_key(|s| s.origin.span.start);
    layer
}

fn parse_table(
    path: &Path,
    text: &str,
    scope: Scope,
    places: Places<'_>,
    errors: &mut Vec<InvalidConfig>,
) -> Layer {
    let shared: Arc<str> = Arc::from(text);
    let mut layer = Layer {
        path: Some(path.to_path_buf()),
        ..Layer::default()
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // What follows a syntax error is guesswork: report the syntax errors only.
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            errors.push(InvalidConfig::new(
                path.to_path_buf(),
                text,
                span,
                e.message().trim().to_owned(),
                "here",
                Some("see https://toml.io for the syntax".to_owned()),
            ));
        }
        return layer;
    }
    // Relative paths in the global file start at its own directory, never the project.
    let relative_to = match scope {
        Scope::Global => path.parent().unwrap_or(Path::new("/")),
        _ => places.project_root,
    };
    let cx = ParseContext {
        relative_to,
        project_root: places.project_root,
        home: places.home,
    };
    let origin = |span: Range<usize>| Origin::file(scope, path.to_path_buf(), shared.clone(), span);
    let mut walker = Walker {
        cx,
        scope,
        errors,
        settings: &mut layer.settings,
    };

    for (name, item) in root.get_ref().iter() {
        let key_span = name.span();
        let name = name.get_ref().as_ref();
        if TOP_LEVEL.contains(&name) {
            match item.get_ref() {
                DeValue::Boolean(b) if scope == Scope::Project => {
                    layer.extends = Some(*b);
                    layer.extends_at = Some(origin(key_span).source);
                }
                DeValue::Boolean(_) => walker.errors.push(origin(key_span).error(
                    "`extends` only applies to a project configuration",
                    "not here",
                    Some("remove it; `extends = false` in .stockade/config.toml ignores the global file".into()),
                )),
                other => walker.errors.push(origin(item.span()).error(
                    format!("`extends`: expected a boolean, found {}", found(other)),
                    "wrong type",
                    Some("write `extends = false` or `extends = true`, without quotes".into()),
                )),
            }
            continue;
        }
        if MAP_SECTIONS.contains(&name) {
            layer.sections.push(RawSection {
                name: name.to_owned(),
                scope,
                path: path.to_path_buf(),
                text: shared.clone(),
            });
            // Read with the rest of the file: its problems join the others.
            let mut v = Validator::new(path.to_path_buf(), shared.clone());
            if name == "agents" {
                (layer.agents, layer.agents_written) = agents::read_agents(&mut v, item, scope);
            } else {
                layer.version_cache_hours = agents::read_tools(&mut v, item);
            }
            walker.errors.append(&mut v.errors);
            continue;
        }
        if !SECTIONS.contains(&name) {
            let mut candidates: Vec<&str> = SECTIONS.to_vec();
            candidates.extend_from_slice(MAP_SECTIONS);
            candidates.extend_from_slice(TOP_LEVEL);
            walker.errors.push(origin(key_span).error(
                format!("unknown section `{name}`"),
                "unknown",
                Some(match did_you_mean(name, &candidates) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!(
                        "stockade knows the sections {}; see docs/configuration.md",
                        SECTIONS.iter().map(|s| format!("[{s}]")).collect::<Vec<_>>().join(", ")
                    ),
                }),
            ));
            continue;
        }
        let DeValue::Table(table) = item.get_ref() else {
            walker.errors.push(origin(item.span()).error(
                format!("`{name}` must be a table, found {}", found(item.get_ref())),
                "wrong type",
                Some(format!("write a [{name}] section")),
            ));
            continue;
        };
        for (key_name, value) in table.iter() {
            let key_name_str = key_name.get_ref().as_ref();
            match keys::find(name, key_name_str) {
                // Refused before its value is even parsed (a CA file need not exist).
                Some(key) if scope == Scope::Project && key.class == Class::GlobalOnly => {
                    let bad = rules::global_only(key);
                    walker.errors.push(origin(key_name.span()).error(
                        bad.message,
                        bad.label,
                        bad.help,
                    ));
                }
                Some(key) => walker.key(key, value, &origin),
                None => {
                    let known = keys::names_in(name);
                    walker.errors.push(origin(key_name.span()).error(
                        format!("unknown key `{key_name_str}` in [{name}]"),
                        "unknown key",
                        Some(match did_you_mean(key_name_str, &known) {
                            Some(near) => format!("did you mean `{near}`?"),
                            None => format!("[{name}] knows: {}", known.join(", ")),
                        }),
                    ));
                }
            }
        }
    }
    layer
}

struct Walker<'a, 'e> {
    cx: ParseContext<'a>,
    scope: Scope,
    errors: &'e mut Vec<InvalidConfig>,
    settings: &'e mut Vec<Setting>,
}

impl Walker<'_, '_> {
    fn key(
        &mut self,
        key: &'static Key,
        value: &Spanned<DeValue<'_>>,
        origin: &dyn Fn(Range<usize>) -> Origin,
    ) {
        match (key.shape, value.get_ref()) {
            (Shape::List, DeValue::Array(items)) => {
                for item in items.iter() {
                    self.element(key, item, origin);
                }
            }
            (Shape::List, other) => self.errors.push(origin(value.span()).error(
                format!(
                    "`{}`: expected {}, found {}",
                    key.path(),
                    key.expects,
                    found(other)
                ),
                "wrong type",
                Some("write a list: [\"…\", \"…\"]".to_owned()),
            )),
            (Shape::Scalar, _) => self.element(key, value, origin),
        }
    }

    fn element(
        &mut self,
        key: &'static Key,
        item: &Spanned<DeValue<'_>>,
        origin: &dyn Fn(Range<usize>) -> Origin,
    ) {
        let at = origin(item.span());
        let raw = match item.get_ref() {
            DeValue::String(s) => Raw::Str(s.to_string()),
            DeValue::Boolean(b) => Raw::Bool(*b),
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(i) => Raw::Int(i),
                    Err(_) => {
                        self.errors.push(at.error(
                            format!("`{}`: integer out of range", key.path()),
                            "out of range",
                            None,
                        ));
                        return;
                    }
                }
            }
            DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
                Ok(f) => Raw::Float(f),
                Err(_) => {
                    self.errors.push(at.error(
                        format!("`{}`: not a number", key.path()),
                        "not a number",
                        None,
                    ));
                    return;
                }
            },
            other => {
                // Arrays, tables and dates are no key's value (nor a list's element).
                let expects = match key.shape {
                    Shape::Scalar => key.expects,
                    Shape::List => "a string",
                };
                self.errors.push(at.error(
                    format!(
                        "`{}`: expected {expects}, found {}",
                        key.path(),
                        found(other)
                    ),
                    "wrong type",
                    None,
                ));
                return;
            }
        };
        let parsed = (key.parse)(&raw, &self.cx).and_then(|value| {
            rules::check(key, &value, self.scope, self.cx.project_root).map(|()| value)
        });
        match parsed {
            Ok(value) => self.settings.push(Setting {
                key,
                value,
                origin: at,
            }),
            Err(bad) => self.errors.push(at.error(
                format!("`{}`: {}", key.path(), bad.message),
                bad.label,
                bad.help,
            )),
        }
    }
}

/// The sections `STOCKADE_<SECTION>_<KEY>` variables may name; other `STOCKADE_*` variables
/// (like `STOCKADE_NAMESPACE`) are not configuration keys.
pub fn is_config_var(name: &str) -> bool {
    name.strip_prefix("STOCKADE_").is_some_and(|rest| {
        SECTIONS
            .iter()
            .any(|s| rest.starts_with(&format!("{}_", s.to_ascii_uppercase())))
    })
}

/// The `STOCKADE_<SECTION>_<KEY>` layer. Lists are comma-separated.
pub fn parse_env(
    vars: &[(String, String)],
    places: Places<'_>,
    errors: &mut Vec<InvalidConfig>,
) -> Layer {
    let mut layer = Layer::default();
    let cx = ParseContext {
        relative_to: places.project_root,
        project_root: places.project_root,
        home: places.home,
    };
    let mut vars: Vec<&(String, String)> = vars.iter().filter(|(k, _)| is_config_var(k)).collect();
    vars.sort();
    for (var, text) in vars {
        let shared: Arc<str> = Arc::from(text.as_str());
        let key = keys::KEYS.iter().find(|k| k.env_var() == *var);
        let Some(key) = key else {
            let known: Vec<String> = keys::KEYS.iter().map(Key::env_var).collect();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            errors.push(
                Origin::env(var, shared.clone(), 0..text.len()).error(
                    format!("unknown configuration variable {var}"),
                    "unknown",
                    Some(match did_you_mean(var, &known) {
                        Some(near) => format!("did you mean {near}?"),
                        None => {
                            "STOCKADE_<SECTION>_<KEY> variables name keys of docs/configuration.md"
                                .to_owned()
                        }
                    }),
                ),
            );
            continue;
        };
        let pieces: Vec<Range<usize>> = match key.shape {
            Shape::Scalar => std::iter::once(0..text.len()).collect(),
            Shape::List => split_commas(text),
        };
        for span in pieces {
            let origin = Origin::env(var, shared.clone(), span.clone());
            let raw = Raw::Text(text[span].to_owned());
            push_parsed(key, &raw, &cx, origin, &mut layer.settings, errors);
        }
    }
    layer
}

/// A command-line flag that sets a key: the flag as typed, its key, the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagValue {
    pub flag: String,
    pub key: &'static Key,
    pub value: String,
}

impl FlagValue {
    /// The key's own flag (see [`keys::Flag`]) with this value; a switch's value is `true`.
    pub fn new(key: &'static Key, value: impl Into<String>) -> Self {
        Self {
            flag: key
                .flag
                .as_ref()
                .map_or_else(|| key.path(), keys::Flag::name),
            key,
            value: value.into(),
        }
    }
}

/// The flag layer. One flag, one value (lists repeat the flag).
pub fn parse_flags(
    flags: &[FlagValue],
    places: Places<'_>,
    errors: &mut Vec<InvalidConfig>,
) -> Layer {
    let mut layer = Layer::default();
    let cx = ParseContext {
        relative_to: places.project_root,
        project_root: places.project_root,
        home: places.home,
    };
    for flag in flags {
        let origin = Origin::flag(&flag.flag, Arc::from(flag.value.as_str()));
        let raw = Raw::Text(flag.value.clone());
        push_parsed(flag.key, &raw, &cx, origin, &mut layer.settings, errors);
    }
    layer
}

fn push_parsed(
    key: &'static Key,
    raw: &Raw,
    cx: &ParseContext<'_>,
    origin: Origin,
    settings: &mut Vec<Setting>,
    errors: &mut Vec<InvalidConfig>,
) {
    let scope = origin.source.scope();
    let parsed = (key.parse)(raw, cx)
        .and_then(|value| rules::check(key, &value, scope, cx.project_root).map(|()| value));
    match parsed {
        Ok(value) => settings.push(Setting { key, value, origin }),
        Err(bad) => errors.push(origin.error(
            format!("`{}`: {}", key.path(), bad.message),
            bad.label,
            bad.help,
        )),
    }
}

/// Byte ranges of the comma-separated, trimmed, non-empty pieces of `text`.
fn split_commas(text: &str) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ',')))
    {
        if c == ',' {
            let piece = &text[start..i];
            let lead = piece.len() - piece.trim_start().len();
            let trimmed = piece.trim();
            if !trimmed.is_empty() {
                pieces.push(start + lead..start + lead + trimmed.len());
            }
            start = i + 1;
        }
    }
    pieces
}
