//! The target's Docker Engine, through its API (bollard): images for now.
//!
//! Owns [`Engine`]: connecting (Unix socket; version negotiated), image lookup, streaming
//! a build context into the build endpoint without a temporary copy, and removing an
//! image tag. Every error names what to do.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};

use crate::playbook::DockerEndpoint;

mod containers;

pub use containers::{ContainerSpec, ContainerState};

/// Why the engine refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine cannot be reached.
    #[error("cannot reach the Docker Engine at {endpoint}: {reason}")]
    Unreachable {
        /// Where.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The build failed; its last output lines say why.
    #[error("the image build failed: {0}")]
    Build(String),
    /// Another API error.
    #[error("Docker Engine: {0}")]
    Api(String),
}

/// A connected engine.
pub struct Engine {
    docker: bollard::Docker,
    endpoint: String,
}

impl Engine {
    /// Connects and negotiates the API version.
    ///
    /// # Errors
    /// The socket is missing or the engine does not answer.
    pub async fn connect(endpoint: &DockerEndpoint) -> Result<Self, DockerError> {
        let name = endpoint.to_string();
        let unreachable = |reason: String| DockerError::Unreachable {
            endpoint: name.clone(),
            reason,
        };
        let docker = match endpoint {
            DockerEndpoint::Unix(path) => bollard::Docker::connect_with_unix(
                &path.display().to_string(),
                600,
                bollard::API_DEFAULT_VERSION,
            )
            .map_err(|e| unreachable(e.to_string()))?,
            DockerEndpoint::Tcp { .. } => {
                return Err(unreachable(
                    "tcp:// endpoints with TLS are not supported by this release; run boyong on the target and use its Unix socket".into(),
                ));
            }
        };
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self {
            docker,
            endpoint: name,
        })
    }

    /// The endpoint, as the playbook names it.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The id (`sha256:…`) of an image, or `None` if the engine does not have it.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn image_id(&self, name: &str) -> Result<Option<String>, DockerError> {
        match self.docker.inspect_image(name).await {
            Ok(i) => Ok(i.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(DockerError::Api(e.to_string())),
        }
    }

    /// The labels of an image.
    ///
    /// # Errors
    /// The image is missing, or an API error.
    pub async fn image_labels(&self, name: &str) -> Result<HashMap<String, String>, DockerError> {
        let i = self
            .docker
            .inspect_image(name)
            .await
            .map_err(|e| DockerError::Api(e.to_string()))?;
        Ok(i.config.and_then(|c| c.labels).unwrap_or_default())
    }

    /// Builds `tag` from the tar `context` (plain tar, a `Dockerfile` at its root), with
    /// `labels`; each line of build output goes to `output`. Returns the image id.
    ///
    /// # Errors
    /// The build failed (its last lines are in the error), or an API error.
    pub async fn build(
        &self,
        context: impl Stream<Item = Bytes> + Send + 'static,
        tag: &str,
        labels: &HashMap<String, String>,
        output: &mut dyn FnMut(&str),
    ) -> Result<String, DockerError> {
        let options = bollard::query_parameters::BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(tag)
            .labels(labels)
            .rm(true)
            .forcerm(true)
            .pull("")
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_stream(context)));
        let mut tail: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| DockerError::Build(format!("{e}{}", last(&tail))))?;
            if let Some(detail) = info.error_detail {
                let msg = detail.message.unwrap_or_default();
                return Err(DockerError::Build(format!("{msg}{}", last(&tail))));
            }
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    output(line);
                    tail.push(line.to_string());
                    if tail.len() > 10 {
                        tail.remove(0);
                    }
                }
            }
        }
        self.image_id(tag).await?.ok_or_else(|| {
            DockerError::Build(format!(
                "the engine reports no image `{tag}` after the build{}",
                last(&tail)
            ))
        })
    }

    /// Removes an image tag (and the image, if nothing else uses it). Gone already is fine.
    ///
    /// # Errors
    /// An API error other than "not found" (e.g. a container still uses it).
    pub async fn remove_image(&self, name: &str) -> Result<(), DockerError> {
        match self
            .docker
            .remove_image(
                name,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(DockerError::Api(e.to_string())),
        }
    }
}

fn last(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(" (last output: {})", tail.join(" / "))
    }
}
