//! The launch questions on a real terminal (tmux): project-config trust and the secret scan.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::time::Duration;

use common::Env;
use common::tmux::{Tmux, stockade_line};

const WAIT: Duration = Duration::from_secs(60);

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

    let stockade = stockade_line(&env, &[("NO_COLOR", "1")], "exec -- cat /outside/marker");
    let script =
        format!("{stockade}; echo FIRST-EXITED-$?; {stockade}; echo SECOND-EXITED-$?; sleep 60");
    let tmux = Tmux::start("prompts", 200, 50, &script);

    // First run: the configuration is new; approve it, then refuse the secrets.
    tmux.wait_for_count("Trust this project configuration? [y/N]", 1, WAIT);
    assert!(
        tmux.screen().contains("(outside the project)"),
        "{}",
        tmux.screen()
    );
    tmux.type_line("y");
    tmux.wait_for_count("Continue and expose them to the sandbox? [y/N]", 1, WAIT);
    assert!(tmux.screen().contains(".env"), "{}", tmux.screen());
    tmux.type_line("n");
    tmux.wait_for_count("FIRST-EXITED-1", 1, WAIT);

    // Second run: approved already (no question), the secret question again; say yes.
    tmux.wait_for_count("Continue and expose them to the sandbox? [y/N]", 2, WAIT);
    assert_eq!(
        tmux.screen()
            .matches("Trust this project configuration?")
            .count(),
        1
    );
    tmux.type_line("y");
    tmux.wait_for_count("SECOND-EXITED-0", 1, WAIT);
    assert!(tmux.screen().contains("from-outside"), "{}", tmux.screen());
    assert!(env.containers().is_empty());
}

/// One confirm for every question: `prune` takes the answers a launch takes (`YES` included),
/// and anything else is no.
#[test]
fn prune_asks_like_a_launch_does() {
    let env = Env::isolated("prompt");
    // The only thing this namespace has to prune.
    let volume = env.gone_project_home_volume();
    let stockade = stockade_line(&env, &[("NO_COLOR", "1")], "prune");
    let script =
        format!("{stockade}; echo FIRST-EXITED-$?; {stockade}; echo SECOND-EXITED-$?; sleep 60");
    let tmux = Tmux::start("prune-prompt", 200, 50, &script);
    tmux.wait_for_count("Remove 1 volume? [y/N]", 1, WAIT);
    tmux.type_line("nope");
    tmux.wait_for_count("FIRST-EXITED-1", 1, WAIT);
    assert!(
        tmux.screen().contains("Nothing removed."),
        "{}",
        tmux.screen()
    );
    tmux.wait_for_count("Remove 1 volume? [y/N]", 2, WAIT);
    tmux.type_line("YES");
    tmux.wait_for_count("SECOND-EXITED-0", 1, WAIT);
    let left = common::docker(&["volume", "inspect", &volume]);
    let _ = common::docker(&["volume", "rm", "-f", &volume]);
    assert!(!left.status.success(), "{}", tmux.screen());
}
