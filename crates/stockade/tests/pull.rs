//! Pulling the published foundation from local registries (Debian's docker-registry, started by
//! scripts/test on 127.0.0.1:5101-5103; nothing listens on 5108 and 5109): failover, digest
//! pinning, the fallback build of `auto`, `pull`'s error, cosign signatures (signed here with
//! test keys through the sigstore crate), and what `images` and `check` say of a pulled image.
//!
//! The "published" foundation is the shared test foundation, pushed into a repository of each
//! test's own (`127.0.0.1:<port>/<test>-<pid>/foundation:<version>`). The "published" full image
//! is that foundation plus a marker file (a real full image is 2.5 GB), pushed as
//! `<prefix>/full:<version>`: a sandbox that sees the marker runs on the pulled image.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::{Env, HOST_CA_BUNDLE, docker, docker_stdout, snapshot_settings};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const UP: [u16; 3] = [5101, 5102, 5103];
const DOWN: [u16; 2] = [5108, 5109];

/// A repository prefix of this test's own on the registry at `port`.
fn prefix(port: u16, test: &str) -> String {
    format!("127.0.0.1:{port}/{test}-{}", std::process::id())
}

/// Push `image` as `<prefix>/foundation:<version>`; returns its manifest digest. The local tag
/// is removed again, so the engine has to pull.
fn publish(image: &str, prefix: &str) -> String {
    publish_as(image, prefix, "foundation")
}

