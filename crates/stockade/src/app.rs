//! Process setup: parse the command line, set up logging and diagnostics, run the command on a
//! tokio runtime, render errors, and turn the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;
use miette::Diagnostic;
use stockade_core::config::ConfigError;
use stockade_engine::EngineError;

use crate::cli::{
    AgentLaunchArgs, Cli, Command, ConfigCommand, LaunchArgs, NetAction, SandboxFlags, ServeAction,
    WorktreeAction,
};
use crate::commands;
use crate::context::Context;
use crate::exit::{self, CliError};
use crate::ui::Ui;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, argv_wants_json()),
    };
    let json = wants_json(&cli.command);
    if let Err(e) = refuse_misplaced_launch_flags(&cli) {
        return usage_error(e, json);
    }
    let ui = Ui::new(cli.global.verbose, cli.global.quiet, cli.global.color);
    init_logging(ui.verbose, ui.color);
    init_diagnostics(ui.color);

    if let Command::Completions(args) = &cli.command {
        commands::completions::run(args.shell);
        return ExitCode::SUCCESS;
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("stockade: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let outcome = runtime.block_on(dispatch(cli.command, ui, json, cli.agent_launch));
    // A blocking read of stdin may still be pending; do not wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let code = error.exit_code();
            if json {
                report_json(&error);
            } else {
                report(error);
            }
            ExitCode::from(code)
        }
    }
}

async fn dispatch(
    command: Command,
    ui: Ui,
    json: bool,
    agent_launch: AgentLaunchArgs,
) -> Result<u8, CliError> {
    let mut ctx = Context::from_env(ui)?;
    ctx.ui.json = json;
    match command {
        // Sandbox flags before `exec`/`shell` count as if they followed it (those after win).
        Command::Exec(args) if args.in_session.is_some() => {
            let name = args.in_session.unwrap_or_default();
            commands::attach::exec_in(&ctx, &name, args.command).await
        }
        Command::Exec(args) => {
            let mut request = exec_request(args.command, &args.sandbox, &args.launch, args.dry_run);
            request.session = args.session;
            before(&mut request, &agent_launch);
            commands::exec::run(&ctx, request).await
        }
        Command::Run(args) => {
            let mut request = exec_request(args.args, &args.sandbox, &args.launch, false);
            request.agent = Some(args.agent);
            commands::run::run(&ctx, request, args.json).await
        }
        Command::Shell(args) => {
            let mut request = exec_request(Vec::new(), &args.sandbox, &args.launch, false);
            request.session = args.session;
            before(&mut request, &agent_launch);
            commands::exec::run(&ctx, request).await
        }
        Command::Config(args) => match args.command {
            ConfigCommand::Show {
                json,
                sources,
                sandbox,
            } => commands::config::show(&ctx, sandbox.values, json, sources),
            ConfigCommand::Init { global, force } => commands::config::init(&ctx, global, force),
            ConfigCommand::Path => commands::config::path(&ctx),
        },
        Command::Trust(args) => commands::trust::run(&ctx, args.revoke),
        Command::Scan(args) => commands::scan::run(&ctx, args.json),
        Command::Ps(args) => commands::sessions::ps(&ctx, args.all, args.json).await,
        Command::Attach(args) => commands::attach::attach(&ctx, &args.name).await,
        Command::Logs(args) => {
            let logs = commands::sessions::LogsArgs {
                follow: args.follow,
                tail: args.tail,
                since: args.since,
            };
            commands::sessions::logs(&ctx, &args.name, logs).await
        }
        Command::Stop(args) => {
            commands::sessions::stop(&ctx, &args.names, args.all, args.time).await
        }
        Command::Build(args) => commands::build::run(&ctx, &args).await,
        Command::Check(args) => commands::check::run(&ctx, args.json).await,
        Command::Images(args) => commands::images::run(&ctx, args.json).await,
        Command::Prune(args) => commands::prune::run(&ctx, args.dry_run, args.yes).await,
        Command::Completions(_) => Ok(0),
        Command::Agents(args) => commands::agents::run(&ctx, args.json).await,
        Command::Update(args) => commands::update::run(&ctx, args.agents, args.trust).await,
        Command::Volumes(args) => commands::volumes::run(&ctx, args.json, args.action).await,
        Command::Worktree(args) => match args.action {
            WorktreeAction::List { json } => commands::worktree::list(&ctx, json).await,
            WorktreeAction::Rm { name, force } => commands::worktree::rm(&ctx, &name, force).await,
        },
        Command::Serve(args) => serve(&ctx, args.action).await,
        Command::Net(args) => match args.action {
            NetAction::Log { json, follow, all } => {
                commands::net::log(&ctx, json, follow, all).await
            }
            NetAction::Allow { host, project, .. } => {
                let scope = if project {
                    commands::net::Scope::Project
                } else {
                    commands::net::Scope::Global
                };
                commands::net::allow(&ctx, &host, scope).await
            }
        },
        Command::Agent(mut args) => {
            if args.is_empty() {
                return Err(CliError::other("no agent named", None));
            }
            let name = args.remove(0);
            let mut request =
                exec_request(args, &agent_launch.sandbox, &agent_launch.launch, false);
            request.agent = Some(name);
            request.session = agent_launch.session;
            commands::exec::run(&ctx, request).await
        }
    }
}

