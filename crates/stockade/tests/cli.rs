//! The command line itself: help, version, completions, configuration errors. These fail before
//! any engine call, so they need no engine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::bare_command;

fn stockade(args: &[&str], home: &std::path::Path) -> std::process::Output {
    bare_command(home, args).output().expect("run stockade")
}

/// `stockade ARGS…` (an `exec --dry-run`) in a project under `home`: the spec it prints.
fn dry_run_spec(home: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let project = home.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let out = bare_command(home, args)
        .current_dir(&project)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_STATE_HOME", home.join(".state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn help_lists_the_commands() {
    let home = tempfile::tempdir().unwrap();
    let out = stockade(&["--help"], home.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "exec",
        "shell",
        "check",
        "build",
        "completions",
        "agents",
        "update",
        "volumes",
        "stockade claude|opencode|codex|gemini",
        "--ssh-agent",
        "config",
        "trust",
        "scan",
        "--verbose",
        "--quiet",
        "--color",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}

#[test]
fn version_is_the_crate_version() {
    let home = tempfile::tempdir().unwrap();
    let out = stockade(&["--version"], home.path());
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("stockade {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_for_every_shell() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = stockade(&["completions", shell], home.path());
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("stockade"), "{shell}");
        assert!(script.contains("exec"), "{shell}");
        assert!(script.contains("claude"), "{shell}");
    }
}

/// bash really completes agent names and commands from the generated script.
#[test]
fn bash_completes_agent_names_and_commands() {
    let home = tempfile::tempdir().unwrap();
    let out = stockade(&["completions", "bash"], home.path());
    assert!(out.status.success());
    let script = home.path().join("stockade.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let complete = |word: &str| {
        let out = common::succeeded(std::process::Command::new("bash").arg("-c").arg(format!(
            "source {}; COMP_WORDS=(stockade {word}); COMP_CWORD=1; COMP_LINE='stockade {word}'; \
                 COMP_POINT=${{#COMP_LINE}}; _stockade stockade {word} stockade; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\" | sort",
            script.display()
        )));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(complete("co"), "codex\ncompletions\nconfig\n");
    assert_eq!(complete("cl"), "claude\n");
    assert_eq!(complete("g"), "gemini\n");
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = stockade(&["exec"], home.path());
    assert_eq!(out.status.code(), Some(2));
    let out = stockade(&["--color", "purple", "check"], home.path());
    assert_eq!(out.status.code(), Some(2));
}

fn config_error(config: &str) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/stockade");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), config).unwrap();
    // A dead engine address: the configuration must be rejected before any engine call.
    let out = bare_command(home.path(), &["exec", "--", "true"])
        .env("DOCKER_HOST", "unix:///nonexistent/engine.sock")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_key_names_file_line_and_column() {
    let (code, stderr) = config_error("[image]\nfrom = \"x\"\nform = \"y\"\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("config.toml:3:1"), "{stderr}");
    assert!(stderr.contains("unknown key `form`"), "{stderr}");
    assert!(stderr.contains("did you mean `from`?"), "{stderr}");
    assert!(
        !stderr.contains("engine"),
        "config must fail first: {stderr}"
    );
}

#[test]
fn bad_value_names_file_line_and_column() {
    let (code, stderr) = config_error("[sandbox]\nenv = [\"GOOD\", \"1BAD\"]\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("config.toml:2:16"), "{stderr}");
    assert!(
        stderr.contains("not an environment variable name"),
        "{stderr}"
    );
}

#[test]
fn missing_ca_file_names_the_file() {
    let (code, stderr) = config_error("[image]\nca_certificates = [\"/nonexistent/corp.pem\"]\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("config.toml:2:20"), "{stderr}");
    assert!(stderr.contains("/nonexistent/corp.pem"), "{stderr}");
}

#[test]
fn sandbox_flags_before_a_command_they_mean_nothing_to_are_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            &["--network", "none", "build"][..],
            "error: --network applies to `exec`, `shell` and agents only, not to `build`\n",
        ),
        (
            &["--trust", "-e", "FOO", "check"][..],
            "error: --env, --trust apply to `exec`, `shell` and agents only, not to `check`\n",
        ),
    ] {
        let out = stockade(args, home.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "{expected}\nUsage: stockade [OPTIONS] <COMMAND>\n\nFor more information, try '--help'.\n"
            ),
            "{args:?}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn sandbox_flags_before_exec_apply_to_it() {
    // `stockade --memory 1g -e A=1 exec --memory 2g …`: both places count, the later wins.
    let home = tempfile::tempdir().unwrap();
    let spec = dry_run_spec(
        home.path(),
        &[
            "--memory",
            "1g",
            "-e",
            "EARLY=1",
            "--network",
            "none",
            "exec",
            "--memory",
            "2g",
            "--dry-run",
            "--",
            "true",
        ],
    );
    assert_eq!(spec["limits"]["memory"], 2i64 << 30);
    assert_eq!(spec["network"], "none");
    assert_eq!(spec["secrets"], serde_json::json!(["EARLY"]));
}

#[test]
fn an_unknown_option_before_the_command_is_a_usage_error() {
    // Not the command (which would create a container and exit 127): exit 2, before any engine
    // call, naming the option.
    let home = tempfile::tempdir().unwrap();
    let out = stockade(&["exec", "--bogus", "--", "true"], home.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: stockade exec [OPTIONS] <CMD>...\n\nFor more information, try '--help'.\n"
    );
    // A command that starts with `-` still runs after `--`, and options after the command are
    // the command's.
    for (args, command) in [
        (&["exec", "--dry-run", "--", "-x"][..], &["-x"][..]),
        (
            &["exec", "--dry-run", "sh", "-c", "true"][..],
            &["sh", "-c", "true"][..],
        ),
    ] {
        let spec = dry_run_spec(home.path(), args);
        assert_eq!(spec["command"], serde_json::json!(command), "{args:?}");
    }
}

/// A failure shows its cause under the message (the chain is kept, not flattened), and exits 1.
#[test]
fn an_error_shows_its_cause_under_the_message() {
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("project");
    std::fs::create_dir_all(project.join(".stockade")).unwrap();
    std::fs::write(
        project.join(".stockade/config.toml"),
        "[sandbox]\nmemory = \"4g\"\n",
    )
    .unwrap();
    let not_a_dir = home.path().join("state-is-a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let out = bare_command(home.path(), &["trust"])
        .current_dir(&project)
        .env("XDG_STATE_HOME", &not_a_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&home.path().display().to_string(), "[HOME]");
    insta::assert_snapshot!(stderr, @r"
    The project configuration adds nothing beyond the project itself.
      x cannot update the approvals under [HOME]/state-is-a-file/stockade
      `-> Not a directory (os error 20)
    ");
}

/// A command that starts no sandbox lists no sandbox or launch flag in its help.
#[test]
fn help_of_a_command_without_a_sandbox_has_no_sandbox_flags() {
    let home = tempfile::tempdir().unwrap();
    let out = stockade(&["images", "--help"], home.path());
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout), @r"
    List stockade's images: tier, project, size, and whether they are in use or orphaned

    Usage: stockade images [OPTIONS]

    Options:
          --json          Print the list as JSON
      -v, --verbose...    Show more: -v lists every engine call and streams build output; -vv adds
                          internals
      -q, --quiet         Show only results and errors: no progress, no confirmations
          --color <WHEN>  When to use colors (NO_COLOR is honoured by `auto`) [default: auto] [possible
                          values: auto, always, never]
      -h, --help          Print help
      -V, --version       Print version
    ");
}
