//! `restore` on a Swarm target: the database as a service of one task, pinned with its
//! volume to the node boyong talks to (`node.id == …`: a named volume lives on one
//! node, and the dump is loaded through this engine's exec into the task's container).
//! The server's passwords are Swarm secrets of this run, mounted as files, the image
//! given `NAME_FILE` (never a password in the service's env). Returns the container the
//! load, the checks and the rewrite run in.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::docker::Docker;
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, Place, PlannedStep, Resource, Undo};
use crate::playbook::Restore;
use crate::secret::Secret;
use crate::steps::common::{docker_err, part};
use crate::steps::deploy::{Settled, secret_name, service_hardening, settle};

/// How long the database's task may take to run.
const TASK_WAIT: Duration = Duration::from_secs(180);

/// The plan's changes of the database service (instead of a container).
pub(super) fn changes(r: &Restore, id: &str) -> Vec<Change> {
    let mut details = vec![
        format!("image {}", r.image),
        format!("volume {} (on that node)", r.volume),
        "1 replica, pinned to the node boyong talks to (placement node.id == it), endpoint mode dnsrr".into(),
        format!("password {}: with the server's own, Swarm secrets mounted as files (NAME_FILE), never in the service's env", r.password),
    ];
    details.extend(service_hardening(&super::db_security()));
    vec![
        Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Secret,
            place: Place::Target,
            name: format!("{}: the server's passwords (<run-id>)", r.name),
            details: vec![
                "the database user's and a superuser password made for this restore".into(),
            ],
            condition: None,
            undo: "remove them".into(),
        },
        Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Service,
            place: Place::Target,
            name: r.name.clone(),
            details,
            condition: None,
            undo: format!(
                "remove it, its database first dumped into rollback/{id}.sql.gz (unless `rollback --discard-data`)"
            ),
        },
    ]
}

/// Makes the database service from the server's `env` (`KEY=VALUE`; a `…PASSWORD`
/// becomes a secret) and waits for its task; the task's container.
pub(super) async fn make(
    engine: &Docker,
    step: &PlannedStep,
    r: &Restore,
    env: Vec<String>,
    data_dir: &str,
    labels: &HashMap<String, String>,
    cx: &mut StepCx<'_>,
) -> Result<(String, String), StepError> {
    let node = match engine.swarm_node().await.map_err(docker_err)? {
        Some(n) if n.manager => n.id,
        _ => {
            return Err(StepError::fatal(format!(
                "`target.swarm: true`, but the engine at {} is not a swarm manager: make it one (`docker swarm init`), or point `target.docker` at a manager",
                engine.endpoint()
            )));
        }
    };
    if engine.service(&r.name).await.map_err(docker_err)?.is_some() {
        return Err(StepError::fatal(format!(
            "a service named `{}` exists already on the swarm; restore makes its own: remove that one or choose another `name`",
            r.name
        )));
    }
    let run = cx.run_id().to_string();
    let planned =
        format!("{}: the server's passwords (<run-id>)", r.name).replace("<run-id>", &run);
    let sc = step
        .changes
        .iter()
        .find(|c| c.resource == Resource::Secret && c.name == planned)
        .ok_or_else(|| StepError::fatal("the plan of this restore lists no secrets"))?;
    let mut plain = Vec::new();
    let mut secrets = Vec::new();
    for e in env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if !k.ends_with("PASSWORD") {
            plain.push(e.clone());
            continue;
        }
        let value = Secret::new(v.to_string());
        let name = secret_name(&r.name, k, &run);
        let id = cx.intent(
            &part(sc, &format!("secret `{name}` ({k})")),
            &Undo::RemoveSecret { name: name.clone() },
        )?;
        engine.remove_secret(&name).await.map_err(docker_err)?;
        let sid = engine
            .create_secret(&name, value.expose().as_bytes(), labels)
            .await
            .map_err(docker_err)?;
        cx.done(&id, &json!({"secret": name}))?;
        plain.push(format!("{k}_FILE=/run/secrets/{k}"));
        secrets.push(json!({
            "File": {"Name": k, "UID": "0", "GID": "0", "Mode": 0o444},
            "SecretID": sid,
            "SecretName": name,
        }));
    }
    let s = super::db_security();
    let mut mounts = vec![json!({"Type": "volume", "Source": r.volume, "Target": data_dir})];
    mounts.extend(
        s.tmpfs
            .iter()
            .map(|t| json!({"Type": "tmpfs", "Target": t})),
    );
    let spec: Value = json!({
        "Name": r.name,
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": r.image,
                "Env": plain,
                "Labels": labels,
                "ReadOnly": s.read_only,
                "Init": s.init,
                "Mounts": mounts,
                "CapabilityDrop": ["ALL"],
                "CapabilityAdd": s.cap_add,
                "Privileges": {"NoNewPrivileges": s.no_new_privileges},
                "Secrets": secrets,
                "StopGracePeriod": 30_000_000_000_i64,
            },
            "Resources": {"Limits": {
                "MemoryBytes": i64::try_from(s.memory.0).unwrap_or(i64::MAX),
                "Pids": i64::from(s.pids),
            }},
            "RestartPolicy": {"Condition": "any"},
            "Placement": {"Constraints": [format!("node.id == {node}")]},
            "Networks": r.network.iter().map(|n| json!({"Target": n})).collect::<Vec<_>>(),
            "LogDriver": {"Name": "json-file", "Options": {
                "max-size": s.log_max_size.0.to_string(),
                "max-file": s.log_max_files.to_string(),
            }},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr"},
    });
    let c = step
        .changes
        .iter()
        .find(|c| c.resource == Resource::Service && c.name == r.name)
        .ok_or_else(|| StepError::fatal("the plan of this restore lists no service"))?;
    let id = cx.intent(
        c,
        &Undo::RemoveService {
            name: r.name.clone(),
        },
    )?;
    let sid = engine.create_service(&spec).await.map_err(docker_err)?;
    cx.done(&id, &json!({"service_id": sid, "node": node}))?;
    match settle(engine, &r.name, &r.image, TASK_WAIT).await? {
        Settled::Done => {}
        Settled::RolledBack(why) | Settled::Stuck(why) => {
            return Err(StepError::failed(format!(
                "the database service `{}` did not start: {why}",
                r.name
            )));
        }
    }
    let container = engine
        .task_container(&r.name)
        .await
        .map_err(docker_err)?
        .ok_or_else(|| {
            StepError::failed(format!(
                "the database service `{}` has no running task here",
                r.name
            ))
        })?;
    cx.output(&format!(
        "database service `{}` runs on node {node} (task container {})",
        r.name,
        &container[..container.len().min(12)]
    ));
    let _ = sid;
    Ok((container.clone(), container))
}
