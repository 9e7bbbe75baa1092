//! `stockade exec [--] CMD…` and `stockade shell` (an empty command: the login shell).

use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::IsTerminal;

use stockade_core::sandbox::{SandboxRequest, SandboxSpec};

use crate::context::{Context, env};
use crate::exit::CliError;
use crate::image::{BuildMode, ensure_chain};
use crate::session;

pub async fn run(ctx: &Context, command: Vec<String>) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let config = ctx.config(&project)?;
    let engine = ctx.connect().await?;
    let image = ensure_chain(&engine, ctx, &config, &project, BuildMode::IfStale)
        .await?
        .image()
        .to_owned();
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut spec = SandboxSpec::new(
        SandboxRequest {
            namespace: &ctx.namespace,
            project: &project,
            user: &ctx.identity,
            config: &config,
            image,
            command,
            tty,
            suffix: random_suffix(),
        },
        env,
    );
    crate::extras::apply(&mut spec, ctx, &project, &config);
    crate::extras::finish(&mut spec, &ctx.identity.home);
    session::run(&engine, &spec, &ctx.ui).await
}

/// Six hex characters that make a container name unique.
pub fn random_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}
