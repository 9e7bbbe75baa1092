//! The first steps of a launch, in the order data flows down (docs/ARCHITECTURE.md):
//! *read* ([`prepare`]: the project's files read once, through `fsread`), *resolve* (the
//! configuration parsed from those bytes, the files it refers to read), *approve* ([`check`]:
//! the project root is not HOME or `/`, the project's own configuration is approved — by a
//! fingerprint of the very bytes read — and no likely secret is exposed unannounced). Each check
//! asks on a terminal and stops otherwise, naming the command or flag that lets the run go ahead.
//! The plan and the run take the [`Prepared`] value: nothing later reads a project file again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use stockade_core::chain;
use stockade_core::config::{ConfigError, FlagValue, Resolved, Scope, Value};
use stockade_core::project::Project;
use stockade_core::project_files::{
    ProjectFiles, ProjectFilesError, ReadContext, Referenced, read_context,
};
use stockade_core::secrets::{ScanReport, Severity, scan};
use stockade_core::trust::{self, Concern, TrustStore};

use crate::context::Context;
use crate::exit::CliError;
use crate::ui::{Ui, confirm, interactive};

/// What a launch may go ahead despite (from `--trust` and `--allow-secrets`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowances {
    pub trust: bool,
    pub secrets: bool,
}

/// What the read and resolve steps produce: the project, its files as read once, the
/// configuration parsed from those bytes, and the files the configuration refers to.
#[derive(Debug)]
pub struct Prepared {
    pub project: Project,
    pub files: ProjectFiles,
    pub resolved: Resolved,
    /// `[image] ca_certificates`, as read (the foundation is built from these bytes).
    pub certificates: Vec<Referenced>,
    /// The context of `[image] base_dockerfile` when that Dockerfile lies in the project: read
    /// once like `.stockade/`, fingerprinted, and built from these bytes.
    pub custom_base: Option<ReadContext>,
}

/// Read the project's files once and resolve the configuration from them.
pub fn prepare(ctx: &Context, flags: Vec<FlagValue>) -> Result<Prepared, CliError> {
    let project = ctx.project()?;
    let files = ProjectFiles::read(&project.root, Some(&ctx.dirs.cache)).map_err(files_error)?;
    let resolved = ctx.resolve_read(&project, files.config.as_deref(), flags)?;
    let certificates = files
        .read_referenced(&resolved.config.image.ca_certificates, "a CA file")
        .map_err(files_error)?;
    let custom_base = custom_base_context(ctx, &files, &resolved)?;
    Ok(Prepared {
        project,
        files,
        resolved,
        certificates,
        custom_base,
    })
}

/// `[image] base_dockerfile`, when it is found in the project: its directory read as a context.
fn custom_base_context(
    ctx: &Context,
    files: &ProjectFiles,
    resolved: &Resolved,
) -> Result<Option<ReadContext>, CliError> {
    let image = &resolved.config.image;
    let (Some(_), Some(configured)) = (&image.base, &image.base_dockerfile) else {
        return Ok(None);
    };
    let root = files.dir.root();
    let Ok(path) = chain::find_base_dockerfile(configured) else {
        return Ok(None); // reported where the image is needed
    };
    let Some(rel) = path.strip_prefix(root).ok() else {
        return Ok(None); // the user's own file
    };
    let (Some(dir), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Ok(None);
    };
    let name = name.to_string_lossy();
    match read_context(&files.dir, dir, &name, Some(&ctx.dirs.cache)).map_err(files_error)? {
        Some(context) => Ok(Some(context)),
        None => Err(CliError::other(
            format!("{} is not a regular file in the project", path.display()),
            Some("fix `[image] base_dockerfile`"),
        )),
    }
}

/// A project file that could not be read safely: what, where, and how to fix it.
pub fn files_error(e: ProjectFilesError) -> CliError {
    CliError::other(
        format!("refusing to read the project's files: {e}"),
        Some(e.help()),
    )
}

/// Run every check; `Err` means nothing may start.
pub fn check(ctx: &Context, prepared: &Prepared, allow: Allowances) -> Result<(), CliError> {
    let (project, resolved) = (&prepared.project, &prepared.resolved);
    refuse_broad_root(project, &ctx.identity.home)?;
    for warning in &resolved.warnings {
        ctx.ui
            .warn(&format!("{} (from {})", warning.message, warning.source));
    }
    check_trust(ctx, prepared, allow.trust)?;
    check_mount_sources(prepared)?;
    if resolved.config.secrets.scan {
        check_secrets(ctx, project, resolved, allow.secrets)?;
    }
    Ok(())
}