/// Push `image` as `<prefix>/<name>:<version>` (`foundation` or `full`); returns its digest.
fn publish_as(image: &str, prefix: &str, name: &str) -> String {
    let target = format!("{prefix}/{name}:{VERSION}");
    docker_stdout(&["tag", image, &target]);
    let out = docker(&["push", &target]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "docker push {target}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    docker_stdout(&["rmi", &target]);
    text.split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in the push output: {text}"))
        .to_owned()
}

/// The registry's log lines about `repository` (a path under the registry).
fn registry_requests(port: u16, repository: &str) -> Vec<String> {
    let log = std::fs::read_to_string(format!("/var/log/stockade-test-registry-{port}.log"))
        .unwrap_or_else(|e| panic!("registry log of {port}: {e} (scripts/test starts them)"));
    let needle = format!("/v2/{repository}/");
    // The access log's lines (`127.0.0.1 - - [date] "GET /v2/… HTTP/1.1" …`).
    log.lines()
        .filter(|l| !l.starts_with("time=") && l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// The registry at `port` was asked about `repository`'s tag once (no retry) and gave nothing:
/// no manifest by digest, no blob.
fn refused_at_the_tag(port: u16, repository: &str) {
    let asked = registry_requests(port, repository);
    let gets: Vec<&String> = asked.iter().filter(|l| l.contains("\"GET ")).collect();
    assert!(
        gets.iter()
            .all(|l| !l.contains("/blobs/") && !l.contains("/manifests/sha256:")),
        "{gets:#?}"
    );
    let heads = asked
        .iter()
        .filter(|l| l.contains(&format!("\"HEAD /v2/{repository}/manifests/{VERSION} ")))
        .count();
    assert_eq!(heads, 1, "one look at the tag, no retry: {asked:#?}");
}

/// Removes the digest references the pulls left on the shared foundation.
struct Pulled(Vec<String>);

impl Drop for Pulled {
    fn drop(&mut self) {
        for reference in &self.0 {
            let _ = docker(&["rmi", reference]);
        }
    }
}

fn shared_foundation() -> String {
    Env::new().foundation_tag()
}

fn config(source: &str, registries: &[String], digest: &str, extra: &str) -> String {
    let list: Vec<String> = registries.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[image]\nsource = \"{source}\"\nregistries = [{}]\nfoundation_digest = \"{digest}\"\n\
         ca_certificates = [\"{HOST_CA_BUNDLE}\"]\n{extra}",
        list.join(", ")
    )
}

/// `stockade ARGS…`: its exit code and stderr, for a snapshot.
fn outcome(env: &Env, args: &[&str]) -> String {
    let run = env.run(args);
    format!("exit: {:?}\n--- stderr\n{}", run.code(), run.stderr())
}

fn label(tag: &str, name: &str) -> String {
    docker_stdout(&[
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{name}\"}}}}"),
        tag,
    ])
}

/// Lines of `-v` output that are the engine's debug log, and the pull's timed progress lines:
/// left out of snapshots.
fn settings(env: &Env, digest: &str) -> insta::Settings {
    let mut settings = snapshot_settings(env);
    settings.add_filter(&common::regex_escape(digest), "[DIGEST]");
    settings.add_filter(&format!("-{}", std::process::id()), "-[PID]");
    settings.add_filter(r"\(\d+\.\d s\)", "([TIME])");
    settings.add_filter(&common::regex_escape(VERSION), "[VERSION]");
    settings.add_filter(r"(?m)^  \S+: \d+/\d+ layers, .*\n", "");
    settings.add_filter(r"sha256:[0-9a-f]{12}\b", "sha256:[SHORT]");
    // A build step line cut short in the middle of the digest.
    settings.add_filter(r"sha256:[0-9a-f]+…", "sha256:[CUT]…");
    settings
}

#[test]
fn the_first_registry_down_pulls_from_the_second_without_building() {
    let image = shared_foundation();
    let test = "failover";
    let good = prefix(UP[0], test);
    let digest = publish(&image, &good);
    let _refs = Pulled(vec![format!("{good}/foundation@{digest}")]);
    let env = Env::isolated("pull-failover");
    let registries = [prefix(DOWN[0], test), good.clone()];
    env.write_global_config(&config("pull", &registries, &digest, ""));

    let text = outcome(&env, &["build"]);
    settings(&env, &digest).bind(|| insta::assert_snapshot!("failover_build", text));
    let tag = env.foundation_tag();
    assert_eq!(label(&tag, "io.stockade.source"), "pull");
    assert_eq!(label(&tag, "io.stockade.registry"), good);
    assert_eq!(label(&tag, "io.stockade.digest"), digest);
    // Built on the published image itself: its parent is the pulled image.
    assert_eq!(
        label(&tag, "io.stockade.parent"),
        env.image_id(&format!("{good}/foundation@{digest}"))
            .unwrap()
    );
    // The engine pulled it by digest from the second registry (its layers are on the engine
    // already: it asks for the manifest by digest).
    let repository = format!("{test}-{}/foundation", std::process::id());
    let requests = registry_requests(UP[0], &repository);
    assert!(
        requests.iter().any(
            |l| l.contains(&format!("/v2/{repository}/manifests/{digest} "))
                && l.contains("\"docker/")
        ),
        "{requests:#?}"
    );

    // Current: nothing is asked of any registry.
    let again = env.run(&["build"]);
    again.expect_code(0);
    assert_eq!(
        again.stderr(),
        format!("✓ Images up to date ({})\n", env.base_tag()),
        "an unchanged pulled foundation is left alone"
    );

    // `images` and `check` say where it came from.
    let images = env.run(&["images"]);
    images.expect_code(0);
    let mut table = images.stdout();
    table = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    settings(&env, &digest).bind(|| {
        let mut s = insta::Settings::clone_current();
        s.add_filter(r"\d+(\.\d+)? [KMG]B", "[SIZE]");
        s.add_filter(r"(\d+ (seconds?|minutes?|hours?) ago|just now)", "[AGE]");
        s.bind(|| insta::assert_snapshot!("failover_images", table));
    });
    let check = env.run(&["check"]);
    let line = check
        .stdout()
        .lines()
        .find(|l| l.contains("Foundation image"))
        .unwrap()
        .to_owned();
    settings(&env, &digest).bind(|| insta::assert_snapshot!("failover_check", line));

    // -v shows each attempt and the failover.
    let verbose = env.run(&["-v", "build", "--force"]);
    verbose.expect_code(0);
    let err = verbose.stderr();
    let down = format!("{}/foundation:{VERSION}", registries[0]);
    for attempt in 1..=3 {
        assert!(
            err.contains(&format!("pull {down}: attempt {attempt}/3")),
            "{err}"
        );
    }
    assert!(
        err.contains(&format!("failing over to {good}/foundation:{VERSION}")),
        "{err}"
    );
    assert!(!err.contains("Building foundation image"), "{err}");
}

#[test]
fn a_tag_with_another_digest_is_refused_before_any_layer_and_the_next_registry_used() {
    let image = shared_foundation();
    let test = "mismatch";
    let (wrong, good) = (prefix(UP[1], test), prefix(UP[2], test));
    // The first registry serves another image under the tag.
    let other = publish(&common::base_image(), &wrong);
    let digest = publish(&image, &good);
    assert_ne!(other, digest);
    let _refs = Pulled(vec![format!("{good}/foundation@{digest}")]);
    let env = Env::isolated("pull-mismatch");
    env.write_global_config(&config("pull", &[wrong.clone(), good.clone()], &digest, ""));

    let run = env.run(&["-v", "build"]);
    run.expect_code(0);
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "pull {wrong}/foundation:{VERSION} failed: the tag names {other}, not {digest} \
             (the pin from [image] foundation_digest): refused before pulling; failing over to \
             {good}/foundation:{VERSION}"
        )),
        "{err}"
    );
    // One look at the tag, no retry, nothing fetched from the first registry: no manifest by
    // digest, no blob.
    let repository = format!("{test}-{}/foundation", std::process::id());
    refused_at_the_tag(UP[1], &repository);
    assert_eq!(label(&env.foundation_tag(), "io.stockade.registry"), good);
}

