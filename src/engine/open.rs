//! Opening a run: everything between a validated plan and the executor.
//!
//! Owns: taking the app's lock for a command ([`take_lock`]); creating a new run
//! ([`create_run`]: its directory, an id that sorts after every run of the same second,
//! `playbook.yml` and `plan.json` written once with mode 0600 and fsync'd, the journal's
//! header); reopening the last run for `--resume` ([`reopen_run`], `resume.rs`: after an
//! edit of the playbook, the step diff, the new version saved and the first step to
//! redo), refused with a typed [`ResumeRefusal`] when the run cannot be resumed; finding a named or the latest run
//! ([`find_run`]); and the list of changes a rollback would undo ([`UndoList`]).
//!
//! Invariants:
//! - A run that could not be created leaves no run directory behind: once its directory
//!   exists, any later failure removes it again.
//! - A resumed run is the run that began: a run that ended (succeeded, rolled back) or
//!   whose rollback did not finish is never resumed. An edited playbook is saved as a new
//!   version beside the first (never over it) and journaled before anything runs.
//! - The caller holds the app's lock (from [`take_lock`]) while it creates or reopens a
//!   run, so no two processes pick the same run id or append to the same journal.
//!
//! Like the rest of the library this never prints, reads the environment or exits: who
//! runs boyong ([`Who`]) is passed in, and every refusal is a value for the caller to
//! word.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::engine::history::History;
use crate::engine::journal::{self, HeaderFields, Journal, JournalError, JournalKey};
use crate::engine::lock::{AppLock, Holder, LockError};
use crate::engine::state::{RunDir, RunId, StateDir, StateError, TimeError};
use crate::plan::Plan;
use crate::playbook::Playbook;

mod find;
mod resume;

pub use find::{FindRunError, UndoList, find_run, playbook_as_run};
pub use resume::{EDITED, Edit, ResumeRefusal, reopen_run};

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
    /// A resumed run whose playbook was edited since it began: the steps that changed,
    /// and from which one it redoes; `None` otherwise.
    pub edit: Option<Edit>,
    /// On resume: the first step to run again even if it is done (an edit changed it or
    /// a step before it); `None`: done steps that still hold are skipped.
    pub redo_from: Option<usize>,
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
            edit: None,
            redo_from: None,
        }),
        Err(e) => {
            // The run never began: leave no half-made run directory behind.
            let _ = fs::remove_dir_all(run.path());
            Err(e)
        }
    }
}

/// Writes a new file (mode 0600; never over an existing one) and syncs it.
pub(super) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CreateError> {
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

#[cfg(test)]
mod tests;
