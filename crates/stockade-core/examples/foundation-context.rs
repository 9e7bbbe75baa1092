//! Writes the foundation's build context, as stockade embeds it, to stdout as a tar archive:
//! the release workflow builds the published `foundation` image from it
//! (`cargo run -p stockade-core --example foundation-context | tar -x -C DIR`; docs/release.md).
//! The context is the one a default configuration builds: no `[image] ca_certificates`, the
//! FROM image as a build argument (`STOCKADE_FROM`) the workflow sets.

use std::io::Write;
use std::process::ExitCode;

use stockade_core::config::Config;
use stockade_core::foundation::FoundationPlan;

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("foundation-context takes no arguments: it writes a tar archive to stdout");
        return ExitCode::from(2);
    }
    let written = FoundationPlan::new(&Config::default().image)
        .map_err(|e| e.to_string())
        .and_then(|plan| plan.context.to_tar().map_err(|e| e.to_string()))
        .and_then(|tar| {
            let mut out = std::io::stdout().lock();
            out.write_all(&tar)
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the archive: {e}"))
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("foundation-context: {e}");
            ExitCode::FAILURE
        }
    }
}
