//! `stockade check [--json]`: the doctor. Engine, host identity, configuration files, project,
//! trust, the image chain, agents. Every line's mark comes from the status it describes: `ok`,
//! `warn` (works, or is fixed by the next run, but needs a look) or `FAIL` (a launch would fail
//! or could not be checked). Exits 1 with any FAIL, else 0 (warnings included).
//! The JSON shape is documented in docs/check.md.

use std::path::PathBuf;

use serde::Serialize;
use stockade_core::chain::Freshness;
use stockade_core::config::{Config, ConfigError};
use stockade_core::foundation::FoundationPlan;
use stockade_core::identity::Identity;
use stockade_core::project::Project;
use stockade_core::published::{Decision, UserLayer};
use stockade_engine::{EngineInfo, ImageInfo};

use crate::context::Context;
use crate::exit::{self, CliError};
use crate::image::{TierState, TierStatus, chain_status};
use crate::inventory::provenance;
use crate::launch;
use crate::ui::print_json;

/// What a line of `check` says about what it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Report {
    /// No line is a FAIL.
    ok: bool,
    summary: Summary,
    /// Every line as printed, in order: the marks the summary counts.
    checks: Vec<Line>,
    engine: EngineCheck,
    identity: Identity,
    config: ConfigCheck,
    project: ProjectCheck,
    trust: TrustCheck,
    images: ImagesCheck,
    /// The runtimes (Node.js lines) the configured npm agents run on.
    runtimes: Vec<super::agents::RuntimeCheck>,
    agents: Vec<super::agents::AgentCheck>,
    /// The egress mode, presets and gateway (`None`: the configuration is invalid).
    egress: Option<crate::gateway::EgressCheck>,
    /// Allowed but risky settings (mounts of ~/.ssh and the like, the engine socket).
    warnings: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    ok: usize,
    warn: usize,
    fail: usize,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Line {
    status: Mark,
    what: String,
    detail: String,
    /// How to fix it (FAIL and warn lines that have a fix).
    fix: Option<String>,
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
    /// Errors that are in no file (a STOCKADE_* variable), or a file that cannot be read.
    other_errors: Vec<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConfigFileCheck {
    scope: &'static str,
    path: PathBuf,
    found: bool,
    /// This file's errors, each `line:column: message`.
    errors: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ProjectCheck {
    root: PathBuf,
    cwd: PathBuf,
    git: bool,
    /// Why a launch refuses this directory as the project (HOME, `/`).
    refused: Option<String>,
}

/// Whether the project's `.stockade` configuration is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum TrustState {
    /// No `.stockade/config.toml` or `.stockade/Dockerfile`.
    NoConfiguration,
    /// It adds nothing beyond the project itself: no approval needed.
    NothingToApprove,
    Approved,
    /// New or changed since its approval: a launch asks, or refuses without a terminal.
    Unapproved,
    /// Not checked: the configuration is invalid, or the files could not be read.
    Unknown,
}

#[derive(Debug, Serialize)]
struct TrustCheck {
    state: TrustState,
    /// What the configuration adds (shown when it is not approved).
    concerns: Vec<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ImagesCheck {
    foundation: ImageCheck,
    /// The full toolset tier, with `[image] toolset = "full"` (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    full: Option<TierStatus>,
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
    status: TierState,
    id: Option<String>,
    hash: Option<String>,
    expected_hash: Option<String>,
    /// Why the status is `unknown`, when the engine failed to answer.
    error: Option<String>,
    /// Where the image on the engine came from: `built`, or `pulled from <registry> at
    /// <digest>`.
    source: Option<String>,
    /// Whether the next run pulls it (`[image] source`).
    #[serde(skip)]
    pulls: bool,
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
    let file = |scope, path: PathBuf| ConfigFileCheck {
        scope,
        found: path.is_file(),
        errors: match &config_result {
            Err(CliError::Config(ConfigError::Invalid { errors })) => errors
                .iter()
                .filter(|e| e.path == path)
                .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
                .collect(),
            _ => Vec::new(),
        },
        path,
    };
    let files = vec![file("global", global), file("project", local)];
    // Errors no file row shows: a STOCKADE_* variable, a flag, an unreadable file.
    let other_errors = match &config_result {
        Ok(_) => Vec::new(),
        Err(CliError::Config(ConfigError::Invalid { errors })) => errors
            .iter()
            .filter(|e| files.iter().all(|f| f.path != e.path))
            .map(ToString::to_string)
            .collect(),
        Err(e) => vec![e.to_string()],
    };
    let config_check = ConfigCheck {
        ok: config_result.is_ok(),
        files,
        other_errors,
        error: config_result.as_ref().err().map(|e| e.to_string()),
    };
    let trust = trust_check(ctx, config_result.is_ok());

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
        (None, _) => ImagesCheck::unknown(tag, "the engine cannot be reached"),
        (_, None) => ImagesCheck::unknown(tag, "the configuration is invalid"),
    };

    let agents = match config_result.as_ref().ok() {
        Some(config) => {
            // The runtime probe looks into the image agents run on: the last tier, when built.
            let image = match (&images.base, &images.project) {
                (_, Some(p)) if p.status == TierState::UpToDate => Some(p.tag.as_str()),
                (Some(b), p)
                    if b.status == TierState::UpToDate
                        && p.as_ref().is_none_or(|p| p.status == TierState::None) =>
                {
                    Some(b.tag.as_str())
                }
                _ => None,
            };
            super::agents::check_section(engine.as_ref(), ctx, config, image).await
        }
        None => Vec::new(),
    };
    let runtimes = match config_result.as_ref().ok() {
        Some(config) => super::agents::runtimes_section(engine.as_ref(), ctx, config).await,
        None => Vec::new(),
    };
    let egress = match config_result.as_ref().ok() {
        Some(config) => Some(crate::gateway::check(engine.as_ref(), ctx, config).await),
        None => None,
    };
    let refused = launch::refuse_broad_root(&project, &ctx.identity.home)
        .err()
        .map(|e| e.to_string());
    let mut report = Report {
        ok: false,
        summary: Summary::default(),
        checks: Vec::new(),
        engine: engine_check,
        identity: ctx.identity.clone(),
        config: config_check,
        project: ProjectCheck {
            root: project.root.clone(),
            cwd: project.cwd.clone(),
            git: project.is_git,
            refused,
        },
        trust,
        images,
        runtimes,
        agents,
        egress,
        warnings,
    };
    report.checks = lines(ctx, &report);
    for line in &report.checks {
        match line.status {
            Mark::Ok => report.summary.ok += 1,
            Mark::Warn => report.summary.warn += 1,
            Mark::Fail => report.summary.fail += 1,
        }
    }
    report.ok = report.summary.fail == 0;

    if json {
        print_json(&report)?;
    } else {
        print_human(ctx, &report);
    }
    Ok(if report.ok { 0 } else { exit::FAILURE })
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

/// The project configuration's approval, read as a launch reads it.
fn trust_check(ctx: &Context, config_ok: bool) -> TrustCheck {
    let unknown = |error: String| TrustCheck {
        state: TrustState::Unknown,
        concerns: Vec::new(),
        error: Some(error),
    };
    if !config_ok {
        return unknown("not checked: the configuration is invalid".to_owned());
    }
    let prepared = match launch::prepare(ctx, Vec::new()) {
        Ok(prepared) => prepared,
        Err(e) => return unknown(e.to_string()),
    };
    let concerns = launch::concerns(&prepared);
    let state = if launch::fingerprint(&prepared, &concerns).is_none() {
        TrustState::NoConfiguration
    } else if concerns.is_empty() {
        TrustState::NothingToApprove
    } else if launch::pending_trust(ctx, &prepared).is_some() {
        TrustState::Unapproved
    } else {
        TrustState::Approved
    };
    TrustCheck {
        state,
        concerns: match state {
            TrustState::Unapproved => concerns
                .iter()
                .map(|c| match &c.source {
                    Some(source) => format!("{} ({source})", c.what),
                    None => c.what.clone(),
                })
                .collect(),
            _ => Vec::new(),
        },
        error: None,
    }
}

impl ImagesCheck {
    fn unknown(tag: String, why: &str) -> Self {
        Self {
            foundation: ImageCheck::unknown(tag, Some(why.to_owned())),
            full: None,
            base: None,
            project: None,
            error: None,
        }
    }
}

impl ImageCheck {
    fn unknown(tag: String, error: Option<String>) -> Self {
        Self {
            tag,
            status: TierState::Unknown,
            id: None,
            hash: None,
            expected_hash: None,
            error,
            source: None,
            pulls: false,
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
    let plan = FoundationPlan::new(&config.image).ok();
    let certificates = plan
        .as_ref()
        .map(|p| UserLayer::certificates_of(&p.context))
        .unwrap_or_default();
    // Which images count as current: the chain's own decision.
    let decision = Decision::foundation(&config.image);
    let expected = plan
        .as_ref()
        .map(|p| decision.current(&p.hash, &certificates));
    let pulls = decision.pulls();
    let info = match engine.inspect_image(&tag).await {
        Ok(info) => info,
        Err(e) => {
            return ImagesCheck {
                foundation: ImageCheck::unknown(tag, Some(e.to_string())),
                full: None,
                base: None,
                project: None,
                error: None,
            };
        }
    };
    let freshness = expected
        .as_ref()
        .map(|current| current.freshness(info.as_ref().map(|i| &i.labels), None));
    let mut status = match &freshness {
        Some(freshness) => TierState::from(freshness),
        None if info.is_none() => TierState::Missing,
        None => TierState::Unknown,
    };
    let current: Option<&ImageInfo> = info
        .as_ref()
        .filter(|_| freshness == Some(Freshness::UpToDate));
    let (full, base, project, error) =
        match chain_status(engine, ctx, config, project, current, &certificates).await {
            Ok(chain) => (chain.full, Some(chain.base), Some(chain.project), None),
            Err(e) => (None, None, None, Some(e.to_string())),
        };
    // A pulled full image contains the foundation: none is made for the chain.
    if status == TierState::Missing
        && full
            .as_ref()
            .is_some_and(|f| f.provenance.is_some() || Decision::full(&config.image).pulls())
    {
        status = TierState::None;
    }
    ImagesCheck {
        foundation: ImageCheck {
            tag,
            status,
            id: info.as_ref().map(|i| i.id.clone()),
            hash: info
                .as_ref()
                .and_then(|i| i.labels.get(stockade_core::labels::HASH).cloned()),
            expected_hash: expected.map(|c| c.expected().to_owned()),
            error: None,
            source: info
                .as_ref()
                .map(|i| provenance(&i.labels).unwrap_or_else(|| "built".to_owned())),
            pulls,
        },
        full,
        base,
        project,
        error,
    }
}

/// The report's lines, each marked by the status it describes.
fn lines(ctx: &Context, report: &Report) -> Vec<Line> {
    let mut out = Vec::new();
    let mut push = |status: Mark, what: &str, detail: String, fix: Option<String>| {
        out.push(Line {
            status,
            what: what.to_owned(),
            detail,
            fix,
        })
    };
    let e = &report.engine;
    match &e.info {
        Some(info) => push(
            Mark::Ok,
            "Engine",
            format!(
                "{} {} (API {}, {}/{}, {}) at {} ({})",
                if info.podman { "Podman" } else { "Docker" },
                info.version,
                info.api_version,
                info.os,
                info.arch,
                if info.rootless { "rootless" } else { "rootful" },
                info.endpoint,
                info.endpoint_source,
            ),
            None,
        ),
        None => push(
            Mark::Fail,
            "Engine",
            e.error.clone().unwrap_or_else(|| "unreachable".to_owned()),
            e.hint.clone(),
        ),
    }
    let id = &report.identity;
    push(
        Mark::Ok,
        "Identity",
        format!(
            "{} (uid {}, gid {}), HOME {}",
            id.name,
            id.uid,
            id.gid,
            id.home.display()
        ),
        None,
    );
    let config = &report.config;
    let fix = || Some("`stockade config show` lists every error".to_owned());
    for file in &config.files {
        let found = if file.found { "found" } else { "not found" };
        match file.errors.as_slice() {
            [] => push(
                Mark::Ok,
                &format!("Config ({})", file.scope),
                format!("{} ({found})", file.path.display()),
                None,
            ),
            [first, rest @ ..] => push(
                Mark::Fail,
                &format!("Config ({})", file.scope),
                format!(
                    "{}:{first}{}",
                    file.path.display(),
                    match rest.len() {
                        0 => String::new(),
                        n => format!(" (and {n} more)"),
                    }
                ),
                fix(),
            ),
        }
    }
    for error in &config.other_errors {
        push(Mark::Fail, "Config", error.clone(), fix());
    }
    let p = &report.project;
    let root = format!("{}{}", p.root.display(), if p.git { " (git)" } else { "" });
    match &p.refused {
        None => push(Mark::Ok, "Project", root, None),
        Some(why) => push(
            Mark::Fail,
            "Project",
            why.clone(),
            Some("cd into a project directory".to_owned()),
        ),
    }
    let t = &report.trust;
    let (status, detail, fix) = match t.state {
        TrustState::NoConfiguration => (
            Mark::Ok,
            "no project configuration (.stockade/) to approve".to_owned(),
            None,
        ),
        TrustState::NothingToApprove => (
            Mark::Ok,
            "the project configuration adds nothing that needs approval".to_owned(),
            None,
        ),
        TrustState::Approved => (
            Mark::Ok,
            "the project configuration is approved".to_owned(),
            None,
        ),
        TrustState::Unapproved => (
            Mark::Warn,
            format!(
                "the project configuration is new or changed and not approved; a launch asks, \
                 and without a terminal refuses. It adds: {}",
                t.concerns.join("; ")
            ),
            Some("review .stockade/, then run `stockade trust`".to_owned()),
        ),
        TrustState::Unknown => (Mark::Fail, t.error.clone().unwrap_or_default(), None),
    };
    push(status, "Trust", detail, fix);
    let images = &report.images;
    let f = &images.foundation;
    let (status, words) = match f.status {
        TierState::UpToDate => (Mark::Ok, "up to date".to_owned()),
        TierState::Stale if f.pulls => (Mark::Warn, "stale (pulled on the next run)".to_owned()),
        TierState::Missing if f.pulls => {
            (Mark::Warn, "missing (pulled on the next run)".to_owned())
        }
        TierState::Stale => (Mark::Warn, "stale (rebuilt on the next run)".to_owned()),
        TierState::Missing => (Mark::Warn, "missing (built on the next run)".to_owned()),
        TierState::None => (
            Mark::Ok,
            "not needed (the pulled full image contains it)".to_owned(),
        ),
        TierState::Unknown => (
            Mark::Fail,
            format!(
                "unknown ({})",
                f.error.as_deref().unwrap_or("not looked up")
            ),
        ),
    };
    // Where it came from, when it was pulled (a built one says nothing more).
    let words = match f.source.as_deref() {
        Some(source) if source != "built" => format!("{words}, {source}"),
        _ => words,
    };
    // A foundation that is not needed has no tag to name.
    let detail = match f.status {
        TierState::None => words,
        _ => format!("{words} ({})", f.tag),
    };
    push(status, "Foundation image", detail, None);
    if let Some(full) = &images.full {
        let (status, words) = tier_words(full);
        let words = match &full.provenance {
            Some(source) => format!("{words}, {source}"),
            None => words,
        };
        push(
            status,
            "Full toolset image",
            format!("{words} ({})", full.tag),
            None,
        );
    }
    let home = &ctx.identity.home;
    if let Some(base) = &images.base {
        let what = match (base.source, base.from.as_deref()) {
            ("dockerfile", Some(path)) => format!("custom ({})", tilde(path, home)),
            ("image", Some(name)) => format!("custom image {name}"),
            _ if images.full.is_some() => "default (full image alias)".to_owned(),
            _ => "default (foundation alias)".to_owned(),
        };
        let (status, words) = tier_words(base);
        push(
            status,
            "Base image",
            format!("{what}, {words} ({})", base.tag),
            None,
        );
    }
    if let Some(project) = &images.project {
        let (status, words) = tier_words(project);
        let detail = if project.status == TierState::None {
            words
        } else {
            format!("{words} ({})", project.tag)
        };
        push(status, "Project image", detail, None);
    }
    if let Some(error) = &images.error {
        push(Mark::Fail, "Images", error.clone(), None);
    }
    if let Some(egress) = &report.egress {
        let (status, detail, fix) = egress.verdict();
        push(status, "Egress", detail, fix);
    }
    for runtime in &report.runtimes {
        let (status, detail, fix) = runtime.verdict();
        push(
            status,
            &format!("Runtime {} {}", runtime.name, runtime.spec),
            detail,
            fix,
        );
    }
    for agent in &report.agents {
        let (status, detail, fix) = agent.verdict();
        push(status, &format!("Agent {}", agent.name), detail, fix);
    }
    for warning in &report.warnings {
        push(Mark::Warn, "Setting", warning.clone(), None);
    }
    out
}

fn print_human(ctx: &Context, report: &Report) {
    let ui = &ctx.ui;
    for line in &report.checks {
        let mark = match line.status {
            Mark::Ok => ui.paint("32", "ok  "),
            Mark::Warn => ui.paint("33", "warn"),
            Mark::Fail => ui.paint("31", "FAIL"),
        };
        println!("{mark} {}: {}", line.what, line.detail);
        if let Some(fix) = &line.fix {
            println!("       fix: {fix}");
        }
    }
    let s = &report.summary;
    println!(
        "{} ok, {} {}, {} FAIL",
        s.ok,
        s.warn,
        if s.warn == 1 { "warning" } else { "warnings" },
        s.fail
    );
}

fn tier_words(tier: &TierStatus) -> (Mark, String) {
    match (tier.status, tier.reason.as_deref()) {
        (TierState::UpToDate, _) => (Mark::Ok, "up to date".to_owned()),
        (TierState::None, _) => (Mark::Ok, "none".to_owned()),
        (TierState::Missing, Some(reason)) => (Mark::Warn, format!("missing ({reason})")),
        (TierState::Missing, None) => (Mark::Warn, "missing (built on the next run)".to_owned()),
        (TierState::Stale, Some(reason)) => (Mark::Warn, format!("stale ({reason})")),
        (TierState::Stale, None) => (Mark::Warn, "stale (rebuilt on the next run)".to_owned()),
        (TierState::Unknown, reason) => (
            Mark::Fail,
            format!("unknown ({})", reason.unwrap_or("not looked up")),
        ),
    }
}

/// `/home/ada/.config/x` → `~/.config/x`.
fn tilde(path: &str, home: &std::path::Path) -> String {
    match std::path::Path::new(path).strip_prefix(home) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.to_owned(),
    }
}
