//! The full toolset image (`[image] toolset = "full"`): built from the offline base, every tool
//! of its manifest runs, sandboxes run on it, and `check`, `images` and `prune` know the tier.
//! One test: the build takes minutes, so it is made once and every check runs on it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::{Env, docker_stdout};

/// The manifest the binary embeds, read as the test's own data: each tool and its command.
const MANIFEST: &str = include_str!("../../../assets/full/tools.toml");

/// The tools the manifest installs on this machine's architecture: `(name, source, command)`.
fn manifest_tools() -> Vec<(String, String, String)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("the full image is built for amd64 and arm64, not {other}"),
    };
    let doc: toml::Table = toml::from_str(MANIFEST).unwrap();
    doc["tool"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|tool| tool.get("arch").is_none_or(|a| a.as_str() == Some(arch)))
        .map(|tool| {
            let field = |name: &str| tool[name].as_str().unwrap().to_owned();
            (field("name"), field("source"), field("version"))
        })
        .collect()
}

/// One bash script that runs every version command and marks where each starts and ends.
fn version_script(tools: &[(String, String, String)]) -> String {
    let mut script = String::new();
    for (name, _, command) in tools {
        script.push_str(&format!(
            "echo '@@tool {name}'\n( {command} ) 2>&1 </dev/null\necho \"@@exit $?\"\n"
        ));
    }
    script
}

