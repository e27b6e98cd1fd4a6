//! Containers, networks and volumes on the target engine: what a cut-over needs.

use std::collections::HashMap;

use bollard::errors::Error as BErr;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, NetworkCreateRequest, PortBinding,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};

use super::{Docker, DockerError};

#[expect(clippy::needless_pass_by_value, reason = "used as `map_err(api)`")]
pub(super) fn api(e: BErr) -> DockerError {
    DockerError::Api(e.to_string())
}

pub(super) fn not_found(e: &BErr) -> bool {
    matches!(
        e,
        BErr::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// How long an answer naming Podman's `stopped` state is asked again (see
/// [`Docker::inspect`]).
const PODMAN_STOPPED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether `e` is bollard refusing Podman's `stopped` state.
fn podman_stopped(e: &BErr) -> bool {
    matches!(e, BErr::JsonDataError { message, .. } if message.contains("unknown variant `stopped`"))
}

impl Docker {
    /// Container `name` inspected. Podman's compatible API (4.3, Debian's) answers
    /// `"Status": "stopped"` for a container that has stopped but that its conmon has not
    /// cleaned up yet (a moment later it says `exited`); bollard's model knows no such
    /// state and refuses the whole answer. Such an answer is asked for again, every 100 ms
    /// for up to 10 s, then reported as it is.
    ///
    /// # Errors
    /// bollard's error, "not found" included.
    pub(super) async fn inspect(
        &self,
        name: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, BErr> {
        settled(|| self.docker.inspect_container(name, None)).await
    }
}

/// `call` (an inspection or a list of containers) asked again while Podman answers a
/// container's transient `stopped` state (see [`Docker::inspect`]), every 100 ms for up to
/// 10 s; then its answer as it is.
pub(super) async fn settled<T, F, Fut>(mut call: F) -> Result<T, BErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BErr>>,
{
    let until = std::time::Instant::now() + PODMAN_STOPPED_WAIT;
    loop {
        match call().await {
            Err(e) if podman_stopped(&e) && std::time::Instant::now() < until => {
                tracing::debug!("Podman says `stopped`: asked again");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// A container as the cut-over sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Full id.
    pub id: String,
    /// Its image id (`sha256:…`).
    pub image: String,
    /// Whether it runs.
    pub running: bool,
    /// Host ports it publishes (`"8080/tcp"` style keys with their host ports).
    pub host_ports: Vec<u16>,
}

/// What a new container is made from.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Image reference.
    pub image: String,
    /// `KEY=VALUE` environment.
    pub env: Vec<String>,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// `(address, host port, container port, "tcp"|"udp")`.
    pub ports: Vec<(Option<String>, u16, u16, String)>,
    /// `volume:/path[:ro]`.
    pub binds: Vec<String>,
    /// Network to join.
    pub network: Option<String>,
    /// Read-only root file system.
    pub read_only: bool,
    /// no-new-privileges.
    pub no_new_privileges: bool,
    /// Capabilities added after dropping all.
    pub cap_add: Vec<String>,
    /// Memory limit in bytes.
    pub memory: i64,
    /// Process limit.
    pub pids: i64,
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub restart: String,
    /// tmpfs mounts.
    pub tmpfs: Vec<String>,
    /// json-file `max-size` and `max-file`.
    pub log_max_size: String,
    /// Rotated files kept.
    pub log_max_files: u32,
    /// The engine's init as PID 1.
    pub init: bool,
}

impl Docker {
    /// The container named `name`, if any.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn container(&self, name: &str) -> Result<Option<ContainerState>, DockerError> {
        match self.inspect(name).await {
            Ok(c) => {
                let host_ports = c
                    .host_config
                    .and_then(|h| h.port_bindings)
                    .into_iter()
                    .flat_map(HashMap::into_values)
                    .flatten()
                    .flatten()
                    .filter_map(|b| b.host_port.and_then(|p| p.parse().ok()))
                    .collect();
                Ok(Some(ContainerState {
                    id: c.id.unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    running: c.state.and_then(|s| s.running).unwrap_or(false),
                    host_ports,
                }))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(api(e)),
        }
    }

    /// Creates (does not start) container `name`. Returns its id.
    ///
    /// # Errors
    /// The name is taken, the image is missing, or an API error.
    pub async fn create_container(
        &self,
        name: &str,
        s: &ContainerSpec,
    ) -> Result<String, DockerError> {
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        let mut exposed = Vec::new();
        for (addr, host, container, proto) in &s.ports {
            let key = format!("{container}/{proto}");
            exposed.push(key.clone());
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: addr.clone(),
                    host_port: Some(host.to_string()),
                });
        }
        let restart = match s.restart.as_str() {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "no" => RestartPolicyNameEnum::NO,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::UNLESS_STOPPED,
        };
        let host = HostConfig {
            port_bindings: Some(bindings),
            binds: (!s.binds.is_empty()).then(|| s.binds.clone()),
            network_mode: s.network.clone(),
            readonly_rootfs: Some(s.read_only),
            init: s.init.then_some(true),
            security_opt: s
                .no_new_privileges
                .then(|| vec!["no-new-privileges:true".to_string()]),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: (!s.cap_add.is_empty()).then(|| s.cap_add.clone()),
            memory: Some(s.memory),
            pids_limit: Some(s.pids),
            restart_policy: Some(RestartPolicy {
                name: Some(restart),
                maximum_retry_count: None,
            }),
            tmpfs: Some(
                s.tmpfs
                    .iter()
                    .map(|t| (t.clone(), "rw,noexec,nosuid,size=64m".to_string()))
                    .collect(),
            ),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".to_string(), s.log_max_size.clone()),
                    ("max-file".to_string(), s.log_max_files.to_string()),
                ])),
            }),
            ..HostConfig::default()
        };
        let body = ContainerCreateBody {
            image: Some(s.image.clone()),
            env: Some(s.env.clone()),
            labels: Some(s.labels.clone()),
            exposed_ports: Some(exposed),
            host_config: Some(host),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        self.change(format!("create container {name}"), |docker| async move {
            let r = docker
                .create_container(Some(options), body)
                .await
                .map_err(api)?;
            Ok(r.id)
        })
        .await
    }

    /// Creates (does not start) the short-lived container `name` from `body` exactly as
    /// given: a build's or a volume's helper.
    ///
    /// # Errors
    /// The name is taken, the image is missing, or an API error.
    pub(super) async fn make_helper(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<(), DockerError> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        self.change(format!("create container {name}"), |docker| async move {
            docker
                .create_container(Some(options), body)
                .await
                .map(|_| ())
                .map_err(api)
        })
        .await
    }

    /// Starts a container (started already is fine).
    ///
    /// # Errors
    /// An API error.
    pub async fn start(&self, name: &str) -> Result<(), DockerError> {
        let name = name.to_string();
        self.change(format!("start container {name}"), |docker| async move {
            match docker.start_container(&name, None).await {
                Ok(())
                | Err(BErr::DockerResponseServerError {
                    status_code: 304, ..
                }) => Ok(()),
                Err(e) => Err(api(e)),
            }
        })
        .await
    }

    /// Stops a container, waiting `grace` seconds before killing it (stopped or gone is fine).
    ///
    /// # Errors
    /// An API error.
    pub async fn stop(&self, name: &str, grace: i32) -> Result<(), DockerError> {
        match self
            .docker
            .stop_container(
                name,
                Some(StopContainerOptionsBuilder::new().t(grace).build()),
            )
            .await
        {
            Ok(())
            | Err(BErr::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(e) => Err(api(e)),
        }
    }

    /// Renames a container.
    ///
    /// # Errors
    /// The new name is taken, the container is gone, or an API error.
    pub async fn rename(&self, name: &str, to: &str) -> Result<(), DockerError> {
        let name = name.to_string();
        let options = RenameContainerOptionsBuilder::new().name(to).build();
        self.change(
            format!("rename container {name} to {to}"),
            |docker| async move { docker.rename_container(&name, options).await.map_err(api) },
        )
        .await
    }

    /// Removes a container, running or not (gone is fine).
    ///
    /// # Errors
    /// An API error.
    pub async fn remove_container(&self, name: &str) -> Result<(), DockerError> {
        match self
            .docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(api(e)),
        }
    }

    /// Removes a helper container, running or not, with its anonymous volumes (what an
    /// image's `VOLUME` made for it, empty: a helper of `gov/mariadb` gets one for
    /// `/var/lib/mysql`); gone is fine. Named volumes are never removed.
    ///
    /// # Errors
    /// An API error.
    pub async fn remove_helper(&self, name: &str) -> Result<(), DockerError> {
        match self
            .docker
            .remove_container(
                name,
                Some(
                    RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(api(e)),
        }
    }

    /// Runs `cmd` inside a running container; its exit code.
    ///
    /// # Errors
    /// An API error.
    pub async fn exec_code(&self, container: &str, cmd: &[String]) -> Result<i64, DockerError> {
        Ok(self.exec_io(container, cmd, &[], None, 0).await?.code)
    }

    /// Names of all containers (running or not) labelled `boyong.app=APP`.
    ///
    /// # Errors
    /// An API error.
    pub async fn app_containers(&self, app: &str) -> Result<Vec<String>, DockerError> {
        let filters = HashMap::from([("label", vec![format!("boyong.app={app}")])]);
        let list = settled(|| {
            self.docker.list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
        })
        .await
        .map_err(api)?;
        Ok(list
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .collect())
    }

    /// Whether network `name` exists.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn network_exists(&self, name: &str) -> Result<bool, DockerError> {
        match self.docker.inspect_network(name, None).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(api(e)),
        }
    }

    /// Creates a bridge network with `labels`.
    ///
    /// # Errors
    /// An API error.
    pub async fn create_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), DockerError> {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            labels: Some(labels.clone()),
            ..NetworkCreateRequest::default()
        };
        self.make_network(request).await
    }

    /// Makes a network as `request` says (a bridge or an overlay).
    ///
    /// # Errors
    /// An API error.
    pub(super) async fn make_network(
        &self,
        request: NetworkCreateRequest,
    ) -> Result<(), DockerError> {
        self.change(
            format!("create network {}", request.name),
            |docker| async move {
                docker
                    .create_network(request)
                    .await
                    .map(|_| ())
                    .map_err(api)
            },
        )
        .await
    }

    /// Removes a network (gone is fine).
    ///
    /// # Errors
    /// An API error (e.g. still in use).
    pub async fn remove_network(&self, name: &str) -> Result<(), DockerError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(api(e)),
        }
    }

    /// Whether volume `name` exists.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn volume_exists(&self, name: &str) -> Result<bool, DockerError> {
        Ok(self.volume_storage(name).await?.is_some())
    }

    /// A volume's storage, when it exists.
    ///
    /// # Errors
    /// An API error.
    pub async fn volume_storage(&self, name: &str) -> Result<Option<VolumeStorage>, DockerError> {
        match self.docker.inspect_volume(name).await {
            Ok(v) => {
                let mut opts: Vec<String> = v
                    .options
                    .iter()
                    .map(|(k, val)| format!("{k}={val}"))
                    .collect();
                opts.sort();
                Ok(Some(if v.driver == "local" && opts.is_empty() {
                    VolumeStorage::Default
                } else if opts.is_empty() {
                    VolumeStorage::Custom(format!("driver {}", v.driver))
                } else {
                    VolumeStorage::Custom(format!(
                        "driver {}, options {}",
                        v.driver,
                        opts.join(",")
                    ))
                }))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(api(e)),
        }
    }

    /// Where a volume's files are on the engine's host (`Mountpoint`).
    ///
    /// # Errors
    /// An API error, or a volume without a mount point (a driver that gives none).
    pub async fn volume_mountpoint(&self, name: &str) -> Result<String, DockerError> {
        let v = self.docker.inspect_volume(name).await.map_err(api)?;
        if v.mountpoint.is_empty() {
            return Err(DockerError::Api(format!(
                "volume `{name}` (driver {}) has no mount point on the engine's host",
                v.driver
            )));
        }
        Ok(v.mountpoint)
    }

    /// Creates a volume with `labels`.
    ///
    /// # Errors
    /// An API error.
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), DockerError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            ..VolumeCreateRequest::default()
        };
        self.change(format!("create volume {name}"), |docker| async move {
            docker.create_volume(request).await.map(|_| ()).map_err(api)
        })
        .await
    }

    /// Removes a volume (gone is fine).
    ///
    /// # Errors
    /// An API error (e.g. still in use).
    pub async fn remove_volume(&self, name: &str) -> Result<(), DockerError> {
        // A container removed a moment ago may still hold the volume for the engine (seen
        // on a loaded machine: 409 "volume is in use" right after the removal returned):
        // asked again for a few seconds; a volume that stays in use is an error.
        let mut tries = 0;
        loop {
            match self
                .docker
                .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if not_found(&e) => return Ok(()),
                Err(BErr::DockerResponseServerError {
                    status_code: 409,
                    message,
                }) if message.contains("in use") && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(api(e)),
            }
        }
    }
}

/// Where an existing volume keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeStorage {
    /// The engine's default: the `local` driver without options.
    Default,
    /// Another driver, or options (`local` with `o=bind,device=/srv/…`, an NFS mount, a
    /// plugin), said as `driver D, options K=V,…`: a volume made again by
    /// [`Docker::create_volume`] would not have them.
    Custom(String),
}
