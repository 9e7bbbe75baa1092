//! Running a sandbox in the foreground: create, attach, start, stream, wait, remove.
//!
//! stdin/stdout/stderr are passed through; with a terminal on both stdin and stdout the sandbox
//! gets a TTY (raw mode, resized live on SIGWINCH). SIGTERM and SIGHUP stop the sandbox (killed
//! after `[sandbox] stop_timeout`), SIGINT is forwarded (see [`wait_forwarding_signals`]). The container
//! is removed afterwards whatever happened.

use std::time::Duration;

use futures_util::StreamExt;
use stockade_core::handover::Handover;
use stockade_core::sandbox::SandboxSpec;
use stockade_engine::{Attached, Engine, EngineError, OutputChunk};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

use crate::exit::CliError;
use crate::ui::Ui;

/// How long to let output drain after the container exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the sandbox's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// To our stdout and stderr, byte for byte.
    PassThrough,
    /// Kept, up to this many bytes per stream (`run --json`).
    Capture { limit: usize },
}

/// A sandbox's output, kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// A stream went over the limit; the rest of it was dropped.
    pub truncated: bool,
}

/// How a sandbox ended.
#[derive(Debug)]
pub struct Finished {
    /// The command's exit code.
    pub code: u8,
    /// Its output, when captured.
    pub captured: Option<Captured>,
}

/// Run the sandbox to completion, its output passed through or captured. `after_exit` runs
/// once the sandbox has ended (or did not start), while it is removed: what the launch made
/// for it elsewhere is undone at the same time (the gateway's policy revoked), not after.
pub async fn run(
    engine: &Engine,
    spec: &SandboxSpec,
    output: Output,
    ui: &Ui,
    before_start: impl Future<Output = Result<(), CliError>>,
    after_exit: impl Future<Output = ()>,
) -> Result<Finished, CliError> {
    // Handle signals from before the container exists, so none can kill us between create and
    // remove; one that arrives early is forwarded once the container has started.
    let signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => {
            after_exit.await;
            return Err(e);
        }
    };
    let _forwarding = crate::image::Forwarding::start();
    let id = match engine.create_sandbox(spec).await {
        Ok(id) => id,
        Err(e) => {
            after_exit.await;
            return Err(e.into());
        }
    };
    let outcome = match hand_over(engine, &id, spec).await {
        Ok(()) => match before_start.await {
            Ok(()) => drive(engine, &id, spec, output, signals, ui).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (removed, ()) = tokio::join!(engine.remove(&id), after_exit);
    if let Err(e) = removed {
        ui.warn(&format!("could not remove sandbox {}: {e}", spec.name));
    }
    outcome
}

/// Start a sandbox in the background (`-d`, a service): create, hand over, start. Nothing is
/// attached; the container outlives this process until `stockade stop`. A failure before it
/// runs leaves nothing behind.
pub async fn start_detached(
    engine: &Engine,
    spec: &SandboxSpec,
    before_start: impl Future<Output = Result<(), CliError>>,
) -> Result<String, CliError> {
    // A signal in the short window between create and start is left alone (not the exit a
    // build's listener would take), so the created container is started or removed.
    let _forwarding = crate::image::Forwarding::start();
    let id = engine.create_sandbox(spec).await?;
    let started = async {
        hand_over(engine, &id, spec).await?;
        before_start.await?;
        engine.start(&id).await?;
        Ok::<(), CliError>(())
    }
    .await;
    if let Err(e) = started {
        if let Err(removing) = engine.remove(&id).await {
            tracing::debug!("removing the sandbox that did not start: {removing}");
        }
        return Err(e);
    }
    Ok(id)
}

/// Hand the created container what it needs before start (`handover`): the directories under
/// HOME that mounts need and the secrets file, both the user's. (The identity files are mounted,
/// see `user_files`.) The container then starts as the user: nothing in it prepares anything as
/// root.
pub async fn hand_over(engine: &Engine, id: &str, spec: &SandboxSpec) -> Result<(), CliError> {
    let uploads = Handover {
        user: &spec.user,
        home_dirs: &spec.home_dirs,
        secrets: &spec.secrets,
        read_only_root: spec.security.read_only_root,
    }
    .uploads()
    .map_err(|e| CliError::caused("cannot pack the files for the sandbox", e, None))?;
    for upload in uploads {
        engine.upload(id, &upload.dir, upload.tar).await?;
    }
    Ok(())
}

async fn drive(
    engine: &Engine,
    id: &str,
    spec: &SandboxSpec,
    sink: Output,
    signals: Signals,
    ui: &Ui,
) -> Result<Finished, CliError> {
    let (tty, limit) = (spec.tty, spec.limits.memory);
    let Attached { output, input } = engine.attach(id, None).await?;
    let raw = if tty { Some(RawMode::enable()?) } else { None };

    engine.start(id).await?;
    if tty {
        resize(engine, id).await;
    }

    let output_task = tokio::spawn(pump_output(output, sink));
    let input_task = tokio::spawn(pump_input(input));

    let stop_timeout = Duration::from_secs(spec.stop_timeout);
    let code = wait_forwarding_signals(engine, id, signals, tty, stop_timeout).await;
    // The attach stream ends when the container exits; let it flush what is left.
    let captured = match tokio::time::timeout(DRAIN_TIMEOUT, output_task).await {
        Ok(Ok(captured)) => captured,
        _ => None,
    };
    input_task.abort();
    drop(raw);
    let code = code?;
    // 137 is SIGKILL: say so when it was the memory limit, since nothing else would.
    if code == 137 && engine.oom_killed(id).await.unwrap_or(false) {
        ui.warn(&out_of_memory(limit));
    }
    Ok(Finished { code, captured })
}

/// The message for a sandbox the kernel killed at its memory limit.
fn out_of_memory(limit: Option<i64>) -> String {
    let limit = limit.map_or_else(
        || "its memory limit".to_owned(),
        |bytes| format!("its memory limit ({} MiB)", bytes >> 20),
    );
    format!(
        "the sandbox was killed: it ran out of memory at {limit}; raise it with --memory \
         or `[sandbox] memory` (e.g. \"16g\")"
    )
}

struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    window: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, CliError> {
        let make = |kind: SignalKind| {
            signal(kind).map_err(|e| CliError::caused("cannot handle signals", e, None))
        };
        Ok(Self {
            interrupt: make(SignalKind::interrupt())?,
            terminate: make(SignalKind::terminate())?,
            hangup: make(SignalKind::hangup())?,
            window: make(SignalKind::window_change())?,
        })
    }
}

