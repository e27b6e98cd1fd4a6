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
//! has made (or refused) before anyone undoes it. Each change is named as it starts, so
//! that a wait for a slow engine can say what it waits for ([`Inflight::pending`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::DockerError;

/// The engine's changes in flight, by a number of their own: what each is.
type Pending = BTreeMap<u64, String>;

/// The engine's changes in flight.
#[derive(Debug)]
pub(super) struct Inflight {
    pending: Arc<watch::Sender<Pending>>,
    next: AtomicU64,
}

/// Takes one change out when its task ends, however it ends.
struct Out(Arc<watch::Sender<Pending>>, u64);

impl Drop for Out {
    fn drop(&mut self) {
        self.0.send_modify(|p| {
            p.remove(&self.1);
        });
    }
}

impl Inflight {
    pub(super) fn new() -> Self {
        Self {
            pending: Arc::new(watch::Sender::new(Pending::new())),
            next: AtomicU64::new(0),
        }
    }

    /// Runs `change` (`what` it does, in a few words) as a task of its own and waits for
    /// it; dropping this future leaves the task running to its end, pending until then.
    ///
    /// # Errors
    /// `change`'s error, or the task ended without an answer (the runtime shutting down).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        what: String,
        change: impl Future<Output = Result<T, DockerError>> + Send + 'static,
    ) -> Result<T, DockerError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.pending.send_modify(|p| {
            p.insert(n, what);
        });
        let out = Out(Arc::clone(&self.pending), n);
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
        let mut rx = self.pending.subscribe();
        // The sender lives as long as `self`: the wait ends only when none is pending.
        let _ = rx.wait_for(Pending::is_empty).await;
    }

    /// What the changes in flight now are, oldest first.
    pub(super) fn pending(&self) -> Vec<String> {
        self.pending.borrow().values().cloned().collect()
    }

    /// How many changes are in flight now.
    #[cfg(test)]
    fn now(&self) -> usize {
        self.pending.borrow().len()
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
        let change = inflight.run("make a thing".into(), async move {
            let _ = wait.await;
            m.store(true, Ordering::SeqCst);
            Ok(())
        });
        // Polled once (the task is started), then dropped, as a stopped step's await is.
        let dropped = tokio::time::timeout(Duration::from_millis(20), change).await;
        assert!(dropped.is_err(), "the change waits for its signal");
        assert_eq!(inflight.now(), 1, "the dropped change is still counted");
        assert_eq!(inflight.pending(), ["make a thing"]);
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
        let v = inflight.run("seven".into(), async { Ok(7) }).await;
        assert_eq!(v.ok(), Some(7));
        let e = inflight
            .run("refused".into(), async {
                Err::<(), _>(DockerError::Api("refused".into()))
            })
            .await;
        assert!(matches!(e, Err(DockerError::Api(m)) if m == "refused"));
        assert_eq!(inflight.now(), 0);
        assert!(inflight.pending().is_empty());
        // Nothing in flight: settled does not wait.
        tokio::time::timeout(Duration::from_secs(5), inflight.settled())
            .await
            .expect("settled waits with nothing in flight");
    }
}
