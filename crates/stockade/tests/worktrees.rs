//! Parallel agents on worktrees (issue 11): `--worktree NAME` makes (or reuses) a git worktree
//! on branch `stockade/NAME` beside the repository and runs the sandbox there; `worktree list`
//! and `worktree rm` manage them. Git never runs on the host: a hostile repository's hooks,
//! fsmonitor and filters run only inside stockade's helper (docs/security.md, class 12).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Env, HostUser, docker, docker_stdout, snapshot_settings};

/// The test's own git on the host (observing, or arming a fixture): never stockade's.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        // The repository may belong to the test's user.
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The project as a git repository with one commit of `files`.
fn repository(env: &Env, files: &[(&str, &str)]) {
    git(&env.project, &["init", "-q", "-b", "main"]);
    env.write("README", "hi\n");
    for (rel, text) in files {
        env.write(rel, text);
    }
    git(&env.project, &["add", "-A"]);
    git(&env.project, &["commit", "-q", "-m", "first"]);
}

/// A worktree (branch `name`) that the test's own git makes at `<root>/<name>`.
fn host_worktree(env: &Env, name: &str) -> PathBuf {
    let path = env.root.join(name);
    git(
        &env.project,
        &["worktree", "add", "-q", "-b", name, path.to_str().unwrap()],
    );
    path
}

/// Where the worktree `name` of the project goes by default.
fn worktree(env: &Env, name: &str) -> PathBuf {
    env.root.join("project.worktrees").join(name)
}

/// Commit on the sandbox's branch, once the other sandbox runs too: each marks that it started
/// in the repository's common git dir (both mount it) and waits up to 60 s for the other's mark.
fn commit_in_sandbox(name: &str, other: &str) -> String {
    format!(
        "common=$(git rev-parse --git-common-dir) && touch \"$common/started-{name}\" && \
         i=0 && while [ ! -e \"$common/started-{other}\" ]; do \
           i=$((i+1)); [ $i -gt 600 ] && echo '{other} never ran alongside' >&2 && exit 9; sleep 0.1; \
         done && \
         echo {name} > {name}.txt && git add {name}.txt && \
         git -c user.name={name} -c user.email={name}@example.com commit -q -m 'from {name}' && \
         git rev-parse --abbrev-ref HEAD"
    )
}

fn snapshot(env: &Env, name: &str, text: &str) {
    snapshot_settings(env).bind(|| insta::assert_snapshot!(name, text));
}

/// A non-root host user in the docker group, who owns the directory beside the repository.
fn user_owning_the_parent(env: Env) -> Env {
    let env = env.run_as(HostUser::ensure(4321, "stockade-wt"));
    let user = env.user.clone().unwrap();
    std::os::unix::fs::chown(&env.root, Some(user.uid), Some(user.gid)).unwrap();
    env
}

