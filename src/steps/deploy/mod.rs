//! `deploy`: the health-gated cut-over to a new container; the old one is kept, stopped,
//! for rollback. `cutover.rs` makes the switch, `health.rs` is its gate, `probe.rs` what
//! the live plan looks at.

mod cutover;
mod evidence;
mod files;
mod health;
mod probe;
mod route;
mod route_probe;
mod service;
mod service_plan;
mod service_spec;
mod waiting;

pub use route::check_route;
pub(crate) use route::undo_route;
pub(crate) use service::{Settled, settle, undo_overlay, undo_update};
pub(crate) use service_plan::{secret_name, service_hardening};

use serde_json::Value;

pub use health::check_health;

use super::common::{hardening, network_if_missing, volume_if_missing};
use super::live::Live;
use super::probe::ProbeCx;
use super::{Described, Kind};
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, Place, PlanContext, PlannedStep, Resource};
use crate::playbook::{Deploy, HealthCheck, ImageSource, Step};

/// The `deploy` kind.
pub(crate) struct DeployStep;

impl Kind for DeployStep {
    type Spec = Deploy;

    fn describe(step: &Step, spec: &Deploy, ctx: &PlanContext) -> Described {
        describe(&step.id, spec, ctx)
    }

    async fn probe(p: &mut ProbeCx<'_>, step: &PlannedStep, spec: &Deploy) {
        if spec.service.is_some() {
            probe::service(p.target, step, spec, p.sf).await;
            if let Some(route) = &spec.route {
                route_probe::probe(p, &step.id, route).await;
            }
            return;
        }
        probe::deploy(p.target, p.endpoint, step, spec, p.fx, p.sf).await;
        if let Some(route) = &spec.route {
            route_probe::probe(p, &step.id, route).await;
        }
    }

    async fn execute(
        live: &Live,
        step: &PlannedStep,
        spec: &Deploy,
        cx: &mut StepCx<'_>,
    ) -> Result<Value, StepError> {
        if let Some(s) = &spec.service {
            return service::execute(live, step, spec, s, cx).await;
        }
        cutover::execute(live, step, spec, cx).await
    }
}

fn describe(id: &str, d: &Deploy, ctx: &PlanContext) -> Described {
    if let Some(s) = &d.service {
        return service_plan::describe(d, s, ctx);
    }
    let image = match &d.image {
        ImageSource::Build(step) => format!("{} (built by step `{step}`)", ctx.build_tag(step)),
        ImageSource::Reference(r) => r.clone(),
    };
    let mut changes = Vec::new();
    if let Some(n) = &d.network {
        changes.push(network_if_missing(n));
    }
    for v in &d.volumes {
        let mut c = volume_if_missing(&v.volume);
        c.undo = format!(
            "remove it (only if this run created it), its contents first copied into rollback/{}.{}.tar (unless `rollback --discard-data`)",
            id, v.volume
        );
        changes.push(c);
    }
    let mut details = vec![format!("image {image}")];
    details.extend(d.ports.iter().map(|p| format!("port {p}")));
    details.extend(d.env.iter().map(|(k, v)| format!("env {k}={v}")));
    details.extend(d.volumes.iter().map(|v| {
        format!(
            "volume {}:{}{}",
            v.volume,
            v.path,
            if v.read_only { " (read-only)" } else { "" }
        )
    }));
    details.extend(hardening(&d.security));
    let h = &d.health;
    details.push(match &h.check {
        HealthCheck::Http {
            url, expect_status, ..
        } => {
            format!(
                "health: GET {url} answers {expect_status} within {} (every {})",
                h.timeout, h.interval
            )
        }
        HealthCheck::Tcp(a) => format!(
            "health: {a} accepts TCP within {} (every {})",
            h.timeout, h.interval
        ),
        HealthCheck::Cmd(c) => format!(
            "health: `{}` exits 0 within {} (every {})",
            c.join(" "),
            h.timeout,
            h.interval
        ),
        HealthCheck::Running => format!(
            "health: none given; the container must keep running for {}",
            h.interval
        ),
    });
    if let Some(r) = &d.route {
        details.push(format!(
            "route: {}{} to port {} of the new one, through the front proxy `{}`",
            r.host,
            match (&r.tls, r.redirect_http) {
                (Some(_), true) => " (HTTPS; HTTP redirected)",
                (Some(_), false) => " (HTTP and HTTPS)",
                (None, _) => " (HTTP)",
            },
            r.port,
            ctx.front.name
        ));
        if r.assess {
            details.push("assessed before the switch: the playbook's `assess:` section against the new one's own address; failing thresholds remove it and leave the route".into());
        }
    }
    changes.extend(files::change(d));
    changes.push(Change {
        now: None,
        part: None,
        op: Op::Create,
        resource: Resource::Container,
        place: Place::Target,
        name: format!("{}.next-<run-id>", d.name),
        details,
        condition: None,
        undo: "stop and remove it".into(),
    });
    if let Some(r) = &d.route {
        let f = &ctx.front;
        changes.push(Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Container,
            place: Place::Target,
            name: f.name.clone(),
            details: vec![
                format!("the engine's front proxy: nginx from {}, HTTP on {}:{}, HTTPS on {}:{}", f.image, f.http.0, f.http.1, f.https.0, f.https.1),
                format!("its network `{}` and config volume `{}`; non-root, read-only root, no capabilities", f.network(), f.volume()),
                format!("shared by every routed app of this engine; this app's route: {}", r.host),
            ],
            condition: Some("if missing".into()),
            undo: "removed (with its network and volume) unless it routes another app by then".into(),
        });
        changes.push(Change {
            now: None,
            part: None,
            op: Op::Replace,
            resource: Resource::Container,
            place: Place::Target,
            name: d.name.clone(),
            details: vec![
                format!("cut-over: the new one healthy at its own address, the route of {} switched to it (nginx -t, then a graceful reload: no connection dropped), the current `{}` drains for {}, then is stopped and renamed `{}.prev-<run-id>`", r.host, d.name, r.drain, d.name),
                format!("unhealthy: its last log lines and health answer are kept in the run's health/ directory; the new one is removed (with --no-auto-rollback: stopped and kept as `{}.failed-<run-id>`, which rollback removes); the route never moved", d.name),
                format!("previous releases kept: {}", d.keep),
            ],
            condition: None,
            undo: format!("start the previous `{}`, switch the route back once it answers, then remove the new one", d.name),
        });
        return Described {
            reads: Vec::new(),
            changes,
        };
    }
    changes.push(Change {
        now: None,
        part: None,
        op: Op::Replace,
        resource: Resource::Container,
        place: Place::Target,
        name: d.name.clone(),
        details: vec![
            format!("cut-over: the current `{}`, if any, is stopped with a grace of {} and renamed `{}.prev-<run-id>`; the new one takes the name once healthy", d.name, d.stop_grace, d.name),
            "unhealthy: its last log lines and health answer are kept in the run's health/ directory; the new one is removed (with --no-auto-rollback: stopped and kept as `NAME.failed-<run-id>`, which rollback removes) and the current one, if stopped, started again".replace("NAME", &d.name),
            format!("previous releases kept: {}", d.keep),
        ],
        condition: None,
        undo: format!("put the previous container back as `{}`, started", d.name),
    });
    Described {
        reads: Vec::new(),
        changes,
    }
}
