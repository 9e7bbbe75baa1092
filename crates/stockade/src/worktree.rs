//! Worktrees stockade makes for parallel agents (`--worktree NAME`): a git worktree on branch
//! `stockade/NAME` beside the repository, recorded in the state directory so `worktree list`
//! and `worktree rm` find them and a launch there shares the main project's approval.
//!
//! Host git never touches the repository (docs/security.md, class 12: its `.git/config` is
//! writable by agents, so hooks, `core.fsmonitor` and filters would run on the host): every git
//! operation runs in a helper container from the foundation image, as the host user, with no
//! capabilities and no network, the repository and the worktrees directory mounted at their own
//! paths. Whatever the repository configures runs there, inside a sandbox.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stockade_core::config::Config;
use stockade_core::hash::sha256_hex;
use stockade_core::project::Project;
use stockade_core::sandbox::{Mount, NetworkMode, SandboxSpec};
use stockade_engine::Engine;

use crate::context::Context;
use crate::exit::CliError;
use crate::helper::{self, HelperOutput};

/// How long one git helper may run (a checkout of a large tree included).
const GIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// The memory one git helper may use.
const GIT_MEMORY: i64 = 1 << 30;

/// The branch of a worktree stockade makes.
pub fn branch_of(name: &str) -> String {
    format!("stockade/{name}")
}

/// A worktree stockade made, as recorded in the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub branch: String,
    /// The worktree's directory (canonical).
    pub path: PathBuf,
    /// The main work tree of the repository it belongs to (canonical).
    pub repository: PathBuf,
}

/// Check a worktree name: one git ref component that is also a plain directory name.
pub fn validate_name(name: &str) -> Result<(), CliError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 characters")
    } else if name.starts_with(['-', '.']) {
        Some("it starts with `-` or `.`")
    } else if name.ends_with('.') || name.ends_with(".lock") {
        Some("it ends with `.` or `.lock`")
    } else if name.contains("..") {
        Some("it contains `..`")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("only letters, digits, `-`, `_` and `.` are allowed (no `/`)")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(CliError::other(
            format!("invalid worktree name {name:?}: {why}"),
            Some("name it like a branch component, e.g. --worktree fix-login"),
        )),
    }
}

/// The recorded worktrees, one file each (parallel launches never rewrite one shared file).
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn new(ctx: &Context) -> Self {
        let ns = ctx.namespace.as_str();
        let name = if ns.is_empty() {
            "worktrees".to_owned()
        } else {
            format!("worktrees-{ns}")
        };
        Self {
            dir: ctx.dirs.state.join(name),
        }
    }

    fn file(&self, path: &Path) -> PathBuf {
        let id = sha256_hex(path.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{}.json", &id[..16]))
    }

    /// The record of the worktree at `path`, if stockade made one there.
    pub fn at(&self, path: &Path) -> Option<Record> {
        std::fs::read(self.file(path))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
            .filter(|r| r.path == path)
    }

    /// Every worktree stockade made for `repository`, by name.
    pub fn of(&self, repository: &Path) -> Vec<Record> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut records: Vec<Record> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
            .filter(|r| r.repository == repository)
            .collect();
        records.sort_by(|a, b| a.name.cmp(&b.name));
        records
    }

    fn save(&self, record: &Record) -> Result<(), CliError> {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
            let path = self.file(&record.path);
            let scratch = path.with_extension(format!("json.{}", std::process::id()));
            std::fs::write(&scratch, bytes)?;
            std::fs::rename(&scratch, &path)
        };
        write().map_err(|e| {
            CliError::caused(
                format!("cannot record the worktree in {}", self.dir.display()),
                e,
                Some("check that stockade's state directory is writable"),
            )
        })
    }

    fn forget(&self, record: &Record) -> Result<(), CliError> {
        match std::fs::remove_file(self.file(&record.path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CliError::caused(
                format!("cannot forget the worktree in {}", self.dir.display()),
                e,
                None,
            )),
        }
    }
}

/// The main work tree of the repository `project` belongs to: the project itself, or, in a
/// worktree stockade made, the repository it was made from. Refused outside a git repository
/// and in other linked worktrees (make worktrees from the main one).
pub fn repository(ctx: &Context, project: &Project) -> Result<PathBuf, CliError> {
    if let Some(record) = Records::new(ctx).at(&project.root) {
        return Ok(record.repository);
    }
    let dot_git = project.root.join(".git");
    let is_dir = std::fs::symlink_metadata(&dot_git).is_ok_and(|m| m.is_dir());
    if !project.is_git || !is_dir {
        return Err(CliError::other(
            format!(
                "{} is not the main work tree of a git repository (no .git directory)",
                project.root.display()
            ),
            Some(
                "run it in a git repository (`git init` makes one), from its main work tree rather \
                 than a worktree of another tool",
            ),
        ));
    }
    Ok(project.root.clone())
}

