//! Finding a project's sandboxes on the engine by their labels: the session a name means
//! (`attach`, `logs`, `exec --in`, `stop`), and every session for `ps`.

use std::path::Path;

use stockade_core::labels;
use stockade_core::names::Namespace;
use stockade_engine::{ContainerSummary, Engine};

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

/// Every sandbox of the project (`None`: of every project), running or not.
pub async fn list(
    engine: &Engine,
    namespace: &Namespace,
    project: Option<&Path>,
) -> Result<Vec<ContainerSummary>, CliError> {
    Ok(engine.list_containers(&filters(namespace, project)).await?)
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

/// The project's sandbox named `name`, or an error that says how to find the right name.
pub async fn one(
    engine: &Engine,
    namespace: &Namespace,
    root: &Path,
    name: &str,
) -> Result<ContainerSummary, CliError> {
    let mut found = find(engine, namespace, root, name).await?;
    // A running one first, should a stopped one of that name wait for its removal.
    found.sort_by_key(|c| c.state != "running");
    found.into_iter().next().ok_or_else(|| {
        CliError::refused(
            "no-such-session",
            format!("no sandbox named {name} in {}", root.display()),
            Some("`stockade ps` lists this project's sandboxes (`--all`: every project's)"),
        )
    })
}

/// [`one`], which must be running.
pub async fn running(
    engine: &Engine,
    namespace: &Namespace,
    root: &Path,
    name: &str,
) -> Result<ContainerSummary, CliError> {
    let container = one(engine, namespace, root, name).await?;
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