#[test]
fn both_registries_down_auto_builds_with_one_line_and_pull_fails_naming_both() {
    let test = "down";
    let registries = [prefix(DOWN[0], test), prefix(DOWN[1], test)];
    // Any pin: nothing answers.
    let pin = format!("sha256:{}", "ab".repeat(32));

    let env = Env::isolated("pull-down");
    env.write_global_config(&config("pull", &registries, &pin, ""));
    let text = outcome(&env, &["build"]);
    settings(&env, &pin).bind(|| insta::assert_snapshot!("both_down_pull", text));
    assert!(
        env.image_id(&env.foundation_tag()).is_none(),
        "no half-made tag"
    );

    // `from` does not apply to a pull: said first, then the pull is tried all the same.
    env.write_global_config(&config(
        "pull",
        &registries,
        &pin,
        "from = \"mirror/debian:12\"\n",
    ));
    let run = env.run(&["build"]);
    assert_eq!(run.code(), Some(1));
    assert!(
        run.stderr().starts_with(
            "warning: `[image] from = \"mirror/debian:12\"` does not apply to pulls: the \
             published foundation is pulled as it is (`source = \"build\"` builds from it)\n"
        ),
        "{}",
        run.stderr()
    );

    // Nothing is pulled without a pin: in a development build, `pull` without
    // `foundation_digest` is an error.
    env.write_global_config(&format!(
        "[image]\nsource = \"pull\"\nregistries = [\"{}\"]\n",
        registries[0]
    ));
    let text = outcome(&env, &["build"]);
    settings(&env, &pin).bind(|| insta::assert_snapshot!("no_pin", text));

    // `auto`: a local build (from the default FROM), after one line saying why.
    env.write_global_config(&config("auto", &registries, &pin, ""));
    let run = env.run(&["build"]);
    let err = run.stderr();
    run.expect_code(0);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].starts_with(&format!(
            "warning: could not pull the published foundation ({}/foundation:{VERSION}: ",
            registries[0]
        )) && warnings[0].contains(&format!("; {}/foundation:{VERSION}: ", registries[1]))
            && warnings[0].ends_with("): building it locally"),
        "{err}"
    );
    assert!(
        err.contains("Foundation image from debian:bookworm-slim built"),
        "{err}"
    );
    let tag = env.foundation_tag();
    assert_eq!(label(&tag, "io.stockade.source"), "");
    // The built foundation is kept under `auto`: no registry is asked again.
    let again = env.run(&["build"]);
    again.expect_code(0);
    assert_eq!(
        again.stderr(),
        format!("✓ Images up to date ({})\n", env.base_tag())
    );
}

/// Sign `<prefix>/foundation@<digest>` with a fresh key pair; returns the public key (PEM).
fn sign(prefix: &str, digest: &str) -> String {
    use sigstore::cosign::constraint::{Constraint, PrivateKeySigner};
    use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
    use sigstore::crypto::SigningScheme;
    use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .unwrap();
    let public = signer
        .to_sigstore_keypair()
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let image: OciReference = format!("{prefix}/foundation@{digest}").parse().unwrap();
    let mut layer = SignatureLayer::new_unsigned(&image, digest).unwrap();
    assert!(
        PrivateKeySigner::new_with_signer(signer)
            .add_constraint(&mut layer)
            .unwrap()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = ClientBuilder::default()
            .with_oci_client_config(ClientConfig {
                protocol: ClientProtocol::Http,
                ..Default::default()
            })
            .build()
            .unwrap();
        let (signature_image, _) = client.triangulate(&image, &Auth::Anonymous).await.unwrap();
        client
            .push_signature(None, &Auth::Anonymous, &signature_image, vec![layer])
            .await
            .unwrap();
    });
    public
}

