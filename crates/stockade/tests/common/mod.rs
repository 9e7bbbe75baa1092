//! The real-engine test harness: runs the real `stockade` binary with an isolated HOME and XDG
//! directories, against the real engine, and removes what it created.
//!
//! - Engine tests fail (never skip) when no engine answers: `scripts/test` starts one.
//! - Every test gets its own project directory; its containers carry `io.stockade.project=<dir>`.
//! - All tests share one foundation image (namespace `stockade-test`), built once per run from the
//!   offline base image (`STOCKADE_TEST_BASE_IMAGE`) with the host's CA bundle trusted. Tests that
//!   change the foundation use a namespace of their own, removed afterwards.

// A harness failure is a test failure: panicking with a message is the point here.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod tmux;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The namespace of the shared foundation; `STOCKADE_TEST_NAMESPACE` overrides it, so two
/// checkouts with different embedded assets can run their suites on one engine.
pub fn shared_namespace() -> String {
    std::env::var("STOCKADE_TEST_NAMESPACE").unwrap_or_else(|_| "stockade-test".to_owned())
}
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The binary under test: Cargo's, or `STOCKADE_TEST_BIN` (a copy of it taken right after the
/// build, when several checkouts share one target directory and another build may replace
/// Cargo's while the tests run).
pub fn bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("STOCKADE_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_stockade").to_owned())
    })
}

/// `stockade ARGS…` in `home` with nothing of the caller's environment but PATH: for tests
/// that need no engine setup (or a deliberately broken one).
pub fn bare_command(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

pub fn base_image() -> String {
    std::env::var("STOCKADE_TEST_BASE_IMAGE")
        .unwrap_or_else(|_| "stockade-test/debian:bookworm-minbase".to_owned())
}

/// Panics (fails the test) unless an engine answers and the offline base image exists.
pub fn require_engine() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            info.status.success(),
            "no container engine answers (`docker info` failed: {}). Engine tests need one: run scripts/test",
            String::from_utf8_lossy(&info.stderr).trim()
        );
        let base = docker(&["image", "inspect", "--format", "{{.Id}}", &base_image()]);
        assert!(
            base.status.success(),
            "the offline base image {} is missing: run scripts/test (it builds it)",
            base_image()
        );
    });
}

/// Whether the engine under test is Podman (its Docker-compatible socket, as `scripts/test`'s
/// Podman pass sets `DOCKER_HOST`). A test that must differ there says so with this.
pub fn engine_is_podman() -> bool {
    static PODMAN: OnceLock<bool> = OnceLock::new();
    *PODMAN.get_or_init(|| {
        docker_stdout(&[
            "version",
            "--format",
            "{{range .Server.Components}}{{.Name}};{{end}}",
        ])
        .to_ascii_lowercase()
        .contains("podman")
    })
}

/// `sh -c SCRIPT` in a throwaway container of `image` (its entrypoint bypassed): its stdout,
/// trimmed; fails the test when the script fails.
pub fn sh_in_image(image: &str, script: &str) -> String {
    run_container(&["--rm", "--entrypoint", "sh", image, "-c", script])
}

/// `docker run ARGS…` (a throwaway container a test uses to look at something), or on Podman
/// `podman run ARGS…`: the docker CLI cannot attach through Podman 4.3's socket ("unable to
/// upgrade to tcp, received 409"). Returns stdout, trimmed; fails the test when it fails.
pub fn run_container(args: &[&str]) -> String {
    let cli = if engine_is_podman() {
        "podman"
    } else {
        "docker"
    };
    let out = Command::new(cli)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cli} run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cli} run {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Names of the volumes carrying every one of `labels` (`key=value`), sorted. Checked here: with
/// several label filters Docker lists volumes that have all, Podman 4.3 those that have any.
pub fn volumes_labelled(labels: &[&str]) -> Vec<String> {
    let out = docker_stdout(&["volume", "ls", "--format", "{{.Name}}\t{{.Labels}}"]);
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|line| {
            let (name, have) = line.split_once('\t').unwrap_or((line, ""));
            let have: Vec<&str> = have.split(',').collect();
            labels
                .iter()
                .all(|l| have.contains(l))
                .then(|| name.to_owned())
        })
        .collect();
    names.sort();
    names
}

