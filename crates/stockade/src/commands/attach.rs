//! Joining a running sandbox: `stockade attach NAME` (its terminal) and `stockade exec --in NAME
//! -- CMD` (one more command in it, as the same user with the same environment and secrets).

use std::io::IsTerminal;
use std::time::Duration;

use futures_util::StreamExt;
use stockade_engine::{Attached, ContainerSummary, Engine, ExecSpec, LogsRequest, OutputChunk};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};

use stockade_core::labels;
use stockade_core::project::Project;

use crate::context::Context;
use crate::exit::CliError;
use crate::session::{Output, RawMode, pump_input, pump_output};
use crate::sessions;

/// How many lines of recent output `attach` replays when the terminal's height is unknown.
const REPLAY_LINES: u64 = 100;
/// How long an ended attach waits for the sandbox to be reported stopped.
const EXIT_WAIT: Duration = Duration::from_secs(10);
/// Log records asked for per line replayed (see [`recent_output`]).
const RECORDS_PER_LINE: u64 = 20;

/// The sandbox's entrypoint: run by `exec --in` so the command gets what the sandbox's own
/// command got (PATH with the agent's tools, the logins, the secrets sourced last).
const ENTRYPOINT: &str = "/opt/stockade/entrypoint.sh";

/// `stockade attach NAME`: replay the recent output, attach, resize (so a full-screen program
/// repaints), then follow until the detach keys or the sandbox's end.
pub async fn attach(ctx: &Context, name: &str) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let detach_keys = ctx.config(&project)?.sandbox.detach_keys;
    let (engine, container) = running(ctx, &project, name).await?;
    let id = container.id.as_str();
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();

    // What it printed lately, so the screen shows where it is; then live from the attach.
    let rows = crossterm::terminal::size().map_or(REPLAY_LINES, |(_, rows)| u64::from(rows));
    let recent = recent_output(&engine, id, rows).await?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(&recent)
        .await
        .map_err(|e| CliError::caused("cannot write the sandbox's output", e, None))?;
    let _ = stdout.flush().await;

    let keys = DetachKeys::parse(&detach_keys)?;
    let Attached { output, input } = engine.attach(id, Some(&detach_keys)).await?;
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
    if terminal && let Ok((cols, rows)) = crossterm::terminal::size() {
        if let Err(e) = resize(cols, rows).await {
            tracing::debug!("resize: {e}");
        }
        // A resize to the size it has changes nothing, so a full-screen program is told
        // itself that its window changed, and repaints (SIGWINCH is ignored by the rest).
        if let Err(e) = engine.kill(id, "SIGWINCH").await {
            tracing::debug!("SIGWINCH: {e}");
        }
    }
    let detached = follow(output, input, Some(keys), terminal, &resize).await?;
    drop(raw);
    if !detached {
        // The sandbox's command ended (the engine may take a moment to say so): its code.
        match tokio::time::timeout(EXIT_WAIT, engine.wait(id)).await {
            Ok(code) => return Ok(code?),
            Err(_) => tracing::debug!("the attach ended, but {name} still runs"),
        }
    }
    ctx.ui.info(&format!(
        "detached from {name}; it keeps running (`stockade attach {name}` to rejoin)"
    ));
    Ok(0)
}

/// The last `lines` lines of a sandbox's output. The engine's `tail` counts log records, and a
/// terminal's output is logged as it comes (a partial line, down to one typed character, can be
/// a record of its own): so more records are asked for and the lines cut here. Podman 4.3's
/// `tail` misplaces the line ends of partial records, so there the whole log is read (it is
/// capped at 30 MB, docs/security.md).
async fn recent_output(engine: &Engine, id: &str, lines: u64) -> Result<Vec<u8>, CliError> {
    let mut records = engine.logs(
        id,
        &LogsRequest {
            follow: false,
            tail: (!engine.is_podman()).then(|| lines.saturating_mul(RECORDS_PER_LINE)),
            since: None,
        },
    );
    let mut bytes = Vec::new();
    while let Some(chunk) = records.next().await {
        match chunk? {
            OutputChunk::Stdout(b) | OutputChunk::Stderr(b) => bytes.extend_from_slice(&b),
        }
    }
    Ok(last_lines(&bytes, lines).to_vec())
}

/// The tail of `bytes` holding its last `lines` lines (the unfinished last line counting as one).
fn last_lines(bytes: &[u8], lines: u64) -> &[u8] {
    let mut seen = 0;
    let end = bytes.len().saturating_sub(1); // a final newline ends the last line
    for (i, byte) in bytes[..end].iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == lines {
                return &bytes[i + 1..];
            }
        }
    }
    bytes
}

/// The engine and the running sandbox `name` of this project (or its repository's worktrees).
async fn running(
    ctx: &Context,
    project: &Project,
    name: &str,
) -> Result<(Engine, ContainerSummary), CliError> {
    let roots = sessions::roots(ctx, project);
    let engine = ctx.connect().await?;
    let container = sessions::running(&engine, &ctx.namespace, &roots, name).await?;
    Ok((engine, container))
}

