//! `deploy` on the target: the health-gated cut-over.
//!
//! Order: the network (if missing), the new container under `NAME.next-RUN`, the old one
//! stopped if it holds one of the new one's host ports, the new one started and waited on
//! until healthy; then the old one renamed `NAME.prev-RUN` and the new one `NAME`. Each is
//! journaled with its undo before it is made, so rollback puts the old one back under
//! `NAME`, started. Between the old one's stop and the new one's start (the gap clients
//! see) nothing is awaited: everything that can be is done before the stop, and the stop's
//! `done` is journaled after the start. Unhealthy: the new one is removed, the old one
//! started again, and the step fails.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::evidence::Evidence;
use super::health::{Unhealthy, wait_healthy};
use crate::docker::{ContainerSpec, Docker};
use crate::engine::{StepCx, StepError};
use crate::plan::{Op, PlannedStep, Resource, Undo};
use crate::playbook::{Deploy, ImageSource, RestartPolicy};
use crate::steps::common::{change, docker_err, labels, part};
use crate::steps::live::Live;

/// The image a deploy runs: a build step's tag in this run, or a reference.
pub(super) fn image_of(d: &Deploy, cx: &StepCx<'_>) -> Result<String, StepError> {
    match &d.image {
        ImageSource::Reference(r) => Ok(r.clone()),
        ImageSource::Build(id) => cx.image_of(id).map(str::to_owned).ok_or_else(|| {
            StepError::fatal(format!(
                "the plan of this run gives no image for the build step `{id}`"
            ))
        }),
    }
}

fn spec(
    d: &Deploy,
    image: &str,
    env: Vec<String>,
    labels: HashMap<String, String>,
) -> ContainerSpec {
    let s = &d.security;
    ContainerSpec {
        image: image.to_string(),
        env,
        labels,
        ports: d
            .ports
            .iter()
            .map(|p| {
                let proto = if p.to_string().ends_with("/udp") {
                    "udp"
                } else {
                    "tcp"
                };
                (
                    p.address.map(|a| a.to_string()),
                    p.host,
                    p.container,
                    proto.to_string(),
                )
            })
            .collect(),
        binds: d
            .volumes
            .iter()
            .map(|v| {
                format!(
                    "{}:{}{}",
                    v.volume,
                    v.path,
                    if v.read_only { ":ro" } else { "" }
                )
            })
            .collect(),
        network: d.network.clone(),
        read_only: s.read_only,
        no_new_privileges: s.no_new_privileges,
        cap_add: s.cap_add.clone(),
        memory: i64::try_from(s.memory.0).unwrap_or(i64::MAX),
        pids: i64::from(s.pids),
        restart: match s.restart {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
        .to_string(),
        tmpfs: s.tmpfs.clone(),
        log_max_size: s.log_max_size.0.to_string(),
        log_max_files: s.log_max_files,
        init: s.init,
    }
}

/// Why the new container did not start, naming the host ports when one is taken.
fn start_failed(e: crate::docker::DockerError, d: &Deploy) -> StepError {
    let msg = e.to_string();
    if !(msg.contains("address already in use") || msg.contains("port is already allocated")) {
        return docker_err(e);
    }
    let ports: Vec<String> = d
        .ports
        .iter()
        .map(|p| match p.address {
            Some(a) => format!("{a}:{}", p.host),
            None => format!("*:{}", p.host),
        })
        .collect();
    StepError::fatal(format!(
        "the new `{}` cannot publish its ports: a host port of {} is already in use by another process or container (not the current `{}`); free it or change `ports` ({msg})",
        d.name,
        ports.join(", "),
        d.name
    ))
}

/// Creates the new release `NAME.next-RUN` (journaled first; one of this run left by a
/// cut-off attempt is replaced): hardened, its config files mounted, on `network` when
/// given (else the deploy's own). Returns its id.
#[expect(
    clippy::too_many_arguments,
    reason = "the deploy's parts, made once by its caller"
)]
pub(super) async fn create_next(
    engine: &Docker,
    step: &PlannedStep,
    d: &Deploy,
    image: &str,
    files: &[super::files::Ready],
    labels: HashMap<String, String>,
    network: Option<String>,
    cx: &mut StepCx<'_>,
) -> Result<String, StepError> {
    let next = format!("{}.next-{}", d.name, cx.run_id());
    let env = env_of(d, cx)?;
    let file_binds = super::files::deliver(engine, step, d, image, files, &labels, cx).await?;
    let create = change(step, Op::Create, Resource::Container)?;
    let id = cx.intent(create, &Undo::RemoveContainer { name: next.clone() })?;
    engine.remove_container(&next).await.map_err(docker_err)?;
    let mut s = spec(d, image, env, labels);
    s.binds.extend(file_binds);
    if network.is_some() {
        s.network = network;
    }
    let new_id = engine
        .create_container(&next, &s)
        .await
        .map_err(docker_err)?;
    cx.done(&id, &json!({"container_id": new_id}))?;
    Ok(new_id)
}

