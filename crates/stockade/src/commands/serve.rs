//! `stockade serve opencode [--port N] [--host ADDR]`: OpenCode's web server as a long-lived
//! sandbox (detached, restarted unless stopped, health-checked, always behind a password), and
//! `serve url | status | stop | logs` over it.
//!
//! The password is made once per project (`password`), handed over as a secret
//! (`OPENCODE_SERVER_PASSWORD` in the secrets file, never the container's configuration), and
//! read there by the engine's health check, so nothing in `docker inspect` holds it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use stockade_core::config::{FlagValue, PortSetting};
use stockade_core::labels;
use stockade_core::project::Project;
use stockade_core::sandbox::HealthCheck;
use stockade_engine::{ContainerState, ContainerSummary, Engine, LogsRequest, OutputChunk};
use tokio::io::AsyncWriteExt;

use crate::cli::SessionArgs;
use crate::commands::exec::{self, ExecRequest, Service};
use crate::context::Context;
use crate::exit::CliError;
use crate::launch::Allowances;
use crate::{password, probe, sessions};

/// What `stockade serve` can serve.
pub const SERVABLE: &[&str] = &["opencode"];
/// The service's session name: `stockade ps`, `logs`, `stop` know it by this name too.
pub const SESSION: &str = "opencode-web";
/// The user OpenCode's basic auth expects (`OPENCODE_SERVER_USERNAME`, its default).
pub const USER: &str = "opencode";
/// OpenCode's health endpoint: `{healthy, version}`, behind the same basic auth.
const HEALTH_PATH: &str = "/global/health";
/// How often stockade asks the endpoint while it waits for the service.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Lines of the service's log shown when it does not become healthy.
const LOG_TAIL: u64 = 20;
/// Seconds the service has to stop (`serve stop`) before it is killed.
const STOP_TIMEOUT: u64 = 10;

/// `stockade serve opencode`'s settings.
pub struct StartRequest {
    /// The port inside and on the host; `None`: a free one.
    pub port: Option<u16>,
    /// The host address the port is published on; `None`: 127.0.0.1.
    pub host: Option<IpAddr>,
    /// How long to wait for the service to answer healthy.
    pub timeout: Duration,
    pub flags: Vec<FlagValue>,
    pub allow: Allowances,
}

/// An agent `serve` does not know.
pub fn not_servable(agent: &str) -> CliError {
    CliError::refused(
        "not-servable",
        format!(
            "{agent} cannot be served: stockade serves {}",
            SERVABLE.join(", ")
        ),
        Some("run `stockade serve opencode`, or run the agent itself with `stockade <agent>`"),
    )
}