/// `stockade exec --in NAME -- CMD`.
pub async fn exec_in(ctx: &Context, name: &str, command: Vec<String>) -> Result<u8, CliError> {
    let (engine, container) = running(ctx, &ctx.project()?, name).await?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let spec = ExecSpec {
        command: std::iter::once(ENTRYPOINT.to_owned())
            .chain(command)
            .collect(),
        // The host user, also in a sandbox with sudo (which starts as root).
        user: format!("{}:{}", ctx.identity.uid, ctx.identity.gid),
        // The project is mounted at its own path: where we are, when that is in the sandbox's
        // project (a worktree's sandbox joined from the repository starts where it started).
        workdir: container
            .labels
            .get(labels::PROJECT)
            .filter(|root| ctx.cwd.starts_with(root))
            .map(|_| ctx.cwd.to_string_lossy().into_owned()),
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
    follow(output, input, None, tty, &resize).await?;
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

/// Copy our stdin in and the output out until the output ends (the command or sandbox ended)
/// or we see the detach keys in our input (`Ok(true)`: detached); on a terminal, window changes
/// are passed on. The keys are held back until they are complete, so the engine (which would
/// detach on them too) never sees them: where it ends, the sandbox did.
async fn follow<F, Fut>(
    output: std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<OutputChunk, stockade_engine::EngineError>>
                + Send,
        >,
    >,
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    keys: Option<DetachKeys>,
    terminal: bool,
    resize: &F,
) -> Result<bool, CliError>
where
    F: Fn(u16, u16) -> Fut,
    Fut: std::future::Future<Output = Result<(), stockade_engine::EngineError>>,
{
    let mut window = signal(SignalKind::window_change())
        .map_err(|e| CliError::caused("cannot handle signals", e, None))?;
    let output_task = tokio::spawn(pump_output(output, Output::PassThrough));
    let mut input_task = match keys {
        Some(keys) => tokio::spawn(pump_input_detaching(input, keys)),
        None => tokio::spawn(async move {
            pump_input(input).await;
            false
        }),
    };
    tokio::pin!(output_task);
    loop {
        tokio::select! {
            _ = &mut output_task => break,
            detached = &mut input_task => {
                if matches!(detached, Ok(true)) {
                    output_task.abort();
                    return Ok(true);
                }
                // Our stdin ended: the output goes on until the sandbox's does.
                let _ = (&mut output_task).await;
                return Ok(false);
            }
            _ = window.recv() => {
                if terminal && let Ok((cols, rows)) = crossterm::terminal::size() {
                    let _ = resize(cols, rows).await;
                }
            }
        }
    }
    input_task.abort();
    Ok(false)
}

/// The detach keys as the bytes a terminal sends for them (`ctrl-p` is 0x10).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DetachKeys(Vec<u8>);

impl DetachKeys {
    /// The engine's notation, as `[sandbox] detach_keys` was checked to hold.
    fn parse(text: &str) -> Result<Self, CliError> {
        let mut bytes = Vec::new();
        for key in text.split(',') {
            let byte = match key.strip_prefix("ctrl-") {
                Some(rest) if rest.len() == 1 => rest.as_bytes()[0] & 0x1f,
                None if key.len() == 1 => key.as_bytes()[0],
                _ => {
                    return Err(CliError::other(
                        format!("{key:?} in `[sandbox] detach_keys` is not a key"),
                        Some("e.g. \"ctrl-p,ctrl-q\""),
                    ));
                }
            };
            bytes.push(byte);
        }
        Ok(Self(bytes))
    }
}

/// Forward our stdin to the sandbox, watching for the detach keys: a partial match is held
/// back until it is complete (detached: `true`) or broken (forwarded). The engine watches for
/// them too (Docker does; Podman's compatible API lets them through), whichever sees them first.
async fn pump_input_detaching(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    keys: DetachKeys,
) -> bool {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buffer = vec![0u8; 8192];
    let mut matched = 0usize;
    loop {
        let n = match stdin.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n + matched);
        for &byte in &buffer[..n] {
            if byte == keys.0[matched] {
                matched += 1;
                if matched == keys.0.len() {
                    let _ = input.write_all(&out).await;
                    let _ = input.flush().await;
                    return true;
                }
            } else {
                out.extend_from_slice(&keys.0[..matched]);
                matched = usize::from(byte == keys.0[0]);
                if matched == 0 {
                    out.push(byte);
                }
            }
        }
        if input.write_all(&out).await.is_err() || input.flush().await.is_err() {
            return false;
        }
    }
    let _ = input.shutdown().await;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_of_the_output() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"", 3), b"");
    }

    #[test]
    fn detach_keys_are_the_bytes_a_terminal_sends() {
        assert_eq!(DetachKeys::parse("ctrl-p,ctrl-q").unwrap().0, [0x10, 0x11]);
        assert_eq!(DetachKeys::parse("ctrl-x,x").unwrap().0, [0x18, b'x']);
        assert_eq!(
            DetachKeys::parse("ctrl-@,ctrl-[,ctrl-_").unwrap().0,
            [0, 0x1b, 0x1f]
        );
        assert!(DetachKeys::parse("ctrl-").is_err());
    }
}
