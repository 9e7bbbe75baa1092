//! The egress gateway (docs/egress.md): under `egress = "allowlist"` a sandbox sits on its
//! project's internal network, whose only other member is the gateway, a squid that stockade
//! builds and runs once per namespace on the engine. Each sandbox gets its own proxy
//! credentials (as secrets) and a policy file in the gateway's volume that its helper reads on
//! every request, so `net allow` applies to a running sandbox at once. The state lives on the
//! engine, not in a user's state directory: every stockade that drives the engine (users,
//! test environments) shares the one gateway of its namespace.
//!
//! Published ports (`-p`, `serve`) cannot be published from an internal network: a forwarder
//! container from the gateway image publishes them and forwards each to the sandbox.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use stockade_core::agents::Agent;
use stockade_core::config::EngineOption;
use stockade_core::config::{Config, Egress};
use stockade_core::context::{BuildContext, ContextFile};
use stockade_core::egress::{self, Rule};
use stockade_core::handover;
use stockade_core::hash::{ContentHasher, sha256_hex};
use stockade_core::labels;
use stockade_core::project::Project;
use stockade_core::sandbox::{HELPER_UID, NetworkMode, Restart, SandboxSpec, VolumeMount};
use stockade_engine::{ContainerState, Engine, ExecSpec, Removal};

use crate::context::Context;
use crate::exit::CliError;
use crate::image::{BuildMode, ChainRun, Ready, TierBuild, ensure_built};
use crate::lock::FileLock;
use stockade_core::foundation::FROM_ARG;

/// The embedded build context of the gateway image: (path, contents, mode).
const ASSETS: &[(&str, &[u8], u32)] = &[
    (
        "Dockerfile",
        include_bytes!("../../../assets/gateway/Dockerfile"),
        0o644,
    ),
    (
        "squid.conf",
        include_bytes!("../../../assets/gateway/squid.conf"),
        0o644,
    ),
    (
        "gateway.py",
        include_bytes!("../../../assets/gateway/gateway.py"),
        0o644,
    ),
    (
        "ERR_STOCKADE_DENIED",
        include_bytes!("../../../assets/gateway/ERR_STOCKADE_DENIED"),
        0o644,
    ),
    (
        "ERR_STOCKADE_PRIVATE",
        include_bytes!("../../../assets/gateway/ERR_STOCKADE_PRIVATE"),
        0o644,
    ),
];

/// The port sandboxes reach the gateway on for HTTPS (`CONNECT`, and everything else squid
/// serves).
pub const PROXY_PORT: u16 = 3128;
/// The port of the gateway's plain-HTTP front (`HTTP_PROXY`): the same credentials and policy
/// as squid's, without squid's 4 KiB writes (assets/gateway/gateway.py).
pub const HTTP_PROXY_PORT: u16 = 3130;
/// The gateway's name on every project network (what the proxy URLs say).
const GATEWAY_ALIAS: &str = "stockade-gateway";
/// The label on the gateway container carrying what it was made from (image and settings).
const GATEWAY_HASH: &str = "io.stockade.gateway-hash";
/// How long a (re)started gateway has to become ready.
const READY_SECONDS: u32 = 60;

/// What a sandbox's policy file holds: the gateway's helper reads it on every request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyFile {
    /// SHA-256 of the sandbox's proxy password (the password itself is only in the sandbox).
    pub token_sha256: String,
    /// The container's name (also the proxy user).
    pub sandbox: String,
    pub session: String,
    pub agent: Option<String>,
    pub project: PathBuf,
    pub presets: Vec<String>,
    pub rules: Vec<Rule>,
    pub private: Vec<Rule>,
}

/// Where the gateway keeps its state, in its volume: `policy/<sandbox>.json` (written by
/// stockade), `log/denials.jsonl` (written by the gateway).
const STATE: &str = "/run/stockade-gateway";
/// The policy and log files belong to the gateway's user, as in its image.
const GATEWAY_UID: u32 = HELPER_UID;
/// The most of the denial log `net log` reads (the gateway rotates it at 4 MiB).
const DENIALS_LIMIT: u64 = 8 * 1024 * 1024;

/// The gateway container's name.
pub fn container_name(ctx: &Context) -> String {
    ctx.namespace.container_name("gateway")
}

/// The internal network of a project's sandboxes.
pub fn network_name(ctx: &Context, project: &Project) -> String {
    ctx.namespace
        .container_name(&format!("egress-{}", project.id()))
}

/// The forwarder of a sandbox's published ports.
pub fn forwarder_name(sandbox: &str) -> String {
    format!("{sandbox}-ports")
}