#[test]
fn signatures_are_verified_before_the_pull() {
    let image = shared_foundation();
    let test = "signed";
    let signed = prefix(UP[0], test);
    let unsigned = prefix(UP[1], test);
    let digest = publish(&image, &signed);
    assert_eq!(publish(&image, &unsigned), digest);
    let _refs = Pulled(vec![
        format!("{signed}/foundation@{digest}"),
        format!("{unsigned}/foundation@{digest}"),
    ]);
    let key = sign(&signed, &digest);
    let env = Env::isolated("pull-signed");
    let key_file = env.config_dir().join("cosign.pub");
    std::fs::write(&key_file, &key).unwrap();
    let other_file = env.config_dir().join("other.pub");
    let other_key = {
        // A key pair that signed nothing here.
        let signer = sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1
            .create_signer()
            .unwrap();
        signer
            .to_sigstore_keypair()
            .unwrap()
            .public_key_to_pem()
            .unwrap()
    };
    std::fs::write(&other_file, other_key).unwrap();
    let policy = |verify: &str, key: &std::path::Path| {
        format!(
            "verify_signatures = \"{verify}\"\ncosign_public_key = \"{}\"\n",
            key.display()
        )
    };

    // `required`, unsigned: refused.
    env.write_global_config(&config(
        "pull",
        std::slice::from_ref(&unsigned),
        &digest,
        &policy("required", &key_file),
    ));
    let text = outcome(&env, &["build"]);
    settings(&env, &digest).bind(|| insta::assert_snapshot!("unsigned_required", text));

    // Signed by another key: refused, under `auto` too.
    env.write_global_config(&config(
        "pull",
        std::slice::from_ref(&signed),
        &digest,
        &policy("auto", &other_file),
    ));
    let text = outcome(&env, &["build"]);
    settings(&env, &digest).bind(|| insta::assert_snapshot!("signed_by_another_key", text));
    assert!(
        env.image_id(&env.foundation_tag()).is_none(),
        "no half-made tag"
    );

    // No key configured: the signature must be the release workflow's keyless one. A key
    // signature (no Fulcio certificate) is refused, under `auto` too; `-v` says which Sigstore
    // trust root was used (the embedded one: no TUF repository is reachable here).
    env.write_global_config(&config(
        "pull",
        std::slice::from_ref(&signed),
        &digest,
        "verify_signatures = \"auto\"\n",
    ));
    let text = outcome(&env, &["build"]);
    settings(&env, &digest).bind(|| insta::assert_snapshot!("key_signature_without_key", text));
    let verbose = env.run(&["-v", "build"]);
    verbose.expect_code(1);
    let stderr = verbose.stderr();
    let roots: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("Sigstore trust root"))
        .collect();
    assert_eq!(roots.len(), 1, "one trust-root line per run: {roots:?}");
    // Here (no Sigstore host is reachable) the embedded one; on a machine that reaches
    // Sigstore's TUF repository, the refreshed one.
    assert!(
        roots[0].starts_with(
            "  Sigstore trust root: the one embedded in this build (the refresh from Sigstore's \
             TUF repository failed: "
        ) || roots[0].starts_with(
            "  Sigstore trust root: refreshed from Sigstore's TUF repository (cached in "
        ),
        "{roots:?}"
    );
    assert!(
        env.image_id(&env.foundation_tag()).is_none(),
        "no half-made tag"
    );

    // Signed with the configured key: pulled (the unsigned mirror first is refused under
    // `required`, the signed one used).
    env.write_global_config(&config(
        "pull",
        &[unsigned.clone(), signed.clone()],
        &digest,
        &policy("required", &key_file),
    ));
    let text = outcome(&env, &["build"]);
    settings(&env, &digest).bind(|| insta::assert_snapshot!("signed", text));
    assert_eq!(label(&env.foundation_tag(), "io.stockade.registry"), signed);
}

/// The test's "published full image": the shared foundation and a marker file.
fn marker_image(tag: &str, marker: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), marker).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nCOPY marker /usr/share/stockade-test/full-marker\n",
            shared_foundation()
        ),
    )
    .unwrap();
    let out = docker(&["build", "-q", "-t", tag, &dir.path().display().to_string()]);
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn full_config(source: &str, registries: &[String], full_digest: Option<&str>) -> String {
    let list: Vec<String> = registries.iter().map(|r| format!("\"{r}\"")).collect();
    let pin = full_digest.map_or(String::new(), |d| format!("full_digest = \"{d}\"\n"));
    format!(
        "[image]\nsource = \"{source}\"\ntoolset = \"full\"\nregistries = [{}]\n{pin}\
         ca_certificates = [\"{HOST_CA_BUNDLE}\"]\n[network]\negress = \"none\"\n",
        list.join(", ")
    )
}

