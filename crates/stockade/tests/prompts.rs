//! The launch questions on a real terminal (tmux): project-config trust and the secret scan.

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
        let out = self.cmd(&["capture-pane", "-p", "-J", "-S", "-200", "-t", "t"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until `what` is on the screen `count` times.
    fn wait_for(&self, what: &str, count: usize) {
        poll(Duration::from_secs(60), || {
            (self.screen().matches(what).count() >= count).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{what:?} (x{count}) never appeared; screen:\n{}",
                self.screen()
            )
        });
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

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn trust_and_secrets_are_asked_on_a_terminal() {
    let env = Env::new();
    let outside = env.root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("marker"), "from-outside\n").unwrap();
    std::fs::create_dir_all(env.project.join(".stockade")).unwrap();
    std::fs::write(
        env.project.join(".stockade/config.toml"),
        format!(
            "[sandbox]\nmounts = [\"{}:/outside:ro\"]\n",
            outside.display()
        ),
    )
    .unwrap();
    std::fs::write(env.project.join(".env"), "TOKEN=x\n").unwrap();

    let vars = [
        ("HOME", env.home.display().to_string()),
        (
            "XDG_CONFIG_HOME",
            env.home.join(".config").display().to_string(),
        ),
        (
            "XDG_STATE_HOME",
            env.home.join(".local/state").display().to_string(),
        ),
        ("STOCKADE_NAMESPACE", env.namespace.clone()),
        ("NO_COLOR", "1".to_owned()),
    ];
    let exports: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    let stockade = format!(
        "env {} {} exec -- cat /outside/marker",
        exports.join(" "),
        quote(bin())
    );
    let script = format!(
        "cd {}; {stockade}; echo FIRST-EXITED-$?; {stockade}; echo SECOND-EXITED-$?; sleep 60",
        quote(&env.project.display().to_string())
    );
    let tmux = Tmux {
        socket: format!("stockade-prompts-{}", std::process::id()),
    };
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "200",
        "-y",
        "50",
        &script,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );

    // First run: the configuration is new; approve it, then refuse the secrets.
    tmux.wait_for("Trust this project configuration? [y/N]", 1);
    assert!(
        tmux.screen().contains("(outside the project)"),
        "{}",
        tmux.screen()
    );
    tmux.type_line("y");
    tmux.wait_for("Continue and expose them to the sandbox? [y/N]", 1);
    assert!(tmux.screen().contains(".env"), "{}", tmux.screen());
    tmux.type_line("n");
    tmux.wait_for("FIRST-EXITED-1", 1);

    // Second run: approved already (no question), the secret question again; say yes.
    tmux.wait_for("Continue and expose them to the sandbox? [y/N]", 2);
    assert_eq!(
        tmux.screen()
            .matches("Trust this project configuration?")
            .count(),
        1
    );
    tmux.type_line("y");
    tmux.wait_for("SECOND-EXITED-0", 1);
    assert!(tmux.screen().contains("from-outside"), "{}", tmux.screen());
    assert!(env.containers().is_empty());
}