/// Plan a sandbox behind the gateway when its configuration asks for the allowlist (what
/// `exec --dry-run` shows): the project's internal network (joined through its holder, where
/// it can), the policy, IPv6 off, `NO_PROXY`. The credentials, the gateway and the holder come
/// at launch ([`attach`]).
pub fn plan(
    ctx: &Context,
    project: &Project,
    config: &Config,
    agent: Option<&Agent>,
    spec: &mut SandboxSpec,
) {
    if config.network.egress != Egress::Allowlist {
        return;
    }
    spec.network = NetworkMode::Internal(network_name(ctx, project));
    spec.egress = Some(egress::policy(
        &config.network,
        agent.map(|a| a.egress.as_slice()).unwrap_or_default(),
    ));
    let proxy_names = stockade_core::foundation::PROXY_VARS;
    spec.env
        .retain(|(name, _)| !proxy_names.contains(&name.as_str()));
    spec.secrets
        .retain(|(name, _)| !proxy_names.contains(&name.as_str()));
    for name in ["NO_PROXY", "no_proxy"] {
        spec.env
            .push((name.to_owned(), "localhost,127.0.0.1,::1".to_owned()));
    }
    // Tells scripts in the sandbox why a host answers 403.
    spec.env
        .push(("STOCKADE_EGRESS".to_owned(), "allowlist".to_owned()));
    for key in IPV6_OFF {
        spec.sysctls.insert(key.to_owned(), "1".to_owned());
    }
    if joinable(spec) {
        // The holder's namespace, which the sandbox joins, has IPv6 off.
        let network = network_name(ctx, project);
        spec.sysctls
            .retain(|key, _| !IPV6_OFF.contains(&key.as_str()));
        spec.labels
            .insert(labels::EGRESS_NETWORK.to_owned(), network.clone());
        spec.network = NetworkMode::Joined(holder_name(&network));
    }
}

/// The sysctls that turn IPv6 off in a network namespace.
const IPV6_OFF: [&str; 2] = [
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.default.disable_ipv6",
];

/// The holder of a project network: the container whose network namespace the project's
/// sandboxes join (see [`ensure_holder`]).
pub fn holder_name(network: &str) -> String {
    format!("{network}-holder")
}

/// Whether a sandbox can join its project's holder. Put on the network itself instead:
/// - one given a hostname, DNS servers or hosts entries (`engine_options`), which the engine
///   sets per network namespace, or sysctls the holder does not have;
/// - a service (a restart policy): when the engine restarts, it starts containers in no order
///   and fails one whose namespace holder does not run yet, for good (moby/moby#50326).
fn joinable(spec: &SandboxSpec) -> bool {
    let per_namespace = spec.engine_options.iter().any(|o| {
        matches!(
            o,
            EngineOption::Hostname(_) | EngineOption::Dns(_) | EngineOption::AddHost { .. }
        )
    });
    !per_namespace
        && spec.restart == Restart::Never
        && spec.sysctls.keys().all(|k| IPV6_OFF.contains(&k.as_str()))
}

/// What a launch behind the gateway leaves to clean up when its sandbox is gone.
#[derive(Debug)]
pub struct Attachment {
    pub sandbox: String,
    /// The forwarder's spec, started once the sandbox exists.
    forwarder: Option<SandboxSpec>,
    /// The policy's upload into the gateway, under way.
    upload: Option<tokio::task::JoinHandle<Result<(), CliError>>>,
}

