//! Which C library a sandbox image has, and which build of a native agent runs on it
//! (docs/agents.md, "Runtimes"). opencode and Claude Code are native programs: their npm
//! package installs a glibc build in stockade's Debian helper, and both publish a musl build
//! as a platform package of its own. The probe looks at the image (in a helper that has no
//! network, no mounts and no secrets); what it answers only chooses between two builds stockade
//! installs itself, from the registry, in the foundation: an image that lies gets a build that
//! fails on it, nothing more.

use serde::{Deserialize, Serialize};

use super::install::quote;

/// The C library a native build is linked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    Glibc,
    Musl,
}

impl Libc {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Glibc => "glibc",
            Self::Musl => "musl",
        }
    }
}

/// Which install of an agent a sandbox gets, each in its own tools volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Build {
    /// The agent's package as its package manager installs it in stockade's Debian helper
    /// (for a native agent: its glibc build). Every agent has it.
    Package,
    /// A native agent's musl build, from its musl platform package.
    Musl,
}

/// A native agent's musl build: a platform package on the npm registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MuslBuild {
    /// The package; `{arch}` is the npm architecture of the engine (`x64`, `arm64`).
    pub package: &'static str,
    /// The program inside the package (relative to its root).
    pub program: &'static str,
    /// Shared libraries besides musl's libc it needs from the image.
    pub libraries: &'static [&'static str],
    /// How to add them on Alpine.
    pub alpine: Option<&'static str>,
}

impl MuslBuild {
    /// The package for an architecture: `opencode-linux-x64-musl`.
    pub fn package_for(&self, arch: &str) -> String {
        self.package.replace("{arch}", arch)
    }
}

/// The libraries the probe looks for: every one a built-in musl build needs.
pub const PROBED_LIBRARIES: &[&str] = &["libstdc++.so.6", "libgcc_s.so.1"];

/// Where musl's loader looks for libraries when the image configures nothing else.
const MUSL_LIBRARY_DIRS: &str = "/lib /usr/local/lib /usr/lib";

/// The probe, run with `sh` in the sandbox image: `glibc` when glibc's loader is there, `musl`
/// when musl's is, and `lib NAME` for each of [`PROBED_LIBRARIES`] on musl's default path.
pub fn libc_probe_script() -> String {
    let libraries: Vec<String> = PROBED_LIBRARIES.iter().map(|l| quote(l)).collect();
    format!(
        "for f in /lib64/ld-linux-*.so.* /lib/ld-linux-*.so.* /lib/*/ld-linux-*.so.*; do \
         [ -e \"$f\" ] && {{ echo glibc; break; }}; done; \
         for f in /lib/ld-musl-*.so.1; do [ -e \"$f\" ] && {{ echo musl; break; }}; done; \
         for lib in {}; do for dir in {MUSL_LIBRARY_DIRS}; do \
         [ -e \"$dir/$lib\" ] && {{ echo \"lib $lib\"; break; }}; done; done; true",
        libraries.join(" ")
    )
}

/// What the probe found in an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibcProbe {
    /// glibc's loader (glibc is preferred when an image has both).
    pub glibc: bool,
    /// musl's loader (`/lib/ld-musl-<arch>.so.1`).
    pub musl: bool,
    /// Which of [`PROBED_LIBRARIES`] it has.
    pub libraries: Vec<String>,
}

impl LibcProbe {
    /// Read the probe's output: only the lines it prints count, anything else is ignored.
    pub fn parse(output: &str) -> Self {
        let mut probe = Self::default();
        for line in output.lines().map(str::trim) {
            match line {
                "glibc" => probe.glibc = true,
                "musl" => probe.musl = true,
                _ => {
                    if let Some(lib) = line.strip_prefix("lib ")
                        && PROBED_LIBRARIES.contains(&lib)
                        && !probe.libraries.iter().any(|l| l == lib)
                    {
                        probe.libraries.push(lib.to_owned());
                    }
                }
            }
        }
        probe
    }

    /// Its C library: glibc, else musl, else none.
    pub fn libc(&self) -> Option<Libc> {
        if self.glibc {
            Some(Libc::Glibc)
        } else if self.musl {
            Some(Libc::Musl)
        } else {
            None
        }
    }
}

/// Why a native agent cannot run on an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    /// Neither glibc nor musl.
    NoLibc,
    /// musl, and the agent publishes no musl build.
    NoMuslBuild,
    /// musl, and the musl build needs libraries the image lacks.
    MissingLibraries {
        missing: Vec<&'static str>,
        alpine: Option<&'static str>,
    },
}

