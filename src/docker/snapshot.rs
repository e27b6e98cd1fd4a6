//! Volume snapshots: a volume's contents saved as a tar file (through the engine's archive
//! endpoint of a stopped helper container that mounts it), and put back into a fresh
//! volume of the same name. What `restore` with `replace: true` needs so that rollback
//! gives the old data back. On Podman, whose archive endpoint differs, through
//! `podman_volume.rs`: the same snapshot file either way.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};

use super::{ContainerSpec, Docker, DockerError};

use super::podman_volume::MOUNT;

/// The SHA-256 (hex) and size of the file at `path`.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    f.sync_all()?;
    Ok((crate::digest::hex(&hash.finalize()), bytes))
}

fn helper_spec(
    image: &str,
    volume: &str,
    labels: &HashMap<String, String>,
    ro: bool,
) -> ContainerSpec {
    ContainerSpec {
        image: image.to_string(),
        env: Vec::new(),
        labels: labels.clone(),
        ports: Vec::new(),
        binds: vec![format!("{volume}:{MOUNT}{}", if ro { ":ro" } else { "" })],
        network: None,
        // The restoring helper's root is writable: the engine unpacks an upload at `/`.
        read_only: ro,
        no_new_privileges: true,
        cap_add: Vec::new(),
        memory: 64 << 20,
        pids: 16,
        restart: "no".into(),
        tmpfs: Vec::new(),
        log_max_size: "1m".into(),
        log_max_files: 1,
        init: false,
    }
}

impl Docker {
    /// Writes the contents of `volume` as a tar file at `dest` (fsync'd), through the
    /// never-started helper container `helper` (made from `image`, then removed); the
    /// file's SHA-256 and size.
    ///
    /// # Errors
    /// An API error, or the file cannot be written.
    pub async fn snapshot_volume(
        &self,
        volume: &str,
        image: &str,
        helper: &str,
        labels: &HashMap<String, String>,
        dest: &Path,
    ) -> Result<(String, u64), DockerError> {
        self.remove_helper(helper).await?;
        let io = |e: std::io::Error| DockerError::Api(format!("{}: {e}", dest.display()));
        if self.podman {
            let made = self
                .podman_snapshot(volume, image, helper, labels, dest)
                .await;
            let hashed = match made {
                Ok(()) => hash_file(dest).map_err(io),
                Err(e) => Err(e),
            };
            if hashed.is_err() {
                let _ = std::fs::remove_file(dest);
            }
            return hashed;
        }
        self.create_container(helper, &helper_spec(image, volume, labels, true))
            .await?;
        let result = async {
            // Mode 0600, as every file of the state directory (docs/state.md).
            let file = {
                use std::os::unix::fs::OpenOptionsExt as _;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(dest)
                    .map_err(io)?
            };
            let mut file = std::io::BufWriter::new(file);
            let mut hash = Sha256::new();
            let mut bytes = 0u64;
            // A big volume takes long: no request time limit for the transfer itself.
            let docker = self
                .docker
                .clone()
                .with_timeout(std::time::Duration::from_secs(7 * 24 * 3600));
            let mut stream = docker.download_from_container(
                helper,
                Some(
                    bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
                        .path(MOUNT)
                        .build(),
                ),
            );
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| DockerError::Api(e.to_string()))?;
                hash.update(&chunk);
                bytes += chunk.len() as u64;
                file.write_all(&chunk).map_err(io)?;
            }
            let file = file.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            Ok((crate::digest::hex(&hash.finalize()), bytes))
        }
        .await;
        if result.is_err() {
            // Nothing half-written may pass for a snapshot.
            let _ = std::fs::remove_file(dest);
        }
        self.remove_helper(helper).await?;
        result
    }

    /// Writes `tar` (entries under `boyong-volume/`, owners kept: no `copyUIDGID`, which
    /// would give every file to the image's user) into `volume`, through
    /// the never-started helper container `helper` (made from `image`, then removed).
    ///
    /// # Errors
    /// An API error.
    pub async fn fill_volume(
        &self,
        volume: &str,
        image: &str,
        helper: &str,
        labels: &HashMap<String, String>,
        tar: Vec<u8>,
    ) -> Result<(), DockerError> {
        if self.podman {
            return self
                .podman_fill(
                    volume,
                    image,
                    helper,
                    labels,
                    Box::new(std::io::Cursor::new(tar)),
                )
                .await;
        }
        self.remove_helper(helper).await?;
        self.create_container(helper, &helper_spec(image, volume, labels, false))
            .await?;
        let up = self
            .docker
            .upload_to_container(
                helper,
                Some(
                    bollard::query_parameters::UploadToContainerOptionsBuilder::new()
                        .path("/")
                        .build(),
                ),
                bollard::body_full(Bytes::from(tar)),
            )
            .await
            .map_err(|e| DockerError::Api(e.to_string()));
        self.remove_helper(helper).await?;
        up
    }

    /// Replaces `volume` by a fresh one holding the snapshot at `src` (owners and modes
    /// kept: no `copyUIDGID`, which would give every file to the image's user), through
    /// the helper container `helper`, then removed.
    ///
    /// # Errors
    /// An API error (e.g. the volume is in use), or the file cannot be read.
    pub async fn restore_volume(
        &self,
        volume: &str,
        image: &str,
        helper: &str,
        labels: &HashMap<String, String>,
        src: &Path,
    ) -> Result<(), DockerError> {
        let mut file = std::fs::File::open(src)
            .map_err(|e| DockerError::Api(format!("{}: {e}", src.display())))?;
        // Everything that could stop the restore is checked before the volume goes.
        if self.image_id(image).await?.is_none() {
            return Err(DockerError::Api(format!(
                "image `{image}` is not on the engine: volume `{volume}` is left as it is"
            )));
        }
        self.remove_helper(helper).await?;
        self.remove_volume(volume).await?;
        self.create_volume(volume, labels).await?;
        if self.podman {
            return self
                .podman_fill(
                    volume,
                    image,
                    helper,
                    labels,
                    Box::new(std::io::BufReader::new(file)),
                )
                .await;
        }
        self.create_container(helper, &helper_spec(image, volume, labels, false))
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let reading = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 || tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                    return Ok(());
                }
            }
        });
        let body =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
            );
        // The tar's entries are `boyong-volume/…`: unpacked at `/`, they land in the mount.
        let docker = self
            .docker
            .clone()
            .with_timeout(std::time::Duration::from_secs(7 * 24 * 3600));
        let up = docker
            .upload_to_container(
                helper,
                Some(
                    bollard::query_parameters::UploadToContainerOptionsBuilder::new()
                        .path("/")
                        .build(),
                ),
                bollard::body_stream(body),
            )
            .await
            .map_err(|e| DockerError::Api(e.to_string()));
        let read = reading
            .await
            .map_err(|e| DockerError::Api(e.to_string()))
            .and_then(|r| r.map_err(|e| DockerError::Api(format!("{}: {e}", src.display()))));
        self.remove_helper(helper).await?;
        up.and(read)
    }
}
