//! `stockade run AGENT [--json] [-- ARGS…]`: an agent headless, for scripts and CI. Never a TTY;
//! stdin, stdout and stderr pass through byte for byte and the agent's exit code is ours. With
//! `--json` the output is captured (up to [`CAPTURE_LIMIT`] per stream) and stdout carries one
//! JSON document, [`RunResult`]: also when stockade fails before the agent starts.

use std::time::Instant;

use base64::Engine as _;
use serde::Serialize;

use crate::commands::exec::{self, ExecRequest};
use crate::context::Context;
use crate::exit::{CliError, JsonError};
use crate::session::{Captured, Output};

/// The most output kept per stream with `--json`; the rest is dropped and `truncated` set.
pub const CAPTURE_LIMIT: usize = 16 << 20;

/// The document `run --json` prints (docs/agents.md).
#[derive(Debug, Serialize)]
pub struct RunResult {
    pub agent: String,
    /// The agent's version; null when it did not start.
    pub version: Option<String>,
    /// The image it ran on; null when it did not start.
    pub image: Option<String>,
    /// The agent's exit code; null when it did not start.
    pub exit_code: Option<u8>,
    pub duration_ms: u64,
    /// What it printed, when that is UTF-8 (else null, and `stdout_base64` holds it).
    pub stdout: Option<String>,
    pub stdout_base64: Option<String>,
    pub stderr: Option<String>,
    pub stderr_base64: Option<String>,
    /// A stream went over the capture limit.
    pub truncated: bool,
    /// Why the agent did not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JsonError>,
}

pub async fn run(ctx: &Context, mut request: ExecRequest, json: bool) -> Result<u8, CliError> {
    request.headless = true;
    if !json {
        return exec::run(ctx, request).await;
    }
    request.output = Output::Capture {
        limit: CAPTURE_LIMIT,
    };
    let agent = request.agent.clone().unwrap_or_default();
    let started = Instant::now();
    let launched = exec::launch(ctx, request).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (result, code) = match launched {
        Ok(launched) => {
            let captured = launched.finished.captured.unwrap_or_default();
            (
                RunResult::new(
                    agent,
                    launched.agent_version,
                    Some(launched.image),
                    Some(launched.finished.code),
                    duration_ms,
                    captured,
                ),
                launched.finished.code,
            )
        }
        Err(e) => {
            let mut result =
                RunResult::new(agent, None, None, None, duration_ms, Captured::default());
            result.error = Some(e.to_json());
            (result, e.exit_code())
        }
    };
    crate::ui::print_json(&result)?;
    Ok(code)
}

impl RunResult {
    fn new(
        agent: String,
        version: Option<String>,
        image: Option<String>,
        exit_code: Option<u8>,
        duration_ms: u64,
        captured: Captured,
    ) -> Self {
        let (stdout, stdout_base64) = text_or_base64(captured.stdout);
        let (stderr, stderr_base64) = text_or_base64(captured.stderr);
        Self {
            agent,
            version,
            image,
            exit_code,
            duration_ms,
            stdout,
            stdout_base64,
            stderr,
            stderr_base64,
            truncated: captured.truncated,
            error: None,
        }
    }
}

/// UTF-8 output as text; anything else as base64 in its own field.
fn text_or_base64(bytes: Vec<u8>) -> (Option<String>, Option<String>) {
    match String::from_utf8(bytes) {
        Ok(text) => (Some(text), None),
        Err(e) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_text_when_utf8_and_base64_otherwise() {
        assert_eq!(
            text_or_base64("héllo\n".into()),
            (Some("héllo\n".to_owned()), None)
        );
        assert_eq!(
            text_or_base64(vec![0xff, 0x00, 0x41]),
            (None, Some("/wBB".to_owned()))
        );
    }

    #[test]
    fn the_document_has_every_field_even_before_a_start() {
        let result = RunResult::new("x".into(), None, None, None, 5, Captured::default());
        let value = serde_json::to_value(&result).unwrap_or_default();
        let mut keys: Vec<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "agent",
                "duration_ms",
                "exit_code",
                "image",
                "stderr",
                "stderr_base64",
                "stdout",
                "stdout_base64",
                "truncated",
                "version"
            ]
        );
    }
}
