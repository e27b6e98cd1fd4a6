//! Images made with no container at all, when a build has no `run`: the app's files are
//! one new layer on top of the base's, and the image is handed to the engine as an image
//! archive (what `docker save` writes) through `POST /images/load`, holding only that
//! layer, the image's configuration and its manifest. The engine already has the base's
//! layers (it checks each by its chain id and reads no file for those), checks the new
//! layer's digest against the configuration, and tags the image.
//!
//! Against the helper container and commit ([`super::commit`]) this saves creating a
//! container, writing every file through the container's mounted root (slow on
//! fuse-overlayfs), reading them all back to make the commit's diff, and removing it.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::commit::ImageConfig;
use super::containers::api;
use super::{Docker, DockerError};

/// The one new layer: an uncompressed tar of the app's files, measured by a first pass
/// over the same bytes.
pub struct Layer {
    /// Its length in bytes.
    pub size: u64,
    /// The SHA-256 of those bytes, hex: the layer's diff id.
    pub sha256: String,
    /// What the image's history says made it.
    pub created_by: String,
}

/// A tar header for one member of the image archive.
fn member(name: &str, size: u64) -> Result<[u8; 512], DockerError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .map_err(|e| DockerError::Build(format!("image archive member {name}: {e}")))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(*h.as_bytes())
}

/// Zeros that pad a member of `size` bytes to the tar's 512-byte blocks.
fn padding(size: u64) -> usize {
    usize::try_from((512 - size % 512) % 512).unwrap_or(0)
}

/// A map from a list, as the image configuration writes ports and volumes: `{"k": {}}`.
fn set_of(items: impl IntoIterator<Item = String>) -> Value {
    Value::Object(items.into_iter().map(|k| (k, json!({}))).collect())
}

/// The image's `config`: the base's, with what the playbook gives merged in as a
/// Dockerfile would (env and labels added, ports added, the rest replaced when given).
fn merged(base: bollard::models::ImageConfig, ours: &ImageConfig) -> Value {
    let mut env: Vec<String> = base.env.unwrap_or_default();
    for kv in &ours.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    let labels: BTreeMap<String, String> = base
        .labels
        .unwrap_or_default()
        .into_iter()
        .chain(ours.labels.clone())
        .collect();
    let ports: BTreeSet<String> = base
        .exposed_ports
        .unwrap_or_default()
        .into_iter()
        .chain(ours.expose.iter().cloned())
        .collect();
    let mut c = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            c.insert(k.to_string(), v);
        }
    };
    put("User", ours.user.clone().or(base.user).map(Value::from));
    put("Env", (!env.is_empty()).then(|| json!(env)));
    put("Cmd", ours.cmd.clone().or(base.cmd).map(|v| json!(v)));
    put(
        "Entrypoint",
        ours.entrypoint
            .clone()
            .or(base.entrypoint)
            .map(|v| json!(v)),
    );
    put(
        "WorkingDir",
        ours.workdir.clone().or(base.working_dir).map(Value::from),
    );
    put("ExposedPorts", (!ports.is_empty()).then(|| set_of(ports)));
    put("Volumes", base.volumes.map(set_of));
    put("Labels", (!labels.is_empty()).then(|| json!(labels)));
    put("StopSignal", base.stop_signal.map(Value::from));
    put("Shell", base.shell.map(|v| json!(v)));
    put("OnBuild", base.on_build.map(|v| json!(v)));
    put("ArgsEscaped", base.args_escaped.map(Value::from));
    put(
        "Healthcheck",
        base.healthcheck.and_then(|h| serde_json::to_value(h).ok()),
    );
    Value::Object(c)
}

