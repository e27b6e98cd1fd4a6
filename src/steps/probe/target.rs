//! Probes on the target engine (inspections and lists only) and on this machine (`df`, a
//! port bound and closed at once): images, containers, volumes, networks, ports, disk.

use super::{Findings, StepFound, Target, human_bytes, secs, short};
use crate::plan::{Estimate, PlannedStep, Resource};
use crate::playbook::{DockerEndpoint, ImageSource};

/// Whether `image` is on the engine (no registry is ever used).
async fn image_present(
    t: &Target,
    image: &str,
    step: Option<&str>,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    match t.engine.image_id(image).await {
        Ok(Some(id)) => {
            sf.found
                .push(format!("image {image} present ({})", short(&id)));
            fx.fingerprints.insert(format!("target.image.{image}"), id);
        }
        Ok(None) => {
            fx.fingerprints
                .insert(format!("target.image.{image}"), "absent".into());
            fx.problem(
                step,
                format!("image {image} is not on the target engine (no registry is used)"),
                "build or load it there first (`docker load -i` of a saved image; fixtures/base-images.sh builds the gov/* images from Debian packages), then plan again",
            );
        }
        Err(e) => fx.problem(
            step,
            format!("cannot inspect image {image}: {e}"),
            "check the engine",
        ),
    }
}

/// A build step: its base image, and the tag it moves if that exists.
pub(super) async fn build(
    t: Option<&Target>,
    step: &PlannedStep,
    b: &crate::playbook::Build,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    let bytes: u64 = b
        .copy
        .iter()
        .filter_map(|(from, _)| fx.fetched.get(from).map(|t| t.bytes))
        .sum();
    for (from, _) in &b.copy {
        sf.found.push(match fx.fetched.get(from) {
            Some(t) => format!(
                "context: artifact `{from}` ({} files, {} as probed; its digest is known after fetch)",
                t.files,
                human_bytes(t.bytes)
            ),
            None => format!("context: artifact `{from}` (size known after fetch)"),
        });
    }
    let known = b.copy.iter().all(|(from, _)| fx.fetched.contains_key(from));
    sf.estimate = Some(Estimate {
        bytes: known.then_some(bytes),
        seconds: 3.0 + secs(bytes, 100e6),
        basis: "context sent at ~100 MB/s plus the base image's RUN commands".into(),
    });
    fx.target_bytes += bytes;
    let Some(t) = t else { return };
    image_present(t, &b.base, Some(&step.id), fx, sf).await;
    if let Some(tag) = &b.tag {
        let n = step
            .changes
            .iter()
            .position(|c| c.resource == Resource::Image);
        if let (Some(n), Ok(Some(img))) = (n, t.engine.image_id(tag).await) {
            sf.now[n] = Some(format!(
                "the tag exists ({}): it moves to the new image; rollback moves it back",
                short(&img)
            ));
        }
    }
}

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

async fn network(t: &Target, step: &PlannedStep, net: &str, fx: &mut Findings, sf: &mut StepFound) {
    let n = step
        .changes
        .iter()
        .position(|c| c.resource == Resource::Network && c.name == net);
    match t.engine.network_exists(net).await {
        Ok(exists) => {
            fx.fingerprints.insert(
                format!("target.network.{net}"),
                if exists { "present" } else { "absent" }.into(),
            );
            if let Some(n) = n {
                sf.now[n] = Some(if exists {
                    "exists: used as it is, and kept by rollback".into()
                } else {
                    "absent: this run creates it".into()
                });
            }
        }
        Err(e) => fx.problem(
            Some(&step.id),
            format!("cannot inspect network {net}: {e}"),
            "check the engine",
        ),
    }
}

