//! Journal record types and their exact JSON shape (format 1).
//!
//! Owns the serde mapping of the header and of every record kind. Invariant:
//! the wire shapes here are format 1 as documented in `docs/journal.md`; changing
//! a name or removing a field requires bumping [`super::FORMAT`].

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The header (line 1) as stored. `prev` is always `null` and not kept here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Format version; always [`FORMAT`](super::FORMAT) in a journal that verifies.
    pub format: u64,
    /// The run id.
    pub run: String,
    /// The app name.
    pub app: String,
    /// SHA-256 (hex) of `playbook.yml` as run.
    pub playbook_sha256: String,
    /// SHA-256 (hex) of `plan.json` as run.
    pub plan_sha256: String,
    /// Who ran it.
    pub operator: String,
    /// Where it ran from.
    pub host: String,
    /// RFC 3339 UTC start time.
    pub started: String,
}

/// What the caller supplies to [`Journal::create`](super::Journal::create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFields {
    /// The run id.
    pub run: String,
    /// The app name.
    pub app: String,
    /// SHA-256 (hex) of `playbook.yml`.
    pub playbook_sha256: String,
    /// SHA-256 (hex) of `plan.json`.
    pub plan_sha256: String,
    /// Who runs it.
    pub operator: String,
    /// Where it runs from.
    pub host: String,
    /// When the run started.
    pub started: SystemTime,
}

/// One journal record after the header. Serialized with `"type"` as tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record {
    /// About to make a change; written and fsync'd before the change.
    Intent {
        /// Step id.
        step: String,
        /// Change id, unique within the run.
        change_id: String,
        /// What will be changed (step-kind specific).
        change: Value,
        /// How to undo it (step-kind specific).
        undo: Value,
    },
    /// The change announced by the matching `intent` was made.
    Done {
        /// Step id.
        step: String,
        /// Change id.
        change_id: String,
        /// Facts learned (step-kind specific).
        facts: Value,
    },
    /// A change (or the step outside any change) failed.
    Failed {
        /// Step id.
        step: String,
        /// Change id, if the failure belongs to one.
        change_id: Option<String>,
        /// Error text.
        error: String,
    },
    /// A step began.
    StepStarted {
        /// Step id.
        step: String,
    },
    /// A step finished.
    StepDone {
        /// Step id.
        step: String,
        /// Facts produced by the step.
        facts: Value,
    },
    /// A step failed.
    StepFailed {
        /// Step id.
        step: String,
        /// Error text.
        error: String,
    },
    /// About to undo a change; written before undoing.
    UndoIntent {
        /// Change id being undone.
        change_id: String,
        /// Step id it belongs to.
        step: String,
    },
    /// A change was undone.
    Undone {
        /// Change id.
        change_id: String,
        /// Step id.
        step: String,
    },
    /// Undoing a change failed.
    UndoFailed {
        /// Change id.
        change_id: String,
        /// Step id.
        step: String,
        /// Error text.
        error: String,
    },
    /// A free-form event worth keeping (lock broken, host key accepted, …).
    Note {
        /// Machine-readable kind, e.g. `lock-broken`.
        kind: String,
        /// Human-readable text.
        text: String,
    },
    /// The run ended; `result` is e.g. `succeeded`, `failed`, `rolled-back`.
    RunFinished {
        /// Outcome.
        result: String,
    },
}

impl Record {
    /// Every record `type` of format 1 (the header excepted).
    pub const KINDS: &[&str] = &[
        "intent",
        "done",
        "failed",
        "step-started",
        "step-done",
        "step-failed",
        "undo-intent",
        "undone",
        "undo-failed",
        "note",
        "run-finished",
    ];
}

/// A record read back, with its chain fields and position.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    /// Sequence number (header is 0, so `seq == line - 1`).
    pub seq: u64,
    /// RFC 3339 UTC time the record was appended.
    pub at: String,
    /// SHA-256 of the previous line.
    pub prev: String,
    /// The record.
    pub record: Record,
}

#[derive(Serialize)]
pub(super) struct HeaderOut<'a> {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    #[serde(flatten)]
    pub(super) header: &'a Header,
    pub(super) prev: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct EntryOut<'a> {
    #[serde(flatten)]
    pub(super) record: &'a Record,
    pub(super) seq: u64,
    pub(super) at: &'a str,
    pub(super) prev: &'a str,
}

#[derive(Deserialize)]
pub(super) struct EntryIn {
    #[serde(flatten)]
    pub(super) record: Record,
    pub(super) seq: u64,
    pub(super) at: String,
    pub(super) prev: String,
}