/// The image a deploy runs and its id on the target (it must be there).
pub(super) async fn image_and_id(
    engine: &Docker,
    d: &Deploy,
    cx: &StepCx<'_>,
) -> Result<(String, String), StepError> {
    let image = image_of(d, cx)?;
    let id = engine
        .image_id(&image)
        .await
        .map_err(docker_err)?
        .ok_or_else(|| StepError::fatal(format!("image `{image}` is not on the target engine")))?;
    Ok((image, id))
}

/// The networks and volumes the deploy names, made when missing (each journaled).
pub(super) async fn networks_and_volumes(
    engine: &Docker,
    step: &PlannedStep,
    d: &Deploy,
    run: &str,
    labels: &HashMap<String, String>,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    for c in step.changes.iter().filter(|c| c.op == Op::Create) {
        let name = c.name.clone();
        let (exists, undo) = match c.resource {
            Resource::Network => (
                engine.network_exists(&c.name).await.map_err(docker_err)?,
                Undo::RemoveNetwork { name },
            ),
            Resource::Volume => (
                engine.volume_exists(&c.name).await.map_err(docker_err)?,
                Undo::RemoveVolume { name },
            ),
            _ => continue,
        };
        // This release's files volume is made by `files::deliver`.
        if super::files::is_files_volume(d, c, run) {
            continue;
        }
        if exists {
            cx.output(&format!("{} {} exists; kept", c.resource.word(), c.name));
            continue;
        }
        let id = cx.intent(c, &undo)?;
        match c.resource {
            Resource::Network => engine.create_network(&c.name, labels).await,
            _ => engine.create_volume(&c.name, labels).await,
        }
        .map_err(docker_err)?;
        cx.done(&id, &json!({}))?;
    }

    Ok(())
}

