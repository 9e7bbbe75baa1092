//! `stockade exec [--] CMD…`, `stockade shell` (an empty command: the login shell) and
//! `stockade <agent> [ARGS…]`: one launch path for every sandbox.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;

use stockade_core::agents::Agent;
use stockade_core::config::{FlagValue, PortSetting};
use stockade_core::labels;
use stockade_core::names::SessionName;
use stockade_core::sandbox::{HealthCheck, Restart, SandboxRequest, SandboxSpec, random_suffix};
use stockade_engine::{Endpoint, Engine, resolve_endpoint};

use crate::cli::SessionArgs;
use crate::context::{Context, env};
use crate::exit::CliError;
use crate::image::{BuildMode, ChainPlan, ChainRun, chain_image, chain_tags, ensure_planned};
use crate::launch::{self, Allowances};
use crate::{agent, extras, gateway, session, sessions, user_files, worktree};

/// What to run and how.
pub struct ExecRequest {
    /// The command (empty: a login shell), or the agent's arguments when `agent` is set.
    pub command: Vec<String>,
    /// Run this agent (`stockade <agent> ARGS…`).
    pub agent: Option<String>,
    /// The sandbox flags, as the last configuration layer.
    pub flags: Vec<FlagValue>,
    pub allow: Allowances,
    /// Print the container specification instead of creating it.
    pub dry_run: bool,
    /// Never a TTY, even on a terminal (`stockade run`).
    pub headless: bool,
    /// Where the sandbox's output goes.
    pub output: session::Output,
    /// The session's name, background, worktree.
    pub session: SessionArgs,
    /// Run as a long-lived service (`stockade serve`): detached, with these additions.
    pub service: Option<Service>,
}

/// What a service adds to a detached sandbox (`stockade serve`).
#[derive(Debug, Clone)]
pub struct Service {
    /// Published ports.
    pub ports: Vec<PortSetting>,
    /// Handed over like every secret (the secrets file), replacing a value of the same name.
    pub secrets: Vec<(String, String)>,
    /// Set in the container's environment (not secret), replacing a value of the same name.
    pub env: Vec<(String, String)>,
    pub health: HealthCheck,
    pub labels: Vec<(String, String)>,
}

impl Service {
    /// Make the spec this service's: restarted unless stopped, health-checked, published.
    fn apply(&self, spec: &mut SandboxSpec) {
        spec.restart = Restart::UnlessStopped;
        spec.health = Some(self.health.clone());
        spec.ports.extend(self.ports.iter().cloned());
        for (name, _) in self.secrets.iter().chain(&self.env) {
            spec.env.retain(|(existing, _)| existing != name);
            spec.secrets.retain(|(existing, _)| existing != name);
        }
        spec.secrets.extend(self.secrets.iter().cloned());
        spec.env.extend(self.env.iter().cloned());
        spec.labels.extend(self.labels.iter().cloned());
    }
}

/// What a launch ran, and how it ended.
pub struct Launched {
    pub finished: session::Finished,
    /// The image the sandbox ran on.
    pub image: String,
    /// The agent's version, when an agent ran.
    pub agent_version: Option<String>,
    /// The container, when it runs on in the background (detached, a service).
    pub container: Option<String>,
}

/// One pipeline that data flows down once: *read* and *resolve* (`launch::prepare`: every
/// project file read once, the configuration parsed from those bytes), *approve*
/// (`launch::check`: the fingerprint is of the same bytes), *plan* (spec and chain, the project
/// tier built from the bytes read), *run*.
pub async fn run(ctx: &Context, request: ExecRequest) -> Result<u8, CliError> {
    Ok(launch(ctx, request).await?.finished.code)
}

/// [`run`], telling what ran: the image, the agent's version, the output when captured.
pub async fn launch(ctx: &Context, mut request: ExecRequest) -> Result<Launched, CliError> {
    // `--worktree NAME`: the worktree is made (or reused), then the launch runs there exactly
    // as if the user had `cd`'d into it.
    match request.session.worktree.take() {
        Some(name) => {
            let inside = enter_worktree(ctx, &name).await?;
            launch_here(&inside, request).await
        }
        None => launch_here(ctx, request).await,
    }
}

/// Make (or reuse) the worktree `name` of the current project's repository; the context of a
/// launch inside it (the same subdirectory when the worktree has it).
async fn enter_worktree(ctx: &Context, name: &str) -> Result<Context, CliError> {
    worktree::validate_name(name)?;
    // The main project is read for the global-only keys (worktrees directory, foundation).
    let prepared = launch::prepare(ctx, Vec::new())?;
    let engine = ctx.connect().await?;
    let git = worktree::git(&engine, ctx, &prepared, true).await?;
    let record = git.ensure(name).await?;
    let sub = ctx
        .cwd
        .strip_prefix(&prepared.project.root)
        .ok()
        .map(|rel| record.path.join(rel))
        .filter(|dir| dir.is_dir());
    Ok(Context {
        ui: ctx.ui.clone(),
        dirs: ctx.dirs.clone(),
        identity: ctx.identity.clone(),
        namespace: ctx.namespace.clone(),
        cwd: sub.unwrap_or(record.path),
    })
}

