//! `stockade trust [--revoke]`: approve (or withdraw approval of) the project's
//! `.stockade/config.toml` and `.stockade/Dockerfile` as they are now.

use stockade_core::trust::TrustStore;

use crate::context::Context;
use crate::exit::CliError;
use crate::launch::{self, print_concerns};

pub fn run(ctx: &Context, revoke: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let store = TrustStore::new(&ctx.dirs.state);
    let io = |e: std::io::Error| {
        CliError::caused(
            format!(
                "cannot update the approvals under {}",
                ctx.dirs.state.display()
            ),
            e,
            None,
        )
    };
    if revoke {
        if store.revoke(&project.root).map_err(io)? {
            ctx.ui
                .success(&format!("Approval of {} withdrawn", project.root.display()));
        } else {
            ctx.ui
                .info(&format!("{} was not approved", project.root.display()));
        }
        return Ok(0);
    }
    // The files read once (as a launch reads them); an invalid file is reported here, not
    // approved.
    let prepared = launch::prepare(ctx, Vec::new())?;
    let concerns = launch::concerns(&prepared);
    let Some(fingerprint) = launch::fingerprint(&prepared, &concerns) else {
        ctx.ui.info(&format!(
            "{} has no .stockade/config.toml or .stockade/Dockerfile: nothing to approve",
            project.root.display()
        ));
        return Ok(0);
    };
    if concerns.is_empty() {
        ctx.ui
            .info("The project configuration adds nothing beyond the project itself.");
    } else {
        print_concerns(&project, &concerns);
    }
    store.approve(&project.root, &fingerprint).map_err(io)?;
    ctx.ui.success(&format!(
        "Approved {} (until its .stockade files change)",
        project.root.display()
    ));
    Ok(0)
}
