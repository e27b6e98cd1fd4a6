//! The contract between the executor and the code that touches the world.
//!
//! Owns: [`Runner`] (execute a planned step, undo a journaled change, re-check a
//! step done earlier, say which step reads the one before it as it is written),
//! [`StepCx`] (what a step is handed while it runs: the write-ahead journal, events, the
//! run's artifacts, and in a pipelined pair the growing artifact's feed or follower).
//! Secrets are taken out of what a step reports by the [`Redactor`] (`redact.rs`).
//!
//! Invariant (write-ahead): a runner makes a change only after [`StepCx::intent`]
//! returned, which is after the intent and its undo data are fsync'd; it reports the
//! change made with [`StepCx::done`]. An undo must be safe whether or not its change
//! happened, since a crash can fall between the intent and the change.

use std::future::Future;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::event::Event;
use super::journal::{JournalError, Record};
use super::keep::{Keep, Kept};
use super::redact::Redactor;
use super::stream::{Feed, Follow};
use crate::plan::{Change, PlannedStep, RunBinding, Undo};
use crate::secret::SecretStore;

/// Why a step or an undo failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The work failed; the text says what and where. Retried if the step allows.
    #[error("{0}")]
    Failed(String),
    /// The work failed in a way that trying again cannot fix (a refused host key, a
    /// checksum mismatch, a file the vendor's user cannot read): never retried.
    #[error("{0}")]
    Fatal(String),
    /// The journal could not be written: nothing more may be changed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl StepError {
    /// A failure with this text.
    pub fn failed(text: impl Into<String>) -> Self {
        Self::Failed(text.into())
    }

    /// A failure that a retry cannot fix.
    pub fn fatal(text: impl Into<String>) -> Self {
        Self::Fatal(text.into())
    }
}

/// A change as journaled, handed back to a runner to undo it.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoItem {
    /// The step that made it.
    pub step: String,
    /// Its change id.
    pub change_id: String,
    /// The change, as journaled.
    pub change: Value,
    /// The undo data, as journaled.
    pub undo: Undo,
    /// Whether its `done` was journaled; if not, it may or may not have happened.
    pub done: bool,
}

impl UndoItem {
    /// One line: the change as the plan printed it.
    pub fn summary(&self) -> String {
        change_summary(&self.change)
    }
}

/// One line for a journaled change: `+ container web (target)`, followed by `: what` for
/// one part of a change made in parts.
pub fn change_summary(change: &Value) -> String {
    let line = change_line(change);
    match change.get("part").and_then(Value::as_str) {
        Some(part) => format!("{line}: {part}"),
        None => line,
    }
}

/// The line of the whole change a journaled change (or part of one) belongs to:
/// `+ container web (target)`.
pub fn change_line(change: &Value) -> String {
    let s = |k: &str| change.get(k).and_then(Value::as_str).unwrap_or("?");
    let mark = match s("op") {
        "create" => '+',
        "replace" => '~',
        "remove" => '-',
        "run" => '!',
        _ => '?',
    };
    format!("{mark} {} {} ({})", s("resource"), s("name"), s("place"))
}

/// Everything the executor needs from the world.
pub trait Runner {
    /// Whether this runner can execute `step` at all (checked before a run starts, so
    /// that an unsupported step refuses the run before anything is changed).
    ///
    /// # Errors
    /// Why the step cannot run.
    fn supports(&self, step: &PlannedStep) -> Result<(), String>;

    /// Executes one step: for each change, [`StepCx::intent`] first, then the change,
    /// then [`StepCx::done`]. Returns the step's facts (digests, ids).
    fn execute(
        &self,
        step: &PlannedStep,
        cx: &mut StepCx<'_>,
    ) -> impl Future<Output = Result<Value, StepError>>;

    /// Undoes one journaled change. Safe whether or not the change happened, and
    /// when it was already undone.
    fn undo(&self, item: &UndoItem) -> impl Future<Output = Result<(), StepError>>;

    /// Saves data a rollback is about to remove ([`Keep`]) into `run_dir` (at
    /// [`Keep::path`]), before anything is undone. `Ok` with no path when there is nothing
    /// to save (the container or volume is gone).
    ///
    /// # Errors
    /// It could not be saved: the rollback must not remove it.
    fn keep(&self, keep: &Keep, run_dir: &Path) -> impl Future<Output = Result<Kept, StepError>>;

