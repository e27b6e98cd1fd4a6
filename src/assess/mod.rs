//! Before and after: the same requests sent to the vendor's site and to the migrated one,
//! compared by status, redirect target, body (size and hash after normalisation) and
//! latency (median, p95, max after a warm-up), with a bounded unified diff of the first
//! body that differs.
//!
//! Owns: [`assess`], which runs an [`Assess`] section, and [`Assessment`], its result
//! (what `boyong assess` prints, `--json` and the app's `assessment.json` hold).
//! Invariants: each request goes to the vendor, then the same request with the same
//! headers to the target (interleaved, so both see the same moment); at most `rate`
//! requests per second go to the vendor; nothing is sent after the time budget is spent
//! (the assessment then fails, saying so); bodies are read within `max_body`; header
//! values and request bodies are never in an [`Assessment`] (they may hold cookies or
//! tokens). The library prints nothing.

pub mod compare;
mod crawl;
pub mod http;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::digest::sha256_hex;
use crate::playbook::{Assess, AssessRequest, HttpUrl};
use crate::secret::SecretStore;
use http::{Answer, Request};

/// What one side answered to one request, over its measured repeats.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Side {
    /// Status of the first measured answer.
    pub status: u16,
    /// Its `Location`, normalised.
    pub location: Option<String>,
    /// Its body's size in bytes.
    pub size: u64,
    /// SHA-256 of its normalised body (first 16 hex digits).
    pub hash: String,
    /// Whether later answers differed from the first (status, redirect or content).
    pub unstable: bool,
    /// Latency median, p95 and max in milliseconds.
    pub median_ms: f64,
    /// p95 latency, ms.
    pub p95_ms: f64,
    /// Max latency, ms.
    pub max_ms: f64,
    /// Measured answers.
    pub answers: u32,
    /// Requests that failed (no answer), and the first reason.
    pub errors: u32,
    /// The first failure.
    pub error: Option<String>,
}

/// One request's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PathResult {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The vendor's side.
    pub vendor: Option<Side>,
    /// The target's side.
    pub target: Option<Side>,
    /// Why this request fails the assessment (empty: it passes).
    pub failures: Vec<String>,
    /// A unified diff of the normalised bodies, when they differ (bounded).
    pub diff: Option<String>,
}

/// The result of an assessment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Assessment {
    /// The vendor's site.
    pub vendor_url: String,
    /// The migrated site.
    pub target_url: String,
    /// When it started, seconds since 1970.
    pub started: u64,
    /// How long it took, seconds.
    pub seconds: f64,
    /// Measured requests per path and side.
    pub repeat: u32,
    /// Paths assessed at once.
    pub concurrency: u32,
    /// Requests sent, both sides, warm-up included.
    pub requests_sent: u64,
    /// Whether the time budget ran out before every request was sent.
    pub budget_exhausted: bool,
    /// Each request's result, in the playbook's order.
    pub results: Vec<PathResult>,
    /// Every failure, each naming the request and the figure.
    pub failures: Vec<String>,
    /// No failure.
    pub passed: bool,
}

impl Assessment {
    /// `passed` or `failed (N)`.
    pub fn verdict(&self) -> String {
        if self.passed {
            format!("passed ({} requests)", self.results.len())
        } else {
            format!(
                "failed ({} of {} requests)",
                self.results
                    .iter()
                    .filter(|r| !r.failures.is_empty())
                    .count()
                    + usize::from(self.budget_exhausted && self.results.is_empty()),
                self.results.len()
            )
        }
    }
}

/// Why an assessment could not start.
#[derive(Debug, thiserror::Error)]
pub enum AssessError {
    /// A header's (or a body's) secret is missing.
    #[error("`{0}`: {1}")]
    Secret(String, String),
}

/// Everything a side measured for one request.
#[derive(Default)]
struct Tally {
    answers: Vec<Answer>,
    errors: u32,
    error: Option<String>,
}

/// Shared by the jobs: the vendor's rate limit, the budget, the count of requests sent.
struct Pace {
    next_vendor: Mutex<Instant>,
    gap: Duration,
    deadline: Instant,
    sent: std::sync::atomic::AtomicU64,
}

impl Pace {
    /// Waits for the vendor's next slot under the rate limit.
    async fn wait_vendor(&self) {
        let mut next = self.next_vendor.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep_until((*next).into()).await;
        }
        *next = (*next).max(now) + self.gap;
    }
}

