//! Sessions: detached sandboxes, `ps`, `logs`, `exec --in`, `attach` in a real terminal,
//! `stop`; names unique per project.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::tmux::{Tmux, stockade_line};
use common::{Env, docker_stdout, poll, snapshot_settings};

/// A script that says it started, then ticks every second until stopped.
const TICKER: &str = "echo started; i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done";

/// `ps --json` with what changes from run to run replaced.
fn ps_json(env: &Env) -> serde_json::Value {
    let run = env.run(&["ps", "--json"]);
    assert!(run.ok(), "{}", run.stderr());
    let mut rows: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    for row in rows.as_array_mut().unwrap() {
        for key in ["started_at", "uptime_seconds"] {
            if !row[key].is_null() {
                row[key] = "[VARIES]".into();
            }
        }
    }
    rows
}

/// The engine's view of one container: `docker inspect` as text.
fn inspect(container: &str) -> String {
    docker_stdout(&["inspect", container])
}

/// An exec's inspect (`GET /exec/ID/json`), which the docker CLI does not show: asked of the
/// engine's socket with curl.
fn exec_inspect(exec_id: &str) -> String {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let socket = host.trim_start_matches("unix://");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--unix-socket", socket])
        .arg(format!("http://localhost/exec/{exec_id}/json"))
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_detached_sandbox_end_to_end() {
    let env = Env::new().env("SESSION_TOKEN", "tok-3f9c-never-in-inspect");
    env.write_global_config(&format!(
        "{}\n[sandbox]\nenv = [\"SESSION_TOKEN\"]\n",
        common::default_config(&common::base_image())
    ));

    // Started in the background: its name on stdout, how to reach it on stderr.
    let run = env.run(&["exec", "-d", "--name", "web", "--", "sh", "-c", TICKER]);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run.stdout(), "web\n");
    assert!(
        run.stderr().ends_with(
            "web runs in the background: `stockade attach web` joins it, `stockade stop web` ends it\n"
        ),
        "{}",
        run.stderr()
    );
    let container = format!(
        "{}-stockade-project-{}-web",
        env.namespace,
        &common::project_id(&env.project)[..6]
    );

    // It outlives the command that started it, and `ps` shows it.
    let mut settings = snapshot_settings(&env);
    settings.add_filter(&common::project_id(&env.project)[..6], "[ID]");
    settings.bind(|| {
        insta::assert_json_snapshot!(ps_json(&env), @r#"
        [
          {
            "agent": null,
            "agent_version": null,
            "branch": null,
            "container": "[NS]-stockade-project-[ID]-web",
            "detached": true,
            "exit_code": null,
            "health": null,
            "name": "web",
            "ports": [],
            "project": "[ROOT]/project",
            "started_at": "[VARIES]",
            "status": "running",
            "uptime_seconds": "[VARIES]",
            "worktree": null
          }
        ]
        "#);
    });
    assert!(inspect(&container).contains(r#""Status": "running""#));
    let table = env.run(&["ps"]);
    let all = env.run(&["ps", "--all"]);
    settings.add_filter(r"\b\d+s\b|\b\d+m \d+s\b", "[UPTIME]");
    settings.bind(|| {
        insta::assert_snapshot!(table.stdout(), @r"
        NAME  AGENT  BRANCH  STATUS   UPTIME  PORTS  HEALTH
        web   -      -       running  [UPTIME]      -      -
        ");
        // Every project's: this one's line among them, with its project (other tests' rows
        // widen the columns, so the cells are compared).
        let cells = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
        let header = all.stdout().lines().next().map(cells).unwrap_or_default();
        let line = all
            .stdout()
            .lines()
            .find(|l| l.contains(&env.project.display().to_string()))
            .map(cells)
            .unwrap_or_default();
        insta::assert_snapshot!(format!("{header}\n{line}"), @r"
        NAME AGENT BRANCH STATUS UPTIME PORTS HEALTH PROJECT
        web - - running [UPTIME] - - [ROOT]/project
        ");
    });

    // Its output so far.
    let logs = poll(Duration::from_secs(20), || {
        let run = env.run(&["logs", "web"]);
        assert!(run.ok(), "{}", run.stderr());
        run.stdout().contains("tick-1").then(|| run.stdout())
    })
    .expect("the ticks reach the log");
    assert!(
        logs.starts_with("started\r\ntick-0\r\ntick-1\r\n"),
        "{logs:?}"
    );
    let tail = env.run(&["logs", "web", "--tail", "1"]);
    assert_eq!(
        tail.stdout().matches("tick-").count(),
        1,
        "{:?}",
        tail.stdout()
    );

    // A command in it runs as the host user, with the sandbox's secrets, which neither the
    // container's inspect nor the exec's shows.
    let uid = nix_uid();
    let run = env.run(&[
        "exec",
        "--in",
        "web",
        "--",
        "sh",
        "-c",
        "id -u; echo $SESSION_TOKEN",
    ]);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run.stdout(), format!("{uid}\ntok-3f9c-never-in-inspect\n"));
    let mut slow = env
        .command(&["exec", "--in", "web", "--", "sleep", "5"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let exec_ids = poll(Duration::from_secs(10), || {
        let ids = docker_stdout(&[
            "inspect",
            "--format",
            "{{range .ExecIDs}}{{.}} {{end}}",
            &container,
        ]);
        (!ids.trim().is_empty()).then_some(ids)
    })
    .expect("the exec is listed");
    for id in exec_ids.split_whitespace() {
        let shown = exec_inspect(id);
        assert!(shown.contains("entrypoint.sh"), "{shown}");
        assert!(!shown.contains("tok-3f9c"), "{shown}");
    }
    assert!(!inspect(&container).contains("tok-3f9c"));
    assert!(slow.wait().unwrap().success());
    // The exit code is the command's.
    let run = env.run(&["exec", "--in", "web", "--", "sh", "-c", "exit 7"]);
    assert_eq!(run.code(), Some(7), "{}", run.stderr());

    // The name is taken while it runs.
    let again = env.run(&["exec", "-d", "--name", "web", "--", "true"]);
    assert_eq!(again.code(), Some(1));
    settings.bind(|| {
        insta::assert_snapshot!(again.stderr(), @r"
            x a sandbox named web is already running in [ROOT]/project
            help: join it with `stockade attach web`, stop it with `stockade stop web`, or pick another --name
            ");
    });

    // Only what came after a time; and followed live until the sandbox ends.
    let later = env.run(&["logs", "web", "--since", "2099-01-01T00:00:00Z"]);
    assert!(later.ok(), "{}", later.stderr());
    assert_eq!(later.stdout(), "");
    let recent = env.run(&["logs", "web", "--since", "1h"]);
    assert!(
        recent.stdout().starts_with("started\r\n"),
        "{:?}",
        recent.stdout()
    );
    let mut follow = env
        .command(&["logs", "web", "-f", "--tail", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut followed = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut followed, &mut line).unwrap();
        lines.push(line);
    }
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("tick-") && l.ends_with("\r\n")),
        "{lines:?}"
    );

    // Stopped: removed, and `ps` says there is nothing; the followed log ends with it.
    let stop = env.run(&["stop", "web", "--time", "1"]);
    assert!(stop.ok(), "{}", stop.stderr());
    assert_eq!(stop.stdout(), "web\n");
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    assert!(follow.wait().unwrap().success());
    let ps = env.run(&["ps"]);
    settings.bind(|| {
        insta::assert_snapshot!(format!("{}{}", ps.stdout(), ps.stderr()), @"no sandboxes in [ROOT]/project");
    });
    let gone = env.run(&["logs", "web"]);
    assert_eq!(gone.code(), Some(1));
    settings.bind(|| {
        insta::assert_snapshot!(gone.stderr(), @r"
            x no sandbox named web in [ROOT]/project
            help: `stockade ps` lists this project's sandboxes (`--all`: every project's)
            ");
    });
}

#[test]
fn attach_replays_the_output_then_follows_and_the_detach_keys_leave_it_running() {
    let env = Env::new();
    let run = env.run(&["shell", "-d"]);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run.stdout(), "shell\n");
    // Something the shell printed before anyone attached.
    let run = env.run(&["exec", "--in", "shell", "--", "true"]);
    assert!(run.ok(), "{}", run.stderr());

    let attach = stockade_line(&env, &[("TERM", "xterm-256color")], "attach shell");
    let tmux = Tmux::start(
        "attach",
        100,
        30,
        &format!("{attach}; echo ATTACH-ENDED-$?; sleep 30"),
    );
    // The replayed prompt, then one that answers.
    let prompt = poll(Duration::from_secs(30), || {
        let screen = tmux.screen();
        screen
            .lines()
            .any(|l| l.trim_end().ends_with('$') || l.trim_end().ends_with('#'))
            .then_some(screen)
    });
    assert!(prompt.is_some(), "no prompt; screen:\n{}", tmux.screen());
    tmux.type_line("echo attached-$((6 * 7))");
    tmux.wait_for("attached-42", Duration::from_secs(10));
    tmux.type_line("stty size");
    tmux.wait_for("30 100", Duration::from_secs(10));

    // ctrl-p ctrl-q: stockade ends, the sandbox runs on.
    tmux.cmd(&["send-keys", "-t", "t", "C-p", "C-q"]);
    let screen = tmux.wait_for("ATTACH-ENDED-0", Duration::from_secs(10));
    assert!(
        screen
            .contains("detached from shell; it keeps running (`stockade attach shell` to rejoin)"),
        "{screen}"
    );
    let ps = ps_json(&env);
    assert_eq!(ps[0]["name"], "shell");
    assert_eq!(ps[0]["status"], "running");

    // Rejoined: what was typed before is replayed.
    let tmux = Tmux::start(
        "reattach",
        100,
        30,
        &format!("{attach}; echo ATTACH-ENDED-$?; sleep 30"),
    );
    tmux.wait_for("attached-42", Duration::from_secs(20));
    tmux.type_line("exit 4");
    // The shell ended: so does attach, with its code.
    tmux.wait_for("ATTACH-ENDED-4", Duration::from_secs(20));
    let stop = env.run(&["stop", "--all"]);
    assert!(stop.ok(), "{}", stop.stderr());
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[test]
fn foreground_sandboxes_of_one_project_never_collide_and_stop_all_ends_every_one() {
    let env = Env::new();
    // Two at once, unnamed: each gets a name of its own.
    let first = env.spawn_until(&["exec", "--", "sh", "-c", "echo up; sleep 300"], "up");
    let second = env.spawn_until(&["exec", "--", "sh", "-c", "echo up; sleep 300"], "up");
    let ps = ps_json(&env);
    let names: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{ps}");
    assert!(names.iter().all(|n| n.starts_with("exec-")), "{names:?}");
    assert_ne!(names[0], names[1]);
    assert!(
        ps.as_array()
            .unwrap()
            .iter()
            .all(|r| r["detached"] == false)
    );

    let stop = env.run(&["stop", "--all", "--time", "5"]);
    assert!(stop.ok(), "{}", stop.stderr());
    assert_eq!(stop.stdout().lines().count(), 2, "{}", stop.stdout());
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        // Stopped by SIGTERM: 128 + 15.
        assert_eq!(
            out.status.code(),
            Some(143),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[test]
fn session_commands_refuse_bad_input_with_how_to_fix_it() {
    let env = Env::new();
    let mut settings = snapshot_settings(&env);
    settings.add_filter(r"\x1b\[[0-9;]*m", "");
    let bad_name = env.run(&["exec", "--name", "no/slash", "--", "true"]);
    let flags_in = env.run(&["exec", "--in", "web", "--memory", "1g", "--", "true"]);
    let not_running = env.run(&["attach", "nothing"]);
    let since = env.run(&["logs", "x", "--since", "yesterday"]);
    let keys = {
        env.write_global_config(&format!(
            "{}\n[sandbox]\ndetach_keys = \"ctrl-1\"\n",
            common::default_config(&common::base_image())
        ));
        env.run(&["attach", "x"])
    };
    settings.bind(|| {
        insta::assert_snapshot!(bad_name.stderr(), @r#"
            x invalid session name "no/slash": use 1-40 characters of letters, digits, '_', '.' and '-', starting with a letter or digit
            help: pick another --name, e.g. --name fix-tests
            "#);
        insta::assert_snapshot!(flags_in.stderr(), @r"
        error: --memory cannot be used with `exec --in`: the sandbox is running with the settings it started with

        Usage: stockade [OPTIONS] <COMMAND>

        For more information, try '--help'.
        ");
        insta::assert_snapshot!(not_running.stderr(), @r"
            x no sandbox named nothing in [ROOT]/project
            help: `stockade ps` lists this project's sandboxes (`--all`: every project's)
            ");
        insta::assert_snapshot!(since.stderr(), @r#"
            x --since "yesterday" is neither a duration nor a time
            help: a duration back from now (`10m`, `2h`) or a time (`2026-11-26T10:00:00Z`)
            "#);
        insta::assert_snapshot!(keys.stderr(), @r#"
             x [ROOT]/home/.config/stockade/config.toml:6:15: `sandbox.detach_keys`: "ctrl-1" is not a sequence of keys
              ,-[[ROOT]/home/.config/stockade/config.toml:6:15]
            5 | [sandbox]
            6 | detach_keys = "ctrl-1"
              :               ^^^^|^^^
              :                   `-- not keys
              `----
             help: comma-separated keys, each a character or ctrl-<letter>, e.g. "ctrl-p,ctrl-q" or "ctrl-x,x"
            "#);
    });
    for run in [&bad_name, &not_running, &since, &keys] {
        assert_eq!(run.code(), Some(1));
    }
    assert_eq!(flags_in.code(), Some(2));
}

fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn an_agent_started_detached_shows_its_version_in_ps() {
    let env = Env::new();
    // Flags for an agent go before its name; the session is named after the agent.
    let run = env.run(&["-d", "opencode", "--version"]);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run.stdout(), "opencode\n");
    let version = env.run(&["run", "opencode", "--", "--version"]);
    assert!(version.ok(), "{}", version.stderr());
    let rows = poll(Duration::from_secs(30), || {
        let rows = ps_json(&env);
        (rows[0]["status"] == "exited").then_some(rows)
    })
    .expect("opencode --version ends");
    assert_eq!(rows[0]["name"], "opencode");
    assert_eq!(rows[0]["agent"], "opencode");
    assert_eq!(rows[0]["agent_version"], version.stdout().trim());
    assert_eq!(rows[0]["exit_code"], 0);
    // Its output stays readable until it is stopped.
    let logs = env.run(&["logs", "opencode"]);
    assert_eq!(logs.stdout().trim(), version.stdout().trim());
    let stop = env.run(&["stop", "opencode"]);
    assert!(stop.ok(), "{}", stop.stderr());
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}
