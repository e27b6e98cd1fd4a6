//! Changes asked of the engine, carried through whatever happens to the step that asked.
//!
//! A step can be stopped at any await: a timeout, an interrupt, or the dump a restore reads
//! failing. If that await is an engine request that makes something (a container, a
//! volume, a service …), dropping the request's future does not stop the engine: the
//! request may already be on the wire, and the thing appears a moment later, after the
//! step's undo looked for it and found nothing. It then outlives the rollback and holds
//! what the rollback must remove (a volume "in use").
//!
//! So every request that makes or changes something runs as a task of its own
//! ([`Inflight::run`]), which a dropped step does not cancel, and every undo first waits
//! until none is in flight ([`Inflight::settled`]): what the engine was asked to make, it
//! has made (or refused) before anyone undoes it.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use super::DockerError;

/// Counts the engine's changes in flight.
#[derive(Debug)]
pub(super) struct Inflight {
    count: Arc<watch::Sender<usize>>,
}

/// Counts one change out when its task ends, however it ends.
struct Out(Arc<watch::Sender<usize>>);

impl Drop for Out {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Inflight {
    pub(super) fn new() -> Self {
        Self {
            count: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Runs `change` as a task of its own and waits for it; dropping this future leaves the
    /// task running to its end, counted until then.
    ///
    /// # Errors
    /// `change`'s error, or the task ended without an answer (the runtime shutting down).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        change: impl Future<Output = Result<T, DockerError>> + Send + 'static,
    ) -> Result<T, DockerError> {
        self.count.send_modify(|n| *n += 1);
        let out = Out(Arc::clone(&self.count));
        let task = tokio::spawn(async move {
            let _out = out;
            change.await
        });
        task.await.map_err(|e| {
            DockerError::Api(format!(
                "the request to the engine ended without an answer: {e}"
            ))
        })?
    }

    /// Waits until no change is in flight.
    pub(super) async fn settled(&self) {
        let mut rx = self.count.subscribe();
        // The sender lives as long as `self`: the wait ends only at zero.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// How many changes are in flight now.
    #[cfg(test)]
    fn now(&self) -> usize {
        *self.count.borrow()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_change_whose_caller_is_dropped_still_ends_and_settled_waits_for_it() {
        let inflight = Inflight::new();
        let made = Arc::new(AtomicBool::new(false));
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let m = Arc::clone(&made);
        let change = inflight.run(async move {
            let _ = wait.await;
            m.store(true, Ordering::SeqCst);
            Ok(())
        });
        // Polled once (the task is started), then dropped, as a stopped step's await is.
        let dropped = tokio::time::timeout(Duration::from_millis(20), change).await;
        assert!(dropped.is_err(), "the change waits for its signal");
        assert_eq!(inflight.now(), 1, "the dropped change is still counted");
        assert!(!made.load(Ordering::SeqCst));
        let _ = go.send(());
        inflight.settled().await;
        assert!(
            made.load(Ordering::SeqCst),
            "settled returned before the change ended"
        );
        assert_eq!(inflight.now(), 0);
    }

    #[tokio::test]
    async fn a_change_answers_its_caller_and_a_failed_one_is_counted_out_too() {
        let inflight = Inflight::new();
        let v = inflight.run(async { Ok(7) }).await;
        assert_eq!(v.ok(), Some(7));
        let e = inflight
            .run(async { Err::<(), _>(DockerError::Api("refused".into())) })
            .await;
        assert!(matches!(e, Err(DockerError::Api(m)) if m == "refused"));
        assert_eq!(inflight.now(), 0);
        // Nothing in flight: settled does not wait.
        tokio::time::timeout(Duration::from_secs(5), inflight.settled())
            .await
            .expect("settled waits with nothing in flight");
    }
}
