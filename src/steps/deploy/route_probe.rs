//! The live plan's look at a routed deploy: the front proxy's image, the proxy itself
//! (serving, and the apps it routes) or, when it is to be made, its host ports; and
//! whether another app already routes the same host name. Inspections, one `ls` and
//! reads of route files in the proxy, and a port bound and closed at once on this machine.

use crate::front::{FrontProxy, route_file};
use crate::playbook::{DockerEndpoint, Front, Route};
use crate::steps::probe::{Findings, ProbeCx, StepFound, Target, image_present, port_free};

/// A routed deploy's proxy and host name.
pub(super) async fn probe(p: &mut ProbeCx<'_>, id: &str, route: &Route) {
    let Some(t) = p.target else { return };
    let (front, app) = (p.live.front(), p.live.app().to_string());
    let (endpoint, fx, sf) = (p.endpoint, &mut *p.fx, &mut *p.sf);
    found(t, endpoint, id, &app, route, &front, fx, sf).await;
}

#[expect(
    clippy::too_many_arguments,
    reason = "the probe's parts, borrowed apart"
)]
async fn found(
    t: &Target,
    endpoint: Option<&DockerEndpoint>,
    id: &str,
    app: &str,
    route: &Route,
    front: &Front,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    image_present(t, &front.image, Some(id), fx, sf).await;
    let proxy = FrontProxy::new(&t.engine, front);
    match proxy.running().await {
        Ok(Some(true)) => {
            let routes = proxy.routes().await.unwrap_or_default();
            fx.fingerprints.insert(
                format!("target.front.{}", front.name),
                format!("running, routes {}", routes.join(",")),
            );
            sf.found.push(format!(
                "front proxy `{}` runs and routes {} app(s){}",
                front.name,
                routes.len(),
                if routes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", routes.join(", "))
                }
            ));
            for other in routes.iter().filter(|a| a.as_str() != app) {
                let text = proxy
                    .read(&route_file(other))
                    .await
                    .ok()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                if text.contains(&format!("server_name {};", route.host)) {
                    fx.problem(
                        Some(id),
                        format!(
                            "host {} is routed already, to the app `{other}` on front proxy `{}`",
                            route.host, front.name
                        ),
                        "give this app its own host name in `route.host`, or roll the other app back first",
                    );
                }
            }
        }
        Ok(Some(false)) => {
            fx.fingerprints
                .insert(format!("target.front.{}", front.name), "stopped".into());
            sf.found.push(format!(
                "front proxy `{}` exists, stopped: the deploy starts it",
                front.name
            ));
        }
        Ok(None) => {
            fx.fingerprints
                .insert(format!("target.front.{}", front.name), "absent".into());
            let local = matches!(endpoint, Some(DockerEndpoint::Unix(_)));
            for (addr, port) in [&front.http, &front.https] {
                let held = t.ports.iter().find(|h| h.port == *port);
                if let Some(h) = held {
                    fx.problem(
                        Some(id),
                        format!(
                            "the front proxy `{}` is to listen on {addr}:{port}, which container `{}` holds",
                            front.name, h.container
                        ),
                        "free the port, or set `target.front.http`/`https` to free ones",
                    );
                } else if local && !port_free(addr, *port) {
                    fx.problem(
                        Some(id),
                        format!(
                            "the front proxy `{}` is to listen on {addr}:{port}, which a process holds",
                            front.name
                        ),
                        "find it with `ss -ltnp`, stop it (a web server the apps move behind), or set `target.front.http`/`https`",
                    );
                } else {
                    sf.found
                        .push(format!("port {addr}:{port} free for the front proxy"));
                }
            }
        }
        Err(e) => fx.problem(
            Some(id),
            format!("cannot inspect the front proxy `{}`: {e}", front.name),
            "check the engine",
        ),
    }
}
