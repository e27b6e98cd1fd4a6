//! One HTTP/1.1 request over a tokio `TcpStream` (`http://` only, `Connection: close`),
//! timed from the connect to the last byte of the body.
//!
//! Invariants: the head is read within 64 KiB; at most `max_body` bytes of the body are
//! kept, the rest is counted and dropped; a chunked body is decoded; the whole exchange
//! has a time limit.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::playbook::HttpUrl;

/// What one request answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body's size in bytes (all of it, kept or not).
    pub size: u64,
    /// The body's first `max_body` bytes.
    pub body: Vec<u8>,
    /// From the connect to the last byte.
    pub latency: Duration,
}

/// A request, ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers (resolved values; never shown).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<String>,
}

const MAX_HEAD: usize = 64 << 10;

/// Sends `req` to `url` and reads the answer.
pub async fn send(
    url: &HttpUrl,
    req: &Request,
    max_body: u64,
    limit: Duration,
) -> Result<Answer, String> {
    tokio::time::timeout(limit, exchange(url, req, max_body))
        .await
        .map_err(|_| format!("no answer within {:.1} s", limit.as_secs_f64()))?
}

async fn exchange(url: &HttpUrl, req: &Request, max_body: u64) -> Result<Answer, String> {
    let t0 = Instant::now();
    let mut s = tokio::net::TcpStream::connect(url.connect_to())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", url.connect_to()))?;
    let _ = s.set_nodelay(true);
    let mut head = format!(
        "{} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: boyong-assess\r\nAccept: */*\r\nConnection: close\r\n",
        req.method, url.base, req.path, url.authority
    );
    for (k, v) in &req.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    if let Some(b) = &req.body {
        let _ = write!(head, "Content-Length: {}\r\n", b.len());
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if let Some(b) = &req.body {
        out.extend_from_slice(b.as_bytes());
    }
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    // Read the head.
    let mut buf = Vec::with_capacity(8192);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("the answer's head is over 64 KiB".into());
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed before an HTTP answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("not an HTTP answer")?;
    let mut location = None;
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("location") {
            location = Some(v.to_string());
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        } else if k.eq_ignore_ascii_case("content-length") {
            length = v.parse().ok();
        }
    }
    let no_body = req.method == "HEAD" || status == 204 || status == 304 || status / 100 == 1;
    // The raw body: kept up to a bound, counted beyond it.
    let keep = usize::try_from(max_body.saturating_add(64 << 10)).unwrap_or(usize::MAX);
    let mut raw: Vec<u8> = buf[end..].to_vec();
    let mut total = raw.len() as u64;
    if !no_body {
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if !chunked && length.is_some_and(|n| total >= n) {
                break;
            }
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if raw.len() < keep {
                let room = keep - raw.len();
                raw.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    let latency = t0.elapsed();
    let (mut body, size) = if no_body {
        (Vec::new(), 0)
    } else if chunked {
        let b = dechunk(&raw);
        let n = b.len() as u64;
        (b, n)
    } else {
        let n = length.map_or(total, |l| l.min(total));
        (raw, n)
    };
    body.truncate(usize::try_from(max_body).unwrap_or(usize::MAX));
    Ok(Answer {
        status,
        location,
        size,
        body,
        latency,
    })
}

/// Decodes a chunked body (as much of it as was kept).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(n) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        let start = eol + 2;
        let stop = (start + n).min(raw.len());
        out.extend_from_slice(&raw[start..stop]);
        if stop + 2 > raw.len() {
            break;
        }
        raw = &raw[stop + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"),
            b"abcde"
        );
        assert_eq!(super::dechunk(b"5\r\nab"), b"ab");
    }
}