/// The launch in the current directory's project.
async fn launch_here(ctx: &Context, request: ExecRequest) -> Result<Launched, CliError> {
    // The engine is reached while the project's files are read and checked; it is used only
    // once they are approved.
    let connecting = (!request.dry_run).then(|| ctx.spawn_connect());
    let prepared = launch::prepare(ctx, request.flags)?;
    let project = &prepared.project;
    let config = &prepared.resolved.config;
    let agent: Option<Agent> = request
        .agent
        .as_deref()
        .map(|name| agent::resolve(name, config))
        .transpose()?;
    let command = match &agent {
        Some(agent) => agent::command_line(agent, request.command),
        None => request.command,
    };
    let service = request.service;
    let detached = request.session.detach || service.is_some();
    // A detached session always gets a TTY: `attach` joins it as a terminal. A service gets
    // none: its log keeps stdout and stderr apart, without terminal control sequences.
    let tty = (detached && service.is_none())
        || (!request.headless && std::io::stdin().is_terminal() && std::io::stdout().is_terminal());
    // In a worktree stockade made (by this launch or an earlier one): `ps` shows its branch.
    let made = worktree::Records::new(ctx).at(&project.root);
    let session_name = session_name(
        &request.session,
        agent.as_ref(),
        &command,
        made.as_ref().map(|m| m.name.as_str()),
    )?;
    let sandbox = |image: String| -> Result<SandboxSpec, CliError> {
        let mut spec = SandboxSpec::new(
            SandboxRequest {
                namespace: &ctx.namespace,
                project,
                user: &ctx.identity,
                config,
                image,
                command: command.clone(),
                tty,
                session: &session_name,
                detached,
            },
            env,
        );
        extras::apply(&mut spec, ctx, project, config)?;
        if config.sandbox.docker_socket {
            mount_engine_socket(ctx, &mut spec)?;
        }
        if let Some(agent) = &agent {
            spec.labels
                .insert(labels::AGENT.to_owned(), agent.name.clone());
        }
        if let Some(made) = &made {
            spec.labels
                .insert(labels::WORKTREE.to_owned(), made.name.clone());
            spec.labels
                .insert(labels::BRANCH.to_owned(), made.branch.clone());
        }
        if let Some(service) = &service {
            service.apply(&mut spec);
        }
        gateway::plan(ctx, project, config, agent.as_ref(), &mut spec);
        Ok(spec)
    };

    if request.dry_run {
        // Nothing starts: no scan needed, but the refusals and the approval still apply (what
        // the spec shows is what an approved launch would apply).
        launch::refuse_broad_root(project, &ctx.identity.home)?;
        launch::check_trust(ctx, &prepared, request.allow.trust)?;
        launch::check_mount_sources(&prepared)?;
        // The image as the chain names it; it is built (or found current) at launch.
        let mut spec = sandbox(chain_image(ctx, &prepared))?;
        extras::finish(&mut spec, &ctx.identity.home);
        crate::ui::print_json(&spec)?;
        return Ok(Launched {
            finished: session::Finished {
                code: 0,
                captured: None,
            },
            image: spec.image,
            agent_version: None,
            container: None,
        });
    }

    // The build contexts are scanned and hashed on another thread while the launch checks, the
    // spec is made, the engine is reached and the tiers are looked up.
    let plan = ChainPlan::spawn(ctx, &prepared);
    launch::check(ctx, &prepared, request.allow)?;
    for warning in stockade_core::sandbox::unapplied_options(config) {
        ctx.ui.warn(&warning);
    }
    let mut spec = sandbox(chain_image(ctx, &prepared))?;
    let engine = match connecting {
        Some(task) => task
            .await
            .map_err(|e| CliError::caused("connecting to the engine failed", e, None))??,
        None => ctx.connect().await?,
    };
    let run = ChainRun::prefetch(&engine, &chain_tags(ctx, &prepared)).await?;
    let plan = plan
        .await
        .map_err(|e| CliError::caused("planning the image chain failed", e, None))??;
    let chain =
        ensure_planned(&engine, ctx, config, project, plan, run, BuildMode::IfStale).await?;
    spec.image = chain.image().to_owned();
    if request.session.name.is_some() || detached {
        claim(&engine, ctx, &session_name, &project.root).await?;
    }
    let mut agent_version = None;
    if let Some(agent) = &agent {
        // Installs run in helper containers from the foundation (npm, pip); the agent runs on the
        // chain's last tier.
        agent_version = Some(
            agent::equip(
                &engine,
                ctx,
                config,
                project,
                agent,
                &chain.helper().tag,
                chain.image_id(),
                &mut spec,
            )
            .await?,
        );
    }
    // Behind the gateway: its credentials are secrets, so before `finish` (which gives a
    // read-only root the volume they go in).
    let mut egress = gateway::attach(&engine, ctx, config, &mut spec).await?;
    extras::finish(&mut spec, &ctx.identity.home);
    user_files::prepare(
        &engine,
        ctx,
        &mut spec,
        chain.image_id(),
        &chain.helper().tag,
    )
    .await?;
    // Mount sources are paths the engine resolves at create: checked again as late as possible
    // (docs/security.md, class 4, names the remaining window).
    launch::check_mount_sources(&prepared)?;
    if let Some(version) = &agent_version {
        spec.labels
            .insert(labels::AGENT_VERSION.to_owned(), version.clone());
    }
    if detached {
        let written = gateway::policy_written(egress.as_mut());
        let id = session::start_detached(&engine, &spec, written).await?;
        if let Some(egress) = &egress {
            egress.start_forwarder(&engine).await?;
        }
        if service.is_none() {
            println!("{session_name}");
            // On stdout the name alone, for scripts; how to reach it on stderr.
            ctx.ui.info(&format!(
                "{session_name} runs in the background: `stockade attach {session_name}` joins \
                 it, `stockade stop {session_name}` ends it"
            ));
        }
        return Ok(Launched {
            finished: session::Finished {
                code: 0,
                captured: None,
            },
            image: spec.image,
            agent_version,
            container: Some(id),
        });
    }
    if let Some(egress) = &egress {
        egress.start_forwarder(&engine).await?;
    }
    // The policy is revoked while the ended sandbox is removed, not after.
    let release = gateway::released(egress.as_ref().map(|e| e.release(&engine, ctx)));
    let written = gateway::policy_written(egress.as_mut());
    let finished = session::run(&engine, &spec, request.output, &ctx.ui, written, release).await?;
    Ok(Launched {
        finished,
        image: spec.image,
        agent_version,
        container: None,
    })
}

