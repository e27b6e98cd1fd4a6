//! `deploy` with a `route`: the cut-over through the target's front proxy.
//!
//! Order: the front proxy made if missing (one change, undone only when it routes no
//! other app), the new container `NAME.next-RUN` on the app's network and the front's,
//! no published port, started and health-checked at its own address; then the route
//! switched to it (checked, reloaded, and awaited until the proxy serves it), the old
//! release left to drain its requests, stopped, renamed `NAME.prev-RUN`, and the new one
//! renamed `NAME`. No request meets a stopped container: the old one serves until the
//! switch has happened, and keeps what it holds for the drain.
//!
//! Rollback, from the journal in reverse: the old release started again, the route
//! switched back once it answers (its new address looked up then), and only then the
//! bad release removed: no stop grace lies in the gap.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::health::wait_healthy;
use crate::docker::Docker;
use crate::engine::{StepCx, StepError};
use crate::front::{FrontProxy, RouteFile, Upstream, route_conf, route_file};
use crate::plan::{Op, PlannedStep, Resource, Undo};
use crate::playbook::{Deploy, Front, HealthCheck, Route};
use crate::steps::common::{change, docker_err, labels, part};
use crate::steps::live::Live;

/// How long a release being routed back to may take to answer at rollback.
const ROUTE_BACK_WAIT: Duration = Duration::from_secs(30);

/// The health check of a routed release: the playbook's, sent to the release's own
/// address (`ip:port`) instead of the URL's host, an HTTP one with the route's host name in
/// its `Host` header (what the front proxy will send).
fn at_address(d: &Deploy, addr: &str) -> Deploy {
    let mut d = d.clone();
    let route_host = d.route.as_ref().map(|r| r.host.clone());
    d.health.check = match &d.health.check {
        HealthCheck::Http {
            url, expect_status, ..
        } => {
            let path = url
                .strip_prefix("http://")
                .and_then(|r| r.find('/').map(|i| r[i..].to_string()))
                .unwrap_or_else(|| "/".into());
            HealthCheck::Http {
                url: format!("http://{addr}{path}"),
                expect_status: *expect_status,
                host: route_host,
            }
        }
        HealthCheck::Tcp(_) => HealthCheck::Tcp(addr.to_string()),
        other => other.clone(),
    };
    d
}

/// Writes `app`'s route to `upstream` (and its certificate and key, when given), checks
/// and reloads; on a failed check the previous file is put back. The reload's time.
pub(super) async fn switch(
    proxy: &FrontProxy<'_>,
    app: &str,
    r: &RouteFile,
    tls: Option<(&[u8], &[u8])>,
) -> Result<Duration, StepError> {
    let conf = route_conf(r).map_err(StepError::Fatal)?;
    let failed = |e: crate::docker::DockerError| StepError::failed(e.to_string());
    let name = route_file(app);
    let before = proxy.read(&name).await.map_err(failed)?;
    if let Some((cert, key)) = tls {
        proxy
            .write(&format!("{app}.crt"), cert)
            .await
            .map_err(failed)?;
        proxy
            .write(&format!("{app}.key"), key)
            .await
            .map_err(failed)?;
    }
    proxy.write(&name, conf.as_bytes()).await.map_err(failed)?;
    match proxy.reload().await {
        Ok(t) => Ok(t),
        Err(e) => {
            // Never leave a file that fails the check for the next reload to trip on.
            let _ = match before {
                Some(b) => proxy.write(&name, &b).await,
                None => proxy.remove(&name).await,
            };
            Err(StepError::fatal(format!(
                "the route of `{}` was not switched: {e}",
                r.host
            )))
        }
    }
}

