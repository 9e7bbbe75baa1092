//! Agent tools volumes: resolve the version an agent uses, install it into its version-keyed
//! volume in a helper container when missing, and remember what is installed.
//!
//! The warm path (version recorded, volume present) costs one engine call (`GET /volumes/…`) per
//! volume: the runtime's and the agent's.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use stockade_core::agents::{
    self, Agent, Build, DEBUG_LOG_MARKER, Installed, LibcProbe, Runtime, State, VersionCache,
    install_script, libc_probe_script, mount_path, musl_install_script, now, parse_version,
    query_command, query_script, runtime_install_script, runtime_query_script,
    runtime_verify_script, verify_script,
};
use stockade_core::config::Config;
use stockade_core::labels;
use stockade_core::sandbox::{HELPER_UID, VolumeMount};
use stockade_engine::{Engine, Removal};

use crate::context::Context;
use crate::exit::CliError;
use crate::helper;
use crate::host_command;
use crate::lock::FileLock;
use crate::ui::seconds;

/// The tools volume an agent runs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub version: String,
    pub volume: String,
    /// Whether this call installed it.
    pub installed: bool,
}

impl Tools {
    /// The read-only mount of this volume in a sandbox.
    pub fn mount(&self, agent: &Agent) -> VolumeMount {
        VolumeMount {
            volume: self.volume.clone(),
            target: mount_path(&agent.name).into(),
            read_only: true,
            labels: BTreeMap::new(),
        }
    }
}

/// The runtime volume an agent runs on (Node.js for npm agents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeTools {
    pub runtime: Runtime,
    pub version: String,
    pub volume: String,
    /// Whether this call installed it.
    pub installed: bool,
}

impl RuntimeTools {
    /// The read-only mount of this volume, in sandboxes and in the helpers that install agents.
    pub fn mount(&self) -> VolumeMount {
        VolumeMount {
            volume: self.volume.clone(),
            target: self.runtime.mount_path().into(),
            read_only: true,
            labels: BTreeMap::new(),
        }
    }
}

/// One install into a fresh volume, in a helper.
struct InstallJob {
    /// What is installed, for messages: `gemini 0.61.0 (@google/gemini-cli)`.
    title: String,
    /// For the log file's name: `gemini-0.61.0`.
    log_name: String,
    volume: String,
    target: String,
    labels: HashMap<String, String>,
    script: String,
    /// Mounted besides the volume (the runtime an agent installs with).
    extra: Vec<VolumeMount>,
}

/// Everything the tools code needs.
pub struct ToolsCtx<'a> {
    pub engine: &'a Engine,
    pub ctx: &'a Context,
    pub config: &'a Config,
    /// The image helpers run from.
    pub image: &'a str,
}

