//! The sandbox boundary, configuration side (issue 9, classes 2, 3, 7, 8, 10, 13 and 14): the
//! project tree is hostile, so its `.stockade/config.toml` is written as an attacker would, and
//! stockade runs as an ordinary host user with stdin closed (nothing can be approved by a
//! prompt). Each test passes only when the launch is refused with the file and line named and
//! no container was created, or (limits) when the sandbox runs within them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::path::Path;

use common::{Env, HostUser, Run, base_image, default_config, docker, regex_escape};

/// An environment on the shared foundation, run as uid 1234 (in the docker group).
fn attacker_env() -> Env {
    Env::new().run_as(HostUser::ensure(1234, "stockade-t1234"))
}

/// Write the project's `.stockade/config.toml` (owned by the test user, as the agent would).
fn write_project_config(env: &Env, text: &str) {
    env.write(".stockade/config.toml", text);
    chown(env, &env.project);
}

fn chown(env: &Env, path: &Path) {
    if let Some(user) = &env.user {
        common::chown_recursive(path, user.uid, user.gid);
    }
}

/// `stockade exec -- touch <canary>`: refused with `code`, the whole stderr as a snapshot, nothing
/// created on the engine and the canary command never ran.
fn refused(env: &Env, code: i32, name: &str) -> String {
    // In the project, which every sandbox mounts: the command would leave it behind.
    let canary = env.project.join("canary");
    let canary_arg = canary.display().to_string();
    let run: Run = env.run(&["exec", "--", "touch", &canary_arg]);
    run.expect_code(code);
    assert!(env.containers().is_empty(), "a container was created");
    assert!(!canary.exists(), "the command ran");
    let stderr = run.stderr();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&env.root.display().to_string()), "[ROOT]");
    settings.add_filter(&regex_escape(&env.namespace), "[NS]");
    settings.set_snapshot_suffix(name);
    settings.bind(|| insta::assert_snapshot!(stderr));
    stderr
}

// ---- class 13: keys that shape shared images are global-only ---------------------------------

#[test]
fn class13_a_project_ca_file_or_from_is_refused() {
    let env = attacker_env();
    // The example: a project CA file baked into the shared foundation.
    std::fs::create_dir_all(env.home.join(".ssh")).unwrap();
    std::fs::write(env.home.join(".ssh/id_rsa"), "PRIVATE KEY\n").unwrap();
    write_project_config(
        &env,
        &format!(
            "[image]\nca_certificates = [\"{}/.ssh/id_rsa\"]\n",
            env.home.display()
        ),
    );
    refused(&env, 1, "ca_certificates");
    // Variant: the foundation's FROM, with a relative CA path next to it.
    write_project_config(
        &env,
        "[image]\nfrom = \"attacker/image:latest\"\nca_certificates = [\"../x.pem\"]\n",
    );
    let stderr = refused(&env, 1, "from");
    assert!(stderr.contains("config.toml:2:1"), "{stderr}");
    assert!(stderr.contains("config.toml:3:1"), "{stderr}");
}

// ---- class 2: environment names that change what stockade's own code does -------------------

