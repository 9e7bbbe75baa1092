//! The command line, as clap types. Commands never see these: `app.rs` turns them into settings.

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// Run AI coding agents in hardened, reproducible containers.
#[derive(Debug, Parser)]
#[command(name = "stockade", version, about, propagate_version = true)]
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
}
