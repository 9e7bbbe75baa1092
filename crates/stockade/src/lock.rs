//! Exclusive locks between stockade processes: one file per thing being made (an image tag, a
//! tools volume) under `$XDG_STATE_HOME/stockade/locks/`, so concurrent runs make it once.
//! Released when dropped, or when the process dies.

use std::fs::{File, TryLockError};

use stockade_core::names::sanitize;

use crate::context::Context;
use crate::exit::CliError;

pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Lock `name`; when another process holds it, say `Waiting for another stockade process to
    /// {doing}…` and wait (on a blocking thread, never on an async worker).
    pub async fn acquire(ctx: &Context, name: &str, doing: &str) -> Result<Self, CliError> {
        let dir = ctx.dirs.state.join("locks");
        let path = dir.join(format!("{}.lock", sanitize(name, 100)));
        let io_error = |e: std::io::Error| {
            CliError::caused(
                format!("cannot create the lock {}", path.display()),
                e,
                Some("check the permissions of stockade's state directory"),
            )
        };
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                ctx.ui
                    .info(&format!("Waiting for another stockade process to {doing}…"));
                let waited = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                    .await
                    .map_err(|e| io_error(std::io::Error::other(e)))?;
                return Ok(Self {
                    _file: waited.map_err(io_error)?,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
        Ok(Self { _file: file })
    }
}