/// The engine's front proxy, made if missing (journaled: one change, undone only when it
/// routes no other app), else started if stopped.
pub(super) async fn ensure_front(
    live: &Live,
    step: &PlannedStep,
    engine: &Docker,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    let front = live.front();
    let proxy = FrontProxy::new(engine, &front);
    let missing = engine
        .container(&front.name)
        .await
        .map_err(docker_err)?
        .is_none()
        || !engine
            .network_exists(&front.network())
            .await
            .map_err(docker_err)?
        || !engine
            .volume_exists(&front.volume())
            .await
            .map_err(docker_err)?;
    if missing {
        let c = step
            .changes
            .iter()
            .find(|c| c.resource == Resource::Container && c.name == front.name)
            .ok_or_else(|| StepError::fatal("the plan of this deploy lists no front proxy"))?;
        let id = cx.intent(
            c,
            &Undo::RemoveFront {
                front: front.clone(),
            },
        )?;
        proxy
            .ensure(live.extra_labels())
            .await
            .map_err(|e| StepError::fatal(format!("the front proxy `{}`: {e}", front.name)))?;
        cx.done(&id, &json!({}))?;
        cx.output(&format!(
            "front proxy `{}` made: HTTP on {}:{}, HTTPS on {}:{}",
            front.name, front.http.0, front.http.1, front.https.0, front.https.1
        ));
    } else {
        proxy
            .ensure(live.extra_labels())
            .await
            .map_err(|e| StepError::fatal(format!("the front proxy `{}`: {e}", front.name)))?;
    }

    Ok(())
}

