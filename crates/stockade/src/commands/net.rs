//! `stockade net log [--json] [-f] [--all]`: the requests the egress gateway refused, and
//! `stockade net allow HOST [--project|--global]`: allow a host in a configuration file and in
//! the running sandboxes it concerns, at once (docs/egress.md#denials).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat, renameat};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};
use serde::{Deserialize, Serialize};
use stockade_core::egress::{self, Rule};
use stockade_core::fsread::{self, ProjectDir, ReadError};
use stockade_core::project::Project;
use stockade_engine::Engine;

use crate::context::Context;
use crate::exit::CliError;
use crate::gateway;
use crate::ui::print_json;

/// One refusal, as the gateway logs it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// RFC 3339, UTC.
    pub time: String,
    /// The container's name.
    #[serde(default)]
    pub sandbox: Option<String>,
    /// The session's name (what `ps` shows).
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    /// The project root of the sandbox.
    #[serde(default)]
    pub project: Option<String>,
    pub host: String,
    pub port: u16,
    /// `not-allowed`, `raw-ip`, `private-address` or `sni-mismatch`.
    pub reason: String,
}

impl Denial {
    fn cells(&self, all: bool) -> Vec<String> {
        let or_dash = |v: &Option<String>| {
            v.clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".to_owned())
        };
        let mut cells = vec![
            self.time.clone(),
            or_dash(&self.session),
            or_dash(&self.agent),
            self.host.clone(),
            self.port.to_string(),
            self.reason.clone(),
        ];
        if all {
            cells.push(or_dash(&self.project));
        }
        // Every field came from a sandbox: control characters are shown, not sent to the
        // terminal.
        cells.iter().map(|cell| printable(cell)).collect()
    }
}

/// `text` with its control characters escaped (`\u{1b}`).
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// The denials in the gateway's log text (a line that is not one is skipped).
pub fn parse_denials(text: &str) -> Vec<Denial> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// How often `net log -f` looks at the log again.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// `stockade net log [--json] [-f] [--all]`.
pub async fn log(ctx: &Context, json: bool, follow: bool, all: bool) -> Result<u8, CliError> {
    let (project, roots) = if all {
        (None, None)
    } else {
        let project = ctx.project()?;
        let roots = crate::sessions::roots(ctx, &project);
        (Some(project), Some(roots))
    };
    let wanted = |d: &Denial| match &roots {
        None => true,
        Some(roots) => d
            .project
            .as_deref()
            .is_some_and(|p| roots.iter().any(|r| r == Path::new(p))),
    };
    let engine = ctx.connect().await?;
    // The rotated file first: a log that just rotated still shows what came before.
    let (previous, text) = gateway::read_denials(&engine, ctx).await?;
    let denials: Vec<Denial> = parse_denials(&previous)
        .into_iter()
        .chain(parse_denials(&text))
        .filter(wanted)
        .collect();
    let mut table = Table::new(all);
    if follow {
        table.fit(&denials);
    } else {
        table.widen(&denials);
    }
    if denials.is_empty() {
        let whose = match &project {
            Some(p) => format!("of sandboxes in {}", p.root.display()),
            None => "at all".to_owned(),
        };
        let more = if follow { "; waiting for some" } else { "" };
        ctx.ui.info(&format!("no denials {whose}{more}"));
        if !follow && !json {
            return Ok(0);
        }
    }
    match (json, follow) {
        (true, false) => print_json(&denials)?,
        (true, true) => print_lines(&denials)?,
        (false, _) => {
            table.print_header();
            table.print(&denials);
        }
    }
    if !follow {
        return Ok(0);
    }
    let mut seen = Seen::of(&text);
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let text = gateway::read_current_denials(&engine, ctx).await?;
        if text.is_empty() {
            // No gateway for now (being recreated; its volume keeps the log), or a log just
            // rotated: nothing new to show, and nothing to forget.
            continue;
        }
        let fresh: Vec<Denial> = parse_denials(seen.new_part(&text))
            .into_iter()
            .filter(wanted)
            .collect();
        seen = Seen::of(&text);
        if json {
            print_lines(&fresh)?;
        } else {
            table.print(&fresh);
        }
    }
}

