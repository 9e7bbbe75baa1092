//! `stockade scan [--json]`: the pre-launch secret scan on its own.

use std::time::Instant;

use crate::context::Context;
use crate::exit::CliError;
use crate::launch::{print_findings, run_scan};

pub fn run(ctx: &Context, json: bool) -> Result<u8, CliError> {
    let project = ctx.project()?;
    let resolved = ctx.resolve(&project, Vec::new())?;
    let started = Instant::now();
    let report = run_scan(&project, &resolved)?;
    let elapsed = started.elapsed();
    if json {
        crate::ui::print_json(&report)?;
        return Ok(0);
    }
    if !report.findings.is_empty() {
        print_findings(&ctx.ui, &report);
    }
    println!(
        "{} likely secret(s) in {} files ({} allowed) in {} ms",
        report.findings.len(),
        report.files,
        report.allowed,
        elapsed.as_millis()
    );
    Ok(0)
}
