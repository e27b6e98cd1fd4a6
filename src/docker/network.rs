//! A container's place on networks: joining one more, and its address on one.

use bollard::models::NetworkConnectRequest;

use super::containers::api;
use super::{Docker, DockerError};

impl Docker {
    /// Connects `container` to `network` too (connected already is fine).
    ///
    /// # Errors
    /// An API error.
    pub async fn connect_network(&self, container: &str, network: &str) -> Result<(), DockerError> {
        if self.container_ip(container, network).await?.is_some() {
            return Ok(());
        }
        let network = network.to_string();
        let request = NetworkConnectRequest {
            container: container.to_string(),
            ..NetworkConnectRequest::default()
        };
        self.change(
            format!("connect container {container} to network {network}"),
            |docker| async move { docker.connect_network(&network, request).await.map_err(api) },
        )
        .await
    }

    /// The IPv4 address of `container` on `network`, while it has one (it runs).
    ///
    /// # Errors
    /// An API error; a missing container has no address.
    pub async fn container_ip(
        &self,
        container: &str,
        network: &str,
    ) -> Result<Option<String>, DockerError> {
        let c = match self.inspect(container).await {
            Ok(c) => c,
            Err(e) if super::containers::not_found(&e) => return Ok(None),
            Err(e) => return Err(api(e)),
        };
        Ok(c.network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .filter(|ip| !ip.is_empty()))
    }
}
