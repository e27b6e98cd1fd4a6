//! One step's attempts: journaling their start and end, the time limit, the undo
//! before a retry and the wait between retries.
//!
//! Owns: the records of an attempt (`step-started`; `step-done`, or the change in
//! flight `failed` and `step-failed`) and the retry policy (a `Fatal` error is never
//! retried; a retry starts clean, what the failed attempt changed undone first).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{
    Attempt, AttemptResult, EngineError, Executor, INTERRUPTED, RunOptions, Settled, Stop,
};
use crate::engine::event::Event;
use crate::engine::journal::{JournalError, Record};
use crate::engine::runner::{Runner, StepCx, StepError, UndoItem};
use crate::plan::PlannedStep;

impl<R: Runner> Executor<'_, R> {
    /// Journals and announces the start of an attempt.
    pub(super) fn begin(
        &self,
        step: &PlannedStep,
        attempt: u32,
        total: usize,
    ) -> Result<(), JournalError> {
        self.record(&Record::StepStarted {
            step: step.id.clone(),
        })?;
        self.emit(&Event::StepStarted {
            step: step.id.clone(),
            number: step.number,
            total,
            kind: step.kind.to_string(),
            attempt,
        });
        Ok(())
    }

    /// A step's context for one attempt.
    pub(super) fn cx(&self, step: &PlannedStep) -> StepCx<'_> {
        StepCx {
            out: &self.io,
            redactor: &self.redactor,
            step: step.id.clone(),
            run: &self.binding,
            artifacts: self.artifacts.clone(),
            secrets: self.secrets,
            changes: Vec::new(),
            planned: step.changes.clone(),
            feed: None,
            follow: None,
            reuse: self.reuse.map(|max_age| super::super::runner::Reuse {
                max_age,
                key: self.io.journal.borrow().key().cloned(),
            }),
            keep_failed: self.keep_failed,
            journal_key: self.io.journal.borrow().key().cloned(),
        }
    }

    /// Journals how an attempt ended: `step-done`, or the change in flight `failed`
    /// and `step-failed`.
    pub(super) fn settle(
        &self,
        step: &PlannedStep,
        attempt: u32,
        started: Instant,
        result: AttemptResult,
        changes: &[UndoItem],
    ) -> Result<Settled, EngineError> {
        let mut retryable = true;
        let error = match result {
            Ok(Ok(facts)) => {
                let facts = self.redactor.value(&facts);
                self.record(&Record::StepDone {
                    step: step.id.clone(),
                    facts: facts.clone(),
                })?;
                self.emit(&Event::StepDone {
                    step: step.id.clone(),
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    facts,
                });
                return Ok(Settled::Done);
            }
            Ok(Err(StepError::Journal(e))) => return Err(e.into()),
            Ok(Err(StepError::Failed(e))) => self.redactor.text(&e),
            Ok(Err(StepError::Fatal(e))) => {
                retryable = false;
                self.redactor.text(&e)
            }
            Err(Stop::TimedOut(limit)) => format!(
                "step `{}` did not finish within its timeout of {limit}",
                step.id
            ),
            Err(Stop::Cancelled) => {
                self.stopped(step, changes, INTERRUPTED, false)?;
                return Ok(Settled::Interrupted);
            }
        };
        let will_retry = retryable && attempt <= step.retries;
        self.stopped(step, changes, &error, will_retry)?;
        Ok(if will_retry {
            Settled::Retry(error)
        } else {
            Settled::Failed(error)
        })
    }

    /// Journals an attempt that ended without finishing: the change in flight (if
    /// any) `failed`, then `step-failed`.
    pub(super) fn stopped(
        &self,
        step: &PlannedStep,
        changes: &[UndoItem],
        error: &str,
        will_retry: bool,
    ) -> Result<(), JournalError> {
        let in_flight = changes.iter().rev().find(|c| !c.done);
        if in_flight.is_some() || error == INTERRUPTED {
            self.record(&Record::Failed {
                step: step.id.clone(),
                change_id: in_flight.map(|c| c.change_id.clone()),
                error: error.to_string(),
            })?;
        }
        self.record(&Record::StepFailed {
            step: step.id.clone(),
            error: error.to_string(),
        })?;
        self.emit(&Event::StepFailed {
            step: step.id.clone(),
            error: error.to_string(),
            will_retry,
        });
        Ok(())
    }

    /// Before a retry: what the failed attempt changed is undone, then a pause.
    /// `Some` when the step ends here instead.
    pub(super) async fn before_retry(
        &self,
        error: &str,
        attempt: u32,
        changes: Vec<UndoItem>,
        delay: Duration,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<Option<Attempt>, EngineError> {
        let undo: Vec<UndoItem> = changes.into_iter().rev().collect();
        let report = self.undo_saving(undo, "before retry").await?;
        if let Some(why) = report.not_kept {
            return Ok(Some(Attempt::Failed(format!(
                "{error}; no retry: saving the data before undoing attempt {attempt} failed: {why}"
            ))));
        }
        if let Some((item, e)) = report.failed {
            return Ok(Some(Attempt::Failed(format!(
                "{error}; no retry: undoing attempt {attempt} failed at {}: {e}",
                item.change_id
            ))));
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(None),
            _ = cancel.wait_for(|c| *c) => Ok(Some(Attempt::Interrupted)),
        }
    }

    /// The wait before retry number `attempt` (the second attempt waits the first delay).
    pub(super) fn delay(step: &PlannedStep, opts: RunOptions, attempt: u32) -> Duration {
        let mut delay = step.spec.retry_delay.map_or(opts.retry_delay, |d| d.0);
        for _ in 2..attempt.min(20) {
            delay = (delay * 2).min(Duration::from_secs(60));
        }
        delay
    }

    /// One step, from attempt `first` on, with its retries.
    pub(super) async fn step(
        &self,
        step: &PlannedStep,
        first: u32,
        total: usize,
        opts: RunOptions,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<Attempt, EngineError> {
        for attempt in first..=step.retries.saturating_add(1) {
            let started = Instant::now();
            self.begin(step, attempt, total)?;
            let mut cx = self.cx(step);
            let result = if *cancel.borrow() {
                Err(Stop::Cancelled)
            } else {
                let work = timed(self.runner.execute(step, &mut cx), step.timeout);
                tokio::select! {
                    r = work => r,
                    _ = cancel.wait_for(|c| *c) => Err(Stop::Cancelled),
                }
            };
            let changes = cx.changes;
            match self.settle(step, attempt, started, result, &changes)? {
                Settled::Done => return Ok(Attempt::Done),
                Settled::Interrupted => return Ok(Attempt::Interrupted),
                Settled::Failed(e) => return Ok(Attempt::Failed(e)),
                Settled::Retry(e) => {
                    let delay = Self::delay(step, opts, attempt + 1);
                    if let Some(end) = self
                        .before_retry(&e, attempt, changes, delay, cancel)
                        .await?
                    {
                        return Ok(end);
                    }
                }
            }
        }
        Ok(Attempt::Failed(format!(
            "step `{}` has no attempts",
            step.id
        )))
    }
}

/// `work` under the step's time limit.
pub(super) async fn timed<F: std::future::Future>(
    work: F,
    limit: Option<crate::playbook::units::Span>,
) -> Result<F::Output, Stop> {
    match limit {
        Some(l) => tokio::time::timeout(l.0, work)
            .await
            .map_err(|_| Stop::TimedOut(l.to_string())),
        None => Ok(work.await),
    }
}
