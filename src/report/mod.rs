//! The evidence of one migration, for auditors: `boyong report`.
//!
//! Owns: [`Report`], built from a run directory alone (`playbook.yml`, `plan.json`,
//! `journal.jsonl`, `artifacts/`) by [`Report::from_run_dir`], and its renderings:
//! Markdown ([`md::render`]), one self-contained HTML page ([`html::render`]) and JSON
//! (serde; the shape is [`FORMAT`] 1: new fields may be added, none removed or renamed).
//!
//! Invariants:
//! - Nothing here writes anywhere, prints, or contacts a host: a report is a reading of
//!   what the run left, and the same directory gives the same report (the files'
//!   digests are computed afresh each time).
//! - A journal whose chain does not verify still gives a report, with the verdict
//!   `journal BROKEN` first and its records shown as written (they cannot be trusted).
//! - Every text comes from the journal, the plan or the artifacts, where secret values
//!   are already redacted to `***`; the report reads no secret and resolves no template.
//! - Fields a run of an older release did not record are `None`/empty, never an error.

mod assessment;
mod build;
mod evidence;
pub mod html;
mod kept;
mod layout;
pub mod md;
mod time;
pub use kept::KeptFile;
pub use time::epoch_seconds;

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

/// The report's JSON format version.
pub const FORMAT: u32 = 1;

/// Why a report cannot be made at all (a broken journal is not one of these: it is
/// reported).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory has no journal.
    #[error("no journal at {}", .0.display())]
    NoJournal(PathBuf),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Everything an auditor asks about one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: u32,
    /// The app.
    pub app: String,
    /// The run id.
    pub run: String,
    /// How the run ended, and whether its journal is intact.
    pub verdict: Verdict,
    /// Who ran it, from where, when.
    pub who: Who,
    /// The vendor host the app moved from, and the target it moved to.
    pub route: Route,
    /// The playbook and plan as run, with their digests.
    pub inputs: Inputs,
    /// Each step of the plan: outcome, attempts, times, facts.
    pub steps: Vec<StepReport>,
    /// Each file and tree in the run's `artifacts/`, with size and SHA-256.
    pub artifacts: Vec<Artifact>,
    /// The files of each pulled tree, as its manifest lists them.
    pub trees: Vec<TreeListing>,
    /// Database evidence: the dump on the vendor host, the restore on the target.
    pub databases: Vec<Database>,
    /// Images built.
    pub images: Vec<Image>,
    /// Containers made on the target.
    pub containers: Vec<Container>,
    /// Every journaled change and where it stands.
    pub changes: Vec<ChangeRow>,
    /// Undo records in journal order: automatic and requested rollbacks.
    pub rollback: Vec<RollbackRow>,
    /// Free-form journal notes (resumed, lock broken, host key, pruned …).
    pub notes: Vec<NoteRow>,
    /// Files a failed health check or a rollback kept (`health/`, `rollback/`).
    pub kept: Vec<KeptFile>,
    /// The journal itself: its chain and the `journal verify` result.
    pub journal: JournalEvidence,
}

/// The headline.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `succeeded`, `failed`, `rolled-back`, `rollback-incomplete`, `interrupted` or
    /// `unfinished` (no end recorded, or records after the last end).
    pub run: String,
    /// Whether the journal's hash chain verifies (a torn last line aside).
    pub journal_intact: bool,
    /// One line: `run SUCCEEDED; journal intact`.
    pub summary: String,
}

/// Who ran it, from where, when.
#[derive(Debug, Clone, Serialize)]
pub struct Who {
    /// The operator (journal header).
    pub operator: String,
    /// The machine boyong ran on (journal header).
    pub host: String,
    /// RFC 3339 UTC start.
    pub started: String,
    /// Time of the last journal record.
    pub last_record: String,
    /// Seconds from start to the last record.
    pub duration_s: Option<u64>,
    /// Resumes and rollbacks, with who did them when the journal says.
    pub later: Vec<String>,
}

