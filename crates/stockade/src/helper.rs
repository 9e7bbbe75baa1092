//! Throwaway helper containers from the foundation image: install an agent into its tools
//! volume, ask a registry for versions. They run as an unprivileged uid ([`HELPER_UID`](stockade_core::sandbox::HELPER_UID), the
//! owner of the tools volumes) with no capabilities: npm and pip install scripts run in them.
//! Output is captured, not shown (at `-v` it is).

use futures_util::StreamExt;
use stockade_core::handover::secrets_upload;
use stockade_core::names::Namespace;
use stockade_core::sandbox::{SandboxSpec, VolumeMount, has_credentials};
use stockade_core::secret_file::SECRETS_PATH;
use stockade_engine::{Engine, OutputChunk};

use crate::context::env;
use crate::exit::CliError;

/// What a helper printed and how it ended.
pub struct HelperOutput {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl HelperOutput {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// The last lines of stderr (then stdout), for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Run `script` with `sh` in a helper container with `volumes` mounted; removed afterwards.
pub async fn run(
    engine: &Engine,
    namespace: &Namespace,
    image: &str,
    script: &str,
    volumes: Vec<VolumeMount>,
    verbose: bool,
) -> Result<HelperOutput, CliError> {
    // Proxy settings pass through; one with credentials travels as a secret (docs/security.md),
    // sourced by the script before anything else.
    let mut env_vars: Vec<(String, String)> = Vec::new();
    let mut secrets: Vec<(String, String)> = Vec::new();
    for name in stockade_core::foundation::PROXY_VARS {
        if let Some(value) = env(name) {
            let list = if has_credentials(&value) {
                &mut secrets
            } else {
                &mut env_vars
            };
            list.push(((*name).to_owned(), value));
        }
    }
    let script = if secrets.is_empty() {
        script.to_owned()
    } else {
        format!(". {SECRETS_PATH}\n{script}")
    };
    let spec = SandboxSpec::helper(namespace, image, &script, volumes, env_vars);
    let upload = secrets_upload(&secrets, &spec.user, false)
        .map_err(|e| CliError::caused("cannot pack the helper's secrets", e, None))?;
    let id = engine.create_sandbox(&spec).await?;
    let result = match upload {
        Some(upload) => engine
            .upload(&id, &upload.dir, upload.tar)
            .await
            .map_err(CliError::from),
        None => Ok(()),
    };
    let result = match result {
        Ok(()) => collect(engine, &id, verbose).await,
        Err(e) => Err(e),
    };
    if let Err(e) = engine.remove(&id).await {
        tracing::debug!("removing helper {}: {e}", spec.name);
    }
    result
}

/// How long a look into an image (`look`) may take.
const LOOK_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Run a read-only `script` in an image that may be hostile (the sandbox image, to see what it
/// has): as the helper uid, with no network, no mounts, no environment and no secrets (not even
/// proxy settings), for at most a minute. `None` when it did not end in time.
pub async fn look(
    engine: &Engine,
    namespace: &Namespace,
    image: &str,
    script: &str,
) -> Result<Option<HelperOutput>, CliError> {
    let mut spec = SandboxSpec::helper(namespace, image, script, Vec::new(), Vec::new());
    spec.network = stockade_core::sandbox::NetworkMode::None;
    run_spec(engine, &spec, false, LOOK_LIMIT).await
}

/// A helper whose spec the caller made (the git helpers run as the host user, with the
/// repository mounted): created, run to its end with output collected, removed. `None` when
/// it did not end within `limit` (it is killed and removed then).
pub async fn run_spec(
    engine: &Engine,
    spec: &SandboxSpec,
    verbose: bool,
    limit: std::time::Duration,
) -> Result<Option<HelperOutput>, CliError> {
    let id = engine.create_sandbox(spec).await?;
    let result = tokio::time::timeout(limit, collect(engine, &id, verbose))
        .await
        .ok()
        .transpose();
    if let Err(e) = engine.remove(&id).await {
        tracing::debug!("removing helper {}: {e}", spec.name);
    }
    result
}

/// Give a volume's root directory to `uid:gid` without running anything: a container that
/// mounts it is created, never started, and handed a directory entry through the archive API.
pub async fn give_volume(
    engine: &Engine,
    namespace: &Namespace,
    image: &str,
    volume: &VolumeMount,
    uid: u32,
    gid: u32,
) -> Result<(), CliError> {
    let mount = "stockade-volume";
    let spec = SandboxSpec::helper(
        namespace,
        image,
        "true",
        vec![VolumeMount {
            target: format!("/{mount}").into(),
            read_only: false,
            ..volume.clone()
        }],
        Vec::new(),
    );
    let archive = stockade_core::handover::directory_archive(mount, uid, gid)
        .map_err(|e| CliError::caused("cannot pack a volume's owner", e, None))?;
    let id = engine.create_sandbox(&spec).await?;
    let result = engine.upload(&id, "/", archive).await;
    if let Err(e) = engine.remove(&id).await {
        tracing::debug!("removing helper {}: {e}", spec.name);
    }
    Ok(result?)
}

/// Files of an image, read without running anything: a container is created, never started, and
/// each path is downloaded through the archive API (at most `limit` bytes each; `None` for one
/// that is missing or not a regular file).
pub async fn read_image_files(
    engine: &Engine,
    namespace: &Namespace,
    image: &str,
    paths: &[&str],
    limit: u64,
) -> Result<Vec<Option<Vec<u8>>>, CliError> {
    let spec = SandboxSpec::helper(namespace, image, "true", Vec::new(), Vec::new());
    let id = engine.create_sandbox(&spec).await?;
    let reads = paths
        .iter()
        .map(|path| engine.download_file(&id, path, limit));
    let result = futures_util::future::try_join_all(reads).await;
    if let Err(e) = engine.remove(&id).await {
        tracing::debug!("removing helper {}: {e}", spec.name);
    }
    Ok(result?)
}

async fn collect(engine: &Engine, id: &str, verbose: bool) -> Result<HelperOutput, CliError> {
    let mut attached = engine.attach(id, None).await?;
    engine.start(id).await?;
    // Nothing to say on stdin: close it, so nothing in the helper waits for input.
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut attached.input).await;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    while let Some(chunk) = attached.output.next().await {
        match chunk {
            Ok(OutputChunk::Stdout(bytes)) => {
                if verbose {
                    eprint!("{}", String::from_utf8_lossy(&bytes));
                }
                stdout.extend_from_slice(&bytes);
            }
            Ok(OutputChunk::Stderr(bytes)) => {
                if verbose {
                    eprint!("{}", String::from_utf8_lossy(&bytes));
                }
                stderr.extend_from_slice(&bytes);
            }
            Err(e) => {
                tracing::debug!("helper output: {e}");
                break;
            }
        }
    }
    let code = engine.wait(id).await?;
    Ok(HelperOutput {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}
