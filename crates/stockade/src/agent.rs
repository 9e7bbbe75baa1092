//! `stockade <agent> [ARGS…]` (launched by `commands::exec`): the agent's tools volume, its
//! config and state dirs, its API keys (as secrets), on the sandbox every command gets.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use stockade_core::agents::{self, Agent, AgentError, Build, mount_path};
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

/// Give a sandbox what the agent needs: its runtime's volume (Node.js for npm agents) and its
/// tools volume (each installed first when missing, in a helper from `foundation`) on PATH, its
/// fixed env, its API keys (as secrets) and its config and state dirs. Returns the agent's
/// version. A native agent runs the build for the sandbox image's C library (`spec.image`, id
/// `image_id`): its glibc build, or its musl build from a volume of its own; an image without
/// what the build needs is refused before anything is installed.
#[allow(clippy::too_many_arguments)]
pub async fn equip(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    _project: &Project,
    agent: &Agent,
    foundation: &str,
    image_id: &str,
    spec: &mut SandboxSpec,
) -> Result<String, CliError> {
    let tools_ctx = ToolsCtx {
        engine,
        ctx,
        config,
        image: foundation,
    };
    let build = build_for(&tools_ctx, agent, &spec.image, image_id).await?;
    // A musl build is a program of its own: it needs no Node.js.
    let runtime = match (build, agent.runtime()) {
        (Build::Package, Some(runtime)) => Some(tools_ctx.ensure_runtime(&runtime, false).await?),
        _ => None,
    };
    let tools = tools_ctx
        .ensure_for_launch(agent, build, runtime.as_ref())
        .await?;
    spec.labels
        .insert(stockade_core::labels::AGENT.to_owned(), agent.name.clone());
    spec.volumes.push(tools.mount(agent));
    let mut path = format!("{}/bin", mount_path(&agent.name));
    if let Some(runtime) = &runtime {
        spec.volumes.push(runtime.mount());
        path.push_str(&format!(":{}", runtime.runtime.bin_dir()));
    }
    spec.env.push(("STOCKADE_PATH".into(), path));
    // The entrypoint checks these again at each start (cheaply).
    let needs = agent.needs(build);
    if !needs.is_empty() {
        spec.env.push(("STOCKADE_NEEDS".into(), needs.join(" ")));
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
    if agent.share_config {
        spec.mounts.extend(shared_config_mounts(ctx, agent)?);
    } else {
        shared_logins(ctx, agent, spec)?;
    }
    tracing::debug!(
        "agent {} {} from volume {}",
        agent.name,
        tools.version,
        tools.volume
    );
    Ok(tools.version)
}

/// Which build of `agent` runs on the sandbox image `image` (id `image_id`). For a native
/// agent the libc probe decides (run once per image id, in a helper with no network, no mounts
/// and no secrets: the image may be hostile, and its answer only chooses between two builds
/// stockade installs itself); an image without what the build needs is refused here, before
/// anything is installed. An image the probe cannot run in is left to the entrypoint.
pub async fn build_for(
    tools: &ToolsCtx<'_>,
    agent: &Agent,
    image: &str,
    image_id: &str,
) -> Result<Build, CliError> {
    if !agent.native {
        return Ok(Build::Package);
    }
    let Some(probe) = tools.libc_of(image, image_id).await? else {
        return Ok(Build::Package);
    };
    agent.build_for(&probe).map_err(|unfit| {
        CliError::other(
            format!(
                "{} cannot run on the sandbox image {image}: its command ({}) is a native program {}",
                agent.name,
                agent.package,
                unfit.problem()
            ),
            Some(&format!(
                "{}; agents that are Node.js programs (codex, gemini) run on any base, on the \
                 Node.js runtime stockade brings (docs/agents.md)",
                unfit.fix()
            )),
        )
    })
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

/// Where the agent's logins store appears in the sandbox.
pub const LOGINS_DIR: &str = "/run/stockade/logins";

/// The most stockade copies of a host login file into the store.
const LOGIN_FILE_CAP: u64 = 1 << 20;

/// By default an agent's config dirs live in the per-project home volume: nothing the agent
/// writes there (settings, hooks, plugins, MCP servers, shell init) reaches another project or
/// the host. Only its login files are shared, through a logins store of the agent's own on the
/// host (`$XDG_STATE_HOME/stockade/logins/<agent>/`, seeded from the host's own login file when
/// the store has none), mounted at [`LOGINS_DIR`]; the entrypoint links each login file in
/// HOME to it (`STOCKADE_LOGINS`). The store is flat (no directories the agent could replace
/// by a link) and anything in it that is not a regular file is removed before each launch.
fn shared_logins(ctx: &Context, agent: &Agent, spec: &mut SandboxSpec) -> Result<(), CliError> {
    let files: Vec<&String> = agent
        .login_files
        .iter()
        .filter(|f| !f.contains([':', '\n']))
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    let store = ctx.dirs.state.join("logins").join(&agent.name);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&store)
        .map_err(|e| io_error(&store, e))?;
    let meta = std::fs::symlink_metadata(&store).map_err(|e| io_error(&store, e))?;
    if !meta.is_dir() || meta.uid() != ctx.identity.uid {
        return Err(CliError::other(
            format!(
                "the logins store {} is not a directory of yours",
                store.display()
            ),
            Some("remove it; stockade makes it again (you log in to the agent once more)"),
        ));
    }
    // Whatever else an agent left in the store goes (links and directories are not followed).
    let names: Vec<String> = files.iter().map(|f| store_name(f)).collect();
    if let Ok(entries) = std::fs::read_dir(&store) {
        for entry in entries.flatten() {
            if names.iter().any(|n| entry.file_name() == n.as_str()) {
                continue;
            }
            let path = entry.path();
            let removed = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
            if let Err(e) = removed {
                tracing::debug!("logins store: removing {}: {e}", path.display());
            }
        }
    }
    let home = &ctx.identity.home;
    let mut pairs = Vec::new();
    for file in files {
        let name = store_name(file);
        let shared = store.join(&name);
        match std::fs::symlink_metadata(&shared) {
            Ok(m) if m.is_file() => {}
            Ok(m) => {
                // Only regular files belong here: a link or directory is the agent's doing.
                let removed = if m.is_dir() {
                    std::fs::remove_dir_all(&shared)
                } else {
                    std::fs::remove_file(&shared)
                };
                removed.map_err(|e| io_error(&shared, e))?;
                seed_login(&home.join(file), &shared)?;
            }
            Err(_) => seed_login(&home.join(file), &shared)?,
        }
        pairs.push(format!("{LOGINS_DIR}/{name}:{}", home.join(file).display()));
    }
    spec.mounts.push(Mount {
        source: store,
        target: LOGINS_DIR.into(),
        read_only: false,
    });
    spec.env.push(("STOCKADE_LOGINS".into(), pairs.join("\n")));
    Ok(())
}

/// `.claude/.credentials.json` → `.claude%2F.credentials.json`: one flat name per login file.
fn store_name(file: &str) -> String {
    file.replace('%', "%25").replace('/', "%2F")
}

/// Copy the host's own login file (a regular file, not followed if a link) into the store, so
/// the user who logged in on the host is logged in in every sandbox.
fn seed_login(host: &Path, shared: &Path) -> Result<(), CliError> {
    let Ok(meta) = std::fs::symlink_metadata(host) else {
        return Ok(());
    };
    if !meta.is_file() || meta.len() > LOGIN_FILE_CAP {
        return Ok(());
    }
    let Ok(bytes) = std::fs::read(host) else {
        return Ok(());
    };
    let scratch = shared.with_extension(format!("seed.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&scratch)?;
        file.write_all(&bytes)?;
        std::fs::rename(&scratch, shared)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&scratch);
        io_error(shared, e)
    })
}

/// `share_config = true` (global configuration only): the host's own config dirs and files
/// (created, files seeded), mounted read-write at the same paths. Whatever the agent writes
/// there reaches every project and the host.
fn shared_config_mounts(ctx: &Context, agent: &Agent) -> Result<Vec<Mount>, CliError> {
    let home = &ctx.identity.home;
    let mut mounts = Vec::new();
    for dir in &agent.config_dirs {
        let source = home.join(dir);
        std::fs::create_dir_all(&source).map_err(|e| io_error(&source, e))?;
        mounts.push(mount(&ctx.identity, &source, dir));
    }
    for file in &agent.config_files {
        let source = home.join(file);
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
    CliError::caused(
        format!("cannot create {}", path.display()),
        e,
        Some("check the permissions of your home and state directories"),
    )
}
