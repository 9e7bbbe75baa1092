//! `stockade shell` in a real terminal (tmux): a prompt, a typed command, live resize.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Env, bin, poll};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .env("TERM", "xterm-256color")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux is installed (scripts/test installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn wait_for(&self, what: &str, timeout: Duration) -> String {
        poll(timeout, || {
            let screen = self.screen();
            screen.contains(what).then_some(screen)
        })
        .unwrap_or_else(|| panic!("{what:?} never appeared; screen:\n{}", self.screen()))
    }

    fn type_line(&self, text: &str) {
        self.cmd(&["send-keys", "-t", "t", "-l", text]);
        self.cmd(&["send-keys", "-t", "t", "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn shell_has_a_prompt_runs_commands_and_follows_resizes() {
    let env = Env::new();
    let vars = [
        ("HOME", env.home.display().to_string()),
        (
            "XDG_CONFIG_HOME",
            env.home.join(".config").display().to_string(),
        ),
        (
            "XDG_CACHE_HOME",
            env.home.join(".cache").display().to_string(),
        ),
        (
            "XDG_STATE_HOME",
            env.home.join(".local/state").display().to_string(),
        ),
        ("STOCKADE_NAMESPACE", env.namespace.clone()),
        ("TERM", "xterm-256color".to_owned()),
        ("PS1", "unused".to_owned()),
    ];
    let exports: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    let command = format!(
        "cd {} && env {} {} shell; echo STOCKADE-EXITED-$?; sleep 30",
        shell_quote(&env.project.display().to_string()),
        exports.join(" "),
        shell_quote(bin())
    );
    let tmux = Tmux {
        socket: format!("stockade-test-{}", std::process::id()),
    };
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );

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
