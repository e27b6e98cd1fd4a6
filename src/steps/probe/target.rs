//! What the kinds' probes on the target engine share (inspections and lists only), and
//! this machine's disk (`df`): images, networks, ports, free space.

use super::{Findings, StepFound, Target, human_bytes, short};
use crate::plan::{PlannedStep, Resource};
use crate::playbook::DockerEndpoint;

/// Whether `image` is on the engine (no registry is ever used).
pub(crate) async fn image_present(
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

/// `target.swarm`: the engine must be a manager of an active swarm, or every service and
/// database step would fail at its first change.
pub(crate) async fn swarm_manager(t: &Target, fx: &mut Findings) {
    match t.engine.swarm_node().await {
        Ok(Some(n)) if n.manager => {
            fx.target.push(format!("a swarm manager (node {})", short(&n.id)));
        }
        Ok(Some(_)) => fx.problem(
            None,
            "`target.swarm: true`, but the engine is a swarm worker, not a manager",
            "point `target.docker` at a manager of the swarm (`docker node ls` on one lists them)",
        ),
        Ok(None) => fx.problem(
            None,
            "`target.swarm: true`, but the engine is not in a swarm",
            "make it one (`docker swarm init` on the server) or remove `swarm: true`; nothing was changed",
        ),
        Err(e) => fx.problem(
            None,
            format!("cannot ask the engine about its swarm: {e}"),
            "check the engine",
        ),
    }
}

pub(crate) async fn network(
    t: &Target,
    step: &PlannedStep,
    net: &str,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
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

pub(crate) fn proto(p: crate::playbook::units::Proto) -> &'static str {
    match p {
        crate::playbook::units::Proto::Tcp => "tcp",
        crate::playbook::units::Proto::Udp => "udp",
    }
}

/// The note on an engine that stores files with `driver` (`fuse-overlayfs`, `vfs`): an app
/// that opens many files a request runs slower there than on the vendor, which the
/// assessment's latency figures then show. Measured on such an engine (README, "Real
/// apps"): WordPress's PHP took 1.67x the vendor's CPU a page in a container on
/// fuse-overlayfs, 1.08x on the kernel's overlayfs.
pub(super) fn slow_storage(driver: &str) -> String {
    let why = if driver == "vfs" {
        "a full copy of every layer, for each container"
    } else {
        "each file opened or looked up in a container is a round trip to a user-space daemon"
    };
    format!(
        "note: the engine stores files with {driver} ({why}): an app that reads many files a request (a CMS) answers slower than on the vendor; `overlay2`, the engine's usual driver, does not cost this"
    )
}

/// Whether a TCP port can be bound on this machine (the engine is local). The socket is
/// closed at once; nothing listens.
pub(crate) fn port_free(addr: &str, port: u16) -> bool {
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
