//! `dump` with `--reuse-artifacts`: an earlier run's dump of the same database, made with
//! the same inputs and verified again, copied in instead of dumping.
//!
//! Invariants: the earlier dump, its evidence and its manifest are verified (the manifest
//! is the one the earlier journal holds) before they are copied; the copy is journaled as
//! a dump is, the dump written under a partial name and renamed once complete; a restore
//! reading it in a pipelined pair is handed the finished file and its SHA-256.

use std::fs;
use std::io;

use serde_json::{Value, json};

use super::artifact::{paths, still_valid};
use crate::engine::reuse::{candidates, inputs_sha256};
use crate::engine::{StepCx, StepError};
use crate::plan::{PlannedStep, Undo};
use crate::playbook::Dump;
use crate::steps::common::remove_all;
use crate::steps::live::Live;

/// The key of what decides a dump's bytes, for the run's vendor host ([`inputs_of`]).
pub(super) fn inputs(live: &Live, d: &Dump) -> Result<String, StepError> {
    let t = live.ssh_target()?;
    Ok(inputs_of(&format!("{}@{}:{}", t.user, t.host, t.port), d))
}

/// The key of what decides a dump's bytes: the vendor's login and address
/// (`user@host:port`), the engine, and where and as whom the database is reached (never
/// the password: it does not change the bytes).
pub(crate) fn inputs_of(vendor: &str, d: &Dump) -> String {
    inputs_sha256(&json!({
        "kind": "dump",
        "vendor": vendor,
        "engine": d.engine,
        "host": d.host,
        "port": d.port,
        "database": d.database,
        "user": d.user,
    }))
}

/// With `--reuse-artifacts`, takes the newest earlier dump with the same `inputs` that
/// still verifies: its facts, or `None` (dump).
pub(super) async fn reuse(
    step: &PlannedStep,
    inputs: &str,
    cx: &mut StepCx<'_>,
) -> Result<Option<Value>, StepError> {
    let Some(reuse) = cx.reuse().cloned() else {
        return Ok(None);
    };
    let artifacts = cx.artifacts().to_path_buf();
    // Re-hashing a dump reads it whole: off the run's task.
    let (found, passed) = tokio::task::spawn_blocking({
        let (artifacts, inputs) = (artifacts.clone(), inputs.to_string());
        move || {
            let mut passed = Vec::new();
            for e in candidates(&artifacts, &inputs, &reuse) {
                match still_valid(&e.step, &e.facts, &e.artifacts) {
                    Ok(()) => return (Some(e), passed),
                    Err(why) => passed.push(format!("run {} step `{}`: {why}", e.run, e.step)),
                }
            }
            (None, passed)
        }
    })
    .await
    .map_err(|e| StepError::failed(format!("the checking thread failed: {e}")))?;
    for p in passed {
        cx.output(&format!("not reused (it does not verify): {p}"));
    }
    let Some(earlier) = found else {
        cx.output("no verified dump of an earlier run with these inputs: dumping");
        return Ok(None);
    };
    let [gz_path, manifest_path, evidence_path] = paths(&artifacts, &step.id);
    // Per attempt, as a dump's: a copy cut off by a time limit may still be finishing.
    let partial = artifacts.join(format!(
        "{}.sql.gz.partial-reused-{:x}",
        step.id,
        crate::steps::fetch::reuse::nonce()
    ));
    let change = step
        .changes
        .first()
        .ok_or_else(|| StepError::failed("a dump step lists its artifact"))?;
    let undo = Undo::RemoveArtifact {
        paths: vec![
            gz_path.clone(),
            partial.clone(),
            manifest_path.clone(),
            evidence_path.clone(),
        ],
    };
    let id = cx.intent(change, &undo)?;
    let feed = cx.feed();
    let [from_gz, from_manifest, from_evidence] = paths(&earlier.artifacts, &earlier.step);
    let copied = tokio::task::spawn_blocking({
        let (partial, gz_path) = (partial.clone(), gz_path.clone());
        move || -> io::Result<()> {
            let copy = |from: &std::path::Path, to: &std::path::Path| -> io::Result<()> {
                fs::copy(from, to)?;
                fs::File::open(to)?.sync_all()
            };
            let made = copy(&from_gz, &partial)
                .and_then(|()| copy(&from_evidence, &evidence_path))
                .and_then(|()| copy(&from_manifest, &manifest_path))
                .and_then(|()| fs::rename(&partial, &gz_path));
            if made.is_err() {
                let _ = remove_all(&[partial, manifest_path, evidence_path]);
            }
            made
        }
    })
    .await
    .map_err(|e| StepError::failed(format!("the copying thread failed: {e}")))?;
    copied.map_err(|e| {
        StepError::failed(format!(
            "cannot copy the dump of run {} into place: {e}",
            earlier.run
        ))
    })?;
    if let Some(f) = &feed {
        // The restore checks what it reads against the SHA-256 verified above.
        let sha = earlier.facts["sql_gz_sha256"].as_str().unwrap_or_default();
        let bytes = fs::metadata(&gz_path).map_or(0, |m| m.len());
        f.begin(&gz_path, fs::File::open(&gz_path).ok());
        f.wrote(bytes);
        f.finish(bytes, sha);
    }
    cx.output(&earlier.said());
    let facts = earlier.facts_of_copy();
    cx.done(&id, &facts)?;
    Ok(Some(facts))
}
