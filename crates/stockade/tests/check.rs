//! `stockade check` against the real engine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::{Env, Run};

/// Filters for everything that varies between runs and machines: paths, namespace, engine
/// version, user, ids and hashes.
fn snapshot_settings(env: &Env) -> insta::Settings {
    let mut settings = common::snapshot_settings(env);
    settings.add_filter(r"Engine: (Docker|Podman) .*", "Engine: [ENGINE]");
    settings.add_filter(
        r"Identity: \S+ \(uid \d+, gid \d+\)",
        "Identity: [USER] (uid [UID], gid [GID])",
    );
    settings.add_filter(r"stockade-project:[0-9a-f]{12}", "stockade-project:[HASH]");
    settings.add_filter(r"sha256:[0-9a-f]{64}", "[ID]");
    settings.add_filter(r"unix:///\S+\.sock", "[SOCKET]");
    // Other tests of the namespace start its egress gateway at any moment.
    settings.add_filter(
        r"gateway (ready|starts with the first sandbox|stopped, starts with the next sandbox)",
        "gateway [STATE]",
    );
    settings
}

/// The whole of a human `check`: exit code, stdout, stderr.
fn transcript(run: &Run) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        run.code().unwrap_or(-1),
        run.stdout(),
        run.stderr()
    )
}

fn snapshot(env: &Env, name: &str, run: &Run) {
    let text = transcript(run);
    snapshot_settings(env).bind(|| insta::assert_snapshot!(name, text));
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout()).unwrap()
}

#[test]
fn check_reports_engine_identity_config_and_foundation() {
    let env = Env::new();
    let run = env.run(&["check", "--json"]);
    run.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["ok"], true);
    let engine = &report["engine"];
    assert_eq!(engine["ok"], true);
    assert!(engine["api_version"].as_str().unwrap().starts_with("1."));
    assert_eq!(engine["os"], "linux");
    assert!(engine["arch"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(engine["rootless"].is_boolean());
    assert_eq!(
        report["identity"]["uid"].as_u64(),
        Some(u64::from(current_uid()))
    );
    assert_eq!(report["identity"]["home"], env.home.to_str().unwrap());
    let files = report["config"]["files"].as_array().unwrap();
    assert_eq!(files[0]["scope"], "global");
    assert_eq!(files[0]["found"], true);
    assert_eq!(files[1]["scope"], "project");
    assert_eq!(files[1]["found"], false);
    assert_eq!(report["project"]["root"], env.project.to_str().unwrap());
    assert_eq!(report["images"]["foundation"]["status"], "up-to-date");
    assert_eq!(report["summary"]["fail"], 0);
    assert_eq!(report["trust"]["state"], "no-configuration");

    let human = env.run(&["check"]);
    human.expect_code(0);
    for line in [
        "Engine: Docker",
        "Identity:",
        "Config (global):",
        "Foundation image: up to date",
    ] {
        assert!(human.stdout().contains(line), "{line}:\n{}", human.stdout());
    }
}

#[test]
fn check_with_a_broken_config_fails_and_says_where() {
    let env = Env::new();
    env.write_global_config("[image]\nfrom = 3\n");
    let run = env.run(&["check", "--json"]);
    run.expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["config"]["ok"], false);
    assert!(
        report["config"]["error"]
            .as_str()
            .unwrap()
            .contains("config.toml:2:8")
    );
    assert_eq!(report["images"]["foundation"]["status"], "unknown");

    // Each file's line carries its errors; an error in no file (a variable) has its own line.
    let env = env.env("STOCKADE_SANDBOX_MEMORY", "3");
    let run = env.run(&["check"]);
    run.expect_code(1);
    snapshot(&env, "broken_config", &run);
}

fn current_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0)
}

/// Write a Docker context named `name` pointing at `host` into `home/.docker`, and select it.
fn select_docker_context(home: &std::path::Path, name: &str, host: &str) {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let meta = home.join(".docker/contexts/meta").join(digest);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
    )
    .unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        format!(r#"{{"currentContext":"{name}"}}"#),
    )
    .unwrap();
}

#[test]
fn the_current_docker_context_is_used() {
    if std::env::var_os("DOCKER_HOST").is_some() {
        panic!("this test checks context selection and needs DOCKER_HOST unset");
    }
    let env = Env::new();
    select_docker_context(&env.home, "stockade-ctx", "unix:///var/run/docker.sock");
    let run = env.run(&["check", "--json"]);
    run.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        report["engine"]["endpoint_source"],
        "docker context \"stockade-ctx\""
    );

    // A context pointing nowhere is used too (and fails as unreachable), not silently skipped.
    select_docker_context(
        &env.home,
        "stockade-dead",
        "unix:///nonexistent/engine.sock",
    );
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(125);
    assert!(
        run.stderr().contains("/nonexistent/engine.sock"),
        "{}",
        run.stderr()
    );
}

#[test]
fn engine_down_is_a_fail_and_the_images_are_unknown() {
    let env = Env::new();
    let dead = format!("unix://{}/dead.sock", env.root.display());
    let env = env.env("DOCKER_HOST", &dead);
    let run = env.run(&["check"]);
    run.expect_code(1);
    snapshot(&env, "engine_down", &run);

    let run = env.run(&["check", "--json"]);
    run.expect_code(1);
    let report = json(&run);
    assert_eq!(report["ok"], false);
    assert_eq!(report["engine"]["ok"], false);
    assert_eq!(report["images"]["foundation"]["status"], "unknown");
    assert_eq!(report["summary"]["fail"], 2);
}

#[test]
fn a_missing_image_says_missing_and_is_a_warning() {
    let env = Env::isolated("missing");
    let run = env.run(&["check"]);
    run.expect_code(0);
    snapshot(&env, "missing_images", &run);
    let report = json(&env.run(&["check", "--json"]));
    assert_eq!(report["images"]["foundation"]["status"], "missing");
    assert_eq!(report["images"]["base"]["status"], "missing");
    assert_eq!(report["images"]["project"]["status"], "none");
    assert_eq!(report["ok"], true);
}

#[test]
fn an_unapproved_project_configuration_is_a_warning_until_trusted() {
    let env = Env::new();
    env.write(
        ".stockade/config.toml",
        "[sandbox]\nports = [\"8080:80\"]\n",
    );
    let run = env.run(&["check"]);
    run.expect_code(0);
    snapshot(&env, "unapproved", &run);
    let report = json(&env.run(&["check", "--json"]));
    assert_eq!(report["trust"]["state"], "unapproved");
    assert_eq!(report["summary"]["warn"], 1);

    env.run(&["trust"]).expect_code(0);
    let run = env.run(&["check"]);
    run.expect_code(0);
    snapshot(&env, "approved", &run);
}

#[test]
fn an_agent_that_cannot_run_is_a_fail_and_counted() {
    let env = Env::new();
    env.write_global_config(&format!(
        "{}\n[agents.gemini]\nnode = \"18\"\n",
        common::default_config(&common::base_image())
    ));
    let run = env.run(&["check"]);
    run.expect_code(1);
    snapshot(&env, "agent_fail", &run);
    let report = json(&env.run(&["check", "--json"]));
    assert_eq!(report["ok"], false);
    assert_eq!(report["summary"]["fail"], 1);
    let gemini = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "gemini")
        .unwrap();
    assert_eq!(gemini["node"], 18);
    assert_eq!(gemini["min_node"], 20);
}