/// Start the service and wait until it answers healthy; prints its URL.
pub async fn start(ctx: &Context, agent: &str, request: StartRequest) -> Result<u8, CliError> {
    if !SERVABLE.contains(&agent) {
        return Err(not_servable(agent));
    }
    let project = ctx.project()?;
    let connecting = ctx.spawn_connect();
    let host = request.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if !host.is_loopback() {
        ctx.ui.warn(&format!(
            "the service is published on {host}, beyond this machine's loopback: anyone who can \
             reach that address gets its login page, and its password is all that guards an API \
             that runs code in the project"
        ));
    }
    let port = match request.port {
        Some(port) => port,
        None => free_port(host)?,
    };
    let password = password::load_or_create(&password_path(ctx, &project))?;
    let engine = connecting
        .await
        .map_err(|e| CliError::caused("connecting to the engine failed", e, None))??;
    if let Some(running) = find(&engine, ctx, &project)
        .await?
        .into_iter()
        .find(|c| c.state == "running" || c.state == "restarting")
    {
        return Err(CliError::refused(
            "service-running",
            format!(
                "the {agent} service of {} already runs ({})",
                project.root.display(),
                running.name
            ),
            Some(
                "`stockade serve url` prints its address and login; `stockade serve stop` ends it",
            ),
        ));
    }

    let service = Service {
        ports: vec![PortSetting {
            host_ip: host.to_string(),
            host_port: port,
            container_port: port,
            protocol: "tcp".to_owned(),
        }],
        secrets: vec![("OPENCODE_SERVER_PASSWORD".to_owned(), password.clone())],
        env: vec![("OPENCODE_SERVER_USERNAME".to_owned(), USER.to_owned())],
        health: health_check(port),
        labels: vec![(labels::SERVICE.to_owned(), agent.to_owned())],
    };
    let launched = exec::launch(
        ctx,
        ExecRequest {
            command: ["web", "--hostname", "0.0.0.0", "--port", &port.to_string()]
                .map(str::to_owned)
                .to_vec(),
            agent: Some(agent.to_owned()),
            flags: request.flags,
            allow: request.allow,
            dry_run: false,
            headless: true,
            output: crate::session::Output::PassThrough,
            session: SessionArgs {
                name: Some(SESSION.to_owned()),
                detach: true,
                worktree: None,
            },
            service: Some(service),
        },
    )
    .await?;
    let url = url(host, port);
    let addr = SocketAddr::new(reachable(host), port);
    let started = Instant::now();
    let deadline = started + request.timeout;
    let task = ctx
        .ui
        .task(&format!("Waiting for {agent} to answer at {url}"));
    loop {
        let limit = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(2));
        if let Some(version) = healthy(addr, &password, limit).await {
            task.finish();
            println!("{url}");
            ctx.ui.success(&format!(
                "{agent} {version} serves {url} ({}); `stockade serve url` prints the login",
                crate::ui::seconds(started.elapsed())
            ));
            return Ok(0);
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    task.finish();
    if let Some(id) = &launched.container {
        print_log_tail(&engine, id).await;
    }
    Err(CliError::other(
        format!(
            "{agent} did not answer healthy at {}{HEALTH_PATH} within {} s",
            url.trim_end_matches('/'),
            request.timeout.as_secs()
        ),
        Some(
            "its log is above (`stockade serve logs` shows all of it); it keeps running and \
             restarting: `stockade serve stop` ends it, `--timeout` waits longer",
        ),
    ))
}

/// The health check: sources the secrets file (the password is there, never in the check's
/// command line, which `docker inspect` shows) and hands curl the login on stdin.
fn health_check(port: u16) -> HealthCheck {
    use stockade_core::secret_file::{SECRETS_PATH, SECRETS_VOLUME_DIR};
    let secrets = format!("{SECRETS_PATH} {SECRETS_VOLUME_DIR}/env");
    HealthCheck {
        shell: format!(
            "for f in {secrets}; do [ -r \"$f\" ] && . \"$f\"; done; \
             printf 'user = \"{USER}:%s\"\\n' \"$OPENCODE_SERVER_PASSWORD\" | \
             curl -fsS -m 4 -K - http://127.0.0.1:{port}{HEALTH_PATH}"
        ),
        interval_secs: 5,
        timeout_secs: 5,
        retries: 3,
    }
}

/// The version when the endpoint answers 200 with `{"healthy": true, "version": …}`.
async fn healthy(addr: SocketAddr, password: &str, limit: Duration) -> Option<String> {
    let answer = probe::get(addr, HEALTH_PATH, Some((USER, password)), limit).await?;
    if answer.status != 200 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
    (doc["healthy"] == true).then(|| doc["version"].as_str().unwrap_or("?").to_owned())
}

/// A port free on `host` now (the engine publishes it a moment later).
fn free_port(host: IpAddr) -> Result<u16, CliError> {
    std::net::TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| {
            CliError::caused(
                format!("cannot find a free port on {host}"),
                e,
                Some("give one with --port, or another address with --host"),
            )
        })
}

/// Where the service is reached from this machine: loopback for an unspecified address.
fn reachable(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

fn url(host: IpAddr, port: u16) -> String {
    match reachable(host) {
        IpAddr::V4(a) => format!("http://{a}:{port}/"),
        IpAddr::V6(a) => format!("http://[{a}]:{port}/"),
    }
}

fn password_path(ctx: &Context, project: &Project) -> std::path::PathBuf {
    password::path(
        &ctx.dirs.state,
        ctx.namespace.as_str(),
        &project.id(),
        "opencode",
    )
}

async fn find(
    engine: &Engine,
    ctx: &Context,
    project: &Project,
) -> Result<Vec<ContainerSummary>, CliError> {
    sessions::find(engine, &ctx.namespace, &project.root, SESSION).await
}

/// The project's service, running or not; an error naming how to start it when there is none.
async fn existing(ctx: &Context) -> Result<(Engine, Project, ContainerSummary), CliError> {
    let project = ctx.project()?;
    let engine = ctx.connect().await?;
    let found = find(&engine, ctx, &project).await?.into_iter().next();
    match found {
        Some(container) => Ok((engine, project, container)),
        None => Err(no_service(&project)),
    }
}

fn no_service(project: &Project) -> CliError {
    CliError::refused(
        "no-service",
        format!("no opencode service runs in {}", project.root.display()),
        Some("start it with `stockade serve opencode`"),
    )
}

/// The state with the ports a forwarder publishes behind the egress gateway.
fn forwarded(
    mut state: ContainerState,
    labels: &std::collections::HashMap<String, String>,
) -> ContainerState {
    state.ports = crate::gateway::published_ports(&state, labels);
    state
}

/// The address the service's port is published at, from the engine.
fn published(state: &ContainerState) -> Option<(IpAddr, u16)> {
    let (_, ip, port) = state.ports.first()?;
    let port: u16 = port.parse().ok()?;
    let ip: IpAddr = if ip.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        ip.parse().ok()?
    };
    Some((ip, port))
}

fn published_url(state: &ContainerState) -> Option<String> {
    published(state).map(|(ip, port)| url(ip, port))
}

/// `stockade serve url`: the address and the login.
pub async fn print_url(ctx: &Context) -> Result<u8, CliError> {
    let (engine, project, container) = existing(ctx).await?;
    let state = engine
        .container_state(&container.id)
        .await?
        .map(|s| forwarded(s, &container.labels));
    let Some(url) = state.as_ref().and_then(published_url) else {
        return Err(no_service(&project));
    };
    let path = password_path(ctx, &project);
    let Some(password) = password::load(&path)? else {
        return Err(CliError::other(
            format!("the service's password {} is missing", path.display()),
            Some("restart the service: `stockade serve stop`, then `stockade serve opencode`"),
        ));
    };
    println!("url:      {url}");
    println!("user:     {USER}");
    println!("password: {password}");
    Ok(0)
}

