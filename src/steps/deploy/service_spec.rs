//! A deploy's Swarm service spec, in the API's own JSON: the task (hardened, its health
//! check a HEALTHCHECK run inside it, secrets as files), replicas and placement, the
//! update and rollback configuration (start-first, `failure_action: rollback`), `dnsrr`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::playbook::{Deploy, HealthCheck, RestartPolicy, Service};

/// Nanoseconds of a duration, as the API takes them.
fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The port of `url`'s authority (`None`: none written).
fn url_port(authority: &str) -> Option<u16> {
    authority.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// A GET of `path` at `127.0.0.1:PORT` inside the task with `host` as its `Host` header,
/// healthy when it answers `status`, with whatever the image has: `curl`, else `wget`
/// (busybox's too), else bash's `/dev/tcp` (Debian's minimal images, gov/php among them,
/// have bash and neither of the other two).
fn http_check(port: u16, path: &str, status: u16, host: &str) -> String {
    use crate::shell::quote;
    let url = quote(&format!("http://127.0.0.1:{port}{path}"));
    let header = quote(&format!("Host: {host}"));
    let bash = quote(
        "exec 3<>\"/dev/tcp/127.0.0.1/$1\" && \
         printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n' \"$2\" \"$4\" >&3 && \
         head -n 1 <&3 | grep -q \"^HTTP/[0-9.]* $3[^0-9]\"",
    );
    let (path, host) = (quote(path), quote(host));
    format!(
        "[ \"$(curl -s -H {header} -o /dev/null -w '%{{http_code}}' {url} 2>/dev/null)\" = {status} ] || \
         wget -S --header {header} -O /dev/null {url} 2>&1 | grep -q \"HTTP/[0-9.]* {status}[^0-9]\" || \
         bash -c {bash} _ {port} {path} {status} {host} 2>/dev/null"
    )
}

/// A TCP connection to `127.0.0.1:PORT` inside the task: `nc -z`, else bash's `/dev/tcp`,
/// else an `nc` without `-z` (busybox's) given nothing to send.
fn tcp_check(port: u16) -> String {
    format!(
        "nc -z 127.0.0.1 {port} 2>/dev/null || \
         bash -c 'exec 3<>\"/dev/tcp/127.0.0.1/$1\"' _ {port} 2>/dev/null || \
         nc -w 2 127.0.0.1 {port} </dev/null >/dev/null 2>&1"
    )
}

/// The playbook's health check as a Docker HEALTHCHECK run inside each task.
pub(super) fn healthcheck(d: &Deploy) -> Value {
    let h = &d.health;
    let interval = h.interval.0.max(Duration::from_millis(500));
    let retries = (h.timeout.0.as_millis() / interval.as_millis().max(1)).clamp(1, 100);
    let default_port = d.route.as_ref().map_or(80, |r| r.port);
    let test: Vec<String> = match &h.check {
        HealthCheck::Http {
            url, expect_status, ..
        } => {
            let rest = url.strip_prefix("http://").unwrap_or(url);
            let (auth, path) = rest
                .find('/')
                .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
            let port = url_port(auth).unwrap_or(default_port);
            // Routed: asked by the route's name, as the front proxy asks it.
            let host = d.route.as_ref().map_or("127.0.0.1", |r| r.host.as_str());
            vec![
                "CMD-SHELL".into(),
                http_check(port, path, *expect_status, host),
            ]
        }
        HealthCheck::Tcp(a) => {
            let port = url_port(a).unwrap_or(default_port);
            vec!["CMD-SHELL".into(), tcp_check(port)]
        }
        HealthCheck::Cmd(c) => std::iter::once("CMD".to_string())
            .chain(c.iter().cloned())
            .collect(),
        HealthCheck::Running => return Value::Null,
    };
    json!({
        "Test": test,
        "Interval": ns(interval),
        "Timeout": ns(interval.max(Duration::from_secs(2))),
        "Retries": retries,
        "StartPeriod": 0,
    })
}

/// The service's spec, in the API's JSON.
pub(super) fn spec(
    d: &Deploy,
    s: &Service,
    image: &str,
    env: &[String],
    secrets: &[super::service::Mounted],
    networks: &[String],
    labels: &HashMap<String, String>,
) -> Value {
    let sec = &d.security;
    let monitor = ns(s.monitor.0);
    let mut mounts: Vec<Value> = d
        .volumes
        .iter()
        .map(|v| json!({"Type": "volume", "Source": v.volume, "Target": v.path, "ReadOnly": v.read_only}))
        .collect();
    mounts.extend(
        sec.tmpfs
            .iter()
            .map(|t| json!({"Type": "tmpfs", "Target": t})),
    );
    let mut caps_add = sec.cap_add.clone();
    caps_add.sort();
    let mut container = json!({
        "Image": image,
        "Env": env,
        "Labels": labels,
        "ReadOnly": sec.read_only,
        "Init": sec.init,
        "Mounts": mounts,
        "StopGracePeriod": ns(d.stop_grace.0),
        "CapabilityDrop": ["ALL"],
        "Privileges": {"NoNewPrivileges": sec.no_new_privileges},
        "Secrets": secrets.iter().map(|m| json!({
            "File": {"Name": m.target, "UID": m.uid.to_string(), "GID": m.gid.to_string(), "Mode": m.mode},
            "SecretID": m.id,
            "SecretName": m.name,
        })).collect::<Vec<_>>(),
    });
    if !caps_add.is_empty() {
        container["CapabilityAdd"] = json!(caps_add);
    }
    let hc = healthcheck(d);
    let mut service_labels = labels.clone();
    if !hc.is_null() {
        service_labels.insert(crate::docker::HEALTHCHECK_LABEL.into(), hc.to_string());
        container["HealthCheck"] = hc;
    }
    json!({
        "Name": d.name,
        "Labels": service_labels,
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {"Limits": {
                "MemoryBytes": i64::try_from(sec.memory.0).unwrap_or(i64::MAX),
                "Pids": i64::from(sec.pids),
            }},
            "RestartPolicy": {"Condition": match sec.restart {
                RestartPolicy::No => "none",
                RestartPolicy::OnFailure => "on-failure",
                RestartPolicy::Always | RestartPolicy::UnlessStopped => "any",
            }},
            "Placement": {"Constraints": s.placement},
            "Networks": networks.iter().map(|n| json!({"Target": n})).collect::<Vec<_>>(),
            "LogDriver": {"Name": "json-file", "Options": {
                "max-size": sec.log_max_size.0.to_string(),
                "max-file": sec.log_max_files.to_string(),
            }},
        },
        "Mode": {"Replicated": {"Replicas": s.replicas}},
        "UpdateConfig": {"Parallelism": 1, "Delay": 0, "FailureAction": "rollback",
            "Monitor": monitor, "MaxFailureRatio": 0.0, "Order": "start-first"},
        "RollbackConfig": {"Parallelism": 1, "Delay": 0, "FailureAction": "pause",
            "Monitor": monitor, "MaxFailureRatio": 0.0, "Order": "start-first"},
        "EndpointSpec": {"Mode": "dnsrr"},
    })
}

