//! A deploy's health gate: one try of a check (also `boyong status --check`'s), and the
//! wait until the new container passes or its time is up. A failed try says why and, for
//! an HTTP check, what came back ([`Answer`]: the status line, headers, the body's first
//! KiB, where a redirect points), kept as evidence when the gate fails (`evidence.rs`).

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::waiting::Waiting;
use crate::docker::Docker;
use crate::engine::StepCx;
use crate::playbook::{Deploy, HealthCheck};

/// The longest one try may take (a server that accepts and never answers).
const TRY_LIMIT: Duration = Duration::from_secs(10);
/// The most of an answer's body kept.
const BODY_MAX: usize = 1024;

/// What an HTTP health check got back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct Answer {
    /// The URL asked.
    pub url: String,
    /// The status line (`HTTP/1.1 404 Not Found`).
    pub status_line: String,
    /// The status code, if the line has one.
    pub status: Option<u16>,
    /// The header lines, as sent.
    pub headers: Vec<String>,
    /// The body's first KiB (invalid UTF-8 replaced).
    pub body: String,
    /// Whether the body was longer.
    pub body_truncated: bool,
    /// For a redirect, where it points.
    pub location: Option<String>,
}

/// Why a try failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// Why, in one line.
    pub reason: String,
    /// The app is not listening yet (refused, reset, closed before answering): usual for
    /// the first tries of any deploy.
    pub transient: bool,
    /// What an HTTP check got back, if anything.
    pub answer: Option<Answer>,
}

impl Failure {
    fn plain(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            transient: false,
            answer: None,
        }
    }

    /// An I/O error while connecting or reading: not listening yet, or a real failure.
    fn io(what: &str, e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let transient = matches!(
            e.kind(),
            K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof
        );
        let reason = if transient {
            format!("no answer yet ({})", e.to_string().to_lowercase())
        } else {
            format!("{what}: {e}")
        };
        Self {
            reason,
            transient,
            answer: None,
        }
    }
}

/// One try of the health check, within [`TRY_LIMIT`].
async fn healthy_once(
    engine: &Docker,
    container: &str,
    check: &HealthCheck,
) -> Result<(), Failure> {
    match tokio::time::timeout(TRY_LIMIT, try_check(engine, container, check)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::plain(format!(
            "no answer within {} s",
            TRY_LIMIT.as_secs()
        ))),
    }
}

async fn try_check(engine: &Docker, container: &str, check: &HealthCheck) -> Result<(), Failure> {
    match check {
        HealthCheck::Http {
            url,
            expect_status,
            host,
        } => {
            let answer = get(engine, url, host.as_deref()).await?;
            match answer.status {
                Some(c) if c == *expect_status => Ok(()),
                Some(c) => Err(Failure {
                    reason: format!(
                        "GET {url} answered {c}{}, expected {expect_status}",
                        match &answer.location {
                            Some(to) => format!(" (a redirect to {to})"),
                            None if (300..400).contains(&c) =>
                                " (a redirect with no Location)".into(),
                            None => String::new(),
                        }
                    ),
                    transient: false,
                    answer: Some(answer),
                }),
                None if answer.status_line.is_empty() => Err(Failure {
                    reason: "no answer yet (the connection closed before an answer)".into(),
                    transient: true,
                    answer: None,
                }),
                None => Err(Failure {
                    reason: format!("GET {url}: not an HTTP answer"),
                    transient: false,
                    answer: Some(answer),
                }),
            }
        }
        HealthCheck::Tcp(addr) => engine.dial(addr).await.map(|_| ()).map_err(|e| {
            let mut f = Failure::io(addr, &e);
            f.reason = format!("{addr}: {}", f.reason);
            f
        }),
        HealthCheck::Cmd(cmd) => match engine.exec_code(container, cmd).await {
            Ok(0) => Ok(()),
            Ok(c) => Err(Failure::plain(format!("`{}` exited {c}", cmd.join(" ")))),
            Err(e) => Err(Failure::plain(e.to_string())),
        },
        HealthCheck::Running => Ok(()),
    }
}

/// `GET url` over HTTP/1.0, connected from the engine's host ([`Docker::dial`]: through
/// the SSH connection of an `ssh://` engine), `host` its `Host` header when given (else
/// the URL's): the answer's head and its body's first KiB.
async fn get(engine: &Docker, url: &str, host: Option<&str>) -> Result<Answer, Failure> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Failure::plain("only http:// URLs are checked"))?;
    let (hostport, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = engine
        .dial(hostport)
        .await
        .map_err(|e| Failure::io(&format!("GET {url}"), &e))?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: boyong\r\n\r\n",
        host.unwrap_or(hostport)
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| Failure::io(&format!("GET {url}"), &e))?;
    let bytes = read_answer(&mut s)
        .await
        .map_err(|e| Failure::io(&format!("GET {url}"), &e))?;
    Ok(parse_answer(url, &bytes))
}