/// The project roots whose sandboxes belong to `project`'s repository: the repository's main
/// work tree and every worktree stockade made for it (for `ps` in the repository, which shows
/// each agent's branch). Outside a git repository: the project alone.
pub fn sandbox_roots(ctx: &Context, project: &Project) -> Vec<PathBuf> {
    let Ok(repository) = repository(ctx, project) else {
        return vec![project.root.clone()];
    };
    let mut roots = vec![repository.clone()];
    roots.extend(
        Records::new(ctx)
            .of(&repository)
            .into_iter()
            .map(|r| r.path),
    );
    roots
}

/// `<worktrees dir>/NAME` must be a directory of its own, never a link: the worktrees directory
/// is writable by what git runs in its helper (the repository's hooks), and a link there would
/// move the next `--worktree NAME` launch into whatever directory it names.
fn refuse_link(path: &Path) -> Result<(), CliError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(link_refused(path)),
        _ => Ok(()),
    }
}

fn link_refused(path: &Path) -> CliError {
    CliError::refused(
        "worktree-link",
        format!(
            "refusing the worktree {}: it is not a directory of its own (a symbolic link or a file)",
            path.display()
        ),
        Some("remove it (something wrote it there), then run again: stockade makes the worktree"),
    )
}

/// Where a repository's worktrees go: `[sandbox] worktrees_dir` (global only), else
/// `<parent>/<repository name>.worktrees`.
pub fn worktrees_dir(config: &Config, repository: &Path) -> PathBuf {
    let name = repository
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".to_owned());
    match &config.sandbox.worktrees_dir {
        Some(dir) => dir.join(name),
        None => repository
            .parent()
            .unwrap_or(repository)
            .join(format!("{name}.worktrees")),
    }
}

/// The git helpers' context: the engine, the foundation image and the paths they may touch.
pub struct Git<'a> {
    pub engine: &'a Engine,
    pub ctx: &'a Context,
    pub image: String,
    pub repository: PathBuf,
    pub dir: PathBuf,
}

impl Git<'_> {
    /// Run `script` with `sh` in a helper: the host user, no capabilities, no network, the
    /// repository and the worktrees directory mounted read-write at their own paths.
    async fn run(&self, script: &str, vars: &[(&str, String)]) -> Result<HelperOutput, CliError> {
        let mut env: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        env.push(("GIT_CONFIG_NOSYSTEM".into(), "1".into()));
        env.push((
            "STOCKADE_REPO".into(),
            self.repository.display().to_string(),
        ));
        let mut spec =
            SandboxSpec::helper(&self.ctx.namespace, &self.image, script, Vec::new(), env);
        let user = &self.ctx.identity;
        spec.user.uid = user.uid;
        spec.user.gid = user.gid;
        spec.start_as = format!("{}:{}", user.uid, user.gid);
        spec.network = NetworkMode::None;
        // The repository's config is the agent's: an include of /dev/zero must not eat the host.
        spec.limits.memory = Some(GIT_MEMORY);
        spec.mounts = [&self.repository, &self.dir]
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| Mount {
                source: p.clone(),
                target: p.clone(),
                read_only: false,
            })
            .collect();
        helper::run_spec(self.engine, &spec, self.ctx.ui.verbose > 0, GIT_LIMIT)
            .await?
            .ok_or_else(|| {
                CliError::other(
                    format!(
                        "git did not finish within {} s in {}",
                        GIT_LIMIT.as_secs(),
                        self.repository.display()
                    ),
                    Some(
                        "a hook, `core.fsmonitor` or filter of the repository may hang: check \
                         .git/config and .git/hooks (`stockade -v` shows git's output)",
                    ),
                )
            })
    }

    /// [`Self::run`], failing unless git succeeded: "cannot WHAT: git said: …".
    async fn run_ok(
        &self,
        script: &str,
        vars: &[(&str, String)],
        what: &str,
        help: &str,
    ) -> Result<(), CliError> {
        let out = self.run(script, vars).await?;
        if out.ok() {
            return Ok(());
        }
        Err(CliError::other(
            format!("cannot {what}: git said:\n{}", out.tail(8)),
            Some(help),
        ))
    }

    /// Make the worktree `name` (or adopt it when git already has it there) and record it.
    pub async fn ensure(&self, name: &str) -> Result<Record, CliError> {
        let records = Records::new(self.ctx);
        let path = self.dir.join(name);
        let branch = branch_of(name);
        let record = Record {
            name: name.to_owned(),
            branch: branch.clone(),
            path: path.clone(),
            repository: self.repository.clone(),
        };
        refuse_link(&path)?;
        // Made before: reused without asking git (its `.git` link is checked at launch).
        if records.at(&path).as_ref() == Some(&record)
            && std::fs::symlink_metadata(path.join(".git")).is_ok_and(|m| m.is_file())
        {
            return Ok(record);
        }
        let script = r#"set -e
cd "$STOCKADE_REPO"
git worktree prune
if git worktree list --porcelain | grep -qxF "worktree $STOCKADE_PATH"; then
  exit 0
fi
if git show-ref --verify --quiet "refs/heads/$STOCKADE_BRANCH"; then
  git worktree add --quiet "$STOCKADE_PATH" "$STOCKADE_BRANCH"
else
  git worktree add --quiet -b "$STOCKADE_BRANCH" "$STOCKADE_PATH"
fi
"#;
        let vars = [
            ("STOCKADE_PATH", path.display().to_string()),
            ("STOCKADE_BRANCH", branch.clone()),
        ];
        let what = format!("make the worktree {} on branch {branch}", path.display());
        self.run_ok(
            script,
            &vars,
            &what,
            "fix what git names, or pick another --worktree name",
        )
        .await?;
        // The hooks git ran in the helper could write in the worktrees directory.
        refuse_link(&path)?;
        let resolve = |p: &Path| {
            p.canonicalize().map_err(|e| {
                CliError::caused(format!("{} cannot be resolved", p.display()), e, None)
            })
        };
        let path = resolve(&path)?;
        if path != resolve(&self.dir)?.join(name) {
            return Err(link_refused(&path));
        }
        let record = Record { path, ..record };
        records.save(&record)?;
        Ok(record)
    }

    /// Each worktree's state: `Ok(lines)` of `git status --porcelain` (empty: clean), or `Err`
    /// with why it could not be read (missing, not a worktree). One helper for all of them.
    pub async fn status(
        &self,
        records: &[Record],
    ) -> Result<Vec<Result<Vec<String>, String>>, CliError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let script = r#"printf '%s\n' "$STOCKADE_PATHS" | while IFS= read -r p; do
  if [ ! -d "$p" ]; then echo "@missing"; continue; fi
  if out=$(git -C "$p" --no-optional-locks status --porcelain 2>/dev/null); then
    printf '%s\n' "$out" | sed -n 's/^\(..\) /@line \1 /p'
    echo "@end"
  else
    echo "@broken"
  fi
