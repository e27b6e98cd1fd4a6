//! `assess.crawl: N`: up to N more pages of the vendor's site, found by following its
//! links from the base page, assessed like the listed requests.
//!
//! Invariants: only the vendor is crawled, only with GET, at the assessment's rate and
//! within its budget; at most N pages are fetched; only same-origin links under the
//! vendor URL's base path are followed (other hosts, schemes and `//host` links are
//! not); a link's fragment is dropped; the order is breadth-first, so the result is the
//! same for the same site.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::Pace;
use super::http::{self, Request};
use crate::playbook::{Assess, HttpUrl};

/// The longest path kept from a link.
const MAX_PATH: usize = 2000;

/// Crawls the vendor's site from its base page: up to `a.crawl` paths (relative to the
/// base) that `known` does not hold, breadth-first. `headers`: sent with every request.
pub(super) async fn crawl(
    a: &Assess,
    known: &BTreeSet<String>,
    headers: &[(String, String)],
    pace: &Pace,
) -> Vec<String> {
    let want = usize::try_from(a.crawl).unwrap_or(usize::MAX);
    let mut seen: BTreeSet<String> = known.clone();
    let mut found: Vec<String> = Vec::new();
    let mut queue: VecDeque<String> = VecDeque::from(["/".to_string()]);
    let mut fetched = 0usize;
    if !known.contains("/") {
        seen.insert("/".into());
        found.push("/".into());
    }
    while let Some(page) = queue.pop_front() {
        if found.len() >= want || fetched >= want.max(1) {
            break;
        }
        pace.wait_vendor().await;
        let now = Instant::now();
        if now >= pace.deadline {
            break;
        }
        fetched += 1;
        pace.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let req = Request {
            method: "GET".into(),
            path: page.clone(),
            headers: headers.to_vec(),
            body: None,
        };
        let limit = (pace.deadline - now).min(Duration::from_secs(30));
        let Ok(ans) = http::send(&a.vendor_url, &req, a.max_body.0, limit).await else {
            continue;
        };
        if ans.status != 200 {
            continue;
        }
        for link in links(&String::from_utf8_lossy(&ans.body), &page, &a.vendor_url) {
            if found.len() >= want {
                break;
            }
            if seen.insert(link.clone()) {
                found.push(link.clone());
                queue.push_back(link);
            }
        }
    }
    found.truncate(want);
    found
}

/// The same-origin links of an HTML page (`<a href>`), as paths relative to `url`'s base,
/// in the order they appear. `page`: the page's own path (relative to the base), for
/// relative links.
pub(super) fn links(html: &str, page: &str, url: &HttpUrl) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<a") {
        let start = at + i + 2;
        let end = lower[start..].find('>').map_or(lower.len(), |j| start + j);
        at = end;
        let next = lower.as_bytes().get(start).copied().unwrap_or(b'>');
        if !next.is_ascii_whitespace() {
            continue; // `<abbr>`, `<address>`
        }
        let Some(h) = lower[start..end].find("href=") else {
            continue;
        };
        let v = start + h + 5;
        let raw = match html.as_bytes().get(v) {
            Some(q @ (b'"' | b'\'')) => {
                let body = &html[v + 1..end];
                body.find(char::from(*q)).map_or(body, |k| &body[..k])
            }
            _ => html[v..end]
                .split(|c: char| c.is_ascii_whitespace())
                .next()
                .unwrap_or(""),
        };
        if let Some(p) = resolve(&raw.trim().replace("&amp;", "&"), page, url) {
            out.push(p);
        }
    }
    out
}

/// A link as a path relative to `url`'s base, when it is on the same site under it.
fn resolve(link: &str, page: &str, url: &HttpUrl) -> Option<String> {
    let link = link.split('#').next().unwrap_or("");
    if link.is_empty() || link.len() > MAX_PATH || link.chars().any(char::is_control) {
        return None;
    }
    let lower = link.to_ascii_lowercase();
    let origin = format!("http://{}", url.authority.to_ascii_lowercase());
    let absolute = if let Some(rest) = lower.strip_prefix(&origin) {
        let rest = &link[link.len() - rest.len()..];
        match rest.chars().next() {
            None => "/".to_string(),
            Some('/' | '?') => format!("/{}", rest.trim_start_matches('/')),
            Some(_) => return None, // `http://host:8080` against `http://host:80`
        }
    } else if lower.starts_with("//") || scheme(&lower) {
        return None;
    } else if link.starts_with('/') {
        link.to_string()
    } else {
        // Relative to the page's directory (the base included).
        let full = format!("{}{}", url.base, page);
        let dir = if link.starts_with('?') {
            full.split('?').next().unwrap_or("/").to_string()
        } else {
            let p = full.split('?').next().unwrap_or("/");
            p[..=p.rfind('/').unwrap_or(0)].to_string()
        };
        format!("{dir}{link}")
    };
    let path = normalise(&absolute);
    let rel = if url.base.is_empty() {
        path
    } else {
        let rest = path.strip_prefix(&url.base)?;
        if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
            return None;
        }
        if rest.starts_with('/') {
            rest.to_string()
        } else {
            format!("/{rest}")
        }
    };
    (!rel.contains(char::is_whitespace)).then_some(rel)
}

/// Whether a link starts with a scheme (`mailto:`, `javascript:`, `https:`).
fn scheme(lower: &str) -> bool {
    lower.find(':').is_some_and(|i| {
        let s = &lower[..i];
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !lower[..i].contains('/')
    })
}

/// `.` and `..` segments of a path resolved (never above the root); the query kept.
fn normalise(path: &str) -> String {
    let (p, query) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let trailing = p.ends_with("/.") || p.ends_with("/..");
    let mut out = format!("/{}", parts.join("/"));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> HttpUrl {
        HttpUrl::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn same_origin_links_under_the_base_only() {
        let u = url("http://vendor.test:8080/blog");
        let html = r##"<html><a href="/blog/?p=8">a</a> <A HREF='http://vendor.test:8080/blog/about/'>b</A>
            <a class="x" href="contact.php#top">c</a> <a href="https://other.test/">d</a>
            <a href="//cdn.test/x">e</a> <a href="mailto:a@b.c">f</a> <a href="/other/">g</a>
            <a href="http://vendor.test:9090/blog/">h</a> <abbr href="/blog/no">i</abbr>
            <a href=../blog/x?a=1&amp;b=2>j</a> <a href="#top">k</a> <a href="?page=2">l</a>"##;
        assert_eq!(
            links(html, "/2024/post/", &u),
            [
                "/?p=8",
                "/about/",
                "/2024/post/contact.php",
                "/2024/blog/x?a=1&b=2",
                "/2024/post/?page=2"
            ]
        );
        let root = url("http://127.0.0.1:81");
        assert_eq!(
            links(
                "<a href=\"../../../etc\">x</a><a href=\"http://127.0.0.1:81\">y</a>",
                "/a/b",
                &root
            ),
            ["/etc", "/"]
        );
    }
}
