//! `stockade exec` against the real engine: user mapping, project mount, streams, exit codes,
//! signals and cleanup.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::Duration;

use common::{Env, HostUser, poll};

const IDENTITY_SCRIPT: &str = r#"id -u; id -g; id -un; pwd; echo "$HOME"; test -w "$HOME" && echo home-writable; touch created-inside"#;

fn assert_identity(env: &Env, uid: u32, gid: u32, name: &str) {
    let sub = env.project.join("sub dir");
    std::fs::create_dir_all(&sub).unwrap();
    if let Some(user) = &env.user {
        std::fs::set_permissions(&sub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::chown(&sub, Some(user.uid), Some(user.gid)).unwrap();
    }
    let mut cmd = env.command(&["exec", "--", "sh", "-c", IDENTITY_SCRIPT]);
    cmd.current_dir(&sub);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            uid.to_string().as_str(),
            gid.to_string().as_str(),
            name,
            sub.to_str().unwrap(),
            env.home.to_str().unwrap(),
            "home-writable",
        ]
    );
    let meta = std::fs::metadata(sub.join("created-inside")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (uid, gid),
        "owner of a file made in the sandbox"
    );
}

#[test]
fn non_root_host_user_is_reproduced() {
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::new().run_as(user.clone());
    assert_identity(&env, user.uid, user.gid, &user.name);
    assert!(env.containers().is_empty());
}

#[test]
fn root_host_user_is_reproduced() {
    if !nix_is_root() {
        panic!("this test runs as root (scripts/test does): it checks the root host user");
    }
    let env = Env::new();
    assert_identity(&env, 0, 0, "root");
}

#[test]
fn image_user_with_the_same_uid_is_taken_over() {
    // A base that already has a uid-1000 user (like node or ubuntu images), run by a host uid 1000.
    let shared = Env::new();
    let base = format!("stockade-test-uid1000-base:{}", std::process::id());
    let dockerfile = format!(
        "FROM {}\nRUN useradd --uid 1000 --create-home --shell /bin/sh imageuser \
         && echo marker > /home/imageuser/.marker\n",
        shared.foundation_tag()
    );
    let mut build = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &base, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    build
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    assert!(build.wait().unwrap().success(), "building {base}");

    let user = HostUser::ensure(1000, "stockade-t1000");
    let env = Env::isolated("uid1000");
    env.write_global_config(&common::default_config(&base));
    let env = env.run_as(user.clone());
    assert_identity(&env, 1000, user.gid, &user.name);
    drop(env);
    let _ = common::docker(&["rmi", "-f", &base]);
}

#[test]
fn exit_code_is_the_commands() {
    let env = Env::new();
    env.run(&["exec", "--", "sh", "-c", "exit 7"])
        .expect_code(7);
    env.run(&["exec", "--", "true"]).expect_code(0);
    let missing = env.run(&["exec", "--", "no-such-command-xyz"]);
    missing.expect_code(127);
    assert!(
        missing.stderr().contains("command not found"),
        "{}",
        missing.stderr()
    );
    assert!(
        env.containers().is_empty(),
        "containers left: {:?}",
        env.containers()
    );
}

