//! The live parts of a decommission's preconditions and its connection: whether the
//! migrated app's container serves now (what `boyong status --check` asks), and the SSH
//! session to the vendor host as the playbook reaches it. Read-only.

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

/// For each `deploy` step of `pb`: its container runs on the target and passes its
/// health check once. An app with no `deploy` (retired without a successor) has
/// nothing to check: shown, not blocking.
pub async fn serves(pb: &Playbook) -> Vec<Check> {
    let deploys: Vec<_> = pb
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Deploy(d) => Some(d),
            _ => None,
        })
        .collect();
    if deploys.is_empty() {
        return vec![Check {
            name: "container serves".into(),
            state: "none".into(),
            detail: "the playbook deploys no container (an app retired without a successor): decommissioned from its archive".into(),
        }];
    }
    let engine = match Docker::connect(&pb.target.docker).await {
        Ok(e) => e,
        Err(e) => {
            return vec![Check::new(
                "container serves",
                false,
                format!("the target engine {}: {e}", pb.target.docker),
            )];
        }
    };
    let mut out = Vec::new();
    for d in deploys {
        let check = match engine.container(&d.name).await {
            Ok(Some(c)) if c.running => {
                match crate::steps::check_health(&engine, &d.name, &d.health.check).await {
                    Ok(said) => {
                        Check::new("container serves", true, format!("`{}`: {said}", d.name))
                    }
                    Err(e) => Check::new(
                        "container serves",
                        false,
                        format!("`{}` runs but fails its health check: {e}", d.name),
                    ),
                }
            }
            Ok(Some(_)) => Check::new(
                "container serves",
                false,
                format!("`{}` is not running", d.name),
            ),
            Ok(None) => Check::new(
                "container serves",
                false,
                format!("no container `{}` on the target", d.name),
            ),
            Err(e) => Check::new("container serves", false, format!("`{}`: {e}", d.name)),
        };
        out.push(check);
    }
    out
}
