//! The labels stockade puts on everything it creates on the engine (prefix `io.stockade.`).

pub const TIER: &str = "io.stockade.tier";
pub const HASH: &str = "io.stockade.hash";
pub const PARENT: &str = "io.stockade.parent";
pub const VERSION: &str = "io.stockade.version";
pub const PROJECT: &str = "io.stockade.project";
pub const NAMESPACE: &str = "io.stockade.namespace";
/// On a custom base's runtime layer: the custom image it extends.
pub const CUSTOM_BASE: &str = "io.stockade.custom-base";
/// On a foundation made from a published image: `pull` (absent: built locally).
pub const SOURCE: &str = "io.stockade.source";
/// On a pulled foundation: the registry prefix it was pulled from.
pub const REGISTRY: &str = "io.stockade.registry";
/// On a pulled foundation: the published image's manifest digest.
pub const DIGEST: &str = "io.stockade.digest";
/// On a pulled foundation: what the signature check found (`verified with the key …`,
/// `unsigned`, `not checked (…)`).
pub const SIGNATURE: &str = "io.stockade.signature";
/// Marks every container stockade creates (value: the kind, e.g. `sandbox`).
pub const KIND: &str = "io.stockade.kind";
/// On a container meant to stay after it stops (a detached session, a service): `stockade
/// prune` leaves it; `stockade stop` removes it.
pub const KEEP: &str = "io.stockade.keep";
/// On a sandbox: its session name, unique in its project (`--name`, or generated).
pub const SESSION: &str = "io.stockade.session";
/// On a sandbox in a worktree stockade made (`--worktree NAME`): the worktree's name.
pub const WORKTREE: &str = "io.stockade.worktree";
/// On a sandbox in a worktree stockade made: its branch (`stockade/NAME`).
pub const BRANCH: &str = "io.stockade.branch";
/// On a service's sandbox (`stockade serve`): what it serves (`opencode`).
pub const SERVICE: &str = "io.stockade.service";

/// The version of stockade written into labels.
pub const STOCKADE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// On tools volumes and sandboxes: the agent and its version.
pub const AGENT: &str = "io.stockade.agent";
pub const AGENT_VERSION: &str = "io.stockade.agent-version";
/// On the tools volume of a native agent's musl build: `musl` (absent: the package's own).
pub const LIBC: &str = "io.stockade.libc";
/// A runtime volume's runtime (`node`) and release.
pub const RUNTIME: &str = "io.stockade.runtime";
pub const RUNTIME_VERSION: &str = "io.stockade.runtime-version";
/// On volumes: when stockade created it (RFC 3339). The engine's own `CreatedAt` of a local
/// volume is the modification time of its data directory, which every run changes.
pub const CREATED: &str = "io.stockade.created";

/// On a sandbox behind the egress gateway: the ports its forwarder publishes (`ps` shows them).
pub const PORTS: &str = "io.stockade.ports";
/// On a forwarder: the sandbox whose ports it publishes.
pub const FORWARDS: &str = "io.stockade.forwards";
/// On a forwarder: the project network it reaches its sandbox on.
pub const EGRESS_NETWORK: &str = "io.stockade.egress-network";

/// A `LABEL` instruction setting `labels` (sorted by key), to append to a Dockerfile: one
/// instruction, so the engine's classic builder adds one step rather than one per label. Values
/// are quoted and `"`, `\\` and `$` escaped, so nothing in them is substituted.
pub fn dockerfile_instruction<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> String {
    let quote = |text: &str| {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('"');
        for c in text.chars() {
            match c {
                '"' | '\\' | '$' => {
                    out.push('\\');
                    out.push(c);
                }
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let mut pairs: Vec<(&String, &String)> = labels.into_iter().collect();
    pairs.sort();
    let body: Vec<String> = pairs
        .into_iter()
        .map(|(key, value)| format!("{}={}", quote(key), quote(value)))
        .collect();
    format!("\nLABEL {}\n", body.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_instruction_quotes_and_sorts() {
        let labels = std::collections::BTreeMap::from([
            ("b".to_owned(), "/work/My $HOME \"app\"".to_owned()),
            ("a".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(
            dockerfile_instruction(&labels),
            "\nLABEL \"a\"=\"x\" \"b\"=\"/work/My \\$HOME \\\"app\\\"\"\n"
        );
    }
}
