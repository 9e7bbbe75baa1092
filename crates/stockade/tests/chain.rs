//! The image chain against the real engine: global Dockerfile, project Dockerfile, custom base
//! images, lazy cascade rebuilds, concurrency, failures, `check`, `images` and `prune`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::process::Stdio;

use common::{Env, HostUser, base_image, busybox_image, docker, docker_stdout};

/// `stockade check` succeeds and its report contains every one of `texts`.
#[track_caller]
/// `check` says each of `texts`. On a base without a C library, the agents whose command is a
/// native program cannot run there and check says so (FAIL, exit 1); nothing else may fail.
fn check_says(env: &Env, texts: &[&str]) {
    let check = env.run(&["check"]);
    let stdout = check.stdout();
    let fails: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    for fail in &fails {
        assert!(
            (fail.starts_with("FAIL Agent claude: ") || fail.starts_with("FAIL Agent opencode: "))
                && fail.ends_with(
                    "its command is a native program built for glibc or musl, and the sandbox image has neither C library (no dynamic loader /lib*/ld-linux-* or /lib/ld-musl-*)"
                ),
            "{fail}:\n{stdout}"
        );
    }
    check.expect_code(if fails.is_empty() { 0 } else { 1 });
    for text in texts {
        assert!(stdout.contains(text), "{text}:\n{stdout}");
    }
}

fn ids(env: &Env) -> (Option<String>, Option<String>, Option<String>) {
    (
        env.image_id(&env.foundation_tag()),
        env.image_id(&env.base_tag()),
        env.image_id(&env.project_tag()),
    )
}

