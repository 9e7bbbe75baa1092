//! `stockade trust [--revoke]`: approve (or withdraw approval of) the project's
//! `.stockade/config.toml` and `.stockade/Dockerfile` as they are now.

use stockade_core::trust::{self, TrustStore};

use crate::context::Context;
use crate::exit::CliError;
use crate::launch::print_concerns;

pub fn run(ctx: &Context, revoke: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let store = TrustStore::new(&ctx.dirs.state);
    let io = |e: std::io::Error| {
        CliError::other(
            format!(
                "cannot update the approvals under {}: {e}",
                ctx.dirs.state.display()
            ),
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
    // An invalid file is reported here, not approved.
    let resolved = ctx.resolve(&project, Vec::new())?;
    let Some(fingerprint) = trust::fingerprint(&project.root).map_err(io)? else {
        ctx.ui.info(&format!(
            "{} has no .stockade/config.toml or .stockade/Dockerfile: nothing to approve",
            project.root.display()
        ));
        return Ok(0);
    };
    let mut concerns = trust::concerns(&resolved, &project.root);
    concerns.extend(trust::section_concerns(&resolved.sections));
    if concerns.is_empty() {
        ctx.ui
            .info("The project configuration adds nothing beyond the project itself.");
    } else {
        print_concerns(&project, &concerns);
    }
    let fingerprint = trust::approval_fingerprint(&fingerprint, &concerns);
    store.approve(&project.root, &fingerprint).map_err(io)?;
    ctx.ui.success(&format!(
        "Approved {} (until its .stockade files change)",
        project.root.display()
    ));
    Ok(0)
}
