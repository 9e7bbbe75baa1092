//! The checks before any sandbox starts: the project root is not HOME or `/`, the project's own
//! configuration is approved, and no likely secret is exposed unannounced. Each asks on a
//! terminal and stops otherwise, naming the command or flag that lets the run go ahead.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use stockade_core::config::Resolved;
use stockade_core::project::Project;
use stockade_core::secrets::{ScanReport, Severity, scan};
use stockade_core::trust::{self, Concern, TrustStore};

use crate::context::Context;
use crate::exit::CliError;
use crate::ui::Ui;

/// What a launch may go ahead despite (from `--trust` and `--allow-secrets`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowances {
    pub trust: bool,
    pub secrets: bool,
}

/// Run every check; `Err` means nothing may start.
pub fn check(
    ctx: &Context,
    project: &Project,
    resolved: &Resolved,
    allow: Allowances,
) -> Result<(), CliError> {
    refuse_broad_root(project, &ctx.identity.home)?;
    for warning in &resolved.warnings {
        ctx.ui
            .warn(&format!("{} (from {})", warning.message, warning.source));
    }
    check_trust(ctx, project, resolved, allow.trust)?;
    if resolved.config.secrets.scan {
        check_secrets(ctx, project, resolved, allow.secrets)?;
    }
    Ok(())
}

/// A project root of HOME or `/` would put every file of the user (or the host) in the sandbox.
pub fn refuse_broad_root(project: &Project, home: &Path) -> Result<(), CliError> {
    let home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    if project.root == Path::new("/") || project.root == home {
        return Err(CliError::other(
            format!(
                "refusing to use {} as the project: the sandbox would get every file in it, \
                 your credentials included",
                project.root.display()
            ),
            Some("cd into a project directory (a git repository or a directory of its own)"),
        ));
    }
    Ok(())
}

/// Whether questions can be asked (stdin and stderr are terminals).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask a yes/no question on the terminal; anything but y/yes is no.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// The project configuration's concerns and fingerprint, when it needs an approval it lacks.
pub fn pending_trust(
    ctx: &Context,
    project: &Project,
    resolved: &Resolved,
) -> Result<Option<(String, Vec<Concern>)>, CliError> {
    let mut concerns = trust::concerns(resolved, &project.root);
    concerns.extend(trust::section_concerns(&resolved.sections));
    if concerns.is_empty() {
        return Ok(None);
    }
    let fingerprint = trust::fingerprint(&project.root)
        .map_err(|e| {
            CliError::other(
                format!("cannot read the project's .stockade files: {e}"),
                Some("check their permissions"),
            )
        })?
        .unwrap_or_default();
    let fingerprint = trust::approval_fingerprint(&fingerprint, &concerns);
    let store = TrustStore::new(&ctx.dirs.state);
    if store.is_trusted(&project.root, &fingerprint) {
        return Ok(None);
    }
    Ok(Some((fingerprint, concerns)))
}

/// What the project configuration adds. Shown even with --quiet: it is what approval is for.
pub fn print_concerns(project: &Project, concerns: &[Concern]) {
    eprintln!(
        "The project configuration of {} adds to the sandbox:",
        project.root.display()
    );
    for c in concerns {
        match &c.source {
            Some(source) => eprintln!("  - {} ({source})", c.what),
            None => eprintln!("  - {}", c.what),
        }
    }
}

fn check_trust(
    ctx: &Context,
    project: &Project,
    resolved: &Resolved,
    allow: bool,
) -> Result<(), CliError> {
    let Some((fingerprint, concerns)) = pending_trust(ctx, project, resolved)? else {
        return Ok(());
    };
    if allow {
        ctx.ui
            .warn("running with unapproved project configuration (--trust)");
        return Ok(());
    }
    let message = "this project's .stockade configuration is new or changed and not approved";
    print_concerns(project, &concerns);
    if !interactive() {
        return Err(CliError::other(
            message,
            Some("review it, then run `stockade trust` (or pass --trust for this run only)"),
        ));
    }
    if !confirm("Trust this project configuration?") {
        return Err(CliError::other(
            format!("{message}; nothing was run"),
            Some("run `stockade trust` once you have reviewed .stockade/"),
        ));
    }
    let store = TrustStore::new(&ctx.dirs.state);
    store
        .approve(&project.root, &fingerprint)
        .map_err(|e| CliError::other(format!("cannot record the approval: {e}"), None))?;
    Ok(())
}

/// Scan, report and decide.
fn check_secrets(
    ctx: &Context,
    project: &Project,
    resolved: &Resolved,
    allow: bool,
) -> Result<(), CliError> {
    let started = Instant::now();
    let report = run_scan(project, resolved)?;
    tracing::debug!(
        target: "stockade",
        "secret scan: {} files in {:?}",
        report.files,
        started.elapsed()
    );
    if report.findings.is_empty() {
        return Ok(());
    }
    print_findings(&ctx.ui, &report);
    if report.highest() < Some(Severity::High) || allow {
        return Ok(());
    }
    let message = "likely secrets in the project would be visible inside the sandbox";
    let help =
        "move them out of the project, list them in `[secrets] allowlist`, or pass --allow-secrets";
    if !interactive() {
        return Err(CliError::other(message, Some(help)));
    }
    if confirm("Continue and expose them to the sandbox?") {
        Ok(())
    } else {
        Err(CliError::other(
            format!("{message}; nothing was run"),
            Some(help),
        ))
    }
}

pub fn run_scan(project: &Project, resolved: &Resolved) -> Result<ScanReport, CliError> {
    scan(&project.root, &resolved.config.secrets.allowlist).map_err(|e| {
        CliError::other(
            e.to_string(),
            Some("fix the pattern in `[secrets] allowlist`"),
        )
    })
}

pub fn print_findings(ui: &Ui, report: &ScanReport) {
    ui.warn(&format!(
        "{} likely secret file(s) in the project:",
        report.findings.len()
    ));
    for f in &report.findings {
        let severity = match f.severity {
            Severity::High => ui.paint("31", "high  "),
            Severity::Medium => ui.paint("33", "medium"),
            Severity::Low => "low   ".to_owned(),
        };
        eprintln!(
            "  {severity} {}  ({}{})",
            f.path.display(),
            f.kind,
            if f.git_ignored { ", git-ignored" } else { "" }
        );
    }
}
