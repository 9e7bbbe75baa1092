//! Rules on a parsed value that depend on the layer it came from. The project file is written by
//! whoever controls the project tree (the agent, a cloned repository), so it may not set what
//! shapes shared images ([`Class::GlobalOnly`] keys), environment names that change how the
//! sandbox's own programs run, mount targets over stockade's runtime or the system, engine
//! options that grant capabilities or devices, or paths outside the project. The user's own
//! layers (global file, variables, flags) keep their freedom, except over `/opt/stockade`.

use std::path::{Component, Path, PathBuf};

use super::keys::{Class, Key};
use super::source::Scope;
use super::value::{Bad, EngineOption, Value};

/// Where stockade's runtime lives in every sandbox image.
pub const RUNTIME_DIR: &str = "/opt/stockade";

/// What no layer may mount over (nor over a parent of): stockade's runtime, and the places it
/// hands files to the container through (`/.stockade-secrets`, `/.stockade-secrets.d`, and
/// whatever else it puts at `/.stockade*`).
pub const RUNTIME_DIRS: &[&str] = &[RUNTIME_DIR, "/.stockade*"];

/// Directories of the system a project file may not mount over (nor over a parent of them).
/// `/lib*` covers `/lib`, `/lib32`, `/lib64`, `/libx32`.
pub const SYSTEM_DIRS: &[&str] = &[
    "/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib*",
];

/// Exact variable names a project file may not set or pass through.
pub const RESERVED_ENV: &[&str] = &["PATH", "HOME", "USER", "SHELL", "BASH_ENV", "ENV", "IFS"];
/// Name prefixes a project file may not set or pass through.
pub const RESERVED_ENV_PREFIXES: &[&str] = &["LD_", "STOCKADE_"];

/// The message for a [`Class::GlobalOnly`] key set in a project file.
pub fn global_only(key: &Key) -> Bad {
    let (why, instead) = match key.section {
        "image" => (
            "it shapes images that every project shares",
            "; a project names its own image with `[image] base` or .stockade/Dockerfile",
        ),
        "network" => (
            "it lets sandboxes reach names that resolve to your private network",
            "; a project may ask for public hosts with `allow`",
        ),
        _ => ("it decides where stockade writes outside the project", ""),
    };
    Bad {
        message: format!(
            "`{}` can only be set in your global configuration: {why}",
            key.path()
        ),
        label: "global-only key",
        help: Some(format!(
            "move it to your global config file (`stockade config path` shows where) or set \
             {} for one run{instead}",
            key.env_var()
        )),
    }
}

/// Check one parsed value of `key` from a layer of `scope`.
pub fn check(key: &Key, value: &Value, scope: Scope, project_root: &Path) -> Result<(), Bad> {
    let project = scope == Scope::Project;
    if project && key.class == Class::GlobalOnly {
        return Err(global_only(key));
    }
    match value {
        Value::Env(env) if project => env_name(env.name()),
        Value::Mount(m) => target(&m.target, project, "mount target"),
        Value::EngineOption(o) => engine_option(o, project),
        // The paths a project file may set (`base_dockerfile`) stay inside the project.
        Value::Path(p) if project => inside_project(p, project_root),
        _ => Ok(()),
    }
}

/// Whether a project file may use `name` in `[sandbox] env`.
pub fn env_name(name: &str) -> Result<(), Bad> {
    let reserved =
        RESERVED_ENV.contains(&name) || RESERVED_ENV_PREFIXES.iter().any(|p| name.starts_with(p));
    if !reserved {
        return Ok(());
    }
    Err(Bad {
        message: format!(
            "{name} changes how programs in the sandbox run (stockade's own included), so a \
             project file may not set or pass it"
        ),
        label: "reserved name",
        help: Some(
            "set it in your global config file or with STOCKADE_SANDBOX_ENV if you mean it; \
             project files may not name PATH, LD_*, HOME, USER, SHELL, BASH_ENV, ENV, IFS or \
             STOCKADE_*"
                .to_owned(),
        ),
    })
}

/// A mount or tmpfs target: never with `..`, never over stockade's runtime ([`RUNTIME_DIRS`])
/// or a parent of it; from a project file never over the system directories either.
pub fn target(path: &Path, project: bool, what: &str) -> Result<(), Bad> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Bad {
            message: format!("{what} {} contains `..`", path.display()),
            label: "`..` in target",
            help: Some("write the target as a plain absolute path".to_owned()),
        });
    }
    let Some(dir) = protected_dir(path, project) else {
        return Ok(());
    };
    let runtime = RUNTIME_DIRS.contains(&dir);
    Err(Bad {
        message: format!(
            "{what} {} would cover {dir}: {}",
            path.display(),
            if runtime {
                "stockade's runtime (init, entrypoint, secrets) lives there"
            } else {
                "a project file may not mount over the system"
            }
        ),
        label: "protected target",
        help: Some(if runtime {
            "mount it somewhere else: nothing may be mounted over /opt/stockade or /.stockade*"
                .to_owned()
        } else {
            "mount it somewhere else, e.g. under /mnt or your home directory; the user's own \
             global config may mount at /etc (e.g. a gitconfig)"
                .to_owned()
        }),
    })
}

