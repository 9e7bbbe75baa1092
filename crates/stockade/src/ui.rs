//! Everything the user sees on stderr: progress, confirmations, warnings, errors.
//! Spinners only on a terminal; plain lines otherwise, so CI logs stay readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ColorChoice;

#[derive(Debug, Clone)]
pub struct Ui {
    pub verbose: u8,
    pub quiet: bool,
    pub color: bool,
    stderr_is_terminal: bool,
}

impl Ui {
    pub fn new(verbose: u8, quiet: bool, color: ColorChoice) -> Self {
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stderr_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        Self {
            verbose,
            quiet,
            color,
            stderr_is_terminal,
        }
    }

    /// A one-line confirmation (`✓ Foundation image built (12.3 s)`).
    pub fn success(&self, message: &str) {
        if !self.quiet {
            let mark = self.paint("32", "✓");
            eprintln!("{mark} {message}");
        }
    }

    /// A progress line without a spinner.
    pub fn info(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    pub fn warn(&self, message: &str) {
        let label = self.paint("33", "warning");
        eprintln!("{label}: {message}");
    }

    /// Start a task: a spinner on a terminal, a plain line otherwise; nothing when quiet.
    pub fn task(&self, message: &str) -> Task {
        let started = Instant::now();
        if self.quiet {
            return Task {
                bar: None,
                message: message.to_owned(),
                started,
            };
        }
        if self.stderr_is_terminal && self.verbose == 0 {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(message.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            Task {
                bar: Some(bar),
                message: message.to_owned(),
                started,
            }
        } else {
            eprintln!("{message}");
            Task {
                bar: None,
                message: message.to_owned(),
                started,
            }
        }
    }

    /// A line of build output: shown with -v, else only its step (on the spinner).
    pub fn build_output(&self, task: &Task, line: &str, is_step: bool) {
        if self.verbose > 0 {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "  {line}");
        } else if is_step {
            match &task.bar {
                Some(bar) => bar.set_message(format!("{} — {}", task.message, shorten(line, 60))),
                // Without a terminal, each step on a line of its own: a long build is never
                // silent between "Building…" and its result.
                None if !self.quiet => eprintln!("  {}", shorten(line, 100)),
                None => {}
            }
        }
    }

    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// A running task's spinner and clock.
pub struct Task {
    bar: Option<ProgressBar>,
    /// What the task does; the spinner shows it with the current build step.
    message: String,
    started: Instant,
}

impl Task {
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `12.3 s`
pub fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
