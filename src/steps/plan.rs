//! The offline plan: a validated playbook made into a [`Plan`] by each kind's `describe`,
//! without contacting any host (what `plan --offline` shows and what a run executes).

use std::collections::BTreeMap;

use crate::plan::{
    Op, PLAN_FORMAT, Plan, PlanContext, PlannedStep, Resource, Summary, VendorView, default_tag,
};
use crate::playbook::{Playbook, SecretSource, StepKind, VendorAuth};

/// Builds the plan of a validated playbook without contacting any host.
pub fn plan(pb: &Playbook) -> Plan {
    let mut ctx = PlanContext {
        app: pb.app.clone(),
        build_tags: BTreeMap::new(),
        previous: pb
            .steps
            .windows(2)
            .map(|w| (w[1].id.clone(), w[0].id.clone()))
            .collect(),
        front: pb.target.front.clone(),
    };
    for s in &pb.steps {
        if let StepKind::Build(b) = &s.kind {
            let tag = b
                .tag
                .clone()
                .unwrap_or_else(|| default_tag(&pb.app, &s.id, "<run-id>"));
            ctx.build_tags.insert(s.id.clone(), tag);
        }
    }
    let steps: Vec<PlannedStep> = pb
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = super::describe(s, &ctx);
            PlannedStep {
                number: i + 1,
                id: s.id.clone(),
                kind: s.kind.name(),
                retries: s.retries,
                timeout: s.timeout,
                reads: d.reads,
                changes: d.changes,
                spec: s.clone(),
                found: Vec::new(),
                estimate: None,
            }
        })
        .collect();
    let mut steps = steps;
    drop_repeated_creates(&mut steps);
    let mut summary = Summary::default();
    for c in steps.iter().flat_map(|s| &s.changes) {
        match c.op {
            Op::Create => summary.create += 1,
            Op::Replace => summary.replace += 1,
            Op::Remove => summary.remove += 1,
            Op::Run => summary.run += 1,
        }
    }
    let v = &pb.vendor;
    let auth = match &v.auth {
        VendorAuth::Key {
            identity,
            passphrase,
        } => format!(
            "key {}{}",
            identity.display(),
            if passphrase.is_some() {
                " (passphrase: ***)"
            } else {
                ""
            }
        ),
        VendorAuth::Password(_) => "password ***".into(),
    };
    Plan {
        format: PLAN_FORMAT,
        mode: "offline",
        app: pb.app.clone(),
        description: pb.description.clone(),
        playbook: pb.path.display().to_string(),
        playbook_sha256: pb.sha256.clone(),
        vendor: VendorView {
            address: format!("{}@{}:{}", v.user, v.host, v.port),
            auth,
            known_hosts: v.known_hosts.as_ref().map_or_else(
                || "~/.ssh/known_hosts (the operator's)".into(),
                |k| k.display().to_string(),
            ),
        },
        target: pb.target.docker.to_string(),
        secrets: pb
            .secrets
            .iter()
            .map(|(k, d)| {
                let src = match &d.source {
                    SecretSource::Env(e) => format!("env {e}"),
                    SecretSource::File(f) => format!("file {}", f.display()),
                };
                (k.clone(), src)
            })
            .collect(),
        steps,
        summary,
        probes: None,
        run: None,
    }
}

/// A network or volume that an earlier step already creates "if missing" is not
/// listed again: the later step finds it.
fn drop_repeated_creates(steps: &mut [PlannedStep]) {
    let mut seen: Vec<(Resource, String, String)> = Vec::new();
    for s in steps.iter_mut() {
        let id = s.id.clone();
        s.changes.retain(|c| {
            if c.op != Op::Create || !matches!(c.resource, Resource::Network | Resource::Volume) {
                return true;
            }
            if let Some((_, _, by)) = seen
                .iter()
                .find(|(r, n, _)| *r == c.resource && *n == c.name)
            {
                s.reads.push(format!(
                    "{} {} (created by step `{by}` if missing)",
                    c.resource.word(),
                    c.name
                ));
                return false;
            }
            seen.push((c.resource, c.name.clone(), id.clone()));
            true
        });
    }
}
