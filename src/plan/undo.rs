//! The data that undoes a change: journaled with the change's intent, executed by rollback.
//!
//! Owns: [`Undo`], one variant per way a change is undone. It is serde-tagged by `action`
//! with its fields in alphabetical order, so it is written byte for byte as the journals
//! of earlier releases were, and those journals read unchanged. An action this release
//! does not know (a newer release's, or a test world's) reads as [`Undo::Other`] and is
//! refused at rollback by name, never guessed at.
//!
//! Invariant: undo data never holds a secret's value (the journal refuses such an
//! intent); it is executed as written, so it is never redacted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a journaled change is undone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Undo {
    /// Nothing to undo (a command without `undo`).
    None,
    /// Remove an artifact (a fetched tree, a dump) with its partial copies and descriptions.
    RemoveArtifact {
        /// Every path the step may have written, inside the run's `artifacts/`.
        paths: Vec<PathBuf>,
    },
    /// Run the step's `undo` command on the vendor host.
    VendorCommand {
        /// The command.
        run: String,
    },
    /// Run the step's `undo` command inside a container on the target.
    ContainerCommand {
        /// The container.
        container: String,
        /// The command.
        run: String,
    },
    /// Remove an image tag from the target.
    RemoveImage {
        /// The tag.
        tag: String,
    },
    /// Stop and remove a container (safe when it is gone).
    RemoveContainer {
        /// Its name.
        name: String,
    },
    /// Start the container that was stopped, first stopping `stop_first` to free its ports.
    StartContainer {
        /// The old container's id (its name may be half swapped back).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Its name.
        name: String,
        /// The new container, stopped first (empty: none).
        #[serde(default)]
        stop_first: String,
    },
    /// Rename a container back (safe when `from` is gone).
    Rename {
        /// The name it has now.
        from: String,
        /// The name it gets back.
        to: String,
    },
    /// Remove a network this run created.
    RemoveNetwork {
        /// Its name.
        name: String,
    },
    /// Remove a volume this run created.
    RemoveVolume {
        /// Its name.
        name: String,
    },
    /// Put a replaced volume's saved contents back (checked against their SHA-256).
    RestoreVolume {
        /// The helper container's name.
        helper: String,
        /// The image that runs the helper.
        image: String,
        /// The labels the volume is made with.
        labels: BTreeMap<String, String>,
        /// The volume.
        name: String,
        /// The saved contents' SHA-256.
        sha256: String,
        /// The saved contents (`artifacts/ID.volume.tar`).
        snapshot: PathBuf,
    },
    /// Point an app's route on the front proxy back at the release `to` (started by the
    /// undo before this one; its address looked up then, and it must answer first), or,
    /// with no `to`, remove the route; reload; let the release switched from drain.
    Route {
        /// The app (its route file).
        app: String,
        /// How long the release switched from keeps its requests, ms.
        drain_ms: u64,
        /// The front proxy.
        front: crate::playbook::Front,
        /// The route's host name.
        host: String,
        /// The app's port in its container.
        port: u16,
        /// Plain HTTP redirected to HTTPS.
        redirect_http: bool,
        /// Served over HTTPS (its certificate and key are in the proxy already).
        tls: bool,
        /// The container the route goes back to; none: the route is removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Remove the front proxy this run made (container, volume, network), unless it
    /// routes another app by then.
    RemoveFront {
        /// The front proxy.
        front: crate::playbook::Front,
    },
    /// Remove a Swarm service this run created, and wait for its tasks to go (gone is fine).
    RemoveService {
        /// Its name.
        name: String,
    },
    /// Put a Swarm service's previous spec back (an update of the service to it, at the
    /// version it has then), and wait for the update to settle.
    RestoreService {
        /// Its name.
        name: String,
        /// The spec it had before this run's update, as the engine gave it (no secret
        /// values in it: secrets are referenced by name).
        spec: Value,
        /// Its version index before the update (for the record).
        version: u64,
    },
    /// Remove a Swarm secret this run created (gone is fine).
    RemoveSecret {
        /// Its name.
        name: String,
    },
    /// Remove an attachable overlay network this run made, first disconnecting `detach`
    /// (the front proxy), unless another container or service uses it by then.
    RemoveOverlay {
        /// The containers this run connected to it.
        detach: Vec<String>,
        /// Its name.
        name: String,
    },
    /// An action this release does not know: refused at rollback.
    #[serde(untagged)]
    Other(Value),
}

impl Undo {
    /// The undo data as journaled.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The undo data of a journal record.
    pub fn from_value(value: &Value) -> Self {
        Self::deserialize(value).unwrap_or_else(|_| Self::Other(value.clone()))
    }

