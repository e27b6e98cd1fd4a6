//! Images made without the legacy builder: a container created from the base (never
//! started), the app's files streamed into it through the archive endpoint, committed
//! with the image's configuration in one call. One layer, no container per metadata
//! instruction (the legacy builder starts one for every `LABEL`, `USER`, `EXPOSE`, `CMD`).

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::Stream;

use super::{ContainerSpec, Docker, DockerError};

/// The configuration a committed image gets on top of its base's (the engine merges
/// them as a Dockerfile would: env and labels added, the rest replaced when given).
pub struct ImageConfig {
    /// Labels.
    pub labels: HashMap<String, String>,
    /// `USER`.
    pub user: Option<String>,
    /// `ENV`, as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `EXPOSE`, as `PORT/tcp`.
    pub expose: Vec<String>,
    /// `WORKDIR`.
    pub workdir: Option<String>,
}

/// `name[:tag]` as (repository, tag); the tag `latest` when none is given.
fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

impl Docker {
    /// Makes `tag` from `base`: the never-started container `helper`, `files` (a tar whose
    /// entries are paths from `/`, owners and modes as they are) uploaded into it, then
    /// committed with `config` and removed. Returns the image id.
    ///
    /// # Errors
    /// An API error (the helper is removed whatever happened).
    pub async fn commit_build(
        &self,
        base: &str,
        helper: &str,
        tag: &str,
        files: impl Stream<Item = Bytes> + Send + 'static,
        config: ImageConfig,
    ) -> Result<String, DockerError> {
        self.remove_container(helper).await?;
        let spec = ContainerSpec {
            image: base.to_string(),
            env: Vec::new(),
            labels: config.labels.clone(),
            ports: Vec::new(),
            binds: Vec::new(),
            network: None,
            // Never started: the root must take the upload.
            read_only: false,
            no_new_privileges: true,
            cap_add: Vec::new(),
            memory: 64 << 20,
            pids: 16,
            restart: "no".into(),
            tmpfs: Vec::new(),
            log_max_size: "1m".into(),
            log_max_files: 1,
            init: false,
        };
        self.create_container(helper, &spec).await?;
        let made = async {
            // A big tree takes long: no request time limit for the transfer itself.
            let docker = self
                .docker
                .clone()
                .with_timeout(std::time::Duration::from_secs(7 * 24 * 3600));
            docker
                .upload_to_container(
                    helper,
                    Some(
                        bollard::query_parameters::UploadToContainerOptionsBuilder::new()
                            .path("/")
                            .build(),
                    ),
                    bollard::body_stream(files),
                )
                .await
                .map_err(|e| DockerError::Build(format!("uploading the app's files: {e}")))?;
            let (repo, t) = split_tag(tag);
            let committed = self
                .docker
                .commit_container(
                    bollard::query_parameters::CommitContainerOptionsBuilder::new()
                        .container(helper)
                        .repo(repo)
                        .tag(t)
                        .pause(false)
                        .build(),
                    bollard::models::ContainerConfig {
                        labels: Some(config.labels),
                        user: config.user,
                        env: (!config.env.is_empty()).then_some(config.env),
                        cmd: config.cmd,
                        exposed_ports: (!config.expose.is_empty()).then_some(config.expose),
                        working_dir: config.workdir,
                        ..bollard::models::ContainerConfig::default()
                    },
                )
                .await
                .map_err(|e| DockerError::Build(format!("committing the image: {e}")))?;
            Ok::<String, DockerError>(committed.id)
        }
        .await;
        self.remove_container(helper).await?;
        made
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn tags_split_at_the_last_colon_after_the_last_slash() {
        assert_eq!(
            split_tag("boyong/situs-image:2026"),
            ("boyong/situs-image", "2026")
        );
        assert_eq!(split_tag("reg:5000/a/b"), ("reg:5000/a/b", "latest"));
        assert_eq!(split_tag("reg:5000/a/b:1"), ("reg:5000/a/b", "1"));
    }
}
