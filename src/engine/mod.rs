//! The engine: runs plans, journals every change before making it, undoes changes.
//!
//! Owns: where runs live on disk (`state`), the hash-chained, fsync'd journal that
//! records every change before it is made (`journal`, format in docs/journal.md),
//! one-operator-at-a-time locking (`lock`), the executor with its rollback and resume
//! (`executor`), what a journal says happened (`history`), the typed events of a run
//! (`event`), the contract with the code that touches the world (`runner`), the removal
//! of secret values from everything a run writes or shows (`redact`), the
//! growing artifact that a pipelined pair of steps hands over while it is written
//! (`stream`), and opening a run for a command: its lock, a new run or a resumed one,
//! finding a run, what a rollback would undo (`open`); the earlier runs' artifacts that
//! `--reuse-artifacts` may take instead of a pull (`reuse`); the data a rollback saves
//! before it removes where the data lives (`keep`).
//! `fake` is a strict fake world for the engine's own tests (compiled only for tests and
//! the `sim` feature, never into a release).

pub mod event;
pub mod executor;
#[cfg(any(test, feature = "sim"))]
pub mod fake;
pub mod history;
pub mod journal;
pub mod keep;
pub mod lock;
pub mod open;
pub mod redact;
pub mod reuse;
pub mod runner;
pub mod state;
pub mod stream;

pub use event::{Event, EventSink, RunResult};
pub use executor::{EngineError, Executor, RollbackReport, RunOptions, RunOutcome};
pub use history::History;
pub use redact::Redactor;
pub use runner::{Reuse, Runner, StepCx, StepError, UndoItem};