/// Run the docker CLI (tests may use it to observe and clean up; the product never does).
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// Run `command` to completion; fails the test (showing stderr) unless it succeeded.
pub fn succeeded(command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn docker_stdout(args: &[&str]) -> String {
    let mut out = docker(args);
    // Podman 4.3 fails a whole image listing when an image goes away meanwhile ("image not
    // known", its wording only): ask again, as stockade's own listings do.
    for _ in 0..10 {
        if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("image not known")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        out = docker(args);
    }
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A host user to run stockade as.
#[derive(Debug, Clone)]
pub struct HostUser {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

impl HostUser {
    /// The user with `uid`, created (in the docker group) when the host has none.
    pub fn ensure(uid: u32, wanted_name: &str) -> Self {
        let lookup = || {
            let out = Command::new("getent")
                .args(["passwd", &uid.to_string()])
                .output()
                .expect("getent");
            let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (!line.is_empty()).then_some(line)
        };
        if lookup().is_none() {
            let status = Command::new("useradd")
                .args([
                    "--uid",
                    &uid.to_string(),
                    "--user-group",
                    "--no-create-home",
                ])
                .args(["--home-dir", "/nonexistent", wanted_name])
                .status()
                .expect("useradd");
            assert!(
                status.success() || lookup().is_some(),
                "useradd {wanted_name} failed"
            );
        }
        let line = lookup().expect("user exists after useradd");
        let fields: Vec<&str> = line.split(':').collect();
        Self {
            uid,
            gid: fields[3].parse().expect("gid"),
            name: fields[0].to_owned(),
        }
    }
}

fn docker_gid() -> Option<u32> {
    let out = Command::new("getent")
        .args(["group", "docker"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)?
        .trim()
        .parse()
        .ok()
}

/// An isolated stockade environment: HOME, XDG directories, a project, a config.
pub struct Env {
    _root: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub project: PathBuf,
    pub namespace: String,
    pub user: Option<HostUser>,
    extra_env: Vec<(String, String)>,
    owns_namespace: bool,
}

impl Env {
    /// An environment on the shared foundation image.
    pub fn new() -> Self {
        require_engine();
        let env = Self::create(shared_namespace(), None, false);
        env.write_global_config(&default_config(&base_image()));
        ensure_shared_foundation();
        env
    }

    /// An environment with a namespace of its own (images removed when dropped).
    pub fn isolated(tag: &str) -> Self {
        require_engine();
        let namespace = format!("{}-{tag}-{}", shared_namespace(), std::process::id());
        let env = Self::create(namespace, None, true);
        env.write_global_config(&default_config(&base_image()));
        env
    }

    /// A namespace of its own whose foundation is the shared one (tagged into it, so nothing is
    /// rebuilt): for tests that change the base or project tiers, which the namespace shares.
    pub fn layered(tag: &str) -> Self {
        let shared = Self::new();
        let namespace = format!("{}-{tag}-{}", shared_namespace(), std::process::id());
        let env = Self::create(namespace, None, true);
        env.write_global_config(&default_config(&base_image()));
        docker_stdout(&["tag", &shared.foundation_tag(), &env.foundation_tag()]);
        env
    }

    /// Run as `user` instead of the test process's user.
    pub fn run_as(mut self, user: HostUser) -> Self {
        for dir in [&self.home, &self.project] {
            chown_recursive(dir, user.uid, user.gid);
        }
        self.user = Some(user);
        self
    }

    fn create(namespace: String, user: Option<HostUser>, owns_namespace: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stockade-test-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical tempdir");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");
        let home = root.join("home");
        let project = root.join("project");
        fs::create_dir_all(home.join(".config/stockade")).expect("home");
        fs::create_dir_all(&project).expect("project");
        Self {
            _root: dir,
            root,
            home,
            project,
            namespace,
            user,
            extra_env: Vec::new(),
            owns_namespace,
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.join(".config/stockade")
    }

    pub fn write_global_config(&self, text: &str) {
        let path = self.config_dir().join("config.toml");
        fs::write(&path, text).expect("write config");
        if let Some(user) = &self.user {
            chown_recursive(&path, user.uid, user.gid);
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `stockade ARGS…` in the project directory, with the isolated environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.user {
            Some(user) => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={}", user.uid))
                    .arg(format!("--regid={}", user.gid));
                match docker_gid() {
                    Some(gid) => cmd.arg(format!("--groups={gid}")),
                    None => cmd.arg("--clear-groups"),
                };
                cmd.arg("--").arg(bin());
                cmd
            }
            None => Command::new(bin()),
        };
        cmd.args(args)
            .current_dir(&self.project)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("XDG_STATE_HOME", self.home.join(".local/state"))
            .env("STOCKADE_NAMESPACE", &self.namespace)
            .env("NO_COLOR", "1");
        if let Some(user) = &self.user {
            cmd.env("USER", &user.name);
        }
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            cmd.env("DOCKER_HOST", host);
        }
        if engine_is_podman() {
            // The egress allowlist is refused on Podman (docs/podman.md): the Podman pass runs
            // its sandboxes on the bridge, as a Podman user must choose to (a variable, so that
            // the configuration files tests write stay as they are).
            cmd.env("STOCKADE_NETWORK_EGRESS", "open");
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Start `stockade ARGS…` (stdin closed, stdout and stderr piped) and wait until its first
    /// line of output is `ready` (the command says it runs): for tests that act on a live run.
    pub fn spawn_until(&self, args: &[&str], ready: &str) -> std::process::Child {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stockade");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout pipe"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).expect("read stdout");
        assert_eq!(line, format!("{ready}\n"), "the sandbox never ran");
        child
    }

    /// Run to completion with stdin closed.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn stockade");
        if let Some(bytes) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(bytes).expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait for stockade");
        Run {
            output,
            elapsed: started.elapsed(),
        }
    }

    /// `stockade ARGS…` in `dir` with stdin closed, killed (and the test failed) after `limit`:
    /// a read that blocks (a FIFO, a hung host process) fails the test instead of hanging it.
    pub fn run_limited(&self, dir: &Path, args: &[&str], limit: Duration) -> Run {
        let mut child = self
            .command(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stockade");
        let started = Instant::now();
        while child.try_wait().expect("wait for stockade").is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait for stockade");
                panic!(
                    "stockade {args:?} still ran after {limit:?}\n--- stderr\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("wait for stockade");
        Run {
            output,
            elapsed: started.elapsed(),
        }
    }

    /// This project's containers (any state).
    pub fn containers(&self) -> Vec<String> {
        let filter = format!("label=io.stockade.project={}", self.project.display());
        let out = docker_stdout(&["ps", "-aq", "--filter", &filter]);
        out.lines().map(str::to_owned).collect()
    }

    pub fn foundation_tag(&self) -> String {
        format!("{}-stockade:foundation", self.namespace)
    }

    pub fn base_tag(&self) -> String {
        format!("{}-stockade:base", self.namespace)
    }

    /// The tag of this environment's project image.
    pub fn project_tag(&self) -> String {
        format!(
            "{}-stockade-project:{}",
            self.namespace,
            project_id(&self.project)
        )
    }

    /// Write a file under the project (parents created).
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.project.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
        if let Some(user) = &self.user {
            chown_recursive(&self.project, user.uid, user.gid);
        }
    }

    /// Give everything in the project to the test's user (links themselves, not their targets),
    /// as if the agent had made it: for files a test creates by other means than `write`.
    pub fn give_project_to_user(&self) {
        if let Some(user) = &self.user {
            let status = Command::new("chown")
                .args(["-R", "-h", &format!("{}:{}", user.uid, user.gid)])
                .arg(&self.project)
                .status()
                .expect("chown");
            assert!(status.success());
        }
    }

    /// Make the project a git worktree (branch `wt`) of a new repository at `<root>/main` with
    /// one commit; returns the main repository's directory.
    pub fn make_project_a_worktree(&self) -> PathBuf {
        let main = self.root.join("main");
        let git = |dir: &Path, args: &[&str]| {
            let status = Command::new("git")
                .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(dir)
                .stdout(Stdio::null())
                .status()
                .expect("git");
            assert!(status.success(), "git {args:?}");
        };
        fs::create_dir_all(&main).expect("mkdir");
        git(&main, &["init", "-q", "-b", "main"]);
        fs::write(main.join("README"), "hi\n").expect("write");
        git(&main, &["add", "README"]);
        git(&main, &["commit", "-q", "-m", "first"]);
        fs::remove_dir_all(&self.project).expect("remove the project dir");
        let project = self.project.to_str().expect("utf-8 path");
        git(&main, &["worktree", "add", "-q", "-b", "wt", project]);
        if let Some(user) = &self.user {
            chown_recursive(&main, user.uid, user.gid);
            chown_recursive(&self.project, user.uid, user.gid);
        }
        main
    }

    pub fn image_id(&self, tag: &str) -> Option<String> {
        let out = docker(&["image", "inspect", "--format", "{{.Id}}", tag]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.containers() {
            let _ = docker(&["rm", "-f", &id]);
        }
        // Home volumes of projects under this environment (the project may be a subdirectory
        // of `project`); tools volumes are shared, like the foundation.
        if let Ok(out) = Command::new("docker")
            .args(["volume", "ls", "--filter", "label=io.stockade.kind=home"])
            .args(["--format", "{{.Name}}\t{{.Label \"io.stockade.project\"}}"])
            .output()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((name, project)) = line.split_once('\t')
                    && Path::new(project).starts_with(&self.root)
                {
                    let _ = docker(&["volume", "rm", "-f", name]);
                }
            }
        }
        // The egress networks of projects under this environment (their holders go and the
        // gateway leaves them first), and an own namespace's gateway with its state.
        let gateway = format!("{}-stockade-gateway", self.namespace);
        if let Ok(out) = Command::new("docker")
            .args(["network", "ls", "--filter", "label=io.stockade.kind=egress"])
            .args(["--format", "{{.Name}}\t{{.Label \"io.stockade.project\"}}"])
            .output()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((name, project)) = line.split_once('\t')
                    && Path::new(project).starts_with(&self.root)
                {
                    let _ = docker(&["rm", "-f", &format!("{name}-holder")]);
                    let _ = docker(&["network", "disconnect", "-f", name, &gateway]);
                    let _ = docker(&["network", "rm", name]);
                }
            }
        }
        if self.owns_namespace {
            let _ = docker(&["rm", "-f", &gateway]);
            let _ = docker(&["volume", "rm", "-f", &gateway]);
        }
        if self.owns_namespace {
            // Tags in this namespace (some point at shared images: only the tag goes), then the
            // images built in it.
            let tags = docker_stdout(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
            let prefix = format!("{}-stockade", self.namespace);
            for tag in tags.lines().filter(|t| t.starts_with(&prefix)) {
                let _ = docker(&["rmi", tag]);
            }
            let filter = format!("label=io.stockade.namespace={}", self.namespace);
            let ids = docker_stdout(&["images", "-aq", "--filter", &filter]);
            for id in ids.lines().collect::<std::collections::BTreeSet<_>>() {
                let _ = docker(&["rmi", "-f", id]);
            }
        }
        // Files created as another user are removable by root; nothing else to do.
    }
}

pub fn default_config(from: &str) -> String {
    format!("[image]\nfrom = \"{from}\"\nca_certificates = [\"{HOST_CA_BUNDLE}\"]\n")
}

/// A busybox-only image (no useradd, no bash, no libc): Debian's busybox-static and its applet
/// links, imported once per run.
pub fn busybox_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| busybox_based(&format!("{}/busybox:static", shared_namespace()), &[]))
        .clone()
}

