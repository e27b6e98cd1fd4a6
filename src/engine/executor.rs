//! The executor: runs a [`Plan`] step by step, journals every change before it is
//! made, and undoes changes newest first.
//!
//! Owns: the order of records in the journal (`step-started`, `intent` → `done` or
//! `failed`, `step-done` or `step-failed`, `undo-intent` → `undone` or `undo-failed`,
//! `run-finished`), retries, time limits, cancellation, automatic rollback and resume.
//! Invariants: a change's intent is durable before the runner is allowed to make it
//! (see [`StepCx::intent`]); a rollback stops at the first undo that fails, since
//! older changes may depend on it, and says what is left; on resume a step done
//! earlier is skipped only if the runner confirms its results still hold, and a step
//! interrupted half-way is first undone, then run again.
//!
//! A step that reads the artifact of the step right before it, as the runner says
//! ([`Runner::streams_from`], e.g. a `restore` from the `dump` before it), runs overlapped
//! with that step when both run fresh: a pipelined pair (`pair`), whose records interleave.

mod attempt;
mod freeze;
mod keeping;
mod pair;

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::event::{Event, EventSink, RunResult};
use super::history::History;
use super::journal::{Journal, JournalError, Record};
use super::keep::{Keep, Kept, keep_list};
use super::redact::Redactor;
use super::runner::{Outlet, Runner, StepError, UndoItem};
use crate::plan::Plan;
use crate::secret::SecretStore;

/// How a run behaves on failure.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Undo this run's changes when a step fails (the default); off leaves them for
    /// inspection (`--no-auto-rollback`).
    pub auto_rollback: bool,
    /// Wait before the first retry of a failed step; doubled for each further one,
    /// at most 60 s.
    pub retry_delay: Duration,
    /// On resume, the first step that runs again even if it is done and still holds
    /// (an edit of the playbook changed it or a step before it: [`OpenedRun::redo_from`]).
    ///
    /// [`OpenedRun::redo_from`]: super::open::OpenedRun::redo_from
    pub redo_from: Option<usize>,
    /// Let `fetch` and `dump` take a verified artifact of an earlier run of the app with
    /// the same inputs, pulled at most this long ago (`--reuse-artifacts`); `None`: pull.
    pub reuse_artifacts: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            auto_rollback: true,
            retry_delay: Duration::from_secs(2),
            redo_from: None,
            reuse_artifacts: None,
        }
    }
}

/// What a rollback did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollbackReport {
    /// Changes undone, in the order they were undone.
    pub undone: Vec<UndoItem>,
    /// The change whose undo failed, and why; the rollback stopped there.
    pub failed: Option<(UndoItem, String)>,
    /// Changes not undone (the failed one first), newest first.
    pub left: Vec<UndoItem>,
    /// The data saved before the first undo ([`Keep`]), each with what it gave.
    pub kept: Vec<(Keep, Kept)>,
    /// Saving the data failed, so nothing was undone: why.
    pub not_kept: Option<String>,
}

impl RollbackReport {
    /// Whether every change was undone.
    pub fn is_complete(&self) -> bool {
        self.failed.is_none() && self.left.is_empty() && self.not_kept.is_none()
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Every step is done.
    Succeeded,
    /// A step failed (after its retries).
    Failed {
        /// The step.
        step: String,
        /// Why.
        error: String,
        /// The automatic rollback, if one ran.
        rollback: Option<Box<RollbackReport>>,
    },
    /// The operator interrupted the run while this step ran.
    Interrupted {
        /// The step in flight.
        step: String,
    },
}

/// Why the executor stopped without an outcome.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal could not be written; nothing more was changed after the last
    /// record that is in it.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// A run in progress: the journal it writes and where its events go.
pub struct Executor<'a, R: Runner> {
    runner: &'a R,
    io: Io<'a>,
    redactor: Redactor,
    secrets: &'a SecretStore,
    artifacts: PathBuf,
    /// The run the plan being run is bound to (set by [`Executor::run`]).
    binding: crate::plan::RunBinding,
    /// `--reuse-artifacts`: how old an earlier run's artifact may be (set by
    /// [`Executor::run`]).
    reuse: Option<Duration>,
    /// `--no-auto-rollback`: a failed step's changes are left for inspection (set by
    /// [`Executor::run`]).
    keep_failed: bool,
    /// The plan's steps (set by [`Executor::run`]): what an undo inside the run saves first
    /// ([`keep_list`]).
    steps: Vec<crate::plan::PlannedStep>,
}

