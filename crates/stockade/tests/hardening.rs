//! The hardened sandbox against the real engine: what `docker inspect` shows, the capabilities
//! of the user's process, sudo, configuration errors, project-config trust and the secret scan.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{Env, HostUser, base_image, default_config, docker, docker_stdout, poll};
use serde_json::Value;

/// Start `stockade exec ARGS… -- sleep 60` and return it with the running container's inspect.
fn inspect_running(env: &Env, args: &[&str]) -> (Child, Value) {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "sleep", "60"]);
    let child = env
        .command(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let filter = format!("label=io.stockade.project={}", env.project.display());
    let id = poll(Duration::from_secs(120), || {
        let out = docker_stdout(&[
            "ps",
            "-q",
            "--filter",
            &filter,
            "--filter",
            "label=io.stockade.kind=sandbox",
            "--filter",
            "status=running",
        ]);
        (!out.is_empty()).then_some(out)
    })
    .expect("the sandbox never ran");
    let json = docker_stdout(&["inspect", id.lines().next().unwrap()]);
    let mut parsed: Value = serde_json::from_str(&json).unwrap();
    (child, parsed[0].take())
}

/// The capabilities Podman gives a container by default (and lists as dropped when all are):
/// the engines' usual default set, which stockade names for `sudo = true`.
const PODMAN_DEFAULT_CAPS: &[&str] = stockade_core::sandbox::SUDO_CAPS;

/// Podman's own inspect of the container (`podman inspect`), which shows what its
/// Docker-compatible inspect leaves out.
fn podman_inspect(info: &Value) -> Value {
    let id = info["Id"].as_str().unwrap();
    let out = common::succeeded(std::process::Command::new("podman").args(["inspect", id]));
    let mut parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    parsed[0].take()
}

fn stop(env: &Env, mut child: Child) {
    for id in env.containers() {
        let _ = docker(&["rm", "-f", &id]);
    }
    let _ = child.wait();
}

fn write_project_config(env: &Env, text: &str) {
    let dir = env.project.join(".stockade");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
    if let Some(user) = &env.user {
        std::process::Command::new("chown")
            .args(["-R", &format!("{}:{}", user.uid, user.gid)])
            .arg(&dir)
            .status()
            .unwrap();
    }
}

