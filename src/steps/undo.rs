//! The undo of every journaled change on real hosts: one exhaustive `match` on [`Undo`].
//!
//! Undo is keyed by the change, not by the step's kind: a change outlives its playbook
//! (a rollback may run from a journal whose playbook no longer reads), and the same undo
//! serves several kinds (a restore's container goes like a deploy's). Each action that
//! belongs to one kind is implemented in that kind's module; the target's shared ones are
//! here. Invariant: each is safe whether or not its change happened, and when repeated.

use std::collections::BTreeMap;

use super::common::remove_artifact;
use super::live::Live;
use super::{exec, restore};
use crate::engine::{StepError, UndoItem};
use crate::plan::Undo;
use crate::playbook::StepKind;

/// Seconds the release being rolled back gets to stop (SIGTERM, then SIGKILL).
const ROLLBACK_STOP_GRACE: i32 = 2;

/// Undoes one journaled change.
pub(super) async fn undo(live: &Live, item: &UndoItem) -> Result<(), StepError> {
    let failed = |e: crate::docker::DockerError| StepError::failed(e.to_string());
    // An undo command runs with its step's environment, from the playbook as run.
    let env = || match live.playbook_step(&item.step).map(|s| &s.kind) {
        Some(StepKind::Exec(e)) => e.env.clone(),
        _ => BTreeMap::new(),
    };
    // What a stopped step asked the engine to make is made (or refused) before this runs:
    // the executor waits for `Runner::settled` before every undo (`docker/inflight.rs`).
    match &item.undo {
        Undo::None => Ok(()),
        Undo::RemoveArtifact { paths } => remove_artifact(&item.step, paths),
        Undo::VendorCommand { run } => {
            let r = exec::undo_on_vendor(live, run, &env()).await;
            if r.is_err() {
                live.drop_vendor().await;
            }
            r
        }
        Undo::ContainerCommand { container, run } => {
            exec::undo_in_container(live, container, run, &env()).await
        }
        Undo::RemoveImage { tag } => live.engine().await?.remove_image(tag).await.map_err(failed),
        Undo::RemoveContainer { name } => live
            .engine()
            .await?
            .remove_container(name)
            .await
            .map_err(failed),
        Undo::StartContainer {
            id,
            name,
            stop_first,
        } => {
            let engine = live.engine().await?;
            // The old container, by id: the names may be half swapped back.
            let old = id.as_deref().unwrap_or(name);
            // The release being rolled back gets a short grace: the old one is waiting to
            // serve again, and the gap is what clients see.
            if !stop_first.is_empty() {
                engine
                    .stop(stop_first, ROLLBACK_STOP_GRACE)
                    .await
                    .map_err(failed)?;
            }
            match engine.container(old).await.map_err(failed)? {
                Some(_) => engine.start(old).await.map_err(failed),
                None => Ok(()),
            }
        }
        Undo::Rename { from, to } => {
            let engine = live.engine().await?;
            match engine.container(from).await.map_err(failed)? {
                Some(_) => engine.rename(from, to).await.map_err(failed),
                None => Ok(()),
            }
        }
        Undo::RemoveNetwork { name } => live
            .engine()
            .await?
            .remove_network(name)
            .await
            .map_err(failed),
        Undo::RemoveVolume { name } => live
            .engine()
            .await?
            .remove_volume(name)
            .await
            .map_err(failed),
        Undo::RestoreVolume {
            helper,
            image,
            labels,
            name,
            sha256,
            snapshot,
        } => {
            restore::undo_volume(
                &*live.engine().await?,
                name,
                image,
                helper,
                labels,
                snapshot,
                sha256,
            )
            .await
        }
        Undo::Route {
            app,
            drain_ms,
            front,
            host,
            port,
            redirect_http,
            tls,
            to,
        } => {
            super::deploy::undo_route(
                &*live.engine().await?,
                front,
                app,
                host,
                *port,
                *tls,
                *redirect_http,
                to.as_deref(),
                std::time::Duration::from_millis(*drain_ms),
            )
            .await
        }
        Undo::RemoveFront { front } => crate::front::FrontProxy::new(&*live.engine().await?, front)
            .remove_if_unused()
            .await
            .map(|_| ())
            .map_err(failed),
        Undo::RemoveService { name } => live
            .engine()
            .await?
            .remove_service(name)
            .await
            .map_err(failed),
        Undo::RestoreService { name, spec, .. } => {
            super::deploy::undo_update(&*live.engine().await?, name, spec).await
        }
        Undo::RemoveSecret { name } => live
            .engine()
            .await?
            .remove_secret(name)
            .await
            .map_err(failed),
        Undo::RemoveOverlay { detach, name } => {
            super::deploy::undo_overlay(&*live.engine().await?, name, detach).await
        }
        Undo::Other(_) => Err(StepError::failed(format!(
            "cannot undo {} of step `{}`: unknown undo action `{}`",
            item.summary(),
            item.step,
            item.undo.action()
        ))),
    }
}