/// `stockade serve status --json`.
#[derive(Debug, Serialize)]
struct Status {
    service: &'static str,
    /// The session's name; null without a service.
    name: Option<String>,
    /// `running`, `restarting`, `exited`…, or `absent`.
    state: String,
    /// The engine's health check: `starting`, `healthy`, `unhealthy`; where the engine runs no
    /// health check (Podman without systemd), stockade's own request: `healthy`, `unhealthy`.
    health: Option<String>,
    url: Option<String>,
    /// How often the engine restarted it.
    restarts: i64,
    started_at: Option<String>,
}

/// `stockade serve status [--json]`.
pub async fn status(ctx: &Context, json: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let engine = ctx.connect().await?;
    let container = find(&engine, ctx, &project).await?.into_iter().next();
    let state = match &container {
        Some(c) => engine
            .container_state(&c.id)
            .await?
            .map(|s| forwarded(s, &c.labels)),
        None => None,
    };
    let mut status = Status {
        service: "opencode",
        name: container.as_ref().map(|_| SESSION.to_owned()),
        state: state
            .as_ref()
            .map_or_else(|| "absent".to_owned(), |s| s.status.clone()),
        // Podman 4.3 runs health checks from systemd timers: without systemd its answer stays
        // `starting`, so there stockade asks the endpoint itself (below).
        health: state
            .as_ref()
            .and_then(|s| s.health.clone())
            .filter(|_| !engine.is_podman()),
        url: state.as_ref().and_then(published_url),
        restarts: state.as_ref().map_or(0, |s| s.restart_count),
        started_at: state.as_ref().and_then(|s| s.started_at.clone()),
    };
    if status.health.is_none()
        && status.state == "running"
        && let Some((ip, port)) = state.as_ref().and_then(published)
        && let Some(password) = password::load(&password_path(ctx, &project))?
    {
        // No engine health check, or Podman's: ask the endpoint.
        let addr = SocketAddr::new(reachable(ip), port);
        let ok = healthy(addr, &password, Duration::from_secs(2)).await;
        status.health = Some(if ok.is_some() { "healthy" } else { "unhealthy" }.to_owned());
    }
    if json {
        crate::ui::print_json(&status)?;
        return Ok(0);
    }
    match &status.name {
        None => println!("no opencode service in {}", project.root.display()),
        Some(name) => {
            println!("name:     {name}");
            println!("state:    {}", status.state);
            println!("health:   {}", status.health.as_deref().unwrap_or("-"));
            println!("url:      {}", status.url.as_deref().unwrap_or("-"));
            println!("restarts: {}", status.restarts);
        }
    }
    Ok(0)
}

/// `stockade serve stop`: stop and remove the service; its port closes.
pub async fn stop(ctx: &Context) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let engine = ctx.connect().await?;
    let found = find(&engine, ctx, &project).await?;
    if found.is_empty() {
        return Err(no_service(&project));
    }
    for container in found {
        engine.stop(&container.id, Some(STOP_TIMEOUT)).await?;
        engine.remove(&container.id).await?;
        // Its gateway credentials and port forwarder go with it.
        crate::gateway::release(&engine, ctx, &container.name).await;
    }
    ctx.ui.success(&format!(
        "{SESSION} stopped; its state stays in the project's home volume for the next `stockade serve opencode`"
    ));
    Ok(0)
}

/// `stockade serve logs [-f]`: its log, then with `follow` what it prints.
pub async fn logs(ctx: &Context, follow: bool) -> Result<u8, CliError> {
    let (engine, _, container) = existing(ctx).await?;
    let mut stream = engine.logs(
        &container.id,
        &LogsRequest {
            follow,
            tail: None,
            since: None,
        },
    );
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    while let Some(chunk) = stream.next().await {
        let written = match chunk? {
            OutputChunk::Stdout(bytes) => write(&mut stdout, &bytes).await,
            OutputChunk::Stderr(bytes) => write(&mut stderr, &bytes).await,
        };
        if written.is_err() {
            break;
        }
    }
    Ok(0)
}

async fn write(out: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes).await?;
    out.flush().await
}

/// The last lines of the service's log, on stderr.
async fn print_log_tail(engine: &Engine, id: &str) {
    let mut text = Vec::new();
    let mut stream = engine.logs(
        id,
        &LogsRequest {
            follow: false,
            tail: Some(LOG_TAIL),
            since: None,
        },
    );
    while let Some(Ok(OutputChunk::Stdout(bytes) | OutputChunk::Stderr(bytes))) =
        stream.next().await
    {
        text.extend_from_slice(&bytes);
    }
    let text = String::from_utf8_lossy(&text);
    eprintln!("the service's log (last {LOG_TAIL} lines):");
    for line in text.lines() {
        eprintln!("  | {}", line.trim_end_matches('\r'));
    }
}