async fn serve(ctx: &Context, action: ServeAction) -> Result<u8, CliError> {
    use commands::serve;
    match action {
        ServeAction::Opencode(args) => {
            let request = serve::StartRequest {
                port: args.port,
                host: args.host,
                timeout: std::time::Duration::from_secs(args.timeout),
                flags: Vec::new(),
                allow: crate::launch::Allowances {
                    trust: args.launch.trust,
                    secrets: args.launch.allow_secrets,
                },
            };
            serve::start(ctx, "opencode", request).await
        }
        ServeAction::Url => serve::print_url(ctx).await,
        ServeAction::Status { json } => serve::status(ctx, json).await,
        ServeAction::Stop => serve::stop(ctx).await,
        ServeAction::Logs { follow } => serve::logs(ctx, follow).await,
        ServeAction::Other(args) => {
            Err(serve::not_servable(args.first().map_or("", String::as_str)))
        }
    }
}

/// Sandbox and launch flags given before the subcommand apply to it, as an earlier layer.
fn before(request: &mut commands::exec::ExecRequest, early: &AgentLaunchArgs) {
    let mut flags = early.sandbox.values.clone();
    flags.append(&mut request.flags);
    request.flags = flags;
    request.allow.trust |= early.launch.trust;
    request.allow.secrets |= early.launch.allow_secrets;
    let (session, early) = (&mut request.session, &early.session);
    session.detach |= early.detach;
    if session.name.is_none() {
        session.name.clone_from(&early.name);
    }
    if session.worktree.is_none() {
        session.worktree.clone_from(&early.worktree);
    }
}

/// Sandbox and launch flags mean something only to `exec`, `shell` and agents: before any other
/// command they are a usage error (exit 2), never silently dropped.
fn refuse_misplaced_launch_flags(cli: &Cli) -> Result<(), clap::Error> {
    if let Command::Exec(exec) = &cli.command
        && exec.in_session.is_some()
    {
        // The sandbox exists: its settings were made when it started.
        let mut given = cli.agent_launch.given();
        given.extend(exec.sandbox.values.iter().map(|f| f.flag.clone()));
        if exec.launch.trust {
            given.push("--trust".to_owned());
        }
        if exec.launch.allow_secrets {
            given.push("--allow-secrets".to_owned());
        }
        given.dedup();
        if !given.is_empty() {
            use clap::CommandFactory;
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{} cannot be used with `exec --in`: the sandbox is running with the settings it started with",
                    given.join(", ")
                ),
            ));
        }
    }
    if matches!(
        cli.command,
        Command::Exec(_) | Command::Shell(_) | Command::Agent(_)
    ) {
        return Ok(());
    }
    let given = cli.agent_launch.given();
    if given.is_empty() {
        return Ok(());
    }
    use clap::CommandFactory;
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    let name = std::env::args()
        .skip(1)
        .find(|a| names.contains(a))
        .unwrap_or_default();
    Err(Cli::command().error(
        clap::error::ErrorKind::ArgumentConflict,
        format!(
            "{} {} to `exec`, `shell` and agents only, not to `{name}`",
            given.join(", "),
            if given.len() == 1 { "applies" } else { "apply" }
        ),
    ))
}

