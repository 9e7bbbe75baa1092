//! Agent tools volumes: resolve the version an agent uses, install it into its version-keyed
//! volume in a helper container when missing, and remember what is installed.
//!
//! The warm path (version recorded, volume present) costs one engine call (`GET /volumes/…`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use stockade_core::agents::{
    self, Agent, DEBUG_LOG_MARKER, Installed, State, VersionCache, install_script, mount_path, now,
    parse_version, query_command, query_script, verify_script,
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

    /// The version a launch uses: the pin, else the recorded one, else the latest (cached).
    /// When a pinned version cannot be installed but another one is, that one runs, with a
    /// warning.
    pub async fn ensure_for_launch(&self, agent: &Agent) -> Result<Tools, CliError> {
        let recorded = self.state().agents.get(&agent.name).cloned();
        let version = if !agent.is_latest() {
            agent.version.clone()
        } else if let Some(recorded) = &recorded {
            recorded.version.clone()
        } else {
            self.latest(agent, true).await?
        };
        match self
            .ensure_version(agent, &version, recorded.as_ref())
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
    pub async fn update(&self, agent: &Agent) -> Result<Tools, CliError> {
        let version = if agent.is_latest() {
            self.latest(agent, false).await?
        } else {
            agent.version.clone()
        };
        let recorded = self.state().agents.get(&agent.name).cloned();
        self.ensure_version(agent, &version, recorded.as_ref())
            .await
    }

    /// Make sure `version` is installed in its volume, and record it as the one in use.
    async fn ensure_version(
        &self,
        agent: &Agent,
        version: &str,
        recorded: Option<&Installed>,
    ) -> Result<Tools, CliError> {
        let volume = self.ctx.namespace.tools_volume(&agent.name, version);
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
            self.install(agent, version, &volume).await?;
        }
        self.record(agent, version, &volume)?;
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
    fn failure_detail(&self, agent: &Agent, version: &str, out: &helper::HelperOutput) -> String {
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
        let file_name: String = format!("install-{}-{version}.log", agent.name)
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

    async fn install(&self, agent: &Agent, version: &str, volume: &str) -> Result<(), CliError> {
        let ui = &self.ctx.ui;
        let task = ui.task(&format!(
            "Installing {} {version} ({}) into volume {volume}…",
            agent.name, agent.package
        ));
        let volume_labels = HashMap::from([
            (labels::KIND.to_owned(), "tools".to_owned()),
            (labels::AGENT.to_owned(), agent.name.clone()),
            (labels::AGENT_VERSION.to_owned(), version.to_owned()),
            (
                labels::NAMESPACE.to_owned(),
                self.ctx.namespace.as_str().to_owned(),
            ),
            (
                labels::VERSION.to_owned(),
                labels::STOCKADE_VERSION.to_owned(),
            ),
        ]);
        self.engine.create_volume(volume, volume_labels).await?;
        // The helper installs as an unprivileged uid that owns the volume.
        helper::give_volume(
            self.engine,
            &self.ctx.namespace,
            self.image,
            &self.rw_mount(agent, volume),
            HELPER_UID,
            HELPER_UID,
        )
        .await?;
        let result = helper::run(
            self.engine,
            &self.ctx.namespace,
            self.image,
            &install_script(agent, version),
            vec![self.rw_mount(agent, volume)],
            ui.verbose > 0,
        )
        .await;
        let elapsed = task.elapsed();
        task.finish();
        let failure = match result {
            Ok(out) if out.ok() => None,
            Ok(out) => Some(self.failure_detail(agent, version, &out)),
            Err(e) => Some(e.to_string()),
        };
        if let Some(detail) = failure {
            // Never leave a half-installed volume behind.
            match self.engine.remove_volume(volume).await {
                Ok(Removal::InUse(why)) => tracing::debug!("kept failed install {volume}: {why}"),
                Ok(_) => {}
                Err(e) => tracing::debug!("removing failed install {volume}: {e}"),
            }
            return Err(CliError::Other {
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
            });
        }
        ui.success(&format!(
            "Installed {} {version} ({})",
            agent.name,
            seconds(elapsed)
        ));
        Ok(())
    }

    fn record(&self, agent: &Agent, version: &str, volume: &str) -> Result<(), CliError> {
        let path = self.state_path();
        let mut state = State::load(&path);
        let entry = Installed {
            version: version.to_owned(),
            volume: volume.to_owned(),
            installed_at: now(),
        };
        if state.agents.get(&agent.name).map(|e| &e.volume) == Some(&entry.volume) {
            return Ok(());
        }
        state.agents.insert(agent.name.clone(), entry);
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
        let mut cache = VersionCache::load(&path);
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
        cache.entries.insert(
            key,
            agents::CachedVersion {
                version: version.clone(),
                checked_at: now(),
            },
        );
        if let Err(e) = cache.save(&path) {
            tracing::debug!("saving the version cache: {e}");
        }
        Ok(version)
    }
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