#[test]
fn two_agents_on_two_worktrees_at_once_each_commit_on_their_branch() {
    let env = user_owning_the_parent(Env::new());
    repository(&env, &[]);
    env.give_project_to_user();
    // Both start before either ends.
    let spawn = |name: &str, other: &str| {
        let script = commit_in_sandbox(name, other);
        env.command(&["exec", "--worktree", name, "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stockade")
    };
    let (a, b) = (spawn("a", "b"), spawn("b", "a"));
    for (name, child) in [("a", a), ("b", b)] {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The sandbox ran in the worktree, on its branch.
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("stockade/{name}\n")
        );
    }
    for name in ["a", "b"] {
        let log = git(
            &env.project,
            &["log", "--format=%s", &format!("stockade/{name}")],
        );
        assert_eq!(log, format!("from {name}\nfirst\n"), "stockade/{name}");
        assert!(worktree(&env, name).join(format!("{name}.txt")).is_file());
    }
    // The main work tree is untouched.
    assert_eq!(git(&env.project, &["status", "--porcelain"]), "");

    // A reused worktree keeps its commit.
    let run = env.run(&["exec", "--worktree", "a", "--", "git", "log", "--format=%s"]);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run.stdout(), "from a\nfirst\n");

    // `a` gets uncommitted changes; `b` stays clean.
    std::fs::write(worktree(&env, "a").join("a.txt"), "changed\n").unwrap();
    std::fs::write(worktree(&env, "a").join("new.txt"), "new\n").unwrap();
    common::chown_recursive(&worktree(&env, "a"), 4321, env.user.as_ref().unwrap().gid);
    let list = env.run(&["worktree", "list"]);
    assert!(list.ok(), "{}", list.stderr());
    snapshot(&env, "list", &list.stdout());
    assert_eq!(list.stderr(), "");
    let json = env.run(&["worktree", "list", "--json"]);
    assert!(json.ok(), "{}", json.stderr());
    snapshot(&env, "list_json", &json.stdout());

    // `worktree rm` refuses the dirty one, with what is uncommitted and how to go on.
    let refused = env.run(&["worktree", "rm", "a"]);
    refused.expect_code(1);
    assert_eq!(refused.stdout(), "");
    snapshot(&env, "rm_dirty", &refused.stderr());
    assert!(worktree(&env, "a").join("new.txt").is_file());

    // The clean one goes; its branch stays.
    let removed = env.run(&["worktree", "rm", "b"]);
    assert!(removed.ok(), "{}", removed.stderr());
    snapshot(&env, "rm_clean", &removed.stderr());
    assert!(!worktree(&env, "b").exists());
    assert_eq!(
        git(&env.project, &["log", "--format=%s", "stockade/b"]),
        "from b\nfirst\n"
    );

    // --force discards the changes.
    let forced = env.run(&["worktree", "rm", "a", "--force"]);
    assert!(forced.ok(), "{}", forced.stderr());
    assert!(!worktree(&env, "a").exists());
    let empty = env.run(&["worktree", "list"]);
    assert!(empty.ok(), "{}", empty.stderr());
    assert_eq!(empty.stdout(), "");
    snapshot(&env, "list_empty", &empty.stderr());
    assert_eq!(
        git(&env.project, &["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count(),
        1
    );
}

#[test]
fn a_detached_sandbox_in_a_worktree_is_labelled_and_blocks_rm() {
    let env = Env::new();
    repository(&env, &[]);
    let run = env.run(&["exec", "-d", "--worktree", "bg", "--", "sleep", "300"]);
    assert!(run.ok(), "{}", run.stderr());
    // Named after its worktree, so N agents on N branches are told apart.
    assert_eq!(run.stdout(), "bg\n");
    let path = worktree(&env, "bg");
    let filter = format!("label=io.stockade.project={}", path.display());
    let id = docker_stdout(&["ps", "-q", "--filter", &filter]);
    assert!(!id.is_empty(), "no sandbox runs in the worktree");
    let labels = docker_stdout(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"io.stockade.worktree\"}} {{index .Config.Labels \"io.stockade.branch\"}}",
        &id,
    ]);
    let result = (|| {
        assert_eq!(labels, "bg stockade/bg");
        // The repository's `ps` shows it with its branch; `exec --in` finds it by name.
        let ps = env.run(&["ps", "--json"]);
        assert!(ps.ok(), "{}", ps.stderr());
        let rows: serde_json::Value = serde_json::from_str(&ps.stdout()).unwrap();
        assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
        assert_eq!(rows[0]["name"], "bg");
        assert_eq!(rows[0]["worktree"], "bg");
        assert_eq!(rows[0]["branch"], "stockade/bg");
        assert_eq!(rows[0]["project"], path.display().to_string());
        let pwd = env.run(&[
            "exec",
            "--in",
            "bg",
            "--",
            "git",
            "branch",
            "--show-current",
        ]);
        assert!(pwd.ok(), "{}", pwd.stderr());
        assert_eq!(pwd.stdout(), "stockade/bg\n");
        let list = env.run(&["worktree", "list"]);
        assert!(list.ok(), "{}", list.stderr());
        snapshot(&env, "list_running", &list.stdout());
        let busy = env.run(&["worktree", "rm", "bg", "--force"]);
        busy.expect_code(1);
        snapshot(&env, "rm_busy", &busy.stderr());
        assert!(path.is_dir());
    })
    .let_unwind();
    let _ = docker(&["rm", "-f", &id]);
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let removed = env.run(&["worktree", "rm", "bg"]);
    assert!(removed.ok(), "{}", removed.stderr());
}

/// Run a closure, catching a panic so cleanup can run before it is re-raised.
trait LetUnwind {
    fn let_unwind(self) -> std::thread::Result<()>;
}

impl<F: FnOnce()> LetUnwind for F {
    fn let_unwind(self) -> std::thread::Result<()> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(self))
    }
}

