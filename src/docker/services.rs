//! Docker Swarm through the manager's API: the node boyong talks to, services (created,
//! inspected, updated, removed), their tasks, secrets, attachable overlay networks.
//!
//! Specs go in and come out as the API's own JSON (`serde_json::Value`, the engine's
//! field names), so that a journaled spec is exactly what the engine gave and can be
//! handed back to it. A secret's value goes to the engine in the create request's body
//! only; nothing here returns or logs it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::containers::{api, not_found};
use super::{Docker, DockerError};

/// How long a removed service's tasks may take to go.
const TASKS_GONE_WAIT: Duration = Duration::from_secs(60);
/// How long a secret still held by a service being updated is asked again.
const SECRET_IN_USE_WAIT: Duration = Duration::from_secs(30);

/// The label of a service's spec that holds its tasks' health check (JSON), so that it
/// reads back whole (see [`Docker::service`]).
pub const HEALTHCHECK_LABEL: &str = "boyong.healthcheck";

/// The swarm node the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmNode {
    /// Its id.
    pub id: String,
    /// Whether it is a manager (services can be made through it).
    pub manager: bool,
}

/// A service as the engine has it now.
#[derive(Debug, Clone)]
pub struct ServiceNow {
    /// Its id.
    pub id: String,
    /// Its version index (an update names it).
    pub version: u64,
    /// Its spec, as the engine gave it.
    pub spec: Value,
    /// The image of its spec.
    pub image: String,
    /// Its replicas (replicated mode).
    pub replicas: u64,
    /// Its last update's state (`updating`, `completed`, `rollback_completed` …) and
    /// message, if it has had one.
    pub update: Option<(String, String)>,
}

/// One task of a service.
#[derive(Debug, Clone)]
pub struct TaskNow {
    /// Its id.
    pub id: String,
    /// What the orchestrator wants (`running`, `shutdown` …).
    pub desired: String,
    /// Where it is (`running`, `starting`, `failed` …).
    pub state: String,
    /// Its status message and error, joined.
    pub message: String,
    /// Its container, once it has one.
    pub container: Option<String>,
    /// The image of its spec.
    pub image: String,
}

impl TaskNow {
    fn read(t: &Value) -> Self {
        let s = |p: &str| {
            t.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (msg, err) = (s("/Status/Message"), s("/Status/Err"));
        Self {
            id: s("/ID"),
            desired: s("/DesiredState"),
            state: s("/Status/State"),
            message: if err.is_empty() {
                msg
            } else {
                format!("{msg}: {err}")
            },
            container: Some(s("/Status/ContainerStatus/ContainerID")).filter(|c| !c.is_empty()),
            image: s("/Spec/ContainerSpec/Image"),
        }
    }
}

/// The engine's answer when it is not a swarm manager.
fn not_a_swarm(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 503,
            ..
        }
    )
}

fn spec_of(spec: &Value) -> Result<bollard::models::ServiceSpec, DockerError> {
    serde_json::from_value(spec.clone())
        .map_err(|e| DockerError::Api(format!("a service spec that does not read: {e}")))
}

