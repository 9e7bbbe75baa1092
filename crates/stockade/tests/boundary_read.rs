//! The sandbox boundary, reading side (issue 9, classes 4, 5 and 10): the attacker owns the
//! project tree, stockade runs as a non-root user with stdin closed (nothing can be approved by a
//! prompt). Each test passes only when the launch is refused with an error that names the file
//! and nothing ran, or the command ran with only approved content.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Env, HostUser, HostWatch, Run, docker, docker_stdout, regex_escape};

/// The attacker's victim: a non-root host user in the docker group.
fn victim() -> HostUser {
    HostUser::ensure(4317, "stockade-read")
}

fn snapshot_settings(env: &Env) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&env.root.display().to_string()), "[ROOT]");
    settings
}

/// A symlink in the project owned by the victim (as the agent would have made it).
fn plant_link(env: &Env, target: &Path, rel: &str) {
    let path = env.project.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    symlink(target, &path).unwrap();
    env.give_project_to_user();
}

/// Run with a time limit: a read that blocks (a FIFO) must fail the test, not hang it.
fn run_within(env: &Env, args: &[&str], limit: Duration) -> Run {
    env.run_limited(&env.project, args, limit)
}

/// Refused (exit 1), nothing ran, and the error is as snapshotted.
fn assert_refused(env: &Env, run: &Run, name: &str) {
    run.expect_code(1);
    assert!(env.containers().is_empty(), "a container was created");
    let stderr = run.stderr();
    snapshot_settings(env).bind(|| insta::assert_snapshot!(name, stderr));
}

// ---- Class 10 (reading side): resource exhaustion through project files ----

#[test]
fn class10_config_toml_linked_to_dev_zero_is_refused_at_once() {
    let env = Env::new().run_as(victim());
    let watch = HostWatch::new(&env);
    plant_link(&env, Path::new("/dev/zero"), ".stockade/config.toml");
    let run = run_within(&env, &["exec", "--", "true"], Duration::from_secs(20));
    watch.assert_unchanged();
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
    assert_refused(&env, &run, "class10_dev_zero");
    // `config show` reads the same way.
    let show = run_within(&env, &["config", "show"], Duration::from_secs(20));
    show.expect_code(1);
    assert!(show.stderr().contains("symbolic link"), "{}", show.stderr());
}

