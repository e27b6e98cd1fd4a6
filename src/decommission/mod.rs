//! Decommission: deleting the vendor's copy of an app after a verified migration, with
//! evidence (`boyong archive`, `boyong decommission`).
//!
//! Owns: what may be removed ([`items`]: exactly the paths the playbook's `fetch` steps
//! pulled and the databases its `dump` steps dumped, nothing else); the preconditions
//! ([`preconditions`]); the archive of a run's verified artifacts (`archive.rs`); the
//! journaled removal itself (`run.rs`); the vendor-side commands (`vendor.rs`); and the
//! certificate (`cert.rs`).
//!
//! A decommission is a run of its own, kept beside the migration's runs rather than
//! among them so that `rollback`, `run --resume` and `report` keep meaning the migration:
//! `apps/<app>/decommissions/<id>/` holds `decommission.json` (what it removes),
//! `journal.jsonl` (hash-chained, written ahead like a run's; every change's undo is
//! `none`: a deletion cannot be undone, and the journal says so) and the certificate
//! (`certificate.md`, `.json`, `.html`).
//!
//! Invariants: a tree is removed only after the vendor's files were hashed again and
//! found as pulled (unless the operator allows changes), and only a path that
//! [`vendor::safe_path`] accepts; each removal's intent is on disk before it is made; a
//! decommission whose journal did not end is continued by the next one, never started
//! afresh.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::artifact::manifest;
use crate::engine::History;
use crate::engine::RunResult;
use crate::engine::journal;
use crate::engine::state::{RunDir, StateDir, StateError};
use crate::playbook::{Playbook, StepKind};
use crate::steps::db::Dialect;

pub mod archive;
mod assessed;
pub mod cert;
pub mod db;
pub mod host;
pub mod live;
mod run;
pub mod vendor;

pub use run::{Removal, Removed, Unfinished, execute, open_or_continue, unfinished};

/// The minimum time since the cut-over when none is given: 7 days.
pub const DEFAULT_MIN_AGE_SECS: u64 = 7 * 86_400;

/// One thing that will be removed from the vendor host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// `tree:<step>`, `database:<step>`, `user:<step>` (the first dump step that logged
    /// in as it), `crontab:<n>`, `service:<unit>` or `user-service:<unit>`.
    pub id: String,
    /// The playbook step that pulled it (`decommission` for what the playbook's
    /// `decommission:` names).
    pub step: String,
    /// `tree`, `database`, `database-wipe` (emptied, kept), `user` (a database's login),
    /// `crontab` (a line of the vendor login's crontab), `service` or `user-service`.
    pub kind: String,
    /// The path, `ENGINE database NAME at HOST:PORT (user USER)`, the account, the
    /// crontab line or the unit.
    pub target: String,
    /// Files pulled (a tree).
    pub files: Option<u64>,
    /// Bytes pulled (a tree: the files; a database: the dump).
    pub bytes: Option<u64>,
    /// The last SHA-256 known: the tree's manifest, or the dump's `.sql.gz`.
    pub last_sha256: String,
    /// What runs on the vendor host to remove it.
    pub action: String,
    /// What differs on the vendor now from what was pulled (filled by the check).
    #[serde(default)]
    pub changed: Vec<String>,
    /// A database user: the account as its server named it (`user@host`, or the role),
    /// filled by the live look before anything is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Why it is not removed (a shared database user), shown and certified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

impl Item {
    fn new(id: String, step: &str, kind: &str, target: String, action: String) -> Self {
        Self {
            id,
            step: step.to_string(),
            kind: kind.to_string(),
            target,
            files: None,
            bytes: None,
            last_sha256: String::new(),
            action,
            changed: Vec::new(),
            account: None,
            kept: None,
        }
    }
}

/// A precondition and whether it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// `ok`, `refused`, or `none` (nothing recorded: shown, not blocking).
    pub state: String,
    /// What was found, or what is missing.
    pub detail: String,
}

impl Check {
    fn new(name: &str, ok: bool, detail: String) -> Self {
        Self {
            name: name.into(),
            state: if ok { "ok" } else { "refused" }.into(),
            detail,
        }
    }

    /// Whether this blocks the decommission.
    #[must_use]
    pub fn blocks(&self) -> bool {
        self.state == "refused"
    }
}

/// The migration run a decommission follows: the app's latest run.
#[derive(Debug)]
pub struct Source {
    /// Its directory.
    pub run: RunDir,
    /// Its journal read back (`None`: it does not verify, with why).
    pub history: Result<History, String>,
    /// Its journal's chain head (when it verifies).
    pub journal_head: Option<String>,
}

