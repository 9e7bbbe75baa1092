//! What every sandbox gets beyond the core spec, decided on the host: the per-project home
//! volume, the host's git identity, the common git dir of a worktree, the SSH agent (opt-in).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use stockade_core::config::{Config, rules};
use stockade_core::labels;
use stockade_core::project::Project;
use stockade_core::sandbox::{Mount, SandboxSpec, VolumeMount};

use crate::context::{Context, env};
use crate::exit::CliError;
use crate::host_command;
use stockade_core::identity::Identity;

/// Where the host's SSH agent socket appears inside.
const SSH_AGENT_SOCKET: &str = "/run/stockade/ssh-agent.sock";

/// `Err` when the project's `.git` points somewhere git itself would not accept: nothing may
/// start then.
pub fn apply(
    spec: &mut SandboxSpec,
    ctx: &Context,
    project: &Project,
    config: &Config,
) -> Result<(), CliError> {
    let git_dir = git_dir_mount(&project.root, &ctx.identity)?;
    home_volume(spec, ctx, project);
    git_identity(spec, &ctx.identity.home);
    match git_dir {
        GitDir::Mount(dir) => spec.mounts.push(Mount {
            source: dir.clone(),
            target: dir,
            read_only: false,
        }),
        GitDir::NotFollowed(why) => ctx.ui.warn(&why),
        GitDir::Inside => {}
    }
    if config.sandbox.ssh_agent {
        ssh_agent(spec, ctx);
    }
    Ok(())
}

/// Call after every mount is added: parents of mounts inside the home volume would be created by
/// the engine as root; stockade hands them over owned by the user before start (`handover`).
pub fn finish(spec: &mut SandboxSpec, home: &Path) {
    if spec.security.read_only_root && !spec.secrets.is_empty() {
        spec.volumes.push(VolumeMount {
            volume: String::new(),
            target: PathBuf::from(stockade_core::secret_file::SECRETS_VOLUME_DIR),
            read_only: false,
            labels: BTreeMap::new(),
        });
    }
    let targets: Vec<PathBuf> = spec.mounts.iter().map(|m| m.target.clone()).collect();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for target in &targets {
        let Ok(relative) = target.strip_prefix(home) else {
            continue;
        };
        let mut dir = home.to_path_buf();
        let parts: Vec<_> = relative.components().collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            dir.push(part);
            if !targets.contains(&dir) && !dirs.contains(&dir) {
                dirs.push(dir.clone());
            }
        }
    }
    spec.home_dirs = dirs;
}

fn home_volume(spec: &mut SandboxSpec, ctx: &Context, project: &Project) {
    // The volume is HOME, writable even with a read-only root (no tmpfs there then).
    spec.tmpfs.remove(&ctx.identity.home);
    spec.volumes.push(VolumeMount {
        volume: ctx.namespace.home_volume(&project.id()),
        target: ctx.identity.home.clone(),
        read_only: false,
        labels: BTreeMap::from([
            (labels::KIND.to_owned(), "home".to_owned()),
            (
                labels::PROJECT.to_owned(),
                project.root.to_string_lossy().into_owned(),
            ),
            (
                labels::NAMESPACE.to_owned(),
                ctx.namespace.as_str().to_owned(),
            ),
        ]),
    });
}