#[test]
fn class10_config_toml_as_a_fifo_does_not_block() {
    let env = Env::new().run_as(victim());
    std::fs::create_dir_all(env.project.join(".stockade")).unwrap();
    let fifo = env.project.join(".stockade/config.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    env.give_project_to_user();
    let run = run_within(&env, &["exec", "--", "true"], Duration::from_secs(20));
    assert_refused(&env, &run, "class10_fifo");
    // A FIFO in the build context is left out, and does not block either.
    std::fs::remove_file(&fifo).unwrap();
    env.write(
        ".stockade/Dockerfile",
        &format!("FROM {}\n", env.base_tag()),
    );
    nix::unistd::mkfifo(
        &env.project.join(".stockade/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let dry = run_within(
        &env,
        &["exec", "--dry-run", "--", "true"],
        Duration::from_secs(20),
    );
    // Unapproved Dockerfile, non-interactive: refused, but promptly.
    dry.expect_code(1);
    assert!(dry.stderr().contains("not approved"), "{}", dry.stderr());
}

#[test]
fn class10_a_20_mb_config_and_a_huge_context_are_refused_with_the_cap() {
    let env = Env::new().run_as(victim());
    let mut big = String::from("# padding\n");
    big.push_str(&"#".repeat(20 << 20));
    env.write(".stockade/config.toml", &big);
    let run = run_within(&env, &["exec", "--", "true"], Duration::from_secs(30));
    assert_refused(&env, &run, "class10_big_config");

    // Variant: a build context over its cap, made of a sparse file (no disk used).
    std::fs::remove_file(env.project.join(".stockade/config.toml")).unwrap();
    env.write(
        ".stockade/Dockerfile",
        &format!("FROM {}\n", env.base_tag()),
    );
    let sparse = std::fs::File::create(env.project.join(".stockade/blob")).unwrap();
    sparse.set_len(300 << 20).unwrap();
    let run = run_within(&env, &["exec", "--", "true"], Duration::from_secs(30));
    assert_refused(&env, &run, "class10_big_context");
}

#[test]
fn class10_stockade_dir_linked_to_the_global_config_is_refused() {
    let env = Env::new().run_as(victim());
    // The global config dir holds the user's own Dockerfile and config: a project that links
    // `.stockade` to it would have it read (and approved, and built) as the project's.
    env.write_global_config(&format!(
        "{}[sandbox]\nmemory = \"2g\"\n",
        common::default_config(&common::base_image())
    ));
    plant_link(&env, &env.config_dir(), ".stockade");
    let run = run_within(&env, &["exec", "--", "true"], Duration::from_secs(20));
    assert_refused(&env, &run, "class10_linked_stockade_dir");
    // Variant: the Dockerfile alone is a link out of the project.
    std::fs::remove_file(env.project.join(".stockade")).unwrap();
    std::fs::write(env.root.join("outside.Dockerfile"), "FROM scratch\n").unwrap();
    plant_link(
        &env,
        &env.root.join("outside.Dockerfile"),
        ".stockade/Dockerfile",
    );
    let run = run_within(&env, &["exec", "--", "true"], Duration::from_secs(20));
    assert_refused(&env, &run, "class10_linked_dockerfile");
}

// ---- Class 4: an approval pins what the files refer to ----

#[test]
fn class4_a_changed_copied_file_asks_again() {
    let env = Env::layered("copied").run_as(victim());
    let dockerfile = format!(
        "FROM {}\nCOPY setup.sh /opt/setup.sh\nRUN sh /opt/setup.sh\n",
        env.base_tag()
    );
    env.write(".stockade/Dockerfile", &dockerfile);
    env.write(".stockade/setup.sh", "echo approved > /opt/marker\n");
    env.run(&["trust"]).expect_code(0);
    let ran = env.run(&["exec", "--", "cat", "/opt/marker"]);
    ran.expect_code(0);
    assert_eq!(ran.stdout(), "approved\n");
    let image = env.image_id(&env.project_tag()).unwrap();

    // Only the COPY'd file changes: asked again (refused without a terminal), nothing rebuilt.
    env.write(".stockade/setup.sh", "echo pwned > /opt/marker\n");
    let run = env.run(&["exec", "--", "cat", "/opt/marker"]);
    assert_refused(&env, &run, "class4_copied_file");
    assert_eq!(env.image_id(&env.project_tag()).unwrap(), image);
    // `stockade build` runs the Dockerfile's commands too: the same approval.
    let build = env.run(&["build"]);
    build.expect_code(1);
    assert_eq!(env.image_id(&env.project_tag()).unwrap(), image);
    // `build --trust` (as the refusal's hint says) builds once, and approves nothing.
    env.run(&["build", "--trust"]).expect_code(0);
    assert_ne!(env.image_id(&env.project_tag()).unwrap(), image);
    env.run(&["build"]).expect_code(1);

    // Variant: a new file beside the Dockerfile (not even COPY'd yet) asks again as well.
    env.write(".stockade/setup.sh", "echo approved > /opt/marker\n");
    env.run(&["exec", "--", "true"]).expect_code(0);
    env.write(".stockade/extra.sh", "echo new\n");
    env.run(&["exec", "--", "true"]).expect_code(1);
    assert!(env.containers().is_empty());
}

#[test]
fn class4_an_approved_mount_source_replaced_by_a_link_is_refused() {
    let env = Env::new().run_as(victim());
    std::fs::create_dir_all(env.project.join("data")).unwrap();
    env.write("data/file", "project data\n");
    env.write(
        ".stockade/config.toml",
        "[sandbox]\nmounts = [\"data:/data:ro\"]\nenv = [\"RACE_TOKEN\"]\n",
    );
    env.run(&["trust"]).expect_code(0);
    let ran = env.run(&["exec", "--", "cat", "/data/file"]);
    ran.expect_code(0);
    assert_eq!(ran.stdout(), "project data\n");

    // The agent replaces data/ by a link to the user's stockade config.
    let watch = HostWatch::new(&env);
    std::fs::remove_dir_all(env.project.join("data")).unwrap();
    plant_link(&env, &env.config_dir(), "data");
    let run = env.run(&["exec", "--", "cat", "/data/config.toml"]);
    assert_refused(&env, &run, "class4_mount_link");
    let dry = env.run(&["exec", "--dry-run", "--", "true"]);
    dry.expect_code(1);
    assert!(!dry.stdout().contains(".config/stockade"));
    // Variant: even with --trust (this run only), a mount source that is a link in the project
    // is refused at the line that mounts it.
    let forced = env.run(&["exec", "--trust", "--", "cat", "/data/config.toml"]);
    assert_refused(&env, &forced, "class4_mount_link_trusted");
    watch.assert_unchanged();
}

#[test]
fn class4_a_project_ca_file_replaced_by_a_link_is_refused() {
    let env = Env::new().run_as(victim());
    let secret = env.home.join(".ssh/id_rsa");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n").unwrap();
    let foundation = env.image_id(&env.foundation_tag());
    // Whatever else refuses a project CA (class 13 makes it global-only), a link to a key is
    // never read: not for the fingerprint, not for the build.
    env.write(
        ".stockade/config.toml",
        "[image]\nca_certificates = [\"certs/corp.crt\"]\n",
    );
    plant_link(&env, &secret, "certs/corp.crt");
    for args in [
        &["exec", "--", "true"][..],
        &["exec", "--trust", "--", "true"],
        &["exec", "--dry-run", "--", "true"],
        &["trust"],
    ] {
        let run = env.run(args);
        run.expect_code(1);
        assert!(
            run.stderr().contains("corp.crt"),
            "{args:?}: {}",
            run.stderr()
        );
        assert!(!run.stderr().contains("secret"));
    }
    assert!(env.containers().is_empty());
    assert_eq!(env.image_id(&env.foundation_tag()), foundation);
}

#[test]
fn class4_a_changed_file_beside_the_projects_custom_base_dockerfile_asks_again() {
    let env = Env::layered("custom-read").run_as(victim());
    let name = format!("127.0.0.1:9/{}/custom-read:1", env.namespace);
    env.write(
        "base/Dockerfile.base",
        &format!("FROM {}\nCOPY marker /marker\n", common::base_image()),
    );
    env.write("base/marker", "approved\n");
    let dockerfile = env.project.join("base/Dockerfile.base");
    env.write(
        ".stockade/config.toml",
        &format!(
            "[image]\nbase = \"{name}\"\nbase_dockerfile = \"{}\"\n",
            dockerfile.display()
        ),
    );
    env.run(&["trust"]).expect_code(0);
    let ran = env.run(&["exec", "--", "cat", "/marker"]);
    ran.expect_code(0);
    assert_eq!(ran.stdout(), "approved\n");
    // The project's own custom base, built from its Dockerfile (tagged with the project's id).
    let custom = || {
        docker_stdout(&[
            "images",
            "-q",
            "--filter",
            &format!("label=io.stockade.project={}", env.project.display()),
            "--filter",
            "label=io.stockade.tier=custom",
        ])
    };
    let image = custom();
    assert!(!image.is_empty(), "the custom base was not built");
    // The file the custom base's Dockerfile copies changes: asked again, nothing rebuilt.
    env.write("base/marker", "pwned\n");
    let run = env.run(&["exec", "--", "cat", "/marker"]);
    run.expect_code(1);
    assert!(run.stderr().contains("not approved"), "{}", run.stderr());
    assert!(env.containers().is_empty());
    assert_eq!(custom(), image);
}

// ---- Class 5: check and use read the same bytes (the race test) ----

const RACE_ROUNDS_DRY: usize = 100;
/// Real launches that had to build, at least (each starts without the project image).
const RACE_BUILDS: usize = 15;
/// At most this many real launches to get there.
const RACE_ROUNDS_MAX: usize = 250;

/// A small pseudo-random sequence for the swapper's timing.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Version {
    config: String,
    dockerfile: String,
    setup: &'static str,
}

/// Swap `.stockade/` between `a` and each of `others` in turn, file by file (some writes in
/// place, some by rename), until `stop` is set.
fn swapper(
    dir: std::path::PathBuf,
    a: Version,
    others: Vec<Version>,
    stop: Arc<AtomicBool>,
    pause_ms: Arc<AtomicU64>,
) {
    let mut round = 0u64;
    let mut jitter = XorShift(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1),
    );
    while !stop.load(Ordering::Relaxed) {
        // While builds run, the unapproved version is the one whose bytes alone differ (the
        // changed COPY'd file): the one a build from unchecked bytes would pick up.
        let building = pause_ms.load(Ordering::Relaxed) > 0;
        let v = if !round.is_multiple_of(2) {
            &a
        } else if building {
            &others[1]
        } else {
            &others[(round / 2) as usize % others.len()]
        };
        for (name, text) in [
            ("config.toml", v.config.as_str()),
            ("setup.sh", v.setup),
            ("Dockerfile", v.dockerfile.as_str()),
        ] {
            if round.is_multiple_of(3) {
                let scratch = dir.join(format!(".{name}.swap"));
                // Errors only when the test already failed (its directory is gone).
                let _ = std::fs::write(&scratch, text);
                let _ = std::fs::rename(&scratch, dir.join(name));
            } else {
                let _ = std::fs::write(dir.join(name), text);
            }
            // Irregular steps: a launch that read the files twice, at any distance, straddles a
            // swap sooner or later.
            let step = if pause_ms.load(Ordering::Relaxed) == 0 {
                200
            } else {
                1500
            };
            std::thread::sleep(Duration::from_micros(jitter.next() % step));
        }
        // A whole version stays a little while, so launches see each one complete as well.
        let pause = pause_ms.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_micros(
            pause * 1000 + jitter.next() % (pause * 1000 + 300),
        ));
        round += 1;
    }
    for (name, text) in [
        ("config.toml", a.config.as_str()),
        ("setup.sh", a.setup),
        ("Dockerfile", a.dockerfile.as_str()),
    ] {
        let _ = std::fs::write(dir.join(name), text);
    }
}

