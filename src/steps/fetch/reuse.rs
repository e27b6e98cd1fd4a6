//! `fetch` with `--reuse-artifacts`: an earlier run's tree, pulled with the same inputs and
//! verified again, copied in instead of pulling.
//!
//! Invariants: the earlier tree is verified against its manifest and tree file (whose
//! SHA-256 the earlier journal holds) before it is copied; the copy is journaled like a
//! pull (the same intent and undo) and written under a partial name, renamed only once
//! complete; files are copied, never linked (a tree is not read-only).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{paths, stat_path, still_valid};
use crate::engine::reuse::{Earlier, candidates, inputs_sha256};
use crate::engine::{StepCx, StepError};
use crate::plan::{PlannedStep, Undo};
use crate::playbook::Fetch;
use crate::steps::common::remove_all;
use crate::steps::live::Live;

/// The key of what decides a fetch's bytes, for the run's vendor host ([`inputs_of`]).
pub(super) fn inputs(live: &Live, f: &Fetch) -> Result<String, StepError> {
    let t = live.ssh_target()?;
    Ok(inputs_of(&format!("{}@{}:{}", t.user, t.host, t.port), f))
}

/// The key of what decides a fetch's bytes: the vendor's login and address
/// (`user@host:port`), the path, the exclusions and the vendor's sums file.
pub(crate) fn inputs_of(vendor: &str, f: &Fetch) -> String {
    inputs_sha256(&json!({
        "kind": "fetch",
        "vendor": vendor,
        "path": f.path,
        "exclude": f.exclude,
        "sha256sums": f.sha256sums,
    }))
}

/// With `--reuse-artifacts`, takes the newest earlier tree with the same `inputs` that
/// still verifies: its facts, or `None` (pull).
pub(super) async fn reuse(
    step: &PlannedStep,
    inputs: &str,
    cx: &mut StepCx<'_>,
) -> Result<Option<Value>, StepError> {
    let Some(reuse) = cx.reuse().cloned() else {
        return Ok(None);
    };
    let artifacts = cx.artifacts().to_path_buf();
    let inputs = inputs.to_string();
    let found = tokio::task::spawn_blocking(move || {
        let mut passed = Vec::new();
        for e in candidates(&artifacts, &inputs, &reuse) {
            match still_valid(&e.step, &e.facts, &e.artifacts) {
                Ok(()) => return (Some(e), passed),
                Err(why) => passed.push(format!("run {} step `{}`: {why}", e.run, e.step)),
            }
        }
        (None, passed)
    })
    .await
    .map_err(|e| StepError::failed(format!("the checking thread failed: {e}")))?;
    let (found, passed) = found;
    for p in passed {
        cx.output(&format!("not reused (it does not verify): {p}"));
    }
    let Some(earlier) = found else {
        cx.output("no verified artifact of an earlier run with these inputs: pulling");
        return Ok(None);
    };
    take(step, earlier, cx).await.map(Some)
}

/// Copies `earlier` in as this step's artifact, journaled as a pull is.
async fn take(
    step: &PlannedStep,
    earlier: Earlier,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let artifacts = cx.artifacts().to_path_buf();
    let [dest, _, manifest_path, tree_path] = paths(&artifacts, &step.id);
    // Per attempt, as a pull's: a copy cut off by a time limit may still be finishing.
    let partial = artifacts.join(format!("{}.partial-reused-{:x}", step.id, nonce()));
    let change = step
        .changes
        .first()
        .ok_or_else(|| StepError::failed("a fetch step lists its artifact"))?;
    let undo = Undo::RemoveArtifact {
        paths: vec![
            dest.clone(),
            partial.clone(),
            manifest_path.clone(),
            tree_path.clone(),
            stat_path(&artifacts, &step.id),
        ],
    };
    let id = cx.intent(change, &undo)?;
    let [from, _, from_manifest, from_tree] = paths(&earlier.artifacts, &earlier.step);
    let stat_file = stat_path(&artifacts, &step.id);
    let from_stat = stat_path(&earlier.artifacts, &earlier.step);
    // An artifact pulled before `.stat` existed has none: nothing to copy.
    let mut sidecars = vec![
        (from_manifest, manifest_path.clone()),
        (from_tree, tree_path.clone()),
    ];
    if from_stat.exists() {
        sidecars.push((from_stat, stat_file.clone()));
    }
    let scrap = [partial.clone(), manifest_path, tree_path, stat_file];
    let copied = tokio::task::spawn_blocking({
        let (partial, dest, scrap) = (partial.clone(), dest.clone(), scrap.clone());
        move || -> io::Result<()> {
            remove_all(std::slice::from_ref(&partial))?;
            let made = copy_tree(&from, &partial).and_then(|()| {
                for (a, b) in &sidecars {
                    copy_file(a, b)?;
                }
                fs::rename(&partial, &dest)
            });
            if made.is_err() {
                let _ = remove_all(&scrap);
            }
            made
        }
    })
    .await
    .map_err(|e| StepError::failed(format!("the copying thread failed: {e}")))?;
    copied.map_err(|e| {
        StepError::failed(format!(
            "cannot copy the artifact of run {} into place: {e}",
            earlier.run
        ))
    })?;
    cx.output(&earlier.said());
    let facts = earlier.facts_of_copy();
    cx.done(&id, &facts)?;
    Ok(facts)
}

/// A number that differs between attempts (the time in nanoseconds).
pub(crate) fn nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Copies a file with its mode and modification time, synced.
fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    fs::copy(from, to)?;
    let f = fs::OpenOptions::new()
        .write(true)
        .open(to)
        .or_else(|_| fs::File::open(to))?;
    if let Ok(t) = fs::metadata(from).and_then(|m| m.modified()) {
        let _ = f.set_modified(t);
    }
    f.sync_all()
}

/// Copies a tree: folders, files (mode and time kept) and links (as links, never
/// followed); anything else is refused. A folder gets its mode once its entries are in.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir(to)?;
    let mut entries: Vec<PathBuf> = fs::read_dir(from)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    entries.sort();
    for src in entries {
        let Some(name) = src.file_name() else {
            continue;
        };
        let dst = to.join(name);
        let kind = fs::symlink_metadata(&src)?.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            copy_file(&src, &dst)?;
        } else {
            return Err(io::Error::other(format!(
                "{} is not a file, folder or link",
                src.display()
            )));
        }
    }
    fs::set_permissions(to, fs::metadata(from)?.permissions())
}