/// From where to where.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// The vendor host, `user@host:port` (from `plan.json`).
    pub vendor: Option<String>,
    /// The known_hosts file the vendor's key was checked against.
    pub known_hosts: Option<String>,
    /// The vendor host keys seen, as journaled (`SHA256:…` fingerprints).
    pub host_keys: Vec<String>,
    /// The target engine (from `plan.json`).
    pub target: Option<String>,
}

/// The inputs as run, with their digests.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    /// The playbook's path when it was run.
    pub playbook: Option<String>,
    /// SHA-256 of the playbook, as the journal header recorded it.
    pub playbook_sha256: String,
    /// SHA-256 of the run's `playbook.yml` now; equal to the header's unless edited.
    pub playbook_file_sha256: Option<String>,
    /// SHA-256 of `plan.json`, as the journal header recorded it.
    pub plan_sha256: String,
    /// SHA-256 of the run's `plan.json` now.
    pub plan_file_sha256: Option<String>,
}

/// One step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// 1-based position in the plan (0: not in the plan).
    pub number: u64,
    /// Step id.
    pub id: String,
    /// Step kind (`fetch`, `build` …).
    pub kind: String,
    /// What the plan said it changes, one line each.
    pub planned: Vec<String>,
    /// `done`, `failed`, `undone`, `interrupted` or `not run`.
    pub outcome: String,
    /// Attempts started.
    pub attempts: u64,
    /// First start (RFC 3339).
    pub started: Option<String>,
    /// End of the last attempt (RFC 3339).
    pub ended: Option<String>,
    /// Seconds from first start to end (journal times: whole seconds).
    pub duration_s: Option<u64>,
    /// The last attempt's time in milliseconds, from `log.jsonl` (not hash-chained: the
    /// journal's `duration_s` is the evidence, this the precision).
    pub elapsed_ms: Option<u64>,
    /// The last error, if it failed.
    pub error: Option<String>,
    /// The facts it recorded when done.
    pub facts: Option<Value>,
}

/// A file or tree in `artifacts/`.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    /// Path relative to the run directory (`artifacts/code/` for a tree).
    pub path: String,
    /// The step it belongs to.
    pub step: String,
    /// `tree`, `manifest`, `tree-file`, `dump`, `evidence`, `volume-snapshot` or `file`.
    pub kind: String,
    /// Bytes (a tree: the sum of its files).
    pub bytes: u64,
    /// Files in a tree.
    pub files: Option<u64>,
    /// SHA-256 computed now (a tree: its manifest's digest, which commits to every file).
    pub sha256: String,
    /// The SHA-256 the journal or a manifest recorded for it, if any.
    pub recorded_sha256: Option<String>,
    /// Whether the two agree (`None`: nothing recorded to compare with).
    pub matches: Option<bool>,
}

/// One pulled tree's files.
#[derive(Debug, Clone, Serialize)]
pub struct TreeListing {
    /// The step.
    pub step: String,
    /// Its files: path, bytes, SHA-256 (from the manifest and the tree file).
    pub files: Vec<TreeFile>,
    /// Directories and links, counted.
    pub other_entries: u64,
    /// Whether every entry on disk matches the manifest and tree file now (each file hashed
    /// again when the report is made).
    pub verified_now: bool,
    /// The first difference found, if any.
    pub problem: Option<String>,
}

/// One file of a tree.
#[derive(Debug, Clone, Serialize)]
pub struct TreeFile {
    /// Path inside the tree.
    pub path: String,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256 as pulled.
    pub sha256: String,
}

/// A database's evidence at one end.
#[derive(Debug, Clone, Serialize)]
pub struct Database {
    /// The step.
    pub step: String,
    /// `dumped` (on the vendor host) or `restored` (on the target).
    pub role: String,
    /// The server's version string.
    pub server: Option<String>,
    /// The container, for a restore.
    pub container: Option<String>,
    /// Rows in all tables.
    pub rows: u64,
    /// Per table.
    pub tables: Vec<TableRow>,
    /// For a restore: whether checksums were compared with the dump's (same server
    /// version), or only row counts.
    pub checksums_compared: Option<bool>,
    /// For a dump: SHA-256 of the uncompressed SQL.
    pub sql_sha256: Option<String>,
}