/// A deploy step: its image when not built here, the container it replaces, its network
/// and the host ports it publishes.
pub(super) async fn deploy(
    t: Option<&Target>,
    endpoint: Option<&DockerEndpoint>,
    step: &PlannedStep,
    spec: &crate::playbook::Deploy,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    sf.estimate = Some(Estimate {
        bytes: None,
        seconds: 2.0,
        basis: format!(
            "create, start, health check (waits at most {}), rename",
            spec.health.timeout
        ),
    });
    let Some(t) = t else { return };
    if let ImageSource::Reference(r) = &spec.image {
        image_present(t, r, Some(&step.id), fx, sf).await;
    }
    let d = spec;
    let id = step.id.as_str();
    let current = t.engine.container(&d.name).await;
    let n = step
        .changes
        .iter()
        .position(|c| c.resource == Resource::Container && c.name == d.name);
    match &current {
        Ok(Some(c)) => {
            let shown = t
                .engine
                .container_image_ref(&d.name)
                .await
                .ok()
                .flatten()
                .map_or_else(String::new, |(r, _)| format!("{r}, "));
            fx.fingerprints.insert(
                format!("target.container.{}", d.name),
                format!("id={} image={}", short(&c.id), c.image),
            );
            if let Some(n) = n {
                sf.now[n] = Some(format!(
                    "`{}` {} ({shown}image {}, container {}): it is replaced, and kept for rollback",
                    d.name,
                    if c.running {
                        "runs"
                    } else {
                        "exists, stopped,"
                    },
                    short(&c.image),
                    short(&c.id)
                ));
            }
        }
        Ok(None) => {
            fx.fingerprints
                .insert(format!("target.container.{}", d.name), "absent".into());
            if let Some(n) = n {
                sf.now[n] = Some(format!("no `{}`: this creates it (+)", d.name));
            }
        }
        Err(e) => fx.problem(
            Some(id),
            format!("cannot inspect container {}: {e}", d.name),
            "check the engine",
        ),
    }
    if let Some(net) = &d.network {
        network(t, step, net, fx, sf).await;
    }
    for p in &d.ports {
        let addr = p
            .address
            .map_or_else(|| "0.0.0.0".to_string(), |a| a.to_string());
        let key = format!("target.port.{addr}:{}", p.host);
        let holder = t.ports.iter().find(|h| {
            h.port == p.host
                && h.protocol == proto(p.proto)
                && (h.ip.is_none()
                    || p.address.is_none()
                    || h.ip.as_deref() == Some(addr.as_str())
                    || h.ip.as_deref().is_some_and(|i| i == "0.0.0.0" || i == "::"))
        });
        match holder {
            Some(h) if h.container == d.name => {
                sf.found.push(format!(
                    "port {addr}:{} held by `{}` (the app's current container; freed at the cut-over)",
                    p.host, h.container
                ));
                fx.fingerprints
                    .insert(key, format!("held by {}", h.container));
            }
            Some(h) => {
                fx.fingerprints
                    .insert(key, format!("held by {}", h.container));
                fx.problem(
                    Some(id),
                    format!(
                        "host port {addr}:{} is held by container `{}`",
                        p.host, h.container
                    ),
                    "choose another host port in `ports`, or stop that container",
                );
            }
            None => {
                let local = matches!(endpoint, Some(DockerEndpoint::Unix(_)));
                let free = !local || port_free(&addr, p.host);
                if free {
                    fx.fingerprints.insert(key, "free".into());
                    sf.found.push(format!("port {addr}:{} free", p.host));
                } else {
                    fx.fingerprints.insert(key, "held by a process".into());
                    fx.problem(
                        Some(id),
                        format!(
                            "host port {addr}:{} is held by a process that is not a container",
                            p.host
                        ),
                        "find it with `ss -ltnp`, stop it or choose another port",
                    );
                }
            }
        }
    }
}

fn proto(p: crate::playbook::units::Proto) -> &'static str {
    match p {
        crate::playbook::units::Proto::Tcp => "tcp",
        crate::playbook::units::Proto::Udp => "udp",
    }
}

/// Whether a TCP port can be bound on this machine (the engine is local). The socket is
/// closed at once; nothing listens.
fn port_free(addr: &str, port: u16) -> bool {
    let ip: std::net::IpAddr = addr.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    std::net::TcpListener::bind((ip, port)).is_ok()
}

/// Free bytes of the file system holding `path` (or its nearest existing parent).
pub(super) fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return None;
        }
    }
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(&p)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kb: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Free space on this machine's state directory and, for a local engine, its storage,
/// against what the run writes.
pub(super) fn disk(
    pool: &super::Pool,
    state: &std::path::Path,
    target: Option<&Target>,
    endpoint: Option<&DockerEndpoint>,
    fx: &mut Findings,
) {
    let check = |what: &str, path: &std::path::Path, need: u64, fx: &mut Findings| {
        let free = pool.free_bytes(path);
        fx.disk.push(crate::plan::DiskUse {
            what: what.to_owned(),
            path: path.display().to_string(),
            free,
            need,
        });
        let Some(free) = free else {
            fx.target
                .push(format!("{what} {}: free space unknown", path.display()));
            return;
        };
        fx.target.push(format!(
            "{what} {}: {} free, about {} to be written",
            path.display(),
            human_bytes(free),
            human_bytes(need)
        ));
        if free < need.saturating_add(need / 10) {
            fx.problem(
                None,
                format!(
                    "{what} {} has {} free; the run writes about {}",
                    path.display(),
                    human_bytes(free),
                    human_bytes(need)
                ),
                "free space there (old runs' artifacts can go once their apps are settled)",
            );
        }
    };
    let need = fx.local_bytes;
    check("state directory", state, need, fx);
    if let (Some(t), Some(DockerEndpoint::Unix(_))) = (target, endpoint) {
        if let Some(root) = &t.root_dir {
            let need = fx.target_bytes;
            check("engine storage", std::path::Path::new(root), need, fx);
        }
    } else if target.is_some() {
        fx.target
            .push("engine storage: free space not visible through a remote engine's API".into());
    }
}