#[test]
fn default_sandbox_is_hardened_as_docker_inspect_shows() {
    let env = Env::new();
    let (child, info) = inspect_running(&env, &[]);
    let host = &info["HostConfig"];
    let podman = common::engine_is_podman().then(|| podman_inspect(&info));
    stop(&env, child);
    match &podman {
        // Podman lists the capabilities it dropped one by one (all of its default set); its
        // own inspect shows what the process keeps: nothing.
        Some(libpod) => {
            assert_eq!(
                host["CapDrop"],
                serde_json::json!(PODMAN_DEFAULT_CAPS),
                "{host}"
            );
            assert_eq!(libpod["EffectiveCaps"], Value::Null, "{libpod}");
            assert_eq!(libpod["BoundingCaps"], Value::Null, "{libpod}");
        }
        None => assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]), "{host}"),
    }
    assert!(
        host["SecurityOpt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "no-new-privileges"),
        "{host}"
    );
    assert_eq!(host["PidsLimit"], 1024);
    // Class 10: what a sandbox prints is kept, but capped.
    match &podman {
        // Podman's json-file is its k8s-file log, capped at max-size (one file: no max-file);
        // only its own inspect shows the cap.
        Some(libpod) => {
            assert_eq!(host["LogConfig"]["Type"], "json-file", "{host}");
            assert_eq!(
                libpod["HostConfig"]["LogConfig"]["Size"], "10MB",
                "{libpod}"
            );
        }
        None => assert_eq!(
            host["LogConfig"],
            serde_json::json!({"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}})
        ),
    }
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["ReadonlyRootfs"], false);
    assert!(host["Tmpfs"]["/tmp"].as_str().unwrap().contains("nosuid"));
    let mounts = info["Mounts"].as_array().unwrap();
    // Bind-mounted: the project, read-write, and the identity files stockade made, read-only.
    let mut binds: Vec<(String, bool)> = mounts
        .iter()
        .filter(|m| m["Type"] == "bind")
        .map(|m| {
            (
                m["Destination"].as_str().unwrap().to_owned(),
                m["RW"] == true,
            )
        })
        .collect();
    binds.sort();
    assert_eq!(
        binds,
        [
            ("/etc/group".to_owned(), false),
            ("/etc/passwd".to_owned(), false),
            (env.project.display().to_string(), true),
        ],
        "{mounts:?}"
    );
    let cache = env.home.join(".cache/stockade/identity");
    assert!(
        mounts
            .iter()
            .filter(|m| m["Type"] == "bind" && m["RW"] == false)
            .all(|m| std::path::Path::new(m["Source"].as_str().unwrap()).starts_with(&cache)),
        "{mounts:?}"
    );
    // Besides it, only the per-project home volume (at HOME).
    let volumes: Vec<_> = mounts.iter().filter(|m| m["Type"] == "volume").collect();
    assert_eq!(volumes.len(), 1, "{mounts:?}");
    assert_eq!(volumes[0]["Destination"], env.home.to_str().unwrap());
    assert!(!info.to_string().contains("docker.sock"));
}

#[test]
fn limits_ports_and_network_reach_the_engine() {
    let env = Env::new();
    write_project_config(&env, "[sandbox]\nmemory = \"512m\"\npids_limit = 200\n");
    let (child, info) = inspect_running(&env, &["--cpus", "1.5", "-p", "18457:80"]);
    let host = &info["HostConfig"];
    // Behind the egress gateway (the default) its forwarder publishes the port (docs/egress.md);
    // on the bridge (the Podman pass) the sandbox does.
    let published = if common::engine_is_podman() {
        host["PortBindings"].clone()
    } else {
        let forwarder = format!(
            "{}-ports",
            info["Name"].as_str().unwrap().trim_start_matches('/')
        );
        let forwarded: Value =
            serde_json::from_str(&docker_stdout(&["inspect", &forwarder])).unwrap();
        assert!(
            host["PortBindings"]
                .as_object()
                .is_none_or(|m| m.is_empty()),
            "{}",
            host["PortBindings"]
        );
        forwarded[0]["HostConfig"]["PortBindings"].clone()
    };
    stop(&env, child);
    assert_eq!(host["Memory"], 512 * 1024 * 1024);
    assert_eq!(host["NanoCpus"], 1_500_000_000i64);
    assert_eq!(host["PidsLimit"], 200);
    assert_eq!(
        published["80/tcp"][0],
        serde_json::json!({"HostIp": "127.0.0.1", "HostPort": "18457"})
    );

    let run = env.run(&["exec", "--network", "none", "--", "ls", "/sys/class/net"]);
    run.expect_code(0);
    assert_eq!(run.stdout().trim(), "lo");
    // The same flag before the subcommand is honoured, not dropped.
    let run = env.run(&["--network", "none", "exec", "--", "ls", "/sys/class/net"]);
    run.expect_code(0);
    assert_eq!(run.stdout().trim(), "lo");
}

const CAPS: &str = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status";

fn assert_no_capabilities(env: &Env) {
    let run = env.run(&["exec", "--", "sh", "-c", CAPS]);
    run.expect_code(0);
    let stdout = run.stdout();
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    for line in stdout.lines() {
        let (name, value) = line.split_once(':').unwrap();
        assert_eq!(
            value.trim(),
            "0000000000000000",
            "{name} is not empty:\n{stdout}"
        );
    }
}

#[test]
fn command_has_no_capabilities_as_root_host_user() {
    let env = Env::new();
    assert_eq!(env.run(&["exec", "--", "id", "-u"]).stdout().trim(), "0");
    assert_no_capabilities(&env);
}

#[test]
fn command_has_no_capabilities_as_ordinary_host_user() {
    let env = Env::new().run_as(HostUser::ensure(1234, "stockade-t1234"));
    assert_no_capabilities(&env);
}

#[test]
fn sudo_works_only_when_enabled() {
    let env = Env::new().run_as(HostUser::ensure(1234, "stockade-t1234"));
    let without = env.run(&["exec", "--", "sudo", "-n", "id", "-u"]);
    assert_ne!(without.code(), Some(0), "{}", without.stdout());
    assert!(!without.stdout().contains('0'), "{}", without.stdout());

    env.write_global_config(&format!(
        "{}[sandbox]\nsudo = true\n",
        default_config(&base_image())
    ));
    let with = env.run(&["exec", "--", "sudo", "-n", "id", "-u"]);
    with.expect_code(0);
    assert_eq!(with.stdout().trim(), "0");
    // The user's own process still starts without capabilities.
    let caps = env.run(&["exec", "--", "sh", "-c", "grep CapEff /proc/self/status"]);
    assert!(
        caps.stdout().contains("0000000000000000"),
        "{}",
        caps.stdout()
    );
}

#[test]
fn each_class_of_config_error_points_at_its_place_and_starts_nothing() {
    let env = Env::new();
    let base = default_config(&base_image());
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("[sandbox]\nmemroy = \"1g\"\n", &[], &[], "config.toml:2:1"),
        (
            "[sandbox]\nsudo = \"yes please\"\n",
            &[],
            &[],
            "config.toml:2:8",
        ),
        (
            "[sandbox]\nports = [\"80\"]\n",
            &[],
            &[],
            "config.toml:2:10",
        ),
        (
            "[sandbox]\nmounts = [\"/nonexistent/stockade\"]\n",
            &[],
            &[],
            "config.toml:2:11",
        ),
        ("[sandbox\n", &[], &[], "config.toml:1:"),
        (
            "",
            &[],
            &[("STOCKADE_SANDBOX_CPUS", "many")],
            "$STOCKADE_SANDBOX_CPUS:1:1",
        ),
        ("", &["--network", "host"], &[], "--network:1:1"),
    ];
    for (project, flags, vars, place) in cases {
        env.write_global_config(&base);
        write_project_config(&env, project);
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "true"]);
        let mut cmd = env.command(&args);
        for (k, v) in *vars {
            cmd.env(k, v);
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{project:?} {flags:?}: {stderr}"
        );
        assert!(
            stderr.contains(place),
            "{project:?}: expected {place} in\n{stderr}"
        );
        assert!(
            env.containers().is_empty(),
            "{project:?}: a container was created"
        );
    }
    // Several problems at once: all reported.
    write_project_config(&env, "[sandbox]\nmemory = 1\nnetwork = \"host\"\n[imag]\n");
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(1);
    for place in [
        "config.toml:2:10",
        "config.toml:3:11",
        "config.toml:4:2",
        "3 errors",
    ] {
        assert!(run.stderr().contains(place), "{place}:\n{}", run.stderr());
    }
}

