//! SIGINT, SIGTERM and SIGHUP while stockade builds an image.
//!
//! A build interrupted by a signal would leave the images its finished steps committed behind:
//! untagged, unlabelled (the labels are the last instruction), about as big as the build. So
//! while a build runs, the signal is caught, the build stopped (its request dropped: the engine
//! cancels it) and the intermediates it made removed before stockade exits as the signal would
//! have made it (128 + the signal's number).
//!
//! Once caught, a signal stays caught for the process (tokio's handlers are never taken back):
//! outside a build, the listener exits at once as the default action would, unless a sandbox
//! session forwards signals itself ([`Forwarding`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use crate::exit::CliError;

const IDLE: u8 = 0;
const BUILDING: u8 = 1;
const FORWARDING: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(IDLE);
static LAST_SIGNAL: AtomicI32 = AtomicI32::new(0);
static INTERRUPTED: Notify = Notify::const_new();
static LISTENER: OnceLock<Result<(), String>> = OnceLock::new();

/// Start the listener once.
fn listen() -> Result<(), CliError> {
    LISTENER
        .get_or_init(|| {
            let mut streams = Vec::new();
            for (kind, number) in [
                (SignalKind::interrupt(), Signal::SIGINT as i32),
                (SignalKind::terminate(), Signal::SIGTERM as i32),
                (SignalKind::hangup(), Signal::SIGHUP as i32),
            ] {
                streams.push((signal(kind).map_err(|e| e.to_string())?, number));
            }
            tokio::spawn(async move {
                loop {
                    let waits = streams.iter_mut().map(|(stream, number)| {
                        let number = *number;
                        Box::pin(async move {
                            stream.recv().await;
                            number
                        })
                    });
                    let (number, _, _) = futures_util::future::select_all(waits).await;
                    match MODE.load(Ordering::SeqCst) {
                        BUILDING => {
                            LAST_SIGNAL.store(number, Ordering::SeqCst);
                            INTERRUPTED.notify_one();
                        }
                        FORWARDING => {}
                        _ => std::process::exit(128 + number),
                    }
                }
            });
            Ok(())
        })
        .clone()
        .map_err(|e| CliError::caused("cannot handle signals", e, None))
}

/// A build in progress: a signal is reported to it instead of ending the process.
pub struct Building(());

impl Building {
    pub fn start() -> Result<Self, CliError> {
        listen()?;
        MODE.store(BUILDING, Ordering::SeqCst);
        Ok(Self(()))
    }

    /// Resolves when a signal arrives; returns the exit code it calls for (130 for SIGINT).
    pub async fn interrupted(&self) -> i32 {
        INTERRUPTED.notified().await;
        128 + LAST_SIGNAL.load(Ordering::SeqCst)
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        MODE.store(IDLE, Ordering::SeqCst);
    }
}

/// A sandbox session that forwards signals to its container: the listener leaves them alone.
pub struct Forwarding(());

impl Forwarding {
    pub fn start() -> Self {
        MODE.store(FORWARDING, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        MODE.store(IDLE, Ordering::SeqCst);
    }
}