/// Whether the command asked for JSON: then an error is a JSON object on stderr too.
fn wants_json(command: &Command) -> bool {
    match command {
        Command::Check(a) => a.json,
        Command::Images(a) => a.json,
        Command::Agents(a) => a.json,
        Command::Volumes(a) => a.json,
        Command::Scan(a) => a.json,
        Command::Worktree(a) => matches!(a.action, WorktreeAction::List { json: true }),
        Command::Exec(a) => a.json,
        Command::Ps(a) => a.json,
        Command::Config(a) => matches!(a.command, ConfigCommand::Show { json: true, .. }),
        Command::Serve(a) => matches!(a.action, ServeAction::Status { json: true }),
        Command::Net(a) => matches!(a.action, NetAction::Log { json: true, .. }),
        _ => false,
    }
}

/// For a command line clap could not parse: `--json` among the options (before any `--`).
fn argv_wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// A usage error: clap's own rendering and exit code (help and version included), or with
/// `--json` the JSON error object and exit 2.
fn usage_error(error: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if !json
        || matches!(
            error.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        )
    {
        error.exit();
    }
    let text = error.render().to_string();
    // The first line and the indented lines under it (`the following required arguments were
    // not provided:` names them there), up to the first blank line.
    let mut lines = text.lines();
    let mut message = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    for line in lines.take_while(|l| l.starts_with(' ') && !l.trim().is_empty()) {
        if line.trim().starts_with("tip:") {
            break;
        }
        message.push(' ');
        message.push_str(line.trim());
    }
    let hint = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("tip: "))
        .map_or_else(
            || "see `stockade --help` or `stockade <command> --help`".to_owned(),
            str::to_owned,
        );
    emit_json(&exit::JsonError {
        error: message,
        code: "usage",
        hint: Some(hint),
        location: None,
        errors: None,
    });
    ExitCode::from(exit::USAGE)
}

fn emit_json(error: &exit::JsonError) {
    match serde_json::to_string(error) {
        Ok(text) => eprintln!("{text}"),
        Err(e) => eprintln!("stockade: cannot encode the error as JSON: {e}"),
    }
}

fn report_json(error: &CliError) {
    emit_json(&error.to_json());
}

fn exec_request(
    command: Vec<String>,
    sandbox: &SandboxFlags,
    launch: &LaunchArgs,
    dry_run: bool,
) -> commands::exec::ExecRequest {
    commands::exec::ExecRequest {
        command,
        flags: sandbox.values.clone(),
        agent: None,
        allow: crate::launch::Allowances {
            trust: launch.trust,
            secrets: launch.allow_secrets,
        },
        dry_run,
        headless: false,
        output: crate::session::Output::PassThrough,
        session: crate::cli::SessionArgs::default(),
        service: None,
    }
}

fn init_logging(verbose: u8, ansi: bool) {
    let filter = match verbose {
        // sigstore warns about each signature source it finds empty: stockade says it once.
        0 => "warn,sigstore=error",
        1 => "warn,sigstore=error,engine=debug,stockade=debug",
        // bollard logs request URLs and bodies (env values, build args) at debug: never show them.
        _ => "debug,hyper=info,hyper_util=info,bollard=info",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .without_time()
        .with_level(false)
        .with_target(true)
        .with_ansi(ansi)
        .try_init();
}

fn init_diagnostics(color: bool) {
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .terminal_links(false)
                .wrap_lines(false)
                .build(),
        )
    }));
}

/// An engine error as a diagnostic: the message, the build tail when a build failed, the fix.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
struct EngineDiagnostic {
    message: String,
    #[help]
    help: Option<String>,
}

fn report(error: CliError) {
    match error {
        CliError::Engine(engine) => {
            if let EngineError::BuildFailed { tail, .. } = &engine
                && !tail.is_empty()
            {
                eprintln!("build output (last {} lines):", tail.len());
                for line in tail {
                    eprintln!("  | {line}");
                }
            }
            let diagnostic = EngineDiagnostic {
                message: engine.to_string(),
                help: engine.hint(),
            };
            eprintln!("{:?}", miette::Report::new(diagnostic));
        }
        CliError::Config(ConfigError::Invalid { errors }) => {
            // Each problem on its own, with its snippet; then how many there were.
            let count = errors.len();
            for error in errors {
                eprintln!("{:?}", miette::Report::new(error));
            }
            if count > 1 {
                eprintln!("{count} errors in configuration; nothing was run");
            }
        }
        other => eprintln!("{:?}", miette::Report::new(other)),
    }
}