#[test]
fn project_config_mounting_home_is_refused_even_when_trusted() {
    let env = Env::new();
    write_project_config(&env, "[sandbox]\nmounts = [\"~\"]\n");
    let run = env.run(&["exec", "--trust", "--", "true"]);
    run.expect_code(1);
    assert!(run.stderr().contains("home directory"), "{}", run.stderr());
    assert!(
        run.stderr().contains(".stockade/config.toml:2:11"),
        "{}",
        run.stderr()
    );
    env.run(&["trust"]).expect_code(1);
    assert!(env.containers().is_empty());
}

#[test]
fn outside_mount_needs_trust_and_again_after_an_edit() {
    let env = Env::new();
    let outside = env.root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("marker"), "from outside\n").unwrap();
    let config = format!(
        "[sandbox]\nmounts = [\"{}:/outside:ro\"]\n",
        outside.display()
    );
    write_project_config(&env, &config);
    let read = ["exec", "--", "cat", "/outside/marker"];

    let stopped = env.run(&read);
    stopped.expect_code(1);
    assert!(
        stopped.stderr().contains("stockade trust"),
        "{}",
        stopped.stderr()
    );
    assert!(
        stopped.stderr().contains(&outside.display().to_string()),
        "{}",
        stopped.stderr()
    );
    assert!(env.containers().is_empty());

    env.run(&["trust"]).expect_code(0);
    let trusted = env.run(&read);
    trusted.expect_code(0);
    assert_eq!(trusted.stdout(), "from outside\n");

    write_project_config(&env, &format!("{config}# edited\n"));
    env.run(&read).expect_code(1);
    // --trust: this run only.
    env.run(&["exec", "--trust", "--", "true"]).expect_code(0);
    env.run(&read).expect_code(1);
    env.run(&["trust"]).expect_code(0);
    env.run(&read).expect_code(0);
    env.run(&["trust", "--revoke"]).expect_code(0);
    env.run(&read).expect_code(1);
}