/// A musl base: the busybox image plus musl's loader, which is its libc too
/// (`/lib/ld-musl-<arch>.so.1`, from Debian's `musl` package), and nothing else (no libstdc++,
/// no libgcc_s). musl's loader takes the reserved `libc.*` names (`libc.musl-x86_64.so.1`,
/// which Alpine's builds name) as itself.
pub fn musl_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            busybox_based(
                &format!("{}/busybox:musl", shared_namespace()),
                &[musl_loader()],
            )
        })
        .clone()
}

/// The host's musl loader (its libc: Debian's `musl` package), and its path in an image.
pub fn musl_loader() -> (PathBuf, String) {
    let loader = fs::read_dir("/lib")
        .expect("read /lib")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("ld-musl-") && name.ends_with(".so.1"))
        .expect("no /lib/ld-musl-*.so.1: scripts/test installs Debian's musl");
    let source = fs::canonicalize(Path::new("/lib").join(&loader)).expect("musl's libc");
    (source, format!("lib/{loader}"))
}

/// Import busybox-static with its applet links (and `extra` files: host path, path in the
/// image) as `tag`, unless the engine has it.
pub fn busybox_based(tag: &str, extra: &[(PathBuf, String)]) -> String {
    if docker(&["image", "inspect", tag]).status.success() {
        return tag.to_owned();
    }
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: scripts/test installs busybox-static"
    );
    let root = tempfile::tempdir().expect("tempdir");
    for dir in ["bin", "etc", "lib", "tmp", "root"] {
        fs::create_dir_all(root.path().join(dir)).expect("mkdir");
    }
    fs::copy(busybox, root.path().join("bin/busybox")).expect("copy busybox");
    for (source, target) in extra {
        fs::copy(source, root.path().join(target)).expect("copy into the image");
    }
    let applets = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", root.path().join("bin").join(applet));
    }
    fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .expect("passwd");
    fs::write(root.path().join("etc/group"), "root:x:0:\n").expect("group");
    let tar = Command::new("tar")
        .args(["-C"])
        .arg(root.path())
        .args(["-c", "."])
        .output()
        .expect("tar");
    let mut import = Command::new("docker")
        .args(["import", "--change", "ENV PATH=/bin", "-", tag])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("docker import");
    import
        .stdin
        .take()
        .expect("stdin")
        .write_all(&tar.stdout)
        .expect("write tar");
    assert!(
        import.wait().expect("wait").success(),
        "docker import of {tag} failed"
    );
    tag.to_owned()
}

