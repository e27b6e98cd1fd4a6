//! Volume snapshots on Podman's Docker-compatible API, which differs from Docker's in the
//! archive endpoint: a download gives every file to the container's user (the owners are
//! lost) and names the entries from `/`, not from the directory asked for; an upload at
//! `/` lands in the container's own root, not in a volume mounted there.
//!
//! So on Podman a snapshot is made by `tar` inside a helper container of the image (the
//! volume mounted read-only, the tar written into the helper's own root, numeric owners
//! kept), downloaded, and rewritten with Docker's names (`boyong-volume/…`): a snapshot
//! file is the same whichever engine made it. An upload is rewritten the other way (names
//! from the mount) and sent to the mount itself.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig};
use bytes::Bytes;
use futures_util::StreamExt as _;

use super::containers::api;
use super::{Docker, DockerError};

/// Where the helper mounts the volume (as `snapshot.rs`).
pub(super) const MOUNT: &str = "/boyong-volume";
/// Where, in its own root, the helper writes the volume's tar.
const INNER: &str = "/boyong-volume.tar";

/// `path` of an entry (from the mount, `./…`) as Docker names it: from the mount's name
/// (`boyong-volume/…`), the mount itself `boyong-volume/`.
fn docker_name(path: &str) -> String {
    let rel = path.trim_start_matches("./").trim_start_matches('/');
    let rel = if rel == "." { "" } else { rel };
    format!("boyong-volume/{rel}")
}

/// `path` of a Docker-named entry, from the mount (`./…`); `None` when it is not under
/// `boyong-volume/`.
fn mount_name(path: &str) -> Option<String> {
    let rest = path.strip_prefix("boyong-volume")?;
    let rest = rest.trim_start_matches('/');
    Some(if rest.is_empty() {
        "./".to_string()
    } else {
        format!("./{rest}")
    })
}

/// Copies the tar `from` into `to` with every entry's name (and a hard link's target)
/// rewritten by `rename`; entries it gives `None` for are left out. Owners, modes, times,
/// link targets of symbolic links and contents are kept. Returns the owner (uid, gid) of
/// the entry renamed `./`, the mount itself, if there is one.
fn retar(
    from: impl Read,
    to: impl Write,
    rename: impl Fn(&str) -> Option<String>,
) -> std::io::Result<Option<(u64, u64)>> {
    let mut root = None;
    let mut ar = tar::Archive::new(from);
    let mut out = tar::Builder::new(to);
    out.mode(tar::HeaderMode::Complete);
    for entry in ar.entries()? {
        let mut e = entry?;
        let path = e.path()?.to_string_lossy().into_owned();
        let Some(name) = rename(&path) else { continue };
        let mut h = e.header().clone();
        if name == "./" {
            root = Some((h.uid()?, h.gid()?));
        }
        match h.entry_type() {
            tar::EntryType::Link => {
                let target = e
                    .link_name()?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = rename(&target).unwrap_or(target);
                out.append_link(&mut h, &name, &target)?;
            }
            tar::EntryType::Symlink => {
                let target = e.link_name()?.map(std::borrow::Cow::into_owned);
                match target {
                    Some(t) => out.append_link(&mut h, &name, &t)?,
                    None => out.append_data(&mut h, &name, std::io::empty())?,
                }
            }
            _ => out.append_data(&mut h, &name, &mut e)?,
        }
    }
    out.into_inner()?.flush()?;
    Ok(root)
}

/// A `Write` that hands its bytes to a channel, in chunks (for a request body).
struct ToChannel {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Write for ToChannel {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(chunk)
                .map_err(|_| std::io::Error::other("the engine stopped reading"))?;
        }
        Ok(())
    }
}