/// Mount sources are directories (or files) the engine resolves by path when it creates the
/// container, so they cannot be pinned by bytes. Every mount whose source lies in the project
/// must be reached from the project root without a symbolic link, checked as late as possible
/// before create: an approved `data/` replaced by a link to `~/.config/stockade` is refused, at
/// the file and line that configure the mount.
pub fn check_mount_sources(prepared: &Prepared) -> Result<(), CliError> {
    let root = &prepared.project.root;
    let dir = &prepared.files.dir;
    let mut errors = Vec::new();
    for setting in &prepared.resolved.settings {
        let Value::Mount(mount) = &setting.value else {
            continue;
        };
        let mut candidates: Vec<PathBuf> = vec![mount.source.clone()];
        if let Some(written) = written_source(setting, root) {
            candidates.push(written);
        }
        for path in candidates {
            let Some(rel) = path
                .strip_prefix(root)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
            else {
                continue;
            };
            if let Err(e) = dir.check_path(rel) {
                let message = format!("mount source refused: {e}");
                let help = Some(format!(
                    "{}; a mount source in the project must be a real directory or file",
                    e.help()
                ));
                errors.push(setting.origin.error(message, "mounted here", help));
                break;
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid { errors }.into())
    }
}

/// The mount source as written (before links were resolved), made absolute the way the
/// configuration resolves it: `~/` from HOME, relative from the project root (project file) or
/// the file's directory. `None` when it cannot be told.
fn written_source(setting: &stockade_core::config::Setting, root: &Path) -> Option<PathBuf> {
    let text = setting.origin.text.get(setting.origin.span.clone())?;
    let text = text.trim().trim_matches(|c| c == '"' || c == '\'');
    let source = text.split(':').next()?;
    if source.is_empty() || source.starts_with('~') {
        return None;
    }
    let path = Path::new(source);
    let base = match &setting.origin.source {
        stockade_core::config::Source::File { scope, path, .. } if *scope != Scope::Project => {
            path.parent()?.to_path_buf()
        }
        _ => root.to_path_buf(),
    };
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    // Lexically: `..` is not followed here (the link check below is what matters).
    joined
        .components()
        .all(|c| !matches!(c, std::path::Component::ParentDir))
        .then_some(joined)
}

/// A project root of HOME or `/` would put every file of the user (or the host) in the sandbox.
pub fn refuse_broad_root(project: &Project, home: &Path) -> Result<(), CliError> {
    let home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    if project.root == Path::new("/") || project.root == home {
        return Err(CliError::refused(
            "broad-project",
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

/// Everything the project configuration adds (concerns), resolved from the bytes read.
pub fn concerns(prepared: &Prepared) -> Vec<Concern> {
    let (project, resolved) = (&prepared.project, &prepared.resolved);
    let mut concerns = trust::concerns(resolved, &project.root);
    concerns.extend(trust::section_concerns(&resolved.sections));
    concerns.extend(trust::context_concern(&prepared.files));
    concerns
}

/// The fingerprint an approval of this launch's files pins (`None`: nothing to approve).
pub fn fingerprint(prepared: &Prepared, concerns: &[Concern]) -> Option<String> {
    fingerprint_as(prepared, concerns, &prepared.project.root)
}

/// [`fingerprint`] as if the project were at `root` (a worktree's, as its main project's).
pub fn fingerprint_as(prepared: &Prepared, concerns: &[Concern], root: &Path) -> Option<String> {
    // The files the configuration refers to inside the project: the agent can rewrite them.
    let mut inside: Vec<Referenced> = prepared
        .certificates
        .iter()
        .filter(|r| r.path.starts_with(&prepared.project.root))
        .cloned()
        .collect();
    // The custom base's context in the project, by its content hash (of the bytes read).
    if let Some(context) = &prepared.custom_base {
        inside.push(Referenced {
            path: context.dir.join(&context.dockerfile_name),
            bytes: context.hash.clone().into_bytes(),
        });
    }
    trust::fingerprint_as(&prepared.files, &inside, concerns, root)
}

/// The project configuration's concerns and fingerprint, when it needs an approval it lacks.
pub fn pending_trust(ctx: &Context, prepared: &Prepared) -> Option<(String, Vec<Concern>)> {
    let concerns = concerns(prepared);
    if concerns.is_empty() {
        return None;
    }
    let fingerprint = fingerprint(prepared, &concerns).unwrap_or_default();
    let store = TrustStore::new(&ctx.dirs.state);
    if store.is_trusted(&prepared.project.root, &fingerprint) {
        return None;
    }
    // A worktree stockade made shares its main project's approval of the same content.
    if let Some(record) = crate::worktree::Records::new(ctx).at(&prepared.project.root) {
        let as_main = fingerprint_as(prepared, &concerns, &record.repository);
        if as_main.is_some_and(|f| store.is_trusted(&record.repository, &f)) {
            return None;
        }
    }
    Some((fingerprint, concerns))
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

/// Approval of the project configuration, for a launch and for `stockade build`.
pub fn check_trust(ctx: &Context, prepared: &Prepared, allow: bool) -> Result<(), CliError> {
    let project = &prepared.project;
    let Some((fingerprint, concerns)) = pending_trust(ctx, prepared) else {
        return Ok(());
    };
    if allow {
        ctx.ui
            .warn("running with unapproved project configuration (--trust)");
        return Ok(());
    }
    let message = "this project's .stockade configuration is new or changed and not approved";
    if ctx.ui.json {
        // Only the error object goes to stderr: what it adds is in its message.
        let adds: Vec<&str> = concerns.iter().map(|c| c.what.as_str()).collect();
        return Err(CliError::refused(
            "not-approved",
            format!("{message}; it adds: {}", adds.join("; ")),
            Some("review it, then run `stockade trust` (or pass --trust for this run only)"),
        )
        .at(&project.root.join(".stockade")));
    }
    print_concerns(project, &concerns);
    if !interactive() {
        return Err(CliError::refused(
            "not-approved",
            message,
            Some("review it, then run `stockade trust` (or pass --trust for this run only)"),
        ));
    }
    if confirm("Trust this project configuration?") != Some(true) {
        return Err(CliError::refused(
            "not-approved",
            format!("{message}; nothing was run"),
            Some("run `stockade trust` once you have reviewed .stockade/"),
        ));
    }
    let store = TrustStore::new(&ctx.dirs.state);
    store
        .approve(&project.root, &fingerprint)
        .map_err(|e| CliError::caused("cannot record the approval", e, None))?;
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
        return Err(CliError::refused("secrets", message, Some(help)));
    }
    if confirm("Continue and expose them to the sandbox?") == Some(true) {
        Ok(())
    } else {
        Err(CliError::refused(
            "secrets",
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
