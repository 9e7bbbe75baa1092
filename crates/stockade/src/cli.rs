//! The command line, as clap types. Commands never see these: `app.rs` turns them into settings.

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

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
    #[command(subcommand)]
    pub command: Command,
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
    Shell,
    /// Build the image chain (foundation, base, project) now; it is otherwise built on first use.
    Build(BuildArgs),
    /// Check the engine, identity, configuration and images.
    Check(CheckArgs),
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

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The command and its arguments (put `--` before a command that starts with `-`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
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
}