impl ToolsCtx<'_> {
    fn state_path(&self) -> PathBuf {
        State::path(&self.ctx.dirs.state, self.ctx.namespace.as_str())
    }

    fn cache_path(&self) -> PathBuf {
        VersionCache::path(&self.ctx.dirs.cache, self.ctx.namespace.as_str())
    }

    pub fn state(&self) -> State {
        State::load(&self.state_path())
    }

    /// What the libc probe finds in `image` (the sandbox image, which may be hostile: it runs
    /// in [`helper::look`]), remembered by image id. `None` when the probe could not run there
    /// (the launch's entrypoint checks again).
    pub async fn libc_of(
        &self,
        image: &str,
        image_id: &str,
    ) -> Result<Option<LibcProbe>, CliError> {
        if let Some(answer) = self.state().libc.get(image_id) {
            return Ok(Some(answer.probe.clone()));
        }
        let out = helper::look(
            self.engine,
            &self.ctx.namespace,
            image,
            &libc_probe_script(),
        )
        .await?;
        let Some(out) = out.filter(helper::HelperOutput::ok) else {
            tracing::debug!("libc probe in {image}: no answer");
            return Ok(None);
        };
        let probe = LibcProbe::parse(&out.stdout);
        if !image_id.is_empty() {
            let remembered = probe.clone();
            if let Err(e) =
                self.save_state(|state| state.remember_libc(image_id, remembered, now()))
            {
                tracing::debug!("remembering the libc probe's answer: {e}");
            }
        }
        Ok(Some(probe))
    }

    /// The version a launch uses: the pin, else the recorded one (of this build), else the
    /// latest (cached). When a pinned version cannot be installed but another one is, that one
    /// runs, with a warning.
    pub async fn ensure_for_launch(
        &self,
        agent: &Agent,
        build: Build,
        runtime: Option<&RuntimeTools>,
    ) -> Result<Tools, CliError> {
        let recorded = self.state().builds(build).get(&agent.name).cloned();
        let version = if !agent.is_latest() {
            agent.version.clone()
        } else if let Some(recorded) = &recorded {
            recorded.version.clone()
        } else {
            self.latest(agent, true).await?
        };
        match self
            .ensure_version(agent, build, &version, recorded.as_ref(), runtime)
            .await
        {
            Ok(tools) => Ok(tools),
            Err(error) => match recorded {
                Some(previous)
                    if previous.version != version
                        && self
                            .engine
                            .inspect_volume(&previous.volume)
                            .await?
                            .is_some() =>
                {
                    self.ctx.ui.warn(&format!(
                        "{error}\nrunning the installed {} {} instead; fix `[agents.{}] version` and run `stockade update {}`",
                        agent.name, previous.version, agent.name, agent.name
                    ));
                    Ok(Tools {
                        version: previous.version,
                        volume: previous.volume,
                        installed: false,
                    })
                }
                _ => Err(error),
            },
        }
    }

    /// `stockade update`: the pin or the latest (asked now), installed and recorded.
    /// Its runtime is brought up to date first (the newest release of its line, asked now); a
    /// musl build needs none.
    pub async fn update(&self, agent: &Agent, build: Build) -> Result<Tools, CliError> {
        let runtime = match (build, agent.runtime()) {
            (Build::Package, Some(runtime)) => Some(self.ensure_runtime(&runtime, true).await?),
            _ => None,
        };
        let version = if agent.is_latest() {
            self.latest(agent, false).await?
        } else {
            agent.version.clone()
        };
        let recorded = self.state().builds(build).get(&agent.name).cloned();
        self.ensure_version(agent, build, &version, recorded.as_ref(), runtime.as_ref())
            .await
    }

    /// The runtime's volume, installed when missing. A launch (`refresh` false) uses the
    /// recorded release of the runtime's spec while its volume exists (one engine call); else
    /// the spec is resolved (exact, or the newest release of its line, cached like agents'
    /// versions) and installed into `…-runtime-<name>-<version>` under a lock.
    pub async fn ensure_runtime(
        &self,
        runtime: &Runtime,
        refresh: bool,
    ) -> Result<RuntimeTools, CliError> {
        let recorded = self.state().runtimes.get(&runtime.key()).cloned();
        if !refresh
            && let Some(recorded) = &recorded
            && self
                .engine
                .inspect_volume(&recorded.volume)
                .await?
                .is_some()
        {
            return Ok(RuntimeTools {
                runtime: runtime.clone(),
                version: recorded.version.clone(),
                volume: recorded.volume.clone(),
                installed: false,
            });
        }
        let installed = if refresh || runtime.is_exact() {
            None
        } else {
            self.installed_runtime(runtime).await?
        };
        let version = match installed {
            _ if runtime.is_exact() => runtime.spec.clone(),
            Some(version) => version,
            None => self.latest_runtime(runtime, !refresh).await?,
        };
        let volume = self.ctx.namespace.runtime_volume(runtime.name, &version);
        let _lock = FileLock::acquire(self.ctx, &volume, &format!("install {volume}")).await?;
        let mount = VolumeMount {
            volume: volume.clone(),
            target: runtime.mount_path().into(),
            read_only: false,
            labels: BTreeMap::new(),
        };
        let complete = self.engine.inspect_volume(&volume).await?.is_some()
            && helper::run(
                self.engine,
                &self.ctx.namespace,
                self.image,
                &runtime_verify_script(runtime),
                vec![mount],
                false,
            )
            .await?
            .ok();
        if !complete {
            let job = InstallJob {
                title: format!("Node.js {version} (the runtime of npm agents)"),
                log_name: format!("{}-{version}", runtime.name),
                volume: volume.clone(),
                target: runtime.mount_path(),
                labels: HashMap::from([
                    (labels::KIND.to_owned(), "runtime".to_owned()),
                    (labels::RUNTIME.to_owned(), runtime.name.to_owned()),
                    (labels::RUNTIME_VERSION.to_owned(), version.clone()),
                ]),
                script: runtime_install_script(runtime, &version),
                extra: Vec::new(),
            };
            self.run_install(job).await.map_err(|detail| CliError::Other {
                message: format!(
                    "installing Node.js {version} (node-linux-* and npm from the npm registry) failed:\n{detail}"
                ),
                help: Some(
                    "check that the npm registry is reachable (proxy, `[image] ca_certificates`); \
                     nothing was changed"
                        .to_owned(),
                ),
            })?;
        }
        let entry = Installed {
            version: version.clone(),
            volume: volume.clone(),
            installed_at: now(),
        };
        self.save_state(|state| {
            state.runtimes.insert(runtime.key(), entry);
        })?;
        Ok(RuntimeTools {
            runtime: runtime.clone(),
            version,
            volume,
            installed: !complete,
        })
    }

    /// The newest release of the runtime's line already installed on the engine (by anyone:
    /// runtime volumes are shared), so that a user's first launch uses it rather than asking
    /// the registry; `stockade update` asks.
    async fn installed_runtime(&self, runtime: &Runtime) -> Result<Option<String>, CliError> {
        let volumes = self
            .engine
            .list_volumes(&[
                format!("{}=runtime", labels::KIND),
                format!("{}={}", labels::RUNTIME, runtime.name),
                format!("{}={}", labels::NAMESPACE, self.ctx.namespace.as_str()),
            ])
            .await?;
        Ok(volumes
            .iter()
            .filter_map(|v| v.labels.get(labels::RUNTIME_VERSION))
            .filter(|version| runtime.matches(version))
            .max_by_key(|version| agents::release_key(version))
            .cloned())
    }

    /// The newest release of the runtime's line for the engine's architecture: the cache (when
    /// `use_cache` and fresh), else a helper asks the npm registry.
    async fn latest_runtime(&self, runtime: &Runtime, use_cache: bool) -> Result<String, CliError> {
        let key = VersionCache::key("runtime", runtime.name, &runtime.spec);
        let path = self.cache_path();
        let cache = VersionCache::load(&path);
        let ttl = self.config.tools.version_cache_hours.saturating_mul(3600);
        if use_cache && let Some(hit) = cache.fresh(&key, now(), ttl) {
            return Ok(hit.version.clone());
        }
        let task = self
            .ctx
            .ui
            .task(&format!("Looking up the newest Node.js {}…", runtime.spec));
        let out = helper::run(
            self.engine,
            &self.ctx.namespace,
            self.image,
            &runtime_query_script(runtime),
            Vec::new(),
            false,
        )
        .await;
        task.finish();
        let (version, problem) = match out {
            Ok(out) if out.ok() => (parse_version(&out.stdout), out.tail(3)),
            Ok(out) => (None, out.tail(6)),
            Err(e) => (None, e.to_string()),
        };
        let Some(version) = version else {
            return Err(CliError::Other {
                message: format!(
                    "cannot find a Node.js {} release on the npm registry (node-linux-*){}",
                    runtime.spec,
                    if problem.is_empty() {
                        String::new()
                    } else {
                        format!(":\n{problem}")
                    }
                ),
                help: Some(
                    "check that the registry is reachable (proxy, `[image] ca_certificates`), and \
                     that `[agents.<name>] node` names a Node.js major (\"22\") or release"
                        .to_owned(),
                ),
            });
        };
        Ok(remember(cache, &path, key, version))
    }

    /// Make sure `version` is installed in its volume, and record it as the one in use.
    async fn ensure_version(
        &self,
        agent: &Agent,
        build: Build,
        version: &str,
        recorded: Option<&Installed>,
        runtime: Option<&RuntimeTools>,
    ) -> Result<Tools, CliError> {
        let volume = match build {
            Build::Package => self.ctx.namespace.tools_volume(&agent.name, version),
            Build::Musl => self.ctx.namespace.musl_tools_volume(&agent.name, version),
        };
        let known = recorded.is_some_and(|r| r.volume == volume);
        let exists = self.engine.inspect_volume(&volume).await?.is_some();
        if exists && known {
            return Ok(Tools {
                version: version.to_owned(),
                volume,
                installed: false,
            });
        }
        let _lock = FileLock::acquire(self.ctx, &volume, &format!("install {volume}")).await?;
        let exists = exists || self.engine.inspect_volume(&volume).await?.is_some();
        let complete = exists && self.is_complete(agent, &volume).await?;
        if !complete {
            self.install(agent, build, version, &volume, runtime)
                .await?;
        }
        self.record(agent, build, version, &volume)?;
        Ok(Tools {
            version: version.to_owned(),
            volume,
            installed: !complete,
        })
    }

    async fn is_complete(&self, agent: &Agent, volume: &str) -> Result<bool, CliError> {
        let out = helper::run(
            self.engine,
            &self.ctx.namespace,
            self.image,
            &verify_script(&agent.name),
            vec![self.rw_mount(agent, volume)],
            false,
        )
        .await?;
        Ok(out.ok())
    }

    fn rw_mount(&self, agent: &Agent, volume: &str) -> VolumeMount {
        VolumeMount {
            volume: volume.to_owned(),
            target: mount_path(&agent.name).into(),
            read_only: false,
            labels: BTreeMap::new(),
        }
    }

    /// The tail of a failed install's output, and where its whole output (the package
    /// manager's debug log included, which would otherwise go with the helper) is kept.
    fn failure_detail(&self, log_name: &str, out: &helper::HelperOutput) -> String {
        let (output, debug_log) = out
            .stderr
            .split_once(DEBUG_LOG_MARKER)
            .unwrap_or((&out.stderr, ""));
        // npm names its log's path inside the helper, which is gone by now.
        let mut shown: Vec<&str> = Vec::new();
        let mut lines = output.lines();
        while let Some(line) = lines.next() {
            if line.contains("A complete log of this run can be found in") {
                lines.next();
            } else if !line.trim().is_empty() {
                shown.push(line);
            }
        }
        if shown.is_empty() {
            shown = out
                .stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
        }
        let mut detail = shown[shown.len().saturating_sub(12)..].join("\n");
        let file_name: String = format!("install-{log_name}.log")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.ctx.dirs.cache.join("logs").join(file_name);
        let whole = format!(
            "{}\n--- stdout ---\n{}\n--- debug log ---\n{}",
            output.trim_end(),
            out.stdout.trim_end(),
            debug_log.trim()
        );
        match std::fs::create_dir_all(path.parent().unwrap_or(&path))
            .and_then(|()| std::fs::write(&path, whole))
        {
            Ok(()) => detail.push_str(&format!("\nthe whole output: {}", path.display())),
            Err(e) => tracing::debug!("keeping the install log in {}: {e}", path.display()),
        }
        detail
    }

    /// Create the job's volume, give it to the helper's uid and run the install script in a
    /// helper. A failed install's volume is removed (never half an install); the error is the
    /// tail of its output.
    async fn run_install(&self, job: InstallJob) -> Result<(), String> {
        let ui = &self.ctx.ui;
        let task = ui.task(&format!(
            "Installing {} into volume {}…",
            job.title, job.volume
        ));
        let mut volume_labels = job.labels;
        volume_labels.insert(
            labels::NAMESPACE.to_owned(),
            self.ctx.namespace.as_str().to_owned(),
        );
        volume_labels.insert(
            labels::VERSION.to_owned(),
            labels::STOCKADE_VERSION.to_owned(),
        );
        let mount = VolumeMount {
            volume: job.volume.clone(),
            target: job.target.clone().into(),
            read_only: false,
            labels: BTreeMap::new(),
        };
        let result = async {
            self.engine
                .create_volume(&job.volume, volume_labels)
                .await?;
            // The helper installs as an unprivileged uid that owns the volume.
            helper::give_volume(
                self.engine,
                &self.ctx.namespace,
                self.image,
                &mount,
                HELPER_UID,
                HELPER_UID,
            )
            .await?;
            let mut volumes = vec![mount.clone()];
            volumes.extend(job.extra.iter().cloned());
            helper::run(
                self.engine,
                &self.ctx.namespace,
                self.image,
                &job.script,
                volumes,
                ui.verbose > 0,
            )
            .await
        }
        .await;
        let elapsed = task.elapsed();
        task.finish();
        let failure = match result {
            Ok(out) if out.ok() => None,
            Ok(out) => Some(self.failure_detail(&job.log_name, &out)),
            Err(e) => Some(e.to_string()),
        };
        if let Some(detail) = failure {
            // Never leave a half-installed volume behind.
            match self.engine.remove_volume(&job.volume).await {
                Ok(Removal::InUse(why)) => {
                    tracing::debug!("kept failed install {}: {why}", job.volume)
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("removing failed install {}: {e}", job.volume),
            }
            return Err(detail);
        }
        ui.success(&format!("Installed {} ({})", job.title, seconds(elapsed)));
        Ok(())
    }

    async fn install(
        &self,
        agent: &Agent,
        build: Build,
        version: &str,
        volume: &str,
        runtime: Option<&RuntimeTools>,
    ) -> Result<(), CliError> {
        if let (Build::Musl, Some(musl)) = (build, &agent.musl) {
            return self.install_musl(agent, musl, version, volume).await;
        }
        let job = InstallJob {
            title: format!("{} {version} ({})", agent.name, agent.package),
            log_name: format!("{}-{version}", agent.name),
            volume: volume.to_owned(),
            target: mount_path(&agent.name),
            labels: tools_labels(agent, version),
            script: install_script(agent, version),
            extra: runtime.map(RuntimeTools::mount).into_iter().collect(),
        };
        self.run_install(job).await.map_err(|detail| CliError::Other {
            message: format!(
                "installing {} {version} ({} from {}) failed:\n{detail}",
                agent.name,
                agent.package,
                registry(agent)
            ),
            help: Some(format!(
                "check that version {version} of {} exists and that the registry is reachable \
                 (proxy, `[image] ca_certificates`); the previously installed version, if any, is unchanged",
                agent.package
            )),
        })
    }

    /// A native agent's musl build: its musl platform package at the agent's own version
    /// (never another one: when the registry has none, the install fails saying so).
    async fn install_musl(
        &self,
        agent: &Agent,
        musl: &agents::MuslBuild,
        version: &str,
        volume: &str,
    ) -> Result<(), CliError> {
        let job = InstallJob {
            title: format!("{} {version} (its musl build)", agent.name),
            log_name: format!("{}-{version}-musl", agent.name),
            volume: volume.to_owned(),
            target: mount_path(&agent.name),
            labels: {
                let mut labels = tools_labels(agent, version);
                labels.insert(labels::LIBC.to_owned(), "musl".to_owned());
                labels
            },
            script: musl_install_script(agent, musl, version),
            extra: Vec::new(),
        };
        self.run_install(job).await.map_err(|detail| CliError::Other {
            message: format!(
                "installing the musl build of {} {version} ({} from the npm registry) failed:\n{detail}",
                agent.name,
                musl.package.replace("{arch}", "<arch>")
            ),
            help: Some(format!(
                "a musl-based image runs the musl build of the agent's own version: when the \
                 registry has none for {version} yet, pin a version it has (`[agents.{}] version`), \
                 or use a glibc-based base image; check that the registry is reachable (proxy, \
                 `[image] ca_certificates`); the previously installed version, if any, is unchanged",
                agent.name
            )),
        })
    }

    fn record(
        &self,
        agent: &Agent,
        build: Build,
        version: &str,
        volume: &str,
    ) -> Result<(), CliError> {
        let entry = Installed {
            version: version.to_owned(),
            volume: volume.to_owned(),
            installed_at: now(),
        };
        if self
            .state()
            .builds(build)
            .get(&agent.name)
            .map(|e| &e.volume)
            == Some(&entry.volume)
        {
            return Ok(());
        }
        self.save_state(|state| {
            state.builds_mut(build).insert(agent.name.clone(), entry);
        })
    }

    /// Load the state, change it, save it.
    fn save_state(&self, change: impl FnOnce(&mut State)) -> Result<(), CliError> {
        let path = self.state_path();
        let mut state = State::load(&path);
        let before = state.clone();
        change(&mut state);
        if state == before {
            return Ok(());
        }
        state.save(&path).map_err(|e| {
            CliError::caused(
                format!("cannot record installed agents in {}", path.display()),
                e,
                Some("check the permissions of stockade's state directory"),
            )
        })
    }

    /// The newest version for the agent's spec: the cache (when `use_cache` and fresh), else a
    /// helper container, else the same query on the host.
    pub async fn latest(&self, agent: &Agent, use_cache: bool) -> Result<String, CliError> {
        let key = VersionCache::key(agent.install.runtime(), &agent.package, &agent.version);
        let path = self.cache_path();
        let cache = VersionCache::load(&path);
        let ttl = self.config.tools.version_cache_hours.saturating_mul(3600);
        if use_cache && let Some(hit) = cache.fresh(&key, now(), ttl) {
            return Ok(hit.version.clone());
        }
        let task = self.ctx.ui.task(&format!(
            "Looking up the latest version of {} ({})…",
            agent.name, agent.package
        ));
        let in_helper = helper::run(
            self.engine,
            &self.ctx.namespace,
            self.image,
            &query_script(agent),
            Vec::new(),
            false,
        )
        .await;
        task.finish();
        let (version, problem) = match in_helper {
            Ok(out) if out.ok() => (parse_version(&out.stdout), out.tail(3)),
            Ok(out) => (None, out.tail(6)),
            Err(e) => (None, e.to_string()),
        };
        let version = match version {
            Some(v) => v,
            None => match query_on_host(self.ctx, agent) {
                Some(v) => v,
                None => {
                    return Err(CliError::Other {
                        message: format!(
                            "cannot find out the latest version of {} ({} on {}){}",
                            agent.name,
                            agent.package,
                            registry(agent),
                            if problem.is_empty() {
                                String::new()
                            } else {
                                format!(":\n{problem}")
                            }
                        ),
                        help: Some(format!(
                            "check that the package exists and the registry is reachable, or pin a version: \
                             `[agents.{}] version = \"x.y.z\"`",
                            agent.name
                        )),
                    });
                }
            },
        };
        Ok(remember(cache, &path, key, version))
    }
}