/// Put a planned sandbox behind the gateway: the gateway and the project's network made
/// current, the policy file written, the proxy variables set (with the sandbox's own
/// credentials, as secrets), published ports moved to a forwarder. `Ok(None)`: the sandbox
/// does not use the gateway.
pub async fn attach(
    engine: &Engine,
    ctx: &Context,
    config: &Config,
    spec: &mut SandboxSpec,
) -> Result<Option<Attachment>, CliError> {
    let Some(policy) = spec.egress.clone() else {
        return Ok(None);
    };
    // The project's network, and the holder the sandbox joins (see [`plan`]).
    let (network, holder) = match &spec.network {
        NetworkMode::Internal(network) => (network.clone(), None),
        NetworkMode::Joined(holder) => match spec.labels.get(labels::EGRESS_NETWORK) {
            Some(network) => (network.clone(), Some(holder.clone())),
            None => {
                return Err(CliError::other(
                    "the sandbox joins an egress holder but names no network (a bug in stockade)",
                    None,
                ));
            }
        },
        NetworkMode::Bridge | NetworkMode::None => return Ok(None),
    };
    if engine.is_podman() {
        // Fail closed: an allowlist that does not hold must not quietly become `open`.
        return Err(CliError::refused(
            "egress-unsupported",
            "the egress allowlist does not work on Podman yet: Podman 4.3's internal networks \
             carry no traffic between containers, so a sandbox cannot reach the gateway",
            Some(
                "choose for yourself: `--egress open` (anywhere) or `--egress none` (no network), \
                 or set `[network] egress` in your global configuration (docs/podman.md)",
            ),
        ));
    }
    let gateway = ensure(engine, ctx, config).await?;
    if !gateway.networks.contains(&network) {
        let project = spec
            .labels
            .get(labels::PROJECT)
            .cloned()
            .unwrap_or_default();
        let labels = HashMap::from([
            (labels::KIND.to_owned(), "egress".to_owned()),
            (
                labels::NAMESPACE.to_owned(),
                ctx.namespace.as_str().to_owned(),
            ),
            (labels::PROJECT.to_owned(), project),
        ]);
        let _lock = FileLock::acquire(ctx, &network, "create the project's network").await?;
        if !engine.network_exists(&network).await?
            && let Err(e) = engine.create_internal_network(&network, &labels).await
        {
            // The engine's address pools hold a few dozen networks: make room by removing the
            // project networks no sandbox uses, then try once more.
            if reclaim_networks(engine, ctx).await? == 0 {
                return Err(e.into());
            }
            engine.create_internal_network(&network, &labels).await?;
        }
        engine
            .connect_network(&network, &container_name(ctx), Some(GATEWAY_ALIAS))
            .await?;
    }
    // Where published ports are forwarded to: the holder's address is the sandbox's.
    let reached_as = match holder {
        Some(holder) => {
            ensure_holder(engine, ctx, &gateway, &network, &holder).await?;
            holder
        }
        None => spec.name.clone(),
    };

    let token = crate::password::generate()?;
    let policy = PolicyFile {
        token_sha256: sha256_hex(token.as_bytes()),
        sandbox: spec.name.clone(),
        session: spec
            .labels
            .get(labels::SESSION)
            .cloned()
            .unwrap_or_default(),
        agent: spec.labels.get(labels::AGENT).cloned(),
        project: spec
            .labels
            .get(labels::PROJECT)
            .map(PathBuf::from)
            .unwrap_or_default(),
        presets: policy.presets,
        rules: policy.rules,
        private: policy.private,
    };
    // The upload runs while the sandbox is created and handed its files; it is waited for
    // before the sandbox starts (`Attachment::policy_written`).
    let upload = {
        let (engine, gateway) = (engine.clone(), container_name(ctx));
        let json = serde_json::to_vec_pretty(&policy)
            .map_err(|e| CliError::caused("cannot write the egress policy", e, None))?;
        let tar = policy_archive(&policy.sandbox, &json)?;
        tokio::spawn(async move {
            engine
                .upload(&gateway, STATE, tar)
                .await
                .map_err(CliError::from)
        })
    };
    let proxy = |port: u16| format!("http://{}:{token}@{GATEWAY_ALIAS}:{port}", spec.name);
    let (https, http) = (proxy(PROXY_PORT), proxy(HTTP_PROXY_PORT));
    for (name, url) in [
        ("HTTPS_PROXY", &https),
        ("https_proxy", &https),
        ("HTTP_PROXY", &http),
        ("http_proxy", &http),
    ] {
        spec.secrets.push((name.to_owned(), url.clone()));
    }
    // The engine publishes nothing of a container on an internal network: the forwarder does.
    let forwarder = (!spec.ports.is_empty())
        .then(|| forwarder_spec(ctx, spec, &gateway.image, &network, &reached_as));
    if forwarder.is_some() {
        let ports: Vec<String> = spec
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{}:{}->{}/{}",
                    p.host_ip, p.host_port, p.container_port, p.protocol
                )
            })
            .collect();
        spec.labels
            .insert(labels::PORTS.to_owned(), ports.join(","));
        spec.ports.clear();
    }
    Ok(Some(Attachment {
        sandbox: spec.name.clone(),
        forwarder,
        upload: Some(upload),
    }))
}

impl Attachment {
    /// Wait until the sandbox's policy is in the gateway: before the sandbox starts, so that
    /// its first request finds it.
    pub async fn policy_written(&mut self) -> Result<(), CliError> {
        match self.upload.take() {
            Some(upload) => upload
                .await
                .map_err(|e| CliError::caused("writing the egress policy failed", e, None))?,
            None => Ok(()),
        }
    }

    /// Start the forwarder (once the sandbox exists, so its name resolves on the network).
    pub async fn start_forwarder(&self, engine: &Engine) -> Result<(), CliError> {
        let Some(spec) = &self.forwarder else {
            return Ok(());
        };
        if let Err(e) = engine.remove(&spec.name).await {
            tracing::debug!("removing an old forwarder {}: {e}", spec.name);
        }
        let id = engine.create_sandbox(spec).await?;
        if let Some(network) = spec.labels.get(labels::EGRESS_NETWORK) {
            engine.connect_network(network, &id, None).await?;
        }
        engine.start(&id).await?;
        Ok(())
    }

    /// Remove what [`attach`] made, once the sandbox has ended: its policy revoked and its
    /// forwarder removed, at once (the session runs this while it removes the sandbox).
    pub fn release(&self, engine: &Engine, ctx: &Context) -> impl Future<Output = ()> + use<> {
        let (engine, gateway) = (engine.clone(), container_name(ctx));
        let sandbox = self.sandbox.clone();
        let forwarder = self.forwarder.as_ref().map(|f| f.name.clone());
        async move {
            let remove_forwarder = async {
                if let Some(forwarder) = &forwarder
                    && let Err(e) = engine.remove(forwarder).await
                {
                    tracing::debug!("removing the forwarder {forwarder}: {e}");
                }
            };
            tokio::join!(revoke(&engine, &gateway, &sandbox), remove_forwarder);
        }
    }
}

/// [`Attachment::policy_written`] when the sandbox is behind the gateway.
pub async fn policy_written(egress: Option<&mut Attachment>) -> Result<(), CliError> {
    match egress {
        Some(egress) => egress.policy_written().await,
        None => Ok(()),
    }
}

/// [`Attachment::release`] when the sandbox is behind the gateway.
pub async fn released(egress: Option<impl Future<Output = ()>>) {
    if let Some(release) = egress {
        release.await;
    }
}