#[test]
fn high_severity_secrets_stop_non_interactive_runs() {
    let env = Env::new();
    std::fs::write(env.project.join(".env"), "TOKEN=x\n").unwrap();
    std::fs::write(env.project.join(".gitignore"), ".env\n").unwrap();
    std::fs::create_dir_all(env.project.join(".git")).unwrap();
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(1);
    assert!(run.stderr().contains(".env"), "{}", run.stderr());
    assert!(run.stderr().contains("git-ignored"), "{}", run.stderr());
    assert!(run.stderr().contains("--allow-secrets"), "{}", run.stderr());
    assert!(env.containers().is_empty());

    env.run(&["exec", "--allow-secrets", "--", "true"])
        .expect_code(0);
    env.write_global_config(&format!(
        "{}[secrets]\nallowlist = [\".env\"]\n",
        default_config(&base_image())
    ));
    env.run(&["exec", "--", "true"]).expect_code(0);
}

#[test]
fn dry_run_prints_the_spec_without_values() {
    let env = Env::new().env("STOCKADE_T_SECRET", "hunter2");
    let run = env.run(&[
        "exec",
        "--dry-run",
        "-e",
        "STOCKADE_T_SECRET",
        "-e",
        "LITERAL=s3cret",
        "--memory",
        "1g",
        "--",
        "true",
    ]);
    run.expect_code(0);
    let spec: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(spec["security"]["cap_drop"], serde_json::json!(["ALL"]));
    assert_eq!(spec["security"]["no_new_privileges"], true);
    assert_eq!(spec["limits"]["pids"], 1024);
    assert_eq!(spec["limits"]["memory"], 1 << 30);
    // The network plan: behind the egress gateway on the project's network, joined through
    // its holder (where IPv6 is off), with the policy (on the Podman pass, whose tests choose
    // `egress = "open"`: the bridge).
    if common::engine_is_podman() {
        assert_eq!(spec["network"], "bridge");
    } else {
        let network = format!(
            "{}-stockade-egress-{}",
            env.namespace,
            common::project_id(&env.project)
        );
        assert_eq!(
            spec["network"],
            serde_json::json!({ "joined": format!("{network}-holder") })
        );
        assert_eq!(spec["labels"]["io.stockade.egress-network"], network);
        assert!(spec["sysctls"].as_object().is_none_or(|s| s.is_empty()));
        assert_eq!(
            spec["egress"]["presets"],
            serde_json::json!(["agent", "packages", "git-hosts"])
        );
        assert!(
            spec["egress"]["rules"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"host": "registry.npmjs.org", "ports": [443, 80]}))
        );
    }
    // `-e` values travel as secrets: their names are listed there, never their values.
    let secret_names = spec["secrets"].as_array().unwrap();
    assert!(secret_names.iter().any(|n| n == "STOCKADE_T_SECRET"));
    assert!(secret_names.iter().any(|n| n == "LITERAL"));
    assert!(!run.stdout().contains("hunter2") && !run.stdout().contains("s3cret"));
    assert!(env.containers().is_empty());
}

#[test]
fn home_or_root_as_project_is_refused() {
    let env = Env::new();
    let mut cmd = env.command(&["exec", "--", "true"]);
    cmd.current_dir(&env.home);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to use"));
}

#[test]
fn sensitive_mounts_are_warned_in_check_and_at_launch() {
    let env = Env::new();
    std::fs::create_dir_all(env.home.join(".ssh")).unwrap();
    env.write_global_config(&format!(
        "{}[sandbox]\nmounts = [\"~/.ssh:ro\"]\n",
        default_config(&base_image())
    ));
    let check = env.run(&["check", "--json"]);
    check.expect_code(0);
    let report: Value = serde_json::from_str(&check.stdout()).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].as_str().unwrap().contains(".ssh"),
        "{warnings:?}"
    );
    let run = env.run(&[
        "exec",
        "--",
        "ls",
        "-d",
        &env.home.join(".ssh").display().to_string(),
    ]);
    run.expect_code(0);
    assert!(
        run.stderr().contains("exposes credentials"),
        "{}",
        run.stderr()
    );
}

