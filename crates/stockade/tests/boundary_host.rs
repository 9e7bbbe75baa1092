//! The sandbox boundary against a hostile project tree, for what stockade decides on the host
//! (issue 9, classes 1, 6, 9 and 12): the `.git` file, project discovery, host subprocesses and
//! agent config dirs. Each test plays the attacker: the files are planted in the project (or
//! above it), stockade runs as a non-root user with stdin closed, and the test passes only when
//! the launch is refused (nothing ran), or the command ran as the user with no capabilities and
//! nothing outside the project changed on the host.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Env, HostUser, HostWatch, PRIVILEGES, assert_unprivileged, regex_escape};

fn user() -> HostUser {
    HostUser::ensure(1301, "stockade-t1301")
}

fn chown(path: &Path, user: &HostUser) {
    common::chown_recursive(path, user.uid, user.gid);
}

/// Run `stockade ARGS…` in `dir`, killed (and the test failed) after `limit`.
fn run_in(env: &Env, dir: &Path, args: &[&str], limit: Duration) -> Output {
    env.run_limited(dir, args, limit).output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Snapshot an error with the test's paths replaced (their length never varies).
fn assert_error_snapshot(env: &Env, name: &str, stderr: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&env.root.display().to_string()), "[ROOT]");
    settings.bind(|| insta::assert_snapshot!(name, stderr));
}

/// A launch that must be refused before anything starts: exit 1, the command never ran, no
/// container, the host unchanged.
#[track_caller]
fn assert_refused(env: &Env, watch: &HostWatch, out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "not refused\n--- stdout\n{}\n--- stderr\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("RAN"), "{}", text(&out.stdout));
    assert!(env.containers().is_empty());
    watch.assert_unchanged();
}

const MINUTE: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------------------------
// Class 1: a `.git` file's `gitdir:` must not become a mount of a host path.

#[test]
fn class1_gitdir_into_home_ssh_is_refused() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    let ssh = env.home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_rsa"), "PRIVATE KEY\n").unwrap();
    chown(&ssh, &user);
    env.write(".git", &format!("gitdir: {}\n", ssh.display()));
    let watch = HostWatch::new(&env);
    let out = run_in(
        &env,
        &env.project,
        &["exec", "--", "sh", "-c", "echo RAN; cat ~/.ssh/id_rsa"],
        LONG,
    );
    assert_refused(&env, &watch, &out);
    assert_error_snapshot(&env, "class1_gitdir_home_ssh", &text(&out.stderr));
    // --dry-run prints nothing of it either.
    let dry = run_in(
        &env,
        &env.project,
        &["exec", "--dry-run", "--", "true"],
        MINUTE,
    );
    assert_refused(&env, &watch, &dry);
}