/// Runs the assessment `a`, resolving header secrets from `secrets`.
///
/// # Errors
/// A header's secret is missing; nothing was sent.
pub async fn assess(a: &Assess, secrets: &SecretStore) -> Result<Assessment, AssessError> {
    let resolve = |h: &std::collections::BTreeMap<String, crate::playbook::Template>| {
        h.iter()
            .map(|(k, v)| {
                v.resolve(secrets)
                    .map(|s| (k.clone(), s.expose().to_string()))
                    .map_err(|e| AssessError::Secret(k.clone(), e))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let common = resolve(&a.headers)?;
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t0 = Instant::now();
    let pace = Arc::new(Pace {
        next_vendor: Mutex::new(t0),
        gap: Duration::from_secs(1) / a.rate.max(1),
        deadline: t0 + a.budget.0,
        sent: std::sync::atomic::AtomicU64::new(0),
    });
    // The listed requests, then the pages a crawl of the vendor's site found.
    let mut all: Vec<AssessRequest> = a.requests.clone();
    if a.crawl > 0 {
        let known = a
            .requests
            .iter()
            .filter(|r| r.method == "GET")
            .map(|r| r.path.clone())
            .collect();
        for path in Box::pin(crawl::crawl(a, &known, &common, &pace)).await {
            all.push(AssessRequest {
                method: "GET".into(),
                path,
                headers: std::collections::BTreeMap::new(),
                body: None,
            });
        }
    }
    let mut reqs = Vec::with_capacity(all.len());
    for r in &all {
        let mut headers = common.clone();
        headers.extend(resolve(&r.headers)?);
        let body = match &r.body {
            Some(b) => Some(
                b.resolve(secrets)
                    .map(|s| s.expose().to_string())
                    .map_err(|e| AssessError::Secret("body".into(), e))?,
            ),
            None => None,
        };
        reqs.push(Request {
            method: r.method.clone(),
            path: r.path.clone(),
            headers,
            body,
        });
    }
    let jobs = reqs.iter().enumerate().map(|(i, r)| {
        let pace = Arc::clone(&pace);
        async move { (i, one_path(a, r, &pace).await) }
    });
    let mut done: Vec<(usize, (Tally, Tally, bool))> = futures_util::stream::iter(jobs)
        .buffer_unordered(usize::try_from(a.concurrency.max(1)).unwrap_or(1))
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    let mut budget_exhausted = false;
    let mut results = Vec::with_capacity(done.len());
    let mut diffed = false;
    for ((_, (v, t, cut)), r) in done.into_iter().zip(&all) {
        budget_exhausted |= cut;
        results.push(judge(a, r, &v, &t, &mut diffed));
    }
    let mut failures: Vec<String> = results
        .iter()
        .flat_map(|r| r.failures.iter().cloned())
        .collect();
    if budget_exhausted {
        failures.push(format!(
            "the time budget ({:.0} s) ran out before every request was sent",
            a.budget.0.as_secs_f64()
        ));
    }
    Ok(Assessment {
        vendor_url: a.vendor_url.to_string(),
        target_url: a.target_url.to_string(),
        started,
        seconds: t0.elapsed().as_secs_f64(),
        repeat: a.repeat,
        concurrency: a.concurrency,
        requests_sent: pace.sent.load(std::sync::atomic::Ordering::Relaxed),
        budget_exhausted,
        passed: failures.is_empty(),
        results,
        failures,
    })
}

/// Sends one request's warm-up and repeats, vendor then target each time; `true` when
/// the budget ran out first.
async fn one_path(a: &Assess, r: &Request, pace: &Pace) -> (Tally, Tally, bool) {
    let mut sides = [Tally::default(), Tally::default()];
    for k in 0..a.warmup + a.repeat {
        let measured = k >= a.warmup;
        pace.wait_vendor().await;
        for (url, tally) in [&a.vendor_url, &a.target_url]
            .into_iter()
            .zip(sides.iter_mut())
        {
            let now = Instant::now();
            if now >= pace.deadline {
                let [v, t] = sides;
                return (v, t, true);
            }
            let limit = (pace.deadline - now).min(Duration::from_secs(30));
            pace.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let got = http::send(url, r, a.max_body.0, limit).await;
            if measured {
                match got {
                    Ok(ans) => tally.answers.push(ans),
                    Err(e) => {
                        tally.errors += 1;
                        tally.error.get_or_insert(e);
                    }
                }
            }
        }
    }
    let [v, t] = sides;
    (v, t, false)
}

/// A side's figures: the first measured answer, normalised, and the latencies.
fn side(a: &Assess, url: &HttpUrl, t: &Tally) -> (Option<Side>, Option<String>) {
    let auth = a.normalize_origin.then_some(url.authority.as_str());
    let norm = |ans: &Answer| {
        (
            ans.status,
            ans.location
                .as_ref()
                .map(|l| compare::normalise(l.as_bytes(), auth, &[])),
            compare::normalise(&ans.body, auth, &a.noise),
        )
    };
    let Some(first) = t.answers.first() else {
        return (
            (t.errors > 0).then(|| Side {
                status: 0,
                location: None,
                size: 0,
                hash: String::new(),
                unstable: false,
                median_ms: 0.0,
                p95_ms: 0.0,
                max_ms: 0.0,
                answers: 0,
                errors: t.errors,
                error: t.error.clone(),
            }),
            None,
        );
    };
    let (status, location, body) = norm(first);
    let unstable = t.answers[1..]
        .iter()
        .any(|x| norm(x) != (status, location.clone(), body.clone()));
    let lat: Vec<Duration> = t.answers.iter().map(|x| x.latency).collect();
    let (med, p95, max) = compare::figures(&lat);
    let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
    let hash = sha256_hex(body.as_bytes())[..16].to_string();
    (
        Some(Side {
            status,
            location,
            size: first.size,
            hash,
            unstable,
            median_ms: ms(med),
            p95_ms: ms(p95),
            max_ms: ms(max),
            answers: u32::try_from(t.answers.len()).unwrap_or(u32::MAX),
            errors: t.errors,
            error: t.error.clone(),
        }),
        Some(body),
    )
}

/// One request's verdict: each failure names the request and the figure.
fn judge(a: &Assess, r: &AssessRequest, v: &Tally, t: &Tally, diffed: &mut bool) -> PathResult {
    let name = format!("{} {}", r.method, r.path);
    let (vs, vbody) = side(a, &a.vendor_url, v);
    let (ts, tbody) = side(a, &a.target_url, t);
    let mut failures = Vec::new();
    let mut diff = None;
    for (who, s) in [("vendor", &vs), ("target", &ts)] {
        if let Some(s) = s
            && s.errors > 0
        {
            failures.push(format!(
                "{name}: {} of {} requests to the {who} failed: {}",
                s.errors,
                s.errors + s.answers,
                s.error.as_deref().unwrap_or("no answer")
            ));
        }
    }
    if let (Some(vs), Some(ts)) = (&vs, &ts)
        && vs.answers > 0
        && ts.answers > 0
    {
        if vs.status != ts.status {
            failures.push(format!(
                "{name}: status {} on the target, {} on the vendor",
                ts.status, vs.status
            ));
        }
        if vs.location != ts.location {
            let show = |l: &Option<String>| {
                l.as_deref()
                    .map_or("nowhere".to_string(), |l| format!("`{l}`"))
            };
            failures.push(format!(
                "{name}: redirects to {} on the target, {} on the vendor",
                show(&ts.location),
                show(&vs.location)
            ));
        }
        if a.content_equal && vs.hash != ts.hash {
            let noisy = if vs.unstable {
                " (the vendor's own answers differ between requests: add `normalize.noise`)"
            } else {
                ""
            };
            failures.push(format!(
                "{name}: content differs: {} bytes (sha256 {}) on the target, {} bytes (sha256 {}) on the vendor{noisy}",
                ts.size, ts.hash, vs.size, vs.hash
            ));
            if !*diffed && let (Some(vb), Some(tb)) = (&vbody, &tbody) {
                *diffed = true;
                diff = Some(compare::unified(
                    vb,
                    tb,
                    &format!("vendor {}", r.path),
                    &format!("target {}", r.path),
                ));
            }
        }
        let allowed = vs.p95_ms * a.latency_p95_ratio + a.latency_slack.0.as_secs_f64() * 1000.0;
        if ts.p95_ms > allowed {
            let ratio = if vs.p95_ms > 0.0 {
                format!("{:.1}x", ts.p95_ms / vs.p95_ms)
            } else {
                "∞".into()
            };
            failures.push(format!(
                "{name}: p95 latency {:.1} ms on the target, {:.1} ms on the vendor ({ratio}; allowed {}x + {} ms)",
                ts.p95_ms,
                vs.p95_ms,
                a.latency_p95_ratio,
                a.latency_slack.0.as_millis()
            ));
        }
    }
    PathResult {
        method: r.method.clone(),
        path: r.path.clone(),
        vendor: vs,
        target: ts,
        failures,
        diff,
    }
}
