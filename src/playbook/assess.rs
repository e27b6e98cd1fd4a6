//! The rules of the top-level `assess:` section: the vendor's and the migrated site's
//! URLs, what is requested, how it is compared, and what fails it.
//!
//! Owns: [`Assess`], the validated section, and its rules, each problem reported at its
//! `Loc`. Invariants: both URLs are `http://host[:port][/base]`; every path starts with
//! `/`; a method other than GET or HEAD needs `allow_writes: true` (the vendor's site is
//! read-only otherwise); every count, rate and budget is bounded; header values may be
//! secrets (`{{ vars.X }}`), and are resolved only when the assessment runs. An `assess`
//! step is the section itself, its `target_url` possibly replaced.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::raw::{RawAssess, RawAssessRequest, RawAssessStep};
use super::template::Template;
use super::units::{Size, Span};
use super::validate::Validator;
use super::yaml::Sp;
use crate::diag::Loc;

/// The validated `assess:` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assess {
    /// The vendor's site.
    pub vendor_url: HttpUrl,
    /// The migrated site.
    pub target_url: HttpUrl,
    /// The requests, in the order written (`paths` first).
    pub requests: Vec<AssessRequest>,
    /// Up to this many more pages found by crawling the vendor's site (0: none).
    pub crawl: u32,
    /// Headers sent with every request (values may hold secrets).
    pub headers: BTreeMap<String, Template>,
    /// Replace each side's origin by `{origin}` before comparing.
    pub normalize_origin: bool,
    /// Noise blanked before comparing: (after, until).
    pub noise: Vec<(String, String)>,
    /// Measured requests per path and side.
    pub repeat: u32,
    /// Unmeasured requests per path and side, first.
    pub warmup: u32,
    /// Paths assessed at once.
    pub concurrency: u32,
    /// Requests per second at most against the vendor.
    pub rate: u32,
    /// Time budget of the whole assessment.
    pub budget: Span,
    /// Bytes of a body kept at most.
    pub max_body: Size,
    /// The target's p95 may be at most this times the vendor's, plus `latency_slack`.
    pub latency_p95_ratio: f64,
    /// Added to the allowed p95.
    pub latency_slack: Span,
    /// Whether normalised bodies must be equal.
    pub content_equal: bool,
}

/// One request of an assessment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssessRequest {
    /// `GET`, `HEAD`, or another method when writes are allowed.
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Headers of this request only.
    pub headers: BTreeMap<String, Template>,
    /// Body sent (may hold secrets: `{{ vars.X }}`).
    pub body: Option<Template>,
}

/// An `http://` URL: where to connect and the base path requests are appended to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpUrl {
    /// `host` or `host:port`, as written (sent as `Host:`).
    pub authority: String,
    /// The base path without a trailing `/` (empty for the root).
    pub base: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/base]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("http://")
            .ok_or("only `http://` URLs are assessed (as the deploy health check)")?;
        let (authority, base) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
        if authority.is_empty()
            || authority
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '@' | '?' | '#'))
        {
            return Err(format!("`{authority}` is not a host[:port]"));
        }
        if let Some((_, port)) = authority.rsplit_once(':')
            && !authority.ends_with(']')
            && port.parse::<u16>().is_err()
        {
            return Err(format!("`{port}` is not a port"));
        }
        if base.contains(['?', '#', ' ']) {
            return Err("the base path may not hold `?`, `#` or spaces".into());
        }
        let base = base.trim_end_matches('/');
        Ok(Self {
            authority: authority.to_string(),
            base: if base.is_empty() {
                String::new()
            } else {
                format!("/{base}")
            },
        })
    }

    /// Where to connect: the authority, with port 80 when none is written.
    pub fn connect_to(&self) -> String {
        let has_port = if self.authority.starts_with('[') {
            self.authority.contains("]:")
        } else {
            self.authority.contains(':')
        };
        if has_port {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        }
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.base)
    }
}

/// Header names whose values would be secrets if shown; they never are.
pub const SECRET_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