/// The base's history, oldest first, as the image configuration records it; `None`
/// when its entries with a layer do not match its layers one to one (an empty layer
/// reported with size 0 cannot be told from a metadata step): then one entry a layer.
fn history_of(items: &[bollard::models::ImageHistoryResponseItem], layers: usize) -> Vec<Value> {
    let entries: Vec<Value> = items
        .iter()
        .rev()
        .map(|h| {
            let mut e = Map::new();
            if let Ok(t) = u64::try_from(h.created) {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
                if let Ok(s) = crate::engine::state::utc_rfc3339(at) {
                    e.insert("created".into(), s.into());
                }
            }
            e.insert("created_by".into(), h.created_by.clone().into());
            if !h.comment.is_empty() {
                e.insert("comment".into(), h.comment.clone().into());
            }
            if h.size == 0 {
                e.insert("empty_layer".into(), true.into());
            }
            Value::Object(e)
        })
        .collect();
    let with_layer = entries
        .iter()
        .filter(|e| e.get("empty_layer").is_none())
        .count();
    if with_layer == layers {
        entries
    } else {
        (0..layers)
            .map(|i| json!({ "created_by": format!("layer {} of the base image", i + 1) }))
            .collect()
    }
}

impl Docker {
    /// Makes `tag` from `base` and one new layer (`bytes`, which must be the bytes
    /// `layer` measured), with `config` on top of the base's configuration, through the
    /// engine's image load. Returns the image id.
    ///
    /// # Errors
    /// An API error, or the engine refusing the layer (its digest differs: the files
    /// changed between the two passes).
    pub async fn load_build(
        &self,
        base: &str,
        tag: &str,
        layer: Layer,
        bytes: impl Stream<Item = Bytes> + Send + 'static,
        config: &ImageConfig,
    ) -> Result<String, DockerError> {
        let from = self.docker.inspect_image(base).await.map_err(api)?;
        let mut diff_ids: Vec<String> = from.root_fs.and_then(|r| r.layers).unwrap_or_default();
        let history = self.docker.image_history(base).await.map_err(api)?;
        let mut history = history_of(&history, diff_ids.len());
        let now = crate::engine::state::utc_rfc3339(std::time::SystemTime::now())
            .map_err(|e| DockerError::Build(e.to_string()))?;
        history
            .push(json!({ "created": now, "created_by": layer.created_by, "comment": "boyong" }));
        diff_ids.push(format!("sha256:{}", layer.sha256));
        let mut image = Map::new();
        image.insert(
            "architecture".into(),
            from.architecture.unwrap_or_else(|| "amd64".into()).into(),
        );
        image.insert(
            "os".into(),
            from.os.unwrap_or_else(|| "linux".into()).into(),
        );
        if let Some(v) = from.variant {
            image.insert("variant".into(), v.into());
        }
        image.insert("created".into(), now.into());
        image.insert(
            "config".into(),
            merged(from.config.unwrap_or_default(), config),
        );
        image.insert(
            "rootfs".into(),
            json!({ "type": "layers", "diff_ids": diff_ids }),
        );
        image.insert("history".into(), history.into());
        let config_json = serde_json::to_vec(&Value::Object(image))
            .map_err(|e| DockerError::Build(e.to_string()))?;
        let id = crate::digest::hex(&Sha256::digest(&config_json));
        // The base's layers are named but absent: the engine finds each by its chain id.
        let mut layer_names: Vec<String> = (0..diff_ids.len() - 1)
            .map(|i| format!("base{i}/layer.tar"))
            .collect();
        layer_names.push("app/layer.tar".into());
        let manifest = serde_json::to_vec(&json!([{
            "Config": format!("{id}.json"),
            "RepoTags": [tag],
            "Layers": layer_names,
        }]))
        .map_err(|e| DockerError::Build(e.to_string()))?;
        let mut head = Vec::with_capacity(4096 + config_json.len() + manifest.len());
        for (name, data) in [
            ("manifest.json", &manifest),
            (&*format!("{id}.json"), &config_json),
        ] {
            head.extend_from_slice(&member(name, data.len() as u64)?);
            head.extend_from_slice(data);
            head.resize(head.len() + padding(data.len() as u64), 0);
        }
        head.extend_from_slice(&member("app/layer.tar", layer.size)?);
        let mut tail = vec![0u8; padding(layer.size)];
        tail.resize(tail.len() + 1024, 0);
        let archive = futures_util::stream::once(async move { Bytes::from(head) })
            .chain(bytes)
            .chain(futures_util::stream::once(async move { Bytes::from(tail) }));
        // A big tree takes long: no request time limit for the transfer itself.
        let docker = self
            .docker
            .clone()
            .with_timeout(std::time::Duration::from_secs(7 * 24 * 3600));
        // A change of the engine's (an image tagged): carried to its end even if the step
        // is dropped meanwhile, and awaited by any undo (`Docker::change`), so that an image
        // the engine was still loading cannot appear after the undo looked for it.
        self.change(format!("load image {tag}"), move |_| async move {
            let mut answers = docker.import_image(
                bollard::query_parameters::ImportImageOptionsBuilder::new()
                    .quiet(true)
                    .build(),
                bollard::body_stream(archive),
                None,
            );
            while let Some(answer) = answers.next().await {
                answer.map_err(|e| DockerError::Build(format!("loading the image: {e}")))?;
            }
            Ok(())
        })
        .await?;
        let made = self.docker.inspect_image(tag).await.map_err(api)?;
        let want = format!("sha256:{id}");
        if made.id.as_deref() != Some(want.as_str()) {
            return Err(DockerError::Build(format!(
                "the engine tagged {tag} as {} after loading {want}",
                made.id.unwrap_or_default()
            )));
        }
        Ok(want)
    }

