//! Settings resolved from the environment, handed to every command.

use std::path::PathBuf;

use stockade_core::config::{Config, FlagValue, Loader, Resolved, is_config_var};
use stockade_core::dirs::Dirs;
use stockade_core::identity::Identity;
use stockade_core::names::Namespace;
use stockade_core::project::Project;
use stockade_engine::{Engine, resolve_endpoint};

use crate::exit::CliError;
use crate::ui::Ui;

/// What every command knows before it starts.
pub struct Context {
    pub ui: Ui,
    pub dirs: Dirs,
    pub identity: Identity,
    pub namespace: Namespace,
    pub cwd: PathBuf,
}

impl Context {
    pub fn from_env(ui: Ui) -> Result<Self, CliError> {
        let identity = Identity::current()
            .map_err(|e| CliError::other(e.to_string(), Some("set HOME to your home directory")))?;
        let dirs = Dirs::resolve(&identity.home, env);
        let namespace = Namespace::new(env("STOCKADE_NAMESPACE").as_deref()).map_err(|e| {
            CliError::other(
                e.to_string(),
                Some("unset STOCKADE_NAMESPACE or fix its value"),
            )
        })?;
        let cwd = std::env::current_dir().map_err(|e| {
            CliError::caused(
                "cannot read the current directory",
                e,
                Some("cd into an existing directory"),
            )
        })?;
        Ok(Self {
            ui,
            dirs,
            identity,
            namespace,
            cwd,
        })
    }

    /// The project for the current directory; directories of other users above it are not
    /// adopted (with a warning saying so).
    pub fn project(&self) -> Result<Project, CliError> {
        let (project, notes) = Project::discover_as(&self.cwd, self.identity.uid)
            .map_err(|e| CliError::other(e.to_string(), e.help()))?;
        for note in notes {
            self.ui.warn(&note);
        }
        Ok(project)
    }

    /// The global configuration file and the project's (each may be missing).
    pub fn config_files(&self, project: &Project) -> [PathBuf; 2] {
        [self.dirs.global_config(), project.config_file()]
    }

    /// The configuration without flags: files and `STOCKADE_<SECTION>_<KEY>` variables.
    pub fn config(&self, project: &Project) -> Result<Config, CliError> {
        Ok(self.resolve(project, Vec::new())?.config)
    }

    /// Every layer, flags last, with the source of each value.
    pub fn resolve(&self, project: &Project, flags: Vec<FlagValue>) -> Result<Resolved, CliError> {
        Ok(self.loader(project, flags).load()?)
    }

    /// [`Self::resolve`] with the project file's text as a launch read it (read once).
    pub fn resolve_read(
        &self,
        project: &Project,
        project_text: Option<&str>,
        flags: Vec<FlagValue>,
    ) -> Result<Resolved, CliError> {
        Ok(self.loader(project, flags).load_with(Some(project_text))?)
    }

    fn loader(&self, project: &Project, flags: Vec<FlagValue>) -> Loader {
        let [global, local] = self.config_files(project);
        Loader {
            global,
            project: local,
            project_root: project.root.clone(),
            home: self.identity.home.clone(),
            env: std::env::vars().filter(|(k, _)| is_config_var(k)).collect(),
            flags,
        }
    }

    pub async fn connect(&self) -> Result<Engine, CliError> {
        let endpoint = resolve_endpoint(env, &self.identity.home)
            .map_err(stockade_engine::EngineError::from)?;
        Ok(Engine::connect(endpoint).await?)
    }

    /// Start connecting in the background (e.g. while the project's files are read and checked:
    /// nothing of the project reaches the engine before that); await the handle for the engine.
    pub fn spawn_connect(&self) -> tokio::task::JoinHandle<Result<Engine, CliError>> {
        let home = self.identity.home.clone();
        tokio::spawn(async move {
            let endpoint =
                resolve_endpoint(env, &home).map_err(stockade_engine::EngineError::from)?;
            Ok(Engine::connect(endpoint).await?)
        })
    }
}

/// A host environment variable, if set and valid UTF-8.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
