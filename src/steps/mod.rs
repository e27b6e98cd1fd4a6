//! Step kinds: one module each, behind one trait ([`Kind`]).
//!
//! Owns: each kind's whole life: what it reads and changes (`describe`: what a plan shows
//! and what a run is held to), what the live plan looks at, read-only (`probe`), how it
//! runs (`execute`) and how a resumed run re-checks it (`still_valid`); the undo of every
//! journaled change ([`undo`](undo/index.html): one exhaustive `match` on
//! [`Undo`](crate::plan::Undo), each action implemented by the kind that makes it); the
//! offline plan ([`plan()`]); and the [`Live`] runner that executes kinds on real hosts.
//!
//! Adding a kind: a file `steps/KIND.rs` with its `impl Kind`, one line in [`kinds!`]
//! (the registry every dispatch below is generated from), and its playbook side
//! (CONTRIBUTING.md): the compiler points at each of those.

/// The end of the vendor-side wrappers of `exec` and `dump`, after the command they start
/// in the background: the wrapper's fd 3 (its stdin, which boyong holds open) is watched;
/// when it ends (boyong went away: a time limit, Ctrl-C, a dropped link), the session's
/// process group (sshd gives each session its own) is sent TERM, then KILL 5 s later for
/// what ignored it. Otherwise the wrapper exits with the command's status.
macro_rules! held_on_vendor {
    () => {
        r#"__boyong_cmd=$!
{ while IFS= read -r __boyong_x; do :; done; trap '' TERM; kill -TERM 0; sleep 5; kill -KILL 0; } <&3 >/dev/null 2>&1 &
__boyong_watch=$!
exec 3<&-
wait "$__boyong_cmd"
__boyong_status=$?
kill "$__boyong_watch" 2>/dev/null
exit "$__boyong_status""#
    };
}

mod assess;
mod build;
mod common;
pub(crate) mod db;
mod deploy;
pub mod dockerfile;
pub(crate) mod dump;
mod exec;
mod fetch;
mod keep;
mod live;
mod plan;
mod probe;
mod restore;
mod undo;

use std::future::Future;
use std::path::Path;

use serde_json::Value;

pub use common::{LABEL_APP, LABEL_RUN, LABEL_SOURCE, LABEL_STEP};
pub use deploy::{check_health, check_route};
pub(crate) use dump::query as dump_query;
pub(crate) use fetch::exclude::excluded;
pub use live::{Live, LiveOptions};
pub use plan::plan;
pub use probe::{Pool, human_bytes, probe, shared_disk};

use crate::engine::{StepCx, StepError};
use crate::plan::{Change, PlanContext, PlannedStep};
use crate::playbook::{Step, StepKind};
use probe::ProbeCx;

/// What a step reads and what it changes.
#[derive(Debug, Clone, Default)]
pub struct Described {
    /// What it reads, one line each.
    pub reads: Vec<String>,
    /// What it changes.
    pub changes: Vec<Change>,
}

/// One step kind: everything boyong does with a step of it, from plan to resume.
pub(crate) trait Kind {
    /// The kind's validated settings (its variant of [`StepKind`]).
    type Spec;

    /// What the step reads and changes, from the playbook alone.
    fn describe(step: &Step, spec: &Self::Spec, ctx: &PlanContext) -> Described;

    /// Whether the step needs the vendor connection (the live plan opens it only then).
    fn reads_vendor(_spec: &Self::Spec) -> bool {
        false
    }

    /// What the live plan finds for the step now; read-only on every host.
    fn probe(
        p: &mut ProbeCx<'_>,
        step: &PlannedStep,
        spec: &Self::Spec,
    ) -> impl Future<Output = ()>;

    /// Runs the step: each change journaled ([`StepCx::intent`]) before it is made, and
    /// its `done` after. Returns the step's facts.
    fn execute(
        live: &Live,
        step: &PlannedStep,
        spec: &Self::Spec,
        cx: &mut StepCx<'_>,
    ) -> impl Future<Output = Result<Value, StepError>>;

    /// On resume: whether what the step made earlier (its facts) still holds.
    fn still_valid(
        _live: &Live,
        _step: &PlannedStep,
        _facts: &Value,
        _artifacts: &Path,
    ) -> impl Future<Output = Result<(), String>> {
        async { Ok(()) }
    }
}

/// The registry: each [`StepKind`] variant and the module that implements it. Every
/// dispatch on a step's kind is this one `match`.
macro_rules! kinds {
    ($kind:expr, $spec:ident, $K:ident => $body:expr) => {
        match $kind {
            StepKind::Fetch($spec) => {
                type $K = fetch::FetchStep;
                $body
            }
            StepKind::Dump($spec) => {
                type $K = dump::DumpStep;
                $body
            }
            StepKind::Exec($spec) => {
                type $K = exec::ExecStep;
                $body
            }
            StepKind::Build($spec) => {
                type $K = build::BuildStep;
                $body
            }
            StepKind::Restore($spec) => {
                type $K = restore::RestoreStep;
                $body
            }
            StepKind::Deploy($spec) => {
                type $K = deploy::DeployStep;
                $body
            }
            StepKind::Assess($spec) => {
                type $K = assess::AssessStep;
                $body
            }
        }
    };
}

/// The key of what decides the bytes of a `fetch` or a `dump` step of `pb`, as
/// `--reuse-artifacts` matches earlier runs' artifacts by it; `None` for other kinds.
pub fn reuse_key(pb: &crate::playbook::Playbook, step: &Step) -> Option<String> {
    let v = &pb.vendor;
    let vendor = format!("{}@{}:{}", v.user, v.host, v.port);
    match &step.kind {
        StepKind::Fetch(f) => Some(fetch::reuse::inputs_of(&vendor, f)),
        StepKind::Dump(d) => Some(dump::reuse::inputs_of(&vendor, d)),
        _ => None,
    }
}

/// Describes a step for the plan.
pub fn describe(step: &Step, ctx: &PlanContext) -> Described {
    kinds!(&step.kind, s, K => K::describe(step, s, ctx))
}

/// Whether a step needs the vendor connection.
fn reads_vendor(step: &PlannedStep) -> bool {
    kinds!(&step.spec.kind, s, K => K::reads_vendor(s))
}

/// Probes one step.
async fn probe_step(p: &mut ProbeCx<'_>, step: &PlannedStep) {
    kinds!(&step.spec.kind, s, K => K::probe(p, step, s).await);
}

/// Executes one step on real hosts.
async fn execute(live: &Live, step: &PlannedStep, cx: &mut StepCx<'_>) -> Result<Value, StepError> {
    kinds!(&step.spec.kind, s, K => K::execute(live, step, s, cx).await)
}

/// Re-checks on resume a step done earlier.
async fn still_valid(
    live: &Live,
    step: &PlannedStep,
    facts: &Value,
    artifacts: &Path,
) -> Result<(), String> {
    kinds!(&step.spec.kind, _s, K => K::still_valid(live, step, facts, artifacts).await)
}
