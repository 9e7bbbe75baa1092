//! The foundation image is rebuilt when, and only when, what goes into it changes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::{Env, HOST_CA_BUNDLE, base_image, docker_stdout};

#[test]
fn ca_change_rebuilds_once_and_unchanged_runs_build_nothing() {
    let env = Env::isolated("ca");
    let ca = env.root.join("corp-ca.pem");
    std::fs::copy(HOST_CA_BUNDLE, &ca).unwrap();
    env.write_global_config(&format!(
        "[image]\nfrom = \"{}\"\nca_certificates = [\"{}\"]\n",
        base_image(),
        ca.display()
    ));
    let tag = env.foundation_tag();

    let first = env.run(&["exec", "--", "true"]);
    first.expect_code(0);
    assert!(
        first.stderr().contains("Building foundation image"),
        "{}",
        first.stderr()
    );
    let id1 = env.image_id(&tag).expect("foundation built");
    let labels = docker_stdout(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &tag,
    ]);
    for label in [
        "io.stockade.tier\":\"foundation",
        "io.stockade.hash",
        "io.stockade.version",
        "org.opencontainers.image.title",
    ] {
        assert!(labels.contains(label), "missing {label}: {labels}");
    }

    let unchanged = env.run(&["exec", "--", "true"]);
    unchanged.expect_code(0);
    assert!(
        !unchanged.stderr().contains("Building"),
        "{}",
        unchanged.stderr()
    );
    assert_eq!(env.image_id(&tag).as_deref(), Some(id1.as_str()));

    // The CA file's content is part of the hash: one rebuild, trusted inside afterwards.
    let mut pem = std::fs::read_to_string(&ca).unwrap();
    pem.push_str("\n# rotated\n");
    std::fs::write(&ca, pem).unwrap();
    let changed = env.run(&[
        "exec",
        "--",
        "sh",
        "-c",
        "grep -c rotated /usr/local/share/ca-certificates/stockade/*.crt",
    ]);
    changed.expect_code(0);
    assert_eq!(changed.stdout().trim(), "1");
    assert_eq!(
        changed
            .stderr()
            .matches("Building foundation image")
            .count(),
        1,
        "{}",
        changed.stderr()
    );
    let id2 = env.image_id(&tag).expect("rebuilt");
    assert_ne!(id1, id2);

    let again = env.run(&["exec", "--", "true"]);
    again.expect_code(0);
    assert!(!again.stderr().contains("Building"), "{}", again.stderr());
    assert_eq!(env.image_id(&tag).as_deref(), Some(id2.as_str()));

    // `check` agrees.
    let check = env.run(&["check", "--json"]);
    check.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&check.stdout()).unwrap();
    assert_eq!(report["images"]["foundation"]["status"], "up-to-date");
    assert_eq!(report["images"]["foundation"]["id"], id2.as_str());
}

#[test]
fn failed_build_keeps_the_previous_image_and_shows_the_step() {
    let env = Env::isolated("fail");
    let tag = env.foundation_tag();
    env.run(&["build"]).expect_code(0);
    let id = env.image_id(&tag).expect("built");

    // A FROM that does not exist fails the build; the old image stays tagged.
    env.write_global_config(&common::default_config(
        "stockade-test/does-not-exist:never",
    ));
    let failed = env.run(&["exec", "--", "true"]);
    failed.expect_code(1);
    assert!(failed.stderr().contains("building"), "{}", failed.stderr());
    assert!(
        failed.stderr().contains("does-not-exist"),
        "{}",
        failed.stderr()
    );
    assert_eq!(env.image_id(&tag).as_deref(), Some(id.as_str()));
    assert!(env.containers().is_empty());
}

/// The lean foundation (docs/images.md): what every sandbox needs and no more. It adds at most
/// 250 MB to its FROM image (Debian's nodejs and npm alone added 521 MB), and has no node.
#[test]
fn the_foundation_adds_at_most_250_mb_to_its_base() {
    let env = Env::new();
    let size = |image: &str| -> u64 {
        docker_stdout(&["image", "inspect", "--format", "{{.Size}}", image])
            .trim()
            .parse()
            .unwrap()
    };
    let added = size(&env.foundation_tag()) - size(&base_image());
    eprintln!(
        "the foundation adds {} MB to {}",
        added / 1_000_000,
        base_image()
    );
    assert!(added <= 250_000_000, "the foundation adds {added} bytes");
    let tools = common::sh_in_image(
        &env.foundation_tag(),
        "for t in sh bash git curl ssh ps nc sudo python3 patchelf node npm; do \
         command -v $t >/dev/null && echo \"$t yes\" || echo \"$t no\"; done; \
         python3 -c 'import venv' && echo venv yes; \
         ls /var/lib/apt/lists /var/cache/apt | grep -v -e '^/' -e '^$' -e '^lock$' -e '^partial$' || true",
    );
    insta::assert_snapshot!(tools, @r"
    sh yes
    bash yes
    git yes
    curl yes
    ssh yes
    ps yes
    nc yes
    sudo yes
    python3 yes
    patchelf yes
    node no
    npm no
    venv yes
    ");
}
