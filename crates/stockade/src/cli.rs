//! The command line, as clap types. Commands never see these: `app.rs` turns them into settings.

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use stockade_core::config::FlagValue;

/// Run AI coding agents in hardened, reproducible containers.
#[derive(Debug, Parser)]
#[command(
    name = "stockade",
    version,
    about,
    propagate_version = true,
    after_help = "Agents:\n  stockade claude|opencode|codex|gemini [ARGS…]   run an agent; ARGS go to the agent untouched\n  stockade <name> [ARGS…]                         an agent described under [agents.<name>]\n\nSee docs/agents.md."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Sandbox and launch flags for an agent: they go before its name
    /// (`stockade --trust -e FOO claude …`), since everything after it is the agent's. Before
    /// `exec` or `shell` they apply too (those after the subcommand win); before any other
    /// command they are a usage error.
    #[command(flatten)]
    pub agent_launch: AgentLaunchArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Default, Args)]
pub struct AgentLaunchArgs {
    #[command(flatten)]
    pub sandbox: SandboxFlags,
    #[command(flatten)]
    pub launch: LaunchArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Show more: -v lists every engine call and streams build output; -vv adds internals.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Show only results and errors: no progress, no confirmations.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to use colors (NO_COLOR is honoured by `auto`).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Forward the host's SSH agent into the sandbox (also `[sandbox] ssh_agent = true`).
    #[arg(long, global = true)]
    pub ssh_agent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one command in a fresh sandbox for the current project.
    #[command(
        after_help = "Examples:\n  stockade exec -- make test\n  echo hi | stockade exec -- cat"
    )]
    Exec(ExecArgs),
    /// Start an interactive login shell in a fresh sandbox for the current project.
    Shell(ShellArgs),
    /// Build the sandbox image now (it is otherwise built on first use).
    Build(BuildArgs),
    /// Check the engine, identity, configuration and images.
    Check(CheckArgs),
    /// Show, create or locate configuration files.
    Config(ConfigArgs),
    /// Approve this project's .stockade/config.toml and .stockade/Dockerfile (or revoke).
    Trust(TrustArgs),
    /// Scan the project for likely secrets, as done before every launch.
    Scan(ScanArgs),
    /// List stockade's images: tier, project, size, and whether they are in use or orphaned.
    Images(ImagesArgs),
    /// Remove orphaned stockade images (never one a container uses).
    Prune(PruneArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// List agents: pinned and installed versions, latest known.
    Agents(AgentsArgs),
    /// Install the latest (or pinned) version of agents and switch to it.
    Update(UpdateArgs),
    /// List stockade's volumes (agent tools, project homes), or prune unused ones.
    Volumes(VolumesArgs),
    /// Run an agent: `stockade claude`, `stockade opencode`, `stockade codex`, `stockade gemini`,
    /// or one described under `[agents.<name>]`. Everything after the name goes to the agent.
    #[command(external_subcommand)]
    Agent(Vec<String>),
}

#[derive(Debug, Args)]
pub struct AgentsArgs {
    /// Print as JSON (shape: docs/agents.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Agents to update (default: every installed agent).
    #[arg(value_name = "AGENT")]
    pub agents: Vec<String>,
    /// Use this project's unapproved .stockade configuration, this time only.
    #[arg(long)]
    pub trust: bool,
}

#[derive(Debug, Args)]
pub struct VolumesArgs {
    /// Print as JSON (shape: docs/agents.md).
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<VolumesAction>,
}

#[derive(Debug, Subcommand)]
pub enum VolumesAction {
    /// Remove volumes no container uses: old agent versions, homes of deleted projects.
    Prune,
}

/// Sandbox settings from the command line: the last configuration layer.
#[derive(Debug, Clone, Default, Args)]
pub struct SandboxFlags {
    /// Extra bind mount, SRC[:DST][:ro] (repeatable).
    #[arg(
        long = "mount",
        value_name = "SRC[:DST][:ro]",
        help_heading = "Sandbox"
    )]
    pub mounts: Vec<String>,
    /// Environment variable: NAME passes the host value through, NAME=value sets one (repeatable).
    #[arg(
        short = 'e',
        long = "env",
        value_name = "NAME[=VALUE]",
        help_heading = "Sandbox"
    )]
    pub env: Vec<String>,
    /// Publish a port, [IP:]HOST:CONTAINER[/PROTO]; IP defaults to 127.0.0.1 (repeatable).
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        help_heading = "Sandbox"
    )]
    pub ports: Vec<String>,
    /// Memory limit, e.g. 4g.
    #[arg(long, value_name = "SIZE", help_heading = "Sandbox")]
    pub memory: Option<String>,
    /// CPU limit, e.g. 2 or 1.5.
    #[arg(long, value_name = "N", help_heading = "Sandbox")]
    pub cpus: Option<String>,
    /// Process limit.
    #[arg(long, value_name = "N", help_heading = "Sandbox")]
    pub pids_limit: Option<String>,
    /// Network: bridge or none.
    #[arg(long, value_name = "NETWORK", help_heading = "Sandbox")]
    pub network: Option<String>,
    /// Mount the image read-only.
    #[arg(long, help_heading = "Sandbox")]
    pub read_only_root: bool,
    /// Passwordless sudo inside (lifts no-new-privileges for this sandbox).
    #[arg(long, help_heading = "Sandbox")]
    pub sudo: bool,
}

