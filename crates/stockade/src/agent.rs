//! `stockade <agent> [ARGS…]` (launched by `commands::exec`): the agent's tools volume, its
//! config and state dirs, its API keys (as secrets), on the sandbox every command gets.

use std::path::Path;

use stockade_core::agents::{self, Agent, AgentError, mount_path};
use stockade_core::config::Config;
use stockade_core::identity::Identity;
use stockade_core::project::Project;
use stockade_core::sandbox::{Mount, SandboxSpec};
use stockade_engine::Engine;

use crate::context::{Context, env};
use crate::exit::CliError;
use crate::tools::ToolsCtx;

/// The agent's command line: its command, its default arguments, then the user's, untouched.
pub fn command_line(agent: &Agent, args: Vec<String>) -> Vec<String> {
    let mut command = vec![agent.command.clone()];
    command.extend(agent.args.iter().cloned());
    command.extend(args);
    command
}

/// Give a sandbox what the agent needs: its tools volume (installed first when missing, in a
/// helper from `foundation`) on PATH, its fixed env, its API keys (as secrets) and its config
/// and state dirs.
pub async fn equip(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    project: &Project,
    agent: &Agent,
    foundation: &str,
    spec: &mut SandboxSpec,
) -> Result<(), CliError> {
    let tools = ToolsCtx {
        engine,
        ctx,
        config,
        image: foundation,
    }
    .ensure_for_launch(agent)
    .await?;
    spec.labels
        .insert(stockade_core::labels::AGENT.to_owned(), agent.name.clone());
    spec.volumes.push(tools.mount(agent));
    spec.env.push((
        "STOCKADE_PATH".into(),
        format!("{}/bin", mount_path(&agent.name)),
    ));
    if let Some(runtime) = agent.required_runtime() {
        spec.env.push(("STOCKADE_NEEDS".into(), runtime.into()));
    }
    for (key, value) in &agent.env {
        spec.env.push((key.clone(), value.clone()));
    }
    for key in &agent.api_keys {
        if spec.secrets.iter().any(|(k, _)| k == key) {
            continue;
        }
        if let Some(value) = env(key).filter(|v| !v.is_empty()) {
            spec.secrets.push((key.clone(), value));
        }
    }
    spec.mounts.extend(config_mounts(ctx, project, agent)?);
    tracing::debug!(
        "agent {} {} from volume {}",
        agent.name,
        tools.version,
        tools.volume
    );
    Ok(())
}

pub fn resolve(name: &str, config: &Config) -> Result<Agent, CliError> {
    agents::resolve(name, config).map_err(|e| match e {
        AgentError::Unknown(_) => CliError::other(
            format!("unknown command or agent {name:?}"),
            Some(&format!(
                "agents: {}; describe a new one under `[agents.{name}]` (docs/agents.md), or see `stockade --help`",
                agents::names(config).join(", ")
            )),
        ),
        AgentError::Incomplete { .. } => CliError::other(
            e.to_string(),
            Some("a custom agent needs at least `install` (npm or pypi) and `package` (docs/agents.md)"),
        ),
    })
}

/// The agent's config/state dirs and files: the host's own (created, files seeded, first), or
/// with `isolate = true` a per-project copy under the state dir. Mounted at the same paths.
fn config_mounts(ctx: &Context, project: &Project, agent: &Agent) -> Result<Vec<Mount>, CliError> {
    let home = &ctx.identity.home;
    let source_root = if agent.isolate {
        ctx.dirs
            .state
            .join("projects")
            .join(project.id())
            .join(&agent.name)
    } else {
        home.clone()
    };
    let mut mounts = Vec::new();
    for dir in &agent.config_dirs {
        let source = source_root.join(dir);
        std::fs::create_dir_all(&source).map_err(|e| io_error(&source, e))?;
        mounts.push(mount(&ctx.identity, &source, dir));
    }
    for file in &agent.config_files {
        let source = source_root.join(file);
        if !source.exists() {
            if let Some(parent) = source.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
            }
            let seed = if file.ends_with(".json") { "{}\n" } else { "" };
            std::fs::write(&source, seed).map_err(|e| io_error(&source, e))?;
        }
        mounts.push(mount(&ctx.identity, &source, file));
    }
    Ok(mounts)
}

fn mount(identity: &Identity, source: &Path, relative: &str) -> Mount {
    Mount {
        source: source.to_path_buf(),
        target: identity.home.join(relative),
        read_only: false,
    }
}

fn io_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::other(
        format!("cannot create {}: {e}", path.display()),
        Some("check the permissions of your home and state directories"),
    )
}
