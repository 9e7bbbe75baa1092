//! Loading every layer and merging them, remembering where each value came from.

use std::path::{Path, PathBuf};

use super::Config;
use super::error::{ConfigError, InvalidConfig};
use super::keys::{KEYS, Key, Shape};
use super::load::{FlagValue, Layer, Places, load_file, parse_env, parse_flags};
use super::sections::RawSection;
use super::source::{Scope, Setting, Source};
use super::value::{Value, sensitive_mount};

/// What to load.
#[derive(Debug, Clone)]
pub struct Loader {
    pub global: PathBuf,
    pub project: PathBuf,
    pub project_root: PathBuf,
    pub home: PathBuf,
    /// The process environment (only `STOCKADE_<SECTION>_<KEY>` variables are read).
    pub env: Vec<(String, String)>,
    pub flags: Vec<FlagValue>,
}

/// Something allowed but worth a warning (a mount of ~/.ssh, the engine socket…).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub message: String,
    pub source: Source,
}

/// The merged configuration with the settings that produced it.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    /// The winning settings, in key-table order (list elements in merge order).
    pub settings: Vec<Setting>,
    /// The settings of the project file alone (what trust reviews).
    pub project_settings: Vec<Setting>,
    /// Whether the project file set `extends = false`.
    pub global_ignored: bool,
    /// Where the project file sets `extends` (when it does).
    pub extends_at: Option<Source>,
    /// What the layers under the project give: defaults ← global file (even when the project
    /// ignores the global file). The project's values are compared with these (class 7).
    pub below_project: Config,
    /// The global file's settings (what `extends = false` drops).
    pub global_settings: Vec<Setting>,
    pub warnings: Vec<Warning>,
    /// Where the `[agents]` and `[tools]` sections of the applied files are, global first.
    pub sections: Vec<RawSection>,
}

impl Resolved {
    /// The sources of one key: the default when nothing set it.
    pub fn sources_of(&self, key: &Key) -> Vec<&Source> {
        self.settings
            .iter()
            .filter(|s| s.key == key)
            .map(|s| &s.origin.source)
            .collect()
    }
}

impl Loader {
    /// Load and merge every layer; all problems in all layers are reported together.
    pub fn load(&self) -> Result<Resolved, ConfigError> {
        self.load_with(None)
    }

    /// [`Self::load`] with the project file's text as the launch read it (`Some(None)`: it has
    /// none), so that what is parsed is what the approval fingerprints.
    pub fn load_with(&self, project_text: Option<Option<&str>>) -> Result<Resolved, ConfigError> {
        let places = Places {
            project_root: &self.project_root,
            home: &self.home,
        };
        let mut errors: Vec<InvalidConfig> = Vec::new();
        let global = load_file(&self.global, Scope::Global, places, &mut errors)?;
        let project = match project_text {
            Some(Some(text)) => {
                super::load::parse_file(&self.project, text, Scope::Project, places, &mut errors)
            }
            Some(None) => Layer::default(),
            None => load_file(&self.project, Scope::Project, places, &mut errors)?,
        };
        // Custom agents the applied files leave incomplete (before the variables' errors).
        let applied: Vec<&[super::agents::AgentWritten]> = match project.extends {
            Some(false) => vec![&project.agents_written],
            _ => vec![&global.agents_written, &project.agents_written],
        };
        errors.extend(super::agents::incomplete(&applied));
        // The files' errors: the global file's, then the project's, each in text order.
        errors.sort_by_key(|e| (e.path != self.global, e.line, e.column));
        let env = parse_env(&self.env, places, &mut errors);
        let flags = parse_flags(&self.flags, places, &mut errors);
        if !errors.is_empty() {
            // Files first, then variables and flags; each in text order.
            return Err(ConfigError::Invalid { errors });
        }
        let global_ignored = project.extends == Some(false);
        let extends_at = project.extends_at.clone();
        let project_settings = project.settings.clone();
        let global_settings = global.settings.clone();
        let below_project = merge(
            vec![Layer {
                sections: Vec::new(),
                ..global.clone()
            }],
            Vec::new(),
            false,
            &self.home,
        )
        .config;
        let mut layers: Vec<Layer> = Vec::new();
        if !global_ignored {
            layers.push(global);
        }
        layers.extend([project, env, flags]);
        let mut resolved = merge(layers, project_settings, global_ignored, &self.home);
        match alias(&resolved.settings) {
            Alias::Agree => {}
            Alias::OldNameWins(egress) => resolved.config.network.egress = egress,
            Alias::Conflict(error) => {
                return Err(ConfigError::Invalid {
                    errors: vec![*error],
                });
            }
        }
        resolved.extends_at = extends_at;
        resolved.below_project = below_project;
        resolved.global_settings = global_settings;
        Ok(resolved)
    }
}