#[test]
fn engine_socket_only_on_opt_in_and_reachable_by_the_user() {
    let env = Env::new().run_as(HostUser::ensure(1234, "stockade-t1234"));
    let ping = "curl -s --unix-socket /var/run/docker.sock http://engine/_ping";
    let without = env.run(&[
        "exec",
        "--",
        "sh",
        "-c",
        "test -S /var/run/docker.sock || echo absent",
    ]);
    without.expect_code(0);
    assert_eq!(without.stdout().trim(), "absent");

    env.write_global_config(&format!(
        "{}[sandbox]\ndocker_socket = true\n",
        default_config(&base_image())
    ));
    let with = env.run(&["exec", "--", "sh", "-c", ping]);
    with.expect_code(0);
    assert_eq!(with.stdout().trim(), "OK");
    assert!(
        with.stderr().contains("docker_socket = true"),
        "{}",
        with.stderr()
    );
}

#[test]
fn read_only_root_keeps_the_usual_places_writable() {
    let env = Env::new();
    let script = "touch /tmp/a \"$HOME/b\" ./c && echo writable; touch /usr/local/d 2>/dev/null || echo read-only";
    let run = env.run(&["exec", "--read-only-root", "--", "sh", "-c", script]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "writable\nread-only\n");
}

#[test]
fn secrets_reach_a_read_only_root_sandbox_readable_by_the_user_only() {
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::new().env("STOCKADE_T_TOKEN", "hunter2").run_as(user);
    let script = "echo \"$STOCKADE_T_TOKEN $LITERAL\"; stat -c '%a %u' /.stockade-secrets.d/env; \
                  test -e /.stockade-secrets || echo none-in-root";
    let run = env.run(&[
        "exec",
        "--read-only-root",
        "-e",
        "STOCKADE_T_TOKEN",
        "-e",
        "LITERAL=s3cret",
        "--",
        "sh",
        "-c",
        script,
    ]);
    run.expect_code(0);
    // The values arrived, from a file kept for the container's life that only the user reads.
    assert_eq!(run.stdout(), "hunter2 s3cret\n400 1234\nnone-in-root\n");
    assert!(env.containers().is_empty());
}

#[test]
fn engine_options_from_the_global_file_reach_the_engine() {
    let env = Env::new();
    env.write_global_config(&format!(
        "{}[sandbox]\nengine_options = [\"--shm-size=96m\", \"--add-host=db.test:10.9.8.7\", \"--cap-add=SYS_PTRACE\"]\n",
        default_config(&base_image())
    ));
    let (child, info) = inspect_running(&env, &[]);
    let host = &info["HostConfig"];
    stop(&env, child);
    assert_eq!(host["ShmSize"], 96 * 1024 * 1024);
    assert_eq!(host["ExtraHosts"], serde_json::json!(["db.test:10.9.8.7"]));
    // Capabilities are reachable only through sudo: without it the option is reported, not applied.
    assert!(
        host["CapAdd"].as_array().is_none_or(|caps| caps.is_empty()),
        "{host}"
    );
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(0);
    assert!(
        run.stderr()
            .contains("--cap-add=SYS_PTRACE has no effect without sudo = true"),
        "{}",
        run.stderr()
    );
    assert_no_capabilities(&env);
}

#[test]
fn an_out_of_memory_kill_says_so_and_how_to_raise_the_limit() {
    let env = Env::new();
    let run = env.run(&[
        "exec",
        "--memory",
        "64m",
        "--",
        "python3",
        "-c",
        "x = bytearray(1024 * 1024 * 1024)",
    ]);
    run.expect_code(137);
    assert_eq!(
        run.stderr(),
        "warning: the sandbox was killed: it ran out of memory at its memory limit (64 MiB); \
         raise it with --memory or `[sandbox] memory` (e.g. \"16g\")\n"
    );
    // A kill that is not the memory limit says nothing of memory.
    let run = env.run(&["exec", "--", "sh", "-c", "kill -9 $$"]);
    run.expect_code(137);
    assert_eq!(run.stderr(), "");
}
