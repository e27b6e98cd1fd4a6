//! The per-app lock (`<root>/apps/<app>/lock`): one operator at a time.
//!
//! This module owns the lock file and its content. The lock itself is the
//! OS file lock (`flock` via [`File::try_lock`]), which the kernel releases
//! when the holding process dies, so a held OS lock is never stale. The file
//! content is only a description of the holder, as JSON:
//! `{"pid":…,"host":"…","operator":"…","command":"…","started":"…"}`.
//!
//! Invariants:
//! - Holder content is written only while the OS lock is held, and is
//!   truncated away on release; content found when the lock is free therefore
//!   means the previous holder ended without releasing (it crashed), which
//!   [`AppLock::previous`] reports.
//! - [`AppLock::break_and_acquire`] never breaks a lock whose holder is on
//!   this host unless that process is provably dead. Breaking replaces the
//!   lock file (unlink and recreate), since an OS lock cannot be stolen.
//! - The lock is held exactly as long as the [`AppLock`] lives.
//!
//! The app directory must already exist (see `StateDir::ensure_app_dir`).

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::engine::state::{TimeError, utc_rfc3339};

/// Who holds (or held) a lock, as stored in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id on `host`.
    pub pid: u32,
    /// Host the process runs on.
    pub host: String,
    /// Operator who started it.
    pub operator: String,
    /// Command being run, e.g. `boyong run`.
    pub command: String,
    /// RFC 3339 UTC time the lock was taken.
    pub started: String,
}

/// Whether a holder's process is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// It exists on this host (it may be an unrelated process that reused
    /// the pid).
    Alive,
    /// No such process on this host.
    Dead,
    /// It is on another host, or the check failed.
    Unknown,
}

impl Holder {
    /// A holder description.
    ///
    /// # Errors
    /// [`TimeError`] if `started` cannot be formatted.
    pub fn new(
        pid: u32,
        host: impl Into<String>,
        operator: impl Into<String>,
        command: impl Into<String>,
        started: SystemTime,
    ) -> Result<Self, TimeError> {
        Ok(Self {
            pid,
            host: host.into(),
            operator: operator.into(),
            command: command.into(),
            started: utc_rfc3339(started)?,
        })
    }

    /// A holder description for the current process.
    ///
    /// # Errors
    /// [`TimeError`] if `started` cannot be formatted.
    pub fn current(
        host: impl Into<String>,
        operator: impl Into<String>,
        command: impl Into<String>,
        started: SystemTime,
    ) -> Result<Self, TimeError> {
        Self::new(std::process::id(), host, operator, command, started)
    }

    /// Whether this holder's process is running, judged from `local_host`
    /// (the host name of the caller): only same-host pids can be checked.
    #[must_use]
    pub fn is_process_alive(&self, local_host: &str) -> Liveness {
        if self.host != local_host {
            return Liveness::Unknown;
        }
        pid_liveness(self.pid)
    }
}

/// Whether process `pid` exists on this host: `/proc/PID` (Linux), read without
/// `unsafe`. A zombie (state `Z`) has ended.
fn pid_liveness(pid: u32) -> Liveness {
    if pid == 0 {
        return Liveness::Unknown;
    }
    let proc_dir = std::path::Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return Liveness::Unknown;
    }
    match std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            if state == Some("Z") {
                Liveness::Dead
            } else {
                Liveness::Alive
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Liveness::Dead,
        Err(_) => Liveness::Unknown,
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} (operator {} on host {}, `{}`, since {})",
            self.pid, self.operator, self.host, self.command, self.started
        )
    }
}

/// A lock broken by [`AppLock::break_and_acquire`], for the caller to journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLock {
    /// The holder whose lock was broken.
    pub holder: Holder,
    /// Its liveness as judged when breaking (`Dead` or `Unknown`).
    pub liveness: Liveness,
    /// Why the operator broke it.
    pub reason: String,
}

impl fmt::Display for BrokenLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "broke lock held by {}: {}", self.holder, self.reason)
    }
}

/// Errors from taking or releasing a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock. `holder` is `None` if its description
    /// is not (yet) readable.
    #[error("app `{app}` is locked by {}", holder.as_ref().map_or_else(|| "another process (holder unknown)".to_owned(), ToString::to_string))]
    Held {
        /// The app (the lock file's directory name).
        app: String,
        /// The holder, if known.
        holder: Option<Box<Holder>>,
    },
    /// Breaking was refused: the holder is alive (or not provably dead) on
    /// this host.
    #[error("refusing to break the lock of app `{app}`: {holder} is {} on this host", if *liveness == Liveness::Alive { "alive" } else { "not provably dead" })]
    HolderAlive {
        /// The app.
        app: String,
        /// The holder.
        holder: Box<Holder>,
        /// Its liveness.
        liveness: Liveness,
    },
    /// Breaking was refused: the holder description cannot be read.
    #[error("refusing to break the lock of app `{app}`: the holder cannot be identified")]
    HolderUnknown {
        /// The app.
        app: String,
    },
    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LockError {
    let path = path.to_path_buf();
    move |source| LockError::Io { op, path, source }
}

