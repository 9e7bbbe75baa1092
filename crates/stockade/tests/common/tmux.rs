//! A real terminal for tests: a detached tmux session, typed into and read back.

use std::process::Command;
use std::time::Duration;

use super::{Env, bin, poll};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached session `t` of `cols`×`rows` running `script` (on a socket of its own).
    pub fn start(name: &str, cols: u16, rows: u16, script: &str) -> Self {
        let tmux = Self {
            socket: format!("stockade-{name}-{}", std::process::id()),
        };
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let started = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &cols,
            "-y",
            &rows,
            script,
        ]);
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        tmux
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .env("TERM", "xterm-256color")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux is installed (scripts/test installs it)")
    }

    /// The screen and its scrollback, wrapped lines joined.
    pub fn screen(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-J", "-S", "-200", "-t", "t"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen's rows as the terminal shows them (a wrapped line is two rows).
    pub fn rows(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-t", "t"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until `what` is on the screen `count` times; returns the screen.
    pub fn wait_for_count(&self, what: &str, count: usize, timeout: Duration) -> String {
        poll(timeout, || {
            let screen = self.screen();
            (screen.matches(what).count() >= count).then_some(screen)
        })
        .unwrap_or_else(|| {
            panic!(
                "{what:?} (x{count}) never appeared; screen:\n{}",
                self.screen()
            )
        })
    }

    pub fn wait_for(&self, what: &str, timeout: Duration) -> String {
        self.wait_for_count(what, 1, timeout)
    }

    pub fn type_line(&self, text: &str) {
        self.cmd(&["send-keys", "-t", "t", "-l", text]);
        self.cmd(&["send-keys", "-t", "t", "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A shell command line running `stockade ARGS` in `env`'s project with its isolated
/// environment plus `extra` variables.
pub fn stockade_line(env: &Env, extra: &[(&str, &str)], args: &str) -> String {
    let home = |rel: &str| env.home.join(rel).display().to_string();
    let mut vars = vec![
        ("HOME", env.home.display().to_string()),
        ("XDG_CONFIG_HOME", home(".config")),
        ("XDG_CACHE_HOME", home(".cache")),
        ("XDG_STATE_HOME", home(".local/state")),
        ("STOCKADE_NAMESPACE", env.namespace.clone()),
    ];
    if super::engine_is_podman() {
        // As `Env::command`: the Podman pass chooses egress open (docs/podman.md).
        vars.push(("STOCKADE_NETWORK_EGRESS", "open".to_owned()));
    }
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let exports: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    format!(
        "cd {} && env {} {} {args}",
        shell_quote(&env.project.display().to_string()),
        exports.join(" "),
        shell_quote(bin())
    )
}