/// The cut-over through the front proxy.
pub(super) async fn execute(
    live: &Live,
    step: &PlannedStep,
    d: &Deploy,
    route: &Route,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let engine = live.engine().await?;
    let front = live.front();
    let run = cx.run_id().to_string();
    let app = live.app().to_string();
    let (image, image_id) = super::cutover::image_and_id(&engine, d, cx).await?;
    if engine
        .image_id(&front.image)
        .await
        .map_err(docker_err)?
        .is_none()
    {
        return Err(StepError::fatal(format!(
            "the front proxy's image `{}` is not on the target engine, and no registry is used: build it there first (`bash fixtures/base-images.sh front`)",
            front.image
        )));
    }
    let labels = labels(live.extra_labels(), &app, &run, &step.id);
    let files = super::files::render(d, cx.artifacts(), cx.secrets())?;
    let tls = match &route.tls {
        Some(t) => {
            let cert = t.cert.resolve(cx.secrets()).map_err(StepError::Fatal)?;
            let key = t.key.resolve(cx.secrets()).map_err(StepError::Fatal)?;
            Some((
                cert.expose().as_bytes().to_vec(),
                key.expose().as_bytes().to_vec(),
            ))
        }
        None => None,
    };
    // The certificate as the report shows it: read before anything changes.
    let cert = match &tls {
        Some((c, _)) => Some(
            crate::front::fingerprint_and_expiry(&String::from_utf8_lossy(c)).map_err(|e| {
                StepError::fatal(format!("the route's certificate (`tls.cert`): {e}"))
            })?,
        ),
        None => None,
    };
    let next = format!("{}.next-{run}", d.name);
    super::cutover::networks_and_volumes(&engine, step, d, &run, &labels, cx).await?;

    ensure_front(live, step, &engine, cx).await?;
    let proxy = FrontProxy::new(&engine, &front);

    let old = engine.container(&d.name).await.map_err(docker_err)?;
    let create = change(step, Op::Create, Resource::Container)?;
    let network = Some(d.network.clone().unwrap_or_else(|| front.network()));
    let new_id =
        super::cutover::create_next(&engine, step, d, &image, &files, labels, network, cx).await?;
    engine
        .connect_network(&next, &front.network())
        .await
        .map_err(docker_err)?;
    engine.start(&next).await.map_err(docker_err)?;
    let ip = engine
        .container_ip(&next, &front.network())
        .await
        .map_err(docker_err)?
        .ok_or_else(|| {
            StepError::failed(format!("`{next}` has no address on the front's network"))
        })?;
    let addr = format!("{ip}:{}", route.port);
    let health = wait_healthy(&engine, &next, &at_address(d, &addr), cx).await;
    let health = match health {
        Ok(h) => h,
        // The route never moved: the current release serves on, untouched; the new one's
        // evidence is kept (and the container, with --no-auto-rollback).
        Err(why) => {
            return Err(super::cutover::unhealthy(
                &engine,
                d,
                &why,
                create,
                old.is_some(),
                false,
                cx,
            )
            .await?);
        }
    };

    // The assessment before the switch: the new release against the vendor's site.
    let assessment = if route.assess {
        match before_switch(live, &addr, cx).await {
            Ok(a) => Some(a),
            Err(why) => {
                let _ = engine.remove_container(&next).await;
                return Err(StepError::fatal(format!(
                    "the new `{}` failed its assessment at {addr}, so it was removed and the route left as it was: {why}",
                    d.name
                )));
            }
        }
    } else {
        None
    };

    // The switch.
    let replace = change(step, Op::Replace, Resource::Container)?;
    let back_to = old.as_ref().map(|_| d.name.clone());
    let id = cx.intent(
        &part(
            replace,
            &format!("route {} to `{next}` ({addr})", route.host),
        ),
        &Undo::Route {
            app: app.clone(),
            drain_ms: u64::try_from(route.drain.0.as_millis()).unwrap_or(u64::MAX),
            front: front.clone(),
            host: route.host.clone(),
            port: route.port,
            redirect_http: route.redirect_http,
            tls: route.tls.is_some(),
            to: back_to,
        },
    )?;
    let file = RouteFile {
        app: app.clone(),
        host: route.host.clone(),
        tls: route.tls.is_some(),
        redirect_http: route.redirect_http,
        upstream: Upstream {
            container: next.clone(),
            ip: ip.clone(),
            port: route.port,
            service: false,
        },
    };
    let took = switch(
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
        "route {} switched to the new `{}` ({addr}) in {:.3} s",
        route.host,
        d.name,
        took.as_secs_f64()
    ));

    if let Some(o) = old.as_ref().filter(|o| o.running) {
        cx.output(&format!(
            "the current `{}` drains its requests for {}",
            d.name, route.drain
        ));
        tokio::time::sleep(route.drain.0).await;
        let id = cx.intent(
            &part(replace, &format!("stop the current `{}` (drained)", d.name)),
            &Undo::StartContainer {
                id: Some(o.id.clone()),
                name: d.name.clone(),
                stop_first: String::new(),
            },
        )?;
        let grace = i32::try_from(d.stop_grace.0.as_secs().max(1)).unwrap_or(i32::MAX);
        engine.stop(&d.name, grace).await.map_err(docker_err)?;
        cx.done(&id, &json!({}))?;
    }
    super::cutover::take_name(&engine, &app, d, replace, old.is_some(), cx).await?;
    Ok(json!({
        "container": d.name,
        "container_id": new_id,
        "image": image,
        "image_id": image_id,
        "previous": old.map(|o| o.id),
        "health": health,
        "route": {
            "host": route.host,
            "front": front.name,
            "front_http": crate::front::http_address(&front),
            "upstream": addr,
            "tls": route.tls.is_some(),
            "cert_sha256": cert.as_ref().map(|c| c.0.clone()),
            "cert_expires": cert.as_ref().map(|c| c.1.clone()),
        },
        "settings": engine.applied_settings(&d.name).await.unwrap_or_default(),
        "assessment": assessment,
    }))
}

/// The playbook's assessment with the new release (at `addr`, its own address on the
/// front's network) as the target: its result, or why it failed (each request and figure).
async fn before_switch(
    live: &Live,
    addr: &str,
    cx: &mut StepCx<'_>,
) -> Result<crate::assess::Assessment, String> {
    let mut a = live
        .assess_section()
        .cloned()
        .ok_or("the playbook has no `assess:` section")?;
    a.target_url.authority = addr.to_string();
    let result = Box::pin(crate::assess::assess(&a, cx.secrets()))
        .await
        .map_err(|e| e.to_string())?;
    cx.output(&format!(
        "assessment before the switch (the new release at {addr}): {}",
        result.verdict()
    ));
    if result.passed {
        Ok(result)
    } else {
        Err(format!(
            "assessment {}: {}",
            result.verdict(),
            result.failures.join("; ")
        ))
    }
}