#[test]
fn class1_variants_engine_socket_dir_fake_worktree_fifo_and_canary_are_refused() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    let watch = HostWatch::new(&env);
    let canary = watch.canary.display().to_string();
    // A fake worktree entry inside the project whose commondir leads to the canary, and whose
    // `gitdir` file claims this worktree.
    env.write(".fake/commondir", &format!("{canary}\n"));
    env.write(
        ".fake/gitdir",
        &format!("{}\n", env.project.join(".git").display()),
    );
    // The engine socket's dir, a path through /proc, the canary itself, the fake entry.
    for gitdir in ["/var/run", "/proc/1/root", &canary, ".fake"] {
        env.write(".git", &format!("gitdir: {gitdir}\n"));
        let out = run_in(
            &env,
            &env.project,
            &["exec", "--", "sh", "-c", "echo RAN"],
            LONG,
        );
        assert_refused(&env, &watch, &out);
        assert!(
            text(&out.stderr).contains("is not followed"),
            "{gitdir}: {}",
            text(&out.stderr)
        );
    }
    assert_error_snapshot(
        &env,
        "class1_gitdir_fake_worktree",
        &text(&run_in(&env, &env.project, &["exec", "--", "true"], LONG).stderr),
    );
    // A FIFO as `.git` is refused at once (never blocks the launch).
    std::fs::remove_file(env.project.join(".git")).unwrap();
    let status = Command::new("mkfifo")
        .arg(env.project.join(".git"))
        .status()
        .unwrap();
    assert!(status.success());
    chown(&env.project, &user);
    let out = run_in(
        &env,
        &env.project,
        &["exec", "--", "sh", "-c", "echo RAN"],
        MINUTE,
    );
    assert_refused(&env, &watch, &out);
    assert!(
        text(&out.stderr).contains("not a regular file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn class1_a_real_worktree_still_works_unprivileged() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    env.make_project_a_worktree();
    let watch = HostWatch::new(&env);
    let script = format!("git status | head -1; {PRIVILEGES}");
    let out = run_in(
        &env,
        &env.project,
        &["exec", "--", "sh", "-c", &script],
        LONG,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("On branch wt"),
        "{}",
        text(&out.stdout)
    );
    assert_unprivileged(&text(&out.stdout), user.uid);
    watch.assert_unchanged();
}

#[test]
fn class1_a_submodule_opened_on_its_own_still_works_unprivileged() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    let git = |dir: &Path, args: &[&str]| {
        let status = Command::new("git")
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(["-c", "protocol.file.allow=always", "-c", "safe.directory=*"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    let origin = env.root.join("lib-origin");
    std::fs::create_dir_all(&origin).unwrap();
    git(&origin, &["init", "-q", "-b", "main"]);
    std::fs::write(origin.join("lib.txt"), "lib\n").unwrap();
    git(&origin, &["add", "lib.txt"]);
    git(&origin, &["commit", "-q", "-m", "lib"]);
    git(&env.project, &["init", "-q", "-b", "main"]);
    git(
        &env.project,
        &[
            "submodule",
            "add",
            "-q",
            origin.to_str().unwrap(),
            "libs/lib",
        ],
    );
    chown(&env.project, &user);
    let sub = env.project.join("libs/lib");
    assert!(sub.join(".git").is_file(), "the submodule's .git is a file");
    let watch = HostWatch::new(&env);
    let script = format!("git log --oneline | head -1; {PRIVILEGES}");
    // The submodule is its own project: its git dir in the superproject is mounted.
    let out = run_in(&env, &sub, &["exec", "--", "sh", "-c", &script], LONG);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(" lib"), "{}", text(&out.stdout));
    assert_unprivileged(&text(&out.stdout), user.uid);
    watch.assert_unchanged();
}

// ---------------------------------------------------------------------------------------------
// Class 9: a project root in a directory of another user is never adopted.

#[test]
fn class9_another_users_git_and_config_above_are_not_adopted() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    // The environment's root (above the project) belongs to root: plant a repository and a
    // project configuration there that would mount the canary and forward the engine socket.
    std::fs::create_dir_all(env.root.join(".git")).unwrap();
    std::fs::create_dir_all(env.root.join(".stockade")).unwrap();
    std::fs::write(
        env.root.join(".stockade/config.toml"),
        "[sandbox]\ndocker_socket = true\nenv = [\"ADOPTED=1\"]\n",
    )
    .unwrap();
    let sub = env.project.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    chown(&env.project, &user);
    let watch = HostWatch::new(&env);
    let script = format!(
        "echo \"adopted=${{ADOPTED:-no}} pwd=$(pwd)\"; ls {}/.git 2>&1 | head -1; {PRIVILEGES}",
        env.root.display()
    );
    let out = run_in(&env, &sub, &["exec", "--", "sh", "-c", &script], LONG);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("adopted=no"), "{stdout}");
    assert!(
        stdout.contains("No such file"),
        "the root's .git is not mounted: {stdout}"
    );
    assert_unprivileged(&stdout, user.uid);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("was not adopted as the project"),
        "{stderr}"
    );
    assert!(stderr.contains("safe.directory"), "{stderr}");
    watch.assert_unchanged();
}

