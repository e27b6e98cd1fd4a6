//! The front proxy on the engine: made, its files written through `exec` (contents on
//! stdin), its configuration checked and reloaded, its generation awaited.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{CONF_DIR, GENERATION_HOST, HTTP_PORT, HTTPS_PORT, generation_conf, http_address};
use crate::docker::{ContainerSpec, Docker, DockerError};
use crate::playbook::Front;

/// The label that marks the front proxy's container, network and volume.
pub const LABEL_FRONT: &str = "boyong.front";

/// How long a reload may take to serve before the switch is called failed.
const RELOAD_WAIT: Duration = Duration::from_secs(15);

/// The front proxy of one engine.
pub struct FrontProxy<'a> {
    engine: &'a Docker,
    front: &'a Front,
}

impl<'a> FrontProxy<'a> {
    /// The proxy `front` on `engine`.
    pub fn new(engine: &'a Docker, front: &'a Front) -> Self {
        Self { engine, front }
    }

    /// Whether its container exists and runs.
    ///
    /// # Errors
    /// An API error.
    pub async fn running(&self) -> Result<Option<bool>, DockerError> {
        Ok(self
            .engine
            .container(&self.front.name)
            .await?
            .map(|c| c.running))
    }

    /// Makes what is missing of it (network, config volume, container) and starts it;
    /// returns whether anything was made. `labels`: added to the front's own label.
    ///
    /// # Errors
    /// An API error (a host port taken, the image missing).
    pub async fn ensure(&self, labels: &HashMap<String, String>) -> Result<bool, DockerError> {
        let f = self.front;
        let mut labels = labels.clone();
        labels.insert(LABEL_FRONT.into(), f.name.clone());
        let mut made = false;
        if !self.engine.network_exists(&f.network()).await? {
            self.engine.create_network(&f.network(), &labels).await?;
            made = true;
        }
        if !self.engine.volume_exists(&f.volume()).await? {
            self.engine.create_volume(&f.volume(), &labels).await?;
            made = true;
        }
        match self.engine.container(&f.name).await? {
            Some(c) if c.running => {}
            Some(_) => self.engine.start(&f.name).await?,
            None => {
                let spec = ContainerSpec {
                    image: f.image.clone(),
                    env: Vec::new(),
                    labels,
                    ports: vec![
                        (Some(f.http.0.clone()), f.http.1, HTTP_PORT, "tcp".into()),
                        (Some(f.https.0.clone()), f.https.1, HTTPS_PORT, "tcp".into()),
                    ],
                    binds: vec![format!("{}:{CONF_DIR}", f.volume())],
                    network: Some(f.network()),
                    read_only: true,
                    no_new_privileges: true,
                    cap_add: Vec::new(),
                    memory: 256 << 20,
                    pids: 256,
                    restart: "unless-stopped".into(),
                    tmpfs: vec!["/tmp".into()],
                    log_max_size: "10m".into(),
                    log_max_files: 2,
                    init: true,
                };
                self.engine.create_container(&f.name, &spec).await?;
                self.engine.start(&f.name).await?;
                made = true;
            }
        }
        // It serves once it answers (its first generation is 0: none written yet).
        let t = Instant::now();
        while self.engine.dial(&http_address(f)).await.is_err() {
            if t.elapsed() > RELOAD_WAIT {
                return Err(DockerError::Api(format!(
                    "the front proxy `{}` does not answer on {}",
                    f.name,
                    http_address(f)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(made)
    }

    /// Runs `args` in the proxy with `input` on stdin; its stdout, or the error with its
    /// stderr.
    async fn sh(&self, args: &[&str], input: &[u8]) -> Result<Vec<u8>, DockerError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        if !input.is_empty() {
            let _ = tx.send(Bytes::copy_from_slice(input)).await;
        }
        drop(tx);
        let cmd: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        let out = self
            .engine
            .exec_io(&self.front.name, &cmd, &[], Some(rx), 1 << 20)
            .await?;
        if out.code == 0 {
            Ok(out.stdout)
        } else {
            Err(DockerError::Api(format!(
                "`{}` in the front proxy exited {}: {}",
                args.first().copied().unwrap_or_default(),
                out.code,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// A file of the proxy's configuration (`name` relative to its directory), if any.
    ///
    /// # Errors
    /// An API error.
    pub async fn read(&self, name: &str) -> Result<Option<Vec<u8>>, DockerError> {
        let out = self
            .sh(
                &[
                    "/bin/sh",
                    "-c",
                    r#"if [ -f "$1" ]; then printf y; cat "$1"; else printf n; fi"#,
                    "sh",
                    &format!("{CONF_DIR}/{name}"),
                ],
                b"",
            )
            .await?;
        Ok(match out.split_first() {
            Some((b'y', rest)) => Some(rest.to_vec()),
            _ => None,
        })
    }

    /// Writes `bytes` as `name` (mode 0600, atomically: a temporary file renamed).
    ///
    /// # Errors
    /// An API error.
    pub async fn write(&self, name: &str, bytes: &[u8]) -> Result<(), DockerError> {
        self.sh(
            &[
                "/bin/sh",
                "-c",
                r#"umask 077 && cat > "$1.tmp" && mv -f "$1.tmp" "$1""#,
                "sh",
                &format!("{CONF_DIR}/{name}"),
            ],
            bytes,
        )
        .await
        .map(|_| ())
    }

    /// Removes `name` (gone already is fine).
    ///
    /// # Errors
    /// An API error.
    pub async fn remove(&self, name: &str) -> Result<(), DockerError> {
        self.sh(&["/bin/rm", "-f", &format!("{CONF_DIR}/{name}")], b"")
            .await
            .map(|_| ())
    }

    /// The apps routed now (their route files).
    ///
    /// # Errors
    /// An API error.
    pub async fn routes(&self) -> Result<Vec<String>, DockerError> {
        let out = self.sh(&["/bin/ls", "-1", CONF_DIR], b"").await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.strip_suffix(".conf"))
            .filter(|a| !a.starts_with('_'))
            .map(str::to_string)
            .collect())
    }

    /// Checks the configuration as written (`nginx -t`), then reloads it and waits until
    /// the new workers serve (they answer the new generation). The generation number is
    /// the time in milliseconds, so that it only grows.
    ///
    /// # Errors
    /// The configuration fails its check (nothing reloaded), or the reload does not serve
    /// in time.
    pub async fn reload(&self) -> Result<Duration, DockerError> {
        let n = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        self.write("_generation.conf", generation_conf(n).as_bytes())
            .await?;
        self.sh(&["nginx", "-e", "stderr", "-t", "-q"], b"").await?;
        let workers = self.workers().await?;
        let t = Instant::now();
        self.sh(&["nginx", "-e", "stderr", "-s", "reload"], b"")
            .await?;
        let want = format!("{n}\n");
        let mut served = false;
        loop {
            // Served by a new worker, and the old ones no longer accept: as many workers
            // accept as before the reload (the old ones, told to quit, say "shutting down"
            // or are gone), so no new connection meets the old configuration.
            served = served
                || generation(self.engine, &http_address(self.front))
                    .await
                    .as_deref()
                    == Some(want.as_str());
            if served && self.workers().await? <= workers {
                return Ok(t.elapsed());
            }
            if t.elapsed() > RELOAD_WAIT {
                return Err(DockerError::Api(format!(
                    "the front proxy `{}` did not serve its new configuration within {} s",
                    self.front.name,
                    RELOAD_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The nginx workers that accept connections (not those shutting down).
    async fn workers(&self) -> Result<usize, DockerError> {
        let out = self
            .sh(
                &[
                    "/bin/sh",
                    "-c",
                    r#"for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f" 2>/dev/null; echo; done"#,
                ],
                b"",
            )
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| l.starts_with("nginx: worker process") && !l.contains("shutting down"))
            .count())
    }

    /// Removes the proxy (container, volume, network) when it routes no app; `false` when
    /// it still routes some and was kept.
    ///
    /// # Errors
    /// An API error.
    pub async fn remove_if_unused(&self) -> Result<bool, DockerError> {
        let f = self.front;
        if self.engine.container(&f.name).await?.is_some() {
            if self.running().await? != Some(true) {
                self.engine.start(&f.name).await?;
            }
            if !self.routes().await?.is_empty() {
                return Ok(false);
            }
            self.engine.remove_container(&f.name).await?;
        }
        self.engine.remove_volume(&f.volume()).await?;
        self.engine.remove_network(&f.network()).await?;
        Ok(true)
    }
}

/// The generation the proxy at `addr` serves, if it answers.
async fn generation(engine: &Docker, addr: &str) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), engine.dial(addr))
        .await
        .ok()?
        .ok()?;
    let req = format!("GET / HTTP/1.0\r\nHost: {GENERATION_HOST}\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}