/// What a launch may go ahead despite.
#[derive(Debug, Clone, Default, Args)]
pub struct LaunchArgs {
    /// Run with this project's unapproved .stockade configuration, this time only.
    #[arg(long)]
    pub trust: bool,
    /// Go ahead even when the secret scan finds high-severity files.
    #[arg(long)]
    pub allow_secrets: bool,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub sandbox: SandboxFlags,
    #[command(flatten)]
    pub launch: LaunchArgs,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the resolved settings (defaults, files, STOCKADE_* variables and these flags).
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Name the file and line, variable or flag each value came from.
        #[arg(long)]
        sources: bool,
        #[command(flatten)]
        sandbox: SandboxFlags,
    },
    /// Write a commented starter file (the project's .stockade/config.toml unless --global).
    Init {
        /// Write ~/.config/stockade/config.toml instead.
        #[arg(long)]
        global: bool,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the configuration file paths (global, then project) and whether they exist.
    Path,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Withdraw the approval instead.
    #[arg(long)]
    pub revoke: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Print the container specification as JSON instead of running it (env values hidden).
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: an error is a JSON object on stderr too (the spec is JSON already).
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    #[command(flatten)]
    pub sandbox: SandboxFlags,
    #[command(flatten)]
    pub launch: LaunchArgs,
    /// The command and its arguments (put `--` before a command that starts with `-`).
    /// (An unknown option before the command is a usage error, not the command.)
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Rebuild the foundation, base and project images even when they are up to date.
    #[arg(long)]
    pub force: bool,
    /// Do not use the engine's build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Build with this project's unapproved .stockade configuration, this time only.
    #[arg(long)]
    pub trust: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the report as JSON (shape: docs/check.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

impl AgentLaunchArgs {
    /// The flags given, as typed (`--network`…), for messages.
    pub fn given(&self) -> Vec<String> {
        let mut given: Vec<String> = self
            .sandbox
            .to_config()
            .into_iter()
            .map(|f| f.flag)
            .collect();
        if self.launch.trust {
            given.push("--trust".to_owned());
        }
        if self.launch.allow_secrets {
            given.push("--allow-secrets".to_owned());
        }
        given.dedup();
        given
    }
}

impl SandboxFlags {
    /// The flags as configuration values (the last layer).
    pub fn to_config(&self) -> Vec<FlagValue> {
        let mut out = Vec::new();
        let mut add = |flag: &str, key: &str, value: &str| {
            out.push(FlagValue {
                flag: flag.to_owned(),
                key: key.to_owned(),
                value: value.to_owned(),
            });
        };
        for m in &self.mounts {
            add("--mount", "sandbox.mounts", m);
        }
        for e in &self.env {
            add("--env", "sandbox.env", e);
        }
        for p in &self.ports {
            add("--port", "sandbox.ports", p);
        }
        for (flag, key, value) in [
            ("--memory", "sandbox.memory", &self.memory),
            ("--cpus", "sandbox.cpus", &self.cpus),
            ("--pids-limit", "sandbox.pids_limit", &self.pids_limit),
            ("--network", "sandbox.network", &self.network),
        ] {
            if let Some(value) = value {
                add(flag, key, value);
            }
        }
        if self.read_only_root {
            add("--read-only-root", "sandbox.read_only_root", "true");
        }
        if self.sudo {
            add("--sudo", "sandbox.sudo", "true");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_everything_after_the_command() {
        let cli = Cli::parse_from(["stockade", "exec", "--", "ls", "-la", "--color"]);
        match cli.command {
            Command::Exec(args) => assert_eq!(args.command, ["ls", "-la", "--color"]),
            other => panic!("{other:?}"),
        }
        let cli = Cli::parse_from(["stockade", "exec", "sh", "-c", "exit 7"]);
        match cli.command {
            Command::Exec(args) => assert_eq!(args.command, ["sh", "-c", "exit 7"]),
            other => panic!("{other:?}"),
        }
        let cli = Cli::parse_from([
            "stockade",
            "exec",
            "--memory",
            "1g",
            "-p",
            "80:80",
            "--dry-run",
            "ls",
            "--memory",
        ]);
        match cli.command {
            Command::Exec(args) => {
                assert_eq!(args.command, ["ls", "--memory"]);
                assert_eq!(args.sandbox.memory.as_deref(), Some("1g"));
                assert!(args.dry_run);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn agents_take_everything_after_their_name() {
        let cli = Cli::parse_from(["stockade", "claude", "--help", "-v", "x"]);
        match cli.command {
            Command::Agent(args) => assert_eq!(args, ["claude", "--help", "-v", "x"]),
            other => panic!("{other:?}"),
        }
        let cli = Cli::parse_from(["stockade", "--ssh-agent", "my-agent", "--version"]);
        assert!(cli.global.ssh_agent);
        match cli.command {
            Command::Agent(args) => assert_eq!(args, ["my-agent", "--version"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn launch_flags_for_an_agent_go_before_its_name() {
        let cli = Cli::parse_from([
            "stockade",
            "--trust",
            "--allow-secrets",
            "-e",
            "FOO",
            "--memory",
            "2g",
            "opencode",
            "--trust",
        ]);
        assert!(cli.agent_launch.launch.trust);
        assert!(cli.agent_launch.launch.allow_secrets);
        assert_eq!(cli.agent_launch.sandbox.env, ["FOO"]);
        assert_eq!(cli.agent_launch.sandbox.memory.as_deref(), Some("2g"));
        match cli.command {
            Command::Agent(args) => assert_eq!(args, ["opencode", "--trust"]),
            other => panic!("{other:?}"),
        }
    }
}