#[test]
fn class9_variant_a_foreign_git_inside_my_tree_and_a_foreign_stockade_dir() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    // My directory, but another user's `.git` in it (e.g. planted through a shared group dir).
    let sub = env.project.join("vendor/lib");
    std::fs::create_dir_all(&sub).unwrap();
    chown(&env.project, &user);
    std::fs::create_dir_all(env.project.join("vendor/.git")).unwrap(); // owned by root
    let watch = HostWatch::new(&env);
    let out = run_in(&env, &sub, &["exec", "--", "pwd"], LONG);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("vendor/.git was not adopted"),
        "{}",
        text(&out.stderr)
    );
    watch.assert_unchanged();

    // Another user's `.stockade` in the project root: refused, nothing runs.
    let other = env.root.join("theirs");
    std::fs::create_dir_all(other.join(".stockade")).unwrap();
    std::fs::create_dir_all(other.join(".git")).unwrap();
    chown(&other.join(".git"), &user);
    chown(&other, &user);
    Command::new("chown")
        .args(["-R", "0:0"])
        .arg(other.join(".stockade"))
        .status()
        .unwrap();
    let out = run_in(
        &env,
        &other,
        &["exec", "--", "sh", "-c", "echo RAN"],
        MINUTE,
    );
    assert_refused(&env, &watch, &out);
    assert_error_snapshot(&env, "class9_foreign_stockade", &text(&out.stderr));
}

// ---------------------------------------------------------------------------------------------
// Class 12: host subprocesses never read configuration from, or run code of, the project.

fn init_repo(env: &Env, user: &HostUser) {
    let status = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(&env.project)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    chown(&env.project, user);
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[test]
fn class12_git_identity_comes_from_the_global_config_and_dev_zero_includes_do_not_hang() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    init_repo(&env, &user);
    std::fs::write(
        env.home.join(".gitconfig"),
        "[user]\n\tname = Global User\n\temail = global@example.com\n",
    )
    .unwrap();
    chown(&env.home, &user);
    append(
        &env.project.join(".git/config"),
        "[user]\n\tname = Evil Project\n[include]\n\tpath = /dev/zero\n",
    );
    let watch = HostWatch::new(&env);
    let started = Instant::now();
    let script = format!("env | grep '^GIT_CONFIG_VALUE' | sort; {PRIVILEGES}");
    let out = run_in(
        &env,
        &env.project,
        &["exec", "--", "sh", "-c", &script],
        LONG,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("=Global User"), "{stdout}");
    assert!(stdout.contains("=global@example.com"), "{stdout}");
    assert!(!stdout.contains("Evil"), "{stdout}");
    assert_unprivileged(&stdout, user.uid);
    assert!(started.elapsed() < Duration::from_secs(300));
    watch.assert_unchanged();
}

#[test]
fn class12_variant_a_fifo_include_and_a_project_gitconfig_never_reach_the_host_git() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    init_repo(&env, &user);
    // No global identity at all; the project offers one, includes a FIFO (opening it blocks
    // forever) and sets hooks that would write the canary if anything ran them.
    let fifo = env.project.join("block");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let watch = HostWatch::new(&env);
    append(
        &env.project.join(".git/config"),
        &format!(
            "[user]\n\tname = Evil Project\n[include]\n\tpath = {}\n[core]\n\tfsmonitor = touch {}/fsmonitor-ran\n\thooksPath = {}\n",
            fifo.display(),
            watch.canary.display(),
            watch.canary.display()
        ),
    );
    chown(&env.project, &user);
    let script = format!("env | grep '^GIT_CONFIG' || echo no-identity; {PRIVILEGES}");
    let out = run_in(
        &env,
        &env.project,
        &["exec", "--", "sh", "-c", &script],
        MINUTE * 5,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("no-identity"), "{stdout}");
    assert_unprivileged(&stdout, user.uid);
    watch.assert_unchanged();
}

// ---------------------------------------------------------------------------------------------
// Class 6: what an agent writes in one project changes nothing in another, nor on the host;
// logins are shared.

/// A small agent from npm (`cross-env CMD…` runs CMD) with a config dir and a login file.
fn agent_config() -> String {
    format!(
        "{}\n[agents.envy]\ninstall = \"npm\"\npackage = \"cross-env\"\ncommand = \"cross-env\"\nversion = \"7.0.3\"\nconfig_dirs = [\".envy\"]\nlogin_files = [\".envy/token\"]\n",
        common::default_config(&common::base_image())
    )
}