/// The journal and the event sink, shared (by `&`) between the executor and the steps in
/// flight: every borrow is short and never held across an await.
struct Io<'a> {
    journal: RefCell<Journal>,
    sink: RefCell<&'a mut dyn EventSink>,
}

impl Outlet for Io<'_> {
    fn next_seq(&self) -> u64 {
        self.journal.borrow().next_seq()
    }

    fn append(&self, record: &Record) -> Result<u64, JournalError> {
        self.journal.borrow_mut().append(record)
    }

    fn emit(&self, event: &Event) {
        self.sink.borrow_mut().emit(event);
    }
}

enum Attempt {
    Done,
    Failed(String),
    Interrupted,
}

/// An attempt's outcome, journaled.
enum Settled {
    Done,
    /// Failed; a retry is allowed.
    Retry(String),
    /// Failed; no retry.
    Failed(String),
    Interrupted,
}

/// The error of an attempt stopped by the operator.
const INTERRUPTED: &str = "interrupted by the operator";

/// How long the executor waits for the world to settle before it says what it waits for.
const SAY_WAIT_AFTER: Duration = Duration::from_secs(2);

/// What a step attempt's future gives: its result, or why it was cut off.
type AttemptResult = Result<Result<Value, StepError>, Stop>;

impl<'a, R: Runner> Executor<'a, R> {
    /// An executor that appends to `journal`. Secret values in `secrets` are redacted
    /// from everything it writes and emits.
    pub fn new(
        runner: &'a R,
        journal: Journal,
        sink: &'a mut dyn EventSink,
        secrets: &'a SecretStore,
        artifacts: PathBuf,
    ) -> Self {
        Self {
            runner,
            io: Io {
                journal: RefCell::new(journal),
                sink: RefCell::new(sink),
            },
            redactor: Redactor::new(secrets),
            secrets,
            artifacts,
            binding: crate::plan::RunBinding::default(),
            reuse: None,
            keep_failed: false,
            steps: Vec::new(),
        }
    }