/// Keep a registry's answer in the version cache (a failed save only costs a later query).
fn remember(mut cache: VersionCache, path: &Path, key: String, version: String) -> String {
    cache.entries.insert(
        key,
        agents::CachedVersion {
            version: version.clone(),
            checked_at: now(),
        },
    );
    if let Err(e) = cache.save(path) {
        tracing::debug!("saving the version cache: {e}");
    }
    version
}

fn registry(agent: &Agent) -> &'static str {
    match agent.install {
        agents::InstallKind::Npm => "the npm registry",
        agents::InstallKind::Pypi => "PyPI",
    }
}

/// How long the host's npm or python3 may take to answer a version query.
const HOST_QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// The version query run on the host, when the helper could not answer (and the host has npm
/// or python3). It runs in an empty directory of stockade's own (never the project: npm would
/// read the project's `.npmrc`, python3 import the project's modules), with the user's own
/// configuration and a deadline, and says so first.
fn query_on_host(ctx: &Context, agent: &Agent) -> Option<String> {
    let argv = query_command(agent);
    let (program, args) = argv.split_first()?;
    ctx.ui.warn(&format!(
        "the helper container could not look up the latest version of {}; asking the host's {program} \
         (at most {} s)",
        agent.name,
        HOST_QUERY_TIMEOUT.as_secs()
    ));
    let neutral = ctx
        .dirs
        .cache
        .join(format!("version-query-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&neutral) {
        tracing::debug!("host version query: no neutral directory: {e}");
        return None;
    }
    tracing::debug!("host: {program} (version query) in {}", neutral.display());
    let mut command = std::process::Command::new(program);
    command.args(args).current_dir(&neutral);
    let result = host_command::output(command, HOST_QUERY_TIMEOUT);
    let _ = std::fs::remove_dir_all(&neutral);
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            ctx.ui.warn(&format!("the host's {program} {e}"));
            return None;
        }
    };
    out.status
        .success()
        .then(|| parse_version(&String::from_utf8_lossy(&out.stdout)))
        .flatten()
}

/// The labels of `agent`'s tools volume at `version`.
fn tools_labels(agent: &Agent, version: &str) -> HashMap<String, String> {
    HashMap::from([
        (labels::KIND.to_owned(), "tools".to_owned()),
        (labels::AGENT.to_owned(), agent.name.clone()),
        (labels::AGENT_VERSION.to_owned(), version.to_owned()),
    ])
}