#[test]
fn global_dockerfile_is_picked_up_and_removing_it_re_points_the_base() {
    let env = Env::layered("global");
    env.write(
        ".stockade/Dockerfile",
        &format!(
            "FROM {}\nRUN echo project > /etc/tier-project\n",
            env.base_tag()
        ),
    );
    env.run(&["exec", "--trust", "--", "true"]).expect_code(0);
    let (foundation, base, project_before) = ids(&env);
    assert_eq!(
        base, foundation,
        "without a global Dockerfile, base aliases the foundation"
    );
    assert!(project_before.is_some());

    // Adding a global Dockerfile: the base is built and the project image rebuilt on top.
    let global = env.config_dir().join("Dockerfile");
    std::fs::write(
        &global,
        format!(
            "FROM {}\nRUN echo global > /etc/tier-global\n",
            env.foundation_tag()
        ),
    )
    .unwrap();
    let run = env.run(&[
        "exec",
        "--trust",
        "--",
        "cat",
        "/etc/tier-global",
        "/etc/tier-project",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "global\nproject\n");
    let stderr = run.stderr();
    assert!(stderr.contains("Building global base image"), "{stderr}");
    assert!(stderr.contains("✓ Global base image built ("), "{stderr}");
    assert!(stderr.contains("Building project image"), "{stderr}");
    assert!(!stderr.contains("Building foundation"), "{stderr}");
    let (_, custom_base, project_custom) = ids(&env);
    assert_ne!(custom_base, foundation);
    assert_ne!(project_custom, project_before);
    let labels = docker_stdout(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &env.base_tag(),
    ]);
    assert!(labels.contains("\"io.stockade.tier\":\"base\""), "{labels}");
    assert!(
        labels.contains(&format!(
            "\"io.stockade.parent\":\"{}\"",
            foundation.as_deref().unwrap()
        )),
        "{labels}"
    );

    check_says(
        &env,
        &[
            "Base image: custom (~/.config/stockade/Dockerfile), up to date",
            "Project image: up to date",
        ],
    );

    // Removing it: base re-pointed at the foundation, the old base image removed.
    std::fs::remove_file(&global).unwrap();
    check_says(&env, &["Base image: default (foundation alias), stale"]);
    let run = env.run(&[
        "exec",
        "--trust",
        "--",
        "sh",
        "-c",
        "test ! -e /etc/tier-global && cat /etc/tier-project",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "project\n");
    let (_, base_after, _) = ids(&env);
    assert_eq!(base_after, foundation);
    let old = custom_base.unwrap();
    assert!(
        !docker(&["image", "inspect", &old]).status.success(),
        "the old base image {old} is still there"
    );
    check_says(
        &env,
        &["Base image: default (foundation alias), up to date"],
    );
}

#[test]
fn editing_a_copied_file_rebuilds_only_the_project_tier() {
    let env = Env::layered("copy");
    env.write(
        ".stockade/Dockerfile",
        &format!("FROM {}\nCOPY data.txt /data.txt\n", env.base_tag()),
    );
    env.write(".stockade/data.txt", "one\n");
    env.write(".stockade/.dockerignore", "scratch\n");
    env.write(".stockade/config.toml", "");
    let first = env.run(&["exec", "--trust", "--", "cat", "/data.txt"]);
    first.expect_code(0);
    assert_eq!(first.stdout(), "one\n");
    let before = ids(&env);

    // Nothing changed; an ignored file and the project config do not count.
    env.write(".stockade/scratch", "ignored");
    env.write(".stockade/config.toml", "# edited\n");
    let unchanged = env.run(&["exec", "--trust", "--", "true"]);
    unchanged.expect_code(0);
    assert!(
        !unchanged.stderr().contains("Building"),
        "{}",
        unchanged.stderr()
    );
    assert_eq!(ids(&env), before);
    // `build` runs the Dockerfile's commands: it needs the approval a launch needs.
    env.run(&["trust"]).expect_code(0);
    let built = env.run(&["build"]);
    built.expect_code(0);
    assert!(
        built.stderr().contains("Images up to date"),
        "{}",
        built.stderr()
    );

    env.write(".stockade/data.txt", "two\n");
    let changed = env.run(&["exec", "--trust", "--", "cat", "/data.txt"]);
    changed.expect_code(0);
    assert_eq!(changed.stdout(), "two\n");
    let stderr = changed.stderr();
    assert_eq!(stderr.matches("Building").count(), 1, "{stderr}");
    assert!(stderr.contains("Building project image"), "{stderr}");
    let after = ids(&env);
    assert_eq!((&after.0, &after.1), (&before.0, &before.1));
    assert_ne!(after.2, before.2);
    // The superseded project image is gone.
    assert!(
        !docker(&["image", "inspect", before.2.as_deref().unwrap()])
            .status
            .success()
    );
}

/// Configure `base` as the custom base; the sandbox runs as the host user (uid 1234).
fn custom_base_runs_as_the_host_user(env: &Env, base: &str) {
    env.write_global_config(&format!(
        "{}base = \"{base}\"\n",
        common::default_config(&base_image())
    ));
    let run = env.run(&["exec", "--trust", "--", "id", "-u"]);
    run.expect_code(0);
    assert_eq!(run.stdout().trim(), "1234");
}

#[test]
fn debian_custom_base_works() {
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::layered("debian").run_as(user);
    custom_base_runs_as_the_host_user(&env, &base_image());
    check_says(
        &env,
        &[&format!(
            "Base image: custom image {}, up to date",
            base_image()
        )],
    );
}

#[test]
fn busybox_only_custom_base_works() {
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::layered("busybox").run_as(user);
    let image = busybox_image();
    custom_base_runs_as_the_host_user(&env, &image);
    // No bash, no useradd in there: the runtime layer needs neither.
    let run = env.run(&[
        "exec",
        "--trust",
        "--",
        "sh",
        "-c",
        "command -v bash useradd || echo none; echo $HOME; id -un",
    ]);
    run.expect_code(0);
    assert_eq!(
        run.stdout(),
        format!("none\n{}\nstockade-t1234\n", env.home.display())
    );
    let tag = format!(
        "{}-stockade-{}:",
        env.namespace,
        image.replace(['/', ':'], "-")
    );
    assert!(
        docker_stdout(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains(&tag),
        "runtime layer tagged {tag}…"
    );
}

#[test]
fn missing_custom_base_without_a_dockerfile_fails_with_both_ways_to_provide_it() {
    let env = Env::layered("missing");
    let name = "127.0.0.1:9/stockade-missing/base:1";
    env.write_global_config(&format!(
        "{}base = \"{name}\"\n",
        common::default_config(&base_image())
    ));
    let run = env.run(&["exec", "--trust", "--", "true"]);
    run.expect_code(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!(
            "custom base image {name} is not on the engine and could not be pulled"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("docker pull {name}")), "{stderr}");
    assert!(stderr.contains("[image] base_dockerfile"), "{stderr}");
    assert!(env.containers().is_empty());
}

fn custom_base_built_from(env: &Env, dockerfile_dir: &std::path::Path, marker: &str) {
    let name = format!("127.0.0.1:9/{}/custom:1", env.namespace);
    std::fs::create_dir_all(dockerfile_dir).unwrap();
    std::fs::write(
        dockerfile_dir.join("Dockerfile.base"),
        format!("FROM {}\nCOPY marker /marker\n", base_image()),
    )
    .unwrap();
    std::fs::write(dockerfile_dir.join("marker"), marker).unwrap();
    env.write_global_config(&format!(
        "{}base = \"{name}\"\nbase_dockerfile = \"images/Dockerfile.base\"\n",
        common::default_config(&base_image())
    ));
    let run = env.run(&["exec", "--trust", "--", "cat", "/marker"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), marker);
    assert!(run.stderr().contains("Could not pull"), "{}", run.stderr());
    assert!(
        env.image_id(&name).is_some(),
        "the custom image is tagged {name}"
    );
    // Built once: the next run uses it as it is.
    let again = env.run(&["exec", "--trust", "--", "cat", "/marker"]);
    again.expect_code(0);
    assert!(!again.stderr().contains("Building"), "{}", again.stderr());
    let _ = docker(&["rmi", &name]);
}

#[test]
fn a_global_base_dockerfile_is_never_looked_up_in_the_project() {
    let env = Env::layered("bdf-project");
    // The project plants a Dockerfile under the same relative path: it must not be used (a
    // project would otherwise build the custom base every other project shares).
    std::fs::create_dir_all(env.project.join("images")).unwrap();
    std::fs::write(
        env.project.join("images/Dockerfile.base"),
        "FROM stockade-no-such-image\n",
    )
    .unwrap();
    custom_base_built_from(&env, &env.config_dir().join("images"), "global\n");
}

#[test]
fn missing_custom_base_is_built_from_base_dockerfile_under_the_global_dir() {
    let env = Env::layered("bdf-global");
    custom_base_built_from(&env, &env.config_dir().join("images"), "global\n");
}

#[test]
fn concurrent_runs_build_a_cold_project_image_once() {
    let env = Env::layered("concurrent");
    env.write(
        ".stockade/Dockerfile",
        &format!(
            "FROM {}\nRUN sleep 2 && echo built > /built\n",
            env.base_tag()
        ),
    );
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.command(&["exec", "--trust", "--", "cat", "/built"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut builds = 0;
    for out in &outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "built\n");
        builds += stderr.matches("Building project image").count();
    }
    assert_eq!(builds, 1, "exactly one build among the four runs");
    let waited = outputs
        .iter()
        .filter(|o| {
            String::from_utf8_lossy(&o.stderr).contains("Waiting for another stockade process")
        })
        .count();
    assert!(waited >= 1, "the others said they were waiting");
}

#[test]
fn failed_project_build_stops_and_keeps_the_previous_image() {
    let env = Env::layered("fail");
    let good = format!("FROM {}\nRUN echo v1 > /v\n", env.base_tag());
    env.write(".stockade/Dockerfile", &good);
    env.run(&["exec", "--trust", "--", "true"]).expect_code(0);
    let id = env.image_id(&env.project_tag()).unwrap();

    env.write(
        ".stockade/Dockerfile",
        &format!("FROM {}\nRUN echo about to fail && false\n", env.base_tag()),
    );
    let failed = env.run(&["exec", "--trust", "--", "true"]);
    failed.expect_code(1);
    let stderr = failed.stderr();
    assert!(
        stderr.contains("failed at Step 2/")
            && stderr.contains(" : RUN echo about to fail && false"),
        "{stderr}"
    );
    assert!(
        stderr.contains("about to fail"),
        "the build output's tail: {stderr}"
    );
    assert!(env.containers().is_empty());
    assert_eq!(
        env.image_id(&env.project_tag()).as_deref(),
        Some(id.as_str())
    );

    env.write(".stockade/Dockerfile", &good);
    let fixed = env.run(&["exec", "--trust", "--", "cat", "/v"]);
    fixed.expect_code(0);
    assert_eq!(fixed.stdout(), "v1\n");
    assert!(!fixed.stderr().contains("Building"), "{}", fixed.stderr());
    assert_eq!(
        env.image_id(&env.project_tag()).as_deref(),
        Some(id.as_str())
    );
}

#[test]
fn images_lists_the_chain_and_prune_removes_only_unused_orphans() {
    let env = Env::layered("prune");
    let dockerfile = format!("FROM {}\nRUN true\n", env.base_tag());
    env.write(".stockade/Dockerfile", &dockerfile);
    env.run(&["exec", "--trust", "--", "true"]).expect_code(0);

    // Two more projects with images, then their directories are deleted; a container still
    // uses the second one's image.
    let gone = env.root.join("gone");
    let used = env.root.join("used");
    let mut tags = Vec::new();
    for dir in [&gone, &used] {
        std::fs::create_dir_all(dir.join(".stockade")).unwrap();
        std::fs::write(dir.join(".stockade/Dockerfile"), &dockerfile).unwrap();
        let mut trust = env.command(&["trust"]);
        trust.current_dir(dir);
        assert!(trust.status().unwrap().success());
        let mut cmd = env.command(&["build"]);
        cmd.current_dir(dir);
        assert!(cmd.status().unwrap().success());
        let list = env.run(&["images", "--json"]);
        let json: serde_json::Value = serde_json::from_str(&list.stdout()).unwrap();
        let tag = json
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["project"] == dir.to_str().unwrap())
            .and_then(|i| i["tags"][0].as_str())
            .unwrap()
            .to_owned();
        tags.push(tag);
    }
    let container = docker_stdout(&[
        "create",
        "--label",
        &format!("io.stockade.project={}", env.project.display()),
        &tags[1],
        "true",
    ]);
    std::fs::remove_dir_all(&gone).unwrap();
    std::fs::remove_dir_all(&used).unwrap();

    let list = env.run(&["images"]);
    list.expect_code(0);
    let table = list.stdout();
    assert!(table.starts_with("IMAGE"), "{table}");
    assert!(table.contains(&env.project_tag()), "{table}");
    assert!(
        table.contains("orphaned (its project directory is gone)"),
        "{table}"
    );
    assert!(table.contains("in use"), "{table}");

    let dry = env.run(&["prune", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout().contains(&format!("would remove {}", tags[0])),
        "{}",
        dry.stdout()
    );
    assert!(env.image_id(&tags[0]).is_some(), "dry run removed nothing");

    let refused = env.run(&["prune"]);
    refused.expect_code(1);
    assert!(refused.stderr().contains("pass -y"), "{}", refused.stderr());

    let pruned = env.run(&["prune", "-y"]);
    pruned.expect_code(0);
    assert!(env.image_id(&tags[0]).is_none(), "orphan removed");
    assert!(env.image_id(&tags[1]).is_some(), "image in use kept");
    assert!(
        pruned.stderr().contains("a container uses it"),
        "{}",
        pruned.stderr()
    );
    assert!(
        env.image_id(&env.project_tag()).is_some(),
        "a live project's image kept"
    );
    assert!(env.image_id(&env.foundation_tag()).is_some());
    docker_stdout(&["rm", &container]);
}

/// The container the engine runs a build step in, found by its command: `(container, image)`.
fn build_step_container(command: &str) -> Option<(String, String)> {
    docker_stdout(&[
        "ps",
        "--no-trunc",
        "--format",
        "{{.ID}}\t{{.Image}}\t{{.Command}}",
    ])
    .lines()
    .find(|line| line.contains(command))
    .and_then(|line| {
        let mut fields = line.split('\t');
        Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
    })
}

#[test]
fn interrupted_build_leaves_no_tag_no_intermediates_and_the_next_run_builds_cleanly() {
    use std::io::{BufRead, BufReader};
    let env = Env::layered("interrupt");
    // A step that commits an image (unique, so never from the build cache), then a slow one.
    let token = env.namespace.clone();
    env.write(
        ".stockade/Dockerfile",
        &format!(
            "FROM {}\nRUN echo {token} > /first\nRUN sleep 61 # {token}\n",
            env.base_tag()
        ),
    );
    let mut child = env
        .command(&["exec", "--trust", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    // The engine's build stream reached the slow step (its step line, printed without a
    // terminal)…
    while !line.contains(": RUN sleep 61") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no build step: {seen}"
        );
        seen.push_str(&line);
    }
    // …and runs it, in a container made from the first step's image.
    let (container, intermediate) = common::poll(std::time::Duration::from_secs(30), || {
        build_step_container(&format!("sleep 61 # {token}"))
    })
    .expect("the engine runs the slow step");
    assert!(env.image_id(&intermediate).is_some());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(
        rest.contains("interrupted: the build of project image stopped; removing the 1 intermediate images it made"),
        "{rest}"
    );
    assert!(
        env.image_id(&env.project_tag()).is_none(),
        "no half-made tag"
    );
    assert!(
        env.image_id(&intermediate).is_none(),
        "the intermediate {intermediate} is left"
    );
    assert!(
        !docker(&["container", "inspect", &container])
            .status
            .success(),
        "the step's container {container} is left"
    );

    env.write(
        ".stockade/Dockerfile",
        &format!("FROM {}\nRUN echo fine > /fine\n", env.base_tag()),
    );
    let run = env.run(&["exec", "--trust", "--", "cat", "/fine"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "fine\n");
}

/// Tags `tag` at `image` for the test's duration when nothing is there (another installation's
/// tier, un-namespaced); leaves an existing image alone.
struct OtherInstallation(Vec<String>);

impl OtherInstallation {
    fn plant(tags: &[&str], image: &str) -> Self {
        let mut planted = Vec::new();
        for tag in tags {
            if !docker(&["image", "inspect", tag]).status.success() {
                docker_stdout(&["tag", image, tag]);
                planted.push((*tag).to_owned());
            }
        }
        Self(planted)
    }
}

impl Drop for OtherInstallation {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = docker(&["rmi", tag]);
        }
    }
}

fn label(tag: &str, key: &str) -> String {
    docker_stdout(&[
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
        tag,
    ])
    .trim()
    .to_owned()
}

#[test]
fn un_namespaced_tiers_in_from_resolve_to_the_namespace() {
    let env = Env::layered("nsfrom");
    // Another installation (no namespace) has tiers of its own: a busybox image, without the
    // marker our base has.
    let _other =
        OtherInstallation::plant(&["stockade:base", "stockade:foundation"], &busybox_image());
    let other_base = env.image_id("stockade:base").unwrap();
    // Our global base and the project, both written as the docs show them (no namespace).
    std::fs::write(
        env.config_dir().join("Dockerfile"),
        "FROM stockade:foundation\nRUN echo ours > /etc/tier-ours\n",
    )
    .unwrap();
    env.write(
        ".stockade/Dockerfile",
        "FROM stockade:base\nRUN cat /etc/tier-ours > /etc/tier-project\n",
    );
    let run = env.run(&["exec", "--trust", "--", "cat", "/etc/tier-project"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "ours\n", "{}", run.stderr());
    let (foundation, base, project) = ids(&env);
    assert_ne!(base.as_deref(), Some(other_base.as_str()));
    assert_eq!(
        label(&env.base_tag(), "io.stockade.parent"),
        foundation.clone().unwrap()
    );
    assert_eq!(
        label(&env.project_tag(), "io.stockade.parent"),
        base.clone().unwrap()
    );
    // The project image's layers start with our base's.
    let layers = |tag: &str| {
        docker_stdout(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            tag,
        ])
    };
    let ours = layers(&env.base_tag());
    assert!(
        layers(&env.project_tag()).starts_with(ours.trim().trim_end_matches(']')),
        "the project image is built on {}",
        env.base_tag()
    );
    check_says(&env, &["Project image: up to date"]);

    // `FROM stockade:foundation` in the project: our foundation, without the global base.
    env.write(
        ".stockade/Dockerfile",
        "FROM stockade:foundation\nRUN test ! -e /etc/tier-ours && echo plain > /etc/tier-project\n",
    );
    let run = env.run(&["exec", "--trust", "--", "cat", "/etc/tier-project"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "plain\n", "{}", run.stderr());
    assert_eq!(
        label(&env.project_tag(), "io.stockade.parent"),
        foundation.unwrap()
    );
    assert_ne!(ids(&env).2, project);
    check_says(&env, &["Project image: up to date"]);
}

/// `prune --dry-run`, then `prune -y`: both succeed; what they print, as a transcript.
fn prune_transcript(env: &Env) -> String {
    let mut transcript = String::new();
    for args in [&["prune", "--dry-run"][..], &["prune", "-y"]] {
        let run = env.run(args);
        run.expect_code(0);
        transcript.push_str(&format!(
            "$ stockade {}\n{}{}",
            args.join(" "),
            run.stdout(),
            run.stderr()
        ));
    }
    transcript
}

/// Where the chain's base comes from, for the prune tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BaseKind {
    /// No global Dockerfile: `stockade:base` is the foundation.
    Alias,
    GlobalDockerfile,
    /// `[image] base` in the global file.
    CustomImage,
    /// `[image] base` in the project's file: the project owns the layer.
    ProjectCustomImage,
}

/// Every project tier over `kind`: none, a Dockerfile `FROM stockade:base` and one `FROM
/// stockade:foundation` (a project that names its own base cannot build on the shared one).
/// After each run, `prune --dry-run` and `prune -y` find nothing (the full transcript is
/// snapshotted), the chain's tags still point where they did, and the next run builds nothing.
fn prune_never_touches_the_current_chain(kind: BaseKind, name: &str) {
    // The namespace is short (at most 40 characters in all); the snapshot has the full name.
    let env = Env::layered(&format!("p{}", kind as u8));
    match kind {
        BaseKind::Alias => {}
        BaseKind::GlobalDockerfile => std::fs::write(
            env.config_dir().join("Dockerfile"),
            "FROM stockade:foundation\nRUN echo global > /etc/tier-global\n",
        )
        .unwrap(),
        BaseKind::CustomImage => env.write_global_config(&format!(
            "{}base = \"{}\"\n",
            common::default_config(&base_image()),
            base_image()
        )),
        BaseKind::ProjectCustomImage => env.write(
            ".stockade/config.toml",
            &format!("[image]\nbase = \"{}\"\n", base_image()),
        ),
    }
    let variants: &[(&str, Option<&str>)] = &[
        ("no project Dockerfile", None),
        ("project FROM stockade:base", Some("stockade:base")),
        (
            "project FROM stockade:foundation",
            Some("stockade:foundation"),
        ),
    ];
    let mut transcript = String::new();
    for (title, from) in variants {
        if kind == BaseKind::ProjectCustomImage && *from == Some("stockade:base") {
            continue;
        }
        let dockerfile = env.project.join(".stockade/Dockerfile");
        match from {
            Some(from) => env.write(
                ".stockade/Dockerfile",
                &format!("FROM {from}\nRUN echo {title:?} > /etc/tier-project\n"),
            ),
            None => {
                let _ = std::fs::remove_file(&dockerfile);
            }
        }
        env.run(&["trust"]).expect_code(0);
        let first = env.run(&["exec", "--", "true"]);
        first.expect_code(0);
        let tags = docker_stdout(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
        let mut chain: Vec<&str> = tags
            .lines()
            .filter(|line| line.starts_with(&format!("{}-stockade", env.namespace)))
            .collect();
        chain.sort();
        let listed = env.run(&["images", "--json"]);
        listed.expect_code(0);
        let json: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
        for image in json.as_array().unwrap() {
            assert!(image["orphaned"].is_null(), "{title}: {image}");
        }
        transcript.push_str(&format!("## {title}\n"));
        transcript.push_str(&prune_transcript(&env));
        let after = docker_stdout(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
        let mut kept: Vec<&str> = after
            .lines()
            .filter(|line| line.starts_with(&format!("{}-stockade", env.namespace)))
            .collect();
        kept.sort();
        assert_eq!(kept, chain, "{title}: prune changed the chain");
        if from.is_some() {
            assert!(env.image_id(&env.project_tag()).is_some(), "{title}");
        }
        let again = env.run(&["exec", "--", "cat", "/etc/os-release"]);
        again.expect_code(0);
        assert!(
            !again.stderr().contains("Building"),
            "{title}: {}",
            again.stderr()
        );
    }
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&common::regex_escape(&env.namespace), "[NS]");
    settings.bind(|| insta::assert_snapshot!(name, transcript));
}

/// One test per base kind (they run in parallel), each with its snapshot.
macro_rules! prune_tests {
    ($($test:ident: $kind:ident, $snapshot:literal;)*) => {$(
        #[test]
        fn $test() {
            prune_never_touches_the_current_chain(BaseKind::$kind, $snapshot);
        }
    )*};
}

prune_tests! {
    prune_keeps_the_chain_over_the_foundation_alias: Alias, "prune-alias";
    prune_keeps_the_chain_over_a_global_dockerfile: GlobalDockerfile, "prune-global";
    prune_keeps_the_chain_over_a_custom_image: CustomImage, "prune-custom";
    prune_keeps_the_chain_over_a_project_custom_image: ProjectCustomImage, "prune-project-custom";
}

#[test]
fn without_a_terminal_a_build_prints_each_step() {
    let env = Env::layered("steps");
    env.write(
        ".stockade/Dockerfile",
        &format!(
            "FROM stockade:base\nRUN echo {} > /token\nRUN sleep 1\n",
            env.namespace
        ),
    );
    env.run(&["trust"]).expect_code(0);
    let run = env.run(&["build"]);
    run.expect_code(0);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&common::regex_escape(&env.namespace), "[NS]");
    settings.add_filter(r"\(\d+(\.\d+)? s\)", "([ELAPSED])");
    settings.add_filter(r"[0-9a-f]{20,}…?", "[HASH]");
    settings.bind(|| insta::assert_snapshot!(run.stderr()));
}

#[test]
fn prune_removes_stopped_sandboxes_but_not_kept_running_or_foreign_ones() {
    let env = Env::layered("leftover");
    env.write(".stockade/Dockerfile", "FROM stockade:base\nRUN true\n");
    env.run(&["exec", "--trust", "--", "true"]).expect_code(0);
    let image = env.project_tag();
    let ns = env.namespace.clone();
    let project = format!("io.stockade.project={}", env.project.display());
    // A sandbox left Exited (as one created without auto-remove was when its engine went
    // away), one meant to stay, one of another installation, and one still running.
    let create = |name: &str, namespace: &str, extra: &[&str], command: &[&str]| {
        let mut args = vec![
            "create",
            "--name",
            name,
            "--label",
            "io.stockade.kind=sandbox",
            "--label",
            &project,
        ];
        let ns_label = format!("io.stockade.namespace={namespace}");
        args.extend(["--label", ns_label.as_str()]);
        args.extend(extra);
        args.push(&image);
        args.extend(command);
        let id = docker_stdout(&args).trim().to_owned();
        docker_stdout(&["start", &id]);
        id
    };
    let left = create(&format!("{ns}-stockade-left"), &ns, &[], &["true"]);
    let kept = create(
        &format!("{ns}-stockade-kept"),
        &ns,
        &["--label", "io.stockade.keep=true"],
        &["true"],
    );
    let foreign = create(&format!("{ns}-other"), "someone-else", &[], &["true"]);
    // A finished detached session of a project directory that is gone: `stop` cannot reach it.
    let orphan_project = format!("io.stockade.project={}", env.root.join("gone").display());
    let orphan = create(
        &format!("{ns}-stockade-orphan"),
        &ns,
        &[
            "--label",
            "io.stockade.keep=true",
            "--label",
            &orphan_project,
        ],
        &["true"],
    );
    let running = create(
        &format!("{ns}-stockade-running"),
        &ns,
        &[],
        &["sleep", "120"],
    );
    let exited = |id: &str| {
        docker_stdout(&["container", "inspect", "--format", "{{.State.Status}}", id])
            .trim()
            .to_owned()
    };
    common::poll(std::time::Duration::from_secs(10), || {
        [&left, &kept, &foreign, &orphan]
            .iter()
            .all(|id| exited(id) == "exited")
            .then_some(())
    })
    .expect("the short containers exit");

    let transcript = prune_transcript(&env);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&common::regex_escape(&ns), "[NS]");
    settings.add_filter(
        &common::regex_escape(&env.root.display().to_string()),
        "[ROOT]",
    );
    settings.bind(|| insta::assert_snapshot!(transcript));

    for id in [&left, &orphan] {
        assert!(!docker(&["container", "inspect", id]).status.success());
    }
    for id in [&kept, &foreign, &running] {
        assert!(docker(&["container", "inspect", id]).status.success());
    }
    docker_stdout(&["rm", "-f", &kept, &foreign, &running]);
    assert!(
        env.image_id(&image).is_some(),
        "the current project image stays"
    );
}