/// Build the shared foundation once per test binary (and once per run across binaries: the
/// second binary finds it up to date).
fn ensure_shared_foundation() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let lock = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join(format!("{}-foundation.lock", shared_namespace())))
            .expect("lock file");
        lock.lock().expect("lock");
        let env = Env::create_for_build();
        let run = env.run(&["build"]);
        assert!(
            run.ok(),
            "building the shared foundation failed:\n{}",
            run.stderr()
        );
    });
}

impl Env {
    fn create_for_build() -> Env {
        let env = Env::create(shared_namespace(), None, false);
        env.write_global_config(&default_config(&base_image()));
        env
    }
}

pub fn chown_recursive(path: &Path, uid: u32, gid: u32) {
    let status = Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success());
}

/// The outcome of one stockade run.
pub struct Run {
    pub output: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Assert the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Poll `f` until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What a security test watches on the host: every file under the user's HOME (stockade's own
/// state, cache and config dirs aside), a canary directory planted outside the project, and the
/// entries of `/tmp` owned by the sandbox's user. `assert_unchanged` fails with what changed.
pub struct HostWatch {
    roots: Vec<PathBuf>,
    skip: Vec<PathBuf>,
    uid: u32,
    before: std::collections::BTreeMap<PathBuf, String>,
    tmp_before: std::collections::BTreeSet<PathBuf>,
    pub canary: PathBuf,
}

impl HostWatch {
    pub fn new(env: &Env) -> Self {
        let canary = env.root.join("canary");
        fs::create_dir_all(canary.join("sub")).expect("canary dir");
        fs::write(canary.join("secret.txt"), "canary\n").expect("canary file");
        fs::write(canary.join("sub/keep"), "keep\n").expect("canary file");
        let uid = env.user.as_ref().map_or(0, |u| u.uid);
        if let Some(user) = &env.user {
            chown_recursive(&canary, user.uid, user.gid);
        }
        let mut watch = Self {
            roots: vec![env.home.clone(), canary.clone()],
            skip: vec![
                env.home.join(".cache/stockade"),
                env.home.join(".local/state/stockade"),
                env.home.join(".config/stockade"),
            ],
            uid,
            before: Default::default(),
            tmp_before: Default::default(),
            canary,
        };
        watch.before = watch.snapshot();
        watch.tmp_before = watch.tmp_entries();
        watch
    }

