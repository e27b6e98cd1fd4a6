//! Typed events of a run or a rollback.
//!
//! Owns: [`Event`], the one stream that the terminal renderer, `--json` and the
//! structured log (`log.jsonl`) all read, and [`EventSink`], how a caller subscribes.
//! Invariant: every text field has passed through the run's [`Redactor`](super::Redactor)
//! before an event is emitted, so no secret value reaches a sink.

use serde::Serialize;
use serde_json::Value;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunResult {
    /// Every step is done.
    Succeeded,
    /// A step failed and the run's changes were left for inspection.
    Failed,
    /// A step failed, or the operator asked, and every change was undone.
    RolledBack,
    /// A rollback undid only part of the changes; the rest are listed.
    RollbackIncomplete,
    /// The operator interrupted the run (Ctrl-C); nothing was undone.
    Interrupted,
}

impl RunResult {
    /// The word used in journals and status.
    pub fn word(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled-back",
            Self::RollbackIncomplete => "rollback-incomplete",
            Self::Interrupted => "interrupted",
        }
    }

    /// The result named by `word`, as written by [`RunResult::word`].
    pub fn from_word(word: &str) -> Option<Self> {
        [
            Self::Succeeded,
            Self::Failed,
            Self::RolledBack,
            Self::RollbackIncomplete,
            Self::Interrupted,
        ]
        .into_iter()
        .find(|r| r.word() == word)
    }
}

/// One thing that happened during a run or a rollback.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A run began (or resumed).
    RunStarted {
        /// The app.
        app: String,
        /// The run id.
        run: String,
        /// Steps in the plan.
        steps: usize,
        /// Whether this continues an earlier, unfinished run.
        resumed: bool,
    },
    /// A step done in an earlier attempt of this run was checked and skipped.
    StepSkipped {
        /// Step id.
        step: String,
        /// Why it was skipped.
        reason: String,
    },
    /// A step began.
    StepStarted {
        /// Step id.
        step: String,
        /// 1-based position.
        number: usize,
        /// Steps in the plan.
        total: usize,
        /// The step's kind.
        kind: String,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// A change is about to be made; its intent and undo are already journaled.
    ChangeStarted {
        /// Step id.
        step: String,
        /// Change id.
        change: String,
        /// One line: what changes.
        summary: String,
    },
    /// A change was made.
    ChangeDone {
        /// Step id.
        step: String,
        /// Change id.
        change: String,
    },
    /// Bytes moved so far by a step.
    Progress {
        /// Step id.
        step: String,
        /// Bytes so far.
        bytes: u64,
        /// Bytes expected, when known.
        total: Option<u64>,
    },
    /// A line of a step's output (a remote command's, a build's).
    Output {
        /// Step id.
        step: String,
        /// The line.
        line: String,
    },
    /// A line of a step's output that a terminal shows only when asked (`--verbose`): a
    /// build's `run` commands' lines, which the step sums up in an `Output` line. Always
    /// in `--json` and the run's log.
    Detail {
        /// Step id.
        step: String,
        /// The line.
        line: String,
    },
    /// A step finished.
    StepDone {
        /// Step id.
        step: String,
        /// Wall time in milliseconds.
        elapsed_ms: u64,
        /// What the step learned (digests, ids).
        facts: Value,
    },
    /// A step attempt failed.
    StepFailed {
        /// Step id.
        step: String,
        /// Why.
        error: String,
        /// Whether another attempt follows.
        will_retry: bool,
    },
    /// A rollback began.
    RollbackStarted {
        /// Changes to undo.
        changes: usize,
        /// Why: `step failed`, `requested`, `before retry`, `before resume`.
        reason: String,
    },
    /// A change is about to be undone; the undo intent is journaled.
    Undoing {
        /// Step id.
        step: String,
        /// Change id.
        change: String,
        /// One line: what is undone.
        summary: String,
    },
    /// A change was undone.
    Undone {
        /// Step id.
        step: String,
        /// Change id.
        change: String,
    },
    /// Undoing a change failed; the rollback stopped there.
    UndoFailed {
        /// Step id.
        step: String,
        /// Change id.
        change: String,
        /// Why.
        error: String,
    },
    /// The executor waits for what a stopped step asked of the world (an image the engine
    /// is still loading) before it undoes anything or journals the run's end; said once,
    /// when the wait is longer than 2 s.
    Waiting {
        /// What is still being made, a few words each (`load image web:1`).
        on: Vec<String>,
    },
    /// The run (or the rollback) ended.
    RunFinished {
        /// How.
        result: RunResult,
    },
}

/// Receives events, in order.
pub trait EventSink {
    /// Called once per event.
    fn emit(&mut self, event: &Event);
}

impl<F: FnMut(&Event)> EventSink for F {
    fn emit(&mut self, event: &Event) {
        self(event);
    }
}