/// Undoes a route switch: back to `to` once it answers, or the route removed.
#[expect(
    clippy::too_many_arguments,
    reason = "the undo record's fields, as journaled"
)]
pub(crate) async fn undo_route(
    engine: &Docker,
    front: &Front,
    app: &str,
    host: &str,
    port: u16,
    tls: bool,
    redirect_http: bool,
    to: Option<&str>,
    drain: Duration,
) -> Result<(), StepError> {
    let failed = |e: crate::docker::DockerError| StepError::failed(e.to_string());
    let proxy = FrontProxy::new(engine, front);
    if proxy.running().await.map_err(failed)?.is_none() {
        return Ok(()); // no proxy, no route
    }
    proxy
        .ensure(&std::collections::HashMap::new())
        .await
        .map_err(failed)?;
    let Some(to) = to else {
        proxy.remove(&route_file(app)).await.map_err(failed)?;
        proxy.remove(&format!("{app}.crt")).await.map_err(failed)?;
        proxy.remove(&format!("{app}.key")).await.map_err(failed)?;
        proxy.reload().await.map_err(failed)?;
        return Ok(());
    };
    // The release routed back to was started by the undo before this one: it answers
    // at its (new) address first.
    let t = Instant::now();
    let addr = loop {
        if let Some(ip) = engine
            .container_ip(to, &front.network())
            .await
            .map_err(failed)?
            && engine.dial(&format!("{ip}:{port}")).await.is_ok()
        {
            break ip;
        }
        if t.elapsed() > ROUTE_BACK_WAIT {
            return Err(StepError::failed(format!(
                "`{to}` does not answer on the front's network within {} s: the route of {host} was left on the release being rolled back",
                ROUTE_BACK_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let file = RouteFile {
        app: app.to_string(),
        host: host.to_string(),
        tls,
        redirect_http,
        upstream: Upstream {
            container: to.to_string(),
            ip: addr,
            port,
            service: false,
        },
    };
    switch(&proxy, app, &file, None).await?;
    // What the release switched from holds finishes before the undo that removes it.
    tokio::time::sleep(drain.min(Duration::from_secs(2))).await;
    Ok(())
}

/// One try of a routed app's health check as its users reach it: the check's path (`/`
/// for a check that is not HTTP) through the front proxy at `front_http`, with the
/// route's host name; the answer must be the check's status (200 for one not HTTP).
///
/// # Errors
/// No answer, or another status (and where a redirect points).
pub async fn check_route(
    engine: &Docker,
    front_http: &str,
    host: &str,
    check: &HealthCheck,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (path, expect) = match check {
        HealthCheck::Http {
            url, expect_status, ..
        } => (
            url.strip_prefix("http://")
                .and_then(|r| r.find('/').map(|i| r[i..].to_string()))
                .unwrap_or_else(|| "/".into()),
            *expect_status,
        ),
        _ => ("/".to_string(), 200),
    };
    let mut s = engine
        .dial(front_http)
        .await
        .map_err(|e| format!("the front proxy at {front_http}: {e}"))?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: boyong\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = vec![0_u8; 4096];
    let n = s.read(&mut head).await.map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&head[..n]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .map(|l| format!(" (to {})", l.trim()))
        .unwrap_or_default();
    match status {
        Some(c) if c == expect => Ok(format!(
            "GET http://{host}{path} through the front proxy answered {c}"
        )),
        Some(c) => Err(format!(
            "GET http://{host}{path} through the front proxy answered {c}{location}, expected {expect}"
        )),
        None => Err(format!(
            "GET http://{host}{path} through the front proxy: not an HTTP answer"
        )),
    }
}
