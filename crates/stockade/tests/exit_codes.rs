//! Every exit code of docs/exit-codes.md, by the real binary against the real engine, and the
//! machine contract: with `--json` a result is JSON on stdout and an error is one JSON object on
//! stderr, `{"error", "code", "hint", "location"}`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::{Env, Run};

fn snapshot_settings(env: &Env) -> insta::Settings {
    let mut settings = common::snapshot_settings(env);
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings
}

/// The run's stderr is exactly one JSON error object with the four keys; returns it.
#[track_caller]
fn json_error(run: &Run) -> serde_json::Value {
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line on stderr:\n{stderr}");
    let value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in ["error", "code", "hint", "location"] {
        assert!(keys.contains(&key), "no {key:?} in {stderr}");
    }
    assert!(run.stdout().is_empty(), "stdout: {}", run.stdout());
    value
}

/// `name`'s exit code and its JSON error, as one snapshot.
fn snapshot_error(env: &Env, name: &str, run: &Run) {
    let value = json_error(run);
    let text = format!(
        "exit: {}\n{}",
        run.code().unwrap_or(-1),
        serde_json::to_string_pretty(&value).unwrap()
    );
    snapshot_settings(env).bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn zero_and_the_commands_own_code() {
    let env = Env::new();
    env.run(&["exec", "--", "true"]).expect_code(0);
    env.run(&["exec", "--", "sh", "-c", "exit 7"])
        .expect_code(7);
    // Killed by a signal: 128 + its number (SIGINT 130, SIGKILL 137), as a shell reports it.
    env.run(&["exec", "--", "sh", "-c", "kill -INT $$"])
        .expect_code(130);
    env.run(&["exec", "--", "sh", "-c", "kill -KILL $$"])
        .expect_code(137);
}

#[test]
fn not_executable_is_126_and_not_found_is_127() {
    let env = Env::new();
    env.run(&["exec", "--", "/etc"]).expect_code(126);
    env.run(&["exec", "--", "no-such-command-here"])
        .expect_code(127);
}

#[test]
fn one_is_a_failure_or_a_refusal() {
    let env = Env::new();
    env.write_global_config("[image]\nfrom = 3\n");
    for args in [
        &["config", "show", "--json"][..],
        &["check", "--json"],
        &["images", "--json"],
        &["agents", "--json"],
        &["scan", "--json"],
        &["exec", "--dry-run", "--json", "--", "true"],
    ] {
        let run = env.run(args);
        run.expect_code(1);
        if args[0] == "check" {
            // check reports: a FAIL line, not an error.
            let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
            assert_eq!(report["config"]["ok"], false);
            continue;
        }
        let value = json_error(&run);
        assert_eq!(value["code"], "config-invalid", "{args:?}");
    }
    let run = env.run(&["config", "show", "--json"]);
    snapshot_error(&env, "config_invalid", &run);
    // Without --json, the human form.
    let run = env.run(&["config", "show"]);
    run.expect_code(1);
    assert!(!run.stderr().starts_with('{'), "{}", run.stderr());

    // Several errors: the first is the object, all are in `errors`.
    env.write_global_config("[image]\nfrom = 3\n[sandbox]\nmemory = 5\n");
    let run = env.run(&["config", "show", "--json"]);
    run.expect_code(1);
    snapshot_error(&env, "config_invalid_several", &run);

    // A refusal: the unapproved project configuration, without a terminal.
    env.write_global_config(&common::default_config(&common::base_image()));
    env.write(
        ".stockade/config.toml",
        "[sandbox]\nports = [\"8080:80\"]\n",
    );
    let run = env.run(&["exec", "--dry-run", "--json", "--", "true"]);
    run.expect_code(1);
    snapshot_error(&env, "not_approved", &run);
}

#[test]
fn two_is_a_usage_error() {
    let env = Env::new();
    let run = env.run(&["exec", "--bogus", "--", "true"]);
    run.expect_code(2);
    assert!(env.containers().is_empty());
    let run = env.run(&["images", "--json", "--bogus"]);
    run.expect_code(2);
    snapshot_error(&env, "usage", &run);
    let run = env.run(&["exec", "--json", "--", "true"]);
    run.expect_code(2);
    snapshot_error(&env, "usage_json_needs_dry_run", &run);
    // Help is not an error.
    env.run(&["check", "--help", "--json"]).expect_code(0);
}

#[test]
fn one_two_five_is_the_engine() {
    let env = Env::new();
    let dead = format!("unix://{}/dead.sock", env.root.display());
    let env = env.env("DOCKER_HOST", &dead);
    for args in [
        &["images", "--json"][..],
        &["agents", "--json"],
        &["volumes", "--json"],
    ] {
        let run = env.run(args);
        run.expect_code(125);
        assert_eq!(json_error(&run)["code"], "engine-unreachable", "{args:?}");
    }
    let run = env.run(&["volumes", "--json"]);
    snapshot_error(&env, "engine_unreachable", &run);
    env.run(&["exec", "--", "true"]).expect_code(125);
}

#[test]
fn one_two_five_is_also_a_refused_request() {
    let env = Env::new();
    // A port another process holds: the engine refuses to start the container.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let run = env.run(&["exec", "-p", &format!("127.0.0.1:{port}:80"), "--", "true"]);
    run.expect_code(125);
    assert!(env.containers().is_empty(), "the container was left behind");
}

#[test]
fn json_results_are_json_on_stdout() {
    let env = Env::new();
    for args in [
        &["check", "--json"][..],
        &["agents", "--json"],
        &["images", "--json"],
        &["volumes", "--json"],
        &["config", "show", "--json"],
        &["scan", "--json"],
        &["exec", "--dry-run", "--json", "--", "true"],
    ] {
        let run = env.run(args);
        run.expect_code(0);
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&run.stdout());
        assert!(parsed.is_ok(), "{args:?}: {}", run.stdout());
        assert!(run.stderr().is_empty(), "{args:?}: {}", run.stderr());
    }
}

#[test]
fn one_is_prune_refusing_without_a_terminal() {
    let env = Env::isolated("noterm");
    // Something to prune, so prune would ask.
    let volume = env.gone_project_home_volume();
    let run = env.run(&["prune"]);
    let kept = common::docker(&["volume", "inspect", &volume])
        .status
        .success();
    let _ = common::docker(&["volume", "rm", "-f", &volume]);
    run.expect_code(1);
    assert!(kept, "prune removed the volume without asking");
    let stderr = run.stderr();
    assert!(
        stderr.contains("prune needs confirmation, and there is no terminal to ask on"),
        "{stderr}"
    );
}
