//! The state directory: where boyong keeps per-app locks and per-run records.
//!
//! This module owns the on-disk layout, which is a contract shared by every
//! command and by operators reading the files by hand:
//!
//! ```text
//! <root>/apps/<app>/lock
//! <root>/apps/<app>/runs/<run-id>/playbook.yml, plan.json, journal.jsonl, log.jsonl, artifacts/
//!                                  playbook.vN.yml, plan.vN.json (edits a resume accepted)
//! ```
//!
//! It also owns the [`RunId`] format and the UTC timestamp formatting used by
//! the journal and the lock (no clock is read here: callers pass times in).
//!
//! Invariants:
//! - Every path this module hands out is built only from a validated app name
//!   (`[a-z0-9][a-z0-9-]{0,62}`) and a validated [`RunId`], so no component
//!   can be `..`, empty, absolute or contain a separator.
//! - Directories this module creates get mode `0o700` (state holds sensitive
//!   data), and their parent directory is fsync'd so the entry survives a crash.
//!   Pre-existing directories are not modified.
//! - [`RunId`]s sort lexicographically in time order.

use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

mod run_id;

pub use run_id::{RunId, RunIdError, TimeError, utc_rfc3339};

/// Mode given to every directory created under the state root.
const DIR_MODE: u32 = 0o700;

/// Errors from the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The app name does not match `[a-z0-9][a-z0-9-]{0,62}`.
    #[error("invalid app name {0:?}: expected [a-z0-9][a-z0-9-]{{0,62}}")]
    InvalidAppName(String),
    /// The time given cannot be turned into a run id.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A run directory with this id already exists.
    #[error("run directory {} already exists", path.display())]
    RunExists {
        /// The existing run directory.
        path: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "create directory".
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Whether `name` is a valid app name: `[a-z0-9][a-z0-9-]{0,62}`.
#[must_use]
pub fn is_valid_app_name(name: &str) -> bool {
    let b = name.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.len() <= 63 && b.first().is_some_and(ok) && b.iter().all(|c| ok(c) || *c == b'-')
}

/// One run's directory, as created by [`StateDir::create_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    id: RunId,
    path: PathBuf,
}

impl RunDir {
    /// The run id.
    #[must_use]
    pub fn id(&self) -> &RunId {
        &self.id
    }
    /// The run directory itself.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// `playbook.yml`: the playbook as run.
    #[must_use]
    pub fn playbook_path(&self) -> PathBuf {
        self.path.join("playbook.yml")
    }
    /// `plan.json`: the plan as run.
    #[must_use]
    pub fn plan_path(&self) -> PathBuf {
        self.path.join("plan.json")
    }
    /// The playbook of version `n` of the run: `playbook.yml` as the run began (1), then
    /// `playbook.vN.yml` for each edit a resume accepted.
    #[must_use]
    pub fn playbook_version_path(&self, n: u32) -> PathBuf {
        match n {
            0 | 1 => self.playbook_path(),
            n => self.path.join(format!("playbook.v{n}.yml")),
        }
    }
    /// The plan of version `n` of the run: `plan.json` (1), then `plan.vN.json`.
    #[must_use]
    pub fn plan_version_path(&self, n: u32) -> PathBuf {
        match n {
            0 | 1 => self.plan_path(),
            n => self.path.join(format!("plan.v{n}.json")),
        }
    }
    /// The run's current version: the highest `n` whose plan exists (1 for a run never
    /// edited).
    #[must_use]
    pub fn version(&self) -> u32 {
        let mut n = 1;
        while self.plan_version_path(n + 1).is_file() {
            n += 1;
        }
        n
    }
    /// `journal.jsonl`: the write-ahead journal.
    #[must_use]
    pub fn journal_path(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }
    /// `log.jsonl`: the structured log.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.path.join("log.jsonl")
    }
    /// `artifacts/`: files captured during the run.
    #[must_use]
    pub fn artifacts_dir(&self) -> PathBuf {
        self.path.join("artifacts")
    }
}

/// The state root and the layout beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Io { op, path, source }
}

/// fsyncs a directory so that entries created in it are durable.
fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Creates `dir` (mode 0o700) and fsyncs its parent. `Ok(false)` if it existed.
fn create_dir_durable(dir: &Path) -> Result<bool, StateError> {
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io_err("create directory", dir)(e)),
    }
    // The umask may have removed bits; make the mode exact.
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
        .map_err(io_err("set permissions on", dir))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(parent)?;
    Ok(true)
}

/// Creates `dir` and any missing ancestors, each durably with mode 0o700.
fn create_dir_all_durable(dir: &Path) -> Result<(), StateError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .take_while(|p| !p.is_dir())
        .collect();
    for p in missing.into_iter().rev() {
        create_dir_durable(p)?;
    }
    Ok(())
}

