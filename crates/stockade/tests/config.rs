//! `stockade config` without an engine: show (snapshots of the merged layers and their
//! sources), init, path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::path::{Path, PathBuf};

use common::{bare_command, regex_escape};

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    project: PathBuf,
}

fn setup(global: &str, project: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let home = root.join("home");
    let project_dir = root.join("project");
    std::fs::create_dir_all(home.join(".config/stockade")).unwrap();
    std::fs::create_dir_all(project_dir.join(".stockade")).unwrap();
    std::fs::create_dir_all(project_dir.join(".git")).unwrap();
    std::fs::create_dir_all(home.join("src/lib")).unwrap();
    std::fs::write(home.join(".config/stockade/config.toml"), global).unwrap();
    std::fs::write(project_dir.join(".stockade/config.toml"), project).unwrap();
    Setup {
        _dir: dir,
        root,
        home,
        project: project_dir,
    }
}

fn stockade(s: &Setup, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = bare_command(&s.home, args);
    cmd.current_dir(&s.project);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn snapshot_settings(root: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&root.display().to_string()), "[ROOT]");
    // Alignment depends on the temporary path's length.
    settings.add_filter(r" +#", " #");
    settings
}

const GLOBAL: &str = "[image]\nfrom = \"mirror/debian:12\"\n\n[sandbox]\nenv = [\"GITHUB_TOKEN\", \"EDITOR\"]\nmemory = \"2g\"\nmounts = [\"~/src/lib:/lib-src:ro\"]\n\n[tools]\nversion_cache_hours = 6\n\n[agents.aider]\ninstall = \"pypi\"\npackage = \"aider-chat\"\n";
const PROJECT: &str = "[sandbox]\nenv = [\"EDITOR\", \"RUST_LOG=debug\"]\ncpus = 2\nnetwork = \"none\"\n\n[secrets]\nallowlist = [\"fixtures/*.pem\"]\n\n[agents.aider]\nversion = \"0.86.1\"\n";

