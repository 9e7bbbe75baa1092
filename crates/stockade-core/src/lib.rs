//! Pure logic of stockade: configuration, project discovery, host identity, image plans and
//! sandbox specifications. Nothing in this crate talks to a container engine, so all of it is
//! tested without one.

pub mod agents;
pub mod chain;
pub mod config;
pub mod context;
pub mod dirs;
pub mod egress;
pub mod foundation;
pub mod fsread;
pub mod full;
pub mod handover;
pub mod hash;
pub mod identity;
pub mod labels;
pub mod names;
pub mod project;
pub mod project_files;
pub mod published;
pub mod sandbox;
pub mod secret_file;
pub mod secrets;
pub mod trust;
