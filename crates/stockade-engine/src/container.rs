//! Sandbox containers: create from a spec, attach, start, wait, resize, signal, remove.

use std::collections::HashMap;
use std::pin::Pin;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HealthConfig, HostConfig, HostConfigLogConfig, Mount,
    MountType, MountVolumeOptions, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, ResizeContainerTTYOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use stockade_core::config::EngineOption;
use stockade_core::sandbox::{NetworkMode, Restart, SandboxSpec};
use tokio::io::AsyncWrite;
use tracing::debug;

use crate::connect::Engine;
use crate::error::EngineError;
use crate::podman;

/// Each sandbox's log (json-file) is capped at `LOG_MAX_FILES` files of `LOG_MAX_SIZE`.
pub const LOG_MAX_SIZE: &str = "10m";
pub const LOG_MAX_FILES: &str = "3";

/// A chunk of a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputChunk {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// The streams of an attached container.
pub struct Attached {
    pub output: Pin<Box<dyn Stream<Item = Result<OutputChunk, EngineError>> + Send>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// A container stockade created, as listed by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub state: String,
    /// The ID of the image it was created from.
    pub image_id: String,
    /// The named volumes it mounts.
    pub volumes: Vec<String>,
    pub labels: HashMap<String, String>,
}

/// How long `remove` waits for a removal already under way (the engine's auto-remove).
const REMOVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Engine {
    /// Create a container from a sandbox spec; returns its ID.
    pub async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<String, EngineError> {
        let operation = format!(
            "POST /containers/create name={} image={}",
            spec.name, spec.image
        );
        debug!(target: "engine", "{operation}");
        if matches!(&spec.network, NetworkMode::Internal(n) | NetworkMode::Joined(n) if n.is_empty())
        {
            return Err(EngineError::Api {
                operation,
                status: 0,
                message: "the sandbox is behind the egress gateway but names no network \
                          (a bug in stockade: it was not planned)"
                    .to_owned(),
            });
        }
        let mut host_config = HostConfig {
            mounts: Some(
                spec.mounts
                    .iter()
                    .map(|m| Mount {
                        target: Some(m.target.to_string_lossy().into_owned()),
                        source: Some(m.source.to_string_lossy().into_owned()),
                        typ: Some(MountType::BIND),
                        read_only: Some(m.read_only),
                        ..Default::default()
                    })
                    .chain(spec.volumes.iter().map(|v| Mount {
                        target: Some(v.target.to_string_lossy().into_owned()),
                        // An empty name: an anonymous volume, removed with the container.
                        source: (!v.volume.is_empty()).then(|| v.volume.clone()),
                        typ: Some(MountType::VOLUME),
                        read_only: Some(v.read_only),
                        volume_options: Some(MountVolumeOptions {
                            labels: Some(v.labels.clone().into_iter().collect()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }))
                    .collect(),
            ),
            cap_drop: Some(spec.security.cap_drop.clone()),
            cap_add: Some(spec.security.cap_add.clone()),
            security_opt: spec
                .security
                .no_new_privileges
                .then(|| vec!["no-new-privileges".to_owned()]),
            pids_limit: Some(spec.limits.pids),
            memory: spec.limits.memory,
            nano_cpus: spec.limits.nano_cpus,
            privileged: Some(spec.security.privileged),
            readonly_rootfs: Some(spec.security.read_only_root),
            tmpfs: Some(
                spec.tmpfs
                    .iter()
                    .map(|(path, options)| (path.to_string_lossy().into_owned(), options.clone()))
                    .collect(),
            ),
            network_mode: match &spec.network {
                NetworkMode::Bridge => None,
                NetworkMode::None => Some("none".to_owned()),
                NetworkMode::Internal(name) => Some(name.clone()),
                NetworkMode::Joined(container) => Some(format!("container:{container}")),
            },
            sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
            port_bindings: (!spec.ports.is_empty()).then(|| {
                let mut map: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
                for p in &spec.ports {
                    map.entry(format!("{}/{}", p.container_port, p.protocol))
                        .or_insert_with(|| Some(Vec::new()))
                        .get_or_insert_with(Vec::new)
                        .push(PortBinding {
                            host_ip: Some(p.host_ip.clone()),
                            host_port: Some(p.host_port.to_string()),
                        });
                }
                map
            }),
            group_add: (!spec.groups.is_empty())
                .then(|| spec.groups.iter().map(u32::to_string).collect()),
            // What a sandbox prints is kept, but not without bound (docs/security.md).
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_owned()),
                config: Some(HashMap::from([
                    ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                    ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
                ])),
            }),
            // A backstop: a sandbox is removed by stockade when it ends; if stockade or the
            // engine goes away first, the engine removes it (on exit, or when it restarts).
            // Its exit code and OOM state then come from the event log (events.rs). Not on
            // Podman: 4.3 removes the container before its wait answers, and its event then
            // reports exit 0 for a command that failed (docs/podman.md); `prune` removes what
            // is left there.
            // A detached sandbox stays until `stockade stop` removes it.
            auto_remove: Some(!spec.detached && !self.is_podman()),
            // A service comes back when its command dies and when the engine restarts.
            restart_policy: match spec.restart {
                Restart::Never => None,
                Restart::UnlessStopped => Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
            },
            ..Default::default()
        };
        let mut hostname = None;
        for option in &spec.engine_options {
            match option {
                EngineOption::ShmSize(bytes) => host_config.shm_size = i64::try_from(*bytes).ok(),
                EngineOption::Ulimit { name, soft, hard } => host_config
                    .ulimits
                    .get_or_insert_with(Vec::new)
                    .push(ResourcesUlimits {
                        name: Some(name.clone()),
                        soft: Some(*soft),
                        hard: Some(*hard),
                    }),
                EngineOption::AddHost { host, ip } => host_config
                    .extra_hosts
                    .get_or_insert_with(Vec::new)
                    .push(format!("{host}:{ip}")),
                EngineOption::Dns(ip) => host_config
                    .dns
                    .get_or_insert_with(Vec::new)
                    .push(ip.clone()),
                EngineOption::Device(device) => {
                    let mut parts = device.splitn(3, ':');
                    let on_host = parts.next().unwrap_or_default().to_owned();
                    let in_container = parts.next().map_or_else(|| on_host.clone(), str::to_owned);
                    let permissions = parts.next().unwrap_or("rwm").to_owned();
                    host_config
                        .devices
                        .get_or_insert_with(Vec::new)
                        .push(DeviceMapping {
                            path_on_host: Some(on_host),
                            path_in_container: Some(in_container),
                            cgroup_permissions: Some(permissions),
                        });
                }
                EngineOption::Hostname(name) => hostname = Some(name.clone()),
                // Folded into the spec's capabilities and tmpfs mounts by the core.
                EngineOption::CapAdd(_) | EngineOption::Tmpfs(_) => {}
            }
        }
        if self.is_podman() {
            let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
            let given = host_config.ulimits.get_or_insert_with(Vec::new);
            let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap_or_default();
            let explicit = podman::explicit_ulimits(given, &limits, &pid_max);
            given.extend(explicit);
        }
        let body = ContainerCreateBody {
            hostname,
            exposed_ports: (!spec.ports.is_empty()).then(|| {
                let mut ports: Vec<String> = spec
                    .ports
                    .iter()
                    .map(|p| format!("{}/{}", p.container_port, p.protocol))
                    .collect();
                ports.sort();
                ports.dedup();
                ports
            }),
            image: Some(spec.image.clone()),
            user: Some(spec.start_as.clone()),
            cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
            entrypoint: spec.entrypoint.clone(),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: Some(spec.workdir.to_string_lossy().into_owned()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            tty: Some(spec.tty),
            open_stdin: Some(true),
            // A detached sandbox's stdin stays open across attaches.
            stdin_once: Some(!spec.detached),
            // `stockade stop` (and `docker stop`) give it as long as a signal to stockade would.
            stop_timeout: i64::try_from(spec.stop_timeout).ok(),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(host_config),
            // API 1.41 has no start interval: readiness is polled by stockade itself.
            healthcheck: spec.health.as_ref().map(|h| HealthConfig {
                test: Some(vec!["CMD-SHELL".to_owned(), h.shell.clone()]),
                interval: Some(seconds_to_nanos(h.interval_secs)),
                timeout: Some(seconds_to_nanos(h.timeout_secs)),
                retries: Some(i64::from(h.retries)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| self.err(&operation, e))?;
        Ok(created.id)
    }

    /// Attach to stdin, stdout and stderr: before start, so no output is missed, or to a
    /// running sandbox from now on. `detach_keys` (the engine's notation; `None`: its default)
    /// typed on stdin end the attachment and leave the sandbox running.
    pub async fn attach(
        &self,
        id: &str,
        detach_keys: Option<&str>,
    ) -> Result<Attached, EngineError> {
        let operation = format!("POST /containers/{}/attach", short(id));
        debug!(target: "engine", "{operation}");
        let mut options = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true);
        if let Some(keys) = detach_keys {
            options = options.detach_keys(keys);
        }
        let attached = self
            .docker
            .attach_container(id, Some(options.build()))
            .await
            .map_err(|e| self.err(&operation, e))?;
        Ok(Attached {
            output: crate::session::chunks(self, "attach stream", attached.output),
            input: attached.input,
        })
    }

    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.call(
            &format!("POST /containers/{}/start", short(id)),
            self.docker.start_container(id, None),
        )
        .await
    }

    /// Wait until the container is not running; returns its exit code (above 255: 255). An
    /// engine that cannot tell (Podman answers -1) is an error, never a success.
    pub async fn wait(&self, id: &str) -> Result<u8, EngineError> {
        let operation = format!("POST /containers/{}/wait", short(id));
        let code = self.wait_code(id, &operation).await?;
        u8::try_from(code.min(255)).map_err(|_| EngineError::Api {
            operation,
            status: 0,
            message: format!("the engine did not report the command's exit code (it said {code})"),
        })
    }

    async fn wait_code(&self, id: &str, operation: &str) -> Result<i64, EngineError> {
        let operation = operation.to_owned();
        debug!(target: "engine", "{operation}");
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut stream = self.docker.wait_container(id, Some(options));
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => match self.err(&operation, e) {
                // Auto-removed already: its `die` event has the code.
                EngineError::Api { status: 404, .. } => {
                    self.exit_record(id).await?.code.ok_or(EngineError::Api {
                        operation,
                        status: 404,
                        message: "the container is gone and the engine no longer has its \
                                  exit code"
                            .to_owned(),
                    })
                }
                other => Err(other),
            },
            None => Err(EngineError::Api {
                operation,
                status: 0,
                message: "the engine closed the wait stream without an exit code".to_owned(),
            }),
        }
    }

    /// `GET /containers/{id}/json`.
    pub(crate) async fn inspect_container(
        &self,
        id: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, EngineError> {
        self.call(
            &format!("GET /containers/{}/json", short(id)),
            self.docker.inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            ),
        )
        .await
    }

    /// Whether the kernel's OOM killer ended the container (its memory limit was hit).
    pub async fn oom_killed(&self, id: &str) -> Result<bool, EngineError> {
        match self.inspect_container(id).await {
            Ok(info) if info.state.as_ref().and_then(|s| s.oom_killed) == Some(true) => Ok(true),
            // Not marked (yet): the engine may handle the kernel's OOM notice after the exit,
            // and an auto-removed container cannot be asked at all; its `oom` event, in the log
            // up to a second from now, says so either way.
            Ok(_) | Err(EngineError::Api { status: 404, .. }) => {
                Ok(self.exit_record(id).await?.oom_killed)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn resize(&self, id: &str, cols: u16, rows: u16) -> Result<(), EngineError> {
        let options = ResizeContainerTTYOptionsBuilder::default()
            .h(i32::from(rows))
            .w(i32::from(cols))
            .build();
        self.call(
            &format!("POST /containers/{}/resize h={rows} w={cols}", short(id)),
            self.docker.resize_container_tty(id, options),
        )
        .await
    }

    /// Send a signal (e.g. `SIGINT`) to the container's init.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.call(
            &format!("POST /containers/{}/kill signal={signal}", short(id)),
            self.docker.kill_container(id, Some(options)),
        )
        .await
    }

    /// Remove a container, running or not, with its anonymous volumes. Missing is fine.
    pub async fn remove(&self, id: &str) -> Result<(), EngineError> {
        let operation = format!("DELETE /containers/{}", short(id));
        debug!(target: "engine", "{operation}");
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let result = self.docker.remove_container(id, Some(options)).await;
        // 404: already gone; 409: already being removed (by its auto-remove): wait for that,
        // so the container is gone when this returns, as after a removal of our own.
        match result.map_err(|e| self.err(&operation, e)) {
            Err(EngineError::Api { status: 409, .. }) => {
                let options = WaitContainerOptionsBuilder::default()
                    .condition("removed")
                    .build();
                let mut gone = self.docker.wait_container(id, Some(options));
                let _ = tokio::time::timeout(REMOVAL_WAIT, gone.next()).await;
                Ok(())
            }
            other => EngineError::tolerate(other, &[404]).map(|_| ()),
        }
    }

    /// Containers (running or not) carrying all of the given labels (`key=value`); every
    /// container when `labels` is empty.
    pub async fn list_containers(
        &self,
        labels: &[String],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let operation = format!("GET /containers/json label={}", labels.join(","));
        debug!(target: "engine", "{operation}");
        let options = |states: &[&str]| {
            let mut filters = HashMap::new();
            if !labels.is_empty() {
                filters.insert("label".to_owned(), labels.to_vec());
            }
            if !states.is_empty() {
                filters.insert(
                    "status".to_owned(),
                    states.iter().map(|s| (*s).to_owned()).collect(),
                );
            }
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build()
        };
        let mut attempt = 0;
        let list = loop {
            match self.docker.list_containers(Some(options(&[]))).await {
                // Podman 4.3 lists a container between its exit and its cleanup as "stopped",
                // a state the API does not have: wait for the cleanup, then leave those out.
                Err(e) if self.is_podman() && podman::is_unknown_state(&e) => {
                    attempt += 1;
                    if attempt > podman::RETRIES {
                        break self
                            .docker
                            .list_containers(Some(options(podman::LISTABLE_STATES)))
                            .await;
                    }
                    tokio::time::sleep(podman::RETRY_DELAY).await;
                }
                other => break other,
            }
        }
        .map_err(|e| self.err(&operation, e))?;
        Ok(list
            .into_iter()
            .filter(|c| {
                c.labels
                    .as_ref()
                    .map_or(labels.is_empty(), |l| podman::has_labels(l, labels))
            })
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|names| names.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                volumes: c
                    .mounts
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.name)
                    .collect(),
                labels: c.labels.unwrap_or_default(),
            })
            .collect())
    }
}

fn seconds_to_nanos(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX)
}

/// A container or exec ID as the engine's CLI shows it (12 characters), for log lines.
pub(crate) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
