//! The `stockade` command line: clap types, one module per command, and rendering.

mod app;
mod cli;
mod commands;
mod context;
mod exit;
mod image;
mod inventory;
mod launch;
mod session;
mod ui;

pub use app::main;