impl Validator<'_> {
    pub(super) fn assess(&mut self, r: &Sp<RawAssess>) -> Option<Assess> {
        let r = &r.value;
        let before = self.errors();
        let vendor_url = self.http_url(&r.vendor_url, "assess.vendor_url");
        let target_url = self.http_url(&r.target_url, "assess.target_url");
        let allow_writes = r.allow_writes.as_ref().is_some_and(|w| w.value);
        let mut requests: Vec<AssessRequest> = r
            .paths
            .iter()
            .map(|p| AssessRequest {
                method: "GET".into(),
                path: self.req_path(p, "assess.paths"),
                headers: BTreeMap::new(),
                body: None,
            })
            .collect();
        for q in &r.requests {
            requests.push(self.assess_request(q, allow_writes));
        }
        let crawl = self.count(r.crawl.as_ref(), 0, 0, 500, "crawl");
        if requests.is_empty() && crawl == 0 {
            self.error(
                r.vendor_url.loc,
                "the assessment has nothing to request",
                "expected `paths: [\"/\"]`, `requests: [{ path: / }]` or `crawl: 20`",
            );
        }
        if requests.len() > 1000 {
            self.error(
                r.vendor_url.loc,
                "an assessment requests at most 1000 paths",
                "expected fewer",
            );
        }
        let headers = self.headers(&r.headers, "assess.headers");
        let norm = r.normalize.as_ref().map(|n| &n.value);
        let normalize_origin = norm.and_then(|n| n.origin.as_ref()).is_none_or(|o| o.value);
        let noise = norm
            .map(|n| {
                n.noise
                    .iter()
                    .map(|x| {
                        let a = self.text(&x.value.after, "assess.normalize.noise.after");
                        let u = self.text(&x.value.until, "assess.normalize.noise.until");
                        if a.is_empty() || u.is_empty() {
                            self.error(
                                x.loc,
                                "`after` and `until` may not be empty",
                                "expected e.g. `{ after: 'nonce=\"', until: '\"' }`",
                            );
                        }
                        (a, u)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let repeat = self.count(r.repeat.as_ref(), 20, 1, 1000, "repeat");
        let warmup = self.count(r.warmup.as_ref(), 2, 0, 100, "warmup");
        let concurrency = self.count(r.concurrency.as_ref(), 4, 1, 64, "concurrency");
        let rate = self.count(r.rate.as_ref(), 20, 1, 10_000, "rate");
        let budget = r
            .budget
            .as_ref()
            .map_or(Some(Span::secs(300)), |b| self.span(b, "assess.budget"));
        let max_body = r
            .max_body
            .as_ref()
            .map_or(Some(Size(4 << 20)), |b| self.size(b, "assess.max_body"));
        if let (Some(m), Some(raw)) = (max_body, &r.max_body)
            && !(1..=(64 << 20)).contains(&m.0)
        {
            self.error(
                raw.loc,
                "`assess.max_body` is at most 64m",
                "expected e.g. `4m`",
            );
        }
        let th = r.thresholds.as_ref().map(|t| &t.value);
        let latency_p95_ratio = th
            .and_then(|t| t.latency_p95_ratio.as_ref())
            .map_or(1.2, |x| {
                if !(x.value.is_finite() && x.value >= 1.0 && x.value <= 1000.0) {
                    self.error(
                        x.loc,
                        format!("`latency_p95_ratio` {} is out of range", x.value),
                        "expected a number from 1 to 1000, e.g. `1.2`",
                    );
                }
                x.value
            });
        let latency_slack = th
            .and_then(|t| t.latency_slack.as_ref())
            .map_or(Some(Span(std::time::Duration::from_millis(10))), |s| {
                self.span(s, "assess.thresholds.latency_slack")
            });
        let content_equal = match th.and_then(|t| t.content.as_ref()) {
            None => true,
            Some(c) => match c.value.as_str() {
                "equal" => true,
                "ignore" => false,
                other => {
                    self.error(
                        c.loc,
                        format!("unknown content threshold `{other}`"),
                        "expected `equal` or `ignore`",
                    );
                    true
                }
            },
        };
        if self.errors() > before {
            return None;
        }
        Some(Assess {
            vendor_url: vendor_url?,
            target_url: target_url?,
            requests,
            crawl,
            headers,
            normalize_origin,
            noise,
            repeat,
            warmup,
            concurrency,
            rate,
            budget: budget?,
            max_body: max_body?,
            latency_p95_ratio,
            latency_slack: latency_slack?,
            content_equal,
        })
    }

    /// An `assess` step: the top-level section, with its own `target_url` if given.
    pub(super) fn assess_step(&mut self, r: &RawAssessStep, loc: Loc, f: &str) -> Option<Assess> {
        let target = r
            .target_url
            .as_ref()
            .and_then(|t| self.http_url(t, &format!("{f}.target_url")));
        let Some(mut section) = self.assess.clone() else {
            self.error(
                loc,
                "an `assess` step runs the playbook's `assess:` section, and there is none (or it has errors)",
                "add `assess: { vendor_url: http://…, target_url: http://…, paths: [\"/\"] }` at the top level",
            );
            return None;
        };
        if let Some(t) = target {
            section.target_url = t;
        }
        Some(section)
    }

    fn http_url(&mut self, s: &Sp<String>, field: &str) -> Option<HttpUrl> {
        let t = self.text(s, field);
        HttpUrl::parse(&t)
            .map_err(|e| {
                self.error(s.loc, format!("`{field}` is not an http:// URL: `{t}`"), e);
            })
            .ok()
    }

    fn req_path(&mut self, s: &Sp<String>, field: &str) -> String {
        let t = self.text(s, field);
        if !t.starts_with('/') || t.contains(|c: char| c.is_whitespace() || c.is_control()) {
            self.error(
                s.loc,
                format!("`{field}`: `{t}` is not a path"),
                "expected a path and query starting with `/`, without spaces, e.g. `/?p=8`",
            );
        }
        t
    }

    fn assess_request(&mut self, q: &Sp<RawAssessRequest>, allow_writes: bool) -> AssessRequest {
        let q = &q.value;
        let path = self.req_path(&q.path, "assess.requests.path");
        let method = q.method.as_ref().map_or_else(
            || "GET".to_string(),
            |m| {
                let t = self.text(m, "assess.requests.method");
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_uppercase()) {
                    self.error(
                        m.loc,
                        format!("`{t}` is not a method"),
                        "expected e.g. `GET`",
                    );
                } else if !allow_writes && t != "GET" && t != "HEAD" {
                    self.error(
                        m.loc,
                        format!("`{t}` could change the vendor's site"),
                        "assessments are read-only (GET, HEAD) unless `assess.allow_writes: true`",
                    );
                }
                t
            },
        );
        let headers = self.headers(&q.headers, "assess.requests.headers");
        let body = q
            .body
            .as_ref()
            .map(|b| self.template(b, "assess.requests.body"));
        AssessRequest {
            method,
            path,
            headers,
            body,
        }
    }

    fn headers(
        &mut self,
        raw: &BTreeMap<String, Sp<String>>,
        field: &str,
    ) -> BTreeMap<String, Template> {
        raw.iter()
            .map(|(k, v)| {
                if k.is_empty()
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    || k.eq_ignore_ascii_case("host")
                    || k.eq_ignore_ascii_case("content-length")
                    || k.eq_ignore_ascii_case("connection")
                {
                    self.error(
                        v.loc,
                        format!("`{field}`: `{k}` cannot be set"),
                        "expected a header name (letters, digits, `-`), not Host, Connection or Content-Length",
                    );
                }
                (k.clone(), self.template(v, field))
            })
            .collect()
    }

    fn count(&mut self, v: Option<&Sp<u32>>, default: u32, min: u32, max: u32, name: &str) -> u32 {
        let Some(v) = v else { return default };
        if !(min..=max).contains(&v.value) {
            self.error(
                v.loc,
                format!("`assess.{name}` is {}", v.value),
                format!("expected {min} to {max}"),
            );
        }
        v.value
    }
}

#[cfg(test)]
mod tests {
    use super::HttpUrl;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/app/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.base, "/app");
        assert_eq!(u.connect_to(), "127.0.0.1:8080");
        let u = HttpUrl::parse("http://example.go.id").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.connect_to(), "example.go.id:80");
        assert_eq!(u.base, "");
        assert!(HttpUrl::parse("https://x").is_err());
        assert!(HttpUrl::parse("http://x:99999/").is_err());
        assert!(HttpUrl::parse("http:///").is_err());
    }
}