fn app_of(path: &Path) -> String {
    path.parent().and_then(Path::file_name).map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads the holder description; `None` if empty or unparsable.
fn read_holder(file: &mut File, path: &Path) -> Result<Option<Holder>, LockError> {
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .map_err(io_err("read lock file", path))?;
    Ok(serde_json::from_slice(&buf).ok())
}

/// An acquired app lock; released (content truncated, OS lock dropped) when
/// dropped or on [`AppLock::release`].
#[derive(Debug)]
pub struct AppLock {
    file: File,
    path: PathBuf,
    holder: Holder,
    previous: Option<(Holder, Liveness)>,
    broken: Option<BrokenLock>,
    released: bool,
}

enum Attempt {
    Acquired(Box<AppLock>),
    Held(Option<Holder>),
}

impl AppLock {
    fn attempt(path: &Path, holder: Holder) -> Result<Attempt, LockError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_err("open lock file", path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let current = read_holder(&mut file, path)?;
                return Ok(Attempt::Held(current));
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock", path)(e)),
        }
        let previous = read_holder(&mut file, path)?.map(|p| {
            let liveness = p.is_process_alive(&holder.host);
            (p, liveness)
        });
        let json =
            serde_json::to_vec(&holder).map_err(|e| io_err("encode holder for", path)(e.into()))?;
        file.set_len(0)
            .and_then(|()| file.write_all_at(&json, 0))
            .and_then(|()| file.sync_all())
            .map_err(io_err("write lock file", path))?;
        Ok(Attempt::Acquired(Box::new(Self {
            file,
            path: path.to_path_buf(),
            holder,
            previous,
            broken: None,
            released: false,
        })))
    }

    /// Who holds the lock at `path` now, without taking it or writing anything
    /// (for `status`): `Ok(None)` when it is free or the file does not exist, and
    /// `Ok(Some(None))` when it is held by a holder not yet described.
    ///
    /// # Errors
    /// An I/O error other than the file not existing.
    pub fn probe(path: &Path) -> Result<Option<Option<Holder>>, LockError> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open lock file", path)(e)),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                // Free: drop the shared lock at once.
                let _ = file.unlock();
                Ok(None)
            }
            Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file, path)?)),
            Err(TryLockError::Error(e)) => Err(io_err("lock", path)(e)),
        }
    }

    /// Takes the lock at `path` without waiting and records `holder` in it.
    ///
    /// # Errors
    /// [`LockError::Held`] naming the current holder, or an I/O error.
    pub fn acquire(path: &Path, holder: Holder) -> Result<Self, LockError> {
        match Self::attempt(path, holder)? {
            Attempt::Acquired(lock) => Ok(*lock),
            Attempt::Held(current) => Err(LockError::Held {
                app: app_of(path),
                holder: current.map(Box::new),
            }),
        }
    }

    /// `--break-lock`: takes the lock even if it is held, provided the holder
    /// is on another host (whose OS lock may be unreliable, e.g. on NFS) or is
    /// a dead process on this host (`holder.host` is taken as this host).
    /// The lock file is replaced; the returned lock's [`AppLock::broken`]
    /// names the broken holder and `reason`. If the lock is not held this is
    /// a plain [`AppLock::acquire`].
    ///
    /// # Errors
    /// [`LockError::HolderAlive`] if the holder is on this host and not
    /// provably dead; [`LockError::HolderUnknown`] if the holder cannot be
    /// read; [`LockError::Held`] if someone else took the new lock first; I/O
    /// errors.
    pub fn break_and_acquire(path: &Path, holder: Holder, reason: &str) -> Result<Self, LockError> {
        let local_host = holder.host.clone();
        let current = match Self::attempt(path, holder.clone())? {
            Attempt::Acquired(lock) => return Ok(*lock),
            Attempt::Held(current) => current,
        };
        let app = app_of(path);
        let Some(current) = current else {
            return Err(LockError::HolderUnknown { app });
        };
        let liveness = current.is_process_alive(&local_host);
        if current.host == local_host && liveness != Liveness::Dead {
            return Err(LockError::HolderAlive {
                app,
                holder: Box::new(current),
                liveness,
            });
        }
        // Narrow the race with a release (and retake) since we looked: then
        // there is nothing to break, and a plain acquire decides.
        let mut again = File::open(path).map_err(io_err("open lock file", path))?;
        if read_holder(&mut again, path)?.as_ref() != Some(&current) {
            return Self::acquire(path, holder);
        }
        fs::remove_file(path).map_err(io_err("remove lock file", path))?;
        let mut lock = Self::acquire(path, holder)?;
        lock.broken = Some(BrokenLock {
            holder: current,
            liveness,
            reason: reason.to_owned(),
        });
        Ok(lock)
    }

    /// This lock's holder (as written into the file).
    #[must_use]
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A holder left in the file by a process that ended without releasing
    /// the lock (crashed?), with its liveness as seen from this host.
    #[must_use]
    pub fn previous(&self) -> Option<(&Holder, Liveness)> {
        self.previous.as_ref().map(|(h, l)| (h, *l))
    }

    /// The lock broken to get this one, if any.
    #[must_use]
    pub fn broken(&self) -> Option<&BrokenLock> {
        self.broken.as_ref()
    }

    /// Releases the lock now, reporting errors that `Drop` would ignore.
    ///
    /// # Errors
    /// I/O errors clearing the holder or unlocking (the lock is still
    /// released when the file is closed).
    pub fn release(mut self) -> Result<(), LockError> {
        self.released = true;
        self.file
            .set_len(0)
            .map_err(io_err("clear lock file", &self.path))?;
        self.file.unlock().map_err(io_err("unlock", &self.path))
    }
}

impl Drop for AppLock {
    fn drop(&mut self) {
        if !self.released {
            // Errors cannot be reported here; closing the file unlocks anyway.
            let _ = self.file.set_len(0);
            let _ = self.file.unlock();
        }
    }
}

#[cfg(test)]
mod tests;
