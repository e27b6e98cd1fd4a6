//! The live parts of a decommission's preconditions and its connection: whether the
//! migrated app's container serves now (what `boyong status --check` asks), and the SSH
//! session to the vendor host as the playbook reaches it. Read-only.

use std::collections::BTreeMap;

use crate::docker::Docker;
use crate::playbook::{Playbook, StepKind};
use crate::ssh::Session;
use crate::steps::Live;

use super::Check;

/// The vendor host, reached as the playbook says (strict host key check).
///
/// # Errors
/// The connection, the host key, or the authentication failed.
pub async fn connect(live: &Live) -> Result<Session, String> {
    let target = live.ssh_target().map_err(|e| e.to_string())?;
    Session::connect(&target).await.map_err(|e| e.to_string())
}

/// For each `deploy` step of `pb`: its app answers its health check once now, as
/// `boyong status --check` asks it: a routed app's through the front proxy (where its
/// deploy, by `steps_done`, journaled the route), a Swarm service's in its running task,
/// another's in its container, which must run. An app with no `deploy` (retired without a
/// successor) has nothing to check: shown, not blocking.
pub async fn serves(
    pb: &Playbook,
    steps_done: Option<&BTreeMap<String, serde_json::Value>>,
) -> Vec<Check> {
    let deploys: Vec<_> = pb
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Deploy(d) => Some((s.id.as_str(), d)),
            _ => None,
        })
        .collect();
    if deploys.is_empty() {
        return vec![Check {
            name: NAME.into(),
            state: "none".into(),
            detail: "the playbook deploys no container (an app retired without a successor): decommissioned from its archive".into(),
        }];
    }
    let engine = match Docker::connect(&pb.target.docker).await {
        Ok(e) => e,
        Err(e) => {
            return vec![Check::new(
                NAME,
                false,
                format!("the target engine {}: {e}", pb.target.docker),
            )];
        }
    };
    let mut out = Vec::new();
    for (step, d) in deploys {
        let route = steps_done
            .and_then(|s| s.get(step))
            .and_then(|f| f.get("route"))
            .and_then(|r| Some((r.get("front_http")?.as_str()?, r.get("host")?.as_str()?)));
        let checked = async {
            match route {
                Some((front_http, host)) => routed(&engine, d, front_http, host).await,
                None => one(&engine, d).await,
            }
        };
        // a proxy or an app that takes the connection and never answers: refused, not a hang
        out.push(
            tokio::time::timeout(CHECK_TIME, checked)
                .await
                .unwrap_or_else(|_| {
                    Check::new(
                        NAME,
                        false,
                        format!("`{}`: no answer within {CHECK_TIME:?}", d.name),
                    )
                }),
        );
    }
    out
}

/// How long one app's check may take.
const CHECK_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// The check of `d`, routed as `host`, through the front proxy at `front_http`.
async fn routed(
    engine: &Docker,
    d: &crate::playbook::Deploy,
    front_http: &str,
    host: &str,
) -> Check {
    match crate::steps::check_route(engine, front_http, host, &d.health.check).await {
        Ok(said) => Check::new(
            NAME,
            true,
            format!("`{}`, routed as {host}: {said}", d.name),
        ),
        Err(e) => Check::new(
            NAME,
            false,
            format!(
                "`{}`, routed as {host}, through the front proxy: {e}",
                d.name
            ),
        ),
    }
}

/// The check's name, as the plan and the certificate show it.
const NAME: &str = "container serves";

/// The health check of `d`'s container, or of its running task's for a Swarm service.
async fn one(engine: &Docker, d: &crate::playbook::Deploy) -> Check {
    let what = if d.service.is_some() {
        format!("service `{}`", d.name)
    } else {
        format!("`{}`", d.name)
    };
    // A Swarm service's containers are its tasks', named otherwise.
    let found = if d.service.is_some() {
        engine
            .task_container(&d.name)
            .await
            .map(|t| t.map(|_| true))
    } else {
        engine
            .container(&d.name)
            .await
            .map(|c| c.map(|c| c.running))
    };
    match found {
        Ok(Some(true)) => {
            match crate::steps::check_health(engine, &d.name, &d.health.check).await {
                Ok(said) => Check::new(NAME, true, format!("{what}: {said}")),
                Err(e) => Check::new(
                    NAME,
                    false,
                    format!("{what} runs but fails its health check: {e}"),
                ),
            }
        }
        Ok(Some(false)) => Check::new(NAME, false, format!("{what} is not running")),
        Ok(None) if d.service.is_some() => Check::new(
            NAME,
            false,
            format!("{what} has no running task on the target"),
        ),
        Ok(None) => Check::new(NAME, false, format!("no container {what} on the target")),
        Err(e) => Check::new(NAME, false, format!("{what}: {e}")),
    }
}
