//! `--resume`: reopening the app's last run, with the playbook as it is now.
//!
//! Owns: [`reopen_run`], [`ResumeRefusal`] and [`Edit`]. An unchanged playbook resumes
//! as the run began. An edited one is compared step by step with the run's plan
//! ([`Plan::step_diff`]): the steps before the first changed, new or moved one keep
//! what they did; from that step on, everything is redone (what those steps changed is
//! undone first by the executor, as a rollback would, then they run again).
//!
//! Invariants:
//! - The edit is refused, naming the step, when redoing would repeat a change that
//!   cannot be undone (a command without `undo`, made), or would undo a restored database
//!   that the app has used since a cut-over in the same redo (what users wrote is lost).
//! - An accepted edit is saved as a new version (`playbook.vN.yml`, `plan.vN.json`,
//!   never over an earlier one), then journaled (`note` of kind `playbook-edited` with
//!   the step diff) before anything runs. A crash between the two is finished by the next
//!   resume (the versions on disk against the edits journaled), and a crash before the
//!   redone steps were undone leaves them redone by the next resume (a step done before
//!   the last edit, at or after its first changed step, is never skipped).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{CreateError, OpenedRun, Who, write_new};
use crate::engine::RunResult;
use crate::engine::history::History;
use crate::engine::journal::{self, Journal, JournalError, JournalKey, Record};
use crate::engine::state::{RunDir, RunId, StateDir, StateError};
use crate::plan::{Plan, StepDiff, Undo, secret_paths};
use crate::playbook::Playbook;

/// A resumed run whose playbook was edited: the new version and its steps against the
/// version before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The run's version now (2 for the first edit).
    pub version: u32,
    /// The steps of this version against the one before.
    pub diff: StepDiff,
}