done
"#;
        let paths: Vec<String> = records
            .iter()
            .map(|r| r.path.display().to_string())
            .collect();
        let out = self
            .run(script, &[("STOCKADE_PATHS", paths.join("\n"))])
            .await?;
        let mut states = Vec::new();
        let mut lines = Vec::new();
        for line in out.stdout.lines() {
            match line {
                "@missing" => states.push(Err("missing".to_owned())),
                "@broken" => states.push(Err("not a worktree".to_owned())),
                "@end" => states.push(Ok(std::mem::take(&mut lines))),
                other => {
                    if let Some(entry) = other.strip_prefix("@line ") {
                        lines.push(entry.to_owned());
                    }
                }
            }
        }
        if !out.ok() || states.len() != records.len() {
            return Err(CliError::other(
                format!("cannot read the worktrees' status: {}", out.tail(8)),
                None,
            ));
        }
        Ok(states)
    }

    /// `git worktree remove` (with `--force`: even with changes); the branch stays.
    pub async fn remove(&self, record: &Record, force: bool) -> Result<(), CliError> {
        let script = r#"set -e
cd "$STOCKADE_REPO"
if [ -d "$STOCKADE_PATH" ]; then
  git worktree remove $STOCKADE_FORCE "$STOCKADE_PATH"
fi
git worktree prune
"#;
        let force = if force { "--force" } else { "" };
        let vars = [
            ("STOCKADE_PATH", record.path.display().to_string()),
            ("STOCKADE_FORCE", force.to_owned()),
        ];
        let what = format!("remove the worktree {}", record.path.display());
        self.run_ok(
            script,
            &vars,
            &what,
            "fix what git names, or remove it with --force",
        )
        .await?;
        Records::new(self.ctx).forget(record)
    }
}

/// The foundation image and engine-side context for git helpers of `project`'s repository;
/// with `create`, the worktrees directory is made. Its path is canonical (git records the
/// paths it is given, and the helper mounts them where they are).
pub async fn git<'a>(
    engine: &'a Engine,
    ctx: &'a Context,
    prepared: &crate::launch::Prepared,
    create: bool,
) -> Result<Git<'a>, CliError> {
    let repository = repository(ctx, &prepared.project)?;
    let mut dir = worktrees_dir(&prepared.resolved.config, &repository);
    if create {
        std::fs::create_dir_all(&dir).map_err(|e| {
            CliError::caused(
                format!("cannot create the worktrees directory {}", dir.display()),
                e,
                Some(
                    "make its parent writable, or set `[sandbox] worktrees_dir` in your global \
                     configuration to a writable directory",
                ),
            )
        })?;
    }
    if let Ok(canonical) = dir.canonicalize() {
        dir = canonical;
    }
    let image = crate::image::ensure_foundation_only(engine, ctx, prepared).await?;
    Ok(Git {
        engine,
        ctx,
        image,
        repository,
        dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "fix-login", "v1.2", "x_y"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a..b", "x.lock", "x.", "a b", "ü"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
