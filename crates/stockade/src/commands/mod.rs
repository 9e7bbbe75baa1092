//! One module per command.

pub mod build;
pub mod check;
pub mod completions;
pub mod exec;
pub mod images;
pub mod prune;
