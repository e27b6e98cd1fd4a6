//! The engine's durable core: the state directory, the write-ahead journal and the
//! per-app lock.
//!
//! Owns: where runs live on disk (`state`), the hash-chained, fsync'd journal that
//! records every change before it is made (`journal`, format in docs/journal.md), and
//! one-operator-at-a-time locking (`lock`). The executor, rollback and resume build on
//! these.

pub mod journal;
pub mod lock;
pub mod state;
