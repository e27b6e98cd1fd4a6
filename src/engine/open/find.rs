//! Finding a run that exists, for the commands that read or undo one (`rollback`,
//! `report`, `journal verify`), and what a rollback of it would undo.
//!
//! Invariant: [`find_run`] hands out only a run whose journal is a file, so a command
//! that goes on to read it fails on its content, not on its absence.

use std::path::PathBuf;

use crate::engine::UndoItem;
use crate::engine::history::History;
use crate::engine::journal::{self, JournalError, JournalKey, Keying};
use crate::engine::keep::{Keep, keep_list};
use crate::engine::state::{RunDir, RunId, RunIdError, StateDir, StateError};
use crate::plan::{Plan, PlannedStep};

/// Why no run was found.
#[derive(Debug, thiserror::Error)]
pub enum FindRunError {
    /// The run named is not a run id.
    #[error("`{given}` is not a run id: {source}")]
    BadId {
        /// What was given.
        given: String,
        /// What is wrong with it.
        source: RunIdError,
    },
    /// The app has no run.
    #[error("app `{app}` has no runs in {}", root.display())]
    NoRuns {
        /// The app.
        app: String,
        /// The state directory.
        root: PathBuf,
    },
    /// The run has no journal.
    #[error("run {run} of `{app}` has no journal at {}", path.display())]
    NoJournal {
        /// The app.
        app: String,
        /// The run.
        run: RunId,
        /// Where its journal would be.
        path: PathBuf,
    },
    /// The state directory: an invalid app name, or it cannot be read.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The run `run` of `app`, or its latest, if it has a journal.
///
/// # Errors
/// [`FindRunError`].
pub fn find_run(dir: &StateDir, app: &str, run: Option<&str>) -> Result<RunDir, FindRunError> {
    let id = match run {
        Some(r) => RunId::parse(r).map_err(|source| FindRunError::BadId {
            given: r.to_owned(),
            source,
        })?,
        None => dir.latest_run(app)?.ok_or_else(|| FindRunError::NoRuns {
            app: app.to_owned(),
            root: dir.root().to_path_buf(),
        })?,
    };
    let run = dir.run(app, &id)?;
    if !run.journal_path().is_file() {
        return Err(FindRunError::NoJournal {
            app: app.to_owned(),
            path: run.journal_path(),
            run: id,
        });
    }
    Ok(run)
}

/// What a rollback of a run would undo, as its journal says now.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoList {
    /// The run's history.
    pub history: History,
    /// Its changes still to undo, newest first ([`History::pending`]).
    pub pending: Vec<UndoItem>,
    /// Whether its journal is keyed (its MACs checked) or unkeyed.
    pub keying: Keying,
    /// The data a rollback of these changes saves first ([`keep_list`]).
    pub keep: Vec<Keep>,
    /// Why `keep` cannot be trusted, if so: the run's plan, which says what a step's
    /// data is, does not read, or is not the plan the journal recorded. A rollback then
    /// saves nothing it could miss: it is refused unless the operator discards the data.
    pub keep_problem: Option<String>,
    key: Option<JournalKey>,
}

impl UndoList {
    /// Reads `run`'s journal, each line's MAC checked against `key` if it is keyed.
    ///
    /// # Errors
    /// The journal cannot be read or does not verify (a MAC that does not match, named
    /// by its line, included).
    pub fn read(run: &RunDir, key: Option<&JournalKey>) -> Result<Self, JournalError> {
        let contents = journal::read_keyed(&run.journal_path(), key)?;
        let history = History::from_journal(&contents);
        let pending = history.pending();
        let (keep, keep_problem) = match planned_steps(run, &history.header.plan_sha256) {
            Ok((steps, images)) => (
                keep_list(&steps, &pending, &images, &history.steps_done, false),
                None,
            ),
            Err(why) => (Vec::new(), Some(why)),
        };
        Ok(Self {
            history,
            pending,
            keying: contents.keying,
            keep,
            keep_problem,
            key: key.cloned(),
        })
    }

    /// Whether `run`'s journal still lists exactly these changes to undo (it may have
    /// grown since it was read, before the app's lock was taken).
    pub fn is_current(&self, run: &RunDir) -> bool {
        matches!(Self::read(run, self.key.as_ref()), Ok(now) if now.pending == self.pending)
    }
}

/// What [`planned_steps`] gives: the steps and each build step's image tag.
type Planned = (Vec<PlannedStep>, std::collections::BTreeMap<String, String>);

/// The steps of every version of `run`'s plan (`plan.json`, `plan.v2.json`, …; a later
/// version's step replaces an earlier one of the same id) and each build step's image tag.
///
/// # Errors
/// A version does not read, or `plan.json` is not the one whose SHA-256 the journal's
/// header recorded (`journaled`).
fn planned_steps(run: &RunDir, journaled: &str) -> Result<Planned, String> {
    let mut steps: Vec<PlannedStep> = Vec::new();
    let mut images = std::collections::BTreeMap::new();
    for v in 1..=run.version() {
        let path = if v == 1 {
            run.plan_path()
        } else {
            run.plan_version_path(v)
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if v == 1 && journal::sha256_hex(text.as_bytes()) != journaled {
            return Err(format!(
                "{} is not the plan the run's journal recorded (its SHA-256 differs)",
                path.display()
            ));
        }
        let plan = Plan::read(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(b) = &plan.run {
            images.extend(b.images.clone());
        }
        for s in plan.steps {
            match steps.iter_mut().find(|x| x.id == s.id) {
                Some(x) => *x = s,
                None => steps.push(s),
            }
        }
    }
    Ok((steps, images))
}

/// The playbook as `run` last ran it (its latest version, after any edit a resume
/// accepted): the path it was read from (recorded in the version's plan, so that its key
/// files are found beside it; the stored copy if not recorded) and the stored text
/// (empty if unreadable).
pub fn playbook_as_run(run: &RunDir) -> (PathBuf, Vec<u8>) {
    let n = run.version();
    let copy = run.playbook_version_path(n);
    let original = std::fs::read(run.plan_version_path(n))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("playbook")
                .and_then(|p| p.as_str())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| copy.clone());
    let bytes = std::fs::read(&copy).unwrap_or_default();
    (original, bytes)
}