#[cfg(test)]
mod tests {
    use super::{http_check, tcp_check};
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;
    use std::path::Path;
    use std::process::Command;

    /// A server on a free loopback port answering every request with `status_line`.
    fn server(status_line: &'static str) -> u16 {
        named_server(status_line, None)
    }

    /// As [`server`], but a request whose `Host` is not `host` gets a redirect to it, as
    /// WordPress answers one by another name.
    fn named_server(status_line: &'static str, host: Option<&'static str>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("listener");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                // The whole request head first, as a real server reads it (answering
                // and closing on a part of it would reset the connection).
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let named = host.is_none_or(|h| head.contains(&format!("\r\nhost: {h}\r\n")));
                let line = if named {
                    status_line
                } else {
                    "HTTP/1.1 301 Moved Permanently"
                };
                let _ = write!(c, "{line}\r\nContent-Length: 0\r\n\r\n");
            }
        });
        port
    }

    /// `sh -c script` with only `tools` on its PATH (links to this machine's), as in an
    /// image that has just those.
    fn run_with(tools: &[&str], script: &str) -> bool {
        let dir = tempfile::tempdir().expect("tempdir");
        for t in tools {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(t))
                .find(|p| p.exists());
            let Some(found) = found else { continue };
            std::os::unix::fs::symlink(found, dir.path().join(t)).expect("link");
        }
        Command::new("/bin/sh")
            .args(["-c", script])
            .env_clear()
            .env("PATH", dir.path())
            .status()
            .expect("sh runs")
            .success()
    }

    /// Whether `tool` is on this machine; without it the test is skipped with a message,
    /// or fails under CI (whose machine installs it).
    fn needs(tool: &str) -> bool {
        if Path::new(tool).exists() {
            return true;
        }
        assert!(std::env::var_os("CI").is_none(), "CI: {tool} is missing");
        eprintln!("skipped: {tool} is missing");
        false
    }

    #[test]
    fn the_http_check_works_with_bash_alone_and_checks_the_status() {
        if !needs("/bin/bash") {
            return;
        }
        let ok = server("HTTP/1.1 200 OK");
        let moved = server("HTTP/1.1 302 Found");
        let base = ["bash", "head", "grep"];
        let wp = named_server("HTTP/1.1 200 OK", Some("izin.kota.go.id"));
        assert!(run_with(
            &base,
            &http_check(wp, "/", 200, "izin.kota.go.id")
        ));
        assert!(!run_with(&base, &http_check(wp, "/", 200, "127.0.0.1")));
        assert!(run_with(
            &base,
            &http_check(ok, "/index.php?a=1&b='x'", 200, "izin.kota.go.id")
        ));
        assert!(!run_with(&base, &http_check(moved, "/", 200, "127.0.0.1")));
        assert!(run_with(&base, &http_check(moved, "/", 302, "127.0.0.1")));
        // Nothing listening: unhealthy, not an error of the shell.
        let closed = TcpListener::bind("127.0.0.1:0")
            .expect("listener")
            .local_addr()
            .expect("addr")
            .port();
        assert!(!run_with(&base, &http_check(closed, "/", 200, "127.0.0.1")));
        // No tool at all: unhealthy.
        assert!(!run_with(&[], &http_check(ok, "/", 200, "127.0.0.1")));
    }

    #[test]
    fn the_http_check_uses_curl_where_the_image_has_it() {
        if !needs("/usr/bin/curl") {
            return;
        }
        let ok = server("HTTP/1.1 200 OK");
        let gone = server("HTTP/1.1 404 Not Found");
        assert!(run_with(&["curl"], &http_check(ok, "/", 200, "127.0.0.1")));
        let wp = named_server("HTTP/1.1 200 OK", Some("izin.kota.go.id"));
        assert!(run_with(
            &["curl"],
            &http_check(wp, "/", 200, "izin.kota.go.id")
        ));
        assert!(!run_with(&["curl"], &http_check(wp, "/", 200, "127.0.0.1")));
        assert!(!run_with(
            &["curl"],
            &http_check(gone, "/", 200, "127.0.0.1")
        ));
        assert!(run_with(
            &["curl"],
            &http_check(gone, "/", 404, "127.0.0.1")
        ));
    }

    #[test]
    fn the_tcp_check_works_with_bash_alone() {
        if !needs("/bin/bash") {
            return;
        }
        let open = server("HTTP/1.1 200 OK");
        let closed = TcpListener::bind("127.0.0.1:0")
            .expect("listener")
            .local_addr()
            .expect("addr")
            .port();
        assert!(run_with(&["bash"], &tcp_check(open)));
        assert!(!run_with(&["bash"], &tcp_check(closed)));
    }
}
