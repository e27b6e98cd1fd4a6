//! What is compared: bodies normalised (each side's origin, configured noise), latency
//! figures, and a bounded unified diff of two bodies.
//!
//! Invariants: normalising is pure (the same bytes give the same text); the diff shows
//! at most [`DIFF_LINES`] lines and looks at most [`DIFF_SCAN`] lines of each side.

use std::fmt::Write as _;
use std::time::Duration;

/// Lines of diff shown at most.
pub const DIFF_LINES: usize = 60;
/// Lines of each body looked at, at most, by the diff.
pub const DIFF_SCAN: usize = 2000;

/// `body` with `authority` (the side's own `host:port`) replaced by `{origin}`, when
/// asked, also where it is percent-encoded (`host%3A8080`, as in a `?redirect_to=` link),
/// and the text between each `(after, until)` pair blanked to `…`.
pub fn normalise(body: &[u8], authority: Option<&str>, noise: &[(String, String)]) -> String {
    let mut t = String::from_utf8_lossy(body).into_owned();
    if let Some(a) = authority {
        t = t.replace(a, "{origin}");
        if a.contains(':') {
            for colon in ["%3A", "%3a"] {
                t = t.replace(&a.replace(':', colon), "{origin}");
            }
        }
    }
    for (after, until) in noise {
        let mut out = String::with_capacity(t.len());
        let mut rest = t.as_str();
        while let Some(i) = rest.find(after.as_str()) {
            let start = i + after.len();
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            match rest.find(until.as_str()) {
                Some(j) => {
                    out.push('…');
                    rest = &rest[j..];
                    out.push_str(until);
                    rest = &rest[until.len()..];
                }
                None => break,
            }
        }
        out.push_str(rest);
        t = out;
    }
    t
}

/// Median, p95 and max of a sample (nearest-rank), in that order; zeros when empty.
pub fn figures(sample: &[Duration]) -> (Duration, Duration, Duration) {
    if sample.is_empty() {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    let mut s = sample.to_vec();
    s.sort_unstable();
    let rank = |p: f64| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank within a sample of at most a few thousand"
        )]
        let r = (p * s.len() as f64).ceil() as usize;
        s[r.clamp(1, s.len()) - 1]
    };
    (rank(0.5), rank(0.95), s[s.len() - 1])
}

/// A unified diff of `a` (the vendor's) and `b` (the target's), lines of context 3,
/// bounded; empty when equal.
#[expect(
    clippy::many_single_char_names,
    reason = "the textbook names of an LCS: x, y, n, m, i, j"
)]
pub fn unified(a: &str, b: &str, a_name: &str, b_name: &str) -> String {
    let x: Vec<&str> = a.lines().take(DIFF_SCAN).collect();
    let y: Vec<&str> = b.lines().take(DIFF_SCAN).collect();
    if x == y {
        return String::new();
    }
    // Common head and tail trimmed, then an LCS table on the middle (bounded by DIFF_SCAN).
    let head = x.iter().zip(&y).take_while(|(p, q)| p == q).count();
    let tail = x[head..]
        .iter()
        .rev()
        .zip(y[head..].iter().rev())
        .take_while(|(p, q)| p == q)
        .count();
    let xm = &x[head..x.len() - tail];
    let ym = &y[head..y.len() - tail];
    let (n, m) = (xm.len(), ym.len());
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * (m + 1) + j] = if xm[i] == ym[j] {
                lcs[(i + 1) * (m + 1) + j + 1] + 1
            } else {
                lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let ctx0 = head.saturating_sub(3);
    for l in &x[ctx0..head] {
        ops.push((' ', l));
    }
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && xm[i] == ym[j] {
            ops.push((' ', xm[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
            ops.push(('-', xm[i]));
            i += 1;
        } else {
            ops.push(('+', ym[j]));
            j += 1;
        }
    }
    for l in x[x.len() - tail..].iter().take(3) {
        ops.push((' ', l));
    }
    let mut out = format!(
        "--- {a_name}\n+++ {b_name}\n@@ -{},{} +{},{} @@\n",
        ctx0 + 1,
        x.len() - ctx0,
        ctx0 + 1,
        y.len() - ctx0
    );
    for (k, (op, l)) in ops.iter().enumerate() {
        if k == DIFF_LINES {
            let _ = writeln!(out, "… ({} more lines)", ops.len() - DIFF_LINES);
            break;
        }
        let l: String = l.chars().take(200).collect();
        let _ = writeln!(out, "{op}{l}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn normalises_origin_and_noise() {
        let noise = vec![("nonce=\"".to_string(), "\"".to_string())];
        let t = normalise(
            b"<a href=\"http://h:81/x\"> nonce=\"abc\" nonce=\"d\" end",
            Some("h:81"),
            &noise,
        );
        assert_eq!(
            t,
            "<a href=\"http://{origin}/x\"> nonce=\"…\" nonce=\"…\" end"
        );
        assert_eq!(normalise(b"nonce=\"open", None, &noise), "nonce=\"open");
        let login = b"/wp-login.php?redirect_to=http%3A%2F%2Fh%3A81%2Fx&r=http%3a%2F%2Fh%3a81";
        assert_eq!(
            normalise(login, Some("h:81"), &[]),
            "/wp-login.php?redirect_to=http%3A%2F%2F{origin}%2Fx&r=http%3a%2F%2F{origin}"
        );
    }

    #[test]
    fn figures_by_rank() {
        let s: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        let (med, p95, max) = figures(&s);
        assert_eq!(med, Duration::from_millis(10));
        assert_eq!(p95, Duration::from_millis(19));
        assert_eq!(max, Duration::from_millis(20));
        assert_eq!(figures(&[]).0, Duration::ZERO);
    }

    #[test]
    fn diff_is_unified_and_bounded() {
        let d = unified("a\nb\nc\nd\n", "a\nb\nX\nd\n", "vendor", "target");
        assert!(d.contains("-c\n+X\n"), "{d}");
        assert!(d.starts_with("--- vendor\n+++ target\n@@"), "{d}");
        assert!(unified("same", "same", "a", "b").is_empty());
        let big_a: String = (0..500).fold(String::new(), |mut acc, i| {
            let _ = writeln!(acc, "{i}");
            acc
        });
        let d = unified(&big_a, "", "a", "b");
        assert!(d.lines().count() <= DIFF_LINES + 4, "{d}");
    }
}
