//! What the live engines run, for `boyong status`: per target engine, one connection and
//! one listing of every container labelled `boyong.app`, all engines at once; then, only
//! for an app whose container is not in that list (replaced by hand, its labels lost), one
//! lookup by name. Read-only. Each engine has a few seconds; one that does not answer
//! makes its apps' rows say so, and the others are still reported.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use boyong::docker::{Docker, Listed};
use boyong::playbook::{self, DockerEndpoint};

use super::status_scan::Scanned;

/// How long one engine may take to answer status's questions.
const ENGINE_TIME: Duration = Duration::from_secs(5);

/// An app's container now, or why it is not known.
pub type Found = Result<Option<Listed>, String>;

/// The endpoint of `target` (a plan's `target`): a Unix socket as is; a TLS engine with
/// the certificates, or an `ssh://` engine with the key and known_hosts, named by the
/// playbook the run came from.
fn endpoint(target: &str, playbook_path: &str) -> Result<DockerEndpoint, String> {
    if let Some(path) = target.strip_prefix("unix://") {
        return Ok(DockerEndpoint::Unix(PathBuf::from(path)));
    }
    let loaded = playbook::load(std::path::Path::new(playbook_path));
    loaded
        .playbook
        .map(|pb| pb.target.docker.clone())
        .filter(|d| d.to_string() == target)
        .ok_or_else(|| {
            format!("engine {target} not checked: its playbook {playbook_path} no longer names it")
        })
}

async fn list(endpoint: DockerEndpoint) -> Result<(Docker, Vec<Listed>), String> {
    let work = async {
        let engine = Docker::connect(&endpoint)
            .await
            .map_err(|e| e.to_string())?;
        let list = engine
            .boyong_containers()
            .await
            .map_err(|e| e.to_string())?;
        Ok((engine, list))
    };
    tokio::time::timeout(ENGINE_TIME, work)
        .await
        .map_err(|_| format!("the engine {endpoint} did not answer within {ENGINE_TIME:?}"))?
}

/// Each app's container (by the name its plan cuts over to) on its target engine.
pub fn containers(apps: &[Scanned]) -> HashMap<String, Found> {
    let targets = targets(apps.iter().filter(|a| a.container_name.is_some()));
    block_on(async {
        let listed = futures_util::future::join_all(targets.iter().map(|(t, pb)| async move {
            let r = match endpoint(t, pb) {
                Ok(ep) => list(ep).await,
                Err(e) => Err(e),
            };
            ((*t).to_string(), r)
        }))
        .await;
        let by_target: HashMap<String, Result<(Docker, Vec<Listed>), String>> =
            listed.into_iter().collect();
        let lookups = apps.iter().filter_map(|a| {
            let (name, target) = (a.container_name.as_ref()?, a.target.as_ref()?);
            let found = by_target.get(target.as_str())?;
            Some(async move {
                let r = match found {
                    Err(e) => Err(e.clone()),
                    Ok((engine, list)) => match list.iter().find(|c| &c.name == name) {
                        Some(c) => Ok(Some(c.clone())),
                        None => tokio::time::timeout(ENGINE_TIME, engine.listed(name))
                            .await
                            .map_err(|_| "the engine did not answer".to_string())
                            .and_then(|r| r.map_err(|e| e.to_string())),
                    },
                };
                (a.app.clone(), r)
            })
        });
        futures_util::future::join_all(lookups)
            .await
            .into_iter()
            .collect()
    })
}

/// Each target engine of `apps`, with the playbook of one of its apps (for a TLS
/// engine's certificates).
fn targets<'a>(apps: impl Iterator<Item = &'a Scanned>) -> HashMap<&'a str, &'a str> {
    let mut targets = HashMap::new();
    for a in apps {
        if let Some(t) = &a.target {
            targets.entry(t.as_str()).or_insert(a.playbook.as_str());
        }
    }
    targets
}

/// Runs `work` on a runtime of its own; nothing (an empty map) when none can start.
fn block_on<T: Default>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_or_else(|_| T::default(), |rt| rt.block_on(work))
}

/// How long one app's health check may take in `status --check`.
const CHECK_TIME: Duration = Duration::from_secs(5);

/// The health check of each app in `apps` (app, its running container, its check, its
/// engine, its playbook), run once now, all at once: what it showed, or why it failed.
pub fn checks(apps: &[(&Scanned, &str)]) -> HashMap<String, Result<String, String>> {
    // One connection per engine, shared by its apps' checks.
    let targets = targets(apps.iter().map(|(a, _)| *a));
    block_on(async {
        let engines: HashMap<String, Result<Docker, String>> =
            futures_util::future::join_all(targets.iter().map(|(t, pb)| async move {
                let r = match endpoint(t, pb) {
                    Ok(ep) => tokio::time::timeout(ENGINE_TIME, Docker::connect(&ep))
                        .await
                        .map_err(|_| format!("the engine {t} did not answer"))
                        .and_then(|r| r.map_err(|e| e.to_string())),
                    Err(e) => Err(e),
                };
                ((*t).to_string(), r)
            }))
            .await
            .into_iter()
            .collect();
        let runs = apps.iter().filter_map(|(a, container)| {
            let check = a.health.as_ref()?;
            let engine = engines.get(a.target.as_deref()?)?;
            Some(async move {
                // Addresses are reached from the engine's host (through the SSH connection
                // of an `ssh://` engine), as the run's own health gate reached them.
                let r = match (engine, &a.route) {
                    (Err(e), _) => Err(e.clone()),
                    // A routed app is checked as its users reach it: through the proxy.
                    (Ok(engine), Some(route)) => tokio::time::timeout(
                        CHECK_TIME,
                        boyong::steps::check_route(engine, &route.front_http, &route.host, check),
                    )
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {CHECK_TIME:?}"))),
                    (Ok(engine), None) => tokio::time::timeout(
                        CHECK_TIME,
                        boyong::steps::check_health(engine, container, check),
                    )
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {CHECK_TIME:?}"))),
                };
                (a.app.clone(), r)
            })
        });
        futures_util::future::join_all(runs)
            .await
            .into_iter()
            .collect()
    })
}
