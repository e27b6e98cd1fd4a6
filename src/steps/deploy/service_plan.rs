//! The plan's words for a deploy as a Swarm service: its changes (networks, the front
//! proxy, each secret, the service), the hardening as a service gets it, and the names of
//! its secrets.

use std::time::Duration;

use super::Described;
use crate::plan::{Change, Op, Place, PlanContext, Resource};
use crate::playbook::{Deploy, HealthCheck, ImageSource, RestartPolicy, Service};
use crate::steps::common::hardening;

/// Where a service's secrets are mounted.
pub(super) const SECRETS_DIR: &str = "/run/secrets";

/// The env keys of `d` whose values hold a secret.
pub(super) fn secret_keys(d: &Deploy) -> Vec<&str> {
    d.env
        .iter()
        .filter(|(_, t)| t.secrets().next().is_some())
        .map(|(k, _)| k.as_str())
        .collect()
}

/// The Swarm secret of env key `key` in run `run` (names at most 64 characters). A name
/// too long is cut and ends with a digest of the whole, so that two keys of a long
/// service's name never get the same secret.
pub(crate) fn secret_name(service: &str, key: &str, run: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let base = format!("{service}-{}", key.to_ascii_lowercase().replace('_', "-"));
    let tail: String = run
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let tail = &tail[tail.len().saturating_sub(16)..];
    let room = 63usize.saturating_sub(tail.len());
    if base.len() <= room {
        return format!("{base}-{tail}");
    }
    let digest = crate::digest::hex(&Sha256::digest(base.as_bytes()));
    let mut cut = room.saturating_sub(9);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{}-{tail}", &base[..cut], &digest[..8])
}

/// The key of file `i` of `deploy.files` among the service's secrets: with a `.`, which no
/// env key's name has, so the two never share a secret's name.
pub(super) fn file_key(i: usize) -> String {
    format!("file.{i:02}")
}

/// A secret's name as the plan shows it, before a run binds it.
pub(super) fn planned_secret(service: &str, key: &str) -> String {
    format!(
        "{service}-{}-<run-id>",
        key.to_ascii_lowercase().replace('_', "-")
    )
}

