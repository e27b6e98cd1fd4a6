//! A restore's volume: `replace: true` saves the volume's contents into the run's
//! artifacts before emptying it, and its undo puts them back, checked against their hash.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::json;

use crate::docker::Docker;
use crate::engine::{StepCx, StepError};
use crate::plan::{Op, PlannedStep, Resource, Undo};
use crate::playbook::Restore;
use crate::steps::common::{change, docker_err, file_sha256, part};

/// `replace: true` on an existing volume: its contents saved into the run's artifacts
/// (`ID.volume.tar`, hashed), then the volume emptied (removed and created again). The
/// undo puts the saved contents back into a fresh volume of the same name.
pub(super) async fn replace_volume(
    engine: &Docker,
    step: &PlannedStep,
    r: &Restore,
    labels: &std::collections::HashMap<String, String>,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    let c = change(step, Op::Replace, Resource::Volume)?;
    let snapshot = cx.artifacts().join(format!("{}.volume.tar", step.id));
    let helper = format!("{}.snapshot-{}", r.name, cx.run_id());
    let id = cx.intent(
        &part(
            c,
            &format!("save its contents into artifacts/{}.volume.tar", step.id),
        ),
        &Undo::RemoveContainer {
            name: helper.clone(),
        },
    )?;
    let (sha256, bytes) = engine
        .snapshot_volume(&r.volume, &r.image, &helper, labels, &snapshot)
        .await
        .map_err(|e| StepError::fatal(format!("cannot save volume `{}`: {e}", r.volume)))?;
    cx.done(&id, &json!({"sha256": sha256, "bytes": bytes}))?;
    cx.output(&format!(
        "volume `{}` saved: {bytes} bytes, SHA-256 {sha256}",
        r.volume
    ));
    let id = cx.intent(
        &part(c, "emptied: removed and created again"),
        &Undo::RestoreVolume {
            helper,
            image: r.image.clone(),
            labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            name: r.volume.clone(),
            sha256,
            snapshot: snapshot.clone(),
        },
    )?;
    engine
        .remove_volume(&r.volume)
        .await
        .map_err(|e| StepError::fatal(format!("cannot empty volume `{}`: {e}", r.volume)))?;
    engine
        .create_volume(&r.volume, labels)
        .await
        .map_err(docker_err)?;
    cx.done(&id, &json!({}))?;
    Ok(())
}

/// Why a volume with its own storage is not replaced: emptied by removing and creating
/// it again, it would come back on the engine's default storage (and a bind-backed one
/// would not even be emptied), and rollback could not give back its driver and options.
pub(crate) fn unreplaceable(volume: &str, how: &str) -> String {
    format!(
        "volume `{volume}` has its own storage ({how}): `replace: true` replaces only volumes on the engine's default storage; empty it yourself (its data stays where the options say), or restore into another volume"
    )
}

/// Undoes `restore-volume`: the saved contents, checked against their hash, put back.
pub(crate) async fn undo_volume(
    engine: &Docker,
    name: &str,
    image: &str,
    helper: &str,
    labels: &BTreeMap<String, String>,
    snapshot: &Path,
    sha256: &str,
) -> Result<(), StepError> {
    let sum = file_sha256(snapshot).map_err(StepError::Failed)?;
    if sum != sha256 {
        return Err(StepError::failed(format!(
            "{} changed since it was saved: volume `{name}` is not restored from it",
            snapshot.display(),
        )));
    }
    let labels: HashMap<String, String> = labels.clone().into_iter().collect();
    engine
        .restore_volume(name, image, helper, &labels, snapshot)
        .await
        .map_err(|e| StepError::failed(e.to_string()))
}
