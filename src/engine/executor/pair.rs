//! The pipelined pair: a step that writes an artifact (the producer, e.g. a `dump`) and
//! the step right after it that reads that artifact (the consumer, e.g. the `restore`
//! `from:` it), run overlapped: the consumer starts once the producer began writing and
//! reads the artifact as it grows ([`crate::engine::stream`]).
//!
//! Owns: when the consumer starts, what each side's outcome means for the other, and the
//! fallback to running the two one after the other.
//!
//! Invariants (besides the executor's own):
//! - Each change is journaled by its own step exactly as when the steps run alone, intent
//!   before the change; the two steps' records interleave and each names its step. The
//!   consumer's `step-started` follows the producer's.
//! - The consumer's outcome is journaled only after the producer's: its `step-done`
//!   always follows the producer's `step-done`.
//! - A producer attempt that fails (or times out) stops the consumer first: the consumer's
//!   attempt is journaled as failed ("stopped") and what it changed is undone; then the
//!   producer is retried alone, as any step, and the consumer runs after it, alone.
//! - A consumer that fails while the producer runs waits for it: the producer's outcome
//!   is journaled first, then the consumer's failure is handled as any step's.
//! - An interrupt stops both; each unfinished one is journaled as interrupted.
//! - A crash at any point leaves both steps unfinished, or the producer done and the
//!   consumer unfinished: resume undoes every change of the unfinished steps and runs them
//!   again (see [`Executor::run`]); rollback undoes every change, as always.

use std::cell::Cell;
use std::pin::pin;
use std::time::Instant;

use tokio::sync::watch;

use super::attempt::timed;
use super::{Attempt, AttemptResult, EngineError, Executor, INTERRUPTED, RunOptions, Settled};
use crate::engine::journal::JournalError;
use crate::engine::runner::{Runner, UndoItem};
use crate::engine::stream;
use crate::plan::PlannedStep;

/// How the overlapped part ended.
enum Phase {
    /// Interrupted; whether the producer was done by then.
    Interrupted { producer_done: bool },
    /// The producer's first attempt failed (result not journaled yet); the consumer
    /// was stopped.
    ProducerFailed(AttemptResult),
    /// The producer is done (journaled); the consumer's first attempt, if it started.
    ProducerDone(Option<AttemptResult>),
}

impl<R: Runner> Executor<'_, R> {
    /// Runs `producer` and `consumer` overlapped; how the pair ended and at which step.
    pub(super) async fn pair<'p>(
        &self,
        producer: &'p PlannedStep,
        consumer: &'p PlannedStep,
        total: usize,
        opts: RunOptions,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<(Attempt, &'p PlannedStep), EngineError> {
        let (feed, follow) = stream::channel();
        let mut cx_a = self.cx(producer);
        cx_a.feed = Some(feed.clone());
        let mut cx_b = self.cx(consumer);
        cx_b.follow = Some(follow.clone());
        let mut waiting = follow;
        let consumer_started: Cell<Option<Instant>> = Cell::new(None);
        let started = Instant::now();
        self.begin(producer, 1, total)?;

        let phase: Result<Phase, EngineError> = async {
            let mut fa = pin!(timed(
                self.runner.execute(producer, &mut cx_a),
                producer.timeout
            ));
            let mut fb = pin!(async {
                if waiting.begun().await.is_err() {
                    // The producer ended without writing: the consumer runs after it.
                    return Ok::<_, JournalError>(None);
                }
                self.begin(consumer, 1, total)?;
                consumer_started.set(Some(Instant::now()));
                Ok(Some(
                    timed(self.runner.execute(consumer, &mut cx_b), consumer.timeout).await,
                ))
            });
            let mut ra = None;
            let mut rb = None;
            while ra.is_none() {
                if *cancel.borrow() {
                    return Ok(Phase::Interrupted {
                        producer_done: false,
                    });
                }
                tokio::select! {
                    r = &mut fa => ra = Some(r),
                    r = &mut fb, if rb.is_none() => rb = Some(r?),
                    _ = cancel.wait_for(|c| *c) => {}
                }
            }
            // Whatever the producer's code did with its feed, its readers now see an end.
            feed.close("the step writing it ended without finishing it");
            let ra = match ra {
                Some(r @ Ok(Ok(_))) => r,
                other => {
                    return Ok(Phase::ProducerFailed(
                        other.unwrap_or(Err(super::Stop::Cancelled)),
                    ));
                }
            };
            self.settle(producer, 1, started, ra, &[])?;
            let rb = match rb {
                Some(r) => r,
                None => {
                    tokio::select! {
                        r = &mut fb => r?,
                        _ = cancel.wait_for(|c| *c) => {
                            return Ok(Phase::Interrupted { producer_done: true });
                        }
                    }
                }
            };
            Ok(Phase::ProducerDone(rb))
        }
        .await;

        match phase? {
            Phase::Interrupted { producer_done } => {
                if !producer_done {
                    self.stopped(producer, &cx_a.changes, INTERRUPTED, false)?;
                }
                if consumer_started.get().is_some() {
                    self.stopped(consumer, &cx_b.changes, INTERRUPTED, false)?;
                }
                let at = if producer_done { consumer } else { producer };
                Ok((Attempt::Interrupted, at))
            }
            Phase::ProducerFailed(ra) => {
                if consumer_started.get().is_some() {
                    let why = format!(
                        "stopped: step `{}`, whose artifact it was reading, failed; it runs again once that step is done",
                        producer.id
                    );
                    self.stopped(consumer, &cx_b.changes, &why, true)?;
                    let undo: Vec<UndoItem> = cx_b.changes.into_iter().rev().collect();
                    let report = self
                        .undo_saving(undo, "stopped with the step it reads from")
                        .await?;
                    if let Some((item, e)) = report.failed {
                        let error = format!(
                            "{why}; but undoing what it changed failed at {}: {e}",
                            item.change_id
                        );
                        return Ok((Attempt::Failed(error), consumer));
                    }
                }
                let end = match self.settle(producer, 1, started, ra, &cx_a.changes)? {
                    Settled::Done => None,
                    Settled::Interrupted => Some(Attempt::Interrupted),
                    Settled::Failed(e) => Some(Attempt::Failed(e)),
                    Settled::Retry(e) => {
                        let delay = Self::delay(producer, opts, 2);
                        match self
                            .before_retry(&e, 1, cx_a.changes, delay, cancel)
                            .await?
                        {
                            Some(end) => Some(end),
                            None => match self.step(producer, 2, total, opts, cancel).await? {
                                Attempt::Done => None,
                                other => Some(other),
                            },
                        }
                    }
                };
                if let Some(end) = end {
                    return Ok((end, producer));
                }
                Ok((self.step(consumer, 1, total, opts, cancel).await?, consumer))
            }
            Phase::ProducerDone(None) => {
                Ok((self.step(consumer, 1, total, opts, cancel).await?, consumer))
            }
            Phase::ProducerDone(Some(rb)) => {
                let started = consumer_started.get().unwrap_or(started);
                let end = match self.settle(consumer, 1, started, rb, &cx_b.changes)? {
                    Settled::Done => Attempt::Done,
                    Settled::Interrupted => Attempt::Interrupted,
                    Settled::Failed(e) => Attempt::Failed(e),
                    Settled::Retry(e) => {
                        let delay = Self::delay(consumer, opts, 2);
                        match self
                            .before_retry(&e, 1, cx_b.changes, delay, cancel)
                            .await?
                        {
                            Some(end) => end,
                            None => self.step(consumer, 2, total, opts, cancel).await?,
                        }
                    }
                };
                Ok((end, consumer))
            }
        }
    }
}
