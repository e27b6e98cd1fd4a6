//! Opening a run: everything between a validated plan and the executor.
//!
//! Owns: taking the app's lock for a command ([`take_lock`]); creating a new run
//! ([`create_run`]: its directory, an id that sorts after every run of the same second,
//! `playbook.yml` and `plan.json` written once with mode 0600 and fsync'd, the journal's
//! header); reopening the last run for `--resume` ([`reopen_run`]), refused with a typed
//! [`ResumeRefusal`] when the run cannot be resumed; finding a named or the latest run
//! ([`find_run`]); and the list of changes a rollback would undo ([`UndoList`]).
//!
//! Invariants:
//! - A run that could not be created leaves no run directory behind: once its directory
//!   exists, any later failure removes it again.
//! - A resumed run is the run that began: its playbook's text must be byte for byte the
//!   one stored in `playbook.yml`, and a run that ended (succeeded, rolled back) or whose
//!   rollback did not finish is never resumed.
//! - The caller holds the app's lock (from [`take_lock`]) while it creates or reopens a
//!   run, so no two processes pick the same run id or append to the same journal.
//!
//! Like the rest of the library this never prints, reads the environment or exits: who
//! runs boyong ([`Who`]) is passed in, and every refusal is a value for the caller to
//! word.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::engine::RunResult;
use crate::engine::history::History;
use crate::engine::journal::{self, HeaderFields, Journal, JournalError, JournalKey, Record};
use crate::engine::lock::{AppLock, Holder, LockError};
use crate::engine::state::{RunDir, RunId, StateDir, StateError, TimeError};
use crate::plan::Plan;
use crate::playbook::Playbook;

mod find;

pub use find::{FindRunError, UndoList, find_run, playbook_as_run};

/// Who runs boyong, and where: recorded in the lock, the journal's header and a resume's
/// note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The operator (a login name).
    pub operator: String,
    /// The host boyong runs on.
    pub host: String,
}

/// A run ready for the executor: its directory, its journal open for appending, and, when
/// resumed, what its journal said before.
#[derive(Debug)]
pub struct OpenedRun {
    /// The run's directory.
    pub run: RunDir,
    /// Its journal, positioned to append.
    pub journal: Journal,
    /// The history of a resumed run; `None` for a new one.
    pub earlier: Option<History>,
}

/// Why the app's lock was not taken. The caller words what it means for its command.
#[derive(Debug, thiserror::Error)]
pub enum TakeLockError {
    /// The app's directory could not be made (nothing was changed).
    #[error(transparent)]
    AppDir(StateError),
    /// The lock's path: an invalid app name.
    #[error(transparent)]
    Path(StateError),
    /// The holder's description (the time) could not be made.
    #[error(transparent)]
    Holder(TimeError),
    /// Another process holds the lock.
    #[error(transparent)]
    Held(LockError),
    /// Any other failure to take it (breaking it refused, the file system).
    #[error(transparent)]
    Lock(LockError),
}

/// Takes `app`'s lock for `command` (e.g. `boyong run`), breaking it first with
/// `break_lock` (refused while its holder may be alive). [`AppLock::previous`] tells of
/// a holder that ended without releasing it.
///
/// # Errors
/// [`TakeLockError`]: a held lock is [`TakeLockError::Held`].
pub fn take_lock(
    dir: &StateDir,
    app: &str,
    command: &str,
    break_lock: bool,
    who: &Who,
) -> Result<AppLock, TakeLockError> {
    dir.ensure_app_dir(app).map_err(TakeLockError::AppDir)?;
    let path = dir.lock_path(app).map_err(TakeLockError::Path)?;
    let holder = Holder::current(&who.host, &who.operator, command, SystemTime::now())
        .map_err(TakeLockError::Holder)?;
    let taken = if break_lock {
        AppLock::break_and_acquire(&path, holder, "--break-lock given by the operator")
    } else {
        AppLock::acquire(&path, holder)
    };
    taken.map_err(|e| match e {
        e @ LockError::Held { .. } => TakeLockError::Held(e),
        e => TakeLockError::Lock(e),
    })
}

/// Why a new run could not be created. Nothing was changed: no run directory is left.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The run's directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// The plan could not be encoded as JSON.
    #[error(transparent)]
    Plan(serde_json::Error),
    /// `playbook.yml` or `plan.json` could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `playbook.yml` or `plan.json` could not be written and synced.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The journal could not be created.
    #[error(transparent)]
    Journal(JournalError),
}

