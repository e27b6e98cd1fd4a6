//! A deploy's Swarm service spec, in the API's own JSON: the task (hardened, its health
//! check a HEALTHCHECK run inside it, secrets as files), replicas and placement, the
//! update and rollback configuration (start-first, `failure_action: rollback`), `dnsrr`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::playbook::{Deploy, HealthCheck, RestartPolicy, Service};

/// Nanoseconds of a duration, as the API takes them.
fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The port of `url`'s authority (`None`: none written).
fn url_port(authority: &str) -> Option<u16> {
    authority.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// The playbook's health check as a Docker HEALTHCHECK run inside each task.
pub(super) fn healthcheck(d: &Deploy) -> Value {
    let h = &d.health;
    let interval = h.interval.0.max(Duration::from_millis(500));
    let retries = (h.timeout.0.as_millis() / interval.as_millis().max(1)).clamp(1, 100);
    let default_port = d.route.as_ref().map_or(80, |r| r.port);
    let test: Vec<String> = match &h.check {
        HealthCheck::Http { url, .. } => {
            let rest = url.strip_prefix("http://").unwrap_or(url);
            let (auth, path) = rest
                .find('/')
                .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
            let port = url_port(auth).unwrap_or(default_port);
            let u = crate::shell::quote(&format!("http://127.0.0.1:{port}{path}"));
            vec![
                "CMD-SHELL".into(),
                format!("wget -q -O /dev/null {u} 2>/dev/null || curl -fsS -o /dev/null {u}"),
            ]
        }
        HealthCheck::Tcp(a) => {
            let port = url_port(a).unwrap_or(default_port);
            vec!["CMD-SHELL".into(), format!("nc -z 127.0.0.1 {port}")]
        }
        HealthCheck::Cmd(c) => std::iter::once("CMD".to_string())
            .chain(c.iter().cloned())
            .collect(),
        HealthCheck::Running => return Value::Null,
    };
    json!({
        "Test": test,
        "Interval": ns(interval),
        "Timeout": ns(interval.max(Duration::from_secs(2))),
        "Retries": retries,
        "StartPeriod": 0,
    })
}

/// The service's spec, in the API's JSON.
pub(super) fn spec(
    d: &Deploy,
    s: &Service,
    image: &str,
    env: &[String],
    secrets: &[super::service::Mounted],
    networks: &[String],
    labels: &HashMap<String, String>,
) -> Value {
    let sec = &d.security;
    let monitor = ns(s.monitor.0);
    let mut mounts: Vec<Value> = d
        .volumes
        .iter()
        .map(|v| json!({"Type": "volume", "Source": v.volume, "Target": v.path, "ReadOnly": v.read_only}))
        .collect();
    mounts.extend(
        sec.tmpfs
            .iter()
            .map(|t| json!({"Type": "tmpfs", "Target": t})),
    );
    let mut caps_add = sec.cap_add.clone();
    caps_add.sort();
    let mut container = json!({
        "Image": image,
        "Env": env,
        "Labels": labels,
        "ReadOnly": sec.read_only,
        "Init": sec.init,
        "Mounts": mounts,
        "StopGracePeriod": ns(d.stop_grace.0),
        "CapabilityDrop": ["ALL"],
        "Privileges": {"NoNewPrivileges": sec.no_new_privileges},
        "Secrets": secrets.iter().map(|m| json!({
            "File": {"Name": m.target, "UID": m.uid.to_string(), "GID": m.gid.to_string(), "Mode": m.mode},
            "SecretID": m.id,
            "SecretName": m.name,
        })).collect::<Vec<_>>(),
    });
    if !caps_add.is_empty() {
        container["CapabilityAdd"] = json!(caps_add);
    }
    let hc = healthcheck(d);
    let mut service_labels = labels.clone();
    if !hc.is_null() {
        service_labels.insert(crate::docker::HEALTHCHECK_LABEL.into(), hc.to_string());
        container["HealthCheck"] = hc;
    }
    json!({
        "Name": d.name,
        "Labels": service_labels,
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {"Limits": {
                "MemoryBytes": i64::try_from(sec.memory.0).unwrap_or(i64::MAX),
                "Pids": i64::from(sec.pids),
            }},
            "RestartPolicy": {"Condition": match sec.restart {
                RestartPolicy::No => "none",
                RestartPolicy::OnFailure => "on-failure",
                RestartPolicy::Always | RestartPolicy::UnlessStopped => "any",
            }},
            "Placement": {"Constraints": s.placement},
            "Networks": networks.iter().map(|n| json!({"Target": n})).collect::<Vec<_>>(),
            "LogDriver": {"Name": "json-file", "Options": {
                "max-size": sec.log_max_size.0.to_string(),
                "max-file": sec.log_max_files.to_string(),
            }},
        },
        "Mode": {"Replicated": {"Replicas": s.replicas}},
        "UpdateConfig": {"Parallelism": 1, "Delay": 0, "FailureAction": "rollback",
            "Monitor": monitor, "MaxFailureRatio": 0.0, "Order": "start-first"},
        "RollbackConfig": {"Parallelism": 1, "Delay": 0, "FailureAction": "pause",
            "Monitor": monitor, "MaxFailureRatio": 0.0, "Order": "start-first"},
        "EndpointSpec": {"Mode": "dnsrr"},
    })
}