#[test]
fn stdin_and_stdout_are_passed_through() {
    let env = Env::new();
    let run = env.run_with_stdin(&["exec", "--", "cat"], Some(b"hi\n"));
    run.expect_code(0);
    assert_eq!(run.stdout(), "hi\n");
    // stdout and stderr stay apart.
    let run = env.run(&["exec", "--", "sh", "-c", "echo out; echo err >&2"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "out\n");
    assert!(run.stderr().contains("err\n"), "{}", run.stderr());
    assert!(env.containers().is_empty());
}

/// `stockade exec -- sh -c SCRIPT` in the background, once SCRIPT has printed `ready`: a signal
/// sent before the sandbox's init is up would reach a PID 1 that ignores it (what is tested is a
/// signal while a command runs).
fn running(env: &Env, script: &str) -> std::process::Child {
    let script = format!("{script} & echo ready; wait");
    env.spawn_until(&["exec", "--", "sh", "-c", &script], "ready")
}

/// Send `signals` to stockade, then wait: its exit code and how long it took.
fn signalled(child: &mut std::process::Child, signals: &[&str]) -> (Option<i32>, Duration) {
    let started = std::time::Instant::now();
    for signal in signals {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let exited = poll(Duration::from_secs(30), || child.try_wait().unwrap());
    let status = exited.expect("stockade did not exit within 30 s of the signals");
    (status.code(), started.elapsed())
}

#[test]
fn sigint_is_forwarded_and_the_container_removed() {
    let env = Env::new();
    // The shell waits for sleep, which SIGINT ends: 130.
    let mut child = running(&env, "trap 'exit 130' INT; sleep 60");
    let (code, _) = signalled(&mut child, &["INT"]);
    assert_eq!(code, Some(130));
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[test]
fn a_second_sigint_without_a_terminal_kills_a_command_that_ignores_it() {
    let env = Env::new();
    let mut child = running(&env, "trap '' INT; sleep 300");
    let (code, took) = signalled(&mut child, &["INT", "INT"]);
    assert_eq!(code, Some(137), "killed");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[test]
fn sigterm_and_sighup_stop_the_sandbox_and_leave_nothing() {
    let env = Env::new();
    // A command that stops when asked (the init passes SIGTERM on): at once.
    for signal in ["TERM", "HUP"] {
        let mut child = running(&env, "exec sleep 300");
        let (code, took) = signalled(&mut child, &[signal]);
        assert_eq!(code, Some(143), "SIG{signal}: stopped by SIGTERM");
        assert!(took < Duration::from_secs(8), "SIG{signal}: {took:?}");
        assert!(env.containers().is_empty(), "{:?}", env.containers());
    }
    // One that ignores it is killed when the stop timeout (`[sandbox] stop_timeout`, here 3 s
    // from its variable) runs out.
    let env = env.env("STOCKADE_SANDBOX_STOP_TIMEOUT", "3");
    let mut child = running(&env, "trap '' TERM; sleep 300");
    let (code, took) = signalled(&mut child, &["TERM"]);
    assert_eq!(code, Some(137), "killed after the timeout");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(12),
        "{took:?}"
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    // A second SIGTERM does not wait for the timeout.
    let mut child = running(&env, "trap '' TERM; sleep 300");
    let (code, took) = signalled(&mut child, &["TERM", "TERM"]);
    assert_eq!(code, Some(137));
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn passthrough_env_only_when_set() {
    let env = Env::new().env("STOCKADE_T_SET", "value-1");
    env.write_global_config(&format!(
        "{}[sandbox]\nenv = [\"STOCKADE_T_SET\", \"STOCKADE_T_UNSET\"]\n",
        common::default_config(&common::base_image())
    ));
    let run = env.run(&[
        "exec",
        "--",
        "sh",
        "-c",
        "echo \"${STOCKADE_T_SET}\"; echo \"${STOCKADE_T_UNSET-unset}\"",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "value-1\nunset\n");

    // Not even the most verbose output shows the value.
    let verbose = env.run(&["-vv", "exec", "--", "true"]);
    verbose.expect_code(0);
    assert!(
        verbose.stderr().contains("POST /containers/create"),
        "{}",
        verbose.stderr()
    );
    assert!(
        !verbose.stderr().contains("value-1"),
        "{}",
        verbose.stderr()
    );
}

#[test]
fn verbose_lists_engine_calls() {
    let env = Env::new();
    let run = env.run(&["-v", "exec", "--", "true"]);
    run.expect_code(0);
    let stderr = run.stderr();
    for call in [
        "GET /version",
        "POST /containers/create",
        "/attach",
        "/start",
        "/wait",
        "DELETE /containers/",
    ] {
        assert!(stderr.contains(call), "-v output lacks {call}:\n{stderr}");
    }
}

#[test]
fn project_is_the_git_root() {
    let env = Env::new();
    std::fs::create_dir_all(env.project.join(".git")).unwrap();
    let deep = env.project.join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    let mut cmd = env.command(&[
        "exec",
        "--",
        "sh",
        "-c",
        "pwd; ls -a .. | grep -c '^b$'; ls -a ../.. | grep -c '^.git$'",
    ]);
    cmd.current_dir(&deep);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n1\n1\n", deep.display())
    );
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
