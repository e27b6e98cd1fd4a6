//! The report's "Kept for inspection" section: what a failure or a rollback kept in the
//! run directory besides the artifacts: a failed health check's evidence
//! (`health/STEP.txt`, with `health/STEP.json` read for the summary) and the data saved
//! before a rollback removed it (`rollback/STEP.sql.gz`, `rollback/STEP.VOLUME.tar`).
//! Each file's SHA-256 is computed now and compared with the one its journal note
//! recorded (`health-evidence`, `data-kept`). Present only when there is something.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::build::s;
use super::evidence::file_digest;
use super::layout::{Block, Cell, Section, Table};
use super::{NoteRow, Report, ReportError};

/// Log lines a health summary shows.
const LOG_LINES_SHOWN: usize = 5;

/// A file kept in the run directory.
#[derive(Debug, Clone, Serialize)]
pub struct KeptFile {
    /// The step it concerns.
    pub step: String,
    /// `health` (a failed health check's evidence) or `rollback-data` (data saved before a
    /// rollback).
    pub kind: String,
    /// Path relative to the run directory.
    pub path: String,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256 computed now.
    pub sha256: String,
    /// The SHA-256 its journal note recorded, if any.
    pub recorded_sha256: Option<String>,
    /// What it says, in a few lines (a health check's reason, answer and last log lines).
    pub summary: Vec<String>,
}

/// The SHA-256 a note of `kinds` recorded for `path` (`PATH (sha256 HEX…`).
fn recorded(notes: &[NoteRow], kinds: &[&str], path: &str) -> Option<String> {
    notes
        .iter()
        .filter(|n| kinds.contains(&n.kind.as_str()))
        .find_map(|n| {
            let at = n.text.find(path)?;
            let hex = n.text[at + path.len()..].strip_prefix(" (sha256 ")?;
            let hex = hex.get(..64)?;
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| hex.to_string())
        })
}

/// The summary of a health check's evidence (`health/STEP.json`).
fn health_summary(json: &Value) -> Vec<String> {
    let mut out: Vec<String> = s(json, "reason").into_iter().collect();
    if let Some(c) = s(json, "container") {
        out.push(format!(
            "container {c}: {}",
            s(json, "kept_as").map_or_else(
                || "removed".to_string(),
                |k| format!("kept, stopped, as {k}")
            )
        ));
    }
    if let Some(line) = s(&json["answer"], "status_line") {
        let to = s(&json["answer"], "location")
            .map(|l| format!(" -> {l}"))
            .unwrap_or_default();
        out.push(format!("last answer: {line}{to}"));
    }
    let logs: Vec<&str> = json["logs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let from = logs.len().saturating_sub(LOG_LINES_SHOWN);
    out.extend(logs[from..].iter().map(|l| format!("| {l}")));
    out
}

/// The files kept in `run_dir`'s `health/` and `rollback/`, sorted by path.
pub(super) fn kept(run_dir: &Path, notes: &[NoteRow]) -> Result<Vec<KeptFile>, ReportError> {
    let mut out = Vec::new();
    for (dir, kind) in [("health", "health"), ("rollback", "rollback-data")] {
        let Ok(entries) = std::fs::read_dir(run_dir.join(dir)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let (step, summary) = if kind == "health" {
                // The `.json` is read for the `.txt`'s summary, not listed on its own.
                let Some(step) = name.strip_suffix(".txt") else {
                    continue;
                };
                let json = std::fs::read(run_dir.join(dir).join(format!("{step}.json")))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .unwrap_or(Value::Null);
                (step.to_string(), health_summary(&json))
            } else {
                let step = name.split('.').next().unwrap_or_default().to_string();
                (step, Vec::new())
            };
            let path = format!("{dir}/{name}");
            let (sha256, bytes) = file_digest(&run_dir.join(&path))?;
            out.push(KeptFile {
                step,
                kind: kind.into(),
                recorded_sha256: recorded(notes, &["health-evidence", "data-kept"], &path),
                path,
                bytes,
                sha256,
                summary,
            });
        }
    }
    Ok(out)
}

/// The section, when anything was kept.
pub(super) fn section(r: &Report) -> Option<Section> {
    if r.kept.is_empty() {
        return None;
    }
    let text = |s: &str| Cell::Text(s.to_string());
    let code = |s: &str| Cell::Code(s.to_string());
    let rows = r
        .kept
        .iter()
        .map(|k| {
            let check = match &k.recorded_sha256 {
                Some(rec) if *rec == k.sha256 => Cell::Good("matches the journal".into()),
                Some(rec) => Cell::Bad(format!("the journal recorded {rec}: it was changed")),
                None => text("not recorded"),
            };
            let mut what: Vec<Cell> = Vec::new();
            for (i, line) in k.summary.iter().enumerate() {
                if i > 0 {
                    what.push(text("; "));
                }
                what.push(if line.starts_with("| ") {
                    code(line)
                } else {
                    text(line)
                });
            }
            if what.is_empty() {
                what.push(text(if k.kind == "rollback-data" {
                    "saved before the rollback removed it"
                } else {
                    "-"
                }));
            }
            vec![
                vec![code(&k.path)],
                vec![code(&k.step)],
                vec![text(&k.bytes.to_string())],
                vec![code(&k.sha256), text(" "), check],
                what,
            ]
        })
        .collect();
    Some(Section {
        id: "kept",
        title: "Kept for inspection",
        blocks: vec![
            Block::Para(vec![text(
                "Files a failed health check or a rollback left in the run directory: the evidence of the failure, and the data saved before a rollback removed it.",
            )]),
            Block::Table(Table {
                head: vec!["File", "Step", "Bytes", "SHA-256", "What"],
                rows,
            }),
        ],
    })
}
