//! What the step kinds share, one place each: how a Docker or SSH failure becomes a step
//! error, the planned change a step is about to make (or a part of it), the changes
//! "created if missing", a container's hardening as plans show it, the `boyong.*` labels
//! (an audit contract: what `status` and auditors find on every image and container), a
//! channel's chunks read as one stream, and the partial-artifact protocol (files synced
//! before they count, removal of every path a failed attempt may have left).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::docker::DockerError;
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, PlannedStep, Resource};
use crate::playbook::Security;
use crate::ssh::{Out, SshError};

/// The labels boyong puts on everything it makes on the target (an audit contract):
/// the app, the run and the step that made it, and the operator's own (`--label`).
pub(crate) fn labels(
    extra: &HashMap<String, String>,
    app: &str,
    run: &str,
    step: &str,
) -> HashMap<String, String> {
    let mut labels = extra.clone();
    labels.insert(LABEL_APP.into(), app.to_string());
    labels.insert(LABEL_RUN.into(), run.to_string());
    labels.insert(LABEL_STEP.into(), step.to_string());
    labels
}

/// The app an image or container belongs to.
pub const LABEL_APP: &str = "boyong.app";
/// The run that made it.
pub const LABEL_RUN: &str = "boyong.run";
/// The step that made it.
pub const LABEL_STEP: &str = "boyong.step";
/// The SHA-256 of the verified artifacts an image was built from.
pub const LABEL_SOURCE: &str = "boyong.source.sha256";

/// Reads the byte chunks of a channel as one `Read` stream (for the unpacking thread).
pub(crate) struct ChunkReader {
    pub(crate) rx: tokio::sync::mpsc::Receiver<Bytes>,
    pub(crate) cur: Bytes,
}

impl Read for ChunkReader {
    /// Waits for the first chunk only, then fills `buf` with what has already arrived:
    /// one big read and write instead of one per SSH packet (about 32 KiB).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let mut n = 0;
        loop {
            let take = (buf.len() - n).min(self.cur.len());
            buf[n..n + take].copy_from_slice(&self.cur[..take]);
            self.cur = self.cur.slice(take..);
            n += take;
            if n == buf.len() {
                return Ok(n);
            }
            match self.rx.try_recv() {
                Ok(b) => self.cur = b,
                Err(_) => return Ok(n),
            }
        }
    }
}

/// Feeds a remote command's stdout to `tx` (a thread that writes it) as it arrives,
/// reporting progress; its byte count and the first 64 KiB of its stderr. A closed `tx`
/// (the writer stopped: its own error says why) drains the rest.
pub(crate) async fn pump(
    run: &mut crate::ssh::Exec,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    cx: &mut StepCx<'_>,
) -> (u64, Vec<u8>) {
    let mut stderr = Vec::new();
    let (mut bytes, mut reported) = (0u64, 0u64);
    let mut tx = Some(tx);
    while let Some(out) = run.next().await {
        match out {
            Out::Stdout(b) => {
                bytes += b.len() as u64;
                if let Some(t) = &tx
                    && t.send(b).await.is_err()
                {
                    tx = None;
                }
                if bytes - reported >= 8 << 20 {
                    reported = bytes;
                    cx.progress(bytes, None);
                }
            }
            Out::Stderr(b) if stderr.len() < 64 * 1024 => stderr.extend_from_slice(&b),
            Out::Stderr(_) => {}
        }
    }
    (bytes, stderr)
}