/// The protected directory `path` lies under or is a parent of: stockade's runtime
/// ([`RUNTIME_DIRS`]) for every layer, the system ([`SYSTEM_DIRS`]) too when the path comes from
/// the project.
pub fn protected_dir(path: &Path, project: bool) -> Option<&'static str> {
    let system: &[&str] = if project { SYSTEM_DIRS } else { &[] };
    RUNTIME_DIRS
        .iter()
        .chain(system)
        .find(|dir| covers(path, dir))
        .copied()
}

/// Whether `target` lies under `dir` or is a parent of it (`/`, `/opt` hide `/opt/stockade`).
/// A `dir` ending in `*` matches any name with that prefix (`/lib*`).
fn covers(target: &Path, dir: &str) -> bool {
    let names: Vec<String> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let dir_names: Vec<&str> = dir.split('/').filter(|n| !n.is_empty()).collect();
    names
        .iter()
        .zip(&dir_names)
        .all(|(name, pattern)| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        })
}

/// Project files may not grant capabilities or devices, nor put a tmpfs over the system.
fn engine_option(option: &EngineOption, project: bool) -> Result<(), Bad> {
    let refused = |what: &str| Bad {
        message: format!("engine option {option} {what}, which a project file may not do"),
        label: "refused in a project file",
        help: Some(
            "set it in your global config file if you mean it (read docs/security.md first)"
                .to_owned(),
        ),
    };
    match option {
        EngineOption::CapAdd(_) if project => Err(refused("grants a capability")),
        EngineOption::Device(_) if project => Err(refused("grants a host device")),
        EngineOption::Tmpfs(spec) => {
            let path = spec.split_once(':').map_or(spec.as_str(), |(p, _)| p);
            target(Path::new(path), project, "tmpfs target")
        }
        _ => Ok(()),
    }
}

/// A path a project file names (`base_dockerfile`) stays inside the project, symlinks resolved.
fn inside_project(path: &Path, root: &Path) -> Result<(), Bad> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let resolved = path.canonicalize().unwrap_or_else(|_| normalize(path));
    if resolved.starts_with(&root) {
        return Ok(());
    }
    Err(Bad {
        message: format!(
            "{} is outside the project {}: a project file may only name files inside it",
            resolved.display(),
            root.display()
        ),
        label: "outside the project",
        help: Some(
            "put the file in the project (e.g. .stockade/base.Dockerfile), or set the key in \
             your global config file"
                .to_owned(),
        ),
    })
}

/// `a/./b/../c` → `a/c` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_matches_under_parents_and_globs() {
        for (target, dir, expected) in [
            ("/etc/gitconfig", "/etc", true),
            ("/etc", "/etc", true),
            ("/", "/etc", true),
            ("/opt", RUNTIME_DIR, true),
            ("/opt/stockade/entrypoint.sh", RUNTIME_DIR, true),
            ("/opt/other", RUNTIME_DIR, false),
            ("/lib64/ld.so", "/lib*", true),
            ("/libx32", "/lib*", true),
            ("/library", "/lib*", true),
            ("/srv/etc", "/etc", false),
            ("//etc/./x", "/etc", true),
            ("/home/u/etc", "/etc", false),
        ] {
            assert_eq!(covers(Path::new(target), dir), expected, "{target} {dir}");
        }
    }

    #[test]
    fn reserved_env_names() {
        for name in [
            "PATH",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "HOME",
            "STOCKADE_X",
            "IFS",
        ] {
            assert!(env_name(name).is_err(), "{name}");
        }
        for name in ["PATHS", "MY_PATH", "RUST_LOG", "uid", "sudo_wanted", "LDX"] {
            assert!(env_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn user_layers_may_mount_at_etc_but_never_over_the_runtime() {
        assert!(target(Path::new("/etc/gitconfig"), false, "t").is_ok());
        assert!(target(Path::new("/etc/gitconfig"), true, "t").is_err());
        for t in [
            "/opt/stockade",
            "/opt/stockade/x",
            "/opt",
            "/",
            "/.stockade-secrets",
            "/.stockade-secrets.d",
        ] {
            assert!(target(Path::new(t), false, "t").is_err(), "{t}");
        }
        assert!(target(Path::new("/data/../opt/stockade"), false, "t").is_err());
        assert!(target(Path::new("/data"), true, "t").is_ok());
    }
}
