//! Checking a server's host key against an OpenSSH `known_hosts` file, strictly.
//!
//! Owns the parsing and matching of `known_hosts` lines: plain host patterns (with `*`,
//! `?` and `!` negation, comma lists), `[host]:port` for ports other than 22, hashed
//! `|1|salt|hash` entries (HMAC-SHA1), `@revoked` keys, and `@cert-authority` lines (not
//! used: boyong does not trust host certificates, so they never vouch for a key).
//! Invariants: a revoked key is refused even where another line lists it; a host with
//! known keys of the server key's algorithm, none of them equal, is a changed key
//! (possible man-in-the-middle), never merely unknown; nothing here writes except
//! [`append`], which only adds a line for an unknown host.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use russh::keys::ssh_key::{HashAlg, PublicKey};

/// What the file says about a server's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host lists this key.
    Known {
        /// 1-based line.
        line: usize,
    },
    /// No line for this host lists a key of this algorithm.
    Unknown {
        /// Algorithms of keys known for this host (the server offered another).
        other_algorithms: Vec<String>,
    },
    /// Lines for this host list other keys of the same algorithm.
    Changed {
        /// 1-based lines of the keys on record.
        lines: Vec<usize>,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// 1-based line.
        line: usize,
    },
}

/// The name a host is looked up under: `host`, or `[host]:port` off port 22, lowercased
/// as OpenSSH does.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The algorithms of the keys on record for `host:port` (not revoked ones).
pub fn algorithms_for(text: &str, host: &str, port: u16) -> Vec<String> {
    let name = lookup_name(host, port);
    let mut out: Vec<String> = Vec::new();
    for raw in text.lines() {
        if let Some(e) = Entry::parse(raw)
            && e.marker == Marker::None
            && e.matches(&name)
            && !out.iter().any(|a| a == e.key_type)
        {
            out.push(e.key_type.to_string());
        }
    }
    out
}

/// SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The `known_hosts` line that records `key` for `host:port`.
pub fn line_for(host: &str, port: u16, key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    let text = k.to_openssh().unwrap_or_default();
    format!("{} {}", lookup_name(host, port), text.trim())
}

/// Checks `key` of `host:port` against the text of a `known_hosts` file.
pub fn check(text: &str, host: &str, port: u16, key: &PublicKey) -> Verdict {
    let name = lookup_name(host, port);
    let mut same_alg = Vec::new();
    let mut other_algs: Vec<String> = Vec::new();
    let mut known = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let Some(entry) = Entry::parse(raw) else {
            continue;
        };
        let Some(listed) = entry.key() else {
            continue;
        };
        let same_key = listed.key_data() == key.key_data();
        match entry.marker {
            Marker::Revoked => {
                if same_key {
                    return Verdict::Revoked { line: line_no };
                }
                continue;
            }
            Marker::CertAuthority => continue,
            Marker::None => {}
        }
        if !entry.matches(&name) {
            continue;
        }
        if same_key {
            known.get_or_insert(line_no);
        } else if listed.algorithm() == key.algorithm() {
            same_alg.push(line_no);
        } else {
            let a = listed.algorithm().to_string();
            if !other_algs.contains(&a) {
                other_algs.push(a);
            }
        }
    }
    match known {
        Some(line) => Verdict::Known { line },
        None if !same_alg.is_empty() => Verdict::Changed { lines: same_alg },
        None => Verdict::Unknown {
            other_algorithms: other_algs,
        },
    }
}

/// Appends the line for an unknown host's key to the file (created 0600 if missing).
///
/// # Errors
/// The file cannot be written.
pub fn append(path: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let existing = std::fs::read(path).unwrap_or_default();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    if !existing.is_empty() && !existing.ends_with(b"\n") {
        f.write_all(b"\n")?;
    }
    writeln!(f, "{}", line_for(host, port, key))?;
    f.sync_all()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    key_type: &'a str,
    key_b64: &'a str,
}

impl<'a> Entry<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut words = line.split_whitespace();
        let mut first = words.next()?;
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            m if m.starts_with('@') => return None,
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = words.next()?;
        }
        Some(Self {
            marker,
            hosts: first,
            key_type: words.next()?,
            key_b64: words.next()?,
        })
    }

    fn key(&self) -> Option<PublicKey> {
        PublicKey::from_openssh(&format!("{} {}", self.key_type, self.key_b64)).ok()
    }

    /// Whether the host field matches `name` (OpenSSH's rules: any positive pattern
    /// matches and no negated one does).
    fn matches(&self, name: &str) -> bool {
        if let Some(hashed) = self.hosts.strip_prefix("|1|") {
            return hashed_matches(hashed, name);
        }
        let mut positive = false;
        for pat in self.hosts.split(',') {
            if let Some(neg) = pat.strip_prefix('!') {
                if glob(&neg.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
                    return false;
                }
            } else if glob(&pat.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
                positive = true;
            }
        }
        positive
    }
}

fn hashed_matches(field: &str, name: &str) -> bool {
    let Some((salt, hash)) = field.split_once('|') else {
        return false;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` and `?` wildcards, as in OpenSSH's `match_pattern`.
fn glob(pat: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known { line } => write!(f, "known (line {line})"),
            Self::Unknown { .. } => write!(f, "unknown"),
            Self::Changed { lines } => write!(f, "changed (on record: line {lines:?})"),
            Self::Revoked { line } => write!(f, "revoked (line {line})"),
        }
    }
}

#[cfg(test)]
mod tests;
