//! An unreachable engine: documented exit code (125), a short message with a fix, fast.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::bare_command;

fn run_against(docker_host: &str, args: &[&str]) -> (Option<i32>, String, Duration) {
    let home = tempfile::tempdir().unwrap();
    // A project of its own: stockade refuses HOME itself as the project.
    let project = home.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let started = Instant::now();
    let out = bare_command(home.path(), args)
        .current_dir(&project)
        .env("DOCKER_HOST", docker_host)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
        started.elapsed(),
    )
}

fn assert_unreachable(docker_host: &str) {
    for args in [&["check"][..], &["exec", "--", "true"][..]] {
        let (code, output, elapsed) = run_against(docker_host, args);
        assert_eq!(code, Some(125), "{args:?}: {output}");
        assert!(
            output.contains("cannot reach the container engine"),
            "{args:?}: {output}"
        );
        assert!(
            output.contains("start the engine"),
            "{args:?} gives no fix: {output}"
        );
        assert!(
            elapsed < Duration::from_secs(2),
            "{args:?} took {elapsed:?}"
        );
        assert!(!output.contains("panicked"), "{output}");
    }
}

#[test]
fn missing_socket() {
    assert_unreachable("unix:///nonexistent/dir/engine.sock");
}

#[test]
fn socket_with_no_engine_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert_unreachable(&format!("unix://{}", path.display()));
}

#[test]
fn closed_tcp_port() {
    // Bind then drop a listener to get a loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_unreachable(&format!("tcp://127.0.0.1:{port}"));
}

#[test]
fn unsupported_address_is_explained() {
    let (code, output, _) = run_against("ftp://example", &["check"]);
    assert_eq!(code, Some(125), "{output}");
    assert!(output.contains("unix:///"), "{output}");
}
