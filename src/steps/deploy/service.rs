//! `deploy` on a Swarm target (`target.swarm: true`): the app as a Docker Swarm service.
//!
//! Order: the app's network (an attachable overlay) if missing; with a route, the front
//! proxy if missing and its overlay network (`FRONT-swarm`, which the proxy joins);
//! each secret of the app's `env` as a Swarm secret of this run, mounted as a file, the
//! app getting `KEY_FILE=/run/secrets/KEY` (never the value in the service's env); then
//! the service created, or updated (its previous spec journaled whole first) with the
//! engine's own rolling update: one task at a time, start-first, each new task healthy
//! (the playbook's health check as the task's HEALTHCHECK) before an old one stops, then
//! watched for `service.monitor`; a failure makes the engine roll the update back
//! (`failure_action: rollback`), which the step reports as its failure. Last, the route
//! written, once: it names the service, and the proxy asks the engine's DNS for its
//! tasks (`dnsrr`: no virtual IP, no routing mesh, which needs IPVS).
//!
//! Rollback, from the journal in reverse: the route removed (if this run made it), the
//! service updated back to its journaled spec (or removed, if this run made it), then
//! this run's secrets and networks removed.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::service_plan::{SECRETS_DIR, file_key, planned_secret, secret_name};
use super::service_spec::spec;
use crate::docker::{Docker, ServiceNow};
use crate::engine::{StepCx, StepError};
use crate::front::{FrontProxy, RouteFile, Upstream, route_file};
use crate::plan::{Change, Op, PlannedStep, Resource, Undo};
use crate::playbook::{Deploy, Route, Service};
use crate::steps::common::{change, docker_err, labels, part};
use crate::steps::live::Live;

/// How an update ended.
pub(crate) enum Settled {
    /// Every task runs the spec.
    Done,
    /// The engine rolled it back; its message.
    RolledBack(String),
    /// It stopped (paused, or did not settle in time); why.
    Stuck(String),
}