/// The plan's changes of a deploy as a service.
pub(super) fn describe(d: &Deploy, s: &Service, ctx: &PlanContext) -> Described {
    let image = match &d.image {
        ImageSource::Build(step) => format!("{} (built by step `{step}`)", ctx.build_tag(step)),
        ImageSource::Reference(r) => r.clone(),
    };
    let mut changes = Vec::new();
    let overlay = |name: &str, what: &str| Change {
        now: None,
        part: None,
        op: Op::Create,
        resource: Resource::Network,
        place: Place::Target,
        name: name.to_string(),
        details: vec![format!("an attachable overlay network{what}")],
        condition: Some("if missing".into()),
        undo: "remove it (only if this run created it, and nothing else uses it)".into(),
    };
    if let Some(n) = &d.network {
        changes.push(overlay(n, ""));
    }
    for v in &d.volumes {
        changes.push(crate::steps::common::volume_if_missing(&v.volume));
    }
    let f = &ctx.front;
    if let Some(r) = &d.route {
        changes.push(Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Container,
            place: Place::Target,
            name: f.name.clone(),
            details: vec![
                format!(
                    "the engine's front proxy: nginx from {}, HTTP on {}:{}, HTTPS on {}:{}",
                    f.image, f.http.0, f.http.1, f.https.0, f.https.1
                ),
                format!(
                    "shared by every routed app of this engine; this app's route: {}",
                    r.host
                ),
            ],
            condition: Some("if missing".into()),
            undo: "removed (with its network and volume) unless it routes another app by then"
                .into(),
        });
        changes.push(overlay(
            &f.swarm_network(),
            &format!(
                "; the front proxy `{}` joins it and reaches services on it by name",
                f.name
            ),
        ));
    }
    for key in secret_keys(d) {
        changes.push(Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Secret,
            place: Place::Target,
            name: planned_secret(&d.name, key),
            details: vec![format!(
                "env {key}={}: mounted at {SECRETS_DIR}/{key}; the app gets {key}_FILE={SECRETS_DIR}/{key}, never the value in its environment",
                d.env.get(key).map(ToString::to_string).unwrap_or_default()
            )],
            condition: None,
            undo: "remove it".into(),
        });
    }
    for (i, f) in d.files.iter().enumerate() {
        changes.push(Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Secret,
            place: Place::Target,
            name: planned_secret(&d.name, &file_key(i)),
            details: vec![format!(
                "{}: a Swarm secret (at most 500 KiB) mounted read-only at {} in every task, never in an image layer",
                super::files::words(f),
                f.path
            )],
            condition: None,
            undo: "remove it".into(),
        });
    }
    let mut details = vec![format!(
        "create or update service `{}`: image {image}, start-first, {} replica{}",
        d.name,
        s.replicas,
        if s.replicas == 1 { "" } else { "s" }
    )];
    if !s.placement.is_empty() {
        details.push(format!("placement: {}", s.placement.join(", ")));
    }
    details.push(
        "endpoint mode dnsrr: no virtual IP, no published port (the routing mesh is not used)"
            .into(),
    );
    details.extend(
        d.env
            .iter()
            .filter(|(_, t)| t.secrets().next().is_none())
            .map(|(k, v)| format!("env {k}={v}")),
    );
    details.extend(d.volumes.iter().map(|v| {
        format!(
            "volume {}:{}{} (on each node a task runs on)",
            v.volume,
            v.path,
            if v.read_only { " (read-only)" } else { "" }
        )
    }));
    details.extend(service_hardening(&d.security));
    details.push(format!(
        "health: {} (the task's HEALTHCHECK, every {}; unhealthy after {})",
        health_words(d),
        crate::playbook::units::Span(d.health.interval.0.max(Duration::from_millis(500))),
        d.health.timeout
    ));
    details.push(format!(
        "update: one task at a time, start-first (the new task healthy before an old one stops), each watched for {}; a failure: the engine rolls the update back (failure_action rollback)",
        s.monitor
    ));
    if let Some(r) = &d.route {
        details.push(format!(
            "route: {}{} to port {} of the service's tasks by name (the engine's DNS), through the front proxy `{}`",
            r.host,
            if r.tls.is_some() { " (HTTP and HTTPS)" } else { " (HTTP)" },
            r.port,
            f.name
        ));
    }
    changes.push(Change {
        now: None,
        part: None,
        op: Op::Replace,
        resource: Resource::Service,
        place: Place::Target,
        name: d.name.clone(),
        details,
        condition: None,
        undo: "update the service back to its previous spec (journaled), or remove it if this run created it".into(),
    });
    Described {
        reads: Vec::new(),
        changes,
    }
}

/// The hardening of a service's tasks, spelled out for plans: a container's, with the
/// swarm's restart and the engine's support of no-new-privileges said as they are.
pub(crate) fn service_hardening(s: &crate::playbook::Security) -> Vec<String> {
    hardening(s)
        .into_iter()
        .map(|l| {
            if l == "no-new-privileges" {
                "no-new-privileges (asked; engines before API 1.44 ignore it for services)".into()
            } else if l.starts_with("restart ") {
                match s.restart {
                    RestartPolicy::No => "restart: none".into(),
                    RestartPolicy::OnFailure => "restart: on-failure (by the swarm)".into(),
                    RestartPolicy::Always | RestartPolicy::UnlessStopped => {
                        "restart: any (the swarm starts a failed task again)".into()
                    }
                }
            } else {
                l
            }
        })
        .collect()
}

fn health_words(d: &Deploy) -> String {
    match &d.health.check {
        HealthCheck::Http {
            url, expect_status, ..
        } => format!(
            "GET {url} answers {expect_status}, from inside the task (curl, wget or bash's /dev/tcp, whichever the image has)"
        ),
        HealthCheck::Tcp(a) => format!("{a} accepts TCP, from inside the task"),
        HealthCheck::Cmd(c) => format!("`{}` exits 0", c.join(" ")),
        HealthCheck::Running => "none given; the task must keep running".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::secret_name;

    #[test]
    fn long_names_keep_their_secrets_apart_within_64_characters() {
        let run = "20261206T002546Z-171a";
        let service = "bt-wordpress-14515-18ee827651a0a435-db";
        let root = secret_name(service, "MARIADB_ROOT_PASSWORD", run);
        let user = secret_name(service, "MARIADB_PASSWORD", run);
        assert_ne!(root, user);
        assert!(root.len() <= 64 && user.len() <= 64, "{root} {user}");
        assert!(root.starts_with("bt-wordpress-14515-") && root.ends_with("1206t002546z171a"));
        // A short one is as it always was.
        assert_eq!(
            secret_name("izin", "API_KEY", run),
            "izin-api-key-1206t002546z171a"
        );
    }
}
