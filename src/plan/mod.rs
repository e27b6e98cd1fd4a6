//! The plan: what a run will read and change, step by step, fully resolved.
//!
//! Owns: [`Plan`] (serialisable; what `boyong plan` prints and what a run executes),
//! [`Change`] (one change on the target or the vendor host, with how it is undone) and
//! [`Plan::offline`], which builds a plan from a validated playbook without touching
//! any host. Secrets appear in a plan only as `***`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::playbook::units::Span;
use crate::playbook::{Playbook, SecretSource, Step, StepKind, VendorAuth};
use crate::steps;

/// The plan format's version.
pub const PLAN_FORMAT: u32 = 1;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Something new is made.
    Create,
    /// Something that exists is replaced (kept for rollback).
    Replace,
    /// Something is removed.
    Remove,
    /// A command runs.
    Run,
}

impl Op {
    /// The mark printed in plans: `+`, `~`, `-`, `!`.
    pub fn mark(self) -> char {
        match self {
            Self::Create => '+',
            Self::Replace => '~',
            Self::Remove => '-',
            Self::Run => '!',
        }
    }
}

/// What a change acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// A file or tree in the run's state directory.
    Artifact,
    /// A command on a host or in a container.
    Command,
    /// An image tag on the target.
    Image,
    /// A container on the target.
    Container,
    /// A network on the target.
    Network,
    /// A volume on the target.
    Volume,
    /// A database's contents.
    Database,
}

impl Resource {
    /// The word printed in plans.
    pub fn word(self) -> &'static str {
        match self {
            Self::Artifact => "artifact",
            Self::Command => "command",
            Self::Image => "image",
            Self::Container => "container",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Database => "database",
        }
    }
}

/// Where a change happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// This machine's state directory.
    Local,
    /// The vendor's host.
    Vendor,
    /// The target engine.
    Target,
}

/// One change a step will make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Create, replace, remove, or run.
    pub op: Op,
    /// What kind of thing.
    pub resource: Resource,
    /// Where.
    pub place: Place,
    /// Its name (placeholders in `<...>` are known only when the run starts).
    pub name: String,
    /// The change's settings, one per line.
    pub details: Vec<String>,
    /// When the change happens only in some cases, e.g. "if missing".
    pub condition: Option<String>,
    /// How rollback undoes it.
    pub undo: String,
    /// What the live plan found in its place now (live plans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
}

/// One step of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    /// 1-based position.
    pub number: usize,
    /// The step's id.
    pub id: String,
    /// The step's kind.
    pub kind: &'static str,
    /// Retries after a failure.
    pub retries: u32,
    /// Time limit.
    pub timeout: Option<Span>,
    /// What it reads.
    pub reads: Vec<String>,
    /// What it changes.
    pub changes: Vec<Change>,
    /// The resolved step, as the run will execute it.
    pub spec: Step,
    /// What the live probes found for this step (live plans only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<String>,
    /// How much the step moves and how long it may take (live plans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

/// A step's expected size and duration, from what the probes saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Bytes the step moves or writes, when known.
    pub bytes: Option<u64>,
    /// Seconds it may take.
    pub seconds: f64,
    /// What the figure rests on.
    pub basis: String,
}

/// Something the live probes found that would make the run fail, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The step it concerns, if one.
    pub step: Option<String>,
    /// What is wrong.
    pub what: String,
    /// What to do about it.
    pub fix: String,
}

/// What the live probes saw: facts, problems, and the fingerprints a saved plan is
/// checked against before it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Probes {
    /// When the probes ran (UTC, RFC 3339).
    pub at: String,
    /// How long they took, in seconds.
    pub seconds: f64,
    /// The vendor host, as found.
    pub vendor: Vec<String>,
    /// The target engine and this machine, as found.
    pub target: Vec<String>,
    /// What would make the run fail.
    pub problems: Vec<Problem>,
    /// What the run depends on, as seen: `what -> state`. A saved plan runs only if a
    /// fresh look finds every one the same.
    pub fingerprints: BTreeMap<String, String>,
    /// Each file system the run writes to, with its free space and the run's estimate: what
    /// the plans of a batch are checked against together.
    pub disk: Vec<DiskUse>,
}

/// One file system a run writes to, as the probes saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskUse {
    /// `state directory` or `engine storage`.
    pub what: String,
    /// The path asked about.
    pub path: String,
    /// Free bytes of its file system, when `df` answered.
    pub free: Option<u64>,
    /// Bytes the run writes there, estimated.
    pub need: u64,
}

/// Counts of changes by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Things made.
    pub create: usize,
    /// Things replaced.
    pub replace: usize,
    /// Things removed.
    pub remove: usize,
    /// Commands run.
    pub run: usize,
}

/// The vendor host as the plan shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VendorView {
    /// `user@host:port`.
    pub address: String,
    /// How boyong logs in.
    pub auth: String,
    /// Which known_hosts file the key is checked against.
    pub known_hosts: String,
}

/// A resolved plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Plan format version.
    pub format: u32,
    /// `offline`: built from the playbook alone, no host was contacted.
    pub mode: &'static str,
    /// The app.
    pub app: String,
    /// Free text.
    pub description: Option<String>,
    /// The playbook's path.
    pub playbook: String,
    /// SHA-256 of the playbook file.
    pub playbook_sha256: String,
    /// The vendor host.
    pub vendor: VendorView,
    /// The target engine.
    pub target: String,
    /// Secrets the run needs: name -> where it comes from (never the value).
    pub secrets: BTreeMap<String, String>,
    /// The steps.
    pub steps: Vec<PlannedStep>,
    /// Counts.
    pub summary: Summary,
    /// What the live probes saw (live plans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<Probes>,
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

/// What the describe functions of step kinds need from the whole playbook.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The app.
    pub app: String,
    /// Image tag of each build step, by step id.
    pub build_tags: BTreeMap<String, String>,
    /// The id of the step before each step, by step id (the first has none).
    pub previous: BTreeMap<String, String>,
}

impl PlanContext {
    /// The tag a build step gives its image.
    pub fn build_tag(&self, step: &str) -> String {
        self.build_tags
            .get(step)
            .cloned()
            .unwrap_or_else(|| format!("boyong/{}-{step}:<run-id>", self.app))
    }
}

impl Plan {
    /// Puts the run's id where the plan says `<run-id>` (names, details, reads), as
    /// the run will use it.
    pub fn for_run(&mut self, run: &str) {
        let put = |t: &mut String| {
            if t.contains("<run-id>") {
                *t = t.replace("<run-id>", run);
            }
        };
        for s in &mut self.steps {
            s.reads.iter_mut().for_each(put);
            for c in &mut s.changes {
                put(&mut c.name);
                c.details.iter_mut().for_each(put);
                put(&mut c.undo);
            }
        }
    }

    /// Builds the plan of a validated playbook without contacting any host.
    pub fn offline(pb: &Playbook) -> Self {
        let mut ctx = PlanContext {
            app: pb.app.clone(),
            build_tags: BTreeMap::new(),
            previous: pb
                .steps
                .windows(2)
                .map(|w| (w[1].id.clone(), w[0].id.clone()))
                .collect(),
        };
        for s in &pb.steps {
            if let StepKind::Build(b) = &s.kind {
                let tag = b
                    .tag
                    .clone()
                    .unwrap_or_else(|| format!("boyong/{}-{}:<run-id>", pb.app, s.id));
                ctx.build_tags.insert(s.id.clone(), tag);
            }
        }
        let steps: Vec<PlannedStep> = pb
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let d = steps::describe(s, &ctx);
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
        Self {
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
        }
    }
}
