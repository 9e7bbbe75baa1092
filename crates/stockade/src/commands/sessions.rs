//! `stockade ps`, `stockade logs NAME` and `stockade stop NAME|--all`: a project's sandboxes.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use serde::Serialize;
use stockade_core::labels;
use stockade_engine::{ContainerState, ContainerSummary, Engine, LogsRequest, OutputChunk};
use tokio::io::AsyncWriteExt;

use crate::context::Context;
use crate::exit::CliError;
use crate::ui::{print_json, print_table};
use crate::{gateway, sessions};

/// One sandbox as `ps` shows it (`--json`: docs/sessions.md).
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    project: String,
    agent: Option<String>,
    agent_version: Option<String>,
    worktree: Option<String>,
    branch: Option<String>,
    /// `running`, `exited`, `created`…
    status: String,
    exit_code: Option<i64>,
    /// Started in the background (`-d`) or a service: it stays until `stockade stop`.
    detached: bool,
    started_at: Option<String>,
    uptime_seconds: Option<u64>,
    /// `host ip:port->container port/proto`.
    ports: Vec<String>,
    health: Option<String>,
    container: String,
}

impl Row {
    fn new(container: ContainerSummary, info: ContainerState, now: SystemTime) -> Self {
        let label = |key: &str| container.labels.get(key).cloned();
        let uptime_seconds = info
            .running
            .then_some(info.started_at.as_deref())
            .flatten()
            .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
            .and_then(|started| now.duration_since(started).ok())
            .map(|d| d.as_secs());
        // Behind the egress gateway its forwarder publishes them (docs/egress.md).
        let ports = gateway::published_ports(&info, &container.labels)
            .iter()
            .map(|(port, ip, host_port)| format!("{ip}:{host_port}->{port}"))
            .collect();
        Self {
            name: label(labels::SESSION).unwrap_or_else(|| container.name.clone()),
            project: label(labels::PROJECT).unwrap_or_default(),
            agent: label(labels::AGENT),
            agent_version: label(labels::AGENT_VERSION),
            worktree: label(labels::WORKTREE),
            branch: label(labels::BRANCH),
            exit_code: (!info.running && container.state == "exited")
                .then_some(info.exit_code)
                .flatten(),
            status: container.state.clone(),
            detached: container.labels.contains_key(labels::KEEP),
            started_at: info.started_at.filter(|_| info.running),
            uptime_seconds,
            ports,
            health: info.health,
            container: container.name,
        }
    }

    fn cells(&self) -> [String; 8] {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        let agent = match (&self.agent, &self.agent_version) {
            (Some(agent), Some(version)) => format!("{agent} {version}"),
            (Some(agent), None) => agent.clone(),
            _ => "-".to_owned(),
        };
        let status = match self.exit_code {
            Some(code) => format!("{} ({code})", self.status),
            None => self.status.clone(),
        };
        [
            self.name.clone(),
            agent,
            or_dash(&self.branch),
            status,
            self.uptime_seconds.map_or_else(|| "-".to_owned(), uptime),
            if self.ports.is_empty() {
                "-".to_owned()
            } else {
                self.ports.join(", ")
            },
            or_dash(&self.health),
            self.project.clone(),
        ]
    }
}