    /// Checks, on resume, that what a step done earlier produced still holds (its
    /// artifacts verify, its image exists).
    ///
    /// # Errors
    /// What no longer holds.
    fn still_valid(
        &self,
        step: &PlannedStep,
        facts: &Value,
        artifacts: &Path,
    ) -> impl Future<Output = Result<(), String>>;

    /// Whether `consumer`, the step right after `producer`, can read `producer`'s
    /// artifact while it is being written: the executor then runs them as a pipelined
    /// pair, `producer` handed a [`Feed`] ([`StepCx::feed`]) and `consumer` a [`Follow`]
    /// ([`StepCx::follow`]). Otherwise steps run one after the other. (No default: a
    /// runner that wraps others must pass the question on.)
    fn streams_from(&self, producer: &PlannedStep, consumer: &PlannedStep) -> bool;

    /// Waits until nothing a step asked of the world is still being made: a change carried
    /// on after its step was stopped (an image the engine is still loading when Ctrl-C
    /// came). The executor calls it before every undo, so that nothing appears behind the
    /// undo that looked for it, and before it journals the run's end, so that nothing
    /// appears after the process has gone.
    fn settled(&self) -> impl Future<Output = ()>;

    /// What [`Runner::settled`] would wait for now, a few words each (`load image web:1`):
    /// the executor says it when the wait is long. (No default, as for `settled`.)
    fn unsettled(&self) -> impl Future<Output = Vec<String>>;
}

/// Where a running step's records and events go: the run's journal and event sink,
/// shared by the two steps of a pipelined pair (one task, no await while borrowed).
pub(crate) trait Outlet {
    /// The sequence number the next record will get.
    fn next_seq(&self) -> u64;
    /// Appends (fsync'd) a record.
    fn append(&self, record: &Record) -> Result<u64, JournalError>;
    /// Emits an event.
    fn emit(&self, event: &Event);
}

/// What a step is handed while it runs.
pub struct StepCx<'a> {
    pub(super) out: &'a dyn Outlet,
    pub(super) redactor: &'a Redactor,
    pub(super) step: String,
    pub(super) run: &'a RunBinding,
    pub(super) artifacts: PathBuf,
    pub(super) secrets: &'a SecretStore,
    /// Changes whose intent this attempt journaled, in order.
    pub(super) changes: Vec<UndoItem>,
    /// The changes the plan lists for this step: the only ones it may make.
    pub(super) planned: Vec<Change>,
    /// The growing artifact this step writes for the next step, in a pipelined pair.
    pub(super) feed: Option<Feed>,
    /// The growing artifact of the step before, that this step reads as it is written.
    pub(super) follow: Option<Follow>,
    /// `--reuse-artifacts`: an earlier run's verified artifact may stand in for a pull.
    pub(super) reuse: Option<Reuse>,
    /// `--no-auto-rollback`: what a failed step made is left for inspection.
    pub(super) keep_failed: bool,
    /// The key this run's journal is checked with (`None`: unkeyed): what an earlier run's
    /// journal is read with when a pull builds on its verified artifact.
    pub(super) journal_key: Option<super::journal::JournalKey>,
}

/// What a step needs to take an earlier run's artifact instead of pulling
/// (`--reuse-artifacts`): how old it may be, and the key the earlier runs' journals are
/// checked with.
#[derive(Debug, Clone)]
pub struct Reuse {
    /// How long ago the artifact may have been pulled.
    pub max_age: std::time::Duration,
    /// The journal key (`None`: unkeyed journals).
    pub key: Option<super::journal::JournalKey>,
}