/// The cut-over.
pub(super) async fn execute(
    live: &Live,
    step: &PlannedStep,
    d: &Deploy,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    if let Some(route) = &d.route {
        return super::route::execute(live, step, d, route, cx).await;
    }
    let engine = live.engine().await?;
    let run = cx.run_id().to_string();
    let (image, image_id) = image_and_id(&engine, d, cx).await?;
    let labels = labels(live.extra_labels(), live.app(), &run, &step.id);
    // The app's config files, made before any change (a missing `find` changes nothing).
    let files = super::files::render(d, cx.artifacts(), cx.secrets())?;
    let next = format!("{}.next-{run}", d.name);

    networks_and_volumes(&engine, step, d, &run, &labels, cx).await?;

    let old = engine.container(&d.name).await.map_err(docker_err)?;
    let create = change(step, Op::Create, Resource::Container)?;
    let new_id = create_next(&engine, step, d, &image, &files, labels, None, cx).await?;

    let replace = change(step, Op::Replace, Resource::Container)?;
    let ports: Vec<u16> = d.ports.iter().map(|p| p.host).collect();
    // The stop's change id and how long the stop took, once it was made.
    let mut stopped: Option<(String, Duration)> = None;
    if let Some(o) = old
        .as_ref()
        .filter(|o| o.running && o.host_ports.iter().any(|p| ports.contains(p)))
    {
        let id = cx.intent(
            &part(
                replace,
                &format!(
                    "stop the current `{}` (it holds a port of the new one)",
                    d.name
                ),
            ),
            // Undone: the new one (under either name) is stopped first, to free the port.
            &Undo::StartContainer {
                id: Some(o.id.clone()),
                name: d.name.clone(),
                stop_first: next.clone(),
            },
        )?;
        let t = Instant::now();
        let grace = i32::try_from(d.stop_grace.0.as_secs().max(1)).unwrap_or(i32::MAX);
        engine.stop(&d.name, grace).await.map_err(docker_err)?;
        stopped = Some((id, t.elapsed()));
    }
    // The new one is started the moment the old one's stop returns (the port is free then):
    // the stop's `done` is journaled after the start, not between them, so no fsync lies
    // in the gap. Write-ahead still holds: the stop's intent was durable before the stop,
    // the start is undone with the creation's intent (the container is removed), and each
    // undo is safe whether or not its change happened.
    let t = Instant::now();
    let started = engine.start(&next).await;
    let start_took = t.elapsed();
    let stopped_old = stopped.is_some();
    if let Some((id, stop_took)) = stopped {
        cx.output(&format!(
            "the current `{}` stopped in {:.3} s; the new one's start took {:.3} s",
            d.name,
            stop_took.as_secs_f64(),
            start_took.as_secs_f64()
        ));
        cx.done(
            &id,
            &json!({
                "stop_ms": u64::try_from(stop_took.as_millis()).unwrap_or(u64::MAX),
                "then_start_ms": u64::try_from(start_took.as_millis()).unwrap_or(u64::MAX),
            }),
        )?;
    }
    if let Err(e) = started {
        return Err(start_failed(e, d));
    }
    let health = wait_healthy(&engine, &next, d, cx).await;
    if let Err(why) = &health {
        return Err(unhealthy(&engine, d, why, create, old.is_some(), stopped_old, cx).await?);
    }
    let health = health.unwrap_or_else(|u| u.reason);
    take_name(&engine, live.app(), d, replace, old.is_some(), cx).await?;
    let now = engine.container(&d.name).await.map_err(docker_err)?;
    if now.as_ref().map(|c| c.image.as_str()) != Some(image_id.as_str()) {
        return Err(StepError::fatal(format!(
            "`{}` does not run the image that was built ({image_id})",
            d.name
        )));
    }
    // Evidence for the report: the hardening as the engine applied it, not as asked.
    let settings = engine.applied_settings(&d.name).await.unwrap_or_default();
    Ok(json!({
        "container": d.name,
        "container_id": new_id,
        "image": image,
        "image_id": image_id,
        "previous": old.map(|o| o.id),
        "health": health,
        "settings": settings,
    }))
}

/// An unhealthy new container: its evidence kept (`evidence.rs`), then it is removed, or,
/// with `--no-auto-rollback`, stopped and kept as `NAME.failed-RUN` (journaled: rollback
/// removes it); the old one, if it was stopped, serves again. The step's error says why,
/// what became of each, and the evidence in brief.
pub(super) async fn unhealthy(
    engine: &Docker,
    d: &Deploy,
    why: &Unhealthy,
    create: &crate::plan::Change,
    had_old: bool,
    stopped_old: bool,
    cx: &mut StepCx<'_>,
) -> Result<StepError, StepError> {
    let run = cx.run_id().to_string();
    let (next, failed) = (
        format!("{}.next-{run}", d.name),
        format!("{}.failed-{run}", d.name),
    );
    let mut evidence = Evidence::gather(engine, &next, why, cx).await;
    let mut fate = "it was removed".to_string();
    if cx.keeps_failed() {
        let id = cx.intent(
            &part(
                create,
                &format!(
                    "stopped and renamed `{failed}`, kept for inspection (--no-auto-rollback)"
                ),
            ),
            &Undo::RemoveContainer {
                name: failed.clone(),
            },
        )?;
        let grace = i32::try_from(d.stop_grace.0.as_secs().max(1)).unwrap_or(i32::MAX);
        let kept = async {
            engine.stop(&next, grace).await?;
            engine.remove_container(&failed).await?;
            engine.rename(&next, &failed).await
        }
        .await;
        match kept {
            Ok(()) => {
                cx.done(&id, &json!({}))?;
                evidence.kept_as = Some(failed.clone());
                fate = format!("it is kept, stopped, as `{failed}` (rollback removes it)");
            }
            Err(e) => {
                let _ = engine.remove_container(&next).await;
                fate = format!("it could not be kept ({e}), so it was removed");
            }
        }
    } else {
        let _ = engine.remove_container(&next).await;
    }
    // The old one serves again (the journal's undo would do the same; done here so that the
    // old app is back without a rollback).
    let old = match (had_old, stopped_old) {
        (false, _) => "there was no current one".to_string(),
        (true, true) => match engine.start(&d.name).await {
            Ok(()) => "the current one was started again".to_string(),
            Err(e) => format!("the current one could not be started again: {e}"),
        },
        (true, false) => "the current one kept running".to_string(),
    };
    let files = match evidence.write(cx.run_dir()) {
        Ok((files, sha256)) => {
            cx.note(
                "health-evidence",
                &format!(
                    "step `{}`: {} (sha256 {sha256}) and {}; the container {}",
                    cx.step(),
                    files.last().map_or("", String::as_str),
                    files.first().map_or("", String::as_str),
                    evidence.kept_as.as_deref().map_or_else(
                        || "was removed".to_string(),
                        |k| format!("is kept as `{k}`")
                    ),
                ),
            )?;
            cx.run_dir()
                .join(files.last().map_or("health", String::as_str))
                .display()
                .to_string()
        }
        Err(e) => format!("not written: {e}"),
    };
    Ok(StepError::fatal(format!(
        "the new `{}` is unhealthy: {}; {fate}, and {old}\n{}",
        d.name,
        why.reason,
        evidence.brief(&files)
    )))
}

