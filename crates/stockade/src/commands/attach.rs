//! Joining a running sandbox: `stockade attach NAME` (its terminal) and `stockade exec --in NAME
//! -- CMD` (one more command in it, as the same user with the same environment and secrets).

use std::io::IsTerminal;
use std::time::Duration;

use futures_util::StreamExt;
use stockade_engine::{Attached, ExecSpec, LogsRequest, OutputChunk};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};

use crate::context::Context;
use crate::exit::CliError;
use crate::session::{Output, RawMode, pump_input, pump_output};
use crate::sessions;

/// How many lines of recent output `attach` replays when the terminal's height is unknown.
const REPLAY_LINES: u64 = 100;

/// The sandbox's entrypoint: run by `exec --in` so the command gets what the sandbox's own
/// command got (PATH with the agent's tools, the logins, the secrets sourced last).
const ENTRYPOINT: &str = "/opt/stockade/entrypoint.sh";

/// `stockade attach NAME`: replay the recent output, attach, resize (so a full-screen program
/// repaints), then follow until the detach keys or the sandbox's end.
pub async fn attach(ctx: &Context, name: &str) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let detach_keys = ctx.config(&project)?.sandbox.detach_keys;
    let engine = ctx.connect().await?;
    let container = sessions::running(&engine, &ctx.namespace, &project.root, name).await?;
    let id = container.id.as_str();
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();

    // What it printed lately, so the screen shows where it is; then live from the attach.
    let rows = crossterm::terminal::size().map_or(REPLAY_LINES, |(_, rows)| u64::from(rows));
    let mut recent = engine.logs(
        id,
        &LogsRequest {
            follow: false,
            tail: Some(rows),
            since: None,
        },
    );
    let mut stdout = tokio::io::stdout();
    while let Some(chunk) = recent.next().await {
        let bytes = match chunk? {
            OutputChunk::Stdout(bytes) | OutputChunk::Stderr(bytes) => bytes,
        };
        stdout
            .write_all(&bytes)
            .await
            .map_err(|e| CliError::caused("cannot write the sandbox's output", e, None))?;
    }
    let _ = stdout.flush().await;

    let Attached { output, input } = engine.attach_running(id, &detach_keys).await?;
    let raw = if terminal {
        Some(RawMode::enable()?)
    } else {
        None
    };
    let resize = |cols, rows| {
        let engine = engine.clone();
        let id = id.to_owned();
        async move { engine.resize(&id, cols, rows).await }
    };
    if terminal {
        repaint(&resize).await;
    }
    follow(output, input, terminal, &resize).await?;
    drop(raw);

    let info = engine.inspect_session(id).await?;
    if info.running {
        ctx.ui.info(&format!(
            "detached from {name}; it keeps running (`stockade attach {name}` to rejoin)"
        ));
        return Ok(0);
    }
    Ok(u8::try_from(info.exit_code.unwrap_or(0).clamp(0, 255)).unwrap_or(255))
}

/// `stockade exec --in NAME -- CMD`.
pub async fn exec_in(ctx: &Context, name: &str, command: Vec<String>) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let engine = ctx.connect().await?;
    let container = sessions::running(&engine, &ctx.namespace, &project.root, name).await?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let spec = ExecSpec {
        command: std::iter::once(ENTRYPOINT.to_owned())
            .chain(command)
            .collect(),
        // The host user, also in a sandbox with sudo (which starts as root).
        user: format!("{}:{}", ctx.identity.uid, ctx.identity.gid),
        // The project is mounted at its own path: where we are, when that is in it.
        workdir: Some(project.cwd.to_string_lossy().into_owned()),
        tty,
    };
    let (exec_id, Attached { output, input }) = engine.exec(&container.id, &spec).await?;
    let raw = if tty { Some(RawMode::enable()?) } else { None };
    let resize = |cols, rows| {
        let engine = engine.clone();
        let exec_id = exec_id.clone();
        async move { engine.resize_exec(&exec_id, cols, rows).await }
    };
    if tty && let Ok((cols, rows)) = crossterm::terminal::size() {
        let _ = resize(cols, rows).await;
    }
    follow(output, input, tty, &resize).await?;
    drop(raw);
    // The stream ends as the command does; the engine may take a moment to record its code.
    for _ in 0..50 {
        if let Some(code) = engine.exec_exit_code(&exec_id).await? {
            return Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(255));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(CliError::other(
        format!("the engine did not report the exit code of the command in {name}"),
        None,
    ))
}

/// Resize to one row more, then to the terminal's size: a program that draws the whole screen
/// gets a window change (a resize to the size it has is none) and repaints.
async fn repaint<F, Fut>(resize: &F)
where
    F: Fn(u16, u16) -> Fut,
    Fut: std::future::Future<Output = Result<(), stockade_engine::EngineError>>,
{
    if let Ok((cols, rows)) = crossterm::terminal::size() {
        let _ = resize(cols, rows.saturating_add(1)).await;
        if let Err(e) = resize(cols, rows).await {
            tracing::debug!("resize: {e}");
        }
    }
}

/// Copy our stdin in and the output out until the output ends (the command or sandbox ended,
/// or the detach keys were typed); on a terminal, window changes are passed on.
async fn follow<F, Fut>(
    output: std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<OutputChunk, stockade_engine::EngineError>>
                + Send,
        >,
    >,
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    terminal: bool,
    resize: &F,
) -> Result<(), CliError>
where
    F: Fn(u16, u16) -> Fut,
    Fut: std::future::Future<Output = Result<(), stockade_engine::EngineError>>,
{
    let mut window = signal(SignalKind::window_change())
        .map_err(|e| CliError::caused("cannot handle signals", e, None))?;
    let output_task = tokio::spawn(pump_output(output, Output::PassThrough));
    let input_task = tokio::spawn(pump_input(input));
    tokio::pin!(output_task);
    loop {
        tokio::select! {
            _ = &mut output_task => break,
            _ = window.recv() => {
                if terminal && let Ok((cols, rows)) = crossterm::terminal::size() {
                    let _ = resize(cols, rows).await;
                }
            }
        }
    }
    input_task.abort();
    Ok(())
}
