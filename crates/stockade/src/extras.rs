//! What every sandbox gets beyond the core spec, decided on the host: the per-project home
//! volume, the host's git identity, the common git dir of a worktree, the SSH agent (opt-in).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stockade_core::config::Config;
use stockade_core::labels;
use stockade_core::project::Project;
use stockade_core::sandbox::{Mount, SandboxSpec, VolumeMount};

use crate::context::{Context, env};

/// Where the host's SSH agent socket appears inside.
const SSH_AGENT_SOCKET: &str = "/run/stockade/ssh-agent.sock";

pub fn apply(spec: &mut SandboxSpec, ctx: &Context, project: &Project, config: &Config) {
    home_volume(spec, ctx, project);
    git_identity(spec, project);
    if let Some(dir) = worktree_git_dir(&project.root)
        && !dir.starts_with(&project.root)
    {
        spec.mounts.push(Mount {
            source: dir.clone(),
            target: dir,
            read_only: false,
        });
    }
    if config.sandbox.ssh_agent || ctx.ssh_agent {
        ssh_agent(spec, ctx);
    }
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

/// `user.name` and `user.email` from the host's git config (as seen from the project), handed
/// over as `GIT_CONFIG_*` variables (git ≥ 2.31), so nothing else of the host's config leaks in.
fn git_identity(spec: &mut SandboxSpec, project: &Project) {
    if env("GIT_CONFIG_COUNT").is_some() {
        return;
    }
    let Ok(out) = std::process::Command::new("git")
        .args(["config", "--get-regexp", r"^user\.(name|email)$"])
        .current_dir(&project.cwd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return;
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

/// For a worktree (or submodule) whose `.git` is a file: the common git dir it points into.
pub fn worktree_git_dir(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    if !dot_git.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let gitdir = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let gitdir = root.join(gitdir).canonicalize().ok()?;
    let common = match std::fs::read_to_string(gitdir.join("commondir")) {
        Ok(text) => gitdir.join(text.trim()).canonicalize().ok()?,
        Err(_) => gitdir,
    };
    Some(common)
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

    #[test]
    fn worktrees_point_at_the_common_dir() {
        let dir = tempfile::tempdir().unwrap();
        let main_git = dir.path().join("main/.git");
        let wt_dir = main_git.join("worktrees/wt");
        std::fs::create_dir_all(&wt_dir).unwrap();
        std::fs::write(wt_dir.join("commondir"), "../..\n").unwrap();
        let wt = dir.path().join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", wt_dir.display())).unwrap();
        assert_eq!(
            worktree_git_dir(&wt),
            Some(main_git.canonicalize().unwrap())
        );
        assert_eq!(worktree_git_dir(&dir.path().join("main")), None);
    }
}
