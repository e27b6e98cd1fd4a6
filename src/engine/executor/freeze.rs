//! The freeze window of a cut-over: from the end of the `exec` step marked `freeze`
//! (the vendor app in maintenance: no user writes any more) to each `deploy` after it
//! done (the new app serving). Reported as a journal note (`freeze-window`, in the
//! report) and a line of that deploy's output.

use std::time::Instant;

use crate::plan::PlannedStep;
use crate::playbook::StepKind;

/// Where the run is in its freeze window.
#[derive(Debug, Default)]
pub(super) struct Window {
    from: Option<(String, Instant)>,
}

impl Window {
    /// `step` is done: the line to report, if it ends a window (a deploy after the freeze).
    pub(super) fn done(&mut self, step: &PlannedStep) -> Option<String> {
        match &step.spec.kind {
            StepKind::Exec(e) if e.freeze => {
                self.from = Some((step.id.clone(), Instant::now()));
                None
            }
            StepKind::Deploy(_) => self.from.as_ref().map(|(from, at)| {
                format!(
                    "freeze window: {:.1} s from step `{from}` (the vendor app frozen) to step `{}` (the new app serving)",
                    at.elapsed().as_secs_f64(),
                    step.id
                )
            }),
            _ => None,
        }
    }
}