    fn snapshot(&self) -> std::collections::BTreeMap<PathBuf, String> {
        use std::os::unix::fs::MetadataExt;
        let mut out = std::collections::BTreeMap::new();
        let mut stack = self.roots.clone();
        while let Some(path) = stack.pop() {
            if self.skip.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            // The parents of stockade's own dirs (~/.cache, ~/.local/state) appear with them.
            if meta.is_dir() && self.skip.iter().any(|s| s.starts_with(&path) && path != *s) {
                if let Ok(entries) = fs::read_dir(&path) {
                    stack.extend(entries.flatten().map(|e| e.path()));
                }
                continue;
            }
            let content = if meta.is_file() {
                fs::read(&path)
                    .map(|b| format!("{:x?}", &b[..b.len().min(64)]))
                    .unwrap_or_default()
            } else if meta.file_type().is_symlink() {
                fs::read_link(&path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            out.insert(
                path.clone(),
                format!(
                    "{:o} {}:{} {} {}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    meta.len(),
                    content
                ),
            );
            if meta.is_dir()
                && let Ok(entries) = fs::read_dir(&path)
            {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
        out
    }

    fn tmp_entries(&self) -> std::collections::BTreeSet<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        fs::read_dir("/tmp")
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        e.metadata()
                            .is_ok_and(|m| m.uid() == self.uid && self.uid != 0)
                    })
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn assert_unchanged(&self) {
        let after = self.snapshot();
        let mut changes = Vec::new();
        for (path, state) in &after {
            match self.before.get(path) {
                None => changes.push(format!("new: {} ({state})", path.display())),
                Some(old) if old != state => {
                    changes.push(format!("changed: {} ({old} -> {state})", path.display()))
                }
                Some(_) => {}
            }
        }
        for path in self.before.keys().filter(|p| !after.contains_key(*p)) {
            changes.push(format!("removed: {}", path.display()));
        }
        for path in self.tmp_entries().difference(&self.tmp_before) {
            changes.push(format!("new in /tmp: {}", path.display()));
        }
        assert!(
            changes.is_empty(),
            "the host changed outside the project:\n{}",
            changes.join("\n")
        );
    }
}

/// The capability and privilege lines of `/proc/self/status` that a sandboxed command must show:
/// printed by [`PRIVILEGES`], checked by [`assert_unprivileged`].
pub const PRIVILEGES: &str =
    "grep -E '^(Uid|Gid|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status";

/// `output` (of [`PRIVILEGES`]) shows uid `uid` everywhere, no capability at all, and
/// no-new-privileges.
#[track_caller]
pub fn assert_unprivileged(output: &str, uid: u32) {
    let field = |name: &str| {
        output
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name} line in:\n{output}"))
    };
    let uids: Vec<String> = field("Uid:")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(
        uids.iter().all(|u| *u == uid.to_string()),
        "Uid is not {uid} throughout:\n{output}"
    );
    for cap in ["CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(
            field(cap),
            "0000000000000000",
            "{cap} is not empty:\n{output}"
        );
    }
    assert_eq!(
        field("NoNewPrivs:"),
        "1",
        "no-new-privileges is off:\n{output}"
    );
}

/// `text` as a regex matching itself (for insta filters on paths).
pub fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// The 12 hex characters stockade names a project by (a hash of its path).
pub fn project_id(root: &Path) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(root.as_os_str().as_encoded_bytes()));
    digest[..12].to_owned()
}

/// insta settings that replace this environment's root directory with `[ROOT]` and its
/// namespace with `[NS]`; tests add their own filters.
pub fn snapshot_settings(env: &Env) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&env.root.display().to_string()), "[ROOT]");
    settings.add_filter(&regex_escape(&env.namespace), "[NS]");
    settings
}

impl Env {
    /// A home volume in this namespace of a project directory that is gone: what `prune`
    /// removes (after asking). Returns its name; the caller removes it if prune did not.
    pub fn gone_project_home_volume(&self) -> String {
        let volume = format!("{}-home-gone", self.namespace);
        docker_stdout(&[
            "volume",
            "create",
            "--label",
            "io.stockade.kind=home",
            "--label",
            &format!("io.stockade.namespace={}", self.namespace),
            "--label",
            &format!(
                "io.stockade.project={}",
                self.root.join("gone-project").display()
            ),
            &volume,
        ]);
        volume
    }
}
