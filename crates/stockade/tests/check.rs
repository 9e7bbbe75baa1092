//! `stockade check` against the real engine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::Env;

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