impl Source {
    /// The app's latest migration run, its journal read with `key` (each MAC checked).
    ///
    /// # Errors
    /// The app has no run, or the state directory cannot be read.
    pub fn latest(dir: &StateDir, app: &str, key: &journal::JournalKey) -> Result<Self, String> {
        let run = crate::engine::open::find_run(dir, app, None).map_err(|e| e.to_string())?;
        let (history, journal_head) = match journal::read_keyed(&run.journal_path(), Some(key)) {
            // A journal without MACs verifies as a plain SHA-256 chain, which whoever can
            // write the file can recompute: it proves neither that the run succeeded nor
            // when it ended, and the vendor's copy is not deleted on its word.
            Ok(c) if c.keying != journal::Keying::Checked => (
                Err(format!(
                    "its journal has no MACs ({}): a plain SHA-256 chain, which whoever can write the file can recompute, proves neither how the run ended nor when; run the migration again with this machine's key",
                    c.keying.word()
                )),
                None,
            ),
            Ok(c) => (Ok(History::from_journal(&c)), Some(c.head_sha256)),
            Err(e) => (Err(e.to_string()), None),
        };
        Ok(Self {
            run,
            history,
            journal_head,
        })
    }
}

/// Makes `dir` and its missing parents, mode 0700 (the state directory's contract).
///
/// # Errors
/// The file system.
pub(crate) fn mkdir_private(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Writes a new file, mode 0600, and syncs it.
///
/// # Errors
/// The file exists already, or the file system.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `apps/<app>/decommissions/`.
///
/// # Errors
/// An invalid app name.
pub fn decommissions_dir(dir: &StateDir, app: &str) -> Result<PathBuf, StateError> {
    Ok(dir.app_dir(app)?.join("decommissions"))
}

/// The latest finished decommission's certificate (`certificate.json`), if any.
#[must_use]
pub fn certificate_of(dir: &StateDir, app: &str) -> Option<PathBuf> {
    let d = decommissions_dir(dir, app).ok()?;
    let mut ids: Vec<PathBuf> = std::fs::read_dir(&d)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    ids.sort();
    ids.into_iter()
        .rev()
        .map(|p| p.join("certificate.json"))
        .find(|p| p.is_file())
}

pub use crate::playbook::units::parse_age;

/// What the playbook pulled and the run journaled, and what its `decommission:` names:
/// the items a decommission removes. With `wipe`, a database is emptied instead of
/// dropped, and its users stay.
///
/// # Errors
/// A fetched tree's manifest or a dump's is missing from the run (nothing to compare
/// the vendor's files with, or no last digest to certify).
pub fn items(pb: &Playbook, run: &RunDir, wipe: bool) -> Result<Vec<Item>, String> {
    let artifacts = run.artifacts_dir();
    let mut out = Vec::new();
    let (mut users, mut logins) = (Vec::new(), Vec::new());
    for step in &pb.steps {
        match &step.kind {
            StepKind::Fetch(f) => {
                let tree = read_tree(&artifacts, &step.id)?;
                let (files, bytes) = tree.values().fold((0, 0), |(n, b), node| match node {
                    manifest::Node::File { size, .. } => (n + 1, b + size),
                    _ => (n, b),
                });
                let m = artifacts.join(format!("{}.manifest", step.id));
                let (last, _) =
                    crate::digest::file_sha256(&m).map_err(|e| format!("{}: {e}", m.display()))?;
                out.push(Item {
                    files: Some(files),
                    bytes: Some(bytes),
                    last_sha256: last,
                    ..Item::new(
                        format!("tree:{}", step.id),
                        &step.id,
                        "tree",
                        f.path.clone(),
                        format!("rm -rf -- {}", crate::shell::quote(&f.path)),
                    )
                });
            }
            StepKind::Dump(d) => {
                let last = crate::steps::dump::artifact::dump_sha256(&artifacts, &step.id)?;
                let gz = artifacts.join(format!("{}.sql.gz", step.id));
                let bytes = std::fs::metadata(&gz).map(|m| m.len()).ok();
                let engine = format!("{:?}", d.engine).to_lowercase();
                out.push(Item {
                    bytes,
                    last_sha256: last,
                    ..Item::new(
                        format!("database:{}", step.id),
                        &step.id,
                        if wipe { "database-wipe" } else { "database" },
                        format!(
                            "{engine} database {} at {}:{} (user {})",
                            d.database, d.host, d.port, d.user
                        ),
                        db::action(Dialect::of(d.engine), &d.database, wipe),
                    )
                });
                let login = (engine.clone(), d.host.clone(), d.port, d.user.clone());
                if !wipe && !logins.contains(&login) {
                    logins.push(login);
                    users.push(Item::new(
                        format!("user:{}", step.id),
                        &step.id,
                        "user",
                        format!(
                            "{engine} user {} at {}:{} (as step `{}` logged in)",
                            d.user, d.host, d.port, step.id
                        ),
                        "DROP USER of the account the server names (CURRENT_USER()), found before anything is dropped".into(),
                    ));
                }
            }
            _ => {}
        }
    }
    // A database's users after every database: a user is dropped only once none of
    // this playbook's databases on its server needs it.
    out.extend(users);
    out.extend(host::items(&pb.decommission));
    Ok(out)
}

/// A fetched tree as its run recorded it (`<step>.manifest` and `<step>.tree`).
fn read_tree(artifacts: &Path, id: &str) -> Result<manifest::Tree, String> {
    let read = |ext: &str| {
        let p = artifacts.join(format!("{id}.{ext}"));
        std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    manifest::parse(&read("manifest")?, &read("tree")?)
}

/// The differences between what the vendor has under a fetched path now (`now`) and its
/// manifest: files changed, missing or new (a new file under an `exclude`d path is not
/// one: it was never pulled). `None` for `now`: the whole path is gone.
///
/// # Errors
/// The run's manifest cannot be read.
pub fn differences(
    artifacts: &Path,
    step: &str,
    exclude: &[String],
    now: Option<&[(Vec<u8>, String)]>,
) -> Result<Vec<String>, String> {
    let p = artifacts.join(format!("{step}.manifest"));
    let text = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let pulled: std::collections::BTreeMap<Vec<u8>, String> =
        manifest::parse_sums(&text).into_iter().collect();
    let Some(now) = now else {
        return Ok(vec!["the whole path is gone from the vendor host".into()]);
    };
    let now: std::collections::BTreeMap<&[u8], &str> = now
        .iter()
        .map(|(n, h)| (n.as_slice(), h.as_str()))
        .collect();
    let shown = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
    // as the pull's tar left them out: wildcards too
    let excluded = |n: &[u8]| crate::steps::excluded(exclude, n);
    let mut out = Vec::new();
    for (name, want) in &pulled {
        match now.get(name.as_slice()) {
            Some(h) if *h == want => {}
            Some(_) => out.push(format!("changed: {}", shown(name))),
            None => out.push(format!("missing: {}", shown(name))),
        }
    }
    for name in now.keys() {
        if !pulled.contains_key(*name) && !excluded(name) {
            out.push(format!("new: {}", shown(name)));
        }
    }
    Ok(out)
}

/// The preconditions read from the state directory: the last run succeeded, its
/// journal verifies, the app's last assessment did not fail (`assessed.rs`), the minimum time since
/// its end has passed, and its archive exists and verifies; `under_way`: a decommission of
/// the app began and did not finish (it is continued). (Whether its container
/// serves is checked live by the command, see `boyong status --check`.)
#[must_use]
pub fn preconditions(
    dir: &StateDir,
    app: &str,
    src: &Source,
    min_age: u64,
    now: u64,
    under_way: bool,
) -> Vec<Check> {
    let mut out = Vec::new();
    let id = src.run.id().as_str().to_owned();
    out.push(match &src.history {
        Ok(_) => Check::new(
            "journal verifies",
            true,
            format!(
                "run {id}: chain head {}",
                src.journal_head.as_deref().unwrap_or("?")
            ),
        ),
        Err(e) => Check::new("journal verifies", false, format!("run {id}: {e}")),
    });
    let (succeeded, ended) = match &src.history {
        Ok(h) => (
            h.result == Some(RunResult::Succeeded) && !h.unfinished_tail,
            h.last_at.clone(),
        ),
        Err(_) => (false, String::new()),
    };
    out.push(Check::new(
        "last run succeeded",
        succeeded,
        match &src.history {
            Ok(h) => format!(
                "run {id}: {}",
                h.result.map_or("did not finish", RunResult::word)
            ),
            Err(_) => format!("run {id}: its journal cannot be read"),
        },
    ));
    out.push(assessed::check(dir, app, src, under_way));
    let age = crate::report::epoch_seconds(&ended).map(|t| now.saturating_sub(t));
    out.push(match age {
        Some(a) => Check::new(
            "minimum time since the cut-over",
            a >= min_age,
            format!(
                "run {id} ended {ended}, {} ago; the minimum is {}",
                human_age(a),
                human_age(min_age)
            ),
        ),
        None => Check::new(
            "minimum time since the cut-over",
            false,
            format!("run {id}: no end time in its journal"),
        ),
    });
    out.push(match archive::verify(dir, app, src.run.id().as_str()) {
        Ok(a) => Check::new(
            "archive exists and verifies",
            true,
            format!("{} (SHA-256 {})", a.path.display(), a.sha256),
        ),
        Err(e) => Check::new(
            "archive exists and verifies",
            false,
            format!("{e}; make it with `boyong archive {app}`"),
        ),
    });
    out
}

/// `3 d 04 h`, `5 h 02 min`, `40 s`.
#[must_use]
pub fn human_age(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, _) => format!("{m} min"),
        (0, _, _) => format!("{h} h {m:02} min"),
        _ => format!("{d} d {h:02} h"),
    }
}

#[cfg(test)]
mod tests;
