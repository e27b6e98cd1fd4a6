//! `build`: re-verify artifacts, then build an image from a deterministic context
//! streamed to the engine.

use super::Described;
use crate::plan::{Change, Op, Place, PlanContext, Resource};
use crate::playbook::{Build, Step};

pub(super) fn describe(step: &Step, b: &Build, ctx: &PlanContext) -> Described {
    let mut reads: Vec<String> = b
        .copy
        .iter()
        .map(|(from, _)| format!("artifacts/{from}/ (manifest re-verified first)"))
        .collect();
    reads.push(format!("base image {} on the target", b.base));
    let mut details = vec![format!("FROM {}", b.base)];
    details.extend(
        b.copy
            .iter()
            .map(|(from, to)| format!("COPY {from} -> {to}")),
    );
    details.extend(b.run.iter().map(|r| format!("RUN {r}")));
    if let Some(w) = &b.workdir {
        details.push(format!("WORKDIR {w}"));
    }
    details.extend(b.env.iter().map(|(k, v)| format!("ENV {k}={v}")));
    if let Some(u) = &b.user {
        details.push(format!("USER {u}"));
    }
    if !b.expose.is_empty() {
        let ports: Vec<String> = b.expose.iter().map(u16::to_string).collect();
        details.push(format!("EXPOSE {}", ports.join(" ")));
    }
    if let Some(c) = &b.cmd {
        details.push(format!(
            "CMD {}",
            serde_json::to_string(c).unwrap_or_default()
        ));
    }
    details.push(format!(
        "LABEL boyong.app={} boyong.run=<run-id> boyong.step={} boyong.source.sha256=<digest known after fetch>",
        ctx.app, step.id
    ));
    Described {
        reads,
        changes: vec![Change {
            op: Op::Create,
            resource: Resource::Image,
            place: Place::Target,
            name: ctx.build_tag(&step.id),
            details,
            condition: None,
            undo: "remove the tag (and the image, if nothing else uses it)".into(),
        }],
    }
}
