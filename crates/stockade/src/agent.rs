//! `stockade <agent> [ARGS…]`: the agent's tools volume, its config and state dirs, its API keys
//! (as secrets), on the sandbox every command gets.

use std::io::IsTerminal;
use std::path::Path;

use stockade_core::agents::{self, Agent, AgentError, mount_path};
use stockade_core::config::Config;
use stockade_core::identity::Identity;
use stockade_core::project::Project;
use stockade_core::sandbox::{Mount, SandboxRequest, SandboxSpec};

use crate::commands::exec::random_suffix;
use crate::context::{Context, env};
use crate::exit::CliError;
use crate::image::{BuildMode, ensure_chain};
use crate::tools::ToolsCtx;
use crate::{extras, session};

pub async fn run(ctx: &Context, name: &str, args: Vec<String>) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let agent = resolve(name, &config)?;
    let engine = ctx.connect().await?;
    let chain = ensure_chain(&engine, ctx, &config, &project, BuildMode::IfStale).await?;
    // Agents run on the chain's last tier; installs run in helpers from the foundation (npm, pip).
    let image = chain.image().to_owned();
    let tools = ToolsCtx {
        engine: &engine,
        ctx,
        config: &config,
        image: &chain.foundation.tag,
    }
    .ensure_for_launch(&agent)
    .await?;

    let mut command = vec![agent.command.clone()];
    command.extend(agent.args.iter().cloned());
    command.extend(args);
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut spec = SandboxSpec::new(
        SandboxRequest {
            namespace: &ctx.namespace,
            project: &project,
            user: &ctx.identity,
            config: &config,
            image,
            command,
            tty,
            suffix: random_suffix(),
        },
        env,
    );
    spec.labels
        .insert(stockade_core::labels::AGENT.to_owned(), agent.name.clone());
    spec.volumes.push(tools.mount(&agent));
    extras::apply(&mut spec, ctx, &project, &config);
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
    for mount in config_mounts(ctx, &project, &agent)? {
        spec.mounts.push(mount);
    }
    extras::finish(&mut spec, &ctx.identity.home);
    tracing::debug!(
        "agent {} {} from volume {}",
        agent.name,
        tools.version,
        tools.volume
    );
    session::run(&engine, &spec, &ctx.ui).await
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