/// The new release takes the app's name: the current one (if any) renamed
/// `NAME.prev-RUN`, the new one from `NAME.next-RUN` to `NAME`, each journaled; then older
/// previous releases beyond `keep` are pruned.
pub(super) async fn take_name(
    engine: &Docker,
    app: &str,
    d: &Deploy,
    replace: &crate::plan::Change,
    had_old: bool,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    let run = cx.run_id().to_string();
    let (next, prev) = (
        format!("{}.next-{run}", d.name),
        format!("{}.prev-{run}", d.name),
    );
    if had_old {
        let id = cx.intent(
            &part(
                replace,
                &format!("rename the current `{}` to `{prev}`", d.name),
            ),
            &Undo::Rename {
                from: prev.clone(),
                to: d.name.clone(),
            },
        )?;
        engine.rename(&d.name, &prev).await.map_err(docker_err)?;
        cx.done(&id, &json!({}))?;
    }
    let id = cx.intent(
        &part(replace, &format!("rename `{next}` to `{}`", d.name)),
        &Undo::Rename {
            from: d.name.clone(),
            to: next.clone(),
        },
    )?;
    engine.rename(&next, &d.name).await.map_err(docker_err)?;
    cx.done(&id, &json!({}))?;
    prune(engine, app, d, &prev, cx).await
}

/// The container's environment, its secrets resolved (for the engine's API body only).
pub(super) fn env_of(d: &Deploy, cx: &StepCx<'_>) -> Result<Vec<String>, StepError> {
    d.env
        .iter()
        .map(|(k, t)| {
            t.resolve(cx.secrets())
                .map(|v| format!("{k}={}", v.expose()))
        })
        .collect::<Result<_, _>>()
        .map_err(StepError::Fatal)
}

/// Keeps the newest `keep` previous releases (`NAME.prev-RUN`, this app's label only) and
/// removes older ones: they belong to earlier runs, whose rollback is then no longer
/// possible, so each removal is journaled as a note.
pub(super) async fn prune(
    engine: &Docker,
    app: &str,
    d: &Deploy,
    this_run: &str,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    let prefix = format!("{}.prev-", d.name);
    // This run's own previous release is never pruned: its rollback needs it.
    let mut prevs: Vec<String> = engine
        .app_containers(app)
        .await
        .map_err(docker_err)?
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && n != this_run)
        .collect();
    prevs.sort();
    let keep = usize::try_from(d.keep.saturating_sub(1)).unwrap_or(usize::MAX);
    let old = prevs.len().saturating_sub(keep);
    for name in &prevs[..old] {
        engine.remove_container(name).await.map_err(docker_err)?;
        // Its config files (they may hold secrets) go with it.
        if let Some(run) = name.strip_prefix(&prefix) {
            engine
                .remove_volume(&super::files::volume_name(d, run))
                .await
                .map_err(docker_err)?;
        }
        cx.note(
            "pruned",
            &format!("removed the previous release `{name}` (keep: {})", d.keep),
        )?;
        cx.output(&format!(
            "removed the previous release `{name}` (keep: {})",
            d.keep
        ));
    }
    Ok(())
}