/// Wait for the sandbox to exit, acting on our signals meanwhile:
/// - SIGTERM and SIGHUP (a closed terminal) stop it: SIGTERM to its init, SIGKILL after
///   `stop_timeout` (`[sandbox] stop_timeout`) or at the next such signal;
/// - SIGINT is forwarded; without a TTY the second one kills it (with a TTY, Ctrl-C is a
///   keystroke for the program and never reaches us, so a SIGINT came from `kill`: forwarded,
///   the third kills).
async fn wait_forwarding_signals(
    engine: &Engine,
    id: &str,
    mut signals: Signals,
    tty: bool,
    stop_timeout: Duration,
) -> Result<u8, EngineError> {
    let wait = engine.wait(id);
    tokio::pin!(wait);
    let mut interrupts = 0u32;
    let mut stopping: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        let signal = tokio::select! {
            code = &mut wait => return code,
            () = async {
                match stopping.as_mut() {
                    Some(deadline) => deadline.await,
                    None => std::future::pending().await,
                }
            } => {
                stopping = None;
                tracing::debug!("the sandbox did not stop within {stop_timeout:?}: killing it");
                "SIGKILL"
            }
            _ = signals.interrupt.recv() => {
                interrupts += 1;
                if interrupts >= if tty { 3 } else { 2 } { "SIGKILL" } else { "SIGINT" }
            }
            _ = signals.terminate.recv() => stop(&mut stopping, stop_timeout),
            _ = signals.hangup.recv() => stop(&mut stopping, stop_timeout),
            _ = signals.window.recv() => {
                if tty {
                    resize(engine, id).await;
                }
                continue;
            }
        };
        if let Err(e) = engine.kill(id, signal).await {
            // Already gone: the wait above returns.
            tracing::debug!("sending {signal}: {e}");
        }
    }
}

/// The signal for a request to stop: SIGTERM, and the clock starts; SIGKILL if it already ran.
fn stop(
    stopping: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
) -> &'static str {
    if stopping.is_some() {
        *stopping = None;
        "SIGKILL"
    } else {
        *stopping = Some(Box::pin(tokio::time::sleep(timeout)));
        "SIGTERM"
    }
}

async fn resize(engine: &Engine, id: &str) {
    if let Ok((cols, rows)) = crossterm::terminal::size()
        && let Err(e) = engine.resize(id, cols, rows).await
    {
        tracing::debug!("resize: {e}");
    }
}

pub(crate) async fn pump_output(
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<OutputChunk, EngineError>> + Send>,
    >,
    sink: Output,
) -> Option<Captured> {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut kept = Captured::default();
    while let Some(chunk) = output.next().await {
        let written = match (chunk, sink) {
            (Ok(chunk), Output::Capture { limit }) => {
                let (stream, bytes) = match chunk {
                    OutputChunk::Stdout(bytes) => (&mut kept.stdout, bytes),
                    OutputChunk::Stderr(bytes) => (&mut kept.stderr, bytes),
                };
                let room = limit.saturating_sub(stream.len());
                kept.truncated |= bytes.len() > room;
                stream.extend_from_slice(&bytes[..bytes.len().min(room)]);
                Ok(())
            }
            (Ok(OutputChunk::Stdout(bytes)), Output::PassThrough) => {
                write_all(&mut stdout, &bytes).await
            }
            (Ok(OutputChunk::Stderr(bytes)), Output::PassThrough) => {
                write_all(&mut stderr, &bytes).await
            }
            (Err(e), _) => {
                tracing::debug!("attach stream: {e}");
                break;
            }
        };
        if written.is_err() {
            // Our stdout is gone (e.g. `| head`): stop copying, let the sandbox finish.
            break;
        }
    }
    matches!(sink, Output::Capture { .. }).then_some(kept)
}

async fn write_all(out: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes).await?;
    out.flush().await
}

pub(crate) async fn pump_input(mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>) {
    let mut stdin = tokio::io::stdin();
    let mut buffer = vec![0u8; 8192];
    loop {
        match stdin.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if input.write_all(&buffer[..n]).await.is_err() || input.flush().await.is_err() {
                    return;
                }
            }
        }
    }
    // End of our stdin: close the sandbox's stdin (half-close of the attach connection).
    let _ = input.shutdown().await;
}

/// Raw terminal mode for the lifetime of the value.
pub(crate) struct RawMode;

impl RawMode {
    pub(crate) fn enable() -> Result<Self, CliError> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| CliError::caused("cannot put the terminal in raw mode", e, None))?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}
