//! The sandbox boundary at run time (issue 9). Against a hostile image: a project Dockerfile the user approved
//! replaces everything stockade once relied on inside the image (`setpriv`, `gosu`, `tini`, `sh`,
//! the entrypoint) with pass-through scripts and adds setuid-root binaries. The container starts
//! as the host user with no capabilities, so none of it matters: the command, and everything the
//! image runs before it, is the host uid with CapEff/CapPrm/CapBnd 0 and no-new-privileges.
//! Also: no configuration value reaches a privileged step (class 2), proxy credentials stay out
//! of `docker inspect` (class 11), installs run in unprivileged helpers (class 14).

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::Duration;

use common::{Env, HostUser, HostWatch, PRIVILEGES, assert_unprivileged, docker, poll};

/// Pass-through replacements and setuid-root helpers, then a hostile entrypoint that tries to
/// plant a setuid-root shell in the project and run the command through a setuid-root shell.
fn hostile_dockerfile(base: &str) -> String {
    format!(
        r#"FROM {base}
USER root
RUN printf '#!/bin/bash\n[ "$1" = -- ] && shift\nexec "$@"\n' > /opt/stockade/bin/tini \
 && printf '#!/bin/bash\nwhile [ "$#" -gt 0 ] && [ "$1" != -- ]; do shift; done; shift\nexec "$@"\n' > /usr/bin/setpriv \
 && printf '#!/bin/bash\nshift\nexec "$@"\n' > /opt/stockade/bin/gosu \
 && rm /bin/sh && printf '#!/bin/dash\nexec /bin/dash "$@"\n' > /bin/sh \
 && chmod 755 /opt/stockade/bin/tini /usr/bin/setpriv /opt/stockade/bin/gosu /bin/sh \
 && cp /bin/bash /usr/local/bin/rootsh && chmod 4755 /usr/local/bin/rootsh \
 && cp /bin/cp /usr/local/bin/rootcp && chmod 4755 /usr/local/bin/rootcp \
 && chmod u+s /usr/bin/find
COPY entrypoint.sh /opt/stockade/entrypoint.sh
RUN chmod 755 /opt/stockade/entrypoint.sh
"#
    )
}

const HOSTILE_ENTRYPOINT: &str = r#"#!/bin/bash
# Try every way up before the command runs.
/usr/local/bin/rootcp /bin/bash "$PWD/planted-suid" 2>/dev/null
/usr/local/bin/rootsh -p -c 'chown 0:0 "$0" && chmod 4755 "$0"' "$PWD/planted-suid" 2>/dev/null
/usr/bin/find "$PWD" -maxdepth 0 -exec chown 0:0 {} \; 2>/dev/null
echo "entrypoint: $(/usr/local/bin/rootsh -p -c 'id -u')" >&2
exec /usr/local/bin/rootsh -p -c 'exec "$@"' hostile "$@"
"#;

#[test]
fn a_hostile_image_gets_neither_root_nor_capabilities() {
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::layered("hostile-image").run_as(user.clone());
    env.write(".stockade/Dockerfile", &hostile_dockerfile(&env.base_tag()));
    env.write(".stockade/entrypoint.sh", HOSTILE_ENTRYPOINT);
    // The user approves the project configuration (nothing is asked: stdin is closed).
    env.run(&["trust"]).expect_code(0);
    let watch = HostWatch::new(&env);

    let project = env.project.display().to_string();
    let script = format!(
        "{PRIVILEGES}; echo ---; /usr/local/bin/rootsh -p -c \"{PRIVILEGES}\"; \
         /usr/local/bin/rootcp /bin/bash '{project}/cmd-suid'; \
         /usr/local/bin/rootsh -p -c \"chown 0:0 '{project}/cmd-suid'; chmod 4755 '{project}/cmd-suid'\"; \
         sudo -n true 2>/dev/null && echo SUDO-WORKED; exit 0"
    );
    let run = env.run(&["exec", "--", "bash", "-c", &script]);
    run.expect_code(0);
    let stdout = run.stdout();
    let (direct, through_suid) = stdout.split_once("---\n").expect("both reports");
    assert_unprivileged(direct, user.uid);
    assert_unprivileged(through_suid, user.uid);
    assert!(!stdout.contains("SUDO-WORKED"), "{stdout}");
    assert!(
        run.stderr().contains(&format!("entrypoint: {}", user.uid)),
        "the image's own entrypoint ran as the user too:\n{}",
        run.stderr()
    );

    // Nothing in the project belongs to anyone else, and nothing is setuid-root.
    let mut stack = vec![env.project.clone()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            meta.uid(),
            user.uid,
            "{} is owned by uid {}",
            path.display(),
            meta.uid()
        );
        // (The user may make their own files setuid; that gives nothing. Setuid-root is the hole.)
        assert!(
            meta.uid() != 0 || meta.mode() & 0o6000 == 0,
            "{} is setuid-root",
            path.display()
        );
        if meta.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    watch.assert_unchanged();
    assert!(env.containers().is_empty());
}

