//! What differs when the engine is Podman's Docker-compatible API rather than Docker
//! (docs/podman.md). Everything engine-specific is decided here, from what the engine says of
//! itself in `GET /version`, and nowhere else.

use bollard::models::{ResourcesUlimits, SystemVersion};

/// Which engine answers the Engine API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Docker,
    Podman,
}

impl EngineKind {
    /// Podman names itself in `/version`: a component "Podman Engine" (Podman 4 and 5), or a
    /// platform name containing "Podman" on some builds. Anything else is taken for Docker.
    pub fn of(version: &SystemVersion) -> Self {
        let component = version
            .components
            .iter()
            .flatten()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"));
        let platform = version
            .platform
            .as_ref()
            .is_some_and(|p| p.name.to_ascii_lowercase().contains("podman"));
        if component || platform {
            Self::Podman
        } else {
            Self::Docker
        }
    }
}

/// The resource limits Podman sets on every container unless the request names them, and that
/// stockade therefore names itself.
///
/// Docker's containers inherit the daemon's limits. Rootful Podman instead raises `nofile` and
/// `nproc` to its own defaults (1048576 and 4194304), and the runtime fails with "error setting
/// rlimit type 7" where the host's hard limit is lower (a container or a VM with tight limits).
/// So on Podman each one the user did not set is asked for explicitly: this process's hard limit,
/// capped at Podman's default, soft = hard as Podman does; `nproc` is also capped at the kernel's
/// `pid_max` (no user can have more processes than that, and Podman's service lowers its own
/// limit to it). A local socket's service usually runs with the same limits; one with lower
/// limits still fails, as Podman alone would, and the user sets `--ulimit` in `engine_options`.
pub(crate) const PODMAN_DEFAULT_LIMITS: [(&str, &str, i64); 2] = [
    ("nofile", "Max open files", 1_048_576),
    ("nproc", "Max processes", 4_194_304),
];

/// The explicit `Ulimits` a Podman container needs, for those of `PODMAN_DEFAULT_LIMITS` not in
/// `given`; `limits` is the text of `/proc/self/limits`, `pid_max` that of
/// `/proc/sys/kernel/pid_max`.
pub(crate) fn explicit_ulimits(
    given: &[ResourcesUlimits],
    limits: &str,
    pid_max: &str,
) -> Vec<ResourcesUlimits> {
    let pid_max = pid_max.trim().parse::<i64>().ok();
    PODMAN_DEFAULT_LIMITS
        .iter()
        .filter(|(name, _, _)| !given.iter().any(|u| u.name.as_deref() == Some(name)))
        .map(|(name, label, podman_default)| {
            let mut hard =
                hard_limit(limits, label).map_or(*podman_default, |h| h.min(*podman_default));
            if *name == "nproc"
                && let Some(pid_max) = pid_max
            {
                hard = hard.min(pid_max);
            }
            ResourcesUlimits {
                name: Some((*name).to_owned()),
                soft: Some(hard),
                hard: Some(hard),
            }
        })
        .collect()
}

/// The hard limit on the line of `/proc/self/limits` starting with `label`; `None` when it is
/// unlimited or cannot be read.
fn hard_limit(limits: &str, label: &str) -> Option<i64> {
    let rest = limits.lines().find_map(|l| l.strip_prefix(label))?;
    let mut fields = rest.split_whitespace();
    let _soft = fields.next()?;
    fields.next()?.parse().ok()
}

/// Podman lists images by their full names: `docker.io/library/x-stockade:base` for an image
/// built as `x-stockade:base`, `localhost/…` for one loaded or imported. Names are given back as
/// stockade and Docker write them (Docker's familiar names).
pub(crate) fn docker_style_tag(tag: String) -> String {
    ["docker.io/library/", "localhost/"]
        .iter()
        .find_map(|prefix| tag.strip_prefix(prefix))
        .map_or_else(|| tag.clone(), str::to_owned)
}

/// A build output line as Docker writes it: Podman (buildah) announces a step as
/// `STEP 2/3: RUN …`, Docker as `Step 2/3 : RUN …`; other lines are unchanged.
pub(crate) fn docker_style_step(line: &str) -> String {
    match line
        .strip_prefix("STEP ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((count, instruction)) if count.contains('/') => {
            format!("Step {count} : {instruction}")
        }
        _ => line.to_owned(),
    }
}

/// Podman's container states that the Engine API also has, as a `status` filter (Podman refuses
/// Docker's `restarting` and `dead` there). Podman 4.3 also reports `stopped` (exited, not yet
/// cleaned up), which the API's clients cannot read.
pub(crate) const LISTABLE_STATES: &[&str] = &["created", "running", "paused", "exited", "removing"];
/// How often, and how far apart, a listing is asked again while Podman still shows a container
/// as `stopped` (its cleanup takes well under a second; then those are left out), or while an
/// image listing fails on an image removed meanwhile.
pub(crate) const RETRIES: u32 = 10;
pub(crate) const RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// Whether a listing failed on a container state the API does not know (Podman's `stopped`).
pub(crate) fn is_unknown_state(error: &bollard::errors::Error) -> bool {
    matches!(error, bollard::errors::Error::JsonDataError { message, .. }
        if message.contains("unknown variant"))
}