/// Why `--resume` refused: the app's last run cannot be continued.
#[derive(Debug, thiserror::Error)]
pub enum ResumeRefusal {
    /// The app has no run.
    #[error("app `{app}` has no run to resume; run it without --resume")]
    NoRuns {
        /// The app.
        app: String,
    },
    /// A rollback of the run began and did not finish.
    #[error(
        "a rollback of the last run of `{app}` ({run}) began and did not finish: finish it with `boyong rollback {app}` first"
    )]
    RollbackUnfinished {
        /// The app.
        app: String,
        /// The run.
        run: RunId,
    },
    /// The run succeeded.
    #[error("the last run of `{app}` ({run}) succeeded: nothing to resume")]
    Succeeded {
        /// The app.
        app: String,
        /// The run.
        run: RunId,
    },
    /// The run was rolled back.
    #[error("the last run of `{app}` ({run}) was rolled back: start a new run without --resume")]
    RolledBack {
        /// The app.
        app: String,
        /// The run.
        run: RunId,
    },
    /// The run's rollback left changes in place.
    #[error(
        "the last run of `{app}` ({run}) has an incomplete rollback: finish it with `boyong rollback {app}` first"
    )]
    RollbackIncomplete {
        /// The app.
        app: String,
        /// The run.
        run: RunId,
    },
    /// The playbook was edited in a way the run cannot take: redoing the steps it
    /// changes is not safe.
    #[error(
        "refused: the playbook changed since run {run} started, and {why}.\nThe steps, as the run has them and as the playbook has them now:\n{diff}"
    )]
    PlaybookChanged {
        /// The app.
        app: String,
        /// The run.
        run: RunId,
        /// Why redoing is not safe, naming the step.
        why: String,
        /// The step diff ([`StepDiff`]'s lines).
        diff: String,
    },
    /// The run's `playbook.yml` (or its latest version) cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    PlaybookUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The run's plan cannot be read back, so an edit cannot be compared with it.
    #[error("cannot compare the edited playbook with the run's plan {}: {why}", path.display())]
    PlanUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The new version could not be saved.
    #[error(transparent)]
    Save(#[from] CreateError),
    /// The state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// The run's journal: unreadable, broken, or a note could not be appended.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The journal note of an accepted edit.
pub const EDITED: &str = "playbook-edited";

/// `--resume`: the app's last run, if it is unfinished (its journal's MACs checked
/// against `key` if it is keyed), with `text` as its playbook now. `plan` gets the run's
/// id; the journal gets a note of who resumed it (and of a torn last line dropped), and
/// of an edit accepted ([`Edit`], also in [`OpenedRun::edit`]); [`OpenedRun::redo_from`]
/// says from which step the executor redoes. The caller holds the app's lock.
///
/// # Errors
/// [`ResumeRefusal`]; nothing was changed then.
pub fn reopen_run(
    dir: &StateDir,
    pb: &Playbook,
    text: &str,
    plan: &mut Plan,
    who: &Who,
    key: Option<&JournalKey>,
) -> Result<OpenedRun, ResumeRefusal> {
    let app = pb.app.clone();
    let id = dir
        .latest_run(&app)?
        .ok_or_else(|| ResumeRefusal::NoRuns { app: app.clone() })?;
    let run = dir.run(&app, &id)?;
    let h = History::from_journal(&journal::read_keyed(&run.journal_path(), key)?);
    resumable(&h, &app, &id)?;
    plan.for_run(id.as_str());
    let version = run.version();
    let path = run.playbook_version_path(version);
    let current =
        fs::read_to_string(&path).map_err(|source| ResumeRefusal::PlaybookUnreadable {
            path: path.clone(),
            source,
        })?;
    // What changes: a new edit now, or one saved but never journaled (a crash between),
    // or none; and from which step the run redoes.
    let journaled = u32::try_from(h.edits).unwrap_or(u32::MAX);
    let (edit, save) = if current != text {
        (Some(version + 1), true)
    } else if version > 1 && journaled < version - 1 {
        (Some(version), false)
    } else {
        (None, false)
    };
    // A step that the last journaled edit redoes and that is still done from before it (a
    // crash came before its undo) is redone, never skipped.
    let stale = stale_steps(&run, &h)?;
    let stale_at = plan.steps.iter().position(|s| stale.contains(&s.id));
    let (edit, redo_from) = match edit {
        Some(v) => {
            let old = read_plan(&run, v - 1)?;
            let mut diff = old.step_diff(plan);
            amend_secrets(&run, v - 1, &old, pb, plan, &mut diff);
            let from = stale_at.map_or(diff.redo_from, |i| i.min(diff.redo_from));
            if let Some(why) = unsafe_redo(&h, &old, plan, from) {
                return Err(ResumeRefusal::PlaybookChanged {
                    app,
                    run: id,
                    why,
                    diff: diff.to_string(),
                });
            }
            (Some(Edit { version: v, diff }), Some(from))
        }
        None => (None, stale_at),
    };
    if let (Some(e), true) = (&edit, save) {
        let plan_json = serde_json::to_string_pretty(&*plan)
            .map_err(|e| ResumeRefusal::Save(CreateError::Plan(e)))?
            + "\n";
        write_new(&run.playbook_version_path(e.version), text.as_bytes())?;
        write_new(&run.plan_version_path(e.version), plan_json.as_bytes())?;
    }
    let (mut journal, _) = Journal::open_append_keyed(&run.journal_path(), key)?;
    let mut note = format!("resumed by {} on {}", who.operator, who.host);
    if let Some(n) = journal.repaired_torn_tail() {
        let _ = write!(
            note,
            "; a torn last line ({n} bytes, never acknowledged) was dropped"
        );
    }
    journal.append(&Record::Note {
        kind: "resumed".into(),
        text: note,
    })?;
    if let Some(e) = &edit {
        journal.append(&Record::Note {
            kind: EDITED.into(),
            text: edited_note(&run, e, plan, pb),
        })?;
    }
    Ok(OpenedRun {
        run,
        journal,
        earlier: Some(h),
        edit,
        redo_from,
    })
}

/// The text of a `playbook-edited` note: the version, its files and their digests, from
/// which step the run redoes, and the step diff.
fn edited_note(run: &RunDir, e: &Edit, plan: &Plan, pb: &Playbook) -> String {
    let name = |p: PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let plan_sha = fs::read(run.plan_version_path(e.version))
        .map(|b| journal::sha256_hex(&b))
        .unwrap_or_default();
    let redo = match plan.steps.get(e.diff.redo_from) {
        Some(s) => format!("steps from `{}` on are redone", s.id),
        None => "no step is redone".into(),
    };
    format!(
        "playbook edited: version {} ({} sha256 {}, {} sha256 {plan_sha}); {redo}\n{}",
        e.version,
        name(run.playbook_version_path(e.version)),
        pb.sha256,
        name(run.plan_version_path(e.version)),
        e.diff
    )
}

/// Adds to `diff` the fields whose secret changed (a plan shows each as `***`): the
/// playbook of `version`, read again, against `pb`. Nothing is added when it no longer
/// reads (the plans' diff stands).
fn amend_secrets(
    run: &RunDir,
    version: u32,
    old: &Plan,
    pb: &Playbook,
    plan: &Plan,
    diff: &mut StepDiff,
) {
    let Ok(text) = fs::read(run.playbook_version_path(version)) else {
        return;
    };
    let Some(before) = crate::playbook::parse(Path::new(&old.playbook), &text).playbook else {
        return;
    };
    for s in &pb.steps {
        if let Some(o) = before.steps.iter().find(|o| o.id == s.id) {
            diff.amend(plan, &s.id, secret_paths(o, s));
        }
    }
}

/// The steps that the last edit journaled redoes and that are still done from before it.
fn stale_steps(run: &RunDir, h: &History) -> Result<BTreeSet<String>, ResumeRefusal> {
    let Ok(last @ 2..) = u32::try_from(h.edits + 1) else {
        return Ok(BTreeSet::new());
    };
    let now = read_plan(run, last)?;
    let diff = read_plan(run, last - 1)?.step_diff(&now);
    Ok(now.steps[diff.redo_from..]
        .iter()
        .filter(|s| h.done_before_last_edit(&s.id))
        .map(|s| s.id.clone())
        .collect())
}

fn read_plan(run: &RunDir, version: u32) -> Result<Plan, ResumeRefusal> {
    let path = run.plan_version_path(version);
    let text = fs::read_to_string(&path).map_err(|e| ResumeRefusal::PlanUnreadable {
        path: path.clone(),
        why: e.to_string(),
    })?;
    Plan::read(&text).map_err(|why| ResumeRefusal::PlanUnreadable { path, why })
}

/// Why redoing the steps of `new` from `redo_from` on (and undoing what removed steps
/// did) is not safe, naming the step; `None` when it is.
fn unsafe_redo(h: &History, old: &Plan, new: &Plan, redo_from: usize) -> Option<String> {
    let kept: BTreeSet<&str> = new.steps[..redo_from]
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let rerun: BTreeSet<&str> = new.steps[redo_from..]
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let kind = |id: &str| old.steps.iter().find(|s| s.id == id).map(|s| s.kind);
    // Oldest first: the first change named is the first the redo would trip on.
    let undone: Vec<_> = h
        .pending()
        .into_iter()
        .rev()
        .filter(|c| !kept.contains(c.step.as_str()))
        .collect();
    for c in &undone {
        if c.done && c.undo == Undo::None && rerun.contains(c.step.as_str()) {
            return Some(format!(
                "step `{}` made a change that has no undo ({}): redone, it would be made a second time",
                c.step,
                c.summary()
            ));
        }
    }
    let done_of = |k: &str| {
        undone
            .iter()
            .find(|c| c.done && kind(&c.step) == Some(k))
            .map(|c| c.step.clone())
    };
    if let (Some(restore), Some(deploy)) = (done_of("restore"), done_of("deploy")) {
        return Some(format!(
            "step `{restore}` restored a database that the app has used since step `{deploy}` cut over to it: redoing it would drop what was written since"
        ));
    }
    None
}

/// Whether the run `id` of `app`, as `h` tells it, may be resumed.
fn resumable(h: &History, app: &str, id: &RunId) -> Result<(), ResumeRefusal> {
    let (app, run) = (app.to_owned(), id.clone());
    if h.rollback_unfinished {
        return Err(ResumeRefusal::RollbackUnfinished { app, run });
    }
    match (h.result, h.unfinished_tail) {
        (Some(RunResult::Succeeded), false) => Err(ResumeRefusal::Succeeded { app, run }),
        (Some(RunResult::RolledBack), false) => Err(ResumeRefusal::RolledBack { app, run }),
        (Some(RunResult::RollbackIncomplete), false) => {
            Err(ResumeRefusal::RollbackIncomplete { app, run })
        }
        _ => Ok(()),
    }
}