/// A new run of `pb` (whose text is `text`), with `plan` made for it: its directory,
/// `playbook.yml`, `plan.json` (with the run's id filled in) and the journal's header.
/// The caller holds the app's lock.
///
/// # Errors
/// [`CreateError`]; the run's directory is removed again once it was made.
pub fn create_run(
    dir: &StateDir,
    pb: &Playbook,
    text: &str,
    plan: &mut Plan,
    who: &Who,
    key: Option<&JournalKey>,
) -> Result<OpenedRun, CreateError> {
    let now = SystemTime::now();
    let run = dir.create_run(&pb.app, now, next_suffix(dir, &pb.app, now))?;
    plan.for_run(run.id().as_str());
    let started = (|| {
        let plan_json = serde_json::to_string_pretty(&*plan).map_err(CreateError::Plan)? + "\n";
        write_new(&run.playbook_path(), text.as_bytes())?;
        write_new(&run.plan_path(), plan_json.as_bytes())?;
        Journal::create_keyed(
            &run.journal_path(),
            &HeaderFields {
                run: run.id().to_string(),
                app: pb.app.clone(),
                playbook_sha256: pb.sha256.clone(),
                plan_sha256: journal::sha256_hex(plan_json.as_bytes()),
                operator: who.operator.clone(),
                host: who.host.clone(),
                started: now,
            },
            key,
        )
        .map_err(CreateError::Journal)
    })();
    match started {
        Ok(journal) => Ok(OpenedRun {
            run,
            journal,
            earlier: None,
        }),
        Err(e) => {
            // The run never began: leave no half-made run directory behind.
            let _ = fs::remove_dir_all(run.path());
            Err(e)
        }
    }
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
    /// The playbook's text is not the one the run began with.
    #[error(
        "refused: the playbook changed since run {run} started; a resumed run must do what the run began.\n{diff}"
    )]
    PlaybookChanged {
        /// The app.
        app: String,
        /// The run.
        run: RunId,
        /// The lines that differ, one per line (see [`line_diff`]).
        diff: String,
    },
    /// The run's `playbook.yml` cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    PlaybookUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// The run's journal: unreadable, broken, or a note could not be appended.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// `--resume`: the app's last run, if it is unfinished and `text` is its playbook's text
/// unchanged (its journal's MACs checked against `key` if it is keyed). `plan` gets the
/// run's id; the journal gets a note of who resumed it (and of a torn last line dropped).
/// The caller holds the app's lock.
///
/// # Errors
/// [`ResumeRefusal`].
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
    let path = run.playbook_path();
    let before = fs::read_to_string(&path).map_err(|source| ResumeRefusal::PlaybookUnreadable {
        path: path.clone(),
        source,
    })?;
    if before != text {
        return Err(ResumeRefusal::PlaybookChanged {
            app,
            run: id,
            diff: line_diff(&before, text),
        });
    }
    plan.for_run(id.as_str());
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
    Ok(OpenedRun {
        run,
        journal,
        earlier: Some(h),
    })
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

/// Writes a new file (mode 0600; never over an existing one) and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CreateError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| CreateError::CreateFile {
            path: path.to_path_buf(),
            source,
        })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|source| CreateError::WriteFile {
            path: path.to_path_buf(),
            source,
        })
}

/// The random part of a new run's id, above any run's of the same second, so that ids
/// keep sorting in the order runs began (the app's lock is held, so none can race).
pub fn next_suffix(dir: &StateDir, app: &str, now: SystemTime) -> u16 {
    let Ok(probe) = RunId::new(now, 0) else {
        return suffix(now);
    };
    let second = &probe.as_str()[..probe.as_str().len() - 4];
    let last = dir
        .runs(app)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.as_str().starts_with(second))
        .filter_map(|r| u16::from_str_radix(&r.as_str()[second.len()..], 16).ok())
        .max();
    match last {
        Some(n) => n.saturating_add(1),
        None => suffix(now) & 0x7fff,
    }
}

/// A run id's random part: time and pid mixed (ids also sort by time).
pub fn suffix(now: SystemTime) -> u16 {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = nanos ^ std::process::id().rotate_left(16) ^ (nanos >> 16);
    u16::try_from(mixed & 0xffff).unwrap_or(0)
}

/// The lines that differ between two texts, with line numbers (common head and tail
/// trimmed; at most 20 lines each side), each ending in a newline.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut out = String::new();
    for (i, l) in a[head..a.len() - tail].iter().enumerate().take(20) {
        let _ = writeln!(out, "  - line {}: {l}", head + i + 1);
    }
    for (i, l) in b[head..b.len() - tail].iter().enumerate().take(20) {
        let _ = writeln!(out, "  + line {}: {l}", head + i + 1);
    }
    if out.is_empty() {
        out.push_str("  (only line endings or the final newline differ)\n");
    }
    out
}

#[cfg(test)]
mod tests;