fn merge(
    layers: Vec<Layer>,
    project_settings: Vec<Setting>,
    global_ignored: bool,
    home: &Path,
) -> Resolved {
    let mut files = Vec::new();
    let mut winners: Vec<Setting> = Vec::new();
    let mut sections = Vec::new();
    let mut agents: std::collections::BTreeMap<String, super::AgentConfig> = Default::default();
    let mut hours = None;
    for mut layer in layers {
        sections.append(&mut layer.sections);
        // `[agents.<name>]` merge by name, then field by field; a later `[tools]` value wins.
        for (name, agent) in layer.agents {
            agents.entry(name).or_default().merge(agent);
        }
        hours = layer.version_cache_hours.or(hours);
        if let Some(path) = layer.path
            && (!layer.settings.is_empty() || path.exists())
        {
            files.push(path);
        }
        for setting in layer.settings {
            match setting.key.shape {
                Shape::Scalar => {
                    winners.retain(|w| w.key != setting.key);
                    winners.push(setting);
                }
                Shape::List => {
                    winners
                        .retain(|w| w.key != setting.key || !same_entry(&w.value, &setting.value));
                    winners.push(setting);
                }
            }
        }
    }
    // Key-table order, merge order within a key.
    let mut settings = Vec::with_capacity(winners.len());
    for key in KEYS {
        settings.extend(winners.iter().filter(|w| w.key == key).cloned());
    }
    let mut config = Config::default();
    for setting in &settings {
        config.apply(setting);
    }
    config.files = files;
    config.agents = agents;
    if let Some(hours) = hours {
        config.tools.version_cache_hours = hours;
    }
    let warnings = warnings(&settings, &config, home);
    Resolved {
        config,
        settings,
        project_settings,
        global_ignored,
        extends_at: None,
        below_project: Config::default(),
        global_settings: Vec::new(),
        warnings,
        sections,
    }
}

/// How `[sandbox] network` (the old name) and `[network] egress` resolve when both are set.
enum Alias {
    /// One is unset, or they say the same.
    Agree,
    /// The old name was set in a later layer (a flag over a file): it wins, as any later layer.
    OldNameWins(super::Egress),
    /// Both in one layer, disagreeing: an error at the old name's value naming both places,
    /// since neither can be said to win.
    Conflict(Box<InvalidConfig>),
}

fn alias(settings: &[Setting]) -> Alias {
    let Some((old_key, new_key)) = KEYS
        .iter()
        .find_map(|k| Some((k, super::keys::alias_target(k)?)))
    else {
        return Alias::Agree;
    };
    let last = |key: &Key| settings.iter().rfind(|s| s.key == key);
    let (Some(old), Some(new)) = (last(old_key), last(new_key)) else {
        return Alias::Agree;
    };
    let (Value::Network(network), Value::Egress(egress)) = (&old.value, &new.value) else {
        return Alias::Agree;
    };
    if network.egress() == *egress {
        return Alias::Agree;
    }
    let (old_layer, new_layer) = (old.origin.source.scope(), new.origin.source.scope());
    if old_layer != new_layer {
        return if old_layer > new_layer {
            Alias::OldNameWins(network.egress())
        } else {
            Alias::Agree
        };
    }
    let drop = match &old.origin.source {
        Source::File { path, .. } => {
            format!("remove `network` from [sandbox] in {}", path.display())
        }
        Source::Env { var } => format!("unset {var}"),
        Source::Flag { .. } | Source::Default => "use --egress instead of --network".to_owned(),
    };
    Alias::Conflict(Box::new(old.origin.error(
        format!(
            "`sandbox.network = {}` ({}) and `network.egress = {}` ({}) disagree",
            old.value, old.origin.source, new.value, new.origin.source
        ),
        "old name",
        Some(format!(
            "{drop}: `network` is the old name of [network] egress (\"bridge\" is egress = \
             \"open\", \"none\" is egress = \"none\")"
        )),
    )))
}

/// Two list entries that are "the same" for de-duplication: the later replaces the earlier.
fn same_entry(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Env(a), Value::Env(b)) => a.name() == b.name(),
        (Value::Mount(a), Value::Mount(b)) => a.target == b.target,
        (Value::Port(a), Value::Port(b)) => {
            (a.host_ip.as_str(), a.host_port, a.protocol.as_str())
                == (b.host_ip.as_str(), b.host_port, b.protocol.as_str())
        }
        (a, b) => a == b,
    }
}

fn warnings(settings: &[Setting], config: &Config, home: &Path) -> Vec<Warning> {
    let mut out = Vec::new();
    for setting in settings {
        match &setting.value {
            Value::Mount(m) => {
                if let Some(dir) = sensitive_mount(&m.source, home) {
                    out.push(Warning {
                        message: format!(
                            "mount of {} exposes credentials ({}) to the sandbox{}",
                            m.source.display(),
                            dir.display(),
                            if m.read_only { "" } else { ", read-write" }
                        ),
                        source: setting.origin.source.clone(),
                    });
                }
            }
            Value::Bool(true)
                if (setting.key.get)(config) == Some(Value::Bool(true))
                    && let Some(warning) = setting.key.warning =>
            {
                out.push(Warning {
                    message: warning.to_owned(),
                    source: setting.origin.source.clone(),
                });
            }
            _ => {}
        }
    }
    out
}