impl StepCx<'_> {
    /// The run's artifact directory (`artifacts/` of the run).
    pub fn artifacts(&self) -> &Path {
        &self.artifacts
    }

    /// The run's secrets, for resolving templates at the last moment.
    pub fn secrets(&self) -> &SecretStore {
        self.secrets
    }

    /// The run's directory (the parent of `artifacts/`), where a step may leave evidence
    /// of a failure (`health/`).
    pub fn run_dir(&self) -> &Path {
        self.artifacts.parent().unwrap_or(&self.artifacts)
    }

    /// Whether what a failed step made is left for inspection (`--no-auto-rollback`)
    /// rather than undone.
    pub fn keeps_failed(&self) -> bool {
        self.keep_failed
    }

    /// `text` with every secret value of the run replaced by `***`: for what a step writes
    /// itself (evidence files), as the journal and events are.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.text(text)
    }

    /// The step's id.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run.id
    }

    /// `--reuse-artifacts`: whether (and within which age) an earlier run's verified
    /// artifact with the same inputs may stand in for a pull; `None`: pull.
    pub fn reuse(&self) -> Option<&Reuse> {
        self.reuse.as_ref()
    }

    /// Where an incremental pull looks for the newest verified artifact with the same
    /// inputs: every earlier run of the app, whatever its age, read with this run's key.
    pub fn earlier_runs(&self) -> Reuse {
        Reuse {
            max_age: std::time::Duration::MAX,
            key: self.journal_key.clone(),
        }
    }

    /// The tag the build step `build` gives its image in this run, if it is a build step.
    pub fn image_of(&self, build: &str) -> Option<&str> {
        self.run.images.get(build).map(String::as_str)
    }

    /// In a pipelined pair, the writer's side of this step's artifact: report on it as
    /// the artifact is written ([`Feed::begin`], [`Feed::wrote`], [`Feed::finish`]).
    /// `None` when no step follows this one's artifact (or once taken).
    pub fn feed(&mut self) -> Option<Feed> {
        self.feed.take()
    }

    /// In a pipelined pair, the artifact of the step before, readable as it is written.
    /// `None` when this step runs on its own (its input is complete; or once taken).
    pub fn follow(&mut self) -> Option<Follow> {
        self.follow.take()
    }

    /// Journals (fsync'd) the intent to make `change`, with the data that undoes it,
    /// and returns the change id. Call before making the change.
    ///
    /// # Errors
    /// The journal could not be written; the change must not be made.
    pub fn intent(&mut self, change: &Change, undo: &Undo) -> Result<String, StepError> {
        // Plan fidelity: a change the plan did not list is refused before it is made.
        if !self
            .planned
            .iter()
            .any(|p| p.op == change.op && p.resource == change.resource && p.name == change.name)
        {
            return Err(StepError::fatal(format!(
                "plan fidelity: step `{}` was about to {} {} {}, which its plan does not list; it was not made",
                self.step,
                change.op.mark(),
                change.resource.word(),
                change.name
            )));
        }
        let change_id = format!("c{}", self.out.next_seq());
        let change = self
            .redactor
            .value(&serde_json::to_value(change).map_err(JournalError::from)?);
        // Undo data is executed by rollback: it is never rewritten, and a secret value in
        // it refuses the change (before it is made) rather than reach the journal.
        let journaled = undo.to_value();
        if self.redactor.value(&journaled) != journaled {
            return Err(StepError::fatal(format!(
                "the undo of step `{}` would contain a secret value, and undo data is journaled as is: keep secrets out of it (e.g. in `env`)",
                self.step
            )));
        }
        self.out.append(&Record::Intent {
            step: self.step.clone(),
            change_id: change_id.clone(),
            change: change.clone(),
            undo: journaled,
        })?;
        self.out.emit(&Event::ChangeStarted {
            step: self.step.clone(),
            change: change_id.clone(),
            summary: change_summary(&change),
        });
        self.changes.push(UndoItem {
            step: self.step.clone(),
            change_id: change_id.clone(),
            change,
            undo: undo.clone(),
            done: false,
        });
        Ok(change_id)
    }

    /// Journals that the change `change_id` was made, with what was learned.
    ///
    /// # Errors
    /// The journal could not be written.
    pub fn done(&mut self, change_id: &str, facts: &Value) -> Result<(), StepError> {
        self.out.append(&Record::Done {
            step: self.step.clone(),
            change_id: change_id.to_string(),
            facts: self.redactor.value(facts),
        })?;
        if let Some(c) = self.changes.iter_mut().find(|c| c.change_id == change_id) {
            c.done = true;
        }
        self.out.emit(&Event::ChangeDone {
            step: self.step.clone(),
            change: change_id.to_string(),
        });
        Ok(())
    }

    /// Journals a note (a host key accepted, a retry's cause).
    ///
    /// # Errors
    /// The journal could not be written.
    pub fn note(&mut self, kind: &str, text: &str) -> Result<(), StepError> {
        self.out.append(&Record::Note {
            kind: kind.into(),
            text: self.redactor.text(text),
        })?;
        Ok(())
    }

    /// Reports bytes moved so far.
    pub fn progress(&mut self, bytes: u64, total: Option<u64>) {
        self.out.emit(&Event::Progress {
            step: self.step.clone(),
            bytes,
            total,
        });
    }

    /// Reports a line of output (redacted before anyone sees it).
    pub fn output(&mut self, line: &str) {
        self.out.emit(&Event::Output {
            step: self.step.clone(),
            line: self.redactor.text(line),
        });
    }

    /// Emits a detail line (redacted): shown on a terminal only with `--verbose`.
    pub fn detail(&mut self, line: &str) {
        self.out.emit(&Event::Detail {
            step: self.step.clone(),
            line: self.redactor.text(line),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::journal::{HeaderFields, Journal};
    use crate::plan::{Op, Place, Resource};

    fn change(op: Op, name: &str) -> Change {
        Change {
            op,
            resource: Resource::Container,
            place: Place::Target,
            name: name.into(),
            details: Vec::new(),
            condition: None,
            undo: "remove it".into(),
            now: None,
            part: None,
        }
    }

    #[test]
    fn a_part_of_a_change_says_which_part_and_a_whole_change_does_not() {
        let whole = change(Op::Create, "web");
        let part = Change {
            details: vec!["through the helper `web.build`".into()],
            part: Some("through the helper `web.build`".into()),
            ..whole.clone()
        };
        let line = |c: &Change| change_summary(&serde_json::to_value(c).expect("json"));
        assert_eq!(line(&whole), "+ container web (target)");
        assert_eq!(
            line(&part),
            "+ container web (target): through the helper `web.build`"
        );
        // A plan's change has no part: the plan's JSON is as before.
        assert!(
            serde_json::to_value(&whole)
                .expect("json")
                .get("part")
                .is_none()
        );
    }

    struct Out(std::cell::RefCell<Journal>);
    impl Outlet for Out {
        fn next_seq(&self) -> u64 {
            self.0.borrow().next_seq()
        }
        fn append(&self, record: &Record) -> Result<u64, JournalError> {
            self.0.borrow_mut().append(record)
        }
        fn emit(&self, _: &Event) {}
    }

    #[test]
    fn a_change_the_plan_does_not_list_is_refused_before_its_intent_is_journaled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.jsonl");
        let journal = Journal::create(
            &path,
            &HeaderFields {
                run: "20261123T120000Z-0001".into(),
                app: "situs".into(),
                playbook_sha256: "aa".repeat(32),
                plan_sha256: "bb".repeat(32),
                operator: "andi".into(),
                host: "srv1".into(),
                started: std::time::SystemTime::UNIX_EPOCH,
            },
        )
        .expect("journal");
        let out = Out(std::cell::RefCell::new(journal));
        let store = SecretStore::default();
        let redactor = Redactor::new(&store);
        let binding = crate::plan::RunBinding::default();
        let mut cx = StepCx {
            out: &out,
            redactor: &redactor,
            step: "web".into(),
            run: &binding,
            artifacts: dir.path().to_path_buf(),
            secrets: &store,
            changes: Vec::new(),
            planned: vec![change(Op::Replace, "situs")],
            feed: None,
            follow: None,
            reuse: None,
            keep_failed: false,
            journal_key: None,
        };
        let undo = Undo::None;
        // Listed: journaled.
        assert!(cx.intent(&change(Op::Replace, "situs"), &undo).is_ok());
        // Another name, or another operation on the same name: refused, not journaled.
        for bad in [change(Op::Replace, "other"), change(Op::Remove, "situs")] {
            match cx.intent(&bad, &undo) {
                Err(StepError::Fatal(m)) => assert!(m.contains("plan fidelity"), "{m}"),
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        assert_eq!(cx.changes.len(), 1);
        let text = std::fs::read_to_string(&path).expect("reads");
        assert_eq!(text.matches("\"intent\"").count(), 1, "{text}");
        assert!(!text.contains("other"), "{text}");
    }
}
