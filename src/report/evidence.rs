//! The evidence read from a run's `artifacts/`: every file and tree with its size and
//! SHA-256 (computed now, compared with what the journal recorded), the files of each
//! pulled tree, and the databases' evidence (dumped and restored).

use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::build::{io, s};
use super::{Artifact, Database, ReportError, TableRow, TreeFile, TreeListing};
use crate::engine::journal::{Entry, Record};

/// SHA-256 of a file and its length.
pub(super) fn file_digest(path: &Path) -> Result<(String, u64), ReportError> {
    crate::digest::file_sha256(path).map_err(io(path))
}

/// The step an artifact file belongs to, and its kind.
fn classify(name: &str) -> (String, &'static str) {
    for (suffix, kind) in [
        (".manifest", "manifest"),
        (".tree", "tree-file"),
        (".stat", "stat-file"),
        (".sql.gz", "dump"),
        (".evidence.json", "evidence"),
        (".volume.tar", "volume-snapshot"),
    ] {
        if let Some(step) = name.strip_suffix(suffix) {
            return (step.to_string(), kind);
        }
    }
    (name.to_string(), "file")
}

/// Every file and tree in `artifacts/`, sorted, with digests computed now and compared
/// with what the journal (or a dump's manifest) recorded.
pub(super) fn artifacts(
    dir: &Path,
    facts: &[(String, Value)],
    entries: &[Entry],
) -> Result<(Vec<Artifact>, Vec<TreeListing>), ReportError> {
    let mut names: Vec<(String, bool)> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let is_dir = e.file_type().ok()?.is_dir();
                Some((e.file_name().into_string().ok()?, is_dir))
            })
            .filter(|(n, _)| !n.contains(".partial"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    let mut out = Vec::new();
    let mut trees = Vec::new();
    for (name, is_dir) in names {
        let fact = |step: &str, k: &str| {
            facts
                .iter()
                .find(|(id, _)| id == step)
                .and_then(|(_, f)| s(f, k))
        };
        if is_dir {
            let manifest = fs::read(dir.join(format!("{name}.manifest"))).unwrap_or_default();
            let tree_file = fs::read(dir.join(format!("{name}.tree"))).unwrap_or_default();
            let tree = crate::artifact::manifest::parse(&manifest, &tree_file).unwrap_or_default();
            let files: Vec<TreeFile> = tree
                .iter()
                .filter_map(|(p, n)| match n {
                    crate::artifact::Node::File { sha256, size, .. } => Some(TreeFile {
                        path: String::from_utf8_lossy(p).into_owned(),
                        bytes: *size,
                        sha256: sha256.clone(),
                    }),
                    _ => None,
                })
                .collect();
            let sha256 = crate::digest::hex(&Sha256::digest(&manifest));
            let recorded = fact(&name, "manifest_sha256");
            // Every file hashed again and compared with the manifest, as `build` does.
            let problem = if tree.is_empty() {
                Some(format!(
                    "artifacts/{name}.manifest or .tree is missing or unreadable"
                ))
            } else {
                crate::artifact::manifest::verify(&dir.join(&name), &tree).err()
            };
            out.push(Artifact {
                path: format!("artifacts/{name}/"),
                step: name.clone(),
                kind: "tree".into(),
                bytes: files.iter().map(|f| f.bytes).sum(),
                files: Some(files.len() as u64),
                matches: recorded.as_ref().map(|r| *r == sha256 && problem.is_none()),
                sha256,
                recorded_sha256: recorded,
            });
            trees.push(TreeListing {
                step: name,
                other_entries: (tree.len() - files.len()) as u64,
                files,
                verified_now: problem.is_none(),
                problem,
            });
            continue;
        }
        let (step, kind) = classify(&name);
        let (sha256, bytes) = file_digest(&dir.join(&name))?;
        let recorded = match kind {
            "manifest" => fact(&step, "manifest_sha256"),
            "tree-file" => fact(&step, "tree_sha256"),
            "stat-file" => fact(&step, "stat_sha256"),
            "dump" => fact(&step, "sql_gz_sha256"),
            "evidence" => {
                let m = fs::read(dir.join(format!("{step}.manifest"))).unwrap_or_default();
                crate::artifact::manifest::parse_sums(&m)
                    .into_iter()
                    .find(|(n, _)| n.as_slice() == name.as_bytes())
                    .map(|(_, h)| h)
            }
            "volume-snapshot" => entries.iter().find_map(|e| match &e.record {
                Record::Done {
                    step: st, facts, ..
                } if *st == step => s(facts, "sha256"),
                _ => None,
            }),
            _ => None,
        };
        out.push(Artifact {
            path: format!("artifacts/{name}"),
            step,
            kind: kind.into(),
            bytes,
            files: None,
            matches: recorded.as_ref().map(|r| *r == sha256),
            sha256,
            recorded_sha256: recorded,
        });
    }
    Ok((out, trees))
}

#[derive(Deserialize)]
struct EvidenceIn {
    server: Option<String>,
    #[serde(default)]
    tables: Vec<TableRow>,
}

pub(super) fn databases(artifacts: &Path, facts: &[(String, Value)]) -> Vec<Database> {
    let mut out = Vec::new();
    for (step, f) in facts {
        if f.get("sql_gz_sha256").is_some() {
            let ev: Option<EvidenceIn> = fs::read(artifacts.join(format!("{step}.evidence.json")))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let tables = ev.as_ref().map(|e| e.tables.clone()).unwrap_or_default();
            out.push(Database {
                step: step.clone(),
                role: "dumped".into(),
                server: ev.and_then(|e| e.server).or_else(|| s(f, "server")),
                container: None,
                rows: f["rows"]
                    .as_u64()
                    .unwrap_or_else(|| tables.iter().map(|t| t.rows).sum()),
                tables,
                checksums_compared: None,
                sql_sha256: s(f, "sql_sha256"),
            });
        } else if let Some(ev) = f
            .get("evidence")
            .filter(|_| f.get("checksums_compared").is_some())
        {
            let tables: Vec<TableRow> = serde_json::from_value(ev.clone()).unwrap_or_default();
            out.push(Database {
                step: step.clone(),
                role: "restored".into(),
                server: s(f, "server"),
                container: s(f, "container"),
                rows: f["rows"]
                    .as_u64()
                    .unwrap_or_else(|| tables.iter().map(|t| t.rows).sum()),
                tables,
                checksums_compared: f["checksums_compared"].as_bool(),
                sql_sha256: None,
            });
        }
    }
    out
}