#[test]
fn show_sources_over_global_project_env_and_flags() {
    let s = setup(GLOBAL, PROJECT);
    let (code, stdout, stderr) = stockade(
        &s,
        &[
            "config",
            "show",
            "--sources",
            "--memory",
            "3g",
            "-p",
            "8080:80",
            "-e",
            "TERM_PROGRAM",
        ],
        &[
            ("STOCKADE_SANDBOX_PIDS_LIMIT", "512"),
            ("STOCKADE_SANDBOX_ENV", "LANG,EDITOR"),
            ("STOCKADE_NAMESPACE", "ignored"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    snapshot_settings(&s.root).bind(|| insta::assert_snapshot!(stdout));
}

#[test]
fn show_without_sources_and_extends_false() {
    // Without the global file, the project describes aider in full (a custom agent needs
    // `install` and `package`).
    let project = PROJECT.replace(
        "[agents.aider]\n",
        "[agents.aider]\ninstall = \"pypi\"\npackage = \"aider-chat\"\n",
    );
    let s = setup(GLOBAL, &format!("extends = false\n{project}"));
    let (code, stdout, stderr) = stockade(&s, &["config", "show"], &[]);
    assert_eq!(code, 0, "{stderr}");
    snapshot_settings(&s.root).bind(|| insta::assert_snapshot!(stdout));
}

#[test]
fn show_json_with_sources() {
    let s = setup(GLOBAL, PROJECT);
    let (code, stdout, stderr) = stockade(
        &s,
        &[
            "config",
            "show",
            "--json",
            "--sources",
            "--sudo",
            "--ssh-agent",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["config"]["sandbox"]["memory"], 2u64 << 30);
    assert_eq!(json["config"]["sandbox"]["sudo"], true);
    assert_eq!(json["config"]["sandbox"]["ssh_agent"], true);
    assert_eq!(
        json["sources"]["sandbox.ssh_agent"],
        serde_json::json!([{"kind": "flag", "flag": "--ssh-agent"}])
    );
    assert_eq!(
        json["sources"]["sandbox.sudo"][0],
        serde_json::json!({"kind": "flag", "flag": "--sudo"})
    );
    assert_eq!(json["sources"]["sandbox.cpus"][0]["line"], 3);
    assert!(
        !stdout.contains("debug"),
        "literal values are not printed: {stdout}"
    );
}

#[test]
fn init_writes_a_valid_commented_file_and_path_finds_it() {
    let s = setup("", "");
    std::fs::remove_file(s.project.join(".stockade/config.toml")).unwrap();
    let (code, stdout, stderr) = stockade(&s, &["config", "init"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        s.project
            .join(".stockade/config.toml")
            .display()
            .to_string()
    );
    let (code, _, stderr) = stockade(&s, &["config", "init"], &[]);
    assert_eq!(code, 1, "refuses to overwrite");
    assert!(stderr.contains("--force"));
    let (code, _, _) = stockade(&s, &["config", "init", "--global", "--force"], &[]);
    assert_eq!(code, 0);
    let (code, stdout, _) = stockade(&s, &["config", "path"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("(found)"), "{stdout}");
    // The starter files are valid as written.
    let (code, _, stderr) = stockade(&s, &["config", "show"], &[]);
    assert_eq!(code, 0, "{stderr}");
}

/// `config show` over these files fails: exit 1, nothing on stdout, and stderr as a whole is
/// the snapshot `name`.
fn show_errors(name: &str, files: [&str; 2], args: &[&str], vars: &[(&str, &str)]) -> String {
    let s = setup(files[0], files[1]);
    let mut all = vec!["config", "show"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = stockade(&s, &all, vars);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(stdout, "");
    snapshot_settings(&s.root).bind(|| insta::assert_snapshot!(name, stderr));
    stderr
}

#[test]
fn errors_of_every_file_variable_and_flag_come_at_once() {
    show_errors(
        "errors_of_every_file_variable_and_flag_come_at_once",
        [
            "[image]\nform = \"mirror/debian:12\"\n\n[sandbox]\nmemory = true\npids_limit = \"24\"\n\n[tools]\nversion_cache_hours = \"24\"\n",
            "[sandbx]\nsudo = true\n\n[sandbox]\ncpus = \"lots\"\n\n[agents.aider]\ninstall = \"pypi\"\npakage = \"aider-chat\"\n",
        ],
        &["--network", "host"],
        &[("STOCKADE_SANDBOX_MEMROY", "2g")],
    );
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_never_coerced() {
    show_errors(
        "a_value_of_the_wrong_type_is_an_error_never_coerced",
        [
            "",
            "[sandbox]\nsudo = \"yes\"\nread_only_root = \"no\"\npids_limit = \"512\"\n",
        ],
        &[],
        &[("STOCKADE_SECRETS_SCAN", "no")],
    );
}

#[test]
fn an_unknown_key_or_section_gets_a_did_you_mean() {
    show_errors(
        "an_unknown_key_or_section_gets_a_did_you_mean",
        ["[sandbox]\nmemroy = \"2g\"\n\n[secret]\nscan = true\n", ""],
        &[],
        &[],
    );
}

#[test]
fn tools_and_agents_errors_come_with_the_sandbox_ones() {
    let stderr = show_errors(
        "tools_and_agents_errors_come_with_the_sandbox_ones",
        [
            "[sandbox]\nsudo = 1\nnetwork = \"host\"\n\n[tools]\nversion_cache_hours = -1\ncache = 2\n\n[agents.moo]\ninstall = \"cargo\"\nversion = 2\nskip_permissions = \"no\"\nargs = [\"--x\", 3]\n\n[agents.cow]\ncomand = \"cowsay\"\n\n[agents.claud]\nversion = \"2.1.0\"\n",
            "",
        ],
        &[],
        &[],
    );
    assert!(!stderr.contains("invalid type"), "{stderr}");
}

#[test]
fn show_json_follows_the_toml_layout() {
    let s = setup(GLOBAL, PROJECT);
    let (code, stdout, stderr) = stockade(&s, &["config", "show", "--json"], &[]);
    assert_eq!(code, 0, "{stderr}");
    snapshot_settings(&s.root).bind(|| insta::assert_snapshot!(stdout));
}

#[test]
fn ssh_agent_is_a_flag_layer_with_a_source() {
    let s = setup("", "");
    let (code, stdout, stderr) = stockade(
        &s,
        &["config", "show", "--sources", "--ssh-agent", "--sudo"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ssh_agent") || l.starts_with("sudo"))
        .collect();
    assert_eq!(
        lines,
        [
            "sudo = true                                  # flag --sudo",
            "ssh_agent = true                             # flag --ssh-agent",
        ]
    );
    // Before a command that launches nothing, it is a usage error like the other sandbox flags.
    let (code, _, stderr) = stockade(&s, &["--ssh-agent", "config", "path"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--ssh-agent applies to `exec`"), "{stderr}");
}

#[test]
fn the_old_network_key_disagreeing_with_egress_in_one_file_is_an_error_naming_both() {
    // In one file: the error is at the old name, and names the other place.
    show_errors(
        "network_alias_disagrees_in_one_file",
        [
            "[sandbox]\nnetwork = \"bridge\"\n\n[network]\negress = \"allowlist\"\n",
            "",
        ],
        &[],
        &[],
    );
}

#[test]
fn across_layers_the_later_of_the_network_and_egress_keys_wins() {
    let egress = |global: &str, project: &str, args: &[&str]| {
        let s = setup(global, project);
        let mut all = vec!["config", "show", "--json"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = stockade(&s, &all, &[]);
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        json["network"]["egress"].as_str().unwrap().to_owned()
    };
    // A flag with the old name over a file with the new one.
    assert_eq!(
        egress("[network]\negress = \"open\"\n", "", &["--network", "none"]),
        "none"
    );
    // A project file with the old name over the global file with the new one.
    assert_eq!(
        egress(
            "[network]\negress = \"allowlist\"\n",
            "[sandbox]\nnetwork = \"bridge\"\n",
            &[]
        ),
        "open"
    );
}

#[test]
fn the_old_network_key_sets_egress_and_agreeing_is_fine() {
    let s = setup("[sandbox]\nnetwork = \"none\"\n", "");
    let (code, stdout, stderr) = stockade(&s, &["config", "show", "--json"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["network"]["egress"], "none");
    let (code, stdout, stderr) = stockade(
        &s,
        &["config", "show", "--json", "--egress", "none"],
        &[("STOCKADE_SANDBOX_NETWORK", "none")],
    );
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["network"]["egress"], "none");
    let s = setup("[sandbox]\nnetwork = \"bridge\"\n", "");
    let (code, stdout, stderr) = stockade(&s, &["config", "show", "--json"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["network"]["egress"], "open");
}

#[test]
fn bad_egress_entries_presets_and_modes_are_errors_at_their_place() {
    show_errors(
        "bad_egress_entries",
        [
            "[network]\negress = \"closed\"\nallow = [\"ok.example.com\", \"bad host\", \"*.com\", \"x.example.com:99999\", \"!\"]\npresets = [\"packages\", \"pakages\", \"!nope\"]\n",
            "[network]\nallow_private = [\"nexus.corp.example\"]\n",
        ],
        &[],
        &[("STOCKADE_NETWORK_ALLOW", "a.example.com, -bad-")],
    );
}

#[test]
fn show_prints_the_network_section_with_the_default_presets_first() {
    let s = setup(
        "[network]\npresets = [\"!git-hosts\"]\nallow_private = [\"nexus.corp.example\"]\n",
        "[network]\nallow = [\"api.example.com\", \"!registry.npmjs.org\"]\n",
    );
    let (code, stdout, stderr) = stockade(
        &s,
        &["config", "show", "--sources", "--egress", "none"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let start = stdout.find("[network]").unwrap();
    let section = &stdout[start
        ..stdout[start..]
            .find("\n\n")
            .map_or(stdout.len(), |e| start + e)];
    snapshot_settings(&s.root).bind(|| insta::assert_snapshot!(section));
}