    /// Whether the engine loads an image archive that names layers it already has
    /// without their files (Docker's does; Podman's compatible API wants every layer).
    pub fn loads_partial_archives(&self) -> bool {
        !self.podman
    }
}

#[cfg(test)]
mod tests {
    use super::{history_of, merged, padding};
    use crate::docker::ImageConfig;

    #[test]
    fn the_config_merges_as_a_dockerfile_would() {
        let base = bollard::models::ImageConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            labels: Some([("base".to_string(), "x".to_string())].into()),
            exposed_ports: Some(vec!["80/tcp".into()]),
            entrypoint: Some(vec!["/init".into()]),
            cmd: Some(vec!["old".into()]),
            user: Some("root".into()),
            ..Default::default()
        };
        let ours = ImageConfig {
            labels: [("boyong.app".to_string(), "a".to_string())].into(),
            user: Some("33".into()),
            env: vec!["A=2".into()],
            cmd: Some(vec!["new".into()]),
            expose: vec!["8080/tcp".into()],
            workdir: None,
            entrypoint: None,
            run: Vec::new(),
        };
        let c = merged(base, &ours);
        assert_eq!(c["Env"], serde_json::json!(["PATH=/bin", "A=2"]));
        assert_eq!(c["User"], "33");
        assert_eq!(c["Cmd"], serde_json::json!(["new"]));
        assert_eq!(c["Entrypoint"], serde_json::json!(["/init"]));
        assert_eq!(
            c["ExposedPorts"],
            serde_json::json!({"80/tcp": {}, "8080/tcp": {}})
        );
        assert_eq!(
            c["Labels"],
            serde_json::json!({"base": "x", "boyong.app": "a"})
        );
        assert!(c.get("WorkingDir").is_none());
    }

    #[test]
    fn history_keeps_one_entry_with_a_layer_per_layer() {
        let item = |size: i64, by: &str| bollard::models::ImageHistoryResponseItem {
            id: String::new(),
            created: 946_684_800,
            created_by: by.into(),
            tags: Vec::new(),
            size,
            comment: String::new(),
        };
        // Newest first, as the engine answers.
        let h = history_of(&[item(0, "CMD x"), item(5, "ADD y")], 1);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0]["created_by"], "ADD y");
        assert_eq!(h[1]["empty_layer"], true);
        assert_eq!(h[0]["created"], "2000-01-01T00:00:00Z");
        // A layer of size 0 cannot be told from a metadata step: one entry a layer.
        let h = history_of(&[item(0, "RUN true"), item(5, "ADD y")], 2);
        assert_eq!(h.len(), 2);
        assert!(h.iter().all(|e| e.get("empty_layer").is_none()));
    }

    #[test]
    fn members_are_padded_to_blocks() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
