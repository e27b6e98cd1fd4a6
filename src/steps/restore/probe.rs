//! The live plan's look at a restore: its image, and that its container, volume and
//! network are as the step needs them. Inspections and lists only.

use crate::plan::{Estimate, PlannedStep, Resource};
use crate::steps::probe::{Findings, StepFound, Target, image_present, network, secs, short};

/// A restore step: its image, and that its container, volume and network are as the
/// step needs them.
pub(super) async fn restore(
    t: Option<&Target>,
    step: &PlannedStep,
    r: &crate::playbook::Restore,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    let bytes = fx.dumped.get(&r.from).copied();
    sf.estimate = Some(Estimate {
        bytes,
        seconds: 8.0 + bytes.map_or(0.0, |b| secs(b, 11e6)),
        basis: "container start plus a load at ~11 MB/s of SQL (the 1 GB benchmark)".into(),
    });
    fx.target_bytes += bytes.map_or(0, |b| b.saturating_mul(2));
    let Some(t) = t else { return };
    let id = step.id.as_str();
    image_present(t, &r.image, Some(id), fx, sf).await;
    let at = |res: Resource, name: &str| {
        step.changes
            .iter()
            .position(|c| c.resource == res && c.name == name)
    };
    match t.engine.container(&r.name).await {
        Ok(Some(c)) => {
            fx.fingerprints.insert(
                format!("target.container.{}", r.name),
                format!("id={} image={}", short(&c.id), c.image),
            );
            fx.problem(
                Some(id),
                format!("a container `{}` exists already ({})", r.name, short(&c.id)),
                "the restore makes its own database container: choose another `name`, or remove that container after saving what it holds",
            );
        }
        Ok(None) => {
            fx.fingerprints
                .insert(format!("target.container.{}", r.name), "absent".into());
        }
        Err(e) => fx.problem(
            Some(id),
            format!("cannot inspect container {}: {e}", r.name),
            "check the engine",
        ),
    }
    match t.engine.volume_storage(&r.volume).await {
        Ok(Some(storage)) => {
            fx.fingerprints
                .insert(format!("target.volume.{}", r.volume), "present".into());
            if let (true, crate::docker::VolumeStorage::Custom(how)) = (r.replace, &storage) {
                fx.problem(
                    Some(id),
                    crate::steps::restore::unreplaceable(&r.volume, how),
                    "empty the volume on the target yourself and drop `replace: true`, or give the step another volume",
                );
            } else if r.replace {
                if let Some(n) = at(Resource::Volume, &r.volume) {
                    sf.now[n] =
                        Some("exists: saved as a tar in the run's artifacts, then replaced".into());
                }
            } else {
                fx.problem(
                    Some(id),
                    format!("volume {} exists already; the restore refuses to overwrite it", r.volume),
                    "set `replace: true` to save it and load over it (rollback puts it back), or choose another volume",
                );
            }
        }
        Ok(None) => {
            fx.fingerprints
                .insert(format!("target.volume.{}", r.volume), "absent".into());
            if let Some(n) = at(Resource::Volume, &r.volume) {
                sf.now[n] = Some("absent: this run creates it".into());
            }
        }
        Err(e) => fx.problem(
            Some(id),
            format!("cannot inspect volume {}: {e}", r.volume),
            "check the engine",
        ),
    }
    if let Some(net) = &r.network {
        network(t, step, net, fx, sf).await;
    }
}