/// How much of the log was shown: its complete lines, and its first line (the log is rotated
/// by moving it away, so a log that no longer starts with that line is a new one).
struct Seen {
    len: usize,
    first: String,
}

impl Seen {
    fn of(text: &str) -> Self {
        Self {
            len: text.rfind('\n').map_or(0, |i| i + 1),
            first: text.lines().next().unwrap_or_default().to_owned(),
        }
    }

    /// The complete lines of `text` after those seen.
    fn new_part<'a>(&self, text: &'a str) -> &'a str {
        let same = text.len() >= self.len && text.starts_with(&self.first);
        let start = if same { self.len } else { 0 };
        let end = text.rfind('\n').map_or(0, |i| i + 1).max(start);
        text.get(start..end).unwrap_or_default()
    }
}

/// `-f --json`: one object per line, as they come.
fn print_lines(denials: &[Denial]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    for denial in denials {
        let line = serde_json::to_string(denial)
            .map_err(|e| CliError::caused("cannot encode a denial as JSON", e, None))?;
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            // Our reader went away (`| head`).
            std::process::exit(0);
        }
    }
    Ok(())
}

/// The denials table: like `crate::ui::print_table`, but its widths are kept while following,
/// so rows that come later line up with the first ones.
struct Table {
    header: Vec<&'static str>,
    widths: Vec<usize>,
}

impl Table {
    fn new(all: bool) -> Self {
        let mut header = vec!["TIME", "SANDBOX", "AGENT", "HOST", "PORT", "REASON"];
        if all {
            header.push("PROJECT");
        }
        let widths = header.iter().map(|h| h.len()).collect();
        Self { header, widths }
    }

    /// Widths for following: room for common values, and for every row known now.
    fn fit(&mut self, denials: &[Denial]) {
        let least = [20, 12, 8, 28, 5, 15, 0];
        for (width, least) in self.widths.iter_mut().zip(least) {
            *width = (*width).max(least);
        }
        self.widen(denials);
    }

    fn widen(&mut self, denials: &[Denial]) {
        let all = self.header.len() > 6;
        for denial in denials {
            for (width, cell) in self.widths.iter_mut().zip(denial.cells(all)) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }

    fn line(&self, cells: &[String]) {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = self.widths[i]));
            }
        }
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{}", out.trim_end())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            std::process::exit(0);
        }
    }

    fn print_header(&mut self) {
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        self.line(&header);
    }

    /// Rows, in the widths set by [`Self::widen`] or [`Self::fit`].
    fn print(&mut self, denials: &[Denial]) {
        let all = self.header.len() > 6;
        for denial in denials {
            self.line(&denial.cells(all));
        }
    }
}

/// Which configuration file `net allow` edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The user's global file (the default).
    Global,
    /// The project's `.stockade/config.toml`.
    Project,
}

/// How an allowlist entry is written: `host` (ports 443 and 80), `host:port`, `[v6]:port`.
fn entry_of(rule: &Rule) -> String {
    if rule.ports == [443, 80] {
        return rule.host.clone();
    }
    let port = rule.ports.first().copied().unwrap_or(443);
    if rule.host.contains(':') {
        format!("[{}]:{port}", rule.host)
    } else {
        format!("{}:{port}", rule.host)
    }
}