    /// The journal, e.g. to read its path or head.
    pub fn journal(&self) -> std::cell::Ref<'_, Journal> {
        self.io.journal.borrow()
    }

    fn journal_path(&self) -> PathBuf {
        self.io.journal.borrow().path().to_path_buf()
    }

    fn emit(&self, e: &Event) {
        self.io.emit(e);
    }

    fn record(&self, r: &Record) -> Result<(), JournalError> {
        self.io.append(r).map(|_| ())
    }

    /// Journals a note (lock broken, torn tail dropped, …).
    ///
    /// # Errors
    /// The journal could not be written.
    pub fn note(&mut self, kind: &str, text: &str) -> Result<(), EngineError> {
        self.note_shared(kind, text)
    }

    fn note_shared(&self, kind: &str, text: &str) -> Result<(), EngineError> {
        let text = self.redactor.text(text);
        Ok(self.record(&Record::Note {
            kind: kind.into(),
            text,
        })?)
    }

    /// Runs `plan`. With `earlier` (the history of this same run, on resume), steps
    /// done and still valid are skipped and a step left half-way is undone first.
    /// Setting `cancel` to true interrupts the step in flight.
    ///
    /// # Errors
    /// The journal could not be written; the run stopped at once.
    pub async fn run(
        &mut self,
        plan: &Plan,
        earlier: Option<&History>,
        opts: RunOptions,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<RunOutcome, EngineError> {
        // A plan not bound by `Plan::for_run` (the engine's own tests) runs as the run
        // whose directory holds the journal.
        self.binding = plan.run.clone().unwrap_or_else(|| crate::plan::RunBinding {
            id: self
                .journal_path()
                .parent()
                .and_then(|p| p.file_name())
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default(),
            images: std::collections::BTreeMap::new(),
        });
        self.reuse = opts.reuse_artifacts;
        self.keep_failed = !opts.auto_rollback;
        self.steps.clone_from(&plan.steps);
        let run = self.binding.id.clone();
        self.emit(&Event::RunStarted {
            app: plan.app.clone(),
            run,
            steps: plan.steps.len(),
            resumed: earlier.is_some(),
        });
        let total = plan.steps.len();
        let mut start = 0;
        if let Some(h) = earlier {
            let cap = opts.redo_from.unwrap_or(total).min(total);
            start = self.resume_point(&plan.steps[..cap], h).await?;
            // Everything the run changed from there on is undone, newest first, before
            // those steps run again: a step redone may change what later ones used.
            // (The two steps of a pipelined pair may both be unfinished, their records
            // interleaved: both are undone here, and both run again.) So is what a step
            // that an edit of the playbook removed did.
            let kept: std::collections::BTreeSet<&str> =
                plan.steps[..start].iter().map(|s| s.id.as_str()).collect();
            let leftover: Vec<UndoItem> = h
                .pending()
                .into_iter()
                .filter(|c| !kept.contains(c.step.as_str()))
                .collect();
            if !leftover.is_empty() {
                let report = self.undo_saving(leftover, "before resume").await?;
                if let Some(why) = &report.not_kept {
                    let error =
                        format!("cannot resume: saving the data before the undo failed: {why}");
                    let step = report
                        .left
                        .first()
                        .map(|i| i.step.clone())
                        .unwrap_or_default();
                    return self.fail(&plan.steps, &step, error, opts).await;
                }
                if let Some((item, e)) = &report.failed {
                    let error = format!(
                        "cannot resume: undoing what step `{}` left failed at {}: {e}",
                        item.step, item.change_id
                    );
                    return self
                        .fail(&plan.steps, &item.step.clone(), error, opts)
                        .await;
                }
            }
        }
        let mut i = start;
        let mut window = freeze::Window::default();
        while i < total {
            let step = &plan.steps[i];
            // A step whose input is the artifact of the one before it reads that
            // artifact while it is written, when both run fresh (never a step skipped
            // on resume: `i` is past them).
            let next = plan
                .steps
                .get(i + 1)
                .filter(|n| self.runner.streams_from(step, n));
            let (attempt, at) = if let Some(n) = next {
                i += 2;
                // Two steps' futures: boxed, so the run's own future stays small.
                Box::pin(self.pair(step, n, total, opts, cancel)).await?
            } else {
                i += 1;
                (self.step(step, 1, total, opts, cancel).await?, step)
            };
            match attempt {
                Attempt::Done => {
                    let first = plan.steps.iter().position(|s| s.id == step.id).unwrap_or(i);
                    for s in &plan.steps[first..i] {
                        if let Some(line) = window.done(s) {
                            self.note_shared("freeze-window", &line)?;
                            self.emit(&Event::Output {
                                step: s.id.clone(),
                                line,
                            });
                        }
                    }
                }
                Attempt::Failed(error) => return self.fail(&plan.steps, &at.id, error, opts).await,
                Attempt::Interrupted => {
                    self.finish(RunResult::Interrupted).await?;
                    return Ok(RunOutcome::Interrupted {
                        step: at.id.clone(),
                    });
                }
            }
        }
        self.finish(RunResult::Succeeded).await?;
        Ok(RunOutcome::Succeeded)
    }

    /// On resume: how many of the leading `steps` are done and still hold (they are
    /// skipped).
    async fn resume_point(
        &self,
        steps: &[crate::plan::PlannedStep],
        h: &History,
    ) -> Result<usize, EngineError> {
        for (i, step) in steps.iter().enumerate() {
            let Some(facts) = h.steps_done.get(&step.id) else {
                return Ok(i);
            };
            match self.runner.still_valid(step, facts, &self.artifacts).await {
                Ok(()) => self.emit(&Event::StepSkipped {
                    step: step.id.clone(),
                    reason: "done in an earlier attempt of this run; its results still verify"
                        .into(),
                }),
                Err(why) => {
                    let why = self.redactor.text(&why);
                    self.note_shared("redo", &format!("step `{}` runs again: {why}", step.id))?;
                    return Ok(i);
                }
            }
        }
        Ok(steps.len())
    }

    /// Waits until nothing a stopped step asked for is still being made
    /// ([`Runner::settled`]); past [`SAY_WAIT_AFTER`], says once what it waits for (an
    /// engine that takes its time, or does not answer, would otherwise look like a hung
    /// process).
    async fn await_settled(&self) {
        let settling = self.runner.settled();
        tokio::pin!(settling);
        if tokio::time::timeout(SAY_WAIT_AFTER, &mut settling)
            .await
            .is_ok()
        {
            return;
        }
        // Settled just now: nothing to say.
        if futures_util::FutureExt::now_or_never(&mut settling).is_some() {
            return;
        }
        let on = self
            .runner
            .unsettled()
            .await
            .iter()
            .map(|w| self.redactor.text(w))
            .collect();
        self.emit(&Event::Waiting { on });
        settling.await;
    }

    /// Journals the run's end, once nothing a stopped step asked for is still being made.
    async fn finish(&self, result: RunResult) -> Result<(), JournalError> {
        self.await_settled().await;
        self.record(&Record::RunFinished {
            result: result.word().into(),
        })?;
        self.emit(&Event::RunFinished { result });
        Ok(())
    }

    async fn fail(
        &self,
        steps: &[crate::plan::PlannedStep],
        step: &str,
        error: String,
        opts: RunOptions,
    ) -> Result<RunOutcome, EngineError> {
        let rollback = if opts.auto_rollback {
            let history = self.history_now()?;
            let pending = history.pending();
            let keep = keep_list(
                steps,
                &pending,
                &self.binding.images,
                &history.steps_done,
                true,
            );
            if !keep.is_empty() {
                // what the engine still makes for the failed step lands before it is read
                self.await_settled().await;
            }
            let kept = match self.keep_data(&keep, false).await? {
                Ok(kept) => kept,
                Err(why) => {
                    // Nothing undone: the run's changes stay, as with --no-auto-rollback.
                    self.finish(RunResult::Failed).await?;
                    return Ok(RunOutcome::Failed {
                        step: step.to_string(),
                        error,
                        rollback: Some(Box::new(RollbackReport {
                            left: pending,
                            not_kept: Some(why),
                            ..RollbackReport::default()
                        })),
                    });
                }
            };
            let mut report = self.undo_all_shared(pending, "step failed").await?;
            report.kept = kept;
            self.finish(if report.is_complete() {
                RunResult::RolledBack
            } else {
                RunResult::RollbackIncomplete
            })
            .await?;
            Some(Box::new(report))
        } else {
            self.finish(RunResult::Failed).await?;
            None
        };
        Ok(RunOutcome::Failed {
            step: step.to_string(),
            error,
            rollback,
        })
    }

    /// Undoes `items` in the order given (newest first), journaling each undo before
    /// it is made. Stops at the first failure.
    ///
    /// # Errors
    /// The journal could not be written.
    pub async fn undo_all(
        &mut self,
        items: Vec<UndoItem>,
        reason: &str,
    ) -> Result<RollbackReport, EngineError> {
        self.undo_all_shared(items, reason).await
    }

    /// Undoes `items` as [`Self::undo_all_shared`] does, after saving what of the data they
    /// would remove users may have written ([`keep_list`], as a failed run's automatic
    /// rollback saves it): the undo before a resume, before a retry, and of a step stopped
    /// with the step it reads from. When saving fails nothing is undone: the report's
    /// `failed` names the first change, `not_kept` why.
    pub(super) async fn undo_saving(
        &self,
        items: Vec<UndoItem>,
        reason: &str,
    ) -> Result<RollbackReport, EngineError> {
        let keep = if items.is_empty() || self.steps.is_empty() {
            Vec::new()
        } else {
            let history = self.history_now()?;
            keep_list(
                &self.steps_of_every_version(),
                &items,
                &self.binding.images,
                &history.steps_done,
                true,
            )
        };
        if !keep.is_empty() {
            // what the engine still makes for the stopped step lands before it is read
            self.await_settled().await;
        }
        match self.keep_data(&keep, false).await? {
            Ok(kept) => {
                let mut report = self.undo_all_shared(items, reason).await?;
                report.kept = kept;
                Ok(report)
            }
            Err(why) => Ok(RollbackReport {
                failed: items.first().map(|i| (i.clone(), why.clone())),
                left: items,
                not_kept: Some(why),
                ..RollbackReport::default()
            }),
        }
    }

    /// The run's history as its journal says now, read back with the journal's own key:
    /// undo data is checked as a rollback would check it.
    fn history_now(&self) -> Result<History, EngineError> {
        let key = self.io.journal.borrow().key().cloned();
        let contents = super::journal::read_keyed(&self.journal_path(), key.as_ref())?;
        Ok(History::from_journal(&contents))
    }

    /// The plan's steps, then those of each of the run's versions (`plan.json`,
    /// `plan.vN.json` beside the artifacts): the undo before a resume also undoes what an
    /// edit removed or changed, whose data is saved first all the same.
    fn steps_of_every_version(&self) -> Vec<crate::plan::PlannedStep> {
        let mut steps = self.steps.clone();
        let Some(run_dir) = self.artifacts.parent() else {
            return steps;
        };
        let mut n = 1;
        loop {
            let path = if n == 1 {
                run_dir.join("plan.json")
            } else {
                run_dir.join(format!("plan.v{n}.json"))
            };
            let Ok(text) = std::fs::read_to_string(&path) else {
                break;
            };
            // all of them: a step an edit changed (a volume renamed) keeps its earlier
            // form too (what it made then is what is undone now); keep_list's result is
            // without repeats
            if let Ok(plan) = crate::plan::Plan::read(&text) {
                steps.extend(plan.steps);
            }
            n += 1;
        }
        steps
    }

    async fn undo_all_shared(
        &self,
        items: Vec<UndoItem>,
        reason: &str,
    ) -> Result<RollbackReport, EngineError> {
        let mut report = RollbackReport::default();
        if items.is_empty() {
            return Ok(report);
        }
        self.emit(&Event::RollbackStarted {
            changes: items.len(),
            reason: reason.into(),
        });
        self.record(&Record::Note {
            kind: "rollback".into(),
            text: format!("{reason}: undoing {} change(s)", items.len()),
        })?;
        let mut rest = items.into_iter();
        while let Some(item) = rest.next() {
            self.record(&Record::UndoIntent {
                change_id: item.change_id.clone(),
                step: item.step.clone(),
            })?;
            self.emit(&Event::Undoing {
                step: item.step.clone(),
                change: item.change_id.clone(),
                summary: item.summary(),
            });
            self.await_settled().await;
            match self.runner.undo(&item).await {
                Ok(()) => {
                    self.record(&Record::Undone {
                        change_id: item.change_id.clone(),
                        step: item.step.clone(),
                    })?;
                    self.emit(&Event::Undone {
                        step: item.step.clone(),
                        change: item.change_id.clone(),
                    });
                    report.undone.push(item);
                }
                Err(StepError::Journal(e)) => return Err(e.into()),
                Err(StepError::Failed(e) | StepError::Fatal(e)) => {
                    let e = self.redactor.text(&e);
                    self.record(&Record::UndoFailed {
                        change_id: item.change_id.clone(),
                        step: item.step.clone(),
                        error: e.clone(),
                    })?;
                    self.emit(&Event::UndoFailed {
                        step: item.step.clone(),
                        change: item.change_id.clone(),
                        error: e.clone(),
                    });
                    report.left.push(item.clone());
                    report.left.extend(rest);
                    report.failed = Some((item, e));
                    break;
                }
            }
        }
        Ok(report)
    }

    /// `boyong rollback`: saves the data it would remove (`keep`, unless `discard`: see
    /// [`keep_list`]), then undoes every pending change of the run and journals the end.
    /// When saving fails nothing is undone and the run's end is not journaled again
    /// ([`RollbackReport::not_kept`]).
    ///
    /// # Errors
    /// The journal could not be written.
    pub async fn rollback(
        &mut self,
        history: &History,
        keep: &[Keep],
        discard: bool,
    ) -> Result<RollbackReport, EngineError> {
        let kept = match self.keep_data(keep, discard).await? {
            Ok(kept) => kept,
            Err(why) => {
                return Ok(RollbackReport {
                    left: history.pending(),
                    not_kept: Some(why),
                    ..RollbackReport::default()
                });
            }
        };
        let mut report = self.undo_all_shared(history.pending(), "requested").await?;
        report.kept = kept;
        self.finish(if report.is_complete() {
            RunResult::RolledBack
        } else {
            RunResult::RollbackIncomplete
        })
        .await?;
        Ok(report)
    }
}

enum Stop {
    TimedOut(String),
    Cancelled,
}