/// One table's evidence.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TableRow {
    /// Name.
    pub table: String,
    /// Rows.
    pub rows: u64,
    /// Content checksum.
    #[serde(default)]
    pub checksum: String,
}

/// An image built.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// The step.
    pub step: String,
    /// The step's outcome: `done`, or `undone` when a rollback removed the image.
    pub outcome: String,
    /// Its tag.
    pub tag: String,
    /// Its id (`sha256:…`), the digest of its configuration.
    pub image_id: Option<String>,
    /// SHA-256 of the verified artifacts it was built from.
    pub source_sha256: Option<String>,
    /// SHA-256 of the build context streamed to the engine.
    pub context_sha256: Option<String>,
    /// Labels set on it (recorded since this release).
    pub labels: Vec<(String, String)>,
}

/// A container made on the target.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    /// The step.
    pub step: String,
    /// The step's outcome: `done`, or `undone` when a rollback removed the container.
    pub outcome: String,
    /// Its name.
    pub name: String,
    /// Its id.
    pub container_id: Option<String>,
    /// Its image reference.
    pub image: Option<String>,
    /// Its image id.
    pub image_id: Option<String>,
    /// The container it replaced, if any.
    pub previous: Option<String>,
    /// Its settings as the engine reports them after creation (hardening as applied).
    pub settings: Vec<(String, String)>,
    /// The health gate's result.
    pub health: Option<String>,
    /// Its route on the front proxy: host, proxy, and the certificate's SHA-256 and expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// A journaled change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    /// Change id.
    pub change_id: String,
    /// The step.
    pub step: String,
    /// `+ container web (target)`.
    pub summary: String,
    /// What part of it, when the step made it in parts.
    pub details: Vec<String>,
    /// `done`, `intended`, `failed`, `undone`, `undo failed: …`.
    pub state: String,
    /// When its intent was journaled.
    pub at: String,
    /// How it is undone (the plan's words).
    pub undo: Option<String>,
}

/// One record of a rollback.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackRow {
    /// When.
    pub at: String,
    /// `started`, `undoing`, `undone`, `undo-failed` or `finished`.
    pub event: String,
    /// The change, if any.
    pub change_id: Option<String>,
    /// Its step.
    pub step: Option<String>,
    /// What was said: why it started, the change's summary, the error, the result.
    pub text: String,
}

/// A journal note.
#[derive(Debug, Clone, Serialize)]
pub struct NoteRow {
    /// When.
    pub at: String,
    /// Its kind.
    pub kind: String,
    /// Its text.
    pub text: String,
}

/// The journal's own evidence.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEvidence {
    /// Path relative to the run directory.
    pub path: String,
    /// Complete lines.
    pub lines: usize,
    /// SHA-256 of the last complete line: the chain head.
    pub head_sha256: Option<String>,
    /// SHA-256 of the whole file.
    pub file_sha256: String,
    /// `intact` or `BROKEN`, as `boyong journal verify` says.
    pub verify: String,
    /// The first problem found, if any.
    pub problem: Option<String>,
    /// Whether the last line was torn by a crash (ignored, not a break).
    pub torn_tail: bool,
}

impl Report {
    /// Reads the run directory `dir` (`<state>/apps/<app>/runs/<run-id>`).
    ///
    /// # Errors
    /// The journal is missing or a file cannot be read. A journal that does not verify
    /// is not an error: see [`Verdict::journal_intact`].
    pub fn from_run_dir(dir: &std::path::Path) -> Result<Self, ReportError> {
        build::from_run_dir(dir)
    }

    /// The report as pretty-printed JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Only strings, numbers and JSON values: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
