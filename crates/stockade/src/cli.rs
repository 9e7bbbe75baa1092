//! The command line, as clap types. Commands never see these: `app.rs` turns them into settings.

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use stockade_core::config::FlagValue;
use stockade_core::config::keys::{self, Shape};

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
    #[command(flatten)]
    pub session: SessionArgs,
}

/// Which session a sandbox is, and whether it stays in the background.
#[derive(Debug, Clone, Default, Args)]
pub struct SessionArgs {
    /// Name the session (unique in the project): `attach`, `logs`, `exec --in` and `stop` take
    /// it. Default: generated, or with --detach the agent's name (`shell` for a shell).
    #[arg(long, value_name = "NAME", help_heading = "Session")]
    pub name: Option<String>,
    /// Start in the background and print the session's name; `stockade attach NAME` joins it.
    #[arg(short, long, help_heading = "Session")]
    pub detach: bool,
    /// Run in the git worktree NAME on branch `stockade/NAME` (made beside the repository on
    /// first use).
    #[arg(long, value_name = "NAME", help_heading = "Session")]
    pub worktree: Option<String>,
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
    Shell(ShellArgs),
    /// Run an agent headless: no TTY, its input and output byte for byte, its exit code; with
    /// --json, one JSON result on stdout.
    #[command(
        after_help = "Examples:\n  stockade run claude -- -p 'fix the tests' --output-format stream-json\n  stockade run opencode --json -- --version"
    )]
    Run(RunArgs),
    /// List this project's sandboxes (--all: every project's): name, agent, branch, status,
    /// uptime, ports, health.
    Ps(PsArgs),
    /// Join a running sandbox's terminal: its recent output, then live. The detach keys
    /// (ctrl-p ctrl-q, `[sandbox] detach_keys`) leave it running.
    Attach(AttachArgs),
    /// Show a sandbox's output.
    Logs(LogsArgs),
    /// Stop sandboxes and remove them.
    #[command(after_help = "Examples:\n  stockade stop claude\n  stockade stop --all --time 0")]
    Stop(StopArgs),
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
    /// List or remove the worktrees `--worktree NAME` made for this repository.
    Worktree(WorktreeArgs),
    /// Run OpenCode's web server as a long-lived sandbox, always behind a password.
    #[command(
        after_help = "Examples:\n  stockade serve opencode\n  stockade serve opencode --port 4096\n  stockade serve url\n  stockade serve stop"
    )]
    Serve(ServeArgs),
    /// Egress: list the requests the gateway refused, allow a host (docs/egress.md).
    #[command(
        after_help = "Examples:\n  stockade net log\n  stockade net log --json -f\n  stockade net allow pypi.org\n  stockade net allow git.example.com:22 --project"
    )]
    Net(NetArgs),
    /// Run an agent: `stockade claude`, `stockade opencode`, `stockade codex`, `stockade gemini`,
    /// or one described under `[agents.<name>]`. Everything after the name goes to the agent.
    #[command(external_subcommand)]
    Agent(Vec<String>),
}

#[derive(Debug, Args)]
pub struct NetArgs {
    #[command(subcommand)]
    pub action: NetAction,
}

#[derive(Debug, Subcommand)]
pub enum NetAction {
    /// The requests the egress gateway refused, of this project's sandboxes (--all: every
    /// project's): time, sandbox, agent, host, port and reason.
    Log {
        /// Print as JSON: an array, or with --follow one object per line (shape:
        /// docs/egress.md).
        #[arg(long)]
        json: bool,
        /// Keep following: print refusals as they come, until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Every project's sandboxes, with a PROJECT column.
        #[arg(long)]
        all: bool,
    },
    /// Allow a host: add it to `[network] allow` of your global configuration (or with
    /// --project of the project's), and to the sandboxes running now, without a restart.
    Allow {
        /// `host` (ports 443 and 80), `*.domain` (its subdomains), `host:port`, or an IP
        /// address.
        #[arg(value_name = "HOST")]
        host: String,
        /// Edit the project's .stockade/config.toml (its next launch asks for approval again);
        /// only this project's running sandboxes get it.
        #[arg(long, conflicts_with = "global")]
        project: bool,
        /// Edit your global configuration file (the default); every running sandbox gets it.
        #[arg(long)]
        global: bool,
    },
}

