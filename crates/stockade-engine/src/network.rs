//! Networks: the internal network each project's sandboxes sit on under the egress allowlist,
//! and what a container (the gateway) is attached to.

use std::collections::HashMap;

use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkCreateRequest};
use bollard::query_parameters::ListNetworksOptionsBuilder;

use crate::connect::Engine;
use crate::error::EngineError;
use crate::image::Removal;

/// What stockade needs to know of a running helper container (the gateway, a forwarder).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFacts {
    pub id: String,
    pub running: bool,
    pub labels: HashMap<String, String>,
    /// The networks it is attached to.
    pub networks: Vec<String>,
}

/// A network as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// `None` when there is no such container.
    pub async fn container_facts(&self, name: &str) -> Result<Option<ContainerFacts>, EngineError> {
        let info = match self.inspect_container(name).await {
            Ok(info) => info,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut networks: Vec<String> = info
            .network_settings
            .and_then(|n| n.networks)
            .map(|n| n.into_keys().collect())
            .unwrap_or_default();
        networks.sort();
        Ok(Some(ContainerFacts {
            id: info.id.unwrap_or_default(),
            running: info.state.and_then(|s| s.running).unwrap_or(false),
            labels: info.config.and_then(|c| c.labels).unwrap_or_default(),
            networks,
        }))
    }

    /// Whether a network of that name exists.
    pub async fn network_exists(&self, name: &str) -> Result<bool, EngineError> {
        Ok(self.network_members(name).await?.is_some())
    }

    /// Create an internal network (no route out), on which the host has no address (Docker's
    /// `inhibit_ipv4`), so a container there cannot reach services of the host through the
    /// bridge. `Ok(false)` when one of that name exists. The engine (API 1.41) makes a second
    /// network of a name that exists: callers check with [`Self::network_exists`] under a lock
    /// first.
    pub async fn create_internal_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<bool, EngineError> {
        let options = HashMap::from([(
            "com.docker.network.bridge.inhibit_ipv4".to_owned(),
            "true".to_owned(),
        )]);
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            internal: Some(true),
            enable_ipv6: Some(false),
            labels: Some(labels.clone()),
            options: Some(options),
            ..Default::default()
        };
        match self
            .call(
                &format!("POST /networks/create name={name}"),
                self.docker.create_network(request),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Attach a container to a network, reachable there also as `alias` (already attached:
    /// fine).
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        alias: Option<&str>,
    ) -> Result<(), EngineError> {
        let request = NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: alias.map(|a| EndpointSettings {
                aliases: Some(vec![a.to_owned()]),
                ..Default::default()
            }),
        };
        match self
            .call(
                &format!("POST /networks/{network}/connect container={container}"),
                self.docker.connect_network(network, request),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.status() == Some(403) || e.status() == Some(409) => {
                // "already exists in network": what was asked for.
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The networks carrying all of `labels` (`key=value` or `key`).
    pub async fn list_networks(&self, labels: &[String]) -> Result<Vec<NetworkInfo>, EngineError> {
        let filters = HashMap::from([("label".to_owned(), labels.to_vec())]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let networks = self
            .call("GET /networks", self.docker.list_networks(Some(options)))
            .await?;
        Ok(networks
            .into_iter()
            .map(|n| NetworkInfo {
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default(),
            })
            .collect())
    }

    /// The names of the containers attached to a network (`None`: no such network).
    pub async fn network_members(&self, name: &str) -> Result<Option<Vec<String>>, EngineError> {
        let result = self
            .call(
                &format!("GET /networks/{name}"),
                self.docker.inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                ),
            )
            .await;
        match result {
            Ok(network) => Ok(Some(
                network
                    .containers
                    .unwrap_or_default()
                    .into_values()
                    .filter_map(|c| c.name)
                    .collect(),
            )),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Detach a container from a network (not attached, or gone: fine).
    pub async fn disconnect_network(
        &self,
        network: &str,
        container: &str,
    ) -> Result<(), EngineError> {
        let request = bollard::models::NetworkDisconnectRequest {
            container: container.to_owned(),
            force: Some(true),
        };
        match self
            .call(
                &format!("POST /networks/{network}/disconnect container={container}"),
                self.docker.disconnect_network(network, request),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.status(), Some(404 | 409 | 500)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Remove a network; one still in use is left (`Removal::InUse`; Docker answers 403 there).
    pub async fn remove_network(&self, name: &str) -> Result<Removal, EngineError> {
        let result = self
            .call(
                &format!("DELETE /networks/{name}"),
                self.docker.remove_network(name),
            )
            .await;
        match result {
            Err(EngineError::Api {
                status: 403,
                message,
                ..
            }) => Ok(Removal::InUse(message)),
            other => Removal::of(other),
        }
    }
}