fn project_b(env: &Env, user: &HostUser) -> PathBuf {
    let b = env.root.join("project-b");
    std::fs::create_dir_all(&b).unwrap();
    chown(&b, user);
    b
}

/// Run `script` through the agent (`cross-env sh FILE`: cross-env joins its arguments into one
/// shell line, so the script goes in a file of the project).
fn agent(env: &Env, dir: &Path, script: &str) -> String {
    let file = dir.join(".agent-script.sh");
    std::fs::write(&file, script).unwrap();
    if let Some(user) = &env.user {
        chown(&file, user);
    }
    let out = run_in(env, dir, &["envy", "sh", ".agent-script.sh"], LONG);
    assert_eq!(
        out.status.code(),
        Some(0),
        "envy {script}\n--- stdout\n{}\n--- stderr\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn class6_a_hook_written_in_project_a_reaches_neither_project_b_nor_the_host_but_the_login_does() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    env.write_global_config(&agent_config());
    // The user logged in on the host once.
    std::fs::create_dir_all(env.home.join(".envy")).unwrap();
    std::fs::write(env.home.join(".envy/token"), "host-token\n").unwrap();
    chown(&env.home, &user);
    let b = project_b(&env, &user);
    // Install the agent first (the install writes stockade's own state only).
    agent(&env, &env.project, "true");
    let watch = HostWatch::new(&env);

    // Project A: the login is there; the agent writes a hook, shell init and a new token.
    let a = agent(
        &env,
        &env.project,
        &format!(
            "cat ~/.envy/token; echo '{{\"hooks\":{{\"SessionStart\":\"touch /tmp/pwned\"}}}}' > ~/.envy/settings.json; \
             echo 'echo PWNED' >> ~/.bashrc; echo token-A > ~/.envy/token; {PRIVILEGES}"
        ),
    );
    assert!(a.contains("host-token"), "{a}");
    assert_unprivileged(&a, user.uid);

    // Project B: the token written in A, none of A's settings or shell init.
    let b_out = agent(
        &env,
        &b,
        &format!(
            "cat ~/.envy/token; cat ~/.envy/settings.json 2>/dev/null || echo no-settings; \
             cat ~/.bashrc 2>/dev/null || echo no-bashrc; {PRIVILEGES}"
        ),
    );
    assert!(b_out.contains("token-A"), "{b_out}");
    assert!(b_out.contains("no-settings"), "{b_out}");
    assert!(!b_out.contains("PWNED"), "{b_out}");
    assert!(!b_out.contains("SessionStart"), "{b_out}");
    assert_unprivileged(&b_out, user.uid);

    // The host's own files are untouched (its token included).
    assert!(!env.home.join(".envy/settings.json").exists());
    assert_eq!(
        std::fs::read_to_string(env.home.join(".envy/token")).unwrap(),
        "host-token\n"
    );
    watch.assert_unchanged();
}

#[test]
fn class6_variant_a_token_saved_by_rename_and_a_poisoned_store() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    env.write_global_config(&agent_config());
    let b = project_b(&env, &user);
    agent(&env, &env.project, "true");
    let watch = HostWatch::new(&env);

    // B logs in with a tool that writes its token by rename (replacing the link): the next start
    // in B moves it into the store, and A reads it.
    agent(
        &env,
        &b,
        "echo token-B > ~/.envy/token.new && mv ~/.envy/token.new ~/.envy/token",
    );
    agent(&env, &b, "test -L ~/.envy/token");
    let a = agent(&env, &env.project, "cat ~/.envy/token");
    assert!(a.contains("token-B"), "{a}");

    // A hostile agent in A turns the store's file into a link to B's shell init (or anything):
    // stockade drops it before the next launch, so B's writes through its login go nowhere else.
    let poisoned = agent(
        &env,
        &env.project,
        &format!(
            "for f in /run/stockade/logins/*; do ln -sfn {home}/.bashrc \"$f\"; done; mkdir -p /run/stockade/logins/dir; ls -A /run/stockade/logins",
            home = env.home.display()
        ),
    );
    assert!(poisoned.contains("token"), "{poisoned}");
    let b_out = agent(
        &env,
        &b,
        "echo token-new > ~/.envy/token; cat ~/.bashrc 2>/dev/null || echo no-bashrc",
    );
    assert!(b_out.contains("no-bashrc"), "{b_out}");
    let store = env.home.join(".local/state/stockade/logins/envy");
    let meta = std::fs::symlink_metadata(store.join(".envy%2Ftoken")).unwrap();
    assert!(meta.is_file(), "the store holds a regular file again");
    let left: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, [".envy%2Ftoken"], "nothing else stays in the store");
    watch.assert_unchanged();
}