/// `user.name` and `user.email` from the user's global git config only, handed over as
/// `GIT_CONFIG_*` variables (git ≥ 2.31), so nothing else of the host's config leaks in. git runs
/// in `/` with `--global` and no system config: nothing of the project (its `.git/config`, its
/// includes, `/dev/zero` among them) is read, and a hung git is killed after a few seconds.
fn git_identity(spec: &mut SandboxSpec, home: &Path) {
    if env("GIT_CONFIG_COUNT").is_some() {
        return;
    }
    let mut git = std::process::Command::new("git");
    git.args([
        "config",
        "--global",
        "--get-regexp",
        r"^user\.(name|email)$",
    ])
    .current_dir("/")
    .env("HOME", home)
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env_remove("GIT_DIR")
    .env_remove("GIT_WORK_TREE")
    .env_remove("GIT_COMMON_DIR")
    .env_remove("GIT_CONFIG_PARAMETERS")
    .env_remove("GIT_CONFIG");
    let out = match host_command::output(git, GIT_TIMEOUT) {
        Ok(out) => out,
        Err(e) => {
            tracing::debug!("git identity: {e}");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(' ') {
            seen.insert(key.to_owned(), value.to_owned());
        }
    }
    if seen.is_empty() {
        return;
    }
    spec.env
        .push(("GIT_CONFIG_COUNT".into(), seen.len().to_string()));
    for (i, (key, value)) in seen.into_iter().enumerate() {
        spec.env.push((format!("GIT_CONFIG_KEY_{i}"), key));
        spec.env.push((format!("GIT_CONFIG_VALUE_{i}"), value));
    }
}

/// How long the git identity query may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most stockade reads of a `.git`, `commondir` or `gitdir` file (git writes one line).
const GIT_FILE_CAP: u64 = 4096;

/// Where a git dir may never be mounted from besides what no project mount may cover
/// (`config::rules::protected_dir`: stockade's runtime and the system): the host's run-time state
/// and its kernels.
const HOST_DIRS: &[&str] = &["/run", "/boot"];

/// What the project's `.git` asks for beyond the project itself.
#[derive(Debug, PartialEq, Eq)]
pub enum GitDir {
    /// Nothing outside the project: no `.git`, a `.git` directory, or a git dir inside.
    Inside,
    /// A linked worktree's common dir, or a submodule's git dir in its superproject: git itself
    /// accepts it (it points back at this worktree), so it is mounted read-write.
    Mount(PathBuf),
    /// A `.git` symlink: not followed (the reason, for a warning).
    NotFollowed(String),
}

/// Check the project's `.git` the way git does before anything of it is mounted. A `.git` file
/// (`gitdir: PATH`) is accepted when PATH stays inside the project, when it is a worktree's dir
/// `<common>/worktrees/<name>` whose `gitdir` file points back at this `.git`, or when it is
/// this checkout's dir in its superproject (`<super>/.git/modules/<path>`). Anything else is
/// refused: the agent can write `.git`, and `gitdir: ~/.ssh` would mount `~/.ssh`.
pub fn git_dir_mount(root: &Path, user: &Identity) -> Result<GitDir, CliError> {
    let dot_git = root.join(".git");
    let meta = match std::fs::symlink_metadata(&dot_git) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(GitDir::Inside),
        Err(e) => return Err(refuse(&dot_git, &format!("it cannot be read: {e}"))),
    };
    if meta.is_dir() {
        return Ok(GitDir::Inside);
    }
    if meta.file_type().is_symlink() {
        return Ok(GitDir::NotFollowed(format!(
            "{} is a symbolic link; stockade does not follow it, so git will not work in the sandbox \
             (replace the link with the directory it points to, or with a `gitdir:` file)",
            dot_git.display()
        )));
    }
    let text = read_small(&dot_git)?;
    let Some(target) = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("gitdir:"))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(refuse(
            &dot_git,
            "it is a file but not a `gitdir: PATH` line, as git writes for worktrees and submodules",
        ));
    };
    // Refusals from here on name the `gitdir:` line.
    let at = PathBuf::from(format!("{}:1", dot_git.display()));
    let git_dir = root.join(target).canonicalize().map_err(|e| {
        refuse(
            &at,
            &format!("its `gitdir: {target}` cannot be resolved: {e}"),
        )
    })?;
    let commondir = git_dir.join("commondir");
    if git_dir.starts_with(root) && std::fs::symlink_metadata(&commondir).is_err() {
        return Ok(GitDir::Inside);
    }
    let dir = if std::fs::symlink_metadata(&commondir).is_ok() {
        worktree_common_dir(&dot_git, &at, &git_dir)?
    } else {
        submodule_git_dir(root, &at, &git_dir)?
    };
    if dir.starts_with(root) {
        return Ok(GitDir::Inside);
    }
    if let Some(reserved) = rules::protected_dir(&dir, true)
        .or_else(|| HOST_DIRS.iter().copied().find(|r| dir.starts_with(r)))
    {
        return Err(refuse(
            &at,
            &format!(
                "it leads to {}, under {}, which is never mounted into a sandbox",
                dir.display(),
                reserved
            ),
        ));
    }
    let home = user
        .home
        .canonicalize()
        .unwrap_or_else(|_| user.home.clone());
    if home.starts_with(&dir) {
        return Err(refuse(
            &at,
            &format!(
                "it leads to {}, which holds your home directory",
                dir.display()
            ),
        ));
    }
    let owner = std::fs::symlink_metadata(&dir)
        .map(|m| m.uid())
        .map_err(|e| refuse(&at, &format!("{} cannot be read: {e}", dir.display())))?;
    if owner != user.uid {
        return Err(refuse(
            &at,
            &format!(
                "it leads to {}, which is owned by uid {owner}, not by you (uid {}); git refuses such \
                 repositories too (safe.directory)",
                dir.display(),
                user.uid
            ),
        ));
    }
    Ok(GitDir::Mount(dir))
}

