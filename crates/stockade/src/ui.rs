//! Everything the user sees on stderr: progress, confirmations, warnings, errors.
//! Spinners only on a terminal; plain lines otherwise, so CI logs stay readable.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ColorChoice;
use crate::exit::CliError;

#[derive(Debug, Clone)]
pub struct Ui {
    pub verbose: u8,
    pub quiet: bool,
    pub color: bool,
    /// `--json`: stderr carries nothing but an error's JSON object, so progress and warnings
    /// are not printed (a command's warnings are in its JSON result).
    pub json: bool,
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
            json: false,
            stderr_is_terminal,
        }
    }

    /// A one-line confirmation (`✓ Foundation image built (12.3 s)`).
    pub fn success(&self, message: &str) {
        if !self.quiet && !self.json {
            let mark = self.paint("32", "✓");
            eprintln!("{mark} {message}");
        }
    }

    /// A progress line without a spinner.
    pub fn info(&self, message: &str) {
        if !self.quiet && !self.json {
            eprintln!("{message}");
        }
    }

    pub fn warn(&self, message: &str) {
        if self.json {
            return;
        }
        let label = self.paint("33", "warning");
        eprintln!("{label}: {message}");
    }

    /// A line shown only with `-v` (e.g. each pull attempt and failover).
    pub fn detail(&self, message: &str) {
        if self.verbose > 0 && !self.json {
            eprintln!("  {message}");
        }
    }

    /// Whether progress is drawn as bars (a terminal, not quiet, not `-v`).
    pub fn progress_bars(&self) -> bool {
        self.stderr_is_terminal && self.verbose == 0 && !self.quiet && !self.json
    }

    /// Whether progress lines are printed at all (not `-q`, not `--json`).
    pub fn shows_progress_lines(&self) -> bool {
        !self.quiet && !self.json
    }

    /// Start a task: a spinner on a terminal (its line cut to the terminal's width, never
    /// wrapped), a plain line otherwise; nothing when quiet.
    pub fn task(&self, message: &str) -> Task {
        let started = Instant::now();
        if self.quiet || self.json {
            return Task {
                bar: None,
                message: message.to_owned(),
                started,
            };
        }
        if self.stderr_is_terminal && self.verbose == 0 {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {wide_msg} {elapsed}")
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

/// Whether questions can be asked (stdin and stderr are terminals).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask a yes/no question on the terminal: `y` or `yes` (any case) is yes, anything else no.
/// `None` when there is no terminal to ask on (the caller refuses and says how to proceed).
pub fn confirm(question: &str) -> Option<bool> {
    if !interactive() {
        return None;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return Some(false);
    }
    Some(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// A command's result as pretty JSON on stdout (`--json`).
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::caused("cannot encode the result as JSON", e, None))?;
    println!("{text}");
    Ok(())
}

/// A table on stdout: columns padded to their widest cell; the last one is not padded.
pub fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