#[test]
fn stockade_files_in_the_global_directory_are_no_part_of_the_base_context() {
    let env = Env::layered("stray");
    let dir = env.config_dir();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM stockade:foundation\nCOPY . /global-context/\n",
    )
    .unwrap();
    std::fs::write(dir.join(".dockerignore"), "ignored.txt\n").unwrap();
    std::fs::write(dir.join("ignored.txt"), "no").unwrap();
    std::fs::write(dir.join("kept.txt"), "yes").unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/tool.toml"), "[a]\n").unwrap();
    let ls = [
        "exec",
        "--",
        "sh",
        "-c",
        "cd /global-context && find . | sort",
    ];
    let run = env.run(&ls);
    run.expect_code(0);
    assert!(
        run.stderr().contains("Building global base image"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        run.stdout(),
        ".\n./.dockerignore\n./Dockerfile\n./etc\n./etc/tool.toml\n./kept.txt\n"
    );
    // A backup of the configuration, notes, an editor's copy: nothing is rebuilt.
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    std::fs::write(dir.join("config.toml.bak"), &config).unwrap();
    std::fs::write(dir.join("config.toml~"), &config).unwrap();
    std::fs::write(dir.join("notes.toml"), "# mine\n").unwrap();
    env.write_global_config(&format!("{config}# edited\n"));
    let again = env.run(&ls);
    again.expect_code(0);
    assert!(!again.stderr().contains("Building"), "{}", again.stderr());
    assert_eq!(again.stdout(), run.stdout());
}