/// The session's name: `--name`; else with `--detach` the worktree's name in a worktree
/// stockade made (so `ps` in the repository tells N agents on N branches apart), or the agent's
/// name (`shell`, `exec`); else generated (`claude-3f9a1c`), so two foreground sandboxes of a
/// project never collide.
fn session_name(
    session: &SessionArgs,
    agent: Option<&Agent>,
    command: &[String],
    worktree: Option<&str>,
) -> Result<SessionName, CliError> {
    if let Some(name) = &session.name {
        return SessionName::new(name).map_err(|e| {
            CliError::other(
                e.to_string(),
                Some("pick another --name, e.g. --name fix-tests"),
            )
        });
    }
    let base = match agent {
        Some(agent) => agent.name.as_str(),
        None if command.is_empty() => "shell",
        None => "exec",
    };
    if session.detach {
        if let Some(name) = worktree.and_then(|w| SessionName::new(w).ok()) {
            return Ok(name);
        }
        SessionName::new(base)
            .map_err(|e| CliError::other(e.to_string(), Some("name the session with --name")))
    } else {
        Ok(SessionName::generated(base, &random_suffix()))
    }
}

/// Make the session's name this sandbox's: refused while a sandbox of that name runs in the
/// project (naming how to join it); a stopped one of that name is removed, as it is replaced.
async fn claim(
    engine: &Engine,
    ctx: &Context,
    name: &SessionName,
    root: &std::path::Path,
) -> Result<(), CliError> {
    for existing in sessions::find(engine, &ctx.namespace, root, name.as_str()).await? {
        if existing.state == "running" {
            return Err(CliError::refused(
                "session-running",
                format!(
                    "a sandbox named {name} is already running in {}",
                    root.display()
                ),
                Some(&format!(
                    "join it with `stockade attach {name}`, stop it with `stockade stop {name}`, \
                     or pick another --name"
                )),
            ));
        }
        engine.remove(&existing.id).await?;
    }
    Ok(())
}

/// `docker_socket = true`: the local engine's socket, with its group.
fn mount_engine_socket(ctx: &Context, spec: &mut SandboxSpec) -> Result<(), CliError> {
    let resolved =
        resolve_endpoint(env, &ctx.identity.home).map_err(stockade_engine::EngineError::from)?;
    let Endpoint::Unix(path) = resolved.endpoint else {
        return Err(CliError::other(
            format!(
                "docker_socket = true needs a local unix socket, but the engine is at {}",
                resolved.endpoint
            ),
            Some("unset docker_socket, or use a local engine"),
        ));
    };
    let gid = std::fs::metadata(&path).ok().map(|m| m.gid());
    spec.mount_engine_socket(path, gid);
    Ok(())
}
