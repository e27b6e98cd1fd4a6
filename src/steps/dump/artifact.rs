//! A dump's files once written: where they are, and their re-verification against the
//! manifest (before a restore loads them, and on resume).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::steps::common::file_sha256;
use crate::steps::db::Evidence;

/// The files a dump step writes in `artifacts`: the dump, its manifest, its evidence.
pub(crate) fn paths(artifacts: &Path, id: &str) -> [PathBuf; 3] {
    [
        artifacts.join(format!("{id}.sql.gz")),
        artifacts.join(format!("{id}.manifest")),
        artifacts.join(format!("{id}.evidence.json")),
    ]
}

/// Checks a dump's files against its manifest: the bytes that were pulled.
///
/// # Errors
/// A file is missing or differs, naming it.
pub(crate) fn verify(artifacts: &Path, id: &str) -> Result<Evidence, String> {
    let [gz_path, manifest_path, evidence_path] = paths(artifacts, id);
    let manifest =
        fs::read(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let sums = crate::artifact::manifest::parse_sums(&manifest);
    for p in [&gz_path, &evidence_path] {
        let name = p
            .file_name()
            .map(|n| n.as_encoded_bytes().to_vec())
            .unwrap_or_default();
        let Some((_, want)) = sums.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "{} is not in {}",
                p.display(),
                manifest_path.display()
            ));
        };
        if file_sha256(p)? != *want {
            return Err(format!(
                "{} changed since it was pulled (its SHA-256 differs from the manifest's)",
                p.display()
            ));
        }
    }
    let ev = fs::read(&evidence_path).map_err(|e| format!("{}: {e}", evidence_path.display()))?;
    serde_json::from_slice(&ev).map_err(|e| format!("{}: {e}", evidence_path.display()))
}

/// The SHA-256 of a dump's `.sql.gz` as its manifest records it.
///
/// # Errors
/// The manifest cannot be read or does not name the dump.
pub(crate) fn dump_sha256(artifacts: &Path, id: &str) -> Result<String, String> {
    let [gz_path, manifest_path, _] = paths(artifacts, id);
    let manifest =
        fs::read(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let name = gz_path
        .file_name()
        .map(|n| n.as_encoded_bytes().to_vec())
        .unwrap_or_default();
    crate::artifact::manifest::parse_sums(&manifest)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, sum)| sum)
        .ok_or_else(|| {
            format!(
                "{} is not in {}",
                gz_path.display(),
                manifest_path.display()
            )
        })
}

/// On resume: the manifest is the one journaled and the files still match it.
pub(super) fn still_valid(id: &str, facts: &Value, artifacts: &Path) -> Result<(), String> {
    let [_, manifest_path, _] = paths(artifacts, id);
    let m = fs::read(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    if facts.get("manifest_sha256").and_then(Value::as_str)
        != Some(crate::digest::sha256_hex(&m).as_str())
    {
        return Err(format!(
            "{} is not the one journaled when the dump was made",
            manifest_path.display()
        ));
    }
    verify(artifacts, id).map(|_| ())
}