pub(crate) fn remove_all(paths: &[PathBuf]) -> std::io::Result<()> {
    for p in paths {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                // An unpacker being stopped may add a last file while this runs.
                let mut tries = 0;
                while let Err(e) = fs::remove_dir_all(p) {
                    tries += 1;
                    if tries == 5 || e.kind() == std::io::ErrorKind::NotFound {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            break;
                        }
                        return Err(e);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
            Ok(_) => fs::remove_file(p)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` (created mode 0600, as docs/state.md says) and syncs it.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_file(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates (or truncates) `path` for writing, mode 0600 when created: every file of the
/// state directory is the operator's alone.
pub(crate) fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// A file's SHA-256, naming the file when it cannot be read.
pub(crate) fn file_sha256(p: &Path) -> Result<String, String> {
    crate::digest::file_sha256(p)
        .map(|(d, _)| d)
        .map_err(|e| format!("{}: {e}", p.display()))
}

/// Removes an artifact and its partial copies and descriptions. Safe when they are gone.
/// Only ever the paths a fetch or dump of `step` writes, inside a run's `artifacts` directory.
pub(crate) fn remove_artifact(step: &str, paths: &[PathBuf]) -> Result<(), StepError> {
    for p in paths {
        let plain = p.is_absolute()
            && p.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )
            });
        let in_artifacts =
            p.parent().and_then(Path::file_name) == Some(std::ffi::OsStr::new("artifacts"));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // A fetch's tree, or a dump's file and evidence, with their descriptions.
        let ours = name == step
            || name.strip_prefix(step).is_some_and(|rest| {
                rest == ".manifest"
                    || rest == ".tree"
                    || rest == ".stat"
                    || rest.starts_with(".partial")
                    || rest == ".sql.gz"
                    || rest.starts_with(".sql.gz.partial")
                    || rest == ".evidence.json"
            });
        if !(plain && in_artifacts && ours) {
            return Err(StepError::fatal(format!(
                "refusing to remove {}: not an artifact of step `{step}`",
                p.display()
            )));
        }
    }
    remove_all(paths).map_err(|e| StepError::failed(format!("cannot remove the artifact: {e}")))
}

/// A Docker failure as a step error: the engine unreachable may pass; the rest will not.
#[expect(
    clippy::needless_pass_by_value,
    reason = "used as `map_err(docker_err)`"
)]
pub(crate) fn docker_err(e: DockerError) -> StepError {
    match e {
        DockerError::Unreachable { .. } => StepError::Failed(e.to_string()),
        _ => StepError::Fatal(e.to_string()),
    }
}

pub(crate) fn change(step: &PlannedStep, op: Op, resource: Resource) -> Result<&Change, StepError> {
    step.changes
        .iter()
        .find(|c| c.op == op && c.resource == resource)
        .ok_or_else(|| {
            StepError::failed(format!("the plan of `{}` lacks a change it needs", step.id))
        })
}

/// The same planned change, saying which part of it is being made.
pub(crate) fn part(c: &Change, what: &str) -> Change {
    let mut c = c.clone();
    c.details = vec![what.to_string()];
    c.part = Some(what.to_string());
    c
}

/// An SSH failure as a step error.
#[expect(clippy::needless_pass_by_value, reason = "used as `map_err(ssh_err)`")]
pub(crate) fn ssh_err(e: SshError) -> StepError {
    if e.is_transient() {
        StepError::Failed(e.to_string())
    } else {
        StepError::Fatal(e.to_string())
    }
}

/// A network created when missing, and removed by rollback only if this run made it.
pub(crate) fn network_if_missing(name: &str) -> Change {
    if_missing(crate::plan::Resource::Network, name)
}

/// A volume created when missing, and removed by rollback only if this run made it.
pub(crate) fn volume_if_missing(name: &str) -> Change {
    if_missing(crate::plan::Resource::Volume, name)
}

fn if_missing(resource: crate::plan::Resource, name: &str) -> Change {
    Change {
        now: None,
        part: None,
        op: crate::plan::Op::Create,
        resource,
        place: crate::plan::Place::Target,
        name: name.to_string(),
        details: Vec::new(),
        condition: Some("if missing".into()),
        undo: "remove it (only if this run created it)".into(),
    }
}

/// The hardening of a container, spelled out for plans.
pub(crate) fn hardening(s: &Security) -> Vec<String> {
    let onoff = |b: bool, what: &str| {
        if b {
            what.to_string()
        } else {
            format!("{what}: OFF (relaxed by the playbook)")
        }
    };
    let caps = if s.cap_add.is_empty() {
        "capabilities: drop ALL".to_string()
    } else {
        format!("capabilities: drop ALL, add {}", s.cap_add.join(", "))
    };
    let tmpfs = if s.tmpfs.is_empty() {
        String::new()
    } else {
        format!(" (tmpfs {})", s.tmpfs.join(", "))
    };
    vec![
        onoff(s.no_new_privileges, "no-new-privileges"),
        caps,
        format!(
            "{}{tmpfs}",
            onoff(s.read_only, "read-only root file system")
        ),
        format!("memory {}, pids {}", s.memory, s.pids),
        format!(
            "restart {}",
            serde_json::to_value(s.restart)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        format!("logs json-file, {} x {}", s.log_max_size, s.log_max_files),
        onoff(s.init, "init as PID 1 (signals reach the app)"),
        "no Docker socket, no host paths mounted".into(),
    ]
}