/// The tasks' last words, for an error.
async fn task_words(engine: &Docker, name: &str) -> String {
    match engine.tasks(name).await {
        Ok(t) => t
            .iter()
            .take(6)
            .map(|t| {
                format!(
                    "{} {} ({}): {}",
                    &t.id[..t.id.len().min(12)],
                    t.state,
                    t.image,
                    t.message
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("tasks not read: {e}"),
    }
}

/// Whether `replicas` tasks run `image` and no other task is wanted running.
async fn converged(
    engine: &Docker,
    name: &str,
    image: &str,
    replicas: u64,
) -> Result<bool, StepError> {
    let tasks = engine.tasks(name).await.map_err(docker_err)?;
    let wanted: Vec<_> = tasks.iter().filter(|t| t.desired == "running").collect();
    let running = wanted
        .iter()
        .filter(|t| t.state == "running" && t.image == image)
        .count();
    Ok(u64::try_from(running).unwrap_or(0) >= replicas && wanted.iter().all(|t| t.image == image))
}

/// Waits until service `name` settles on `image` (an update's state, or its tasks when
/// it has no update state: a created service), at most `limit`.
pub(crate) async fn settle(
    engine: &Docker,
    name: &str,
    image: &str,
    limit: Duration,
) -> Result<Settled, StepError> {
    let t = Instant::now();
    loop {
        let Some(now) = engine.service(name).await.map_err(docker_err)? else {
            return Ok(Settled::Stuck(format!("service `{name}` is gone")));
        };
        let state = now.update.as_ref().map(|(s, m)| (s.as_str(), m.clone()));
        let done = matches!(state, Some(("completed", _)) | None)
            && converged(engine, name, image, now.replicas).await?;
        match state {
            Some(("rollback_completed", m)) => return Ok(Settled::RolledBack(m)),
            Some(("paused" | "rollback_paused", m)) => {
                return Ok(Settled::Stuck(format!("the update paused: {m}")));
            }
            _ if done => return Ok(Settled::Done),
            _ => {}
        }
        // A new service whose tasks keep failing (the engine starts them again and
        // again) will not settle: said at once.
        if now.update.is_none() {
            let failed = engine
                .tasks(name)
                .await
                .map_err(docker_err)?
                .iter()
                .filter(|t| t.state == "failed" || t.state == "rejected")
                .count();
            if u64::try_from(failed).unwrap_or(u64::MAX) > now.replicas + 2 {
                return Ok(Settled::Stuck(format!(
                    "its tasks keep failing: {}",
                    task_words(engine, name).await
                )));
            }
        }
        if t.elapsed() > limit {
            return Ok(Settled::Stuck(format!(
                "not settled within {} s: {}",
                limit.as_secs(),
                task_words(engine, name).await
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The deploy as a service.
/// The engine's limit on a Swarm secret's size.
const SWARM_SECRET_MAX: usize = 500 * 1024;

/// A Swarm secret of this run as the service's tasks mount it: at `/run/secrets/KEY` (an
/// env key) or at its own absolute path (a `deploy.files` file).
pub(super) struct Mounted {
    pub target: String,
    pub name: String,
    pub id: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Creates the Swarm secret of `key` for this run (journaled first, its planned change
/// found by name; one of this run left by a cut-off attempt replaced); `done` is what the
/// journal keeps of it. Its id.
#[allow(
    clippy::too_many_arguments,
    reason = "the step's context, as every change of a step takes it"
)]
async fn put_secret(
    engine: &Docker,
    step: &PlannedStep,
    service: &str,
    key: &str,
    bytes: &[u8],
    done: Value,
    labels: &HashMap<String, String>,
    cx: &mut StepCx<'_>,
) -> Result<String, StepError> {
    let run = cx.run_id().to_string();
    let name = secret_name(service, key, &run);
    let planned = planned_secret(service, key).replace("<run-id>", &run);
    let c = step
        .changes
        .iter()
        .find(|c| {
            c.resource == Resource::Secret
                && (c.name == planned || c.name == planned_secret(service, key))
        })
        .ok_or_else(|| {
            StepError::fatal(format!("the plan of this deploy lists no secret for {key}"))
        })?;
    let id = cx.intent(c, &Undo::RemoveSecret { name: name.clone() })?;
    engine.remove_secret(&name).await.map_err(docker_err)?;
    let secret_id = engine
        .create_secret(&name, bytes, labels)
        .await
        .map_err(docker_err)?;
    cx.done(&id, &done)?;
    Ok(secret_id)
}

pub(super) async fn execute(
    live: &Live,
    step: &PlannedStep,
    d: &Deploy,
    s: &Service,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let engine = live.engine().await?;
    match engine.swarm_node().await.map_err(docker_err)? {
        Some(n) if n.manager => {}
        _ => {
            return Err(StepError::fatal(format!(
                "`target.swarm: true`, but the engine at {} is not a swarm manager: make it one (`docker swarm init`), or point `target.docker` at a manager",
                engine.endpoint()
            )));
        }
    }
    // The files' bytes are made before any change (a `find` missing fails here).
    let ready = super::files::render(d, cx.artifacts(), cx.secrets())?;
    if let Some(big) = ready.iter().find(|r| r.bytes.len() > SWARM_SECRET_MAX) {
        return Err(StepError::fatal(format!(
            "`{}` is {} bytes: a Swarm secret holds at most 500 KiB; nothing was changed. Make the file smaller, or deploy without `target.swarm`",
            big.file.path,
            big.bytes.len()
        )));
    }
    let run = cx.run_id().to_string();
    let app = live.app().to_string();
    let front = live.front();
    let (image, image_id) = super::cutover::image_and_id(&engine, d, cx).await?;
    let labels = labels(live.extra_labels(), &app, &run, &step.id);

    for c in step.changes.iter().filter(|c| c.op == Op::Create) {
        match c.resource {
            Resource::Network => {
                let is_front = c.name == front.swarm_network();
                if is_front {
                    super::route::ensure_front(live, step, &engine, cx).await?;
                }
                overlay(
                    &engine,
                    c,
                    is_front.then_some(front.name.as_str()),
                    &labels,
                    cx,
                )
                .await?;
            }
            Resource::Volume if !engine.volume_exists(&c.name).await.map_err(docker_err)? => {
                let id = cx.intent(
                    c,
                    &Undo::RemoveVolume {
                        name: c.name.clone(),
                    },
                )?;
                engine
                    .create_volume(&c.name, &labels)
                    .await
                    .map_err(docker_err)?;
                cx.done(&id, &json!({}))?;
            }
            _ => {}
        }
    }

    // The networks the service joins: its own (made above or by an earlier step) and,
    // routed, the front's overlay (which an earlier deploy may have made).
    let mut networks: Vec<String> = d.network.iter().cloned().collect();
    if d.route.is_some() {
        let net = front.swarm_network();
        if !step
            .changes
            .iter()
            .any(|c| c.resource == Resource::Network && c.name == net)
        {
            super::route::ensure_front(live, step, &engine, cx).await?;
            engine
                .connect_network(&front.name, &net)
                .await
                .map_err(docker_err)?;
        }
        if !networks.contains(&net) {
            networks.push(net);
        }
    }
    for n in &networks {
        match engine.network_driver(n).await.map_err(docker_err)? {
            Some(driver) if driver == "overlay" => {}
            other => {
                return Err(StepError::fatal(format!(
                    "network `{n}` is {}; a Swarm service needs an attachable overlay network: choose another `network`",
                    other.map_or_else(|| "missing".to_string(), |d| format!("a `{d}` network"))
                )));
            }
        }
    }

    // The app's env: plain values in it, secrets as Swarm secrets of this run.
    let mut env = Vec::new();
    let mut secrets = Vec::new();
    for (k, t) in &d.env {
        let value = t.resolve(cx.secrets()).map_err(StepError::Fatal)?;
        if t.secrets().next().is_none() {
            env.push(format!("{k}={}", value.expose()));
            continue;
        }
        let name = secret_name(&d.name, k, &run);
        let secret_id = put_secret(
            &engine,
            step,
            &d.name,
            k,
            value.expose().as_bytes(),
            json!({"secret": name}),
            &labels,
            cx,
        )
        .await?;
        env.push(format!("{k}_FILE={SECRETS_DIR}/{k}"));
        secrets.push(Mounted {
            target: k.clone(),
            name,
            id: secret_id,
            uid: 0,
            gid: 0,
            mode: 0o444,
        });
    }
    // `deploy.files`: each a Swarm secret of this run mounted at its path.
    for (i, r) in ready.iter().enumerate() {
        let key = file_key(i);
        let name = secret_name(&d.name, &key, &run);
        let mut done = r.evidence();
        done["secret"] = json!(name);
        let secret_id =
            put_secret(&engine, step, &d.name, &key, &r.bytes, done, &labels, cx).await?;
        secrets.push(Mounted {
            target: r.file.path.clone(),
            name,
            id: secret_id,
            uid: r.file.uid,
            gid: r.file.gid,
            mode: r.file.mode,
        });
    }
    if !ready.is_empty() {
        cx.output(&super::files::delivered(&ready, "as Swarm secrets"));
    }

    let new_spec = spec(d, s, &image, &env, &secrets, &networks, &labels);
    let replace = change(step, Op::Replace, Resource::Service)?;
    let old = engine.service(&d.name).await.map_err(docker_err)?;
    let limit = Duration::from_secs(120) + (s.monitor.0 + d.health.timeout.0) * (s.replicas + 1);
    let t = Instant::now();
    let previous = old.as_ref().map(|o| o.image.clone());
    match &old {
        None => {
            let id = cx.intent(
                &part(
                    replace,
                    &format!(
                        "create service `{}`: image {image}, {} replica(s)",
                        d.name, s.replicas
                    ),
                ),
                &Undo::RemoveService {
                    name: d.name.clone(),
                },
            )?;
            let sid = engine.create_service(&new_spec).await.map_err(docker_err)?;
            cx.done(&id, &json!({"service_id": sid}))?;
        }
        Some(o) => update(&engine, d, s, o, &image, &new_spec, replace, cx).await?,
    }
    match settle(&engine, &d.name, &image, limit).await? {
        Settled::Done => {}
        Settled::RolledBack(m) => {
            let words = task_words(&engine, &d.name).await;
            cx.note(
                "service-rolled-back",
                &format!(
                    "step `{}`: the engine rolled the update of service `{}` back: {m}",
                    step.id, d.name
                ),
            )?;
            return Err(StepError::fatal(format!(
                "the update of service `{}` failed and the engine rolled it back (failure_action rollback): {m}; the previous spec ({}) serves again. Tasks: {words}",
                d.name,
                previous.as_deref().unwrap_or("?"),
            )));
        }
        Settled::Stuck(why) => {
            return Err(StepError::fatal(format!("service `{}`: {why}", d.name)));
        }
    }
    // The old tasks stop after they left the engine's DNS: once they have, only the new
    // release answers.
    engine
        .old_tasks_stopped(&d.name, d.stop_grace.0 + Duration::from_secs(10))
        .await
        .map_err(docker_err)?;
    let took = t.elapsed();
    cx.output(&format!(
        "service `{}` {} in {:.1} s: {} replica(s) of {image}",
        d.name,
        if old.is_some() { "updated" } else { "created" },
        took.as_secs_f64(),
        s.replicas
    ));
    let route = match &d.route {
        Some(r) => Some(route_to_service(live, &engine, d, r, replace, cx).await?),
        None => None,
    };
    let tasks: Vec<Value> = engine
        .tasks(&d.name)
        .await
        .map_err(docker_err)?
        .iter()
        .filter(|t| t.desired == "running")
        .map(|t| json!({"task": t.id, "state": t.state, "container": t.container}))
        .collect();
    Ok(json!({
        "service": d.name,
        "image": image,
        "image_id": image_id,
        "previous_image": previous,
        "replicas": s.replicas,
        "update_ms": u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        "tasks": tasks,
        "secrets": secrets.iter().map(|m| if m.target.starts_with('/') {
            json!({"file": m.target, "secret": m.name})
        } else {
            json!({"env": format!("{}_FILE", m.target), "secret": m.name})
        }).collect::<Vec<_>>(),
        "route": route,
    }))
}

/// An overlay network the service joins: made if missing (journaled), refused if it is a
/// local network; `front`, when given, joins it too.
async fn overlay(
    engine: &Docker,
    c: &Change,
    front: Option<&str>,
    labels: &HashMap<String, String>,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    match engine.network_driver(&c.name).await.map_err(docker_err)? {
        Some(d) if d == "overlay" => {
            if let Some(f) = front {
                engine
                    .connect_network(f, &c.name)
                    .await
                    .map_err(docker_err)?;
            }
        }
        Some(d) => {
            return Err(StepError::fatal(format!(
                "network `{}` exists as a `{d}` network; a Swarm service needs an overlay one: choose another `network`",
                c.name
            )));
        }
        None => {
            let id = cx.intent(
                c,
                &Undo::RemoveOverlay {
                    detach: front.map(str::to_string).into_iter().collect(),
                    name: c.name.clone(),
                },
            )?;
            engine
                .create_overlay(&c.name, labels)
                .await
                .map_err(docker_err)?;
            if let Some(f) = front {
                engine
                    .connect_network(f, &c.name)
                    .await
                    .map_err(docker_err)?;
            }
            cx.done(&id, &json!({}))?;
        }
    }
    Ok(())
}

/// An existing service updated to `new_spec`, its previous spec journaled first.
#[expect(
    clippy::too_many_arguments,
    reason = "the update's parts, made once by its caller"
)]
async fn update(
    engine: &Docker,
    d: &Deploy,
    s: &Service,
    o: &ServiceNow,
    image: &str,
    new_spec: &Value,
    replace: &Change,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    let id = cx.intent(
        &part(
            replace,
            &format!(
                "update service `{}`: image {} → {image}, start-first, {} replica(s)",
                d.name, o.image, s.replicas
            ),
        ),
        &Undo::RestoreService {
            name: d.name.clone(),
            spec: o.spec.clone(),
            version: o.version,
        },
    )?;
    engine
        .update_service(&d.name, o.version, new_spec)
        .await
        .map_err(docker_err)?;
    cx.done(
        &id,
        &json!({"previous_image": o.image, "previous_version": o.version}),
    )?;
    Ok(())
}

/// The app's route, to the service by name: written once (journaled), then left as it
/// is by later updates (it names the service, not its tasks).
async fn route_to_service(
    live: &Live,
    engine: &Docker,
    d: &Deploy,
    r: &Route,
    replace: &Change,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let front = live.front();
    let app = live.app().to_string();
    let proxy = FrontProxy::new(engine, &front);
    let file = RouteFile {
        app: app.clone(),
        host: r.host.clone(),
        tls: r.tls.is_some(),
        redirect_http: r.redirect_http,
        upstream: Upstream {
            container: d.name.clone(),
            ip: String::new(),
            port: r.port,
            service: true,
        },
    };
    let want = crate::front::route_conf(&file).map_err(StepError::Fatal)?;
    let now = proxy
        .read(&route_file(&app))
        .await
        .map_err(|e| StepError::failed(e.to_string()))?;
    let tls = match &r.tls {
        Some(t) => Some((
            t.cert
                .resolve(cx.secrets())
                .map_err(StepError::Fatal)?
                .expose()
                .as_bytes()
                .to_vec(),
            t.key
                .resolve(cx.secrets())
                .map_err(StepError::Fatal)?
                .expose()
                .as_bytes()
                .to_vec(),
        )),
        None => None,
    };
    if now.as_deref() != Some(want.as_bytes()) || tls.is_some() {
        // Back to the container of the same name, if the app served from one before.
        let to = engine
            .container(&d.name)
            .await
            .map_err(docker_err)?
            .filter(|_| now.is_some())
            .map(|_| d.name.clone());
        let id = cx.intent(
            &part(
                replace,
                &format!("route {} to service `{}` (by name)", r.host, d.name),
            ),
            &Undo::Route {
                app: app.clone(),
                drain_ms: u64::try_from(r.drain.0.as_millis()).unwrap_or(u64::MAX),
                front: front.clone(),
                host: r.host.clone(),
                port: r.port,
                redirect_http: r.redirect_http,
                tls: r.tls.is_some(),
                to,
            },
        )?;
        let took = super::route::switch(
            &proxy,
            &app,
            &file,
            tls.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        )
        .await?;
        cx.done(
            &id,
            &json!({"reload_ms": u64::try_from(took.as_millis()).unwrap_or(u64::MAX)}),
        )?;
        cx.output(&format!(
            "route {} switched to service `{}`",
            r.host, d.name
        ));
    }
    Ok(json!({
        "host": r.host,
        "front": front.name,
        "front_http": crate::front::http_address(&front),
        "upstream": format!("{}:{} (Swarm service, by name)", d.name, r.port),
        "tls": r.tls.is_some(),
    }))
}

/// Undoes an update: the service back to `spec` (at the version it has now), settled.
/// A service that is gone, or has that spec already, is left as it is.
pub(crate) async fn undo_update(
    engine: &Docker,
    name: &str,
    spec: &Value,
) -> Result<(), StepError> {
    let failed = |e: crate::docker::DockerError| StepError::failed(e.to_string());
    let Some(now) = engine.service(name).await.map_err(failed)? else {
        return Ok(());
    };
    let image = spec
        .pointer("/TaskTemplate/ContainerSpec/Image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if &now.spec != spec {
        engine
            .update_service(name, now.version, spec)
            .await
            .map_err(failed)?;
    }
    match settle(engine, name, &image, Duration::from_secs(300)).await? {
        // The tasks of the release rolled back, ended, hold its image: they go, so the
        // undo of its image (next) can remove it.
        Settled::Done => engine.remove_ended_tasks(name).await.map_err(failed),
        Settled::RolledBack(m) | Settled::Stuck(m) => Err(StepError::failed(format!(
            "service `{name}` did not settle back on its previous spec: {m}"
        ))),
    }
}

/// Undoes an overlay network's creation: `detach` disconnected, then the network removed
/// unless another container or a service uses it.
pub(crate) async fn undo_overlay(
    engine: &Docker,
    name: &str,
    detach: &[String],
) -> Result<(), StepError> {
    let failed = |e: crate::docker::DockerError| StepError::failed(e.to_string());
    let (containers, used) = engine.network_users(name).await.map_err(failed)?;
    if used || containers.iter().any(|c| !detach.contains(c)) {
        return Ok(());
    }
    for c in detach {
        engine.disconnect_network(c, name).await.map_err(failed)?;
    }
    engine.remove_network(name).await.map_err(failed)
}