/// Whether an image listing failed because an image went away while Podman listed it.
pub(crate) fn is_vanished_image(error: &bollard::errors::Error) -> bool {
    matches!(error, bollard::errors::Error::DockerResponseServerError { message, .. }
        if message.contains("image not known"))
}

/// Whether `labels` carries every one of `wanted` (`key=value`, or `key` for any value).
///
/// Docker ANDs several `label` filters of a listing; Podman 4.3's compatible API ORs them (a
/// volume with either label is listed). Every listing checks the labels again on its answer, so
/// both engines give what was asked.
pub(crate) fn has_labels(
    labels: &std::collections::HashMap<String, String>,
    wanted: &[String],
) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
        None => labels.contains_key(w),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{SystemVersionComponents, SystemVersionPlatform};

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max processes             96364                96364                processes \n\
        Max open files            1024                 20000                files     \n";

    #[test]
    fn podman_is_told_by_its_component_or_platform() {
        let podman = SystemVersion {
            components: Some(vec![SystemVersionComponents {
                name: "Podman Engine".to_owned(),
                version: "4.3.1".to_owned(),
                details: None,
            }]),
            platform: Some(SystemVersionPlatform {
                name: "linux/amd64/debian-12".to_owned(),
            }),
            ..Default::default()
        };
        assert_eq!(EngineKind::of(&podman), EngineKind::Podman);
        let by_platform = SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "Podman Engine".to_owned(),
            }),
            ..Default::default()
        };
        assert_eq!(EngineKind::of(&by_platform), EngineKind::Podman);
        let docker = SystemVersion {
            components: Some(vec![SystemVersionComponents {
                name: "Engine".to_owned(),
                version: "20.10.24".to_owned(),
                details: None,
            }]),
            platform: Some(SystemVersionPlatform {
                name: "Docker Engine - Community".to_owned(),
            }),
            ..Default::default()
        };
        assert_eq!(EngineKind::of(&docker), EngineKind::Docker);
        assert_eq!(
            EngineKind::of(&SystemVersion::default()),
            EngineKind::Docker
        );
    }

    #[test]
    fn ulimits_follow_the_hard_limits_unless_given() {
        let all = explicit_ulimits(&[], LIMITS, "4194304\n");
        let pairs: Vec<_> = all
            .iter()
            .map(|u| (u.name.clone().unwrap(), u.soft.unwrap(), u.hard.unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("nofile".to_owned(), 20000, 20000),
                ("nproc".to_owned(), 96364, 96364)
            ]
        );
        // nproc never above pid_max.
        let capped = explicit_ulimits(&[], LIMITS, "32768\n");
        assert_eq!(capped[1].hard, Some(32768));
        let given = [ResourcesUlimits {
            name: Some("nofile".to_owned()),
            soft: Some(10),
            hard: Some(20),
        }];
        let rest = explicit_ulimits(&given, LIMITS, "");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].name.as_deref(), Some("nproc"));
        // Unlimited or unreadable: Podman's own default.
        let unlimited =
            "Max open files            1024                 unlimited            files\n";
        let defaults = explicit_ulimits(&[], unlimited, "");
        assert_eq!(defaults[0].hard, Some(1_048_576));
        assert_eq!(defaults[1].hard, Some(4_194_304));
    }

    #[test]
    fn every_wanted_label_must_be_there() {
        let labels = std::collections::HashMap::from([
            ("io.stockade.kind".to_owned(), "tools".to_owned()),
            ("io.stockade.namespace".to_owned(), "x".to_owned()),
        ]);
        let want = |w: &[&str]| -> Vec<String> { w.iter().map(|s| (*s).to_owned()).collect() };
        assert!(has_labels(&labels, &[]));
        assert!(has_labels(
            &labels,
            &want(&["io.stockade.kind=tools", "io.stockade.namespace"])
        ));
        assert!(!has_labels(
            &labels,
            &want(&["io.stockade.kind=tools", "io.stockade.namespace=y"])
        ));
        assert!(!has_labels(&labels, &want(&["io.stockade.agent"])));
    }

    #[test]
    fn podman_step_lines_read_as_dockers() {
        assert_eq!(
            docker_style_step("STEP 2/3: RUN echo a: b && false"),
            "Step 2/3 : RUN echo a: b && false"
        );
        assert_eq!(
            docker_style_step("Step 2/3 : RUN true"),
            "Step 2/3 : RUN true"
        );
        assert_eq!(docker_style_step("STEP: not a step"), "STEP: not a step");
        assert_eq!(docker_style_step("about to fail"), "about to fail");
    }

    #[test]
    fn podman_names_read_as_dockers() {
        assert_eq!(
            docker_style_tag("localhost/x-stockade:base".to_owned()),
            "x-stockade:base"
        );
        assert_eq!(
            docker_style_tag("x-stockade:base".to_owned()),
            "x-stockade:base"
        );
        assert_eq!(
            docker_style_tag("docker.io/library/x-stockade:base".to_owned()),
            "x-stockade:base"
        );
        assert_eq!(
            docker_style_tag("docker.io/someone/a:b".to_owned()),
            "docker.io/someone/a:b"
        );
        assert_eq!(
            docker_style_tag("registry.example/a:b".to_owned()),
            "registry.example/a:b"
        );
    }
}