/// A linked worktree: `git_dir` is `<common>/worktrees/<name>`, its `commondir` leads to
/// `<common>`, and its `gitdir` file names this worktree's `.git`.
fn worktree_common_dir(dot_git: &Path, at: &Path, git_dir: &Path) -> Result<PathBuf, CliError> {
    let commondir = git_dir.join("commondir");
    let text = read_small(&commondir)?;
    let common = git_dir.join(text.trim()).canonicalize().map_err(|e| {
        refuse(
            at,
            &format!("{} cannot be resolved: {e}", commondir.display()),
        )
    })?;
    if git_dir.parent() != Some(common.join("worktrees").as_path()) {
        return Err(refuse(
            at,
            &format!(
                "{} is not a worktree's dir of the repository {} (git keeps those in its `worktrees/`)",
                git_dir.display(),
                common.display()
            ),
        ));
    }
    let back_file = git_dir.join("gitdir");
    let back = read_small(&back_file)?;
    let back = git_dir.join(back.trim());
    let points_back = back.canonicalize().is_ok_and(|b| b == dot_git);
    if !points_back {
        return Err(refuse(
            at,
            &format!(
                "the worktree entry {} belongs to {}, not to this worktree",
                back_file.display(),
                back.display()
            ),
        ));
    }
    Ok(common)
}

/// A submodule opened as a project of its own: its git dir is `<super>/.git/modules/<path>`,
/// where `<super>` is the nearest directory above with a `.git` directory and `<path>` this
/// checkout's path in it (git's default layout).
fn submodule_git_dir(root: &Path, dot_git: &Path, git_dir: &Path) -> Result<PathBuf, CliError> {
    let superproject = root
        .ancestors()
        .skip(1)
        .find(|dir| std::fs::symlink_metadata(dir.join(".git")).is_ok_and(|m| m.is_dir()));
    let expected = superproject.and_then(|s| {
        let relative = root.strip_prefix(s).ok()?;
        Some(s.join(".git").join("modules").join(relative))
    });
    if expected.as_deref() == Some(git_dir) {
        return Ok(git_dir.to_path_buf());
    }
    Err(refuse(
        dot_git,
        &format!(
            "it points at {}, which is neither inside the project, nor a worktree of a repository \
             that lists this one, nor this submodule's dir in its superproject",
            git_dir.display()
        ),
    ))
}

