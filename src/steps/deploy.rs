//! `deploy`: the health-gated cut-over to a new container; the old one is kept, stopped,
//! for rollback.

use super::{Described, hardening, network_if_missing, volume_if_missing};
use crate::plan::{Change, Op, Place, PlanContext, Resource};
use crate::playbook::{Deploy, HealthCheck, ImageSource};

pub(super) fn describe(d: &Deploy, ctx: &PlanContext) -> Described {
    let image = match &d.image {
        ImageSource::Build(step) => format!("{} (built by step `{step}`)", ctx.build_tag(step)),
        ImageSource::Reference(r) => r.clone(),
    };
    let mut changes = Vec::new();
    if let Some(n) = &d.network {
        changes.push(network_if_missing(n));
    }
    for v in &d.volumes {
        changes.push(volume_if_missing(&v.volume));
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
        HealthCheck::Http { url, expect_status } => {
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
    changes.push(Change {
        now: None,
        op: Op::Create,
        resource: Resource::Container,
        place: Place::Target,
        name: format!("{}.next-<run-id>", d.name),
        details,
        condition: None,
        undo: "stop and remove it".into(),
    });
    changes.push(Change {
        now: None,
        op: Op::Replace,
        resource: Resource::Container,
        place: Place::Target,
        name: d.name.clone(),
        details: vec![
            format!("cut-over: the current `{}`, if any, is stopped and renamed `{}.prev-<run-id>`; the new one takes the name once healthy", d.name, d.name),
            format!("unhealthy: the new one is removed and the current one started again"),
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
