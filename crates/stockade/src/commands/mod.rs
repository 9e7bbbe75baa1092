//! One module per command.

pub mod agents;
pub mod attach;
pub mod build;
pub mod check;
pub mod completions;
pub mod config;
pub mod exec;
pub mod images;
pub mod net;
pub mod prune;
pub mod run;
pub mod scan;
pub mod serve;
pub mod sessions;
pub mod trust;
pub mod update;
pub mod volumes;
pub mod worktree;