/// `stockade net allow HOST [--project|--global]`.
pub async fn allow(ctx: &Context, host: &str, scope: Scope) -> Result<u8, CliError> {
    let rule = egress::parse_rule(host).map_err(|e| {
        CliError::refused(
            "bad-host",
            e,
            Some(
                "write a host name (`pypi.org`), `*.example.com` for the subdomains of \
                 example.com, `host:port` for a port other than 443 and 80, or an IP address",
            ),
        )
    })?;
    let entry = entry_of(&rule);
    // The project only for its own file: the global file is edited from anywhere.
    let project = match scope {
        Scope::Global => None,
        Scope::Project => Some(ctx.project()?),
    };
    let (path, text) = match &project {
        None => {
            let path = ctx.dirs.global_config();
            let text =
                fsread::read_config(&path, false, &ctx.cwd).map_err(|e| unreadable(&path, e))?;
            (path, text)
        }
        Some(project) => (project.config_file(), read_project_config(project)?),
    };
    let Some(edited) = add_entry(&path, text.as_deref().unwrap_or_default(), &entry, &rule)? else {
        ctx.ui.info(&format!(
            "{entry} is already in [network] allow of {}: nothing changed",
            path.display()
        ));
        return Ok(0);
    };
    match &project {
        None => write_global_config(&path, &edited)?,
        Some(project) => write_project_config(&project.root, &edited)?,
    }
    ctx.ui.success(&format!(
        "Added {entry} to [network] allow in {}",
        path.display()
    ));
    let only = project.as_ref().map(|p| p.root.as_path());
    match ctx.connect().await {
        Ok(engine) => {
            let count = apply_live(&engine, ctx, &rule, only).await?;
            let running = if count == 1 {
                "1 running sandbox".to_owned()
            } else {
                format!("{count} running sandboxes")
            };
            let whose =
                only.map_or_else(|| "this namespace".to_owned(), |p| p.display().to_string());
            ctx.ui.info(&format!("{running} of {whose} got it"));
        }
        Err(e) => ctx.ui.warn(&format!(
            "running sandboxes were not updated ({e}); they get it at their next launch"
        )),
    }
    if project.is_some() {
        approval_note(ctx);
    }
    Ok(0)
}

/// After `--project`: the file is part of what `stockade trust` approves, and an `allow` entry
/// widens the sandbox, so the next launch asks again. Said from what the trust check decides.
fn approval_note(ctx: &Context) {
    match crate::launch::prepare(ctx, Vec::new()) {
        Ok(prepared) => {
            if crate::launch::pending_trust(ctx, &prepared).is_some() {
                ctx.ui.warn(
                    "the project's configuration changed: its next launch asks for approval \
                     again (`stockade trust` approves it)",
                );
            }
        }
        Err(e) => ctx.ui.warn(&format!(
            "the project's configuration does not load now: {e}"
        )),
    }
}

/// Add the rule to the policy of every running sandbox of the namespace (or of `project`'s):
/// the gateway reads a policy on every request. Returns how many got it.
async fn apply_live(
    engine: &Engine,
    ctx: &Context,
    rule: &Rule,
    project: Option<&Path>,
) -> Result<usize, CliError> {
    let mut count = 0;
    for mut policy in gateway::read_policies(engine, ctx).await? {
        if project.is_some_and(|p| policy.project != p) {
            continue;
        }
        let running = engine
            .container_facts(&policy.sandbox)
            .await?
            .is_some_and(|f| f.running);
        if !running {
            continue;
        }
        if !policy.rules.contains(rule) {
            policy.rules.push(rule.clone());
            gateway::write_policy(engine, ctx, &policy).await?;
        }
        count += 1;
    }
    Ok(count)
}

/// `text` with `entry` appended to `[network] allow` (the rest kept as it was); `None` when the
/// list has it already.
fn add_entry(
    path: &Path,
    text: &str,
    entry: &str,
    rule: &Rule,
) -> Result<Option<String>, CliError> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        CliError::other(
            format!(
                "cannot edit {}: it is not valid TOML: {}",
                path.display(),
                e.message()
            ),
            Some("fix the file (`stockade config show` points at the error), then run again"),
        )
    })?;
    let not_a = |what: &str| {
        CliError::other(
            format!("cannot edit {}: {what}", path.display()),
            Some("fix the file, then run again"),
        )
    };
    let network = doc
        .entry("network")
        .or_insert(toml_edit::table())
        .as_table_like_mut()
        .ok_or_else(|| not_a("`network` is not a table"))?;
    let allow = network
        .entry("allow")
        .or_insert(toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or_else(|| not_a("[network] allow is not a list"))?;
    let listed = allow.iter().any(|v| {
        v.as_str()
            .is_some_and(|s| s == entry || egress::parse_rule(s).is_ok_and(|r| r == *rule))
    });
    if listed {
        return Ok(None);
    }
    // Laid out like the entries before it (one per line stays one per line).
    let prefix = allow
        .iter()
        .last()
        .and_then(|v| v.decor().prefix())
        .and_then(|p| p.as_str())
        .filter(|p| p.contains('\n'))
        .map(str::to_owned);
    allow.push(entry);
    if let (Some(prefix), Some(last)) = (prefix, allow.iter_mut().last()) {
        last.decor_mut().set_prefix(prefix);
    }
    Ok(Some(doc.to_string()))
}

