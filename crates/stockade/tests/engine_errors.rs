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
    // `check` reports the engine as a FAIL line (exit 1); a command that needs it exits 125.
    for (args, expected) in [(&["check"][..], 1), (&["exec", "--", "true"][..], 125)] {
        let (code, output, elapsed) = run_against(docker_host, args);
        assert_eq!(code, Some(expected), "{args:?}: {output}");
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
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("unix:///"), "{output}");
}

/// `stockade exec -- true` with `vars` set: exit code and the whole of stderr.
fn exec_with(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let mut cmd = bare_command(home.path(), &["exec", "--", "true"]);
    cmd.current_dir(&project);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.stdout.is_empty());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_endpoint_error_has_its_cause_and_a_fitting_hint() {
    let (code, stderr) = exec_with(&[("DOCKER_HOST", "garbage://x")]);
    assert_eq!(code, Some(125));
    assert_eq!(
        stderr,
        "  x cannot find a container engine: unsupported engine address \"garbage://x\" in \
         DOCKER_HOST: use unix:///path/to/socket or tcp://host:port\n  help: fix DOCKER_HOST (e.g. \
         unix:///var/run/docker.sock), or unset it to use the default socket\n\n"
    );

    let (code, stderr) = exec_with(&[("DOCKER_CONTEXT", "no-such-context")]);
    assert_eq!(code, Some(125));
    assert_eq!(
        stderr,
        "  x cannot find a container engine: docker context \"no-such-context\" is selected \
         (DOCKER_CONTEXT) but does not exist\n  help: `docker context ls` lists the contexts; \
         select one that exists (`docker context use NAME`), or unset DOCKER_CONTEXT\n\n"
    );

    // Something that answers HTTP, but is no engine: a 404 with an HTML page.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(4).flatten() {
            let mut stream = stream;
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let body = "<html><body>Not Found</body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let (code, stderr) = exec_with(&[("DOCKER_HOST", &format!("tcp://127.0.0.1:{port}"))]);
    assert_eq!(code, Some(125));
    assert_eq!(
        stderr,
        format!(
            "  x tcp://127.0.0.1:{port} is not a container engine's API: GET /version answered 404\n  \
             help: point DOCKER_HOST at Docker's or Podman's API (a socket such as \
             unix:///var/run/docker.sock, or tcp://host:2375)\n\n"
        )
    );
}