#[derive(Debug, Args)]
pub struct WorktreeArgs {
    #[command(subcommand)]
    pub action: WorktreeAction,
}

#[derive(Debug, Subcommand)]
pub enum WorktreeAction {
    /// The worktrees stockade made for this repository: name, branch, changes, sandboxes, path.
    List {
        /// Print as JSON (shape: docs/agents.md).
        #[arg(long)]
        json: bool,
    },
    /// Remove a worktree (its branch stays). Refused with uncommitted changes unless --force,
    /// and while a sandbox runs in it.
    Rm {
        /// The worktree's name (as given to --worktree).
        name: String,
        /// Remove it even with uncommitted changes (they are lost).
        #[arg(long)]
        force: bool,
    },
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub action: ServeAction,
}

#[derive(Debug, Subcommand)]
pub enum ServeAction {
    /// Start `opencode web` in the background; returns once it answers healthy, printing its
    /// URL.
    Opencode(ServeStartArgs),
    /// Print the service's address and login (user and password).
    Url,
    /// Report the service's state and health.
    Status {
        /// Print as JSON (shape: docs/agents.md).
        #[arg(long)]
        json: bool,
    },
    /// Stop the service and remove its container (its state stays in the project's home).
    Stop,
    /// Show the service's output.
    Logs {
        /// Follow the output until the service stops.
        #[arg(short, long)]
        follow: bool,
    },
    /// Anything else: not servable.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(Debug, Args)]
pub struct ServeStartArgs {
    /// The port, inside and on the host (default: a free one).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// The host address to publish on (default 127.0.0.1; anything else warns).
    #[arg(long, value_name = "ADDR")]
    pub host: Option<std::net::IpAddr>,
    /// Seconds to wait for the service to answer healthy.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// Sandbox settings from the command line: the last configuration layer. The flags are those
/// of the key table (`keys::Key::flag`): each sets its key, as the same value in a file would.
#[derive(Debug, Clone, Default)]
pub struct SandboxFlags {
    /// The values given, in the key table's order (a repeated flag in the order typed).
    pub values: Vec<FlagValue>,
}

impl FromArgMatches for SandboxFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for (key, flag) in keys::flagged() {
            if flag.value_name.is_none() {
                if matches.get_flag(flag.long) {
                    self.values.push(FlagValue::new(key, "true"));
                }
            } else if let Some(values) = matches.get_many::<String>(flag.long) {
                self.values
                    .extend(values.map(|value| FlagValue::new(key, value.as_str())));
            }
        }
        Ok(())
    }
}

/// A flag's help: its key's, as a sentence (a list key's flag repeats).
fn flag_help(key: &keys::Key) -> String {
    let mut chars = key.help.chars();
    let first = chars.next().map(|c| c.to_uppercase().to_string());
    let repeat = if key.shape == Shape::List {
        " (repeatable)"
    } else {
        ""
    };
    format!("{}{}{repeat}.", first.unwrap_or_default(), chars.as_str())
}