/// A sandbox's published ports as the engine reports them, with those its forwarder publishes
/// behind the gateway (the label [`attach`] leaves on it): (container port/protocol, host
/// address, host port), sorted.
pub fn published_ports(
    state: &ContainerState,
    labels: &HashMap<String, String>,
) -> Vec<(String, String, String)> {
    let mut ports = state.ports.clone();
    if let Some(forwarded) = labels.get(labels::PORTS).filter(|_| state.running) {
        for entry in forwarded.split(',') {
            let Some((host, port)) = entry.split_once("->") else {
                continue;
            };
            let Some((ip, host_port)) = host.rsplit_once(':') else {
                continue;
            };
            ports.push((port.to_owned(), ip.to_owned(), host_port.to_owned()));
        }
    }
    ports.sort();
    ports
}

/// The forwarder: on the default bridge, where the engine publishes its ports, and on the
/// project's network, where it reaches the sandbox by name (`target`: the sandbox's, or its
/// holder's when it joined one).
fn forwarder_spec(
    ctx: &Context,
    sandbox: &SandboxSpec,
    image: &str,
    network: &str,
    target: &str,
) -> SandboxSpec {
    let mut spec = SandboxSpec::helper(&ctx.namespace, image, "", Vec::new(), Vec::new());
    spec.name = forwarder_name(&sandbox.name);
    spec.entrypoint = None;
    let mut pairs: Vec<String> = sandbox
        .ports
        .iter()
        .map(|p| format!("{0}/{2}={1}:{0}", p.container_port, target, p.protocol))
        .collect();
    pairs.sort();
    pairs.dedup();
    spec.command = std::iter::once("forward".to_owned()).chain(pairs).collect();
    spec.ports = sandbox.ports.clone();
    spec.network = NetworkMode::Bridge;
    spec.restart = sandbox.restart;
    spec.detached = sandbox.detached;
    spec.labels
        .insert(labels::KIND.to_owned(), "forwarder".to_owned());
    spec.labels
        .insert(labels::FORWARDS.to_owned(), sandbox.name.clone());
    spec.labels
        .insert(labels::EGRESS_NETWORK.to_owned(), network.to_owned());
    if let Some(project) = sandbox.labels.get(labels::PROJECT) {
        spec.labels
            .insert(labels::PROJECT.to_owned(), project.clone());
    }
    if sandbox.detached {
        spec.labels
            .insert(labels::KEEP.to_owned(), "true".to_owned());
    }
    spec
}

/// Remove what [`attach`] made for a sandbox that is gone: its policy file (its credentials
/// stop working) and its forwarder.
pub async fn release(engine: &Engine, ctx: &Context, sandbox: &str) {
    revoke(engine, &container_name(ctx), sandbox).await;
    if let Err(e) = engine.remove(&forwarder_name(sandbox)).await {
        tracing::debug!("removing the forwarder of {sandbox}: {e}");
    }
}

/// This namespace's project networks that no sandbox is on (the gateway, if anything).
pub async fn unused_networks(engine: &Engine, ctx: &Context) -> Result<Vec<String>, CliError> {
    unused_networks_where(engine, ctx, |_| true).await
}

/// The networks of projects whose directory is gone that no sandbox is on (what `prune`
/// removes, as it does their images and home volumes).
pub async fn orphaned_networks(engine: &Engine, ctx: &Context) -> Result<Vec<String>, CliError> {
    unused_networks_where(engine, ctx, |network| {
        network
            .labels
            .get(labels::PROJECT)
            .is_some_and(|root| !Path::new(root).exists())
    })
    .await
}

async fn unused_networks_where(
    engine: &Engine,
    ctx: &Context,
    wanted: impl Fn(&stockade_engine::NetworkInfo) -> bool,
) -> Result<Vec<String>, CliError> {
    let gateway = container_name(ctx);
    let networks = engine
        .list_networks(&[
            format!("{}=egress", labels::KIND),
            format!("{}={}", labels::NAMESPACE, ctx.namespace.as_str()),
        ])
        .await?;
    // Sandboxes that joined a holder are not members of its network: their label names it.
    let joined: HashSet<String> = engine
        .list_containers(&[
            format!("{}=sandbox", labels::KIND),
            format!("{}={}", labels::NAMESPACE, ctx.namespace.as_str()),
            labels::EGRESS_NETWORK.to_owned(),
        ])
        .await?
        .into_iter()
        .filter(|c| !matches!(c.state.as_str(), "exited" | "dead"))
        .filter_map(|c| c.labels.get(labels::EGRESS_NETWORK).cloned())
        .collect();
    let mut unused = Vec::new();
    for network in networks.into_iter().filter(|n| wanted(n)) {
        let Some(members) = engine.network_members(&network.name).await? else {
            continue;
        };
        let holder = holder_name(&network.name);
        if members.iter().all(|m| *m == gateway || *m == holder) && !joined.contains(&network.name)
        {
            unused.push(network.name);
        }
    }
    Ok(unused)
}