#[test]
fn class5_a_process_swapping_files_never_gets_unapproved_content_applied() {
    let env = Env::layered("race").run_as(victim());
    let canary = env.root.join("canary");
    let dockerfile = format!(
        "FROM {}\nCOPY setup.sh /opt/setup.sh\nRUN sh /opt/setup.sh\n",
        env.base_tag()
    );
    let approved = || Version {
        config: "[sandbox]\nenv = [\"RACE_TOKEN\"]\n".to_owned(),
        dockerfile: dockerfile.clone(),
        setup: "echo approved > /opt/race-marker\n",
    };
    // Three unapproved versions: one that widens the sandbox (engine socket, a host directory),
    // and two whose concerns are the approved ones, so that only the bytes tell them apart: a
    // changed COPY'd file, and a changed (non-widening) setting.
    let unapproved = vec![
        Version {
            config: format!(
                "[sandbox]\nenv = [\"RACE_TOKEN\"]\ndocker_socket = true\nmounts = [\"{}:/canary\"]\n",
                canary.display()
            ),
            dockerfile: format!("{dockerfile}RUN echo unapproved > /opt/race-dockerfile\n"),
            setup: "echo UNAPPROVED > /opt/race-marker\n",
        },
        Version {
            setup: "echo UNAPPROVED > /opt/race-marker\n",
            ..approved()
        },
        Version {
            config: "[sandbox]\nenv = [\"RACE_TOKEN\", \"UNAPPROVED_SETTING=1\"]\n".to_owned(),
            ..approved()
        },
    ];
    let a = approved();
    env.write(".stockade/config.toml", &a.config);
    env.write(".stockade/Dockerfile", &a.dockerfile);
    env.write(".stockade/setup.sh", a.setup);
    env.run(&["trust"]).expect_code(0);
    let watch = HostWatch::new(&env);
    let first = env.run(&["exec", "--", "cat", "/opt/race-marker"]);
    first.expect_code(0);
    assert_eq!(first.stdout(), "approved\n");
    let label = |tag: &str| {
        docker_stdout(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"io.stockade.hash\"}}",
            tag,
        ])
    };
    let approved_hash = label(&env.project_tag());
    assert!(!approved_hash.is_empty());

    // Dry runs are cheap: the files swap as fast as they can, so that a launch that read them
    // twice would straddle a swap. Builds need whole versions to last a little.
    let stop = Arc::new(AtomicBool::new(false));
    let pause_ms = Arc::new(AtomicU64::new(0));
    let swapping = {
        let (dir, stop, pause) = (
            env.project.join(".stockade"),
            stop.clone(),
            pause_ms.clone(),
        );
        let a = approved();
        std::thread::spawn(move || swapper(dir, a, unapproved, stop, pause))
    };

    let socket_or_canary =
        |text: &str| text.contains("docker.sock") || text.contains(&canary.display().to_string());
    let (mut dry_ok, mut dry_refused) = (0, 0);
    for _ in 0..RACE_ROUNDS_DRY {
        let run = env.run(&["exec", "--dry-run", "--", "true"]);
        assert!(
            !socket_or_canary(&run.stdout()),
            "a dry run showed unapproved content:\n{}",
            run.stdout()
        );
        if run.ok() {
            dry_ok += 1;
        } else {
            dry_refused += 1;
        }
    }
    pause_ms.store(2, Ordering::Relaxed);
    let (mut built, mut ran, mut refused) = (0, 0, 0);
    for _ in 0..RACE_ROUNDS_MAX {
        if built >= RACE_BUILDS {
            break;
        }
        // Without the image, a launch that goes ahead must build it: from what it read.
        let _ = docker(&["rmi", "-f", &env.project_tag()]);
        let run = env.run(&[
            "exec",
            "--",
            "sh",
            "-c",
            "cat /opt/race-marker; cat /opt/race-dockerfile 2>/dev/null; \
             test -e /var/run/docker.sock && echo SOCKET; test -e /canary && echo CANARY; id -u; \
             grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs):' /proc/self/status",
        ]);
        if let Some(id) = env.image_id(&env.project_tag()) {
            built += 1;
            assert_eq!(
                label(&id),
                approved_hash,
                "an image was built from unapproved bytes"
            );
        }
        if run.ok() {
            ran += 1;
            let uid = victim().uid;
            let zero = "0000000000000000";
            assert_eq!(
                run.stdout()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                format!(
                    "approved {uid} CapPrm: {zero} CapEff: {zero} CapBnd: {zero} NoNewPrivs: 1"
                ),
                "{}",
                run.stderr()
            );
        } else {
            refused += 1;
            assert!(!run.stdout().contains("UNAPPROVED"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapping.join().unwrap();
    eprintln!(
        "race: dry runs {dry_ok} applied / {dry_refused} refused; launches {ran} ran / \
         {refused} refused, {built} images built"
    );
    assert!(dry_ok > 0 && dry_refused > 0, "the swap was not exercised");
    assert!(built >= RACE_BUILDS, "only {built} real builds");
    watch.assert_unchanged();
    // Every image of the namespace's project tier carries approved bytes.
    let filter = format!("label=io.stockade.namespace={}", env.namespace);
    for id in docker_stdout(&[
        "images",
        "-q",
        "--filter",
        &filter,
        "--filter",
        "label=io.stockade.tier=project",
    ])
    .lines()
    {
        assert_eq!(label(id), approved_hash);
    }
}