/// `(name, exit code, output)` for each tool, in order.
fn parse_versions(stdout: &str) -> Vec<(String, i32, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("@@tool ") {
            current = Some((name.to_owned(), String::new()));
        } else if let Some(code) = line.strip_prefix("@@exit ") {
            let (name, text) = current.take().expect("an exit after a tool");
            out.push((name, code.trim().parse().unwrap(), text));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// The first line of a tool's output that says something (its version, for most).
fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

fn check_json(env: &Env) -> serde_json::Value {
    let run = env.run(&["check", "--json"]);
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("check --json: {e}\n{}\n{}", run.stdout(), run.stderr()))
}

/// The lines of `check` about the image tiers.
fn check_tier_lines(env: &Env) -> String {
    let run = env.run(&["check"]);
    run.stdout()
        .lines()
        .filter(|l| l.contains(" image: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_full_image_builds_from_the_offline_base_and_every_manifest_tool_runs() {
    let env = Env::layered("full");
    let config = format!(
        "{}toolset = \"full\"\n[network]\negress = \"none\"\n",
        common::default_config(&common::base_image())
    );
    env.write_global_config(&config);
    let full_tag = format!("{}-stockade:full", env.namespace);
    let mut transcript = String::new();

    // Before the build: `check` names the tier, missing.
    let before = check_json(&env);
    transcript.push_str(&format!(
        "check --json, images.full, before the build:\n{}\n",
        serde_json::to_string_pretty(&before["images"]["full"]).unwrap()
    ));

    // One build: the foundation is shared (tagged in), the full image is built on it, the base
    // points at the full image.
    let build = env.run(&["build"]);
    build.expect_code(0);
    let built = build
        .stderr()
        .lines()
        .find(|l| l.contains("Full toolset image built"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no build line:\n{}", build.stderr()));
    println!("{built} (stockade build took {:?})", build.elapsed);
    let full_id = env.image_id(&full_tag).expect("the full image is tagged");
    let foundation_id = env.image_id(&env.foundation_tag()).unwrap();
    assert_eq!(env.image_id(&env.base_tag()).as_deref(), Some(&*full_id));
    let labels: serde_json::Value = serde_json::from_str(&docker_stdout(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &full_tag,
    ]))
    .unwrap();
    assert_eq!(labels["io.stockade.tier"], "full");
    assert_eq!(labels["io.stockade.parent"], *foundation_id);
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    for label in [
        "org.opencontainers.image.revision",
        "org.opencontainers.image.created",
        "org.opencontainers.image.source",
        "org.opencontainers.image.title",
        "org.opencontainers.image.licenses",
    ] {
        let value = labels[label].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "{label}: {labels}");
    }
    let size = docker_stdout(&["image", "inspect", "--format", "{{.Size}}", &full_tag]);
    println!(
        "full image: {} MB",
        size.trim().parse::<u64>().unwrap() / 1_000_000
    );

    // Every tool of the manifest, in a sandbox on the full image: its version command exits 0.
    let tools = manifest_tools();
    let run = env.run(&["exec", "--", "bash", "-c", &version_script(&tools)]);
    run.expect_code(0);
    let results = parse_versions(&run.stdout());
    let names: Vec<&str> = results.iter().map(|(n, _, _)| n.as_str()).collect();
    let expected: Vec<&str> = tools.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, expected, "every tool ran once:\n{}", run.stdout());
    println!("{:<16} {:<17} version", "tool", "source");
    for ((name, _, text), (_, source, _)) in results.iter().zip(&tools) {
        println!("{name:<16} {source:<17} {}", first_line(text));
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, code, _)| *code != 0)
        .map(|(name, code, text)| format!("{name} (exit {code}): {text}"))
        .collect();
    assert!(
        failed.is_empty(),
        "tools that failed:\n{}",
        failed.join("\n")
    );

    // The sandbox runs on the full image: the manifest it was built from is in it, the locale is
    // UTF-8 and the zone UTC.
    let inside = env.run(&["exec", "--", "cat", "/usr/share/stockade/full-tools.toml"]);
    inside.expect_code(0);
    assert_eq!(inside.stdout(), MANIFEST);
    let hygiene = env.run(&["exec", "--", "sh", "-c", "echo $LANG $LC_ALL $TZ; date +%Z"]);
    hygiene.expect_code(0);
    transcript.push_str(&format!("locale and zone: {}", hygiene.stdout()));

    // Behind the gateway (the default allowlist, asked for here by the flag), npm reaches its
    // registry through the presets (pip: tests/egress.rs).
    let npm = env.run(&[
        "exec",
        "--egress",
        "allowlist",
        "--",
        "npm",
        "view",
        "react",
        "name",
    ]);
    npm.expect_code(0);
    assert_eq!(npm.stdout(), "react\n", "{}", npm.stderr());

    // An unchanged chain builds nothing.
    let again = env.run(&["exec", "--", "rg", "--version"]);
    again.expect_code(0);
    assert!(!again.stderr().contains("Building"), "{}", again.stderr());

    let after = check_json(&env);
    transcript.push_str(&format!(
        "check --json, images.full, after the build:\n{}\n",
        serde_json::to_string_pretty(&after["images"]["full"]).unwrap()
    ));
    transcript.push_str(&format!("check:\n{}", check_tier_lines(&env)));
    let images = env.run(&["images"]);
    images.expect_code(0);
    transcript.push_str(&format!("images:\n{}", images.stdout()));

    // Back to minimal: the base points at the foundation again, the full image is orphaned and
    // prune removes it.
    env.write_global_config(&format!(
        "{}[network]\negress = \"none\"\n",
        common::default_config(&common::base_image())
    ));
    env.run(&["build"]).expect_code(0);
    assert_eq!(
        env.image_id(&env.base_tag()).as_deref(),
        Some(&*foundation_id)
    );
    transcript.push_str(&format!(
        "check, minimal again:\n{}",
        check_tier_lines(&env)
    ));
    let images = env.run(&["images"]);
    images.expect_code(0);
    transcript.push_str(&format!("images, minimal again:\n{}", images.stdout()));
    let prune = env.run(&["prune", "-y"]);
    prune.expect_code(0);
    transcript.push_str(&format!("prune -y:\n{}", prune.stdout()));
    assert!(
        env.image_id(&full_tag).is_none(),
        "prune removed the full image"
    );

    let mut settings = common::snapshot_settings(&env);
    settings.add_filter(&common::regex_escape(&full_id), "[FULL_ID]");
    settings.add_filter(&common::regex_escape(&foundation_id), "[FOUNDATION_ID]");
    settings.add_filter(r"sha256:[0-9a-f]{64}", "[ID]");
    settings.add_filter(r"[0-9a-f]{64}", "[HASH]");
    settings.add_filter(r"\d+(\.\d+)? (B|kB|MB|GB)\b", "[SIZE]");
    settings.add_filter(r"(just now|\d+ (minute|hour|day)s? ago)", "[AGE]");
    // Table columns are as wide as the namespace (which carries a process ID): one gap.
    settings.add_filter(r" {2,}", "  ");
    settings.add_filter(r" +\n", "\n");
    settings.bind(|| insta::assert_snapshot!(transcript));
}