/// A regular file of at most [`GIT_FILE_CAP`] bytes, read without following a symlink and
/// without blocking on a FIFO.
fn read_small(path: &Path) -> Result<String, CliError> {
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|e| refuse(path, &format!("it cannot be opened as a regular file: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(path, &format!("it cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(refuse(path, "it is not a regular file"));
    }
    if meta.len() > GIT_FILE_CAP {
        return Err(refuse(
            path,
            &format!(
                "it has {} bytes; git writes one line there (at most {GIT_FILE_CAP} bytes are read)",
                meta.len()
            ),
        ));
    }
    let mut text = String::new();
    file.take(GIT_FILE_CAP)
        .read_to_string(&mut text)
        .map_err(|e| refuse(path, &format!("it cannot be read as text: {e}")))?;
    Ok(text)
}

fn refuse(file: &Path, why: &str) -> CliError {
    CliError::other(
        format!(
            "refusing to launch: the git file {} is not followed: {why}",
            file.display()
        ),
        Some(
            "a `.git` file may point only inside the project, at a worktree's entry in its own \
             repository (`git worktree add`), or at this submodule's dir in its superproject; \
             if you did not write it, the repository or an agent did: remove it or restore it \
             (`git worktree repair` in the main repository fixes a moved worktree)",
        ),
    )
}

fn ssh_agent(spec: &mut SandboxSpec, ctx: &Context) {
    match env("SSH_AUTH_SOCK").filter(|s| Path::new(s).exists()) {
        Some(socket) => {
            spec.mounts.push(Mount {
                source: socket.into(),
                target: SSH_AGENT_SOCKET.into(),
                read_only: false,
            });
            spec.env
                .push(("SSH_AUTH_SOCK".into(), SSH_AGENT_SOCKET.into()));
        }
        None => ctx.ui.warn(
            "SSH agent forwarding is on, but SSH_AUTH_SOCK is unset or its socket is missing; start an agent (`eval $(ssh-agent)`)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(home: &Path) -> Identity {
        Identity {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            name: "me".into(),
            home: home.to_path_buf(),
        }
    }

    /// `main/.git` with a worktree entry `wt` whose `gitdir` names `wt/.git`.
    fn worktree(dir: &Path) -> (PathBuf, PathBuf) {
        let main_git = dir.join("main/.git");
        let entry = main_git.join("worktrees/wt");
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(entry.join("commondir"), "../..\n").unwrap();
        let wt = dir.join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(
            entry.join("gitdir"),
            format!("{}\n", wt.join(".git").display()),
        )
        .unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", entry.display())).unwrap();
        (main_git, wt)
    }

    #[test]
    fn worktrees_mount_their_common_dir() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let (main_git, wt) = worktree(&dir);
        let user = me(&dir.join("home"));
        assert_eq!(git_dir_mount(&wt, &user).unwrap(), GitDir::Mount(main_git));
        assert_eq!(
            git_dir_mount(&dir.join("main"), &user).unwrap(),
            GitDir::Inside
        );
    }

    #[test]
    fn a_worktree_entry_of_another_worktree_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let (main_git, _) = worktree(&dir);
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        let entry = main_git.join("worktrees/wt");
        std::fs::write(other.join(".git"), format!("gitdir: {}\n", entry.display())).unwrap();
        let error = git_dir_mount(&other, &me(&dir)).unwrap_err().to_string();
        assert!(error.contains("not to this worktree"), "{error}");
    }

    #[test]
    fn gitdir_anywhere_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let project = dir.join("p");
        let secret = dir.join("ssh");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        let user = me(&dir.join("home"));
        for target in [secret.to_str().unwrap(), "/var/run", "/etc", "/nonexistent"] {
            std::fs::write(project.join(".git"), format!("gitdir: {target}\n")).unwrap();
            let error = git_dir_mount(&project, &user).unwrap_err().to_string();
            assert!(error.contains("refusing to launch"), "{target}: {error}");
        }
        // A fake worktree entry inside the project whose commondir leads out.
        let fake = project.join("fake");
        std::fs::create_dir_all(&fake).unwrap();
        std::fs::write(fake.join("commondir"), format!("{}\n", secret.display())).unwrap();
        std::fs::write(
            fake.join("gitdir"),
            format!("{}\n", project.join(".git").display()),
        )
        .unwrap();
        std::fs::write(project.join(".git"), "gitdir: fake\n").unwrap();
        assert!(git_dir_mount(&project, &user).is_err());
        // Inside the project is fine.
        std::fs::remove_dir_all(&fake).unwrap();
        std::fs::create_dir_all(project.join("real-git")).unwrap();
        std::fs::write(project.join(".git"), "gitdir: real-git\n").unwrap();
        assert_eq!(git_dir_mount(&project, &user).unwrap(), GitDir::Inside);
    }

    #[test]
    fn submodules_mount_their_dir_in_the_superproject() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let modules = dir.join("super/.git/modules/libs/sub");
        std::fs::create_dir_all(&modules).unwrap();
        let sub = dir.join("super/libs/sub");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(".git"), "gitdir: ../../.git/modules/libs/sub\n").unwrap();
        let user = me(&dir.join("home"));
        assert_eq!(git_dir_mount(&sub, &user).unwrap(), GitDir::Mount(modules));
        // Another module's dir is not this checkout's.
        std::fs::create_dir_all(dir.join("super/.git/modules/other")).unwrap();
        std::fs::write(sub.join(".git"), "gitdir: ../../.git/modules/other\n").unwrap();
        assert!(git_dir_mount(&sub, &user).is_err());
    }

    #[test]
    fn fifos_symlinks_and_big_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let user = me(&dir.join("home"));
        nix::unistd::mkfifo(&dir.join(".git"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(git_dir_mount(&dir, &user).is_err());
        std::fs::remove_file(dir.join(".git")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join(".git")).unwrap();
        assert!(matches!(
            git_dir_mount(&dir, &user).unwrap(),
            GitDir::NotFollowed(_)
        ));
        std::fs::remove_file(dir.join(".git")).unwrap();
        std::fs::write(dir.join(".git"), "x".repeat(10_000)).unwrap();
        assert!(git_dir_mount(&dir, &user).is_err());
    }
}
