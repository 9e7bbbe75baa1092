//! Agents on the real engine with real packages from the npm registry: install into tools
//! volumes, versions and updates, secrets, config dirs, git worktrees.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Env, HostUser, docker, docker_stdout, poll};

/// A custom agent from npm whose command runs another command (`cross-env CMD…`): lets a test
/// look at the agent process's environment. Pinned, on the default Node.js runtime.
fn envy_config(extra: &str) -> String {
    format!(
        "{}\n[sandbox]\nenv = [\"STOCKADE_T_PLAIN\"]\n\n[agents.envy]\ninstall = \"npm\"\npackage = \"cross-env\"\ncommand = \"cross-env\"\nversion = \"7.0.3\"\napi_keys = [\"ENVY_API_KEY\"]\nconfig_dirs = [\".envy\"]\n{extra}",
        common::default_config(&common::base_image())
    )
}

fn tools_volumes(env: &Env, agent: &str) -> Vec<String> {
    common::volumes_labelled(&[
        &format!("io.stockade.namespace={}", env.namespace),
        &format!("io.stockade.agent={agent}"),
    ])
}

#[test]
fn opencode_installs_once_into_a_tools_volume_and_runs() {
    let env = Env::new();
    // A fresh engine as far as OpenCode goes: no tools volume yet.
    for volume in tools_volumes(&env, "opencode") {
        let _ = docker(&["volume", "rm", &volume]);
    }
    assert!(tools_volumes(&env, "opencode").is_empty());

    let first = env.run(&["opencode", "--version"]);
    first.expect_code(0);
    let version = first.stdout().trim().to_owned();
    assert!(
        version.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "opencode --version printed {version:?}\n{}",
        first.stderr()
    );
    assert!(
        first
            .stderr()
            .contains(&format!("Installing opencode {version}")),
        "{}",
        first.stderr()
    );
    assert_eq!(
        tools_volumes(&env, "opencode"),
        [format!(
            "{}-stockade-tools-opencode-{version}",
            env.namespace
        )]
    );

    let second = env.run(&["opencode", "--version"]);
    second.expect_code(0);
    assert_eq!(second.stdout().trim(), version);
    assert!(
        !second.stderr().contains("Installing"),
        "the second run installed again:\n{}",
        second.stderr()
    );

    // The resolved version is recorded and shown, never just "latest".
    let agents = env.run(&["agents", "--json"]);
    agents.expect_code(0);
    let rows: serde_json::Value = serde_json::from_str(&agents.stdout()).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "opencode")
        .unwrap();
    assert_eq!(row["version"], "latest");
    assert_eq!(row["installed"], version.as_str());
    assert_eq!(row["volume_present"], true);
    assert!(env.containers().is_empty());

    // Headless, as scripts and CI run it: one JSON document.
    let headless = env.run(&["run", "opencode", "--json", "--", "--version"]);
    headless.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&headless.stdout()).unwrap();
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(doc["version"], version.as_str(), "{doc}");
    assert_eq!(
        doc["stdout"].as_str().map(str::trim),
        Some(version.as_str())
    );

    // The state and cache files are where docs/agents.md says they are.
    let ns = &env.namespace;
    let recorded = std::fs::read_to_string(
        env.home
            .join(format!(".local/state/stockade/agents-{ns}.json")),
    )
    .unwrap();
    assert!(recorded.contains(&version), "{recorded}");
    assert!(
        env.home
            .join(format!(".cache/stockade/versions-{ns}.json"))
            .is_file()
    );
}