impl Unfit {
    /// What is wrong, after "its command is a native program ".
    pub fn problem(&self) -> String {
        match self {
            Self::NoLibc => "built for glibc or musl, and the sandbox image has neither C library \
                             (no dynamic loader /lib*/ld-linux-* or /lib/ld-musl-*)"
                .to_owned(),
            Self::NoMuslBuild => "built for glibc, and the sandbox image's C library is musl \
                                  (the agent publishes no musl build)"
                .to_owned(),
            Self::MissingLibraries { missing, .. } => format!(
                "whose musl build (the sandbox image's C library is musl) needs {}, which the \
                 image does not have",
                and_list(missing)
            ),
        }
    }

    /// How to fix it.
    pub fn fix(&self) -> String {
        match self {
            Self::NoLibc => "use a glibc-based (Debian, Ubuntu, Fedora…) or musl-based (Alpine) \
                             base image for it"
                .to_owned(),
            Self::NoMuslBuild => {
                "use a glibc-based base image (Debian, Ubuntu, Fedora…) for it".to_owned()
            }
            Self::MissingLibraries { missing, alpine } => match alpine {
                Some(command) => format!(
                    "add {} to the base image (Alpine: `{command}`), or use a glibc-based base image",
                    and_list(missing)
                ),
                None => format!(
                    "add {} to the base image, or use a glibc-based base image",
                    and_list(missing)
                ),
            },
        }
    }
}

/// The build of a native agent (`musl`: its musl build, if any) that runs on an image.
pub fn native_build(musl: Option<&MuslBuild>, probe: &LibcProbe) -> Result<Build, Unfit> {
    match probe.libc() {
        Some(Libc::Glibc) => Ok(Build::Package),
        None => Err(Unfit::NoLibc),
        Some(Libc::Musl) => {
            let musl = musl.ok_or(Unfit::NoMuslBuild)?;
            let missing: Vec<&'static str> = musl
                .libraries
                .iter()
                .copied()
                .filter(|lib| !probe.libraries.iter().any(|l| l == lib))
                .collect();
            if missing.is_empty() {
                Ok(Build::Musl)
            } else {
                Err(Unfit::MissingLibraries {
                    missing,
                    alpine: musl.alpine,
                })
            }
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENCODE: MuslBuild = MuslBuild {
        package: "opencode-linux-{arch}-musl",
        program: "bin/opencode",
        libraries: &["libstdc++.so.6", "libgcc_s.so.1"],
        alpine: Some("apk add libstdc++"),
    };

    #[test]
    fn the_probe_answer_is_read_strictly() {
        let probe = LibcProbe::parse("musl\nlib libgcc_s.so.1\nlib /etc/shadow\nglibcx\n\n");
        assert_eq!(
            probe,
            LibcProbe {
                glibc: false,
                musl: true,
                libraries: vec!["libgcc_s.so.1".into()]
            }
        );
        assert_eq!(LibcProbe::parse("glibc\nmusl\n").libc(), Some(Libc::Glibc));
        assert_eq!(LibcProbe::parse("").libc(), None);
        assert_eq!(OPENCODE.package_for("x64"), "opencode-linux-x64-musl");
    }

    #[test]
    fn builds_by_libc() {
        let glibc = LibcProbe::parse("glibc\n");
        assert_eq!(native_build(Some(&OPENCODE), &glibc), Ok(Build::Package));
        assert_eq!(
            native_build(Some(&OPENCODE), &LibcProbe::default()),
            Err(Unfit::NoLibc)
        );
        let bare = LibcProbe::parse("musl\n");
        let unfit = native_build(Some(&OPENCODE), &bare).unwrap_err();
        assert_eq!(
            unfit.problem(),
            "whose musl build (the sandbox image's C library is musl) needs libstdc++.so.6 and \
             libgcc_s.so.1, which the image does not have"
        );
        assert_eq!(
            unfit.fix(),
            "add libstdc++.so.6 and libgcc_s.so.1 to the base image (Alpine: `apk add libstdc++`), \
             or use a glibc-based base image"
        );
        assert_eq!(native_build(None, &bare), Err(Unfit::NoMuslBuild));
        let full = LibcProbe::parse("musl\nlib libstdc++.so.6\nlib libgcc_s.so.1\n");
        assert_eq!(native_build(Some(&OPENCODE), &full), Ok(Build::Musl));
        assert_eq!(and_list(&["a", "b", "c"]), "a, b and c");
    }

    /// The probe runs in sh and prints what it finds: here, on this (glibc) host's root.
    #[test]
    fn the_probe_finds_glibc_here() {
        let out = std::process::Command::new("sh")
            .args(["-c", &libc_probe_script()])
            .output()
            .unwrap();
        assert!(out.status.success());
        let probe = LibcProbe::parse(&String::from_utf8_lossy(&out.stdout));
        assert!(probe.glibc, "{probe:?}");
    }
}
