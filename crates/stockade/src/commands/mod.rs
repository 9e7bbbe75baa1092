//! One module per command.

pub mod build;
pub mod check;
pub mod completions;
pub mod config;
pub mod exec;
pub mod scan;
pub mod trust;
