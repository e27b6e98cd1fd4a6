//! The `assess` step: the playbook's `assess:` section run at this point of a run (after
//! a `deploy`, against the published address; or against the address the step names).
//! It changes nothing, so it journals no change: its facts are the [`Assessment`]
//! (what the journal's `done` record and `boyong report` keep). Failing thresholds fail
//! the step, and with it the run, which then rolls back what it changed. Never retried
//! by default (it is not a vendor read in the sense of `fetch`).

use serde_json::Value;

use super::{Described, Kind, Live};
use crate::assess::Assessment;
use crate::engine::{StepCx, StepError};
use crate::plan::{PlanContext, PlannedStep};
use crate::playbook::{Assess, Step};

use super::probe::ProbeCx;

/// The `assess` kind.
pub(super) struct AssessStep;

impl Kind for AssessStep {
    type Spec = Assess;

    fn describe(_step: &Step, a: &Assess, _ctx: &PlanContext) -> Described {
        let n = a.requests.len();
        Described {
            reads: vec![format!(
                "assessment: {n} request(s) x {} to {} (vendor, at most {}/s) and {} (target)",
                a.repeat, a.vendor_url, a.rate, a.target_url
            )],
            changes: Vec::new(),
        }
    }

    /// Nothing to look at before: the assessment itself is the look.
    async fn probe(_p: &mut ProbeCx<'_>, _step: &PlannedStep, _a: &Assess) {}

    async fn execute(
        _live: &Live,
        _step: &PlannedStep,
        a: &Assess,
        cx: &mut StepCx<'_>,
    ) -> Result<Value, StepError> {
        let result = crate::assess::assess(a, cx.secrets())
            .await
            .map_err(|e| StepError::fatal(e.to_string()))?;
        cx.output(&format!("assessment {}", result.verdict()));
        judged(&result)
    }
}

/// The facts of a passed assessment, or the failure naming each request and figure.
fn judged(result: &Assessment) -> Result<Value, StepError> {
    if result.passed {
        serde_json::to_value(result).map_err(|e| StepError::fatal(e.to_string()))
    } else {
        Err(StepError::fatal(format!(
            "assessment {}: {}",
            result.verdict(),
            result.failures.join("; ")
        )))
    }
}