#[test]
fn class6_variant_a_project_cannot_share_files_or_the_hosts_config() {
    let user = user();
    let env = Env::new().run_as(user.clone());
    env.write_global_config(&agent_config());
    env.write(
        ".stockade/config.toml",
        "[agents.envy]\nlogin_files = [\".bashrc\"]\nshare_config = true\n",
    );
    let watch = HostWatch::new(&env);
    let out = run_in(&env, &env.project, &["envy", "sh", "-c", "echo RAN"], LONG);
    assert_refused(&env, &watch, &out);
    assert_error_snapshot(&env, "class6_project_login_files", &text(&out.stderr));
}

/// A PATH the test user can use (the test process's may start with root-only dirs).
const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[test]
fn class12_the_host_version_query_never_reads_the_projects_npmrc() {
    let user = user();
    let env = Env::new().run_as(user.clone()).env("PATH", USER_PATH);
    // An agent whose latest version nobody can find: the helper fails, the host is asked (with
    // python3 and the registry's JSON, as in the helper: the foundation has no npm). The
    // project's npm config is there to be ignored.
    env.write_global_config(&format!(
        "{}\n[agents.ghost]\ninstall = \"npm\"\npackage = \"stockade-test-no-such-package-9f3a\"\n",
        common::default_config(&common::base_image())
    ));
    let watch = HostWatch::new(&env);
    let canary = watch.canary.display().to_string();
    // The project's npm config would send npm's cache and logs into the canary, and its
    // registry nowhere (a blackhole address: the old fallback took minutes).
    env.write(
        ".npmrc",
        &format!(
            "cache={canary}/npm-cache\nlogs-dir={canary}/npm-logs\nregistry=http://10.255.255.1/\n"
        ),
    );
    env.write(
        "package.json",
        "{\"name\": \"victim\", \"version\": \"1.0.0\"}\n",
    );
    let started = Instant::now();
    let out = run_in(&env, &env.project, &["ghost", "--version"], LONG);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("asking the host's python3 (at most 15 s)"),
        "the fallback is announced: {stderr}"
    );
    assert!(
        stderr.contains("cannot find out the latest version of ghost"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(240),
        "{:?}",
        started.elapsed()
    );
    assert!(env.containers().is_empty());
    // npm's own cache and logs (the user's tool cache) are the one thing allowed in HOME.
    let _ = std::fs::remove_dir_all(env.home.join(".npm"));
    watch.assert_unchanged();
}

#[test]
fn class12_variant_the_host_python_never_imports_the_projects_modules() {
    let user = user();
    let env = Env::new().run_as(user.clone()).env("PATH", USER_PATH);
    env.write_global_config(&format!(
        "{}\n[agents.pyghost]\ninstall = \"pypi\"\npackage = \"stockade-test-no-such-package-9f3a\"\n",
        common::default_config(&common::base_image())
    ));
    let watch = HostWatch::new(&env);
    // `python3 -c 'import json…'` run in the project would import this module.
    env.write(
        "json.py",
        &format!(
            "open({:?}, 'w').write('ran')\n",
            watch.canary.join("python-ran").display().to_string()
        ),
    );
    env.write(
        "urllib/__init__.py",
        "raise SystemExit('project code ran')\n",
    );
    let out = run_in(&env, &env.project, &["pyghost", "--version"], LONG);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("asking the host's python3 (at most 15 s)"),
        "{stderr}"
    );
    assert!(!stderr.contains("project code ran"), "{stderr}");
    assert!(!watch.canary.join("python-ran").exists());
    assert!(env.containers().is_empty());
    watch.assert_unchanged();
}
