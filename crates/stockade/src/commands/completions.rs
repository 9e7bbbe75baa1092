//! `stockade completions <shell>`

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

pub fn run(shell: Shell) {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "stockade",
        &mut std::io::stdout(),
    );
}