impl Args for SandboxFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        keys::flagged().fold(cmd, |cmd, (key, flag)| {
            let arg = Arg::new(flag.long)
                .long(flag.long)
                .help(flag_help(key))
                .help_heading("Sandbox");
            let arg = match flag.short {
                Some(short) => arg.short(short),
                None => arg,
            };
            cmd.arg(match (flag.value_name, key.shape) {
                (None, _) => arg.action(ArgAction::SetTrue),
                (Some(name), Shape::List) => arg
                    .value_name(name)
                    .value_parser(clap::value_parser!(String))
                    .action(ArgAction::Append),
                (Some(name), Shape::Scalar) => arg
                    .value_name(name)
                    .value_parser(clap::value_parser!(String))
                    .action(ArgAction::Set),
            })
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
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
    #[command(flatten)]
    pub session: SessionArgs,
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
    /// Run the command in the running sandbox NAME instead of a new one: as the same user,
    /// with its environment and secrets.
    #[arg(long = "in", value_name = "NAME", conflicts_with_all = ["dry_run", "name", "detach", "worktree"])]
    pub in_session: Option<String>,
    #[command(flatten)]
    pub sandbox: SandboxFlags,
    #[command(flatten)]
    pub launch: LaunchArgs,
    #[command(flatten)]
    pub session: SessionArgs,
    /// The command and its arguments (put `--` before a command that starts with `-`).
    /// (An unknown option before the command is a usage error, not the command.)
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Capture the agent's output and print one JSON document on stdout: agent, version, image,
    /// exit_code, duration_ms, stdout, stderr (docs/agents.md).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sandbox: SandboxFlags,
    #[command(flatten)]
    pub launch: LaunchArgs,
    /// The agent: claude, opencode, codex, gemini or one under `[agents.<name>]`.
    #[arg(value_name = "AGENT")]
    pub agent: String,
    /// The agent's arguments, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Every project's sandboxes, with a PROJECT column.
    #[arg(long)]
    pub all: bool,
    /// Print as JSON (shape: docs/sessions.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The session's name, as `stockade ps` shows it.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The session's name, as `stockade ps` shows it.
    pub name: String,
    /// Keep following the output.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// Only output since a time (`2026-11-26T10:00:00Z`) or a duration ago (`10m`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The sessions to stop.
    #[arg(
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub names: Vec<String>,
    /// Every sandbox of this project.
    #[arg(long)]
    pub all: bool,
    /// Seconds to wait after SIGTERM before SIGKILL (default: the sandbox's `stop_timeout`).
    #[arg(short, long, value_name = "S")]
    pub time: Option<u64>,
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
        let mut given: Vec<String> = self.sandbox.values.iter().map(|f| f.flag.clone()).collect();
        if self.launch.trust {
            given.push("--trust".to_owned());
        }
        if self.launch.allow_secrets {
            given.push("--allow-secrets".to_owned());
        }
        if self.session.name.is_some() {
            given.push("--name".to_owned());
        }
        if self.session.detach {
            given.push("--detach".to_owned());
        }
        if self.session.worktree.is_some() {
            given.push("--worktree".to_owned());
        }
        given.dedup();
        given
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn flags(sandbox: &SandboxFlags) -> Vec<(&str, &str)> {
        sandbox
            .values
            .iter()
            .map(|f| (f.flag.as_str(), f.value.as_str()))
            .collect()
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_of_the_key_table_sets_its_key() {
        let mut args = vec!["stockade".to_owned(), "exec".to_owned()];
        for (key, flag) in keys::flagged() {
            args.push(flag.name());
            if flag.value_name.is_some() {
                args.push(format!("value-of-{}", key.name));
            }
        }
        args.push("true".to_owned());
        let cli = Cli::parse_from(args);
        let Command::Exec(exec) = cli.command else {
            panic!("not exec");
        };
        let set: Vec<String> = exec.sandbox.values.iter().map(|f| f.key.path()).collect();
        let expected: Vec<String> = keys::flagged().map(|(k, _)| k.path()).collect();
        assert_eq!(set, expected);
        assert!(expected.contains(&"sandbox.ssh_agent".to_owned()));
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
                assert_eq!(
                    flags(&args.sandbox),
                    [("--port", "80:80"), ("--memory", "1g")]
                );
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
        assert_eq!(flags(&cli.agent_launch.sandbox), [("--ssh-agent", "true")]);
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
        assert_eq!(
            flags(&cli.agent_launch.sandbox),
            [("--env", "FOO"), ("--memory", "2g")]
        );
        match cli.command {
            Command::Agent(args) => assert_eq!(args, ["opencode", "--trust"]),
            other => panic!("{other:?}"),
        }
    }
}
