//! A deploy's health gate: one try of a check (also `boyong status --check`'s), and the
//! wait until the new container passes or its time is up.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::docker::Docker;
use crate::engine::StepCx;
use crate::playbook::{Deploy, HealthCheck};

/// One try of the health check.
async fn healthy_once(engine: &Docker, container: &str, check: &HealthCheck) -> Result<(), String> {
    match check {
        HealthCheck::Http { url, expect_status } => {
            let rest = url
                .strip_prefix("http://")
                .ok_or("only http:// URLs are checked")?;
            let (hostport, path) = rest
                .split_once('/')
                .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
            let mut s = tokio::net::TcpStream::connect(hostport)
                .await
                .map_err(|e| e.to_string())?;
            let req =
                format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: boyong\r\n\r\n");
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let head = read_head(&mut s).await.map_err(|e| e.to_string())?;
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok());
            match status {
                Some(c) if c == *expect_status => Ok(()),
                Some(c) => Err(format!(
                    "GET {url} answered {c}{}, expected {expect_status}",
                    redirect_of(c, &head)
                )),
                None => Err(format!("GET {url}: not an HTTP answer")),
            }
        }
        HealthCheck::Tcp(addr) => tokio::net::TcpStream::connect(addr.as_str())
            .await
            .map(|_| ())
            .map_err(|e| format!("{addr}: {e}")),
        HealthCheck::Cmd(cmd) => match engine.exec_code(container, cmd).await {
            Ok(0) => Ok(()),
            Ok(c) => Err(format!("`{}` exited {c}", cmd.join(" "))),
            Err(e) => Err(e.to_string()),
        },
        HealthCheck::Running => Ok(()),
    }
}

/// An answer's status line and headers: read until the blank line that ends them, at
/// most 8 KiB.
async fn read_head(s: &mut tokio::net::TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < 8 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// For a redirect, where it points (` (a redirect to URL)`): an app that redirects its
/// health URL usually knows itself by another address (WordPress's `siteurl`).
fn redirect_of(status: u16, head: &str) -> String {
    if !(300..400).contains(&status) {
        return String::new();
    }
    let location = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("location")
            .then(|| value.trim().to_string())
    });
    match location {
        Some(to) => format!(" (a redirect to {to})"),
        None => " (a redirect with no Location)".into(),
    }
}

/// One try of `check` against `container` now, for `boyong status --check`: what it
/// showed, or why it failed.
///
/// # Errors
/// The check failed: the reason.
pub async fn check_health(
    engine: &Docker,
    container: &str,
    check: &HealthCheck,
) -> Result<String, String> {
    healthy_once(engine, container, check).await?;
    Ok(passed(check))
}

/// What a passed health check showed, for the journal (and `boyong report`).
fn passed(check: &HealthCheck) -> String {
    match check {
        HealthCheck::Http { url, expect_status } => format!("GET {url} answered {expect_status}"),
        HealthCheck::Tcp(addr) => format!("{addr} accepted a TCP connection"),
        HealthCheck::Cmd(cmd) => format!("`{}` exited 0 in the container", cmd.join(" ")),
        HealthCheck::Running => "the container kept running".into(),
    }
}

/// Waits until the new container is healthy, or says why not by the time limit. Says
/// what the passing check showed, after how long and how many checks.
pub(super) async fn wait_healthy(
    engine: &Docker,
    container: &str,
    d: &Deploy,
    cx: &mut StepCx<'_>,
) -> Result<String, String> {
    let h = &d.health;
    let t0 = Instant::now();
    let mut last = String::from("no check ran");
    if h.check == HealthCheck::Running {
        tokio::time::sleep(h.interval.0).await;
    }
    let mut checks = 0u32;
    // What the operator was last told: a check that fails the same way again is not
    // repeated (a 60 s wait is one line, not sixty).
    let mut shown = String::new();
    loop {
        match engine.container(container).await {
            Ok(Some(c)) if c.running => {}
            Ok(_) => return Err(format!("the new container stopped ({last})")),
            Err(e) => return Err(e.to_string()),
        }
        checks += 1;
        match healthy_once(engine, container, &h.check).await {
            Ok(()) => {
                return Ok(format!(
                    "healthy: {} after {:.1} s ({checks} check(s))",
                    passed(&h.check),
                    t0.elapsed().as_secs_f64()
                ));
            }
            Err(e) => last = e,
        }
        if t0.elapsed() >= h.timeout.0 {
            return Err(format!(
                "not healthy within {} ({checks} check(s)): {last}",
                h.timeout
            ));
        }
        if last != shown {
            cx.output(&format!("waiting for health: {last}"));
            shown.clone_from(&last);
        }
        tokio::time::sleep(h.interval.0.min(Duration::from_secs(5))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::redirect_of;

    #[test]
    fn a_redirect_says_where_it_points() {
        let head = "HTTP/1.1 301 Moved Permanently\r\nServer: x\r\nLOCATION: http://vendor.example/wp/\r\n\r\n";
        assert_eq!(
            redirect_of(301, head),
            " (a redirect to http://vendor.example/wp/)"
        );
        assert_eq!(
            redirect_of(302, "HTTP/1.1 302 Found\r\n\r\n"),
            " (a redirect with no Location)"
        );
        assert_eq!(redirect_of(500, head), "");
    }
}