fn unreadable(path: &Path, e: std::io::Error) -> CliError {
    CliError::caused(
        format!("cannot read {}", path.display()),
        e,
        Some("check that the file is a regular file you can read"),
    )
}

/// The user's own file: its links are the user's (a dotfiles repository), so the file they lead
/// to is replaced, atomically, with its permissions kept.
fn write_global_config(path: &Path, text: &str) -> Result<(), CliError> {
    let io = |e: std::io::Error| {
        CliError::caused(
            format!("cannot write {}", path.display()),
            e,
            Some("check that the directory is writable"),
        )
    };
    let target = match std::fs::canonicalize(path) {
        Ok(target) => target,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            path.to_path_buf()
        }
        Err(e) => return Err(io(e)),
    };
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(io(std::io::Error::other("not a file path")));
    };
    let dir = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    replace_in(&dir, Path::new(name), text).map_err(io)
}

/// The project's `.stockade/config.toml`, read as a launch reads it: no link followed on the way,
/// a regular file, under the cap.
fn read_project_config(project: &Project) -> Result<Option<String>, CliError> {
    let rel = Path::new(".stockade/config.toml");
    let bytes = ProjectDir::open(&project.root)
        .and_then(|dir| dir.read_file(rel, fsread::CONFIG_CAP, "a configuration file"))
        .map_err(|e| project_file_error(&e))?;
    bytes
        .map(|b| {
            String::from_utf8(b).map_err(|_| {
                CliError::other(
                    format!(
                        "{} is not valid UTF-8 text",
                        project.config_file().display()
                    ),
                    Some("save it as UTF-8"),
                )
            })
        })
        .transpose()
}

fn project_file_error(e: &ReadError) -> CliError {
    let message = format!("refusing to edit the project configuration: {e}");
    match e {
        ReadError::Symlink { .. } | ReadError::NotRegular { .. } | ReadError::Outside { .. } => {
            CliError::refused("project-file-link", message, Some(e.help())).at(e.path())
        }
        _ => CliError::other(message, Some(e.help())),
    }
}

/// Write the project's `.stockade/config.toml` without following a link: `.stockade` is opened
/// (or made) beneath the project root with `O_NOFOLLOW`, and the file is replaced inside it by a
/// rename of a new file (made with `O_EXCL | O_NOFOLLOW`), which never writes through a link.
/// A link at either place is refused, as a launch refuses to read one.
fn write_project_config(root_path: &Path, text: &str) -> Result<(), CliError> {
    let dir_path = root_path.join(".stockade");
    let file_path = dir_path.join("config.toml");
    let io = |path: &Path, e: Errno| {
        CliError::caused(
            format!("cannot write {}", path.display()),
            std::io::Error::from(e),
            Some("check that the project directory is writable"),
        )
    };
    let root = nix::fcntl::open(
        root_path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(root_path, e))?;
    let dir = match open_dir(&root, ".stockade") {
        Err(Errno::ENOENT) => {
            match mkdirat(&root, ".stockade", Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(io(&dir_path, e)),
            }
            open_dir(&root, ".stockade")
        }
        other => other,
    }
    .map_err(|e| not_followed(&root, ".stockade", &dir_path, e))?;
    match fstatat(&dir, "config.toml", AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if is(stat.st_mode, SFlag::S_IFREG) => {}
        Ok(_) => return Err(not_followed(&dir, "config.toml", &file_path, Errno::ELOOP)),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(io(&file_path, e)),
    }
    replace_in(&dir, Path::new("config.toml"), text).map_err(|e| {
        CliError::caused(
            format!("cannot write {}", file_path.display()),
            e,
            Some("check that the project directory is writable"),
        )
    })
}

