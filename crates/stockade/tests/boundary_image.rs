//! The sandbox boundary against a hostile image (issue 9): a project Dockerfile the user approved
//! replaces everything stockade once relied on inside the image (`setpriv`, `gosu`, `tini`, `sh`,
//! the entrypoint) with pass-through scripts and adds setuid-root binaries. The container starts
//! as the host user with no capabilities, so none of it matters: the command, and everything the
//! image runs before it, is the host uid with CapEff/CapPrm/CapBnd 0 and no-new-privileges.

mod common;

use std::os::unix::fs::MetadataExt;

use common::{Env, HostUser, HostWatch, PRIVILEGES, assert_unprivileged};

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
}
