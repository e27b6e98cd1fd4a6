//! The plan: what a run will read and change, step by step, fully resolved.
//!
//! Owns: [`Plan`] (serialisable; what `boyong plan` prints and what a run executes),
//! [`Change`] (one change on the target or the vendor host, with how it is undone) and
//! [`Undo`] (how a journaled change is undone). Data only: `steps::plan` builds a plan
//! from a validated playbook without touching any host. A plan is a round-trippable
//! contract: what `plan --json`, `plan --out` and a run's `plan.json` write,
//! [`Plan::read`] reads back, typed. Secrets appear in a plan only as `***` (a plan read
//! back is for reading and comparing; a run resolves its playbook again).

mod diff;
mod stale;
mod undo;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

pub use diff::{StepChange, StepDiff, StepLine, secret_paths};
pub use undo::Undo;

use crate::playbook::units::Span;
use crate::playbook::{HealthCheck, STEP_KINDS, Step, StepKind};

/// The plan format's version.
pub const PLAN_FORMAT: u32 = 1;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A Docker Swarm service.
    Service,
    /// A Docker Swarm secret.
    Secret,
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
            Self::Service => "service",
            Self::Secret => "secret",
        }
    }
}

/// Where a change happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default)]
    pub details: Vec<String>,
    /// When the change happens only in some cases, e.g. "if missing".
    #[serde(default)]
    pub condition: Option<String>,
    /// How rollback undoes it.
    pub undo: String,
    /// What the live plan found in its place now (live plans only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// When a step makes this change in several journaled parts: what this part does
    /// (e.g. "rename `web.next` to `web`"); `None` in plans and for a change made whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

impl Change {
    /// One line, as plans and journals show it: `+ container web (target)`.
    pub fn summary(&self) -> String {
        format!(
            "{} {} {} ({})",
            self.op.mark(),
            self.resource.word(),
            self.name,
            serde_json::to_value(self.place)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )
    }
}

/// One step of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedStep {
    /// 1-based position.
    pub number: usize,
    /// The step's id.
    pub id: String,
    /// The step's kind.
    #[serde(deserialize_with = "kind_name")]
    pub kind: Word,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<String>,
    /// How much the step moves and how long it may take (live plans only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

/// A step's expected size and duration, from what the probes saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Bytes the step moves or writes, when known.
    pub bytes: Option<u64>,
    /// Seconds it may take.
    pub seconds: f64,
    /// What the figure rests on.
    pub basis: String,
}

/// Something the live probes found that would make the run fail, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VendorView {
    /// `user@host:port`.
    pub address: String,
    /// How boyong logs in.
    pub auth: String,
    /// Which known_hosts file the key is checked against.
    pub known_hosts: String,
}

/// A resolved plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Plan format version.
    pub format: u32,
    /// `offline`: built from the playbook alone, no host was contacted; `live`: probed.
    #[serde(deserialize_with = "mode_name")]
    pub mode: Word,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Probes>,
    /// The run this plan is bound to ([`Plan::for_run`]); none in a plan not yet run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunBinding>,
}

/// What binds a plan to one run: its id, and what the id decides (image tags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunBinding {
    /// The run's id.
    pub id: String,
    /// The tag each build step gives its image in this run, by step id.
    pub images: BTreeMap<String, String>,
}

/// One of a fixed set of words (a step's kind, a plan's mode), read back as that word.
/// (An alias, not `&'static str` written out, so that serde does not take it for a
/// string borrowed from the input.)
pub type Word = &'static str;

/// The word a plan was made in, read back as one of the words a plan can have.
fn one_of<'de, D: Deserializer<'de>>(
    d: D,
    words: &[&'static str],
    what: &str,
) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    words
        .iter()
        .find(|w| **w == s)
        .copied()
        .ok_or_else(|| serde::de::Error::custom(format!("unknown {what} `{s}`")))
}

fn kind_name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    one_of(d, &STEP_KINDS, "step kind")
}

fn mode_name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    one_of(d, &["offline", "live"], "plan mode")
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
    /// The target engine's front proxy (for routed deploys).
    pub front: crate::playbook::Front,
}

impl PlanContext {
    /// The tag a build step gives its image.
    pub fn build_tag(&self, step: &str) -> String {
        self.build_tags
            .get(step)
            .cloned()
            .unwrap_or_else(|| default_tag(&self.app, step, "<run-id>"))
    }
}

impl Plan {
    /// Reads a plan back from its JSON (`plan --json`, `plan --out`, a run's `plan.json`).
    ///
    /// # Errors
    /// Not a plan of this format: what is wrong.
    pub fn read(json: &str) -> Result<Self, String> {
        let plan: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if plan.format != PLAN_FORMAT {
            return Err(format!(
                "plan format {} (this boyong reads format {PLAN_FORMAT})",
                plan.format
            ));
        }
        Ok(plan)
    }

    /// Binds the plan to the run `run`: every `<run-id>` (names, details, reads, undo
    /// texts) becomes the id, and each build step's image tag is fixed, once, as the run
    /// will use them.
    pub fn for_run(&mut self, run: &str) {
        let put = |t: &mut String| {
            if t.contains("<run-id>") {
                *t = t.replace("<run-id>", run);
            }
        };
        let mut images = BTreeMap::new();
        for s in &mut self.steps {
            s.reads.iter_mut().for_each(put);
            for c in &mut s.changes {
                put(&mut c.name);
                c.details.iter_mut().for_each(put);
                put(&mut c.undo);
            }
            if let crate::playbook::StepKind::Build(b) = &s.spec.kind {
                let tag = b
                    .tag
                    .clone()
                    .unwrap_or_else(|| default_tag(&self.app, &s.id, run));
                images.insert(s.id.clone(), tag);
            }
        }
        self.run = Some(RunBinding {
            id: run.to_string(),
            images,
        });
    }

    /// The deploy step's id and the name of the container it cuts over to.
    pub fn deployed(&self) -> Option<(&str, &str)> {
        self.steps.iter().find_map(|s| match &s.spec.kind {
            StepKind::Deploy(d) => Some((s.id.as_str(), d.name.as_str())),
            _ => None,
        })
    }

    /// The health check of the deploy step `step`.
    pub fn health(&self, step: &str) -> Option<&HealthCheck> {
        self.steps
            .iter()
            .find(|s| s.id == step)
            .and_then(|s| match &s.spec.kind {
                StepKind::Deploy(d) => Some(&d.health.check),
                _ => None,
            })
    }

    /// The run this plan is bound to, or `""` before [`Plan::for_run`].
    pub fn run_id(&self) -> &str {
        self.run.as_ref().map_or("", |r| r.id.as_str())
    }
}

/// The tag a build step without `tag` gives its image: `boyong/APP-STEP:RUN`.
pub fn default_tag(app: &str, step: &str, run: &str) -> String {
    format!("boyong/{app}-{step}:{run}")
}
