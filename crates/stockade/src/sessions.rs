//! Finding a project's sandboxes on the engine by their labels: the session a name means
//! (`attach`, `logs`, `exec --in`, `stop`), and every session for `ps`.

use std::path::{Path, PathBuf};

use stockade_core::labels;
use stockade_core::names::Namespace;
use stockade_core::project::Project;
use stockade_engine::{ContainerSummary, Engine};

use crate::context::Context;
use crate::exit::CliError;

/// The label filters of stockade's sandboxes in this namespace, of one project or all.
fn filters(namespace: &Namespace, project: Option<&Path>) -> Vec<String> {
    let mut filters = vec![
        format!("{}=sandbox", labels::KIND),
        format!("{}={}", labels::NAMESPACE, namespace.as_str()),
    ];
    if let Some(root) = project {
        filters.push(format!("{}={}", labels::PROJECT, root.display()));
    }
    filters
}

/// Every sandbox of these project roots (`None`: of every project), running or not.
pub async fn list(
    engine: &Engine,
    namespace: &Namespace,
    roots: Option<&[PathBuf]>,
) -> Result<Vec<ContainerSummary>, CliError> {
    let project = match roots {
        Some([root]) => Some(root.as_path()),
        _ => None,
    };
    let mut found = engine.list_containers(&filters(namespace, project)).await?;
    if let Some(roots) = roots {
        found.retain(|c| roots.iter().any(|r| in_root(c, r)));
    }
    Ok(found)
}

/// The project roots a session name is looked up in, the project's own first: the project and,
/// in a git repository, its main work tree and the worktrees stockade made for it (their
/// sandboxes are the repository's: `ps` lists them, `attach` finds them by name).
pub fn roots(ctx: &Context, project: &Project) -> Vec<PathBuf> {
    let mut roots = vec![project.root.clone()];
    for root in crate::worktree::sandbox_roots(ctx, project) {
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    roots
}

/// The project's sandboxes named `name` (at most one, unless a stopped one awaits removal).
pub async fn find(
    engine: &Engine,
    namespace: &Namespace,
    root: &Path,
    name: &str,
) -> Result<Vec<ContainerSummary>, CliError> {
    let mut filters = filters(namespace, Some(root));
    filters.push(format!("{}={name}", labels::SESSION));
    Ok(engine.list_containers(&filters).await?)
}

/// The sandbox named `name` in the first of `roots` that has one (see [`roots`]), or an error
/// that says how to find the right name. One listing, whatever the number of roots.
pub async fn one(
    engine: &Engine,
    namespace: &Namespace,
    roots: &[PathBuf],
    name: &str,
) -> Result<ContainerSummary, CliError> {
    let mut filters = filters(namespace, None);
    filters.push(format!("{}={name}", labels::SESSION));
    let found = engine.list_containers(&filters).await?;
    // The first root with one; there a running one first, should a stopped one of that name
    // wait for its removal.
    let rank = |c: &ContainerSummary| {
        let root = roots.iter().position(|r| in_root(c, r))?;
        Some((root, c.state != "running"))
    };
    let best = found
        .into_iter()
        .filter_map(|c| rank(&c).map(|key| (key, c)))
        .min_by_key(|(key, _)| *key);
    if let Some((_, container)) = best {
        return Ok(container);
    }
    let root = roots
        .first()
        .map(|r| r.display().to_string())
        .unwrap_or_default();
    Err(CliError::refused(
        "no-such-session",
        format!("no sandbox named {name} in {root}"),
        Some("`stockade ps` lists this project's sandboxes (`--all`: every project's)"),
    ))
}

/// Whether a sandbox belongs to the project at `root`.
fn in_root(container: &ContainerSummary, root: &Path) -> bool {
    container
        .labels
        .get(labels::PROJECT)
        .is_some_and(|p| Path::new(p) == root)
}

/// [`one`], which must be running.
pub async fn running(
    engine: &Engine,
    namespace: &Namespace,
    roots: &[PathBuf],
    name: &str,
) -> Result<ContainerSummary, CliError> {
    let container = one(engine, namespace, roots, name).await?;
    if container.state != "running" {
        return Err(CliError::refused(
            "session-not-running",
            format!(
                "the sandbox {name} is not running (it is {})",
                container.state
            ),
            Some(&format!(
                "`stockade logs {name}` shows its output; `stockade stop {name}` removes it"
            )),
        ));
    }
    Ok(container)
}
