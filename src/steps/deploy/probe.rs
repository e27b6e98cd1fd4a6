//! The live plan's look at a deploy: its image when not built here, the container it
//! replaces, its network and the host ports it publishes. Inspections and lists, and a
//! port bound and closed at once on this machine.

use crate::plan::{Estimate, PlannedStep, Resource};
use crate::playbook::{DockerEndpoint, ImageSource};
use crate::steps::probe::{
    Findings, StepFound, Target, image_present, network, port_free, proto, short,
};

/// A deploy step: its image when not built here, the container it replaces, its network
/// and the host ports it publishes.
pub(super) async fn deploy(
    t: Option<&Target>,
    endpoint: Option<&DockerEndpoint>,
    step: &PlannedStep,
    spec: &crate::playbook::Deploy,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    sf.estimate = Some(Estimate {
        bytes: None,
        seconds: 2.0,
        basis: format!(
            "create, start, health check (waits at most {}), rename",
            spec.health.timeout
        ),
    });
    let Some(t) = t else { return };
    if let ImageSource::Reference(r) = &spec.image {
        image_present(t, r, Some(&step.id), fx, sf).await;
    }
    let d = spec;
    let id = step.id.as_str();
    let current = t.engine.container(&d.name).await;
    let n = step
        .changes
        .iter()
        .position(|c| c.resource == Resource::Container && c.name == d.name);
    match &current {
        Ok(Some(c)) => {
            let shown = t
                .engine
                .container_image_ref(&d.name)
                .await
                .ok()
                .flatten()
                .map_or_else(String::new, |(r, _)| format!("{r}, "));
            fx.fingerprints.insert(
                format!("target.container.{}", d.name),
                format!("id={} image={}", short(&c.id), c.image),
            );
            if let Some(n) = n {
                sf.now[n] = Some(format!(
                    "`{}` {} ({shown}image {}, container {}): it is replaced, and kept for rollback",
                    d.name,
                    if c.running {
                        "runs"
                    } else {
                        "exists, stopped,"
                    },
                    short(&c.image),
                    short(&c.id)
                ));
            }
        }
        Ok(None) => {
            fx.fingerprints
                .insert(format!("target.container.{}", d.name), "absent".into());
            if let Some(n) = n {
                sf.now[n] = Some(format!("no `{}`: this creates it (+)", d.name));
            }
        }
        Err(e) => fx.problem(
            Some(id),
            format!("cannot inspect container {}: {e}", d.name),
            "check the engine",
        ),
    }
    if let Some(net) = &d.network {
        network(t, step, net, fx, sf).await;
    }
    for p in &d.ports {
        let addr = p
            .address
            .map_or_else(|| "0.0.0.0".to_string(), |a| a.to_string());
        let key = format!("target.port.{addr}:{}", p.host);
        let holder = t.ports.iter().find(|h| {
            h.port == p.host
                && h.protocol == proto(p.proto)
                && (h.ip.is_none()
                    || p.address.is_none()
                    || h.ip.as_deref() == Some(addr.as_str())
                    || h.ip.as_deref().is_some_and(|i| i == "0.0.0.0" || i == "::"))
        });
        match holder {
            Some(h) if h.container == d.name => {
                sf.found.push(format!(
                    "port {addr}:{} held by `{}` (the app's current container; freed at the cut-over)",
                    p.host, h.container
                ));
                fx.fingerprints
                    .insert(key, format!("held by {}", h.container));
            }
            Some(h) => {
                fx.fingerprints
                    .insert(key, format!("held by {}", h.container));
                fx.problem(
                    Some(id),
                    format!(
                        "host port {addr}:{} is held by container `{}`",
                        p.host, h.container
                    ),
                    "choose another host port in `ports`, or stop that container",
                );
            }
            None => {
                let local = matches!(endpoint, Some(DockerEndpoint::Unix(_)));
                let free = !local || port_free(&addr, p.host);
                if free {
                    fx.fingerprints.insert(key, "free".into());
                    sf.found.push(format!("port {addr}:{} free", p.host));
                } else {
                    fx.fingerprints.insert(key, "held by a process".into());
                    fx.problem(
                        Some(id),
                        format!(
                            "host port {addr}:{} is held by a process that is not a container",
                            p.host
                        ),
                        "find it with `ss -ltnp`, stop it or choose another port",
                    );
                }
            }
        }
    }
}

/// A deploy as a Swarm service: the service it updates (its image and replicas now), or
/// none (it is created).
pub(super) async fn service(
    t: Option<&Target>,
    step: &PlannedStep,
    spec: &crate::playbook::Deploy,
    sf: &mut StepFound,
) {
    let Some(t) = t else { return };
    let Some(n) = step
        .changes
        .iter()
        .position(|c| c.resource == Resource::Service && c.name == spec.name)
    else {
        return;
    };
    sf.now[n] = Some(match t.engine.service(&spec.name).await {
        Ok(Some(s)) => format!(
            "service `{}` runs {} ({} replica(s)): update service `{}`: image {} → the new one, start-first",
            spec.name, s.image, s.replicas, spec.name, s.image
        ),
        Ok(None) => format!("no service `{}`: this creates it (+)", spec.name),
        Err(e) => format!("cannot inspect service `{}`: {e}", spec.name),
    });
}
