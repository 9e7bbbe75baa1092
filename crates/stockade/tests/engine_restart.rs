//! A sandbox whose engine goes away mid-run is not left behind: the engine removes it (its
//! auto-remove backstop) when it comes back. A detached session is state that survives: `ps`
//! still lists it afterwards (stopped), until `stockade stop` removes it. A service comes back
//! running (its restart policy).
//!
//! This test restarts dockerd (scripts/restart-engine), stopping every container on the engine:
//! it runs on its own, holding the engine lock exclusively
//! (`flock -x /tmp/stockade-engine.lock cargo test -p stockade --test engine_restart`), never
//! in the shared pass, and never against Podman.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Env, docker, docker_stdout, poll};

#[test]
fn a_sandbox_is_removed_when_its_engine_restarts_mid_run() {
    let env = Env::new();
    let mut child = env.spawn_until(
        &["exec", "--", "sh", "-c", "echo started; exec sleep 300"],
        "started",
    );
    let containers = env.containers();
    assert_eq!(containers.len(), 1, "{containers:?}");
    let container = &containers[0];
    let detached = env.run(&["exec", "-d", "--name", "kept", "--", "sleep", "300"]);
    assert!(detached.ok(), "{}", detached.stderr());
    let service = env.run(&["serve", "opencode"]);
    assert!(service.ok(), "{}", service.stderr());
    let auto_remove = docker_stdout(&[
        "container",
        "inspect",
        "--format",
        "{{.HostConfig.AutoRemove}}",
        container,
    ]);
    assert_eq!(auto_remove.trim(), "true");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/restart-engine");
    let restarted = Command::new(script).status().unwrap();
    assert!(restarted.success(), "scripts/restart-engine failed");

    // stockade saw the engine go away and ended (with an error: the command's code is lost).
    let ended = poll(Duration::from_secs(60), || child.try_wait().unwrap());
    let status = ended.expect("stockade is still running after the engine restarted");
    assert!(!status.success());
    // The engine removed the sandbox; nothing waits for `stockade prune`.
    let gone = poll(Duration::from_secs(30), || {
        (!docker(&["container", "inspect", container])
            .status
            .success())
        .then_some(())
    });
    assert!(
        gone.is_some(),
        "sandbox {container} left behind: {}",
        docker_stdout(&["ps", "-a", "--filter", &format!("id={container}")])
    );
    // The detached session is still listed, stopped by the restart; the service runs again
    // and becomes healthy; `stop` removes both.
    let rows = poll(Duration::from_secs(120), || {
        let ps = env.run(&["ps", "--json"]);
        assert!(ps.ok(), "{}", ps.stderr());
        let rows: serde_json::Value = serde_json::from_str(&ps.stdout()).unwrap();
        (rows[1]["health"] == "healthy").then_some(rows)
    })
    .expect("the service came back healthy after the restart");
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    assert_eq!(rows[0]["name"], "kept");
    assert_eq!(rows[0]["status"], "exited");
    assert_eq!(rows[0]["detached"], true);
    assert_eq!(rows[1]["name"], "opencode-web");
    assert_eq!(rows[1]["status"], "running");
    let stop = env.run(&["stop", "--all"]);
    assert!(stop.ok(), "{}", stop.stderr());
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    // And the engine works as before.
    env.run(&["exec", "--", "true"]).expect_code(0);
}