impl Docker {
    /// Podman: `volume` receives `tar` (Docker-named entries), owners and modes kept,
    /// through the never-started helper `helper` of `image` (then removed). Podman's
    /// upload leaves the owner of the directory it unpacks into as it was: when the tar
    /// gives the volume's own directory another owner than root, a second helper sets it
    /// (`chown`, which the image must have).
    ///
    /// # Errors
    /// An API error, or the tar cannot be read.
    pub(super) async fn podman_fill(
        &self,
        volume: &str,
        image: &str,
        helper: &str,
        labels: &HashMap<String, String>,
        tar: Box<dyn Read + Send>,
    ) -> Result<(), DockerError> {
        self.remove_helper(helper).await?;
        self.create_helper(helper, image, labels, &format!("{volume}:{MOUNT}"), None)
            .await?;
        let root = self.podman_upload(helper, tar).await;
        self.remove_helper(helper).await?;
        match root? {
            Some((uid, gid)) if (uid, gid) != (0, 0) => {
                let owner = format!("{uid}:{gid}");
                let cmd = ["chown", owner.as_str(), MOUNT].map(String::from).to_vec();
                self.create_helper(
                    helper,
                    image,
                    labels,
                    &format!("{volume}:{MOUNT}"),
                    Some(cmd),
                )
                .await?;
                let ran = self.run_helper(helper).await;
                self.remove_helper(helper).await?;
                ran.map_err(|e| {
                    DockerError::Api(format!(
                        "setting the owner of volume `{volume}` to {owner}: {e} (on Podman with `chown` in a container of `{image}`)"
                    ))
                })
            }
            _ => Ok(()),
        }
    }

    /// Creates the helper `helper` of `image` as root with `bind`, no network, no new
    /// privileges; `cmd` (no entry point) if given.
    async fn create_helper(
        &self,
        helper: &str,
        image: &str,
        labels: &HashMap<String, String>,
        bind: &str,
        cmd: Option<Vec<String>>,
    ) -> Result<(), DockerError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels.clone()),
            entrypoint: cmd.is_some().then(Vec::new),
            cmd,
            user: Some("0:0".into()),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                binds: Some(vec![bind.to_string()]),
                network_mode: Some("none".into()),
                security_opt: Some(vec!["no-new-privileges:true".into()]),
                memory: Some(256 << 20),
                pids_limit: Some(16),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        self.make_helper(helper, body).await
    }

    /// Starts `helper` and waits for it to exit 0.
    async fn run_helper(&self, helper: &str) -> Result<(), DockerError> {
        self.start(helper).await?;
        let mut waited = self.docker.wait_container(
            helper,
            None::<bollard::query_parameters::WaitContainerOptions>,
        );
        let code = match waited.next().await {
            Some(Ok(w)) => w.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(api(e)),
            None => -1,
        };
        if code == 0 {
            Ok(())
        } else {
            Err(DockerError::Api(format!("exited {code}")))
        }
    }

    /// Podman: the volume mounted at [`MOUNT`] of the never-started helper `helper`
    /// receives `tar` (Docker-named entries), owners kept; the owner of the tar's entry
    /// for the mount itself, if any.
    ///
    /// # Errors
    /// An API error, or the tar cannot be read.
    async fn podman_upload(
        &self,
        helper: &str,
        tar: Box<dyn Read + Send>,
    ) -> Result<Option<(u64, u64)>, DockerError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let writing = tokio::task::spawn_blocking(move || {
            let mut to = ToChannel {
                tx,
                buf: Vec::new(),
            };
            let root = retar(tar, &mut to, mount_name)?;
            to.flush()?;
            Ok::<_, std::io::Error>(root)
        });
        let body =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
            );
        let docker = self
            .docker
            .clone()
            .with_timeout(std::time::Duration::from_secs(7 * 24 * 3600));
        let up = docker
            .upload_to_container(
                helper,
                Some(
                    bollard::query_parameters::UploadToContainerOptionsBuilder::new()
                        .path(MOUNT)
                        .build(),
                ),
                bollard::body_stream(body),
            )
            .await
            .map_err(|e| DockerError::Api(e.to_string()));
        let wrote = writing
            .await
            .map_err(|e| DockerError::Api(e.to_string()))
            .and_then(|r| r.map_err(|e| DockerError::Api(format!("the volume's tar: {e}"))));
        up.and(wrote)
    }

    /// Podman: the contents of `volume` as a tar file at `dest` (Docker-named entries,
    /// owners kept), made by `tar` in the helper container `helper` of `image` (then
    /// removed). Returns nothing; the caller hashes the file.
    ///
    /// # Errors
    /// The image has no `tar`, `tar` failed, or an API error.
    pub(super) async fn podman_snapshot(
        &self,
        volume: &str,
        image: &str,
        helper: &str,
        labels: &HashMap<String, String>,
        dest: &Path,
    ) -> Result<(), DockerError> {
        self.remove_helper(helper).await?;
        let need = |e: DockerError| {
            DockerError::Api(format!(
                "{e}: on Podman a volume is saved by `tar` in a container of `{image}`, which must have it"
            ))
        };
        // Numeric owners kept (GNU tar and BusyBox's record them either way).
        let cmd = ["tar", "-cf", INNER, "-C", MOUNT, "."]
            .map(String::from)
            .to_vec();
        self.create_helper(
            helper,
            image,
            labels,
            &format!("{volume}:{MOUNT}:ro"),
            Some(cmd),
        )
        .await
        .map_err(need)?;
        let result = async {
            self.run_helper(helper).await.map_err(need)?;
            // The engine wraps the file in a tar of its own: kept aside, then unwrapped.
            let outer_path = dest.with_extension("outer.tar");
            let io = |e: std::io::Error| DockerError::Api(format!("{}: {e}", dest.display()));
            let mut outer =
                std::io::BufWriter::new(std::fs::File::create(&outer_path).map_err(io)?);
            let docker = self
                .docker
                .clone()
                .with_timeout(std::time::Duration::from_secs(7 * 24 * 3600));
            let mut stream = docker.download_from_container(
                helper,
                Some(
                    bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
                        .path(INNER)
                        .build(),
                ),
            );
            let mut fetched = Ok(());
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => outer.write_all(&c).map_err(io)?,
                    Err(e) => {
                        fetched = Err(api(e));
                        break;
                    }
                }
            }
            drop(outer.into_inner().map_err(|e| io(e.into_error()))?);
            let dest = dest.to_path_buf();
            fetched.and(
                tokio::task::spawn_blocking(move || unwrap(&outer_path, &dest))
                    .await
                    .map_err(|e| DockerError::Api(e.to_string()))?,
            )
        }
        .await;
        self.remove_helper(helper).await?;
        result
    }
}

