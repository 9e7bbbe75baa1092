//! The only code in stockade that talks to a container engine (Docker or Podman, through the
//! Engine API with bollard). It emits typed results and progress events and knows nothing of
//! terminals. Every call is logged at debug level (`-v`) as `engine: <operation> <target>`;
//! values of environment variables are never logged.

mod build;
mod connect;
mod container;
mod endpoint;
mod error;
mod events;
mod image;
mod network;
mod podman;
mod session;
mod system;
mod volume;

pub use build::{BuildEvent, BuildRequest};
pub use connect::Engine;
pub use container::{Attached, ContainerSummary, OutputChunk};
pub use endpoint::{Endpoint, EndpointSource, ResolvedEndpoint, resolve_endpoint};
pub use error::EngineError;
pub use image::{ImageInfo, ImageSummary, PullProgress, RegistryCredentials, Removal};
pub use network::{ContainerFacts, NetworkInfo};
pub use podman::EngineKind;
pub use session::{ContainerState, ExecSpec, LogsRequest};
pub use system::EngineInfo;
pub use volume::VolumeInfo;

/// The oldest Engine API stockade supports (Docker 20.10; Podman's compatible socket reports it too).
pub const MIN_API_VERSION: (usize, usize) = (1, 41);