/// Tools volumes are shared by everyone using the engine while stockade's install lock is per
/// user: two users' first runs of one agent at the same time install it once (the second waits
/// on the volume's own lock and finds the install complete) and both run it.
#[test]
fn two_users_first_runs_of_an_agent_at_once_share_one_install() {
    let (first, second) = (Env::new(), Env::new());
    let agent = format!("race{}", std::process::id());
    let config = format!(
        "{}\n[agents.{agent}]\ninstall = \"npm\"\npackage = \"cowsay\"\ncommand = \"cowsay\"\nversion = \"1.6.0\"\n",
        common::default_config(&common::base_image())
    );
    first.write_global_config(&config);
    second.write_global_config(&config);
    let spawn = |env: &Env| {
        env.command(&["-q", &agent, "moo"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The second starts while the first one's install runs (its npm is writing the volume).
    let a = spawn(&first);
    let installing = poll(Duration::from_secs(60), || {
        let helpers = docker_stdout(&[
            "ps",
            "-q",
            "--filter",
            "label=io.stockade.kind=helper",
            "--filter",
            &format!("label=io.stockade.namespace={}", first.namespace),
            "--filter",
            &format!("volume={}-stockade-tools-{agent}-1.6.0", first.namespace),
        ]);
        (!helpers.trim().is_empty()).then_some(())
    });
    assert!(installing.is_some(), "the first install never started");
    std::thread::sleep(Duration::from_millis(1500));
    let b = spawn(&second);
    let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let volume = tools_volumes(&first, &agent);
    let _ = docker(&["volume", "rm", "-f", &volume.join(" ")]);
    for out in outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("< moo >"));
    }
    assert_eq!(volume.len(), 1, "{volume:?}");
}

#[test]
fn codex_installs_and_runs() {
    let env = Env::new();
    let run = env.run(&["codex", "--version"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("codex"),
        "stdout: {}\nstderr: {}",
        run.stdout(),
        run.stderr()
    );
}

#[test]
fn custom_agent_from_config_installs_and_runs() {
    let env = Env::new();
    env.write_global_config(&format!(
        "{}\n[agents.moo]\ninstall = \"npm\"\npackage = \"cowsay\"\ncommand = \"cowsay\"\n",
        common::default_config(&common::base_image())
    ));
    let run = env.run(&["moo", "hello", "from", "a", "custom", "agent"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("hello from a custom agent"),
        "{}",
        run.stdout()
    );
    assert!(run.stdout().contains("(oo)"), "{}", run.stdout());

    // Everything after the agent's name goes to the agent, untouched.
    let help = env.run(&["moo", "--help"]);
    assert!(
        !help.stdout().contains("Run AI coding agents"),
        "stockade's help instead of the agent's:\n{}",
        help.stdout()
    );
    assert!(
        format!("{}{}", help.stdout(), help.stderr()).contains("cowsay"),
        "{}\n{}",
        help.stdout(),
        help.stderr()
    );

    // check: the agent runs on the Node.js runtime stockade brings, which it installed.
    let check = env.run(&["check", "--json"]);
    check.expect_code(0);
    let moo = agent_in_check(&check.stdout(), "moo");
    assert_eq!(moo["runtime"], serde_json::Value::Null);
    assert_eq!(moo["node"], 22);
    let report: serde_json::Value = serde_json::from_str(&check.stdout()).unwrap();
    let node = &report["runtimes"][0];
    assert_eq!(node["spec"], "22");
    assert!(
        node["installed"].as_str().unwrap().starts_with("22."),
        "{node}"
    );
    assert_eq!(node["volume_present"], true);
    assert!(
        node["agents"].as_array().unwrap().contains(&"moo".into()),
        "{node}"
    );

    let unknown = env.run(&["no-such-agent", "--x"]);
    unknown.expect_code(1);
    assert!(
        unknown
            .stderr()
            .contains("unknown command or agent \"no-such-agent\""),
        "{}",
        unknown.stderr()
    );
}

/// `stockade run`: headless (no TTY), input and output byte for byte, the agent's exit code;
/// with --json one document, also for a failure before the agent starts.
#[test]
fn run_is_headless_byte_for_byte_and_one_json_document_on_request() {
    let env = Env::new();
    env.write_global_config(&envy_config(""));
    let bytes: Vec<u8> = (0u8..=255).collect();
    let through = env.run_with_stdin(
        &[
            "run",
            "envy",
            "--",
            "sh",
            "-c",
            "test -t 0 || test -t 1 || cat; exit 3",
        ],
        Some(&bytes),
    );
    through.expect_code(3);
    assert_eq!(through.output.stdout, bytes);

    let json = env.run(&[
        "run",
        "envy",
        "--json",
        "--",
        "sh",
        "-c",
        "echo b3V0/w== | base64 -d; printf err >&2; exit 4",
    ]);
    json.expect_code(4);
    let mut doc: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert!(doc["duration_ms"].as_u64().unwrap() > 0, "{doc}");
    assert!(!doc["image"].as_str().unwrap().is_empty(), "{doc}");
    doc["duration_ms"] = 0.into();
    doc["image"] = "[IMAGE]".into();
    assert_eq!(
        doc,
        serde_json::json!({
            "agent": "envy",
            "version": "7.0.3",
            "image": "[IMAGE]",
            "exit_code": 4,
            "duration_ms": 0,
            "stdout": null,
            "stdout_base64": "b3V0/w==",
            "stderr": "err",
            "stderr_base64": null,
            "truncated": false
        })
    );

    let failed = env.run(&["run", "no-such-agent", "--json"]);
    failed.expect_code(1);
    let mut doc: serde_json::Value = serde_json::from_str(&failed.stdout()).unwrap();
    doc["duration_ms"] = 0.into();
    insta::assert_json_snapshot!(doc, @r#"
    {
      "agent": "no-such-agent",
      "duration_ms": 0,
      "error": {
        "code": "failed",
        "error": "unknown command or agent \"no-such-agent\"",
        "hint": "agents: claude, codex, envy, gemini, opencode; describe a new one under `[agents.no-such-agent]` (docs/agents.md), or see `stockade --help`",
        "location": null
      },
      "exit_code": null,
      "image": null,
      "stderr": "",
      "stderr_base64": null,
      "stdout": "",
      "stdout_base64": null,
      "truncated": false,
      "version": null
    }
    "#);
    assert_eq!(failed.stderr(), "");
}

#[test]
fn secrets_reach_the_agent_but_not_the_container_configuration() {
    let env = Env::new()
        .env("ENVY_API_KEY", "sk-envy-0123456789")
        .env("STOCKADE_T_PLAIN", "plain-secret-value-42");
    env.write_global_config(&envy_config(""));
    // Install first, so the run below is quick.
    env.run(&["envy", "true"]).expect_code(0);

    let script = "echo \"key=$ENVY_API_KEY plain=$STOCKADE_T_PLAIN\"; \
                  find /.stockade-secrets -perm 400 -uid 0 -size -2k; \
                  sleep 8";
    let child = env
        .command(&["-v", "envy", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = poll(Duration::from_secs(60), || {
        env.containers().into_iter().next()
    })
    .expect("the sandbox container appears");
    let running = poll(Duration::from_secs(30), || {
        let state = docker(&["inspect", "--format", "{{.State.Running}}", &id]);
        (String::from_utf8_lossy(&state.stdout).trim() == "true").then_some(())
    });
    assert!(running.is_some(), "the sandbox never ran");
    let inspect = docker_stdout(&["inspect", &id]);
    assert!(
        !inspect.contains("sk-envy-0123456789"),
        "API key in docker inspect"
    );
    assert!(
        !inspect.contains("plain-secret-value-42"),
        "[sandbox] env value in docker inspect"
    );
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("key=sk-envy-0123456789 plain=plain-secret-value-42"),
        "{stdout}"
    );
    // Kept for the container's life, readable by the user only (the test runs as root).
    assert!(stdout.contains("\n/.stockade-secrets\n"), "{stdout}");
    assert!(
        stderr.contains("PUT /containers/"),
        "-v shows the upload: {stderr}"
    );
    assert!(
        !stderr.contains("sk-envy-0123456789"),
        "API key in -v output"
    );
    assert!(
        !stderr.contains("plain-secret-value-42"),
        "env value in -v output"
    );
}

#[test]
fn with_share_config_files_the_agent_writes_in_its_config_dir_belong_to_the_host_user() {
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::new().run_as(user.clone());
    // The host's own config dir is mounted only with `share_config` (global configuration).
    env.write_global_config(&envy_config("share_config = true\n"));
    let run = env.run(&[
        "envy",
        "sh",
        "-c",
        "echo hi > \"$HOME/.envy/written\" && id -u",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout().trim(), "1234");
    let written = env.home.join(".envy/written");
    let meta = std::fs::metadata(&written).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid));
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "hi\n");
}

#[test]
fn pinned_versions_update_into_new_volumes_and_a_failed_update_keeps_the_previous() {
    let env = Env::new();
    let config = |version: &str| {
        format!(
            "{}\n[agents.moo-pin]\ninstall = \"npm\"\npackage = \"cowsay\"\ncommand = \"cowsay\"\nversion = \"{version}\"\n",
            common::default_config(&common::base_image())
        )
    };
    let volume = |version: &str| format!("{}-stockade-tools-moo-pin-{version}", env.namespace);

    env.write_global_config(&config("1.5.0"));
    env.run(&["moo-pin", "one"]).expect_code(0);
    assert!(tools_volumes(&env, "moo-pin").contains(&volume("1.5.0")));

    env.write_global_config(&config("1.6.0"));
    let update = env.run(&["update", "moo-pin"]);
    update.expect_code(0);
    assert!(
        update.stderr().contains("1.5.0 → 1.6.0"),
        "{}",
        update.stderr()
    );
    let run = env.run(&["-v", "moo-pin", "two"]);
    run.expect_code(0);
    assert!(run.stdout().contains("two"));
    assert!(run.stderr().contains(&volume("1.6.0")), "{}", run.stderr());

    env.write_global_config(&config("0.0.0-does-not-exist"));
    let failed = env.run(&["update", "moo-pin"]);
    failed.expect_code(1);
    let stderr = failed.stderr();
    assert!(
        stderr.contains(
            "installing moo-pin 0.0.0-does-not-exist (cowsay from the npm registry) failed"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("moo-pin stays at 1.6.0"), "{stderr}");
    // npm's own error is shown; its log path inside the removed helper is not: the whole
    // output, npm's debug log included, is kept on the host.
    assert!(stderr.contains("No matching version found"), "{stderr}");
    assert!(!stderr.contains("/tmp/npm-logs"), "{stderr}");
    let log = env
        .home
        .join(".cache/stockade/logs/install-moo-pin-0.0.0-does-not-exist.log");
    assert!(
        stderr.contains(&format!("the whole output: {}", log.display())),
        "{stderr}"
    );
    let kept = std::fs::read_to_string(&log).unwrap();
    assert!(
        kept.contains("--- debug log ---") && kept.contains("verbose"),
        "{kept}"
    );
    assert!(!tools_volumes(&env, "moo-pin").contains(&volume("0.0.0-does-not-exist")));

    // The previous version still runs (with a warning about the pin).
    let still = env.run(&["moo-pin", "three"]);
    still.expect_code(0);
    assert!(still.stdout().contains("three"), "{}", still.stdout());
    assert!(
        still
            .stderr()
            .contains("running the installed moo-pin 1.6.0 instead"),
        "{}",
        still.stderr()
    );
}

#[test]
fn git_works_in_a_worktree() {
    let env = Env::new();
    env.make_project_a_worktree();
    let run = env.run(&["exec", "--", "git", "status"]);
    run.expect_code(0);
    assert!(run.stdout().contains("On branch wt"), "{}", run.stdout());
}

/// The foundation has no Node.js: npm agents run on the runtime volume's, which carries the C
/// library it was built against (so it runs even on a libc-less image).
#[test]
fn codex_and_gemini_run_on_a_base_without_node() {
    let env = Env::new();
    // The foundation, FROM the debootstrap minbase, has neither node nor npm.
    let probe = common::sh_in_image(&env.foundation_tag(), "command -v node npm || echo none");
    assert_eq!(probe.trim(), "none");
    // opencode runs on this same base in `opencode_installs_once_into_a_tools_volume_and_runs`
    // (not here: that test removes its tools volume first, which a run here would hold).
    for agent in ["codex", "gemini"] {
        let run = env.run(&[agent, "--version"]);
        run.expect_code(0);
        // `codex-cli 0.169.0`, `0.61.0`
        let version = run.stdout().trim().to_owned();
        assert!(
            version
                .split_whitespace()
                .last()
                .and_then(|v| v.chars().next())
                .is_some_and(|c| c.is_ascii_digit()),
            "{agent} --version printed {version:?}\n{}",
            run.stderr()
        );
    }
    // One runtime volume, Node.js 22, shared by every npm agent.
    let runtimes = common::volumes_labelled(&[
        &format!("io.stockade.namespace={}", env.namespace),
        "io.stockade.kind=runtime",
    ]);
    assert_eq!(runtimes.len(), 1, "{runtimes:?}");
    let prefix = format!("{}-stockade-runtime-node-22.", env.namespace);
    assert!(runtimes[0].starts_with(&prefix), "{runtimes:?}");
    // Its node runs on an image without any C library.
    let node = docker_stdout(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/opt/stockade/runtimes/node:ro", runtimes[0]),
        "--entrypoint",
        "/opt/stockade/runtimes/node/bin/node",
        &common::busybox_image(),
        "-p",
        "process.version",
    ]);
    assert_eq!(
        node.trim(),
        format!("v{}", &runtimes[0][prefix.len() - 3..]),
        "{runtimes:?}"
    );
}

#[test]
fn home_volume_keeps_files_between_runs_and_ssh_agent_is_opt_in() {
    let env = Env::new();
    env.run(&[
        "exec",
        "--",
        "sh",
        "-c",
        "echo kept > \"$HOME/.history-test\"",
    ])
    .expect_code(0);
    let home_created = || {
        let list = env.run(&["volumes", "--json"]);
        list.expect_code(0);
        let volumes: serde_json::Value = serde_json::from_str(&list.stdout()).unwrap();
        let homes: Vec<String> = volumes
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["kind"] == "home" && v["project"] == env.project.to_str().unwrap())
            .map(|v| v["created"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(homes.len(), 1, "{volumes}");
        homes[0].clone()
    };
    let created = home_created();
    // A second later, a run that writes into HOME's root leaves the volume's creation time alone
    // (the engine's own CreatedAt is the data directory's modification time).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = env.run(&[
        "exec",
        "--",
        "sh",
        "-c",
        "cat \"$HOME/.history-test\"; touch \"$HOME/.another\"",
    ]);
    again.expect_code(0);
    assert_eq!(again.stdout().trim(), "kept");
    assert_eq!(home_created(), created);

    let socket = env.root.join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let env = env.env("SSH_AUTH_SOCK", socket.to_str().unwrap());
    let probe = "test -S \"${SSH_AUTH_SOCK:-/nonexistent}\" && echo forwarded || echo none";
    let off = env.run(&["exec", "--", "sh", "-c", probe]);
    off.expect_code(0);
    assert_eq!(off.stdout().trim(), "none");
    let on = env.run(&["--ssh-agent", "exec", "--", "sh", "-c", probe]);
    on.expect_code(0);
    assert_eq!(on.stdout().trim(), "forwarded");
}

#[test]
fn volumes_prune_removes_only_unused_volumes() {
    // Volumes only: no image needed, so a namespace of its own costs nothing.
    let env = Env::isolated("prune");
    let ns = env.namespace.clone();
    let volume = |name: &str, labels: &[String]| {
        let mut args = vec!["volume".to_owned(), "create".to_owned()];
        for label in labels {
            args.push("--label".into());
            args.push(label.clone());
        }
        args.push(name.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_stdout(&args);
    };
    let tools = |agent: &str, version: &str| {
        let name = format!("{ns}-stockade-tools-{agent}-{version}");
        volume(
            &name,
            &[
                "io.stockade.kind=tools".into(),
                format!("io.stockade.namespace={ns}"),
                format!("io.stockade.agent={agent}"),
                format!("io.stockade.agent-version={version}"),
            ],
        );
        name
    };
    let old = tools("moo", "1.0.0");
    let used = tools("moo", "1.1.0");
    // The newest install of an agent is kept (it is someone's current version); the engine
    // dates volumes to the second.
    std::thread::sleep(Duration::from_millis(1100));
    let newest = tools("moo", "1.2.0");
    let gone_home = format!("{ns}-stockade-home-000000000000");
    volume(
        &gone_home,
        &[
            "io.stockade.kind=home".into(),
            format!("io.stockade.namespace={ns}"),
            "io.stockade.project=/nonexistent/project".into(),
        ],
    );
    let live_home = format!("{ns}-stockade-home-111111111111");
    volume(
        &live_home,
        &[
            "io.stockade.kind=home".into(),
            format!("io.stockade.namespace={ns}"),
            format!("io.stockade.project={}", env.project.display()),
        ],
    );
    // A container (not even running) that mounts `used`.
    docker_stdout(&[
        "create",
        "--label",
        &format!("io.stockade.project={}", env.project.display()),
        "-v",
        &format!("{used}:/x"),
        &common::base_image(),
        "true",
    ]);

    let list = env.run(&["volumes", "--json"]);
    list.expect_code(0);
    let rows: serde_json::Value = serde_json::from_str(&list.stdout()).unwrap();
    let in_use: Vec<(String, bool)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["in_use"] == true))
        .collect();
    assert!(in_use.contains(&(used.clone(), true)), "{in_use:?}");
    assert!(in_use.contains(&(old.clone(), false)), "{in_use:?}");

    let dry = env.run(&["prune", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout().contains(&format!("would remove volume {old}")),
        "{}",
        dry.stdout()
    );

    let prune = env.run(&["volumes", "prune"]);
    prune.expect_code(0);
    let stdout = prune.stdout();
    assert!(
        stdout.contains(&old) && stdout.contains(&gone_home),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&used) && !stdout.contains(&live_home),
        "{stdout}"
    );
    let exists = |name: &str| docker(&["volume", "inspect", name]).status.success();
    assert!(!exists(&old) && !exists(&gone_home));
    assert!(exists(&used) && exists(&live_home));
    for id in env.containers() {
        docker_stdout(&["rm", "-f", &id]);
    }
    for name in [&used, &live_home, &newest] {
        docker_stdout(&["volume", "rm", name]);
    }
}

#[test]
fn pypi_agent_installs_into_a_venv_and_runs() {
    let env = Env::new();
    env.write_global_config(&format!(
        "{}\n[agents.pymoo]\ninstall = \"pypi\"\npackage = \"cowsay\"\ncommand = \"cowsay\"\nversion = \"6.1\"\n",
        common::default_config(&common::base_image())
    ));
    let run = env.run(&["pymoo", "-t", "hello from pypi"]);
    run.expect_code(0);
    assert!(run.stdout().contains("hello from pypi"), "{}", run.stdout());
    assert!(
        tools_volumes(&env, "pymoo")
            .contains(&format!("{}-stockade-tools-pymoo-6.1", env.namespace))
    );
}

/// A libc-less base (busybox): an agent whose command is a native program (glibc and musl
/// builds) is refused with a message that names what is missing, before anything is installed;
/// `check` says so too.
#[test]
fn a_libc_less_base_refuses_a_glibc_agent_before_installing_anything() {
    let env = Env::layered("nolibc");
    env.write_global_config(&format!(
        "{}base = \"{}\"\n",
        common::default_config(&common::base_image()),
        common::busybox_image()
    ));
    let installed = || installed_volumes(&env);
    let transcript = opencode_launch(&env);
    let mut settings = common::snapshot_settings(&env);
    settings.add_filter(&common::regex_escape(&common::busybox_image()), "[BUSYBOX]");
    settings.bind(|| {
        insta::assert_snapshot!(transcript, @r"
        exit: 1
        --- stdout
        --- stderr
          x opencode cannot run on the sandbox image [NS]-stockade:base: its command (opencode-ai) is a native program built for glibc or musl, and the sandbox image has neither C library (no dynamic loader /lib*/ld-linux-* or /lib/ld-musl-*)
          help: use a glibc-based (Debian, Ubuntu, Fedora…) or musl-based (Alpine) base image for it; agents that are Node.js programs (codex, gemini) run on any base, on the Node.js runtime stockade brings (docs/agents.md)
        ");
    });
    assert!(installed().is_empty(), "{:?}", installed());

    // An agent the image cannot run is a FAIL, and a FAIL is exit 1.
    let check = env.run(&["check"]);
    check.expect_code(1);
    let stdout = check.stdout();
    let fails: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(
        fails,
        [
            "FAIL Agent claude: its command is a native program built for glibc or musl, and the sandbox image has neither C library (no dynamic loader /lib*/ld-linux-* or /lib/ld-musl-*)",
            "FAIL Agent opencode: its command is a native program built for glibc or musl, and the sandbox image has neither C library (no dynamic loader /lib*/ld-linux-* or /lib/ld-musl-*)",
        ],
        "{stdout}"
    );
    let json = env.run(&["check", "--json"]);
    assert_eq!(
        agent_in_check(&json.stdout(), "opencode")["glibc_present"],
        false
    );
    assert_eq!(
        agent_in_check(&json.stdout(), "codex")["glibc_present"],
        serde_json::Value::Null
    );
    assert!(installed().is_empty(), "{:?}", installed());

    // A Node.js agent runs there: codex's command is a node script (run by the runtime's node,
    // which carries its C library) that starts a static musl binary.
    let codex = env.run(&["codex", "--version"]);
    codex.expect_code(0);
    assert!(
        codex.stdout().starts_with("codex-cli "),
        "{}",
        codex.stdout()
    );
    for volume in installed() {
        let _ = docker(&["volume", "rm", &volume]);
    }
}

/// `stockade opencode --version` after the chain is built (so that it is the agent's launch
/// alone): its exit code, stdout and stderr.
fn opencode_launch(env: &Env) -> String {
    env.run(&["exec", "--", "true"]).expect_code(0);
    let run = env.run(&["opencode", "--version"]);
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        run.code().unwrap_or(-1),
        run.stdout(),
        run.stderr()
    )
}

/// The agents' lines of `stockade check` (with their fixes).
fn agent_lines(stdout: &str) -> String {
    let mut out = String::new();
    let mut in_agent = false;
    for line in stdout.lines() {
        if line.starts_with("       fix:") {
            if in_agent {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        in_agent = line.contains(" Agent ");
        if in_agent {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A musl base (busybox with musl's loader, which is its libc, and nothing else): Claude Code
/// runs its musl build, installed from its musl platform package into a `-musl` tools volume
/// (no Node.js: the build needs none); opencode's musl build needs libstdc++ and libgcc_s,
/// which the launch names before anything is installed; `check` says which build each runs.
/// Then the attacker: an image that claims musl (a fake loader) gets the same read-only musl
/// build, which fails on it, and nothing else changes.
#[test]
fn a_musl_base_runs_claude_s_musl_build_and_names_what_opencode_lacks() {
    let env = Env::layered("musl");
    let config = |base: &str| {
        format!(
            "{}base = \"{base}\"\n",
            common::default_config(&common::base_image())
        )
    };
    env.write_global_config(&config(&common::musl_image()));
    let installed = || installed_volumes(&env);
    let transcript = opencode_launch(&env);
    common::snapshot_settings(&env).bind(|| {
        insta::assert_snapshot!(transcript, @r"
        exit: 1
        --- stdout
        --- stderr
          x opencode cannot run on the sandbox image [NS]-stockade:base: its command (opencode-ai) is a native program whose musl build (the sandbox image's C library is musl) needs libstdc++.so.6 and libgcc_s.so.1, which the image does not have
          help: add libstdc++.so.6 and libgcc_s.so.1 to the base image (Alpine: `apk add libstdc++`), or use a glibc-based base image; agents that are Node.js programs (codex, gemini) run on any base, on the Node.js runtime stockade brings (docs/agents.md)
        ");
    });
    assert!(installed().is_empty(), "{:?}", installed());

    let check = env.run(&["check"]);
    check.expect_code(1);
    common::snapshot_settings(&env).bind(|| {
        insta::assert_snapshot!(agent_lines(&check.stdout()), @r"
        ok   Agent claude: latest (installed on first use; its musl build)
        ok   Agent codex: latest (installed on first use)
        ok   Agent gemini: latest (installed on first use)
        FAIL Agent opencode: its command is a native program whose musl build (the sandbox image's C library is musl) needs libstdc++.so.6 and libgcc_s.so.1, which the image does not have
               fix: add libstdc++.so.6 and libgcc_s.so.1 to the base image (Alpine: `apk add libstdc++`), or use a glibc-based base image
        ");
    });
    assert!(installed().is_empty(), "{:?}", installed());

    let claude = env.run(&["claude", "--version"]);
    claude.expect_code(0);
    let version = claude
        .stdout()
        .trim()
        .strip_suffix(" (Claude Code)")
        .unwrap_or_else(|| panic!("{}\n{}", claude.stdout(), claude.stderr()))
        .to_owned();
    assert!(
        claude.stderr().contains(&format!(
            "Installing claude {version} (its musl build) into volume"
        )),
        "{}",
        claude.stderr()
    );
    let volume = format!("{}-stockade-tools-claude-{version}-musl", env.namespace);
    // The musl build alone: no Node.js runtime, no glibc build.
    assert_eq!(installed(), std::slice::from_ref(&volume));
    let labels = docker_stdout(&[
        "volume",
        "inspect",
        "--format",
        "{{index .Labels \"io.stockade.libc\"}} {{index .Labels \"io.stockade.agent-version\"}}",
        &volume,
    ]);
    assert_eq!(labels.trim(), format!("musl {version}"));
    let again = env.run(&["claude", "--version"]);
    again.expect_code(0);
    assert!(!again.stderr().contains("Installing"), "{}", again.stderr());

    let check = env.run(&["check"]);
    check.expect_code(1);
    let mut settings = common::snapshot_settings(&env);
    settings.add_filter(&common::regex_escape(&version), "[VERSION]");
    settings.bind(|| {
        insta::assert_snapshot!(agent_lines(&check.stdout()), @r"
        ok   Agent claude: [VERSION] installed; its musl build
        ok   Agent codex: latest (installed on first use)
        ok   Agent gemini: latest (installed on first use)
        FAIL Agent opencode: its command is a native program whose musl build (the sandbox image's C library is musl) needs libstdc++.so.6 and libgcc_s.so.1, which the image does not have
               fix: add libstdc++.so.6 and libgcc_s.so.1 to the base image (Alpine: `apk add libstdc++`), or use a glibc-based base image
        ");
    });
    let json = env.run(&["check", "--json"]);
    let claude_check = agent_in_check(&json.stdout(), "claude");
    assert_eq!(
        (
            &claude_check["libc"],
            &claude_check["glibc_present"],
            &claude_check["installed"]
        ),
        (
            &serde_json::json!("musl"),
            &serde_json::json!(false),
            &serde_json::json!(version)
        )
    );
    assert_eq!(
        agent_in_check(&json.stdout(), "opencode")["libc"],
        serde_json::Value::Null
    );
    // `agents` names the musl build beside the package's (none here).
    let agents = env.run(&["agents", "--json"]);
    agents.expect_code(0);
    let rows: serde_json::Value = serde_json::from_str(&agents.stdout()).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "claude")
        .unwrap();
    assert_eq!(
        (&row["installed"], &row["musl"]),
        (&serde_json::Value::Null, &serde_json::json!(version))
    );
    let rows = env.run(&["volumes", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&rows.stdout()).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == volume.as_str())
        .unwrap();
    assert_eq!(
        (&row["libc"], row["current"].as_bool()),
        (&serde_json::json!("musl"), Some(true))
    );

    // The attacker's image says it is musl-based (a fake loader): it gets the musl build,
    // read-only, which cannot run on it; the volume and everything else stay as they were.
    let fake = env.root.join("fake-loader");
    std::fs::write(&fake, "#!/bin/sh\necho hijacked\n").unwrap();
    let lying = common::busybox_based(
        &format!("{}/busybox:lying-musl", env.namespace),
        &[(fake, "lib/ld-musl-x86_64.so.1".to_owned())],
    );
    env.write_global_config(&config(&lying));
    let hostile = env.run(&["claude", "--version"]);
    assert_ne!(hostile.code(), Some(0), "{}", hostile.stdout());
    assert!(
        !hostile.stdout().contains("hijacked"),
        "{}",
        hostile.stdout()
    );
    assert!(
        !hostile.stderr().contains("Installing"),
        "{}",
        hostile.stderr()
    );
    assert_eq!(installed(), std::slice::from_ref(&volume));
    let marker = docker_stdout(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v:ro"),
        &common::base_image(),
        "cat",
        "/v/.stockade-complete",
    ]);
    assert_eq!(marker.trim(), version);
    let _ = docker(&["image", "rm", &lying]);
    for volume in installed() {
        let _ = docker(&["volume", "rm", &volume]);
    }
}

/// A musl base with what opencode's musl build needs (libstdc++ and libgcc_s: stand-ins the
/// probe finds), and a version of opencode whose musl build was never published (0.5.29; its
/// musl builds start at 1.0): the install says what is missing, no other version runs, and
/// nothing is left installed.
#[test]
fn a_version_without_a_musl_build_is_named_and_nothing_is_installed() {
    let env = Env::layered("muslgap");
    let stand_in = env.root.join("stand-in.so");
    std::fs::write(&stand_in, "").unwrap();
    let image = common::busybox_based(
        &format!("{}/busybox:musl-libstdcxx", env.namespace),
        &[
            common::musl_loader(),
            (stand_in.clone(), "lib/libstdc++.so.6".to_owned()),
            (stand_in, "lib/libgcc_s.so.1".to_owned()),
        ],
    );
    env.write_global_config(&format!(
        "{}base = \"{image}\"\n\n[agents.opencode]\nversion = \"0.5.29\"\n",
        common::default_config(&common::base_image())
    ));
    let transcript = opencode_launch(&env);
    let mut settings = common::snapshot_settings(&env);
    // The registry's newest musl build moves on.
    settings.add_filter(
        r"its newest version is \d+\.\d+\.\d+",
        "its newest version is [NEWEST]",
    );

    settings.bind(|| {
        insta::assert_snapshot!(transcript, @r"
        exit: 1
        --- stdout
        --- stderr
        Installing opencode 0.5.29 (its musl build) into volume [NS]-stockade-tools-opencode-0.5.29-musl…
          x installing the musl build of opencode 0.5.29 (opencode-linux-<arch>-musl from the npm registry) failed:
          | the npm registry has no version 0.5.29 of opencode-linux-x64-musl (the musl build of opencode-ai); its newest version is [NEWEST]
          | the whole output: [ROOT]/home/.cache/stockade/logs/install-opencode-0.5.29-musl.log
          help: a musl-based image runs the musl build of the agent's own version: when the registry has none for 0.5.29 yet, pin a version it has (`[agents.opencode] version`), or use a glibc-based base image; check that the registry is reachable (proxy, `[image] ca_certificates`); the previously installed version, if any, is unchanged
        ");
    });
    assert!(tools_volumes(&env, "opencode").is_empty());
    let _ = docker(&["image", "rm", &image]);
}

/// The entry for `name` in the agents section of `stockade check --json` output.
fn agent_in_check(json: &str, name: &str) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no agent {name} in {report}"))
        .clone()
}

/// The namespace's tools and runtime volumes.
fn installed_volumes(env: &Env) -> Vec<String> {
    let mut volumes = Vec::new();
    for kind in ["tools", "runtime"] {
        volumes.extend(common::volumes_labelled(&[
            &format!("io.stockade.namespace={}", env.namespace),
            &format!("io.stockade.kind={kind}"),
        ]));
    }
    volumes
}