/// The one file of the engine's tar at `outer` (then removed), rewritten with Docker's
/// names into `dest` (mode 0600).
fn unwrap(outer: &Path, dest: &Path) -> Result<(), DockerError> {
    let io = |e: std::io::Error| DockerError::Api(format!("{}: {e}", dest.display()));
    let done = (|| {
        let mut ar = tar::Archive::new(std::io::BufReader::new(std::fs::File::open(outer)?));
        let mut entries = ar.entries()?;
        let inner = loop {
            match entries.next() {
                Some(e) => {
                    let e = e?;
                    if e.header().entry_type().is_file() {
                        break e;
                    }
                }
                None => return Err(std::io::Error::other("the engine sent no tar file")),
            }
        };
        let file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(dest)?
        };
        let mut w = std::io::BufWriter::new(file);
        retar(inner, &mut w, |p| Some(docker_name(p)))?;
        w.into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        Ok(())
    })();
    let _ = std::fs::remove_file(outer);
    done.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::{docker_name, mount_name, retar};

    #[test]
    fn names_go_from_the_mount_to_dockers_and_back() {
        assert_eq!(docker_name("./"), "boyong-volume/");
        assert_eq!(docker_name("."), "boyong-volume/");
        assert_eq!(docker_name("./d/f"), "boyong-volume/d/f");
        assert_eq!(mount_name("boyong-volume/"), Some("./".into()));
        assert_eq!(mount_name("boyong-volume/d/f"), Some("./d/f".into()));
        assert_eq!(mount_name("etc/passwd"), None);
    }

    #[test]
    fn a_rewritten_tar_keeps_owners_modes_and_links() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(2);
        h.set_mode(0o640);
        h.set_uid(999);
        h.set_gid(998);
        b.append_data(&mut h, "./d/f", &b"a\n"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Link);
        l.set_size(0);
        l.set_mode(0o640);
        l.set_uid(999);
        l.set_gid(998);
        b.append_link(&mut l, "./d/g", "./d/f").unwrap();
        let src = b.into_inner().unwrap();
        let mut out = Vec::new();
        retar(src.as_slice(), &mut out, |p| Some(docker_name(p))).unwrap();
        let mut ar = tar::Archive::new(out.as_slice());
        let got: Vec<(String, u64, u64, u32, Option<String>)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mode().unwrap(),
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("boyong-volume/d/f".into(), 999, 998, 0o640, None),
                (
                    "boyong-volume/d/g".into(),
                    999,
                    998,
                    0o640,
                    Some("boyong-volume/d/f".into())
                ),
            ]
        );
    }
}