#[test]
fn invalid_worktree_names_are_refused_before_anything_runs() {
    let env = Env::new();
    repository(&env, &[]);
    for name in ["../x", "a/b", "-x", "x.lock"] {
        let run = env.run(&["exec", &format!("--worktree={name}"), "--", "true"]);
        run.expect_code(1);
        assert!(
            run.stderr()
                .contains(&format!("invalid worktree name {name:?}")),
            "{name}: {}",
            run.stderr()
        );
    }
    assert!(!env.root.join("project.worktrees").exists());
    let run = env.run(&["exec", "--worktree", "a/b", "--", "true"]);
    snapshot(&env, "invalid_name", &run.stderr());
    // A name stockade did not make.
    let run = env.run(&["worktree", "rm", "nope"]);
    run.expect_code(1);
    snapshot(&env, "rm_unknown", &run.stderr());
}

#[test]
fn outside_a_git_repository_there_is_no_worktree() {
    let env = Env::new();
    let run = env.run(&["exec", "--worktree", "a", "--", "true"]);
    run.expect_code(1);
    snapshot(&env, "not_a_repository", &run.stderr());
    let run = env.run(&["worktree", "list", "--json"]);
    run.expect_code(1);
    snapshot(&env, "not_a_repository_json", &run.stderr());
    assert_eq!(run.stdout(), "");
}

#[test]
fn the_worktrees_dir_comes_from_the_global_config_only() {
    let env = Env::new();
    // Named through a link: the worktree is made (and found again) at the real path.
    let dir = env.root.join("elsewhere");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&dir, env.root.join("link")).unwrap();
    let global = std::fs::read_to_string(env.config_dir().join("config.toml")).unwrap();
    env.write_global_config(&format!(
        "{global}\n[sandbox]\nworktrees_dir = \"{}\"\n",
        env.root.join("link").display()
    ));
    repository(&env, &[]);
    for _ in 0..2 {
        let run = env.run(&["exec", "--worktree", "w", "--", "pwd"]);
        assert!(run.ok(), "{}", run.stderr());
        assert_eq!(
            run.stdout(),
            format!("{}\n", dir.join("project/w").display())
        );
    }
    // A project may not move them.
    env.write(
        ".stockade/config.toml",
        &format!("[sandbox]\nworktrees_dir = \"{}\"\n", env.root.display()),
    );
    let run = env.run(&["exec", "--worktree", "w", "--", "pwd"]);
    run.expect_code(1);
    snapshot(&env, "project_worktrees_dir", &run.stderr());
}

/// A project configuration that needs approval (it passes a host variable through).
const NEEDS_APPROVAL: &str = "[sandbox]\nenv = [\"WT_TEST_VAR\"]\n";

