//! `stockade completions <shell>`

use clap::{Arg, CommandFactory};
use clap_complete::Shell;
use stockade_core::agents::BUILTIN;

use crate::cli::Cli;

pub fn run(shell: Shell) {
    clap_complete::generate(
        shell,
        &mut with_agents(Cli::command()),
        "stockade",
        &mut std::io::stdout(),
    );
}

/// Agents are an external subcommand, which clap cannot complete: the built-in ones join the
/// script as subcommands whose arguments all go to the agent.
fn with_agents(mut cli: clap::Command) -> clap::Command {
    for agent in BUILTIN {
        cli = cli.subcommand(
            clap::Command::new(agent.name)
                .about(format!(
                    "Run {} in a sandbox for the current project",
                    agent.name
                ))
                .disable_help_flag(true)
                .arg(
                    Arg::new("args")
                        .value_name("ARGS")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true),
                ),
        );
    }
    cli
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_command_is_well_formed() {
        with_agents(Cli::command()).debug_assert();
    }
}