/// An answer's head (at most 8 KiB, up to the blank line that ends it) and then at most
/// [`BODY_MAX`] + 1 bytes of its body, or less if the server ends it first.
async fn read_answer(s: &mut crate::docker::Conn) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::with_capacity(2048);
    let mut buf = [0u8; 2048];
    let head_end = |b: &[u8]| b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    loop {
        let enough = match head_end(&got) {
            Some(end) => got.len() > end + BODY_MAX,
            None => got.len() >= 8 * 1024,
        };
        if enough {
            break;
        }
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// The answer in `bytes`: status line, headers, body (its first KiB).
fn parse_answer(url: &str, bytes: &[u8]) -> Answer {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match end {
        Some(p) => (&bytes[..p], &bytes[p + 4..]),
        None => (bytes, &bytes[..0]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default().trim_end().to_string();
    let headers: Vec<String> = lines.map(|l| l.trim_end().to_string()).collect();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/"));
    let location = status.filter(|c| (300..400).contains(c)).and_then(|_| {
        headers.iter().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("location")
                .then(|| value.trim().to_string())
        })
    });
    Answer {
        url: url.to_string(),
        status_line,
        status,
        headers,
        body: String::from_utf8_lossy(&body[..body.len().min(BODY_MAX)]).into_owned(),
        body_truncated: body.len() > BODY_MAX,
        location,
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
    // An app deployed as a Swarm service is checked in its running task's container.
    let task = engine.task_container(container).await.ok().flatten();
    let container = task.as_deref().unwrap_or(container);
    healthy_once(engine, container, check)
        .await
        .map_err(|f| f.reason)?;
    Ok(passed(check))
}

/// What a passed health check showed, for the journal (and `boyong report`).
fn passed(check: &HealthCheck) -> String {
    match check {
        HealthCheck::Http {
            url, expect_status, ..
        } => format!("GET {url} answered {expect_status}"),
        HealthCheck::Tcp(addr) => format!("{addr} accepted a TCP connection"),
        HealthCheck::Cmd(cmd) => format!("`{}` exited 0 in the container", cmd.join(" ")),
        HealthCheck::Running => "the container kept running".into(),
    }
}

/// Why the wait ended without health.
#[derive(Debug, Clone)]
pub(super) struct Unhealthy {
    /// Why, in one line.
    pub reason: String,
    /// The last answer of an HTTP check, if one came.
    pub answer: Option<Answer>,
}

/// Waits until the new container is healthy, or says why not by the time limit. Says
/// what the passing check showed, after how long and how many checks. While it waits, a
/// line when the reason changes (`waiting.rs`).
pub(super) async fn wait_healthy(
    engine: &Docker,
    container: &str,
    d: &Deploy,
    cx: &mut StepCx<'_>,
) -> Result<String, Unhealthy> {
    let h = &d.health;
    let t0 = Instant::now();
    let mut last = Failure::plain("no check ran");
    // The last answer that came, kept even when a later try got none.
    let mut answer: Option<Answer> = None;
    if h.check == HealthCheck::Running {
        tokio::time::sleep(h.interval.0).await;
    }
    let mut waiting = Waiting::default();
    loop {
        let unhealthy = |reason: String, answer: Option<Answer>| Unhealthy { reason, answer };
        match engine.container(container).await {
            Ok(Some(c)) if c.running => {}
            Ok(_) => {
                return Err(unhealthy(
                    format!("the new container stopped ({})", last.reason),
                    answer,
                ));
            }
            Err(e) => return Err(unhealthy(e.to_string(), answer)),
        }
        match healthy_once(engine, container, &h.check).await {
            Ok(()) => {
                return Ok(format!(
                    "healthy: {} after {:.1} s ({} check(s))",
                    passed(&h.check),
                    t0.elapsed().as_secs_f64(),
                    waiting.checks() + 1
                ));
            }
            Err(f) => last = f,
        }
        if let Some(a) = &last.answer {
            answer = Some(a.clone());
        }
        if let Some(line) = waiting.failed(&last.reason, last.transient) {
            cx.output(&line);
        }
        if t0.elapsed() >= h.timeout.0 {
            return Err(unhealthy(
                format!(
                    "not healthy within {} ({} check(s)): {}",
                    h.timeout,
                    waiting.checks(),
                    last.reason
                ),
                answer,
            ));
        }
        tokio::time::sleep(h.interval.0.min(Duration::from_secs(5))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn an_answer_keeps_its_status_headers_body_and_where_a_redirect_points() {
        let a = parse_answer(
            "http://x/",
            b"HTTP/1.1 301 Moved Permanently\r\nServer: x\r\nLOCATION: http://vendor.example/wp/\r\n\r\n<html>moved</html>",
        );
        assert_eq!(a.status, Some(301));
        assert_eq!(a.status_line, "HTTP/1.1 301 Moved Permanently");
        assert_eq!(
            a.headers,
            ["Server: x", "LOCATION: http://vendor.example/wp/"]
        );
        assert_eq!(a.location.as_deref(), Some("http://vendor.example/wp/"));
        assert_eq!(a.body, "<html>moved</html>");
        assert!(!a.body_truncated);
        let big = [b"HTTP/1.0 500 Oops\r\n\r\n".as_slice(), &[b'x'; 3000]].concat();
        let a = parse_answer("http://x/", &big);
        assert_eq!((a.status, a.location.clone()), (Some(500), None));
        assert_eq!(a.body.len(), 1024);
        assert!(a.body_truncated);
        assert_eq!(
            parse_answer("http://x/", b"SSH-2.0-OpenSSH\r\n").status,
            None
        );
    }
}