#[test]
fn a_worktree_shares_the_main_approval_while_its_stockade_is_the_same() {
    let env = Env::new().env("WT_TEST_VAR", "shared");
    repository(&env, &[(".stockade/config.toml", NEEDS_APPROVAL)]);
    let trust = env.run(&["trust"]);
    assert!(trust.ok(), "{}", trust.stderr());
    // No terminal, no --trust: it runs only because the main project's approval is shared.
    let run = env.run(&[
        "exec",
        "--worktree",
        "s",
        "--",
        "sh",
        "-c",
        "echo $WT_TEST_VAR",
    ]);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run.stdout(), "shared\n");
    // Detached too.
    let run = env.run(&["exec", "-d", "--worktree", "s", "--", "true"]);
    assert!(run.ok(), "{}", run.stderr());
    let filter = format!(
        "label=io.stockade.project={}",
        worktree(&env, "s").display()
    );
    for id in docker_stdout(&["ps", "-aq", "--filter", &filter]).lines() {
        let _ = docker(&["rm", "-f", id]);
    }

    // The agent in the worktree changes its .stockade/: that needs its own approval.
    let changed = worktree(&env, "s").join(".stockade/config.toml");
    std::fs::write(
        &changed,
        format!("{NEEDS_APPROVAL}mounts = [\"/etc/hostname:/wt-host:ro\"]\n"),
    )
    .unwrap();
    let refused = env.run(&["exec", "--worktree", "s", "--", "true"]);
    refused.expect_code(1);
    snapshot(&env, "changed_needs_approval", &refused.stderr());

    // Approved in the worktree, it runs; the main project's approval is unchanged.
    let mut trust = env.command(&["trust"]);
    let out = trust
        .current_dir(worktree(&env, "s"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = env.run(&["exec", "--worktree", "s", "--", "cat", "/wt-host"]);
    assert!(run.ok(), "{}", run.stderr());
    let run = env.run(&["exec", "--", "true"]);
    assert!(run.ok(), "{}", run.stderr());

    // A worktree that is not stockade's shares nothing.
    let other = host_worktree(&env, "other");
    let mut exec = env.command(&["exec", "--", "true"]);
    let out = exec
        .current_dir(&other)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not approved"));
}

/// A canary a hostile repository's code writes on whatever host runs it.
fn canaries(env: &Env) -> Vec<String> {
    ["canary-hook", "canary-fsmonitor", "canary-smudge"]
        .iter()
        .filter(|c| env.root.join(c).exists())
        .map(|c| (*c).to_owned())
        .collect()
}

#[test]
fn hostile_repository_runs_nothing_on_the_host() {
    let env = Env::new();
    let root = env.root.display().to_string();
    repository(
        &env,
        &[
            (".gitattributes", "*.txt filter=evil\n"),
            ("data.txt", "data\n"),
        ],
    );
    // Armed after the commit: the agent writes these in the repository's .git.
    let dot_git = env.project.join(".git");
    let script = |name: &str, canary: &str| {
        let path = dot_git.join(name);
        std::fs::write(&path, format!("#!/bin/sh\ntouch {root}/{canary}\ncat\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        path
    };
    script("hooks/post-checkout", "canary-hook");
    let fsmonitor = script("fsmonitor.sh", "canary-fsmonitor");
    let smudge = script("smudge.sh", "canary-smudge");
    let mut config = std::fs::read_to_string(dot_git.join("config")).unwrap();
    config.push_str(&format!(
        "[core]\n\tfsmonitor = {}\n[filter \"evil\"]\n\tsmudge = {}\n\tclean = cat\n",
        fsmonitor.display(),
        smudge.display()
    ));
    std::fs::write(dot_git.join("config"), config).unwrap();

    let run = env.run(&["exec", "--worktree", "x", "--", "cat", "data.txt"]);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run.stdout(), "data\n");
    std::fs::write(worktree(&env, "x").join("data.txt"), "dirty\n").unwrap();
    let list = env.run(&["worktree", "list"]);
    assert!(list.ok(), "{}", list.stderr());
    let refused = env.run(&["worktree", "rm", "x"]);
    refused.expect_code(1);
    let removed = env.run(&["worktree", "rm", "x", "--force"]);
    assert!(removed.ok(), "{}", removed.stderr());
    assert_eq!(
        canaries(&env),
        Vec::<String>::new(),
        "code of the repository ran on the host"
    );

    // The control: host git on the same repository runs all three.
    let control = host_worktree(&env, "control");
    git(&control, &["status", "--porcelain"]);
    assert_eq!(
        canaries(&env),
        ["canary-hook", "canary-fsmonitor", "canary-smudge"],
        "the fixture is not armed"
    );
}

/// What git says when it fails in the helper reaches the user (here: the repository's config
/// includes /dev/zero, which git refuses; the helper is memory-limited either way).
#[test]
fn a_git_failure_in_the_helper_says_what_git_said() {
    let env = Env::new();
    repository(&env, &[]);
    let config = env.project.join(".git/config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[include]\n\tpath = /dev/zero\n");
    std::fs::write(&config, text).unwrap();
    let run = env.run_limited(
        &env.project,
        &["exec", "--worktree", "z", "--", "true"],
        std::time::Duration::from_secs(120),
    );
    run.expect_code(1);
    snapshot(&env, "git_failed", &run.stderr());
}

/// What git runs in its helper (the repository's hooks) can write in the worktrees directory: a
/// link put in place of a worktree never moves a launch into the directory it names.
#[test]
fn a_link_in_place_of_a_worktree_is_refused() {
    let env = Env::new();
    repository(&env, &[]);
    let run = env.run(&["exec", "--worktree", "a", "--", "true"]);
    assert!(run.ok(), "{}", run.stderr());
    // Elsewhere on the host: a directory that looks like a worktree.
    let victim = env.root.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join(".git"), "gitdir: /nowhere\n").unwrap();
    let path = worktree(&env, "a");
    std::fs::remove_dir_all(&path).unwrap();
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let run = env.run(&["exec", "--worktree", "a", "--", "true"]);
    run.expect_code(1);
    snapshot(&env, "link_refused", &run.stderr());
    // A new name whose place holds a link.
    std::os::unix::fs::symlink(&victim, worktree(&env, "b")).unwrap();
    let run = env.run(&["exec", "--worktree", "b", "--", "true"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("is not a directory of its own"),
        "{}",
        run.stderr()
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}
