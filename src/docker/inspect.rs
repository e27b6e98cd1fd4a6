//! Read-only questions to the target engine: what it is and which host ports its running
//! containers hold (for the live plan), and a container's settings as the engine applied
//! them (the evidence, for `boyong report`, that the hardening asked for is the hardening
//! applied). Nothing here changes anything.

use serde_json::{Map, Value};

use super::containers::api;
use super::{Docker, DockerError};

/// What the engine says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// Docker version, e.g. `27.5.1`.
    pub version: String,
    /// API version in use.
    pub api: String,
    /// Where the engine keeps images and volumes (on the target's file system).
    pub root_dir: Option<String>,
    /// How it stores images' and containers' files: `overlay2`, `fuse-overlayfs`, `vfs` …
    pub storage_driver: Option<String>,
    /// Operating system and architecture.
    pub platform: String,
}

/// A host port held by a running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The container's name.
    pub container: String,
    /// Host address (`0.0.0.0`, `127.0.0.1`, `::` …), if the engine says.
    pub ip: Option<String>,
    /// Host port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl Docker {
    /// Version, API version, root directory and platform.
    ///
    /// # Errors
    /// An API error.
    pub async fn about(&self) -> Result<About, DockerError> {
        let v = self.docker.version().await.map_err(api)?;
        let info = self.docker.info().await.map_err(api)?;
        Ok(About {
            version: v.version.unwrap_or_else(|| "?".into()),
            api: v.api_version.unwrap_or_else(|| "?".into()),
            root_dir: info.docker_root_dir,
            storage_driver: info.driver.filter(|d| !d.is_empty()),
            platform: format!(
                "{}/{}",
                v.os.unwrap_or_else(|| "?".into()),
                v.arch.unwrap_or_else(|| "?".into())
            ),
        })
    }

    /// Host ports held by running containers.
    ///
    /// # Errors
    /// An API error.
    pub async fn published_ports(&self) -> Result<Vec<Published>, DockerError> {
        let list = super::containers::settled(|| {
            self.docker.list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(false)
                    .build(),
            ))
        })
        .await
        .map_err(api)?;
        let mut out = Vec::new();
        for c in list {
            let name = c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            for p in c.ports.unwrap_or_default() {
                if let Some(port) = p.public_port {
                    out.push(Published {
                        container: name.clone(),
                        ip: p.ip.filter(|i| !i.is_empty()),
                        port,
                        protocol: p
                            .typ
                            .map_or_else(|| "tcp".into(), |t| t.to_string().to_lowercase()),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The running image's reference and start time of container `name`, for plans:
    /// `(image reference as created, running)`.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn container_image_ref(
        &self,
        name: &str,
    ) -> Result<Option<(String, bool)>, DockerError> {
        match self.inspect(name).await {
            Ok(c) => Ok(Some((
                c.config.and_then(|c| c.image).unwrap_or_default(),
                c.state.and_then(|s| s.running).unwrap_or(false),
            ))),
            Err(e) if super::containers::not_found(&e) => Ok(None),
            Err(e) => Err(api(e)),
        }
    }
}

/// `HostConfig` members that carry the hardening and the exposure of a container.
const HOST_CONFIG: &[&str] = &[
    "Privileged",
    "ReadonlyRootfs",
    "SecurityOpt",
    "CapDrop",
    "CapAdd",
    "Memory",
    "PidsLimit",
    "RestartPolicy",
    "Tmpfs",
    "LogConfig",
    "NetworkMode",
    "PortBindings",
    "Binds",
];

impl Docker {
    /// Container `name`'s hardening and exposure as the engine applied them, keyed
    /// `HostConfig.X` and `Config.User`; each value as the API returns it. Empty and
    /// null members are left out.
    ///
    /// # Errors
    /// The container is missing, or an API error.
    pub async fn applied_settings(&self, name: &str) -> Result<Map<String, Value>, DockerError> {
        let c = self
            .inspect(name)
            .await
            .map_err(|e| DockerError::Api(e.to_string()))?;
        let host = serde_json::to_value(&c.host_config).unwrap_or(Value::Null);
        let mut out = Map::new();
        for k in HOST_CONFIG {
            match host.get(*k) {
                None | Some(Value::Null) => {}
                Some(Value::Array(a)) if a.is_empty() => {}
                Some(Value::Object(o)) if o.is_empty() => {}
                Some(v) => {
                    out.insert(format!("HostConfig.{k}"), v.clone());
                }
            }
        }
        let user = c.config.and_then(|c| c.user).unwrap_or_default();
        out.insert(
            "Config.User".into(),
            Value::String(if user.is_empty() {
                "(image default)".into()
            } else {
                user
            }),
        );
        Ok(out)
    }
}