#[test]
fn class2_reserved_env_names_in_a_project_are_refused() {
    let env = attacker_env();
    write_project_config(
        &env,
        "[sandbox]\nenv = [\"PATH=/project/bin\", \"LD_PRELOAD=/project/evil.so\"]\n",
    );
    refused(&env, 1, "path_ld_preload");
    // Variant: pass-through of stockade's own variables and a shell's start-up file.
    write_project_config(
        &env,
        "[sandbox]\nenv = [\"STOCKADE_UID\", \"BASH_ENV=/project/x\", \"IFS\", \"HOME=/root\"]\n",
    );
    refused(&env, 1, "stockade_bash_env");
    // The user's own layers may set them (here: a flag), and the command runs.
    write_project_config(&env, "[sandbox]\nenv = [\"MODE=dev\"]\n");
    let run = env.run(&[
        "exec",
        "-e",
        "LD_LIBRARY_PATH=/opt/x",
        "--",
        "sh",
        "-c",
        "echo $LD_LIBRARY_PATH $MODE",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "/opt/x dev\n");
}

// ---- class 3: mount targets over stockade's runtime or the system ----------------------------

#[test]
fn class3_project_mounts_over_the_runtime_or_the_system_are_refused() {
    let env = attacker_env();
    env.write("ep.sh", "#!/bin/sh\nexec \"$@\"\n");
    write_project_config(
        &env,
        "[sandbox]\nmounts = [\"ep.sh:/opt/stockade/entrypoint.sh:ro\"]\n",
    );
    refused(&env, 1, "entrypoint");
    // Variants: a parent of the runtime, the system's directories, a `..` detour, the place
    // secrets are handed over.
    write_project_config(
        &env,
        "[sandbox]\nmounts = [\"ep.sh:/etc/sudoers.d/x\", \"ep.sh:/lib64/ld-linux-x86-64.so.2\", \".:/opt\", \"ep.sh:/data/../usr/bin/sh\", \".:/.stockade-secrets.d\"]\n",
    );
    refused(&env, 1, "system");
    // The user's global file may mount a gitconfig at /etc, but never over /opt/stockade.
    write_project_config(&env, "");
    let gitconfig = env.config_dir().join("gitconfig");
    std::fs::write(&gitconfig, "[user]\n\tname = Ada\n").unwrap();
    chown(&env, &gitconfig);
    env.write_global_config(&format!(
        "{}[sandbox]\nmounts = [\"gitconfig:/etc/gitconfig:ro\"]\n",
        default_config(&base_image())
    ));
    let run = env.run(&["exec", "--", "cat", "/etc/gitconfig"]);
    run.expect_code(0);
    assert!(run.stdout().contains("name = Ada"), "{}", run.stdout());
    env.write_global_config(&format!(
        "{}[sandbox]\nmounts = [\"gitconfig:/opt/stockade/entrypoint.sh:ro\"]\n",
        default_config(&base_image())
    ));
    refused(&env, 1, "global_runtime");
}

#[test]
fn class3_a_project_mount_with_a_target_outside_the_project_needs_approval() {
    let env = attacker_env();
    env.write("data/x", "x\n");
    write_project_config(&env, "[sandbox]\nmounts = [\"data:/data\"]\n");
    refused(&env, 1, "target_outside");
}

// ---- class 7: a project loosening what the user's configuration tightens ---------------------

#[test]
fn class7_loosening_limits_needs_approval() {
    let env = attacker_env();
    env.write_global_config(&format!(
        "{}[sandbox]\nnetwork = \"none\"\npids_limit = 256\nread_only_root = true\n",
        default_config(&base_image())
    ));
    write_project_config(
        &env,
        "[sandbox]\nnetwork = \"bridge\"\npids_limit = 4096\nread_only_root = false\nmemory = \"64g\"\n[secrets]\nscan = false\n",
    );
    refused(&env, 1, "limits");
    // Variant: `extends = false` drops the global file (its FROM, CA and limits).
    write_project_config(&env, "extends = false\n");
    refused(&env, 1, "extends_false");
    // Variant: the SSH agent, which a project could turn on silently before.
    write_project_config(&env, "[sandbox]\nssh_agent = true\n");
    refused(&env, 1, "ssh_agent");
    // Tightening needs no approval.
    write_project_config(&env, "[sandbox]\npids_limit = 128\nmemory = \"1g\"\n");
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(0);
}

#[test]
fn class7_tightening_the_global_file_asks_again_for_an_approved_project() {
    let env = attacker_env();
    write_project_config(&env, "[sandbox]\nnetwork = \"bridge\"\npids_limit = 2048\n");
    env.run(&["trust"]).expect_code(0);
    env.run(&["exec", "--", "true"]).expect_code(0);
    // The user cuts the network off: the project's "bridge" now loosens it, unapproved.
    env.write_global_config(&format!(
        "{}[sandbox]\nnetwork = \"none\"\n",
        default_config(&base_image())
    ));
    refused(&env, 1, "tightened_global");
}

// ---- class 8: relative paths of the global file ----------------------------------------------

#[test]
fn class8_global_relative_paths_never_resolve_in_the_project() {
    let env = attacker_env();
    // The project plants what a relative global path would have found in it.
    env.write("data/secret-looking", "x\n");
    chown(&env, &env.project);
    env.write_global_config(&format!(
        "{}[sandbox]\nmounts = [\"data:/data:ro\"]\n",
        default_config(&base_image())
    ));
    refused(&env, 1, "global_mount");
}

#[test]
fn class8_a_project_base_dockerfile_does_not_build_the_global_custom_base() {
    let env = Env::layered("cfg-bdf").run_as(HostUser::ensure(1234, "stockade-t1234"));
    let name = format!("127.0.0.1:9/{}/custom:1", env.namespace);
    // The global file names a Dockerfile next to itself that does not exist; the project
    // offers one under the same relative path.
    env.write("images/Dockerfile.base", "FROM scratch\nCOPY evil /evil\n");
    env.write("images/evil", "evil\n");
    chown(&env, &env.project);
    env.write_global_config(&format!(
        "{}base = \"{name}\"\nbase_dockerfile = \"images/Dockerfile.base\"\n",
        default_config(&base_image())
    ));
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(1);
    let stderr = run.stderr();
    let looked = env.config_dir().join("images/Dockerfile.base");
    assert!(
        stderr.contains(&format!("looked at {}", looked.display())),
        "{stderr}"
    );
    assert!(env.containers().is_empty());
    assert!(env.image_id(&name).is_none());
}

// ---- class 13: a project's own custom base belongs to that project ---------------------------

#[test]
fn class13_a_project_custom_base_is_tagged_for_that_project_only() {
    let env = Env::layered("cfg-own").run_as(HostUser::ensure(1234, "stockade-t1234"));
    let name = format!("127.0.0.1:9/{}/custom:1", env.namespace);
    env.write(
        ".stockade/base.Dockerfile",
        &format!("FROM {}\nCOPY marker /marker\n", base_image()),
    );
    env.write(".stockade/marker", "project\n");
    write_project_config(
        &env,
        &format!("[image]\nbase = \"{name}\"\nbase_dockerfile = \".stockade/base.Dockerfile\"\n"),
    );
    // Not approved: refused, nothing built.
    let stderr = refused(&env, 1, "custom_base_unapproved");
    assert!(
        stderr.contains("builds this project's custom base"),
        "{stderr}"
    );
    // Approved: built under a tag carrying the project's id, never the shared name or base.
    env.run(&["trust"]).expect_code(0);
    let base_before = env.image_id(&env.base_tag());
    let run = env.run(&["exec", "--", "cat", "/marker"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "project\n");
    assert!(env.image_id(&name).is_none(), "the shared name was tagged");
    assert_eq!(
        env.image_id(&env.base_tag()),
        base_before,
        "stockade:base moved"
    );
    let images = common::docker_stdout(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let own = format!("{}-stockade-custom-", env.namespace);
    assert!(images.contains(&own), "{images}");
    // A project Dockerfile on the shared base would not build on this project's base: refused.
    env.write(
        ".stockade/Dockerfile",
        &format!("FROM {}\nRUN true\n", env.base_tag()),
    );
    env.run(&["trust"]).expect_code(0);
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("names its own custom base"),
        "{}",
        run.stderr()
    );
    assert!(env.containers().is_empty());
    for line in images.lines().filter(|l| l.starts_with(&own)) {
        let _ = docker(&["rmi", "-f", line]);
    }
}

// ---- class 14: engine options that grant capabilities or devices -----------------------------

#[test]
fn class14_project_engine_options_cannot_grant_capabilities_or_devices() {
    let env = attacker_env();
    write_project_config(
        &env,
        "[sandbox]\nengine_options = [\"--cap-add=NET_ADMIN\", \"--device=/dev/fuse\"]\n",
    );
    refused(&env, 1, "cap_device");
    // Variants: options refused everywhere, and a tmpfs over the runtime.
    write_project_config(
        &env,
        "[sandbox]\nengine_options = [\"--privileged\", \"--security-opt=seccomp=unconfined\", \"--pid=host\", \"--tmpfs=/opt/stockade\"]\n",
    );
    refused(&env, 1, "privileged_tmpfs");
}

// ---- class 10: default limits ----------------------------------------------------------------

#[test]
fn class10_default_memory_and_tmp_limits_apply() {
    let env = attacker_env();
    let script = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; df -k /tmp | tail -n 1 | awk '{print $2}'";
    let run = env.run(&["exec", "--", "sh", "-c", script]);
    run.expect_code(0);
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], (8u64 << 30).to_string(), "{out}");
    assert_eq!(lines[1], (2u64 << 20).to_string(), "{out}");
    // Raising either from a project needs approval.
    write_project_config(&env, "[sandbox]\nmemory = \"32g\"\ntmp_size = \"16g\"\n");
    refused(&env, 1, "raise_limits");
}