    /// What will execute, in one line, from the undo data itself (not from the plan's
    /// description of it): the command of a vendor or container command, the names a
    /// container action acts on. Not escaped: the caller escapes what it shows.
    pub fn describe(&self) -> String {
        match self {
            Self::None => "nothing (the change has no undo)".into(),
            Self::RemoveArtifact { paths } => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                format!("delete {}", paths.join(", "))
            }
            Self::VendorCommand { run } => format!("run on the vendor host: {run}"),
            Self::ContainerCommand { container, run } => {
                format!("run in container `{container}` on the target: {run}")
            }
            Self::RemoveImage { tag } => format!("remove image tag {tag}"),
            Self::RemoveContainer { name } => format!("remove container {name}"),
            Self::StartContainer {
                id,
                name,
                stop_first,
            } => {
                let stop = if stop_first.is_empty() {
                    String::new()
                } else {
                    format!("stop container {stop_first}, then ")
                };
                match id {
                    Some(id) => format!("{stop}start container {name} (id {id})"),
                    None => format!("{stop}start container {name}"),
                }
            }
            Self::Rename { from, to } => format!("rename container {from} to {to}"),
            Self::RemoveNetwork { name } => format!("remove network {name}"),
            Self::RemoveVolume { name } => format!("remove volume {name}"),
            Self::RestoreVolume {
                helper,
                image,
                name,
                sha256,
                snapshot,
                ..
            } => format!(
                "restore volume {name} from {} (sha256 {sha256}) with helper container {helper} ({image})",
                snapshot.display()
            ),
            Self::Route {
                app,
                front,
                host,
                to,
                ..
            } => match to {
                Some(c) => format!(
                    "route {host} back to container {c} once it answers (front proxy {}, app {app})",
                    front.name
                ),
                None => format!(
                    "remove the route of {host} from front proxy {} (app {app})",
                    front.name
                ),
            },
            Self::RemoveFront { front } => format!(
                "remove front proxy {} (container, volume {}, network {}) unless it routes another app",
                front.name,
                front.volume(),
                front.network()
            ),
            Self::RemoveService { name } => format!("remove service {name}"),
            Self::RestoreService { name, version, .. } => format!(
                "update service {name} back to its previous spec (version {version} before this run)"
            ),
            Self::RemoveSecret { name } => format!("remove secret {name}"),
            Self::RemoveOverlay { detach, name } => format!(
                "disconnect {} from network {name}, and remove it unless something else uses it",
                detach.join(", ")
            ),
            Self::Other(v) => {
                format!("unknown action {v} (refused: this release does not know it)")
            }
        }
    }

    /// The action's name, as journaled.
    pub fn action(&self) -> String {
        match self.to_value().get("action").and_then(Value::as_str) {
            Some(a) => a.to_string(),
            None => "(none given)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each action is written exactly as the `json!` of earlier releases wrote it, and
    /// read back as itself.
    #[test]
    fn journals_read_unchanged() {
        let old = [
            json!({"action": "none"}),
            json!({"action": "remove-artifact", "paths": ["/s/artifacts/code", "/s/artifacts/code.manifest"]}),
            json!({"action": "vendor-command", "run": "php artisan up"}),
            json!({"action": "container-command", "container": "web", "run": "true"}),
            json!({"action": "remove-image", "tag": "a:b"}),
            json!({"action": "remove-container", "name": "web.next-r"}),
            json!({"action": "start-container", "name": "web", "id": "abc", "stop_first": "web.next-r"}),
            json!({"action": "rename", "from": "web.prev-r", "to": "web"}),
            json!({"action": "remove-network", "name": "n"}),
            json!({"action": "remove-volume", "name": "v"}),
            json!({"action": "restore-volume", "name": "v", "image": "i", "helper": "h",
                   "snapshot": "/s/artifacts/db.volume.tar", "sha256": "00", "labels": {"boyong.app": "a"}}),
            json!({"action": "remove-service", "name": "web"}),
            json!({"action": "restore-service", "name": "web", "spec": {"Name": "web"}, "version": 12}),
            json!({"action": "remove-secret", "name": "web-api-key-r"}),
            json!({"action": "remove-overlay", "detach": ["boyong-front"], "name": "boyong-front-swarm"}),
        ];
        for v in old {
            let u = Undo::from_value(&v);
            assert!(!matches!(u, Undo::Other(_)), "{v} read as unknown");
            assert_eq!(
                serde_json::to_string(&u).unwrap_or_default(),
                serde_json::to_string(&v).unwrap_or_default()
            );
        }
    }

    #[test]
    fn unknown_actions_are_kept_as_they_are() {
        for v in [
            json!({"fake": "remove", "key": "k"}),
            json!({"action": "teleport"}),
            json!({"action": "rename", "from": 3}),
        ] {
            assert_eq!(Undo::from_value(&v), Undo::Other(v.clone()));
            assert_eq!(Undo::from_value(&v).to_value(), v);
        }
        assert_eq!(
            Undo::from_value(&json!({"action": "teleport"})).action(),
            "teleport"
        );
    }
}
