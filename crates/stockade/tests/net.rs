//! `stockade net log` and `stockade net allow` against the real engine (docs/egress.md#denials):
//! a running sandbox refused a host, its denial listed (JSON, table, followed), the host allowed
//! and reached by the same sandbox without a restart; and `net allow`'s refusals: a host that is
//! not one, a project file that is a symbolic link. Hosts reached: pypi.org, once allowed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

use common::{Env, docker, docker_stdout, snapshot_settings};

/// What `curl` says of a request from the running sandbox `probe`: the proxy's answer to the
/// CONNECT, then the server's (000: none).
fn curl_in_probe(env: &Env, url: &str) -> String {
    let run = env.run(&[
        "exec",
        "--in",
        "probe",
        "--",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_connect} %{http_code}",
        url,
    ]);
    run.stdout()
}

/// Settings for this file's snapshots: times and container names vary.
fn settings(env: &Env) -> insta::Settings {
    let mut settings = snapshot_settings(env);
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings.add_filter(r#""sandbox": "[^"]+""#, r#""sandbox": "[SANDBOX]""#);
    settings
}

#[test]
fn a_refused_host_is_listed_and_net_allow_lets_the_running_sandbox_reach_it() {
    // A namespace of its own: `--all` and the live update reach every sandbox of a namespace,
    // and other tests run theirs in the shared one.
    let env = Env::layered("net");
    // The project narrows the defaults (no approval needed): no package registries.
    env.write(
        ".stockade/config.toml",
        "[network]\npresets = [\"!packages\"]\n",
    );
    let settings = settings(&env);
    let _guard = settings.bind_to_scope();

    let none = env.run(&["net", "log"]);
    none.expect_code(0);
    insta::assert_snapshot!(format!("{}---\n{}", none.stdout(), none.stderr()), @r"
    ---
    no denials of sandboxes in [ROOT]/project
    ");

    // As JSON: an empty array, and nothing on stderr.
    let none = env.run(&["net", "log", "--json"]);
    none.expect_code(0);
    assert_eq!(
        (none.stdout().as_str(), none.stderr().as_str()),
        ("[]\n", "")
    );

    env.run(&["exec", "-d", "--name", "probe", "--", "sleep", "600"])
        .expect_code(0);
    // Following from before the refusal: it comes as one JSON line.
    let mut follow = env
        .command(&["net", "log", "--json", "-f"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn net log -f");
    let stdout = follow.stdout.take().expect("stdout pipe");
    let (lines, followed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    assert_eq!(
        curl_in_probe(&env, "https://pypi.org/simple/six/"),
        "403 000"
    );

    let run = env.run(&["net", "log", "--json"]);
    run.expect_code(0);
    insta::assert_snapshot!(run.stdout(), @r#"
    [
      {
        "time": "[TIME]",
        "sandbox": "[SANDBOX]",
        "session": "probe",
        "agent": null,
        "project": "[ROOT]/project",
        "host": "pypi.org",
        "port": 443,
        "reason": "not-allowed"
      }
    ]
    "#);
    assert_eq!(run.stderr(), "");
    let listed: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let line = followed
        .recv_timeout(Duration::from_secs(30))
        .expect("net log -f printed no denial");
    let _ = follow.kill();
    let _ = follow.wait();
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line, listed[0]);

    let table = env.run(&["net", "log"]);
    table.expect_code(0);
    insta::assert_snapshot!(format!("{}---\n{}", table.stdout(), table.stderr()), @r"
    TIME                  SANDBOX  AGENT  HOST      PORT  REASON
    [TIME]  probe    -      pypi.org  443   not-allowed
    ---
    ");
    // Every project's: the same row, with its project.
    let all = env.run(&["net", "log", "--all"]);
    all.expect_code(0);
    assert!(all.stdout().starts_with("TIME "), "{}", all.stdout());
    assert!(
        all.stdout().lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.get(1) == Some(&"probe")
                && cells.ends_with(&["not-allowed", &env.project.display().to_string()])
        }),
        "{}",
        all.stdout()
    );

    // The gateway rotates its log at 4 MiB (to denials.jsonl.1), as here: what it rotated is
    // still listed.
    let log = "/run/stockade-gateway/log/denials.jsonl";
    let gateway = format!("{}-stockade-gateway", env.namespace);
    docker_stdout(&["exec", &gateway, "mv", log, &format!("{log}.1")]);
    let rotated = env.run(&["net", "log", "--json"]);
    rotated.expect_code(0);
    assert_eq!(rotated.stdout(), run.stdout());

    let allow = env.run(&["net", "allow", "pypi.org"]);
    allow.expect_code(0);
    insta::assert_snapshot!(format!("{}---\n{}", allow.stdout(), allow.stderr()), @r"
    ---
    ✓ Added pypi.org to [network] allow in [ROOT]/home/.config/stockade/config.toml
    1 running sandbox of this namespace got it
    ");
    // The rest of the global file is as it was.
    insta::assert_snapshot!(
        std::fs::read_to_string(env.config_dir().join("config.toml"))
            .unwrap()
            .replace(&common::base_image(), "[BASE]"),
        @r#"
    [image]
    from = "[BASE]"
    ca_certificates = ["/etc/ssl/certs/ca-certificates.crt"]

    [network]
    allow = ["pypi.org"]
    "#
    );
    // The same sandbox, not restarted, now gets through.
    assert_eq!(
        curl_in_probe(&env, "https://pypi.org/simple/six/"),
        "200 200"
    );

    let again = env.run(&["net", "allow", "PyPI.org"]);
    again.expect_code(0);
    insta::assert_snapshot!(again.stderr(), @"pypi.org is already in [network] allow of [ROOT]/home/.config/stockade/config.toml: nothing changed");

    env.run(&["stop", "probe", "--time", "0"]).expect_code(0);

    // The project's egress network outlives its sandboxes (the next one reuses it); once the
    // project's directory is gone, `prune` removes it, as it does the project's home volume.
    let id = common::project_id(&env.project);
    let network = format!("{}-stockade-egress-{id}", env.namespace);
    std::fs::remove_dir_all(&env.project).unwrap();
    let limit = Duration::from_secs(120);
    let dry = env.run_limited(&env.root, &["prune", "--dry-run"], limit);
    dry.expect_code(0);
    insta::assert_snapshot!(
        format!("{}---\n{}", dry.stdout(), dry.stderr()).replace(&id, "[ID]"),
        @r"
    would remove volume [NS]-stockade-home-[ID] — home of [ROOT]/project: the project is gone
    would remove network [NS]-stockade-egress-[ID] — the egress network of a project whose directory is gone
    ---
    1 volume and 1 network would be removed; run without --dry-run to remove them
    "
    );
    let holder = format!("{network}-holder");
    assert!(docker(&["inspect", &holder]).status.success());
    env.run_limited(&env.root, &["prune", "-y"], limit)
        .expect_code(0);
    assert!(!docker(&["network", "inspect", &network]).status.success());
    // The network's holder went with it.
    assert!(!docker(&["inspect", &holder]).status.success());
}

#[test]
fn net_allow_refuses_what_is_not_a_host() {
    let env = Env::new();
    let settings = settings(&env);
    let _guard = settings.bind_to_scope();
    let run = env.run(&["net", "allow", "bad host"]);
    run.expect_code(1);
    insta::assert_snapshot!(format!("{}---\n{}", run.stdout(), run.stderr()), @r#"
    ---
      x "bad host" is not a host name: write `host`, `*.domain` or `host:port`
      help: write a host name (`pypi.org`), `*.example.com` for the subdomains of example.com, `host:port` for a port other than 443 and 80, or an IP address
    "#);
    let run = env.run(&["net", "allow", "pypi.org:0", "--project"]);
    run.expect_code(1);
    insta::assert_snapshot!(run.stderr(), @r#"
    x "pypi.org:0": the port "0" is not a number from 1 to 65535
    help: write a host name (`pypi.org`), `*.example.com` for the subdomains of example.com, `host:port` for a port other than 443 and 80, or an IP address
    "#);
    assert!(!env.project.join(".stockade").exists());
}

#[test]
fn net_allow_project_edits_the_project_file_and_refuses_a_link() {
    let env = Env::new();
    let settings = settings(&env);
    let _guard = settings.bind_to_scope();

    // A planted link to the user's own global file: it must not be written through.
    let global = env.config_dir().join("config.toml");
    let before = std::fs::read_to_string(&global).unwrap();
    std::fs::create_dir_all(env.project.join(".stockade")).unwrap();
    std::os::unix::fs::symlink(&global, env.project.join(".stockade/config.toml")).unwrap();
    let run = env.run(&["net", "allow", "pypi.org", "--project"]);
    run.expect_code(1);
    insta::assert_snapshot!(run.stderr(), @r"
    x refusing to edit the project configuration: [ROOT]/project/.stockade/config.toml is a symbolic link (to [ROOT]/home/.config/stockade/config.toml): stockade does not follow links in the project, so that a project file cannot make it read or send a file from elsewhere on the host
    help: replace the link with the file or directory itself; a file outside the project can be named in your global config (~/.config/stockade/config.toml) instead
    ");
    // `.stockade` itself a link to the user's config directory.
    std::fs::remove_dir_all(env.project.join(".stockade")).unwrap();
    std::os::unix::fs::symlink(env.config_dir(), env.project.join(".stockade")).unwrap();
    let run = env.run(&["net", "allow", "pypi.org", "--project"]);
    run.expect_code(1);
    insta::assert_snapshot!(run.stderr(), @r"
    x refusing to edit the project configuration: [ROOT]/project/.stockade is a symbolic link (to [ROOT]/home/.config/stockade): stockade does not follow links in the project, so that a project file cannot make it read or send a file from elsewhere on the host
    help: replace the link with the file or directory itself; a file outside the project can be named in your global config (~/.config/stockade/config.toml) instead
    ");
    assert_eq!(std::fs::read_to_string(&global).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(env.config_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["config.toml"]);

    // A real file: edited, the rest kept, and the project needs approval again.
    std::fs::remove_file(env.project.join(".stockade")).unwrap();
    env.write(
        ".stockade/config.toml",
        "# ours\n[sandbox]\nmemory = \"1g\"\n",
    );
    let run = env.run(&["net", "allow", "pypi.org", "--project"]);
    run.expect_code(0);
    insta::assert_snapshot!(format!("{}---\n{}", run.stdout(), run.stderr()), @r"
    ---
    ✓ Added pypi.org to [network] allow in [ROOT]/project/.stockade/config.toml
    0 running sandboxes of [ROOT]/project got it
    warning: the project's configuration changed: its next launch asks for approval again (`stockade trust` approves it)
    ");
    insta::assert_snapshot!(
        std::fs::read_to_string(env.project.join(".stockade/config.toml")).unwrap(),
        @r#"
    # ours
    [sandbox]
    memory = "1g"

    [network]
    allow = ["pypi.org"]
    "#
    );
    // As said: a launch without a terminal is refused until `stockade trust`.
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(1);
    insta::assert_snapshot!(run.stderr(), @r"
    The project configuration of [ROOT]/project adds to the sandbox:
      - allows egress to pypi.org ([ROOT]/project/.stockade/config.toml:6:10)
      x this project's .stockade configuration is new or changed and not approved
      help: review it, then run `stockade trust` (or pass --trust for this run only)
    ");
}

#[test]
fn net_help_names_both_commands_and_how_to_use_them() {
    let home = tempfile::tempdir().unwrap();
    // The options every command has are checked with the main help (tests/cli.rs).
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"(?m)^ +-v, --verbose\.\.\. .*\n +internals\n", "  [-v]\n");
    settings.add_filter(
        r"(?m)^ +--color <WHEN> .*\n +values: auto, always, never\]\n",
        "  [--color]\n",
    );
    let _guard = settings.bind_to_scope();
    let out = common::bare_command(home.path(), &["net", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout), @r"
    Egress: list the requests the gateway refused, allow a host (docs/egress.md)

    Usage: stockade net [OPTIONS] <COMMAND>

    Commands:
      log    The requests the egress gateway refused, of this project's sandboxes (--all: every
             project's): time, sandbox, agent, host, port and reason
      allow  Allow a host: add it to `[network] allow` of your global configuration (or with --project
             of the project's), and to the sandboxes running now, without a restart
      help   Print this message or the help of the given subcommand(s)

    Options:
      [-v]
      -q, --quiet         Show only results and errors: no progress, no confirmations
      [--color]
      -h, --help          Print help
      -V, --version       Print version

    Examples:
      stockade net log
      stockade net log --json -f
      stockade net allow pypi.org
      stockade net allow git.example.com:22 --project
    ");
    let out = common::bare_command(home.path(), &["net", "allow", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout), @r"
    Allow a host: add it to `[network] allow` of your global configuration (or with --project of the
    project's), and to the sandboxes running now, without a restart

    Usage: stockade net allow [OPTIONS] <HOST>

    Arguments:
      <HOST>  `host` (ports 443 and 80), `*.domain` (its subdomains), `host:port`, or an IP address

    Options:
          --project       Edit the project's .stockade/config.toml (its next launch asks for approval
                          again); only this project's running sandboxes get it
      [-v]
          --global        Edit your global configuration file (the default); every running sandbox gets
                          it
      -q, --quiet         Show only results and errors: no progress, no confirmations
      [--color]
      -h, --help          Print help
      -V, --version       Print version
    ");
}