/// Remove project networks (the gateway is detached first); returns how many went. A
/// project's next launch makes its network again.
pub async fn remove_networks(
    engine: &Engine,
    ctx: &Context,
    networks: &[String],
) -> Result<usize, CliError> {
    let gateway = container_name(ctx);
    let mut removed = 0;
    for network in networks {
        engine.remove(&holder_name(network)).await?;
        engine.disconnect_network(network, &gateway).await?;
        if engine.remove_network(network).await? == Removal::Removed {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Remove this namespace's project networks that no sandbox is on; returns how many went.
pub async fn reclaim_networks(engine: &Engine, ctx: &Context) -> Result<usize, CliError> {
    let unused = unused_networks(engine, ctx).await?;
    remove_networks(engine, ctx, &unused).await
}

/// Revoke a sandbox's policy: it is replaced by a tombstone (one upload, no process started),
/// so its credentials stop working; the gateway sweeps tombstones away.
async fn revoke(engine: &Engine, gateway: &str, sandbox: &str) {
    let upload = policy_archive(sandbox, br#"{"revoked": true}"#);
    let result = match upload {
        Ok(tar) => engine
            .upload(gateway, STATE, tar)
            .await
            .map_err(CliError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::debug!("revoking the egress policy of {sandbox}: {e}");
    }
}

/// The upload of one policy file (0600, the gateway user's).
fn policy_archive(sandbox: &str, json: &[u8]) -> Result<Vec<u8>, CliError> {
    handover::file_archive(
        &format!("policy/{sandbox}.json"),
        json,
        GATEWAY_UID,
        GATEWAY_UID,
        0o600,
    )
    .map_err(|e| CliError::caused("cannot pack the egress policy", e, None))
}

/// `gateway.py ARGS…` run in the gateway as its user.
fn gateway_exec(args: &[&str]) -> ExecSpec {
    ExecSpec {
        command: ["python3", "/usr/lib/stockade-gateway/gateway.py"]
            .iter()
            .chain(args)
            .map(|s| (*s).to_owned())
            .collect(),
        user: format!("{GATEWAY_UID}:{GATEWAY_UID}"),
        workdir: None,
        tty: false,
    }
}

/// The gateway, running and ready.
struct Running {
    image: String,
    networks: Vec<String>,
    /// What the container was made from (its label): holders are made for one gateway.
    hash: String,
}

/// Make the gateway image current and the gateway container run from it.
///
/// A warm launch asks the engine one thing: the container's facts. Its label carries the hash
/// of what it was made from (the image's build hash, which covers the embedded assets and
/// `[image] from`, and `allow_private`), so a running gateway with the wanted hash is current
/// without looking at the image.
async fn ensure(engine: &Engine, ctx: &Context, config: &Config) -> Result<Running, CliError> {
    let (build, context) = image_build(ctx, config);
    let tag = build.tag.clone();
    let name = container_name(ctx);
    let private: Vec<String> = egress::policy(&config.network, &[])
        .private
        .iter()
        .map(|r| r.host.clone())
        .collect();
    let mut hasher = ContentHasher::new("stockade-gateway-container-v2");
    hasher.part(build.hash.as_bytes());
    for host in &private {
        hasher.part(host.as_bytes());
    }
    let want = hasher.finish();
    let current = |facts: &Option<stockade_engine::ContainerFacts>| {
        facts
            .as_ref()
            .filter(|f| f.running && f.labels.get(GATEWAY_HASH) == Some(&want))
            .map(|f| Running {
                image: tag.clone(),
                networks: f.networks.clone(),
                hash: want.clone(),
            })
    };
    let facts = engine.container_facts(&name).await?;
    if let Some(running) = current(&facts) {
        return Ok(running);
    }
    // Missing, stopped or made from something else: the image first.
    let image = build_image(engine, ctx, build, context).await?;
    let _lock = FileLock::acquire(ctx, "gateway", "start the egress gateway").await?;
    let facts = engine.container_facts(&name).await?;
    if let Some(running) = current(&facts) {
        return Ok(running);
    }
    match facts {
        Some(f) if f.labels.get(GATEWAY_HASH) == Some(&want) => {
            // A stopped gateway may not start again: a project network it was on is gone
            // (removed while it was stopped). A new one takes over the networks that are left.
            if let Err(e) = engine.start(&f.id).await {
                tracing::debug!("the stopped gateway does not start ({e}): made again");
                engine.remove(&f.id).await?;
                create(engine, ctx, &image.tag, &want, &private).await?;
            }
        }
        Some(f) => {
            engine.remove(&f.id).await?;
            create(engine, ctx, &image.tag, &want, &private).await?;
        }
        None => create(engine, ctx, &image.tag, &want, &private).await?,
    }
    wait_ready(engine, &name).await?;
    // A new gateway takes over the project networks of the one it replaced, so that sandboxes
    // running there keep their way out (their policies are in the volume).
    for network in engine
        .list_networks(&[
            format!("{}=egress", labels::KIND),
            format!("{}={}", labels::NAMESPACE, ctx.namespace.as_str()),
        ])
        .await?
    {
        engine
            .connect_network(&network.name, &name, Some(GATEWAY_ALIAS))
            .await?;
    }
    let networks = engine
        .container_facts(&name)
        .await?
        .map(|f| f.networks)
        .unwrap_or_default();
    Ok(Running {
        image: image.tag,
        networks,
        hash: want,
    })
}

/// Make the holder of a project network run: a container of the gateway's image that only
/// sleeps on the network, with IPv6 off. The project's sandboxes join its network namespace,
/// so the engine makes no network (no address, no DNS set-up) per sandbox: a launch behind
/// the gateway starts faster than one on the default bridge. They share its address and
/// loopback, as sandboxes of one project share its files. Made once per project network and
/// gateway (its label), kept running; removed with the network.
async fn ensure_holder(
    engine: &Engine,
    ctx: &Context,
    gateway: &Running,
    network: &str,
    name: &str,
) -> Result<(), CliError> {
    let current = |facts: &Option<stockade_engine::ContainerFacts>| {
        facts
            .as_ref()
            .is_some_and(|f| f.running && f.labels.get(GATEWAY_HASH) == Some(&gateway.hash))
    };
    if current(&engine.container_facts(name).await?) {
        return Ok(());
    }
    let _lock = FileLock::acquire(ctx, name, "start the project network's holder").await?;
    let facts = engine.container_facts(name).await?;
    if current(&facts) {
        return Ok(());
    }
    if let Some(stale) = facts {
        // Stopped, or made for another gateway (whose image it holds): made again.
        engine.remove(&stale.id).await?;
    }
    let mut spec = SandboxSpec::helper(&ctx.namespace, &gateway.image, "", Vec::new(), Vec::new());
    spec.name = name.to_owned();
    spec.entrypoint = Some(vec!["/usr/bin/tini".to_owned(), "--".to_owned()]);
    spec.command = vec!["sleep".to_owned(), "infinity".to_owned()];
    spec.network = NetworkMode::Internal(network.to_owned());
    for key in IPV6_OFF {
        spec.sysctls.insert(key.to_owned(), "1".to_owned());
    }
    spec.restart = Restart::UnlessStopped;
    spec.detached = true;
    spec.limits.memory = Some(32 * 1024 * 1024);
    // It writes nothing.
    spec.security.read_only_root = true;
    spec.labels
        .insert(labels::KIND.to_owned(), "egress-holder".to_owned());
    spec.labels
        .insert(labels::EGRESS_NETWORK.to_owned(), network.to_owned());
    spec.labels
        .insert(GATEWAY_HASH.to_owned(), gateway.hash.clone());
    match engine.create_sandbox(&spec).await {
        Ok(id) => engine.start(&id).await?,
        // Another stockade on this engine (another HOME: its locks are not ours) made it a
        // moment ago: a sandbox can join it once it runs.
        Err(e) if e.status() == Some(409) => {
            tracing::debug!("the holder {name} was made by another stockade: {e}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !current(&engine.container_facts(name).await?) {
                if tokio::time::Instant::now() >= deadline {
                    return Err(CliError::other(
                        format!(
                            "the egress network's holder {name}, made by another stockade, does not run"
                        ),
                        Some("run again; `docker logs` of that container may say why"),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn create(
    engine: &Engine,
    ctx: &Context,
    image: &str,
    hash: &str,
    private: &[String],
) -> Result<(), CliError> {
    let mut spec = SandboxSpec::helper(
        &ctx.namespace,
        image,
        "",
        Vec::new(),
        vec![("STOCKADE_PRIVATE_NAMES".to_owned(), private.join(" "))],
    );
    spec.name = container_name(ctx);
    spec.entrypoint = None;
    spec.command = vec!["run".to_owned()];
    // Not root (squid would try to switch users), no capability; its state in its volume.
    spec.start_as = format!("{GATEWAY_UID}:{GATEWAY_UID}");
    spec.volumes = vec![VolumeMount {
        volume: container_name(ctx),
        target: PathBuf::from(STATE),
        read_only: false,
        labels: BTreeMap::from([
            (labels::KIND.to_owned(), "gateway".to_owned()),
            (
                labels::NAMESPACE.to_owned(),
                ctx.namespace.as_str().to_owned(),
            ),
        ]),
    }];
    spec.network = NetworkMode::Bridge;
    // It sits on the bridge and on every project network: it routes nothing between them.
    spec.sysctls
        .insert("net.ipv4.ip_forward".to_owned(), "0".to_owned());
    spec.restart = Restart::UnlessStopped;
    spec.detached = true;
    spec.limits.memory = Some(512 * 1024 * 1024);
    spec.tmpfs
        .insert(PathBuf::from("/tmp"), "rw,nosuid,nodev,size=64m".to_owned());
    spec.labels
        .insert(labels::KIND.to_owned(), "gateway".to_owned());
    spec.labels
        .insert(labels::KEEP.to_owned(), "true".to_owned());
    spec.labels.insert(GATEWAY_HASH.to_owned(), hash.to_owned());
    match engine.create_sandbox(&spec).await {
        Ok(id) => engine.start(&id).await?,
        // Another stockade on this engine (another user, another HOME: their file locks are
        // not ours) made it a moment ago: wait for that one to be ready.
        Err(e) if e.status() == Some(409) => {
            tracing::debug!("the gateway was made by another stockade: {e}");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Wait for the gateway's own readiness (squid up, its path to the SNI check warmed up).
async fn wait_ready(engine: &Engine, name: &str) -> Result<(), CliError> {
    let spec = gateway_exec(&["ready", &READY_SECONDS.to_string()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(READY_SECONDS.into());
    loop {
        // The engine refuses an exec while the container is (re)starting, which another
        // stockade may be doing: that is asked again until the deadline.
        let failure = match engine.exec_to_end(name, &spec).await {
            Ok((0, _)) => return Ok(()),
            Ok((_, output)) => output.trim().to_owned(),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::other(
                format!("the egress gateway did not start: {failure}"),
                Some("see `docker logs` of the gateway container; `--egress open` runs without it"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The gateway image's build (the embedded assets on `[image] from`) and its context.
fn image_build(ctx: &Context, config: &Config) -> (TierBuild, BuildContext) {
    let files: Vec<ContextFile> = ASSETS
        .iter()
        .map(|(path, bytes, mode)| ContextFile::new(*path, bytes.to_vec(), *mode))
        .collect();
    let context = BuildContext::new(files);
    let mut hasher = ContentHasher::new("stockade-gateway-v1");
    context.hash_into(&mut hasher);
    hasher
        .part(FROM_ARG.as_bytes())
        .part(config.image.from.as_bytes());
    let tag = format!("{}:gateway", ctx.namespace.repository());
    let build = TierBuild {
        tier: "gateway",
        title: "egress gateway image".to_owned(),
        tag: tag.clone(),
        dockerfile: "Dockerfile".to_owned(),
        hash: hasher.finish(),
        parent: None,
        build_args: HashMap::from([(FROM_ARG.to_owned(), config.image.from.clone())]),
        labels: HashMap::from([(
            "org.opencontainers.image.title".to_owned(),
            "stockade egress gateway".to_owned(),
        )]),
    };
    (build, context)
}

/// The gateway image, built when it is missing or stale.
async fn build_image(
    engine: &Engine,
    ctx: &Context,
    build: TierBuild,
    mut context: BuildContext,
) -> Result<Ready, CliError> {
    let tag = build.tag.clone();
    let mut run = ChainRun::prefetch(engine, std::slice::from_ref(&tag)).await?;
    let ready = ensure_built(engine, ctx, build, BuildMode::IfStale, &mut run, |edit| {
        context.edit("Dockerfile", |bytes| edit.apply(bytes));
        context
            .to_tar()
            .map_err(|e| CliError::caused("cannot pack the gateway build context", e, None))
    })
    .await;
    run.remove(engine).await;
    ready
}

/// Write a sandbox's policy file into the gateway (0600, its user's). The helper reads it on
/// the next request; one it catches half-written it reads again.
pub async fn write_policy(
    engine: &Engine,
    ctx: &Context,
    policy: &PolicyFile,
) -> Result<(), CliError> {
    let json = serde_json::to_vec_pretty(policy)
        .map_err(|e| CliError::caused("cannot write the egress policy", e, None))?;
    let tar = policy_archive(&policy.sandbox, &json)?;
    engine.upload(&container_name(ctx), STATE, tar).await?;
    Ok(())
}

/// The policy files of this namespace's sandboxes (`net allow` updates them).
pub async fn read_policies(engine: &Engine, ctx: &Context) -> Result<Vec<PolicyFile>, CliError> {
    let Some(tar) = engine
        .download_archive(
            &container_name(ctx),
            &format!("{STATE}/policy"),
            DENIALS_LIMIT,
        )
        .await
        .or_else(no_gateway)?
    else {
        return Ok(Vec::new());
    };
    let mut out: Vec<PolicyFile> = handover::files(&tar, 1024 * 1024)
        .into_iter()
        .filter(|(path, _)| path.ends_with(".json"))
        // A tombstone (`{"revoked": true}`) is not a policy.
        .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
        .collect();
    out.sort_by(|a: &PolicyFile, b| a.sandbox.cmp(&b.sandbox));
    Ok(out)
}

/// A download from a gateway that is not there (404) finds nothing.
fn no_gateway<T>(
    e: stockade_engine::EngineError,
) -> Result<Option<T>, stockade_engine::EngineError> {
    if e.status() == Some(404) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// The gateway's denial log, as its JSON lines: the previous file (`denials.jsonl.1`, kept at
/// rotation) and the current one, each empty when missing (no gateway, or no denial yet).
pub async fn read_denials(engine: &Engine, ctx: &Context) -> Result<(String, String), CliError> {
    let current = denials_path();
    let previous = format!("{current}.1");
    tokio::try_join!(
        download_text(engine, ctx, &previous),
        download_text(engine, ctx, &current)
    )
}

/// The current file of the denial log (what `net log -f` follows).
pub async fn read_current_denials(engine: &Engine, ctx: &Context) -> Result<String, CliError> {
    download_text(engine, ctx, &denials_path()).await
}

fn denials_path() -> String {
    format!("{STATE}/log/denials.jsonl")
}

/// A text file of the gateway's (empty: no gateway, or no such file).
async fn download_text(engine: &Engine, ctx: &Context, path: &str) -> Result<String, CliError> {
    let file = engine
        .download_file(&container_name(ctx), path, DENIALS_LIMIT)
        .await
        .or_else(no_gateway)?;
    Ok(file
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default())
}

/// What `check` reports of egress: the mode, the presets and the gateway's state.
#[derive(Debug, Serialize)]
pub struct EgressCheck {
    pub mode: Egress,
    /// The presets in effect under the allowlist (the agent's own endpoints depend on the agent).
    pub presets: Vec<String>,
    /// The `allow` entries in effect beyond the presets.
    pub allow: Vec<String>,
    pub gateway: GatewayState,
}

/// The gateway container, as `check` finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayState {
    /// Not made yet: the first sandbox under the allowlist starts it.
    NotStarted,
    /// Running and answering.
    Ready,
    /// Running, but not ready.
    NotReady,
    /// Stopped: the next sandbox starts it.
    Stopped,
    /// The engine cannot be reached.
    Unknown,
}

impl EgressCheck {
    /// The `check` line: status, detail, fix.
    pub fn verdict(&self) -> (crate::commands::check::Mark, String, Option<String>) {
        use crate::commands::check::Mark;
        match self.mode {
            Egress::None => (Mark::Ok, "none (no network)".to_owned(), None),
            Egress::Open => (
                Mark::Warn,
                "open: sandboxes reach any host, nothing is logged".to_owned(),
                Some("drop `egress = \"open\"` for the allowlist (docs/egress.md)".to_owned()),
            ),
            Egress::Allowlist => {
                let list = format!(
                    "allowlist (presets {}{})",
                    if self.presets.is_empty() {
                        "none".to_owned()
                    } else {
                        self.presets.join(", ")
                    },
                    match self.allow.len() {
                        0 => String::new(),
                        n => format!("; {n} more {}", if n == 1 { "host" } else { "hosts" }),
                    }
                );
                let (status, gateway, fix) = match self.gateway {
                    GatewayState::Ready => (Mark::Ok, "gateway ready", None),
                    GatewayState::NotStarted => {
                        (Mark::Ok, "gateway starts with the first sandbox", None)
                    }
                    GatewayState::Stopped => {
                        (Mark::Ok, "gateway stopped, starts with the next sandbox", None)
                    }
                    GatewayState::NotReady => (
                        Mark::Fail,
                        "gateway running but not ready",
                        Some(
                            "see the gateway's log (`docker logs` of the stockade-gateway container)"
                                .to_owned(),
                        ),
                    ),
                    GatewayState::Unknown => (Mark::Warn, "gateway unknown (no engine)", None),
                };
                (status, format!("{list}, {gateway}"), fix)
            }
        }
    }
}

/// Egress for `check`: the mode and presets from the configuration, the gateway's state from the
/// engine (a running gateway is asked whether it is ready).
pub async fn check(engine: Option<&Engine>, ctx: &Context, config: &Config) -> EgressCheck {
    let policy = egress::policy(&config.network, &[]);
    let allow = egress::without_removed(&config.network.allow)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let gateway = match engine {
        None => GatewayState::Unknown,
        Some(engine) => match engine.container_facts(&container_name(ctx)).await {
            Ok(None) => GatewayState::NotStarted,
            Ok(Some(facts)) if !facts.running => GatewayState::Stopped,
            Ok(Some(_)) => {
                let spec = gateway_exec(&["ready", "0"]);
                match engine.exec_to_end(&container_name(ctx), &spec).await {
                    Ok((0, _)) => GatewayState::Ready,
                    _ => GatewayState::NotReady,
                }
            }
            Err(_) => GatewayState::Unknown,
        },
    };
    EgressCheck {
        mode: config.network.egress,
        presets: policy.presets,
        allow,
        gateway,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockade_core::names::Namespace;

    fn spec() -> SandboxSpec {
        let namespace = Namespace::new(Some("t")).unwrap_or_else(|e| panic!("{e}"));
        let mut spec = SandboxSpec::helper(&namespace, "image", "true", Vec::new(), Vec::new());
        for key in IPV6_OFF {
            spec.sysctls.insert(key.to_owned(), "1".to_owned());
        }
        spec
    }

    #[test]
    fn a_sandbox_joins_the_holder_unless_it_needs_a_namespace_of_its_own() {
        assert!(joinable(&spec()));
        let mut sized = spec();
        sized.engine_options = vec![EngineOption::ShmSize(1 << 20)];
        assert!(joinable(&sized));
        for option in [
            EngineOption::Hostname("box".to_owned()),
            EngineOption::Dns("10.0.0.2".to_owned()),
            EngineOption::AddHost {
                host: "db".to_owned(),
                ip: "10.0.0.3".to_owned(),
            },
        ] {
            let mut own = spec();
            own.engine_options = vec![option.clone()];
            assert!(!joinable(&own), "{option:?}");
        }
        let mut service = spec();
        service.restart = Restart::UnlessStopped;
        assert!(!joinable(&service));
        let mut other_sysctl = spec();
        other_sysctl
            .sysctls
            .insert("net.ipv4.ip_forward".to_owned(), "0".to_owned());
        assert!(!joinable(&other_sysctl));
    }
}