#[test]
fn toolset_full_pulls_the_published_full_image_and_builds_neither_foundation_nor_full() {
    let test = "full";
    let (wrong, good) = (prefix(UP[1], test), prefix(UP[0], test));
    let marker = format!("published full image {}\n", std::process::id());
    let marker_tag = format!("stockade-test-full-marker:{}", std::process::id());
    marker_image(&marker_tag, &marker);
    // The first registry serves another image (the bare foundation) under the full tag.
    let other = publish_as(&shared_foundation(), &wrong, "full");
    let digest = publish_as(&marker_tag, &good, "full");
    assert_ne!(other, digest);
    let _refs = Pulled(vec![marker_tag.clone(), format!("{good}/full@{digest}")]);
    let env = Env::isolated("pull-full");
    // Only the full image is pinned: the foundation has no pin (a development build), so a
    // foundation would have to be built here, were one needed.
    env.write_global_config(&full_config(
        "auto",
        &[wrong.clone(), good.clone()],
        Some(&digest),
    ));

    let text = outcome(&env, &["build"]);
    settings(&env, &digest).bind(|| insta::assert_snapshot!("full_build", text));
    let full_tag = format!("{}-stockade:full", env.namespace);
    // How we know nothing was built but the user's layer: no foundation in the namespace at
    // all, and the full image is that layer, on the pulled image itself.
    assert!(
        env.image_id(&env.foundation_tag()).is_none(),
        "no foundation was made"
    );
    assert_eq!(label(&full_tag, "io.stockade.tier"), "full");
    assert_eq!(label(&full_tag, "io.stockade.source"), "pull");
    assert_eq!(label(&full_tag, "io.stockade.registry"), good);
    assert_eq!(label(&full_tag, "io.stockade.digest"), digest);
    assert_eq!(
        label(&full_tag, "io.stockade.parent"),
        env.image_id(&format!("{good}/full@{digest}")).unwrap()
    );
    assert_eq!(env.image_id(&env.base_tag()), env.image_id(&full_tag));
    // The tag with the other digest was refused before any layer: one look at the tag, no
    // manifest by digest, no blob.
    let repository = format!("{test}-{}/full", std::process::id());
    refused_at_the_tag(UP[1], &repository);

    // A sandbox runs on the pulled image.
    let inside = env.run(&["exec", "--", "cat", "/usr/share/stockade-test/full-marker"]);
    inside.expect_code(0);
    assert_eq!(inside.stdout(), marker);
    assert_eq!(
        inside.stderr(),
        "",
        "an unchanged pulled full image is left alone"
    );

    // `images` and `check` say where it came from; the foundation is not needed.
    let images = env.run(&["images"]);
    images.expect_code(0);
    let table: String = images
        .stdout()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    let check = env.run(&["check"]);
    let tiers: String = check
        .stdout()
        .lines()
        .filter(|l| l.contains(" image: "))
        .map(|l| format!("{l}\n"))
        .collect();
    settings(&env, &digest).bind(|| {
        let mut s = insta::Settings::clone_current();
        s.add_filter(r"\d+(\.\d+)? [KMG]B", "[SIZE]");
        s.add_filter(r"(\d+ (seconds?|minutes?|hours?) ago|just now)", "[AGE]");
        s.bind(|| {
            insta::assert_snapshot!(
                "full_images_and_check",
                format!("images:\n{table}check:\n{tiers}")
            )
        });
    });

    // `pull` with both registries down: an error naming both, and nothing built.
    let down = [prefix(DOWN[0], test), prefix(DOWN[1], test)];
    let env = Env::isolated("pull-fd");
    env.write_global_config(&full_config("pull", &down, Some(&digest)));
    let mut text = outcome(&env, &["build"]);
    // Nothing pulled without a pin: `pull` with no `full_digest` is an error too.
    env.write_global_config(&full_config("pull", &down, None));
    text.push_str(&outcome(&env, &["build"]));
    settings(&env, &digest).bind(|| insta::assert_snapshot!("full_down_pull", text));
    assert!(env.image_id(&env.foundation_tag()).is_none());
    assert!(
        env.image_id(&format!("{}-stockade:full", env.namespace))
            .is_none()
    );
}
