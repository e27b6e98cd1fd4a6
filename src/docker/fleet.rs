//! What the engine runs for boyong, in one request: every container labelled
//! `boyong.app`, for `boyong status` over a fleet; an app deployed as a Swarm service is
//! looked up as its service and its tasks.

use std::collections::HashMap;

use super::{Docker, DockerError};

/// A container as `status` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name (without the leading `/`).
    pub name: String,
    /// Its image id (`sha256:…`).
    pub image_id: String,
    /// `running`, `exited`, `restarting`, `created`, …
    pub state: String,
    /// The image's health check now (`healthy`, `unhealthy`, `starting`), if it has one.
    pub health: Option<String>,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// The health in a container's status line (`Up 3 minutes (healthy)`), if any.
fn health(status: &str) -> Option<String> {
    let inner = status.rsplit_once('(')?.1.strip_suffix(')')?;
    let h = inner.strip_prefix("health: ").unwrap_or(inner);
    matches!(h, "healthy" | "unhealthy" | "starting").then(|| h.to_string())
}

impl Docker {
    /// Every container (running or not) with a `boyong.app` label.
    ///
    /// # Errors
    /// An API error.
    pub async fn boyong_containers(&self) -> Result<Vec<Listed>, DockerError> {
        let filters = HashMap::from([("label", vec!["boyong.app".to_string()])]);
        let list = super::containers::settled(|| {
            self.docker.list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
        })
        .await
        .map_err(|e| DockerError::Api(e.to_string()))?;
        Ok(list
            .into_iter()
            .map(|c| Listed {
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                health: c.status.as_deref().and_then(health),
                labels: c.labels.unwrap_or_default(),
            })
            .collect())
    }

    /// The container named `name` as [`Docker::boyong_containers`] lists one, if any
    /// (for a container that lost its labels: replaced by hand).
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn listed(&self, name: &str) -> Result<Option<Listed>, DockerError> {
        match self.inspect(name).await {
            Ok(c) => {
                let state = c.state.unwrap_or_default();
                Ok(Some(Listed {
                    name: name.to_string(),
                    image_id: c.image.unwrap_or_default(),
                    state: state.status.map(|s| s.to_string()).unwrap_or_default(),
                    health: state
                        .health
                        .and_then(|h| h.status)
                        .map(|s| s.to_string())
                        .filter(|s| s != "none" && !s.is_empty()),
                    labels: c.config.and_then(|c| c.labels).unwrap_or_default(),
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => self.service_listed(name).await,
            Err(e) => Err(DockerError::Api(e.to_string())),
        }
    }

    /// Service `name` (`target.swarm`) as [`Docker::listed`] gives a container: `running`
    /// when every replica's task runs, else `N/M running` (with its update's state when an
    /// update is under way or was rolled back); the image of a running task's container
    /// on this node, else its spec's image as this engine has it; the health of that
    /// task's container. `None`: no such service (or not a swarm).
    async fn service_listed(&self, name: &str) -> Result<Option<Listed>, DockerError> {
        // An engine without services answers not-a-swarm (503), or otherwise on Podman:
        // the container is missing, and that is the answer.
        let Ok(Some(svc)) = self.service(name).await else {
            return Ok(None);
        };
        let tasks = self.tasks(name).await?;
        let running: Vec<_> = tasks
            .iter()
            .filter(|t| t.desired == "running" && t.state == "running")
            .collect();
        let mut state = if svc.replicas > 0 && running.len() as u64 >= svc.replicas {
            "running".to_string()
        } else {
            format!("{}/{} running", running.len(), svc.replicas)
        };
        if let Some((u, _)) = &svc.update
            && u != "completed"
        {
            state = format!("{state}, update {u}");
        }
        let mut task = None;
        if let Some(c) = running.first().and_then(|t| t.container.as_deref()) {
            match self.inspect(c).await {
                Ok(c) => task = Some(c),
                Err(e) if super::containers::not_found(&e) => {}
                Err(e) => return Err(DockerError::Api(e.to_string())),
            }
        }
        let image_id = if let Some(id) = task.as_ref().and_then(|c| c.image.clone()) {
            id
        } else {
            let bare = svc
                .image
                .split_once('@')
                .map_or(svc.image.as_str(), |(r, _)| r);
            self.image_id(bare).await?.unwrap_or_default()
        };
        let health = task
            .and_then(|c| c.state)
            .and_then(|s| s.health)
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| s != "none" && !s.is_empty());
        let labels = svc
            .spec
            .get("Labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        Ok(Some(Listed {
            name: name.to_string(),
            image_id,
            state,
            health,
            labels,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::health;

    #[test]
    fn health_is_read_from_the_status_line() {
        assert_eq!(health("Up 3 minutes (healthy)").as_deref(), Some("healthy"));
        assert_eq!(
            health("Up 1 second (health: starting)").as_deref(),
            Some("starting")
        );
        assert_eq!(
            health("Up 2 hours (unhealthy)").as_deref(),
            Some("unhealthy")
        );
        assert_eq!(health("Up 2 hours"), None);
        assert_eq!(health("Exited (1) 3 minutes ago"), None);
    }
}
