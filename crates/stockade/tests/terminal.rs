//! `stockade shell` in a real terminal (tmux): a prompt, a typed command, live resize.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::time::Duration;

use common::tmux::{Tmux, stockade_line};
use common::{Env, poll};

#[test]
fn shell_has_a_prompt_runs_commands_and_follows_resizes() {
    let env = Env::new();
    let stockade = stockade_line(
        &env,
        &[("TERM", "xterm-256color"), ("PS1", "unused")],
        "shell",
    );
    let command = format!("{stockade}; echo STOCKADE-EXITED-$?; sleep 30");
    let tmux = Tmux::start("terminal", 100, 30, &command);

    // The login shell's prompt (root's ends in '#', a user's in '$').
    poll(Duration::from_secs(60), || {
        let screen = tmux.screen();
        screen
            .lines()
            .any(|l| l.trim_end().ends_with('#') || l.trim_end().ends_with('$'))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no prompt; screen:\n{}", tmux.screen()));

    tmux.type_line("echo typed-$((6 * 7))");
    tmux.wait_for("typed-42", Duration::from_secs(10));

    tmux.type_line("stty size");
    tmux.wait_for("30 100", Duration::from_secs(10));

    let resized = tmux.cmd(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    assert!(
        resized.status.success(),
        "{}",
        String::from_utf8_lossy(&resized.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    tmux.type_line("stty size");
    tmux.wait_for("40 120", Duration::from_secs(10));

    tmux.type_line("exit 3");
    tmux.wait_for("STOCKADE-EXITED-3", Duration::from_secs(20));
    assert!(
        env.containers().is_empty(),
        "containers left: {:?}",
        env.containers()
    );
}

/// The build spinner stays on one row of an 80-column terminal, however long the project's path
/// and the build step are: a wrapped spinner line leaves a trail of copies as it redraws.
#[test]
fn the_build_spinner_fits_an_80_column_terminal() {
    let env = Env::new();
    let step = format!("RUN sleep 6 && echo {}", "a-long-build-step-".repeat(6));
    env.write(
        ".stockade/Dockerfile",
        &format!("FROM {}\n{step}\n", env.base_tag()),
    );
    let stockade = stockade_line(&env, &[("TERM", "xterm-256color")], "build --trust");
    let tmux = Tmux::start("spinner", 80, 24, &format!("{stockade}; sleep 30"));
    tmux.wait_for("RUN sleep 6", Duration::from_secs(25));
    let rows = tmux.rows();
    let spinner: Vec<&str> = rows.lines().filter(|l| l.contains("RUN sleep")).collect();
    assert_eq!(spinner.len(), 1, "rows:\n{rows}");
    assert!(spinner[0].chars().count() <= 80, "rows:\n{rows}");
    // The line was not wrapped: nothing of it spills onto the next row.
    let joined = tmux.screen();
    assert_eq!(
        joined.lines().filter(|l| !l.trim().is_empty()).count(),
        rows.lines().filter(|l| !l.trim().is_empty()).count(),
        "rows:\n{rows}\njoined:\n{joined}"
    );
}
