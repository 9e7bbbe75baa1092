//! The `stockade` command line: clap types, one module per command, and rendering.

mod agent;
mod app;
mod cli;
mod commands;
mod context;
mod exit;
mod extras;
mod gateway;
mod helper;
mod host_command;
mod image;
mod inventory;
mod launch;
mod lock;
mod password;
mod probe;
mod session;
mod sessions;
mod tools;
mod ui;
mod user_files;
mod worktree;

pub use app::main;
