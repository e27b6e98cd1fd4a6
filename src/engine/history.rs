//! What a journal says happened: the changes of a run and their state, the steps
//! done, how the run ended.
//!
//! Owns: [`History`], read from a verified journal, from which rollback computes its
//! undo plan, resume finds the steps to skip, and status reports a run. Invariant: a
//! change counts as pending (to be undone) from its intent until its `undone`, whether
//! or not its `done` was journaled.

use std::collections::BTreeMap;

use serde_json::Value;

use super::event::RunResult;
use super::journal::{Header, JournalContents, Record};
use super::runner::UndoItem;

/// Where a journaled change stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeState {
    /// Intent journaled, no outcome: it may or may not have happened.
    Intended,
    /// Made.
    Done,
    /// Its step failed while making it: it may have partly happened.
    Failed,
    /// Undone.
    Undone,
    /// Undoing it failed, with this error.
    UndoFailed(String),
}

/// A journaled change and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEntry {
    /// The change and its undo data.
    pub item: UndoItem,
    /// Where it stands.
    pub state: ChangeState,
}

/// A run as its journal tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The journal's header.
    pub header: Header,
    /// Every change, in the order their intents were journaled.
    pub changes: Vec<ChangeEntry>,
    /// Steps done and not undone since, with their facts.
    pub steps_done: BTreeMap<String, Value>,
    /// The last step that failed, and why.
    pub last_failure: Option<(String, String)>,
    /// How the run last ended, if it did (a later resume or rollback may end it again).
    pub result: Option<RunResult>,
    /// Whether records follow the last `run-finished` (a resume or rollback that
    /// did not finish).
    pub unfinished_tail: bool,
    /// Time of the last record.
    pub last_at: String,
    /// Times the run was resumed.
    pub resumes: usize,
    /// A `boyong rollback` began and did not finish (it crashed or was killed).
    pub rollback_unfinished: bool,
    /// Edits of the playbook that resumes accepted (`playbook-edited` notes).
    pub edits: usize,
    /// Where (the entry's index) each step of `steps_done` was last done.
    done_at: BTreeMap<String, usize>,
    /// Where the last `playbook-edited` note is.
    last_edit_at: Option<usize>,
}

impl History {
    /// Reads the history of a verified journal.
    pub fn from_journal(contents: &JournalContents) -> Self {
        let mut h = Self {
            header: contents.header.clone(),
            changes: Vec::new(),
            steps_done: BTreeMap::new(),
            last_failure: None,
            result: None,
            unfinished_tail: false,
            last_at: contents.header.started.clone(),
            resumes: 0,
            rollback_unfinished: false,
            edits: 0,
            done_at: BTreeMap::new(),
            last_edit_at: None,
        };
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (at, e) in contents.entries.iter().enumerate() {
            h.last_at.clone_from(&e.at);
            h.unfinished_tail = true;
            match &e.record {
                Record::Intent {
                    step,
                    change_id,
                    change,
                    undo,
                } => {
                    index.insert(change_id.clone(), h.changes.len());
                    h.changes.push(ChangeEntry {
                        item: UndoItem {
                            step: step.clone(),
                            change_id: change_id.clone(),
                            change: change.clone(),
                            undo: crate::plan::Undo::from_value(undo),
                            done: false,
                        },
                        state: ChangeState::Intended,
                    });
                }
                Record::Done { change_id, .. } => {
                    if let Some(c) = index.get(change_id).and_then(|&i| h.changes.get_mut(i)) {
                        c.state = ChangeState::Done;
                        c.item.done = true;
                    }
                }
                Record::Failed {
                    step,
                    change_id,
                    error,
                } => {
                    if let Some(c) = change_id
                        .as_ref()
                        .and_then(|id| index.get(id))
                        .and_then(|&i| h.changes.get_mut(i))
                        && c.state == ChangeState::Intended
                    {
                        c.state = ChangeState::Failed;
                    }
                    h.last_failure = Some((step.clone(), error.clone()));
                }
                Record::StepDone { step, facts } => {
                    h.steps_done.insert(step.clone(), facts.clone());
                    h.done_at.insert(step.clone(), at);
                }
                Record::StepFailed { step, error } => {
                    h.last_failure = Some((step.clone(), error.clone()));
                }
                Record::Undone { change_id, step } => {
                    if let Some(c) = index.get(change_id).and_then(|&i| h.changes.get_mut(i)) {
                        c.state = ChangeState::Undone;
                    }
                    h.steps_done.remove(step);
                }
                Record::UndoFailed {
                    change_id, error, ..
                } => {
                    if let Some(c) = index.get(change_id).and_then(|&i| h.changes.get_mut(i)) {
                        c.state = ChangeState::UndoFailed(error.clone());
                    }
                }
                Record::RunFinished { result } => {
                    h.result = RunResult::from_word(result);
                    h.unfinished_tail = false;
                    h.rollback_unfinished = false;
                }
                Record::Note { kind, text } => {
                    if kind == "resumed" {
                        h.resumes += 1;
                    }
                    if kind == "rollback" && text.starts_with("requested") {
                        h.rollback_unfinished = true;
                    }
                    if kind == super::open::EDITED {
                        h.edits += 1;
                        h.last_edit_at = Some(at);
                    }
                }
                Record::StepStarted { .. } | Record::UndoIntent { .. } => {}
            }
        }
        h
    }

    /// Whether `step` is done, and was done before the last edit of the playbook that a
    /// resume accepted (so what it did may be of the playbook before).
    pub fn done_before_last_edit(&self, step: &str) -> bool {
        match (self.done_at.get(step), self.last_edit_at) {
            (Some(done), Some(edit)) => self.steps_done.contains_key(step) && *done < edit,
            _ => false,
        }
    }

    /// Changes still to undo, newest first: every change whose intent was journaled
    /// and whose `undone` was not.
    pub fn pending(&self) -> Vec<UndoItem> {
        self.changes
            .iter()
            .rev()
            .filter(|c| c.state != ChangeState::Undone)
            .map(|c| c.item.clone())
            .collect()
    }

    /// Pending changes of one step, newest first.
    pub fn pending_of(&self, step: &str) -> Vec<UndoItem> {
        self.pending()
            .into_iter()
            .filter(|c| c.step == step)
            .collect()
    }

    /// Whether the run is over: it ended and nothing followed, and it did not stop
    /// half-way (failed with changes left, or interrupted).
    pub fn is_finished(&self) -> bool {
        !self.unfinished_tail
            && matches!(
                self.result,
                Some(RunResult::Succeeded | RunResult::RolledBack)
            )
    }
}
