//! `stockade check [--json]`: the doctor. Engine, host identity, configuration files, project,
//! foundation image. Exits 125 when the engine cannot be reached, 1 when the configuration is
//! invalid, else 0 (a missing or stale image is built on the next run, so it is not a failure).
//! The JSON shape is documented in docs/check.md.

use std::path::PathBuf;

use serde::Serialize;
use stockade_core::chain::Freshness;
use stockade_core::config::Config;
use stockade_core::foundation::FoundationPlan;
use stockade_core::identity::Identity;
use stockade_core::project::Project;
use stockade_engine::{EngineInfo, ImageInfo};

use crate::context::Context;
use crate::exit::{self, CliError};
use crate::image::{TierStatus, chain_status};

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    engine: EngineCheck,
    identity: Identity,
    config: ConfigCheck,
    project: ProjectCheck,
    images: ImagesCheck,
    agents: Vec<super::agents::AgentCheck>,
    /// Allowed but risky settings (mounts of ~/.ssh and the like, the engine socket).
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct EngineCheck {
    ok: bool,
    #[serde(flatten)]
    info: Option<EngineInfo>,
    error: Option<String>,
    hint: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConfigCheck {
    ok: bool,
    files: Vec<ConfigFileCheck>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConfigFileCheck {
    scope: &'static str,
    path: PathBuf,
    found: bool,
}

#[derive(Debug, Serialize)]
struct ProjectCheck {
    root: PathBuf,
    cwd: PathBuf,
    git: bool,
}

#[derive(Debug, Serialize)]
struct ImagesCheck {
    foundation: ImageCheck,
    /// `None` when the engine or the configuration is unavailable.
    base: Option<TierStatus>,
    project: Option<TierStatus>,
    /// Why base and project could not be checked.
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ImageCheck {
    tag: String,
    /// `missing`, `up-to-date`, `stale`, or `unknown` (engine or config unavailable).
    status: &'static str,
    id: Option<String>,
    hash: Option<String>,
    expected_hash: Option<String>,
    /// Why the status is `unknown`, when the engine failed to answer.
    error: Option<String>,
}

pub async fn run(ctx: &Context, json: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let [global, local] = ctx.config_files(&project);
    let resolved = ctx.resolve(&project, Vec::new());
    let warnings: Vec<String> = match &resolved {
        Ok(r) => r
            .warnings
            .iter()
            .map(|w| format!("{} (from {})", w.message, w.source))
            .collect(),
        Err(_) => Vec::new(),
    };
    let config_result = resolved.map(|r| r.config);
    let config_check = ConfigCheck {
        ok: config_result.is_ok(),
        files: vec![
            ConfigFileCheck {
                scope: "global",
                found: global.is_file(),
                path: global,
            },
            ConfigFileCheck {
                scope: "project",
                found: local.is_file(),
                path: local,
            },
        ],
        error: config_result.as_ref().err().map(|e| e.to_string()),
    };

    let connected = ctx.connect().await;
    let (engine_check, engine) = match connected {
        Ok(engine) => match engine.info().await {
            Ok(info) => (
                EngineCheck {
                    ok: true,
                    info: Some(info),
                    error: None,
                    hint: None,
                },
                Some(engine),
            ),
            Err(e) => (failed_engine(&CliError::from(e)), None),
        },
        Err(e) => (failed_engine(&e), None),
    };

    let tag = ctx.namespace.foundation_image();
    let images = match (&engine, config_result.as_ref().ok()) {
        (Some(engine), Some(config)) => images_check(ctx, engine, config, &project, tag).await,
        _ => ImagesCheck {
            foundation: ImageCheck::unknown(tag, None),
            base: None,
            project: None,
            error: None,
        },
    };

    let agents = match config_result.as_ref().ok() {
        Some(config) => {
            // The runtime probe looks into the image agents run on: the last tier, when built.
            let image = match (&images.base, &images.project) {
                (_, Some(p)) if p.status == "up-to-date" => Some(p.tag.as_str()),
                (Some(b), p)
                    if b.status == "up-to-date"
                        && p.as_ref().is_none_or(|p| p.status == "none") =>
                {
                    Some(b.tag.as_str())
                }
                _ => None,
            };
            super::agents::check_section(engine.as_ref(), ctx, config, image).await
        }
        None => Vec::new(),
    };
    let report = Report {
        ok: engine_check.ok && config_check.ok,
        engine: engine_check,
        identity: ctx.identity.clone(),
        config: config_check,
        project: ProjectCheck {
            root: project.root.clone(),
            cwd: project.cwd.clone(),
            git: project.is_git,
        },
        images,
        agents,
        warnings,
    };

    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::other(format!("cannot encode the report: {e}"), None))?;
        println!("{text}");
    } else {
        print_human(ctx, &report);
    }
    Ok(if !report.engine.ok {
        exit::ENGINE
    } else if !report.config.ok {
        exit::FAILURE
    } else {
        0
    })
}

fn failed_engine(error: &CliError) -> EngineCheck {
    let hint = match error {
        CliError::Engine(e) => e.hint(),
        _ => None,
    };
    EngineCheck {
        ok: false,
        info: None,
        error: Some(error.to_string()),
        hint,
    }
}

impl ImageCheck {
    fn unknown(tag: String, error: Option<String>) -> Self {
        Self {
            tag,
            status: "unknown",
            id: None,
            hash: None,
            expected_hash: None,
            error,
        }
    }
}

async fn images_check(
    ctx: &Context,
    engine: &stockade_engine::Engine,
    config: &Config,
    project: &Project,
    tag: String,
) -> ImagesCheck {
    let expected = FoundationPlan::new(&config.image)
        .ok()
        .map(|plan| plan.hash);
    let info = match engine.inspect_image(&tag).await {
        Ok(info) => info,
        Err(e) => {
            return ImagesCheck {
                foundation: ImageCheck::unknown(tag, Some(e.to_string())),
                base: None,
                project: None,
                error: None,
            };
        }
    };
    let freshness = expected
        .as_deref()
        .map(|hash| Freshness::of(info.as_ref().map(|i| &i.labels), hash, None));
    let status = match &freshness {
        Some(freshness) => freshness.key(),
        None if info.is_none() => "missing",
        None => "unknown",
    };
    let current: Option<&ImageInfo> = info
        .as_ref()
        .filter(|_| freshness == Some(Freshness::UpToDate));
    let (base, project, error) = match chain_status(engine, ctx, config, project, current).await {
        Ok(chain) => (Some(chain.base), Some(chain.project), None),
        Err(e) => (None, None, Some(e.to_string())),
    };
    ImagesCheck {
        foundation: ImageCheck {
            tag,
            status,
            id: info.as_ref().map(|i| i.id.clone()),
            hash: info
                .as_ref()
                .and_then(|i| i.labels.get(stockade_core::labels::HASH).cloned()),
            expected_hash: expected,
            error: None,
        },
        base,
        project,
        error,
    }
}

fn print_human(ctx: &Context, report: &Report) {
    let ui = &ctx.ui;
    let mark = |ok: bool| {
        if ok {
            ui.paint("32", "ok  ")
        } else {
            ui.paint("31", "FAIL")
        }
    };
    let e = &report.engine;
    match &e.info {
        Some(info) => println!(
            "{} Engine: {} {} (API {}, {}/{}, {}) at {} ({})",
            mark(true),
            if info.podman { "Podman" } else { "Docker" },
            info.version,
            info.api_version,
            info.os,
            info.arch,
            if info.rootless { "rootless" } else { "rootful" },
            info.endpoint,
            info.endpoint_source,
        ),
        None => {
            println!(
                "{} Engine: {}",
                mark(false),
                e.error.as_deref().unwrap_or("unreachable")
            );
            if let Some(hint) = &e.hint {
                println!("       fix: {hint}");
            }
        }
    }
    let id = &report.identity;
    println!(
        "{} Identity: {} (uid {}, gid {}), HOME {}",
        mark(true),
        id.name,
        id.uid,
        id.gid,
        id.home.display()
    );
    for file in &report.config.files {
        println!(
            "{} Config ({}): {} ({})",
            mark(report.config.ok),
            file.scope,
            file.path.display(),
            if file.found { "found" } else { "not found" }
        );
    }
    if let Some(error) = &report.config.error {
        println!("       {error}");
    }
    println!(
        "{} Project: {}{}",
        mark(true),
        report.project.root.display(),
        if report.project.git { " (git)" } else { "" }
    );
    let f = &report.images.foundation;
    let status = match f.status {
        "up-to-date" => "up to date",
        "stale" => "stale (rebuilt on next run)",
        "missing" => "missing (built on first run)",
        other => other,
    };
    println!("{} Foundation image: {status} ({})", mark(true), f.tag);
    let home = &ctx.identity.home;
    if let Some(base) = &report.images.base {
        let what = match (base.source, base.from.as_deref()) {
            ("dockerfile", Some(path)) => format!("custom ({})", tilde(path, home)),
            ("image", Some(name)) => format!("custom image {name}"),
            _ => "default (foundation alias)".to_owned(),
        };
        println!(
            "{} Base image: {what}, {} ({})",
            mark(true),
            tier_words(base),
            base.tag
        );
    }
    if let Some(project) = &report.images.project {
        if project.status == "none" {
            println!("{} Project image: none", mark(true));
        } else {
            println!(
                "{} Project image: {} ({})",
                mark(true),
                tier_words(project),
                project.tag
            );
        }
    }
    if let Some(error) = &report.images.error {
        println!("{} Images: {error}", mark(false));
    }
    super::agents::print_check(ui, &report.agents);
    for warning in &report.warnings {
        println!("{} {warning}", ui.paint("33", "warn"));
    }
}

fn tier_words(tier: &TierStatus) -> String {
    match (tier.status, tier.reason.as_deref()) {
        ("up-to-date", _) => "up to date".to_owned(),
        ("missing", Some(reason)) => format!("missing ({reason})"),
        ("missing", None) => "missing (built on the next run)".to_owned(),
        ("stale", Some(reason)) => format!("stale ({reason})"),
        (other, _) => other.to_owned(),
    }
}

/// `/home/ada/.config/x` → `~/.config/x`.
fn tilde(path: &str, home: &std::path::Path) -> String {
    match std::path::Path::new(path).strip_prefix(home) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.to_owned(),
    }
}