/// `12s`, `5m 3s`, `2h 7m`, `3d 4h`: two units at most.
fn uptime(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `stockade ps [--all] [--json]`.
pub async fn ps(ctx: &Context, all: bool, json: bool) -> Result<u8, CliError> {
    let project = if all { None } else { Some(ctx.project()?) };
    let roots = project.as_ref().map(|p| sessions::roots(ctx, p));
    let engine = ctx.connect().await?;
    let containers = sessions::list(&engine, &ctx.namespace, roots.as_deref()).await?;
    let infos =
        futures_util::future::join_all(containers.iter().map(|c| engine.container_state(&c.id)))
            .await;
    let now = SystemTime::now();
    let mut rows: Vec<Row> = Vec::new();
    for (container, info) in containers.into_iter().zip(infos) {
        // None: removed between the listing and the inspect; it is not there any more.
        if let Some(info) = info? {
            rows.push(Row::new(container, info, now));
        }
    }
    rows.sort_by(|a, b| (&a.project, &a.name).cmp(&(&b.project, &b.name)));
    if json {
        print_json(&rows)?;
        return Ok(0);
    }
    if rows.is_empty() {
        let whose = match &project {
            Some(p) => format!("in {}", p.root.display()),
            None => "at all".to_owned(),
        };
        ctx.ui.info(&format!("no sandboxes {whose}"));
        return Ok(0);
    }
    let cells: Vec<[String; 8]> = rows.iter().map(Row::cells).collect();
    let header = [
        "NAME", "AGENT", "BRANCH", "STATUS", "UPTIME", "PORTS", "HEALTH", "PROJECT",
    ];
    if all {
        print_table(&header, &cells);
    } else {
        // One project: its path would be the same on every line.
        let cells: Vec<[String; 7]> = cells
            .into_iter()
            .map(|[a, b, c, d, e, f, g, _]| [a, b, c, d, e, f, g])
            .collect();
        let [a, b, c, d, e, f, g, _] = header;
        print_table(&[a, b, c, d, e, f, g], &cells);
    }
    Ok(0)
}

/// What `stockade logs` shows.
pub struct LogsArgs {
    pub follow: bool,
    pub tail: Option<u64>,
    /// A duration back from now (`10m`) or an RFC 3339 time.
    pub since: Option<String>,
}

/// `stockade logs NAME [-f] [--tail N] [--since T]`.
pub async fn logs(ctx: &Context, name: &str, args: LogsArgs) -> Result<u8, CliError> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let project = ctx.project()?;
    let engine = ctx.connect().await?;
    let roots = sessions::roots(ctx, &project);
    let container = sessions::one(&engine, &ctx.namespace, &roots, name).await?;
    let mut stream = engine.logs(
        &container.id,
        &LogsRequest {
            follow: args.follow,
            tail: args.tail,
            since,
        },
    );
    let (mut stdout, mut stderr) = (tokio::io::stdout(), tokio::io::stderr());
    while let Some(chunk) = stream.next().await {
        let written = match chunk? {
            OutputChunk::Stdout(bytes) => stdout.write_all(&bytes).await,
            OutputChunk::Stderr(bytes) => stderr.write_all(&bytes).await,
        };
        if written.is_err() {
            break; // our reader went away (`| head`)
        }
    }
    let _ = stdout.flush().await;
    Ok(0)
}

/// `--since`: `90s`, `10m`, `2h` back from now, or an RFC 3339 time; as Unix seconds.
fn parse_since(text: &str) -> Result<i64, CliError> {
    let at = match humantime::parse_duration(text) {
        Ok(ago) => SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(SystemTime::UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(text).map_err(|_| {
            CliError::other(
                format!("--since {text:?} is neither a duration nor a time"),
                Some("a duration back from now (`10m`, `2h`) or a time (`2026-11-26T10:00:00Z`)"),
            )
        })?,
    };
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    Ok(i64::try_from(seconds).unwrap_or(i64::MAX))
}

/// `stockade stop NAME… | --all [--time S]`: stop (SIGTERM, SIGKILL after S seconds, by
/// default the sandbox's `stop_timeout`) and remove.
pub async fn stop(
    ctx: &Context,
    names: &[String],
    all: bool,
    time: Option<u64>,
) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let roots = sessions::roots(ctx, &project);
    let engine = ctx.connect().await?;
    let targets: Vec<ContainerSummary> = if all {
        sessions::list(&engine, &ctx.namespace, Some(&roots)).await?
    } else {
        let mut found = Vec::new();
        for name in names {
            found.push(sessions::one(&engine, &ctx.namespace, &roots, name).await?);
        }
        found
    };
    if targets.is_empty() {
        ctx.ui
            .info(&format!("no sandboxes in {}", project.root.display()));
        return Ok(0);
    }
    let stopping = targets.iter().map(|c| stop_one(&engine, ctx, c, time));
    for (container, result) in targets
        .iter()
        .zip(futures_util::future::join_all(stopping).await)
    {
        result?;
        let name = container
            .labels
            .get(labels::SESSION)
            .unwrap_or(&container.name);
        println!("{name}");
    }
    Ok(0)
}

/// How long a stopped foreground sandbox is left to the stockade that runs it, which reads its
/// exit code and removes it.
const OWNER_GRACE: Duration = Duration::from_secs(5);

/// Stop one sandbox and remove it. A foreground one belongs to the stockade process running it:
/// removing it under that process would take its exit code (Podman 4.3 then answers the wait
/// with 0), so it is removed here only if it is still there after [`OWNER_GRACE`] (its stockade
/// is gone). A detached one is removed at once.
async fn stop_one(
    engine: &Engine,
    ctx: &Context,
    container: &ContainerSummary,
    time: Option<u64>,
) -> Result<(), CliError> {
    engine.stop(&container.id, time).await?;
    if !container.labels.contains_key(labels::KEEP) {
        let deadline = tokio::time::Instant::now() + OWNER_GRACE;
        while tokio::time::Instant::now() < deadline {
            if engine.container_state(&container.id).await?.is_none() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    engine.remove(&container.id).await?;
    // Its gateway credentials and port forwarder go with it.
    gateway::release(engine, ctx, &container.name).await;
    Ok(())
}