#[test]
fn a_hostile_entrypoint_and_passwd_do_not_change_who_runs() {
    // Variant: the image replaces the entrypoint outright (its own ENTRYPOINT, `USER root`) and
    // its /etc/passwd names the host user as uid 0. The engine starts the container as the host
    // uid, and the passwd the sandbox sees is stockade's: the user's name maps to the user's uid.
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::layered("hostile-entry").run_as(user.clone());
    env.write(
        ".stockade/Dockerfile",
        &format!(
            "FROM {}\nUSER root\n\
             RUN echo '{}:x:0:0::/root:/bin/bash' >> /etc/passwd \\\n \
             && cp /bin/bash /usr/local/bin/rootsh && chmod 4755 /usr/local/bin/rootsh\n\
             ENTRYPOINT [\"/usr/local/bin/rootsh\", \"-p\", \"-c\", \"exec \\\"$@\\\"\", \"hostile\"]\n",
            env.base_tag(),
            user.name
        ),
    );
    env.run(&["trust"]).expect_code(0);
    let watch = HostWatch::new(&env);
    let script = format!(
        "{PRIVILEGES}; echo \"name=$(id -un) uid=$(id -u {})\"",
        user.name
    );
    let run = env.run(&["exec", "--", "bash", "-c", &script]);
    run.expect_code(0);
    assert_unprivileged(&run.stdout(), user.uid);
    assert!(
        run.stdout()
            .contains(&format!("name={} uid={}", user.name, user.uid)),
        "{}",
        run.stdout()
    );
    watch.assert_unchanged();
}

#[test]
fn no_configuration_value_reaches_a_privileged_step() {
    // Class 2: the issue's `env = ["uid=0", "sudo_wanted=1"]` and its variants naming stockade's
    // own contract variables, from the user's own global file (a project file is refused before
    // this, see boundary_config.rs). Nothing in the sandbox is privileged to begin with; the values
    // reach the command's environment, and nothing else.
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::new().run_as(user.clone());
    env.write_global_config(&format!(
        "{}[sandbox]\nenv = [\"uid=0\", \"sudo_wanted=1\", \"STOCKADE_SUDO=1\", \"STOCKADE_UID=0\", \
         \"STOCKADE_PATH=/nowhere\"]\n",
        common::default_config(&common::base_image())
    ));
    let watch = HostWatch::new(&env);
    let script = format!("{PRIVILEGES}; echo \"$uid $sudo_wanted $STOCKADE_SUDO $STOCKADE_UID\"");
    let run = env.run(&["exec", "--", "sh", "-c", &script]);
    run.expect_code(0);
    assert_unprivileged(&run.stdout(), user.uid);
    assert!(run.stdout().ends_with("0 1 1 0\n"), "{}", run.stdout());
    watch.assert_unchanged();

    // The issue's own example from a project file: valid names, literal values, so no approval
    // is asked (nothing of the host is added); still nothing but the command sees them.
    env.write(
        ".stockade/config.toml",
        "[sandbox]\nenv = [\"uid=0\", \"sudo_wanted=1\"]\n",
    );
    let script = format!("{PRIVILEGES}; echo \"$uid $sudo_wanted\"");
    let run = env.run(&["exec", "--", "sh", "-c", &script]);
    run.expect_code(0);
    assert_unprivileged(&run.stdout(), user.uid);
    assert!(run.stdout().ends_with("0 1\n"), "{}", run.stdout());
    watch.assert_unchanged();
}