/// Names of the real (non-symlink) subdirectories of `dir`; empty if `dir`
/// does not exist.
fn subdir_names(dir: &Path) -> Result<Vec<String>, StateError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", dir))?;
        let is_dir = entry
            .file_type()
            .map_err(io_err("stat", &entry.path()))?
            .is_dir();
        if let (true, Ok(name)) = (is_dir, entry.file_name().into_string()) {
            names.push(name);
        }
    }
    Ok(names)
}

impl StateDir {
    /// A state directory rooted at `root` (nothing is touched on disk).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The state root.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/apps/<app>`.
    ///
    /// # Errors
    /// [`StateError::InvalidAppName`] if `app` is not a valid app name.
    pub fn app_dir(&self, app: &str) -> Result<PathBuf, StateError> {
        if !is_valid_app_name(app) {
            return Err(StateError::InvalidAppName(app.chars().take(64).collect()));
        }
        Ok(self.root.join("apps").join(app))
    }

    /// `<root>/apps/<app>/runs`.
    ///
    /// # Errors
    /// [`StateError::InvalidAppName`] if `app` is not a valid app name.
    pub fn runs_dir(&self, app: &str) -> Result<PathBuf, StateError> {
        Ok(self.app_dir(app)?.join("runs"))
    }

    /// `<root>/apps/<app>/runs/<run>`.
    ///
    /// # Errors
    /// [`StateError::InvalidAppName`] if `app` is not a valid app name.
    pub fn run_dir(&self, app: &str, run: &RunId) -> Result<PathBuf, StateError> {
        Ok(self.runs_dir(app)?.join(run.as_str()))
    }

    /// The [`RunDir`] of an existing or future run (nothing is checked on disk).
    ///
    /// # Errors
    /// [`StateError::InvalidAppName`] if `app` is not a valid app name.
    pub fn run(&self, app: &str, run: &RunId) -> Result<RunDir, StateError> {
        Ok(RunDir {
            path: self.run_dir(app, run)?,
            id: run.clone(),
        })
    }

    /// `<root>/apps/<app>/lock`.
    ///
    /// # Errors
    /// [`StateError::InvalidAppName`] if `app` is not a valid app name.
    pub fn lock_path(&self, app: &str) -> Result<PathBuf, StateError> {
        Ok(self.app_dir(app)?.join("lock"))
    }

    /// Creates `<root>/apps/<app>` (and missing ancestors) if needed, so the
    /// lock can be taken before any run exists. Returns the app directory.
    ///
    /// # Errors
    /// Invalid app name, or a filesystem error.
    pub fn ensure_app_dir(&self, app: &str) -> Result<PathBuf, StateError> {
        let dir = self.app_dir(app)?;
        create_dir_all_durable(&dir)?;
        Ok(dir)
    }

    /// Sorted names of the apps that have a directory. Entries that are not
    /// valid app names or not real directories are ignored.
    ///
    /// # Errors
    /// A filesystem error other than the apps directory not existing.
    pub fn apps(&self) -> Result<Vec<String>, StateError> {
        let mut apps = subdir_names(&self.root.join("apps"))?;
        apps.retain(|a| is_valid_app_name(a));
        apps.sort();
        Ok(apps)
    }

    /// The app's runs, oldest first. Entries that are not valid run ids or
    /// not real directories are ignored.
    ///
    /// # Errors
    /// Invalid app name, or a filesystem error other than "not found".
    pub fn runs(&self, app: &str) -> Result<Vec<RunId>, StateError> {
        let names = subdir_names(&self.runs_dir(app)?)?;
        let mut runs: Vec<RunId> = names.iter().filter_map(|n| RunId::parse(n).ok()).collect();
        runs.sort();
        Ok(runs)
    }

    /// The app's newest run, if any.
    ///
    /// # Errors
    /// As [`StateDir::runs`].
    pub fn latest_run(&self, app: &str) -> Result<Option<RunId>, StateError> {
        Ok(self.runs(app)?.pop())
    }

    /// Creates a new run directory (with `artifacts/`) for a run started at
    /// `now`, creating missing ancestors. All created directories get mode
    /// 0o700 and every new entry's parent directory is fsync'd.
    ///
    /// # Errors
    /// Invalid app name, `now` not representable ([`StateError::Time`]), the
    /// run directory already existing ([`StateError::RunExists`]; retry with
    /// another suffix), or a filesystem error.
    pub fn create_run(
        &self,
        app: &str,
        now: SystemTime,
        rand_suffix: u16,
    ) -> Result<RunDir, StateError> {
        let id = RunId::new(now, rand_suffix)?;
        let run = self.run(app, &id)?;
        create_dir_all_durable(&self.runs_dir(app)?)?;
        if !create_dir_durable(run.path())? {
            return Err(StateError::RunExists {
                path: run.path().to_path_buf(),
            });
        }
        create_dir_durable(&run.artifacts_dir())?;
        Ok(run)
    }
}

#[cfg(test)]
mod tests;
