//! `stockade config show [--json] [--sources]`, `config init [--global]`, `config path`.

use std::path::PathBuf;

use serde::Serialize;
use stockade_core::config::keys::{self, KEYS, SECTIONS, Shape};
use stockade_core::config::{FlagValue, Resolved, Setting, Source, starter_file};

use crate::context::Context;
use crate::exit::CliError;

pub fn show(
    ctx: &Context,
    flags: Vec<FlagValue>,
    json: bool,
    sources: bool,
) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let resolved = ctx.resolve(&project, flags)?;
    if json {
        let text = if sources {
            #[derive(Serialize)]
            struct WithSources<'a> {
                config: &'a stockade_core::config::Config,
                sources: std::collections::BTreeMap<String, Vec<&'a Source>>,
            }
            let sources = KEYS
                .iter()
                .map(|k| (k.path(), resolved.sources_of(k)))
                .filter(|(_, s)| !s.is_empty())
                .collect();
            serde_json::to_string_pretty(&WithSources {
                config: &resolved.config,
                sources,
            })
        } else {
            serde_json::to_string_pretty(&resolved.config)
        }
        .map_err(|e| CliError::caused("cannot encode the configuration", e, None))?;
        println!("{text}");
    } else {
        print!("{}", render(&resolved, sources));
    }
    Ok(0)
}

/// TOML with, optionally, each value's source as a comment.
fn render(resolved: &Resolved, sources: bool) -> String {
    let mut out = String::new();
    if sources && resolved.global_ignored {
        out.push_str("# the global file is ignored (extends = false in the project file)\n");
    }
    for (i, section) in SECTIONS.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("[{section}]\n"));
        for key in KEYS.iter().filter(|k| k.section == *section) {
            let set: Vec<_> = resolved.settings.iter().filter(|s| s.key == key).collect();
            // What a list starts from (the default presets), before what the layers add.
            let start: Vec<String> = keys::list_default(key)
                .iter()
                .map(|e| format!("{e:?}"))
                .collect();
            match key.shape {
                Shape::Scalar => match set.last() {
                    Some(s) => line(
                        &mut out,
                        &format!("{} = {}", key.name, s.value),
                        sources.then(|| describe(&s.origin.source)),
                    ),
                    // Set through its old name (`[sandbox] network` for `egress`).
                    None if let Some(old) = alias_setting(resolved, key) => line(
                        &mut out,
                        &format!(
                            "{} = {}",
                            key.name,
                            resolved.config.value_of(key).unwrap_or(old.value.clone())
                        ),
                        sources.then(|| {
                            format!("{} (as {})", describe(&old.origin.source), old.key.path())
                        }),
                    ),
                    None => match keys::default_value(key) {
                        Some(value) => line(
                            &mut out,
                            &format!("{} = {value}", key.name),
                            sources.then(|| "default".to_owned()),
                        ),
                        None => line(&mut out, &format!("# {} is not set", key.name), None),
                    },
                },
                Shape::List if set.is_empty() => {
                    line(
                        &mut out,
                        &format!("{} = [{}]", key.name, start.join(", ")),
                        sources.then(|| "default".to_owned()),
                    );
                }
                Shape::List if !sources => {
                    let mut items = start;
                    items.extend(set.iter().map(|s| s.value.to_string()));
                    line(
                        &mut out,
                        &format!("{} = [{}]", key.name, items.join(", ")),
                        None,
                    );
                }
                Shape::List => {
                    out.push_str(&format!("{} = [\n", key.name));
                    for item in start {
                        line(
                            &mut out,
                            &format!("    {item},"),
                            Some("default".to_owned()),
                        );
                    }
                    for s in set {
                        line(
                            &mut out,
                            &format!("    {},", s.value),
                            Some(describe(&s.origin.source)),
                        );
                    }
                    out.push_str("]\n");
                }
            }
        }
    }
    render_serde_sections(resolved, sources, &mut out);
    out
}

/// `[tools]` and the `[agents.<name>]` tables, merged (they have no per-key sources: a comment
/// names the files that set them).
fn render_serde_sections(resolved: &Resolved, sources: bool, out: &mut String) {
    let from = |name: &str| -> Option<String> {
        let files: Vec<String> = resolved
            .sections
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.path.display().to_string())
            .collect();
        sources.then(|| {
            if files.is_empty() {
                "default".to_owned()
            } else {
                files.join(", ")
            }
        })
    };
    out.push_str("\n[tools]\n");
    if let Ok(text) = toml::to_string(&resolved.config.tools) {
        for entry in text.lines() {
            line(out, entry, from("tools"));
        }
    }
    if resolved.config.agents.is_empty() {
        return;
    }
    #[derive(Serialize)]
    struct Agents<'a> {
        agents: &'a std::collections::BTreeMap<String, stockade_core::config::AgentConfig>,
    }
    if let Ok(text) = toml::to_string(&Agents {
        agents: &resolved.config.agents,
    }) {
        out.push('\n');
        if let Some(files) = from("agents") {
            out.push_str(&format!("# [agents] from {files}\n"));
        }
        out.push_str(&text);
    }
}

fn line(out: &mut String, text: &str, comment: Option<String>) {
    match comment {
        Some(comment) => out.push_str(&format!("{text:<44} # {comment}\n")),
        None => out.push_str(&format!("{text}\n")),
    }
}

/// The winning setting of an old name of `key` (see `keys::ALIASES`), if one is set.
fn alias_setting<'a>(resolved: &'a Resolved, key: &keys::Key) -> Option<&'a Setting> {
    resolved
        .settings
        .iter()
        .rfind(|s| keys::alias_target(s.key).is_some_and(|target| target == key))
}

fn describe(source: &Source) -> String {
    match source {
        Source::File { scope, .. } => format!(
            "{} {source}",
            serde_json::to_value(scope)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

pub fn init(ctx: &Context, global: bool, force: bool) -> Result<u8, CliError> {
    let path: PathBuf = if global {
        ctx.dirs.global_config()
    } else {
        ctx.project()?.config_file()
    };
    if path.exists() && !force {
        return Err(CliError::other(
            format!("{} already exists", path.display()),
            Some("edit it, or pass --force to replace it with the starter file"),
        ));
    }
    let io =
        |e: std::io::Error| CliError::caused(format!("cannot write {}", path.display()), e, None);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(&path, starter_file(global)).map_err(io)?;
    ctx.ui.success(&format!("Wrote {}", path.display()));
    println!("{}", path.display());
    Ok(0)
}

pub fn path(ctx: &Context) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let [global, local] = ctx.config_files(&project);
    for (scope, path) in [("global", global), ("project", local)] {
        let state = if path.is_file() { "found" } else { "not found" };
        println!("{scope:<8} {} ({state})", path.display());
    }
    Ok(0)
}