#[test]
fn proxy_credentials_stay_out_of_the_container_configuration() {
    // Class 11: `HTTPS_PROXY=http://user:pass@…` reaches the command, never `docker inspect`.
    let user = HostUser::ensure(1234, "stockade-t1234");
    let env = Env::new()
        .env("HTTPS_PROXY", "http://agent:pr0xy-pa55@127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        // Variant: a token as the user part only, another scheme.
        .env("ALL_PROXY", "socks5h://t0ken-only@127.0.0.1:9")
        .run_as(user);
    // The host's proxies reach a sandbox on the bridge (`--egress open`); behind the egress
    // gateway its own credentials replace them (below).
    let mut child = env
        .command(&[
            "exec",
            "--egress",
            "open",
            "--",
            "sh",
            "-c",
            "echo \"$HTTPS_PROXY $http_proxy $ALL_PROXY\"; sleep 5",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let inspect = poll(Duration::from_secs(30), || {
        let id = env.containers().into_iter().next()?;
        let out = docker(&["inspect", &id]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .expect("the sandbox container appears");
    let _ = child.stdin.take();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !inspect.contains("pr0xy-pa55"),
        "proxy password in docker inspect"
    );
    assert!(
        !inspect.contains("t0ken-only"),
        "proxy token in docker inspect"
    );
    assert!(
        inspect.contains("http_proxy=http://127.0.0.1:9"),
        "{inspect}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "http://agent:pr0xy-pa55@127.0.0.1:9 http://127.0.0.1:9 socks5h://t0ken-only@127.0.0.1:9\n"
    );
    if common::engine_is_podman() {
        return; // no gateway there (docs/podman.md)
    }
    // Behind the gateway: the sandbox's own proxy credentials, as secrets too.
    let child = env
        .command(&[
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$HTTPS_PROXY\"; echo \"$HTTP_PROXY\"; sleep 5",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let inspect = poll(Duration::from_secs(60), || {
        let id = env.containers().into_iter().next()?;
        let out = docker(&["inspect", &id]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .expect("the sandbox container appears");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (url, http_url) = stdout
        .trim()
        .split_once('\n')
        .expect("both proxy variables");
    let token = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, token)| token.to_owned())
        .expect("proxy credentials in the sandbox");
    assert!(url.ends_with("@stockade-gateway:3128"), "{url}");
    // Plain HTTP goes to the gateway's own front, with the same credentials.
    assert_eq!(
        http_url,
        url.replace("@stockade-gateway:3128", "@stockade-gateway:3130")
    );
    assert!(token.len() >= 32);
    assert!(!inspect.contains(&token), "gateway token in docker inspect");
    assert!(
        !inspect.contains("pr0xy-pa55"),
        "host proxy in docker inspect"
    );
}

#[test]
fn installs_run_as_an_unprivileged_helper_that_owns_the_tools_volume() {
    // Class 14: npm (and the package's install scripts) run in a helper as uid 65532 with no
    // capabilities; the tools volume it fills belongs to that uid and is read-only in sandboxes.
    let env = Env::layered("helper-uid");
    env.write_global_config(&format!(
        "{}\n[agents.moo]\ninstall = \"npm\"\npackage = \"cowsay\"\ncommand = \"cowsay\"\nversion = \"1.6.0\"\n",
        common::default_config(&common::base_image())
    ));
    let mut child = env
        .command(&["moo", "hello"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let filter = format!("label=io.stockade.namespace={}", env.namespace);
    let mut seen = std::collections::BTreeSet::new();
    while child.try_wait().unwrap().is_none() {
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            "label=io.stockade.kind=helper",
            "--filter",
            &filter,
        ]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let out = docker(&[
                "inspect",
                "--format",
                "{{.Config.User}} {{json .HostConfig.CapAdd}} {{json .HostConfig.SecurityOpt}}",
                id,
            ]);
            if out.status.success() {
                seen.insert(String::from_utf8_lossy(&out.stdout).trim().to_owned());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("hello"));
    assert!(!seen.is_empty(), "no helper container was seen");
    for helper in &seen {
        assert_eq!(
            helper, "65532:65532 [] [\"no-new-privileges\"]",
            "a helper ran with more than it needs"
        );
    }
    let volume = common::volumes_labelled(&[
        &format!("io.stockade.namespace={}", env.namespace),
        "io.stockade.agent=moo",
    ])
    .join("\n");
    let owners = common::run_container(&[
        "--rm",
        "-v",
        &format!("{volume}:/v:ro"),
        &common::base_image(),
        "sh",
        "-c",
        "find /v -maxdepth 2 -printf '%U\\n' | sort -u",
    ]);
    assert_eq!(owners, "65532");
}
