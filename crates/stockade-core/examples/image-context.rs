//! Writes the build context of a published image, exactly as stockade embeds it, to stdout as a
//! tar archive: the release workflow builds the `foundation` and `full` images from it
//! (`cargo run -p stockade-core --example image-context -- foundation | tar -x -C DIR`;
//! docs/release.md). The context is the one a default configuration builds (no
//! `[image] ca_certificates`); the FROM image is a build argument the workflow sets.

use std::io::Write;
use std::process::ExitCode;

use stockade_core::config::Config;
use stockade_core::context::BuildContext;
use stockade_core::foundation::FoundationPlan;

fn context(image: &str) -> Result<BuildContext, String> {
    match image {
        "foundation" => FoundationPlan::new(&Config::default().image)
            .map(|plan| plan.context)
            .map_err(|e| e.to_string()),
        // Its Dockerfile, manifest and the install lists made from the manifest.
        "full" => stockade_core::full::FullPlan::embedded()
            .map(|plan| plan.context)
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown image {other:?}: foundation or full")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image] = args.as_slice() else {
        eprintln!("usage: image-context foundation|full > context.tar");
        return ExitCode::from(2);
    };
    let written = context(image)
        .and_then(|context| context.to_tar().map_err(|e| e.to_string()))
        .and_then(|tar| {
            let mut out = std::io::stdout().lock();
            out.write_all(&tar)
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the archive: {e}"))
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("image-context: {e}");
            ExitCode::FAILURE
        }
    }
}
