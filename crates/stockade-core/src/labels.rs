//! The labels stockade puts on everything it creates on the engine (prefix `io.stockade.`).

pub const TIER: &str = "io.stockade.tier";
pub const HASH: &str = "io.stockade.hash";
pub const PARENT: &str = "io.stockade.parent";
pub const VERSION: &str = "io.stockade.version";
pub const PROJECT: &str = "io.stockade.project";
pub const NAMESPACE: &str = "io.stockade.namespace";
/// On a custom base's runtime layer: the custom image it extends.
pub const CUSTOM_BASE: &str = "io.stockade.custom-base";
/// Marks every container stockade creates (value: the kind, e.g. `sandbox`).
pub const KIND: &str = "io.stockade.kind";

/// The version of stockade written into labels.
pub const STOCKADE_VERSION: &str = env!("CARGO_PKG_VERSION");