impl Docker {
    /// The swarm node this engine is, or `None` when it is not part of a swarm.
    ///
    /// # Errors
    /// An API error.
    pub async fn swarm_node(&self) -> Result<Option<SwarmNode>, DockerError> {
        let info = self.docker.info().await.map_err(api)?;
        let info = serde_json::to_value(info).unwrap_or(Value::Null);
        let state = info
            .pointer("/Swarm/LocalNodeState")
            .and_then(Value::as_str)
            .unwrap_or("");
        if state != "active" {
            return Ok(None);
        }
        Ok(Some(SwarmNode {
            id: info
                .pointer("/Swarm/NodeID")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            manager: info
                .pointer("/Swarm/ControlAvailable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }))
    }

    /// The service `name`, if any.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn service(&self, name: &str) -> Result<Option<ServiceNow>, DockerError> {
        let s = match self.docker.inspect_service(name, None).await {
            Ok(s) => s,
            // Not a swarm (503): it has no services.
            Err(e) if not_found(&e) || not_a_swarm(&e) => return Ok(None),
            Err(e) => return Err(api(e)),
        };
        let v = serde_json::to_value(&s).unwrap_or(Value::Null);
        let mut spec = v.get("Spec").cloned().unwrap_or(Value::Null);
        // The engine writes `Healthcheck`, which bollard's model (`HealthCheck`) does not
        // read: a spec boyong made carries it in a label too, put back here, so that a
        // journaled spec is whole.
        if let Some(hc) = spec
            .pointer(&format!("/Labels/{}", HEALTHCHECK_LABEL.replace('/', "~1")))
            .and_then(Value::as_str)
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            && let Some(c) = spec.pointer_mut("/TaskTemplate/ContainerSpec")
            && c.get("HealthCheck").is_none()
        {
            c["HealthCheck"] = hc;
        }
        let state = v
            .pointer("/UpdateStatus/State")
            .and_then(Value::as_str)
            .map(str::to_string);
        let message = v
            .pointer("/UpdateStatus/Message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Ok(Some(ServiceNow {
            id: s.id.unwrap_or_default(),
            version: v
                .pointer("/Version/Index")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            image: spec
                .pointer("/TaskTemplate/ContainerSpec/Image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            replicas: spec
                .pointer("/Mode/Replicated/Replicas")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            spec,
            update: state.map(|s| (s, message)),
        }))
    }

    /// Creates a service from `spec` (the API's JSON); its id.
    ///
    /// # Errors
    /// An API error (a name taken, a network that is not attachable …).
    pub async fn create_service(&self, spec: &Value) -> Result<String, DockerError> {
        let spec = spec_of(spec)?;
        let what = format!(
            "create service {}",
            spec.name.as_deref().unwrap_or("(unnamed)")
        );
        self.change(what, |docker| async move {
            let r = docker.create_service(spec, None).await.map_err(api)?;
            Ok(r.id.unwrap_or_default())
        })
        .await
    }

    /// Updates service `name`, at its version `version`, to `spec`.
    ///
    /// # Errors
    /// An API error (the version moved on: someone else updated it).
    pub async fn update_service(
        &self,
        name: &str,
        version: u64,
        spec: &Value,
    ) -> Result<(), DockerError> {
        let options = bollard::query_parameters::UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        let name = name.to_string();
        let spec = spec_of(spec)?;
        self.change(format!("update service {name}"), |docker| async move {
            docker
                .update_service(&name, spec, options, None)
                .await
                .map(|_| ())
                .map_err(api)
        })
        .await
    }

    /// Removes service `name` and waits until its tasks' containers are gone (so its
    /// networks, volumes and secrets can go). Gone already is fine.
    ///
    /// # Errors
    /// An API error, or tasks still there after a minute.
    pub async fn remove_service(&self, name: &str) -> Result<(), DockerError> {
        match self.docker.delete_service(name).await {
            Ok(()) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(api(e)),
        }
        let t = Instant::now();
        loop {
            let left = self.service_containers(name).await?;
            if left.is_empty() {
                return Ok(());
            }
            if t.elapsed() > TASKS_GONE_WAIT {
                return Err(DockerError::Api(format!(
                    "the containers of the removed service `{name}` are still there after {} s: {}",
                    TASKS_GONE_WAIT.as_secs(),
                    left.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (up to `limit`) until the containers of service `name`'s tasks that are not
    /// wanted running have stopped (the engine takes each out of its DNS before it stops
    /// it, so no client is sent to a vanished address); the containers of the tasks
    /// wanted running.
    ///
    /// # Errors
    /// An API error.
    pub async fn old_tasks_stopped(
        &self,
        name: &str,
        limit: Duration,
    ) -> Result<Vec<String>, DockerError> {
        let keep: Vec<String> = self
            .tasks(name)
            .await?
            .into_iter()
            .filter(|t| t.desired == "running")
            .filter_map(|t| t.container)
            .collect();
        let t = Instant::now();
        while t.elapsed() < limit
            && self
                .service_containers_in(name, &["running", "restarting"])
                .await?
                .iter()
                .any(|id| !keep.contains(id))
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(keep)
    }

    /// Removes the containers of service `name`'s tasks that are not wanted running
    /// (the swarm's task history), once those still stopping have stopped (at most
    /// 30 s), so that the images they ran can go.
    ///
    /// # Errors
    /// An API error.
    pub async fn remove_ended_tasks(&self, name: &str) -> Result<(), DockerError> {
        let keep = self
            .old_tasks_stopped(name, Duration::from_secs(30))
            .await?;
        for id in self.service_containers_in(name, &[]).await? {
            if !keep.contains(&id) {
                self.remove_container(&id).await?;
            }
        }
        Ok(())
    }

    /// The containers of service `name` on this engine (any state).
    async fn service_containers(&self, name: &str) -> Result<Vec<String>, DockerError> {
        self.service_containers_in(name, &[]).await
    }

    /// The containers of service `name` on this engine in one of `states` (empty: any).
    async fn service_containers_in(
        &self,
        name: &str,
        states: &[&str],
    ) -> Result<Vec<String>, DockerError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::from([(
            "label".to_string(),
            vec![format!("com.docker.swarm.service.name={name}")],
        )]);
        if !states.is_empty() {
            filters.insert(
                "status".into(),
                states.iter().map(|s| (*s).to_string()).collect(),
            );
        }
        let list = self
            .docker
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(api)?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// The tasks of service `name`, newest first.
    ///
    /// # Errors
    /// An API error.
    pub async fn tasks(&self, name: &str) -> Result<Vec<TaskNow>, DockerError> {
        let filters: HashMap<String, Vec<String>> =
            HashMap::from([("service".to_string(), vec![name.to_string()])]);
        let tasks = self
            .docker
            .list_tasks(Some(bollard::query_parameters::ListTasksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(api)?;
        let mut v: Vec<(String, TaskNow)> = tasks
            .iter()
            .map(|t| {
                let j = serde_json::to_value(t).unwrap_or(Value::Null);
                let at = j
                    .pointer("/CreatedAt")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                (at, TaskNow::read(&j))
            })
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(v.into_iter().map(|(_, t)| t).collect())
    }

    /// The container of service `name`'s running task on this engine, if it has one
    /// (`None` too when there is no such service).
    ///
    /// # Errors
    /// An API error.
    pub async fn task_container(&self, name: &str) -> Result<Option<String>, DockerError> {
        // An engine without services (not a swarm, or Podman's compatible API, which
        // may answer otherwise than 404 or 503) has no task container.
        if !matches!(self.service(name).await, Ok(Some(_))) {
            return Ok(None);
        }
        Ok(self
            .tasks(name)
            .await?
            .into_iter()
            .find(|t| t.desired == "running" && t.state == "running")
            .and_then(|t| t.container))
    }

    /// Whether secret `name` exists.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn secret_exists(&self, name: &str) -> Result<bool, DockerError> {
        match self.docker.inspect_secret(name).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(api(e)),
        }
    }

    /// Creates secret `name` holding `value` (in the request's body only); its id.
    ///
    /// # Errors
    /// An API error (the name taken).
    pub async fn create_secret(
        &self,
        name: &str,
        value: &[u8],
        labels: &HashMap<String, String>,
    ) -> Result<String, DockerError> {
        let data = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value));
        let spec: bollard::models::SecretSpec = serde_json::from_value(json!({
            "Name": name,
            "Labels": labels,
            "Data": data.as_str(),
        }))
        .map_err(|e| DockerError::Api(format!("a secret spec that does not read: {e}")))?;
        self.change(format!("create secret {name}"), |docker| async move {
            docker.create_secret(spec).await.map(|r| r.id).map_err(api)
        })
        .await
    }

    /// Removes secret `name` (gone is fine); one still held by a service that is being
    /// updated away from it is asked again for up to 30 s.
    ///
    /// # Errors
    /// An API error, or still in use.
    pub async fn remove_secret(&self, name: &str) -> Result<(), DockerError> {
        let t = Instant::now();
        loop {
            match self.docker.delete_secret(name).await {
                Ok(()) => return Ok(()),
                Err(e) if not_found(&e) => return Ok(()),
                Err(e) if t.elapsed() < SECRET_IN_USE_WAIT && e.to_string().contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(api(e)),
            }
        }
    }

    /// The driver of network `name` (`bridge`, `overlay` …), if it exists.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn network_driver(&self, name: &str) -> Result<Option<String>, DockerError> {
        match self.docker.inspect_network(name, None).await {
            Ok(n) => Ok(Some(n.driver.unwrap_or_default())),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(api(e)),
        }
    }

    /// Creates an attachable overlay network (plain containers, e.g. the front proxy,
    /// can join it) with `labels`.
    ///
    /// # Errors
    /// An API error (not a swarm manager).
    pub async fn create_overlay(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), DockerError> {
        self.make_network(bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
    }

    /// The containers on network `name` here (by name), and whether a service uses it.
    ///
    /// # Errors
    /// An API error; a missing network has none.
    pub async fn network_users(&self, name: &str) -> Result<(Vec<String>, bool), DockerError> {
        let n = match self.docker.inspect_network(name, None).await {
            Ok(n) => n,
            Err(e) if not_found(&e) => return Ok((Vec::new(), false)),
            Err(e) => return Err(api(e)),
        };
        let containers = n
            .containers
            .unwrap_or_default()
            .into_values()
            .filter_map(|c| c.name)
            .collect();
        let filters: HashMap<String, Vec<String>> = HashMap::new();
        let services = self
            .docker
            .list_services(Some(bollard::query_parameters::ListServicesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(api)?;
        let id = n.id.unwrap_or_default();
        let used = services.iter().any(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.pointer("/Spec/TaskTemplate/Networks").cloned())
                .and_then(|n| n.as_array().cloned())
                .is_some_and(|n| {
                    n.iter().any(|x| {
                        let t = x.get("Target").and_then(Value::as_str).unwrap_or("");
                        t == id || t == name
                    })
                })
        });
        Ok((containers, used))
    }

    /// Disconnects `container` from `network` (not connected, or either gone, is fine).
    ///
    /// # Errors
    /// An API error.
    pub async fn disconnect_network(
        &self,
        container: &str,
        network: &str,
    ) -> Result<(), DockerError> {
        match self
            .docker
            .disconnect_network(
                network,
                bollard::models::NetworkDisconnectRequest {
                    container: container.to_string(),
                    force: Some(true),
                },
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) || e.to_string().contains("is not connected") => Ok(()),
            Err(e) => Err(api(e)),
        }
    }
}
