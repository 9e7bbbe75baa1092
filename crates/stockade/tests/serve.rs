//! `stockade serve opencode` on the real engine with the real OpenCode from npm: healthy behind
//! a password, published on loopback only, restarted with its password when its process dies,
//! its state and password kept across `serve stop` and `serve`, the port closed when stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Env, HostUser, docker, docker_stdout, poll, snapshot_settings};

const SESSION_LABEL: &str = "io.stockade.session=opencode-web";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `curl` from the host: (status code, body). Status 0: nothing answered.
fn http(method: &str, port: u16, path: &str, login: Option<&str>) -> (u16, String) {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-m", "5", "-X", method, "-w", "\n%{http_code}"]);
    if let Some(login) = login {
        curl.args(["-u", login]);
    }
    let out = curl
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// The service's container (any state).
fn service_container(env: &Env) -> Option<String> {
    let filter = format!("label=io.stockade.project={}", env.project.display());
    let out = docker_stdout(&[
        "ps",
        "-aq",
        "--filter",
        &filter,
        "--filter",
        &format!("label={SESSION_LABEL}"),
    ]);
    out.lines().next().map(str::to_owned)
}

/// The container that publishes the service's port: behind the egress gateway (the default)
/// its forwarder, on the bridge (the Podman pass) the service itself.
fn publisher(container: &str) -> String {
    if common::engine_is_podman() {
        return container.to_owned();
    }
    let name = inspect(container, "{{.Name}}");
    format!("{}-ports", name.trim_start_matches('/'))
}

fn inspect(container: &str, format: &str) -> String {
    docker_stdout(&["inspect", "-f", format, container])
}

/// `serve url`'s three lines; returns the password.
fn login(env: &Env, port: u16) -> String {
    let run = env.run(&["serve", "url"]);
    run.expect_code(0);
    let stdout = run.stdout();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a password line")
        .to_owned();
    assert_eq!(password.len(), 32, "{stdout}");
    let mut settings = snapshot_settings(env);
    settings.add_filter(&format!(":{port}/"), ":[PORT]/");
    settings.add_filter(&common::regex_escape(&password), "[PASSWORD]");
    // Called on each start of the service.
    settings.bind(|| {
        insta::allow_duplicates! {
            insta::assert_snapshot!(stdout, @r"
            url:      http://127.0.0.1:[PORT]/
            user:     opencode
            password: [PASSWORD]
            ");
        }
    });
    password
}

/// The engine's health check passes. Podman 4.3 runs health checks from systemd timers, and
/// without systemd (CI) none runs: its status stays `starting` with no result (docs/podman.md).
#[track_caller]
fn assert_engine_health(container: &str) {
    if common::engine_is_podman() {
        assert_eq!(
            inspect(container, "{{.State.Health.Status}}"),
            "starting",
            "Podman ran a health check here: docs/podman.md says it does not"
        );
        return;
    }
    let healthy = poll(Duration::from_secs(60), || {
        (inspect(container, "{{.State.Health.Status}}") == "healthy").then_some(())
    });
    assert!(
        healthy.is_some(),
        "the engine's health check never passed: {}",
        inspect(container, "{{json .State.Health}}")
    );
}

#[test]
fn serve_opencode_is_healthy_behind_a_password_comes_back_when_killed_and_stops() {
    let env = Env::new().run_as(HostUser::ensure(1240, "stockade-t1240"));
    let port = free_port();
    let start = env.run(&["serve", "opencode", "--port", &port.to_string()]);
    start.expect_code(0);
    assert_eq!(start.stdout(), format!("http://127.0.0.1:{port}/\n"));
    let password = login(&env, port);
    let auth = format!("opencode:{password}");

    // Answered: 401 without the password, 200 and `{healthy, version}` with it.
    assert_eq!(http("GET", port, "/global/health", None).0, 401);
    assert_eq!(
        http("GET", port, "/global/health", Some("opencode:wrong")).0,
        401
    );
    let (code, body) = http("GET", port, "/global/health", Some(&auth));
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["healthy"], true, "{body}");
    assert!(health["version"].is_string(), "{body}");

    // Published on loopback only.
    let container = service_container(&env).expect("the service's container");
    assert_eq!(
        docker_stdout(&["port", &publisher(&container)]),
        format!("{port}/tcp -> 127.0.0.1:{port}")
    );
    assert_eq!(
        inspect(&container, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );

    // The engine's own health check passes (it reads the password inside).
    assert_engine_health(&container);

    // The password is nowhere in the container's configuration or state: not in Config.Env,
    // not in the health check's command, not in its results.
    let all = docker_stdout(&["inspect", &container]);
    assert!(
        !all.contains(&password),
        "the password is in docker inspect"
    );
    let test = inspect(&container, "{{json .Config.Healthcheck.Test}}");
    assert!(test.contains("OPENCODE_SERVER_PASSWORD"), "{test}");
    // Each health check runs as an exec whose command is `Healthcheck.Test`: the engine's events
    // name it, and it holds no password. (Podman runs none here: see assert_engine_health.)
    let exec_events = || {
        docker_stdout(&[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            &format!("container={container}"),
            "--filter",
            "event=exec_create",
            "--format",
            "{{.Action}}",
        ])
    };
    // The engine's event log may lag a check that already passed.
    let events = if common::engine_is_podman() {
        exec_events()
    } else {
        poll(Duration::from_secs(20), || {
            Some(exec_events()).filter(|e| e.contains("/global/health"))
        })
        .unwrap_or_else(|| panic!("no health check exec in the events:\n{}", exec_events()))
    };
    assert!(!events.contains(&password), "the password is in an exec");

    // The server process dies: the engine starts the container again, with its password.
    let started = inspect(&container, "{{.State.StartedAt}}");
    // Run as the sandbox user, `kill -1` reaches every process but the container's init, whose
    // child (the entrypoint's exec of opencode) is the server: tini then exits with it.
    let _ = docker(&["exec", &container, "kill", "-KILL", "-1"]);
    let restarted = poll(Duration::from_secs(60), || {
        (inspect(&container, "{{.State.StartedAt}}") != started).then_some(())
    });
    assert!(
        restarted.is_some(),
        "the engine did not restart the service"
    );
    let answered = poll(Duration::from_secs(90), || {
        let (code, body) = http("GET", port, "/global/health", Some(&auth));
        (code == 200).then_some(body)
    });
    assert!(
        answered.is_some(),
        "the restarted service never answered with its password"
    );
    assert_ne!(inspect(&container, "{{.RestartCount}}"), "0");
    assert_engine_health(&container);

    // `ps` lists the service among the project's sandboxes: its agent, port and health.
    let ps = env.run(&["ps", "--json"]);
    ps.expect_code(0);
    let rows: serde_json::Value = serde_json::from_str(&ps.stdout()).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["name"], "opencode-web");
    assert_eq!(rows[0]["agent"], "opencode");
    assert_eq!(rows[0]["status"], "running");
    assert_eq!(rows[0]["detached"], true);
    assert_eq!(
        rows[0]["ports"],
        serde_json::json!([format!("127.0.0.1:{port}->{port}/tcp")])
    );
    // Podman 4.3 runs no health check here (docs/podman.md): its status stays `starting`.
    let health = if common::engine_is_podman() {
        "starting"
    } else {
        "healthy"
    };
    assert_eq!(rows[0]["health"], health, "{rows}");

    // OpenCode's state: a session made now is there after `serve stop` and `serve`.
    let (code, body) = http("POST", port, "/session", Some(&auth));
    assert_eq!(code, 200, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).unwrap();
    let session_id = session["id"].as_str().expect("a session id").to_owned();

    // `serve status --json`: all of it.
    let status = env.run(&["serve", "status", "--json"]);
    status.expect_code(0);
    let mut settings = snapshot_settings(&env);
    settings.add_filter(&format!(":{port}/"), ":[PORT]/");
    settings.add_filter(r#""started_at": "[^"]+""#, r#""started_at": "[TIME]""#);
    settings.add_filter(r#""restarts": [1-9][0-9]*"#, r#""restarts": [N]"#);
    settings.bind(|| {
        insta::assert_snapshot!(status.stdout(), @r#"
        {
          "service": "opencode",
          "name": "opencode-web",
          "state": "running",
          "health": "healthy",
          "url": "http://127.0.0.1:[PORT]/",
          "restarts": [N],
          "started_at": "[TIME]"
        }
        "#);
    });

    let status = env.run(&["serve", "status"]);
    status.expect_code(0);
    assert_eq!(status.stderr(), "");
    settings.add_filter(r"restarts: [1-9][0-9]*", "restarts: [N]");
    settings.bind(|| {
        insta::assert_snapshot!(status.stdout(), @r"
        name:     opencode-web
        state:    running
        health:   healthy
        url:      http://127.0.0.1:[PORT]/
        restarts: [N]
        ");
    });

    // Its log: OpenCode's own output (it names its port).
    let logs = env.run(&["serve", "logs"]);
    logs.expect_code(0);
    let both = format!("{}{}", logs.stdout(), logs.stderr());
    assert!(
        both.contains(&format!(":{port}")),
        "OpenCode's output is not in the log:\n{both}"
    );

    // A second start is refused while it runs.
    let again = env.run(&["serve", "opencode"]);
    again.expect_code(1);
    assert!(
        again.stderr().contains("already runs"),
        "{}",
        again.stderr()
    );

    // `serve stop` closes the port and removes the container.
    let stop = env.run(&["serve", "stop"]);
    stop.expect_code(0);
    assert_eq!(stop.stdout(), "");
    insta::assert_snapshot!(stop.stderr(), @"✓ opencode-web stopped; its state stays in the project's home volume for the next `stockade serve opencode`");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is still open"
    );
    assert_eq!(service_container(&env), None);

    // Started again (a random port this time): the same password, OpenCode's state kept.
    let start = env.run(&["serve", "opencode"]);
    start.expect_code(0);
    let url = start.stdout();
    let port: u16 = url
        .trim()
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("not a loopback URL: {url}"));
    assert_eq!(login(&env, port), password);
    let (code, body) = http("GET", port, "/session", Some(&auth));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(&session_id),
        "the session made before `serve stop` is gone: {body}"
    );
    env.run(&["serve", "stop"]).expect_code(0);
}

#[test]
fn serve_names_what_it_serves_and_what_is_missing() {
    let env = Env::new();
    let other = env.run(&["serve", "claude"]);
    other.expect_code(1);
    snapshot_settings(&env).bind(|| {
        insta::assert_snapshot!(other.stderr(), @r"
        x claude cannot be served: stockade serves opencode
        help: run `stockade serve opencode`, or run the agent itself with `stockade <agent>`
        ");
    });
    let url = env.run(&["serve", "url"]);
    url.expect_code(1);
    snapshot_settings(&env).bind(|| {
        insta::assert_snapshot!(url.stderr(), @r"
        x no opencode service runs in [ROOT]/project
        help: start it with `stockade serve opencode`
        ");
    });
    let status = env.run(&["serve", "status", "--json"]);
    status.expect_code(0);
    insta::assert_snapshot!(status.stdout(), @r#"
    {
      "service": "opencode",
      "name": null,
      "state": "absent",
      "health": null,
      "url": null,
      "restarts": 0,
      "started_at": null
    }
    "#);
    assert_eq!(status.stderr(), "");
}

#[test]
fn serve_beyond_loopback_warns_and_a_service_not_healthy_in_time_shows_its_log() {
    let env = Env::new().run_as(HostUser::ensure(1241, "stockade-t1241"));
    // `--timeout 0`: the first answer is already too late, whatever OpenCode does.
    let run = env.run(&["serve", "opencode", "--host", "0.0.0.0", "--timeout", "0"]);
    run.expect_code(1);
    assert_eq!(run.stdout(), "");
    let container = service_container(&env).expect("the service's container");
    let port = inspect(
        &publisher(&container),
        "{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostPort}}{{end}}{{end}}",
    );
    assert_eq!(
        docker_stdout(&["port", &publisher(&container)]),
        format!("{port}/tcp -> 0.0.0.0:{port}")
    );
    // Everything but the install's progress (a first install in this namespace) and the log's
    // own lines, which depend on how far OpenCode got.
    let stderr: String = run
        .stderr()
        .lines()
        .filter(|l| {
            !l.starts_with("  | ") && !l.contains("opencode-ai") && !l.contains("Installing")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut settings = snapshot_settings(&env);
    settings.add_filter(&format!(":{port}"), ":[PORT]");
    settings.bind(|| {
        insta::assert_snapshot!(stderr, @r"
        warning: the service is published on 0.0.0.0, beyond this machine's loopback: anyone who can reach that address gets its login page, and its password is all that guards an API that runs code in the project
        Waiting for opencode to answer at http://127.0.0.1:[PORT]/
        the service's log (last 20 lines):
          x opencode did not answer healthy at http://127.0.0.1:[PORT]/global/health within 0 s
          help: its log is above (`stockade serve logs` shows all of it); it keeps running and restarting: `stockade serve stop` ends it, `--timeout` waits longer
        ");
    });
    env.run(&["serve", "stop"]).expect_code(0);
    assert_eq!(service_container(&env), None);
}
