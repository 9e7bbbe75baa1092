//! Throwaway helper containers (as root, from the foundation image): install an agent into its
//! tools volume, ask a registry for versions. Output is captured, not shown (at `-v` it is).

use std::collections::BTreeMap;

use futures_util::StreamExt;
use stockade_core::config::Network;
use stockade_core::identity::Identity;
use stockade_core::labels;
use stockade_core::names::Namespace;
use stockade_core::sandbox::{DEFAULT_PIDS_LIMIT, Limits, SandboxSpec, Security, VolumeMount};
use stockade_engine::{Engine, OutputChunk};

use crate::context::env;
use crate::exit::CliError;

/// What a helper printed and how it ended.
pub struct HelperOutput {
    pub code: i64,
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
    let mut env_vars: Vec<(String, String)> = Vec::new();
    for name in stockade_core::foundation::PROXY_VARS {
        if let Some(value) = env(name) {
            env_vars.push(((*name).to_owned(), value));
        }
    }
    let spec = SandboxSpec {
        name: namespace.container_name(&format!(
            "helper-{}",
            crate::commands::exec::random_suffix()
        )),
        image: image.to_owned(),
        command: vec!["sh".into(), "-c".into(), script.to_owned()],
        workdir: "/tmp".into(),
        user: Identity {
            uid: 0,
            gid: 0,
            name: "root".into(),
            home: "/root".into(),
        },
        env: env_vars,
        mounts: Vec::new(),
        volumes,
        secrets: Vec::new(),
        labels: BTreeMap::from([
            (labels::KIND.to_owned(), "helper".to_owned()),
            (labels::NAMESPACE.to_owned(), namespace.as_str().to_owned()),
            (
                labels::VERSION.to_owned(),
                labels::STOCKADE_VERSION.to_owned(),
            ),
        ]),
        tty: false,
        security: Security {
            // npm and pip run as root in here and may change file owners and modes.
            cap_add: ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            ..Security::default()
        },
        limits: Limits {
            pids: DEFAULT_PIDS_LIMIT,
            memory: None,
            nano_cpus: None,
        },
        network: Network::Bridge,
        ports: Vec::new(),
        tmpfs: BTreeMap::new(),
        groups: Vec::new(),
        engine_options: Vec::new(),
        // stockade's own install scripts, as root with the capabilities above: no user mapping
        // and no privilege drop, only the init.
        entrypoint: Some(vec!["/opt/stockade/bin/tini".into(), "--".into()]),
    };
    let id = engine.create_sandbox(&spec).await?;
    let result = collect(engine, &id, verbose).await;
    if let Err(e) = engine.remove(&id).await {
        tracing::debug!("removing helper {}: {e}", spec.name);
    }
    result
}

async fn collect(engine: &Engine, id: &str, verbose: bool) -> Result<HelperOutput, CliError> {
    let mut attached = engine.attach(id).await?;
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