fn open_dir(parent: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn is(mode: u32, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT == kind
}

/// A place that could not be opened without following a link: a link (or something other
/// than what belongs there) is refused, as reading it would be.
fn not_followed(parent: &OwnedFd, name: &str, path: &Path, e: Errno) -> CliError {
    let error = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if is(stat.st_mode, SFlag::S_IFLNK) => ReadError::Symlink {
            path: path.to_path_buf(),
            target: readlinkat(parent, name).ok().map(PathBuf::from),
        },
        Ok(stat) if matches!(e, Errno::ENOTDIR | Errno::ELOOP) => ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: if is(stat.st_mode, SFlag::S_IFDIR) {
                "a directory"
            } else {
                "not a directory"
            },
        },
        _ => ReadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::from(e),
        },
    };
    project_file_error(&error)
}

/// Replace `name` in `dir` with `text`: a new file beside it (never through a link), then a
/// rename over it, so a reader sees the old file or the new one. An existing file's permission
/// bits are kept (0644 for a new one).
fn replace_in(dir: &OwnedFd, name: &Path, text: &str) -> Result<(), std::io::Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        // The permissions, not setuid, setgid or sticky a sandbox may have set.
        Ok(stat) if is(stat.st_mode, SFlag::S_IFREG) => stat.st_mode & 0o777,
        _ => 0o644,
    };
    let tmp = PathBuf::from(format!(
        ".{}.stockade-{}.tmp",
        name.display(),
        std::process::id()
    ));
    let fd = openat(
        dir,
        tmp.as_path(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?;
    let mut file = std::fs::File::from(fd);
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .and_then(|()| Ok(renameat(dir, tmp.as_path(), dir, name)?));
    if written.is_err() {
        let _ = nix::unistd::unlinkat(dir, tmp.as_path(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_a_sandbox_are_escaped_in_the_table() {
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(printable("pypi.org"), "pypi.org");
    }

    fn add(text: &str, entry: &str) -> Option<String> {
        let rule = egress::parse_rule(entry).unwrap_or_else(|e| panic!("{e}"));
        add_entry(Path::new("config.toml"), text, &entry_of(&rule), &rule)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_entry_is_added_keeping_the_rest_of_the_file() {
        assert_eq!(
            add("", "pypi.org").as_deref(),
            Some("[network]\nallow = [\"pypi.org\"]\n")
        );
        let text =
            "# mine\n[image]\nfrom = \"x\" # the base\n\n[network]\npresets = [\"!packages\"]\n";
        assert_eq!(
            add(text, "PyPI.org:8443").as_deref(),
            Some(
                "# mine\n[image]\nfrom = \"x\" # the base\n\n[network]\npresets = [\"!packages\"]\nallow = [\"pypi.org:8443\"]\n"
            )
        );
        let text = "[network]\nallow = [\n    \"a.example.com\",\n    \"b.example.com\",\n]\n";
        assert_eq!(
            add(text, "c.example.com").as_deref(),
            Some(
                "[network]\nallow = [\n    \"a.example.com\",\n    \"b.example.com\",\n    \"c.example.com\",\n]\n"
            )
        );
        assert_eq!(
            add("network.allow = [\"a.example.com\"]\n", "[::1]:22").as_deref(),
            Some("network.allow = [\"a.example.com\", \"[::1]:22\"]\n")
        );
    }

    #[test]
    fn an_entry_already_listed_changes_nothing() {
        assert_eq!(add("[network]\nallow = [\"pypi.org\"]\n", "pypi.org"), None);
        // The same rule written otherwise.
        assert_eq!(
            add("[network]\nallow = [\" PyPI.org \"]\n", "pypi.org"),
            None
        );
        // A removal is not the entry: the entry comes after it, and wins.
        assert_eq!(
            add("[network]\nallow = [\"!pypi.org\"]\n", "pypi.org").as_deref(),
            Some("[network]\nallow = [\"!pypi.org\", \"pypi.org\"]\n")
        );
    }

    #[test]
    fn a_file_that_cannot_take_the_entry_is_an_error() {
        let rule = egress::parse_rule("pypi.org").unwrap_or_else(|e| panic!("{e}"));
        for (text, says) in [
            ("[network\n", "it is not valid TOML"),
            ("network = 1\n", "`network` is not a table"),
            (
                "[network]\nallow = \"x\"\n",
                "[network] allow is not a list",
            ),
        ] {
            let e = add_entry(Path::new("c.toml"), text, "pypi.org", &rule)
                .err()
                .unwrap_or_else(|| panic!("{text} was accepted"));
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_project_file_is_written_beneath_the_root_and_never_through_a_link() {
        use std::os::unix::fs::symlink;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let elsewhere = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (root, outside) = (root.path(), elsewhere.path().join("config.toml"));
        // Made when missing, with .stockade.
        write_project_config(root, "a = 1\n").unwrap_or_else(|e| panic!("{e}"));
        let file = root.join(".stockade/config.toml");
        assert_eq!(
            std::fs::read_to_string(&file).ok().as_deref(),
            Some("a = 1\n")
        );
        // The file a link (to a file that exists, or not): refused, nothing written there.
        for exists in [true, false] {
            if exists {
                std::fs::write(&outside, "mine\n").unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
            symlink(&outside, &file).unwrap_or_else(|e| panic!("{e}"));
            let e = write_project_config(root, "b = 2\n")
                .err()
                .unwrap_or_else(|| panic!("written through a link"));
            assert_eq!(e.code(), "project-file-link", "{e}");
            assert!(e.to_string().contains("is a symbolic link"), "{e}");
            assert_eq!(
                std::fs::read_to_string(&outside).ok(),
                Some("mine\n".to_owned())
            );
        }
        // .stockade a link to a directory elsewhere: refused, nothing made there.
        std::fs::remove_dir_all(root.join(".stockade")).unwrap_or_else(|e| panic!("{e}"));
        symlink(elsewhere.path(), root.join(".stockade")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(&outside).unwrap_or_else(|e| panic!("{e}"));
        let e = write_project_config(root, "c = 3\n")
            .err()
            .unwrap_or_else(|| panic!("written through a linked .stockade"));
        assert_eq!(e.code(), "project-file-link", "{e}");
        assert_eq!(
            std::fs::read_dir(elsewhere.path())
                .map(Iterator::count)
                .ok(),
            Some(0)
        );
    }

    #[test]
    fn the_log_is_read_line_by_line_and_followed_across_a_rotation() {
        let one = r#"{"time":"2026-11-26T06:00:00Z","sandbox":"c1","session":"s","agent":null,"project":"/p","host":"a.example","port":443,"reason":"not-allowed"}"#;
        let two = one.replace("a.example", "b.example");
        let text = format!("{one}\nnot json\n{two}\n{{\"half");
        let denials = parse_denials(&text);
        assert_eq!(
            denials.iter().map(|d| d.host.as_str()).collect::<Vec<_>>(),
            ["a.example", "b.example"]
        );
        let seen = Seen::of(&text);
        let grown = format!("{one}\nnot json\n{two}\n{{\"half\"}}\n{one}\n");
        assert_eq!(seen.new_part(&grown), format!("{{\"half\"}}\n{one}\n"));
        // Rotated: a new log, read from its start.
        let rotated = format!("{two}\n");
        assert_eq!(Seen::of(&grown).new_part(&rotated), rotated);
        assert_eq!(Seen::of(&grown).new_part(&grown), "");
    }
}
