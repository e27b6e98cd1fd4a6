//! Journal verification: parsing every line and checking the hash chain.
//!
//! Owns the rules for what a valid format-1 journal is and how damage is
//! described. Invariant: a scan never modifies anything and stops at the
//! first problem; entries are returned only for lines before that problem.
//! A journal whose header carries a MAC is keyed: every line must carry one, and
//! with the key given, every MAC must be the key's (`key.rs`).

use std::fmt;
use std::fs;
use std::path::Path;

use serde_json::{Map, Value};

use super::key::{JournalKey, unseal};
use super::{EntryIn, FORMAT, Header, JournalError, Record, io_err, sha256_hex};
use crate::engine::journal::Entry;

/// The first thing wrong with a journal, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number of the line at fault.
    pub line: usize,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// Kinds of [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file has no complete line, so no header.
    NoHeader,
    /// The line is not a JSON object.
    Unparsable(String),
    /// Line 1 is not a header.
    NotHeader,
    /// The header's format is not [`FORMAT`].
    UnsupportedFormat(String),
    /// The header is malformed.
    InvalidHeader(String),
    /// A header after line 1.
    UnexpectedHeader,
    /// The record type is not known to this version.
    UnknownType(String),
    /// A known record type with missing or mistyped fields.
    InvalidRecord(String),
    /// The hash chain breaks: this line was edited, or (if `or_line` is set)
    /// that one was; the evidence cannot tell which.
    Edited {
        /// The other candidate line, if ambiguous.
        or_line: Option<usize>,
    },
    /// Records are missing just before this line.
    Dropped {
        /// First missing seq.
        first_missing: u64,
        /// How many seqs are missing.
        count: u64,
    },
    /// This line is a byte-for-byte copy of another line.
    Duplicated {
        /// The line it copies.
        of_line: usize,
    },
    /// This line is out of order (moved, or inserted from elsewhere).
    Reordered {
        /// Seq expected here.
        expected_seq: u64,
        /// Seq found here.
        found_seq: u64,
    },
    /// The line's MAC is not the journal key's MAC of it: the line was rewritten (or
    /// the journal was written with another installation's key).
    BadMac,
    /// The journal is keyed but this line has no MAC: it was inserted or rewritten.
    MissingMac,
    /// This line has a MAC but the header has none: the header was rewritten.
    UnexpectedMac,
    /// The last line has no newline: an append was interrupted.
    TornTail {
        /// Bytes in the torn line.
        bytes: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.line;
        match &self.kind {
            ProblemKind::NoHeader => write!(f, "line 1: missing header (no complete line)"),
            ProblemKind::Unparsable(e) => write!(f, "line {n} is not a JSON object: {e}"),
            ProblemKind::NotHeader => write!(f, "line 1 is not a header"),
            ProblemKind::UnsupportedFormat(v) => {
                write!(
                    f,
                    "line 1: unsupported format {v} (this version reads {FORMAT})"
                )
            }
            ProblemKind::InvalidHeader(e) => write!(f, "line 1: invalid header: {e}"),
            ProblemKind::UnexpectedHeader => write!(f, "line {n}: unexpected second header"),
            ProblemKind::UnknownType(t) => write!(f, "line {n}: unknown record type {t:?}"),
            ProblemKind::InvalidRecord(e) => write!(f, "line {n}: invalid record: {e}"),
            ProblemKind::Edited { or_line: None } => {
                write!(f, "line {n} was edited (the hash chain breaks there)")
            }
            ProblemKind::Edited { or_line: Some(m) } => {
                write!(
                    f,
                    "line {n} was edited, or line {m} was (the hash chain breaks there)"
                )
            }
            ProblemKind::Dropped {
                first_missing,
                count,
            } => write!(
                f,
                "line {n}: {count} record(s) dropped before this line (seq {first_missing}..={})",
                first_missing.saturating_add(*count).saturating_sub(1)
            ),
            ProblemKind::Duplicated { of_line } => {
                write!(f, "line {n} was inserted: it duplicates line {of_line}")
            }
            ProblemKind::Reordered {
                expected_seq,
                found_seq,
            } => write!(
                f,
                "line {n} is out of order (seq {found_seq}, expected {expected_seq}): lines were \
                 reordered or inserted"
            ),
            ProblemKind::BadMac => write!(
                f,
                "line {n} does not match its MAC: it was rewritten after it was written (or the \
                 journal was written with another journal key)"
            ),
            ProblemKind::MissingMac => write!(
                f,
                "line {n} has no MAC although the journal is keyed: it was inserted or rewritten"
            ),
            ProblemKind::UnexpectedMac => write!(
                f,
                "line {n} has a MAC but line 1 has none: the header was rewritten"
            ),
            ProblemKind::TornTail { bytes } => {
                write!(
                    f,
                    "line {n} is torn ({bytes} bytes without newline; interrupted append)"
                )
            }
        }
    }
}

/// Whether a journal's lines carry MACs, and whether they were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keying {
    /// No line has a MAC (journals of earlier releases, or written without a key): the
    /// chain is plain SHA-256, which anyone who can write the file can recompute.
    #[default]
    Unkeyed,
    /// Every line has a MAC, each checked against the key given.
    Checked,
    /// Every line has a MAC, not checked (no key was given).
    NotChecked,
}

impl Keying {
    /// `keyed`, `keyed (MACs not checked: no key)` or `unkeyed`.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Unkeyed => "unkeyed",
            Self::Checked => "keyed",
            Self::NotChecked => "keyed (MACs not checked: no key)",
        }
    }
}

/// Result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Whether the lines carry MACs and whether they were checked.
    pub keying: Keying,
    /// Complete (newline-terminated) lines in the file.
    pub lines: usize,
    /// Whether the file ends in a torn line.
    pub torn_tail: bool,
    /// SHA-256 of the last complete line (the chain head), if any.
    pub head_sha256: Option<String>,
    /// The first problem found, if any (a torn tail is reported only when
    /// nothing else is wrong).
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// No problem at all.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problem.is_none()
    }
    /// The chain verifies; at most a torn tail, which [`Journal::open_append`](super::Journal::open_append)
    /// repairs.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problem
            .as_ref()
            .is_none_or(|p| matches!(p.kind, ProblemKind::TornTail { .. }))
    }
}

pub(super) struct Scan {
    pub(super) report: VerifyReport,
    pub(super) header: Option<Header>,
    pub(super) entries: Vec<Entry>,
    pub(super) complete_len: u64,
}

fn object(line: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(line) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn check_header(line: &[u8]) -> Result<Header, ProblemKind> {
    let v: Value =
        serde_json::from_slice(line).map_err(|e| ProblemKind::Unparsable(e.to_string()))?;
    let Some(obj) = v.as_object() else {
        return Err(ProblemKind::Unparsable("not an object".into()));
    };
    if obj.get("type").and_then(Value::as_str) != Some("header") {
        return Err(ProblemKind::NotHeader);
    }
    match obj.get("format") {
        Some(f) if f.as_u64() == Some(FORMAT) => {}
        Some(f) => return Err(ProblemKind::UnsupportedFormat(f.to_string())),
        None => return Err(ProblemKind::InvalidHeader("missing field `format`".into())),
    }
    if obj.get("prev") != Some(&Value::Null) {
        return Err(ProblemKind::InvalidHeader("`prev` must be null".into()));
    }
    serde_json::from_value(v).map_err(|e| ProblemKind::InvalidHeader(e.to_string()))
}

fn parse_entry(line: &[u8], header: &[u8]) -> Result<EntryIn, ProblemKind> {
    let v: Value =
        serde_json::from_slice(line).map_err(|e| ProblemKind::Unparsable(e.to_string()))?;
    let Some(ty) = v.get("type") else {
        return Err(match v {
            Value::Object(_) => ProblemKind::InvalidRecord("missing field `type`".into()),
            _ => ProblemKind::Unparsable("not an object".into()),
        });
    };
    match ty.as_str() {
        Some("header") if line == header => Err(ProblemKind::Duplicated { of_line: 1 }),
        Some("header") => Err(ProblemKind::UnexpectedHeader),
        Some(t) if !Record::KINDS.contains(&t) => Err(ProblemKind::UnknownType(t.to_owned())),
        _ => serde_json::from_value(v).map_err(|e| ProblemKind::InvalidRecord(e.to_string())),
    }
}

/// Explains a seq anomaly at index `i` (0-based) where `found != i`;
/// `before` is line `i - 1`.
fn classify_seq(lines: &[&[u8]], i: usize, before: &[u8], e: &EntryIn) -> Problem {
    let (expected, found) = (i as u64, e.seq);
    let at = |kind| Problem { line: i + 1, kind };
    if e.prev == sha256_hex(before) {
        // It chains where it stands, so its own seq was altered.
        return at(ProblemKind::Edited { or_line: None });
    }
    let line = lines.get(i).copied().unwrap_or_default();
    if let Some((j, _)) = (lines.iter().enumerate()).find(|&(j, l)| j != i && *l == line) {
        return at(ProblemKind::Duplicated { of_line: j + 1 });
    }
    let seq_of = |l: &[u8]| object(l).and_then(|o| o.get("seq").and_then(Value::as_u64));
    let later = lines.get(i + 1..).unwrap_or_default();
    if found > expected && !later.iter().any(|l| seq_of(l) == Some(expected)) {
        return at(ProblemKind::Dropped {
            first_missing: expected,
            count: found - expected,
        });
    }
    at(ProblemKind::Reordered {
        expected_seq: expected,
        found_seq: found,
    })
}

/// Blames a hash mismatch detected at `line`, index `i` (0-based; its seq
/// was right).
fn classify_hash(lines: &[&[u8]], i: usize, line: &[u8]) -> Problem {
    let prev_of = |l: &[u8]| object(l).and_then(|o| o.get("prev")?.as_str().map(str::to_owned));
    match lines.get(i + 1) {
        // The next line still vouches for this one: the previous line changed.
        Some(next) if prev_of(next) == Some(sha256_hex(line)) => Problem {
            line: i,
            kind: ProblemKind::Edited { or_line: None },
        },
        Some(_) => Problem {
            line: i + 1,
            kind: ProblemKind::Edited { or_line: None },
        },
        None => Problem {
            line: i + 1,
            kind: ProblemKind::Edited { or_line: Some(i) },
        },
    }
}

pub(super) fn scan(bytes: &[u8], key: Option<&JournalKey>) -> Scan {
    let complete_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let (complete, tail) = bytes.split_at(complete_len);
    let lines: Vec<&[u8]> = match complete.split_last() {
        Some((_, body)) => body.split(|&b| b == b'\n').collect(),
        None => Vec::new(),
    };
    let mut scan = Scan {
        report: VerifyReport {
            keying: Keying::Unkeyed,
            lines: lines.len(),
            torn_tail: !tail.is_empty(),
            head_sha256: lines.last().map(|l| sha256_hex(l)),
            problem: None,
        },
        header: None,
        entries: Vec::new(),
        complete_len: complete_len as u64,
    };
    let problem = check_lines(&lines, key, &mut scan);
    scan.report.problem = problem.or_else(|| {
        (!tail.is_empty()).then(|| Problem {
            line: lines.len() + 1,
            kind: ProblemKind::TornTail {
                bytes: tail.len() as u64,
            },
        })
    });
    scan
}

/// The MAC rule for line `line` (1-based): it carries a MAC exactly when the header
/// does, and with a key, the MAC is the key's.
fn check_mac(raw: &[u8], line: usize, keyed: bool, key: Option<&JournalKey>) -> Option<Problem> {
    let at = |kind| Some(Problem { line, kind });
    match (unseal(raw), keyed) {
        (None, false) => None,
        (None, true) => at(ProblemKind::MissingMac),
        (Some(_), false) => at(ProblemKind::UnexpectedMac),
        (Some((body, mac)), true) => match key {
            Some(k) if !k.checks(&body, &mac) => at(ProblemKind::BadMac),
            _ => None,
        },
    }
}

fn check_lines(lines: &[&[u8]], key: Option<&JournalKey>, scan: &mut Scan) -> Option<Problem> {
    let Some(first) = lines.first() else {
        return Some(Problem {
            line: 1,
            kind: ProblemKind::NoHeader,
        });
    };
    match check_header(first) {
        Ok(h) => scan.header = Some(h),
        Err(kind) => return Some(Problem { line: 1, kind }),
    }
    let keyed = unseal(first).is_some();
    scan.report.keying = match (keyed, key) {
        (false, _) => Keying::Unkeyed,
        (true, Some(_)) => Keying::Checked,
        (true, None) => Keying::NotChecked,
    };
    if let Some(p) = check_mac(first, 1, keyed, key) {
        return Some(p);
    }
    for (k, pair) in lines.windows(2).enumerate() {
        let (i, &[before, line]) = (k + 1, pair) else {
            continue; // windows(2) always yields pairs
        };
        let e = match parse_entry(line, first) {
            Ok(e) => e,
            Err(kind) => return Some(Problem { line: i + 1, kind }),
        };
        if e.seq != i as u64 {
            return Some(classify_seq(lines, i, before, &e));
        }
        if e.prev != sha256_hex(before) {
            return Some(classify_hash(lines, i, line));
        }
        if let Some(p) = check_mac(line, i + 1, keyed, key) {
            return Some(p);
        }
        scan.entries.push(Entry {
            line: i + 1,
            seq: e.seq,
            at: e.at,
            prev: e.prev,
            record: e.record,
        });
    }
    None
}

/// Verifies journal bytes (see [`verify`]); MACs, if any, are not checked.
#[must_use]
pub fn verify_bytes(bytes: &[u8]) -> VerifyReport {
    scan(bytes, None).report
}

/// Verifies the journal at `path`: header, parse, seq and hash chain. Stops at
/// the first problem. MACs, if any, are not checked: see [`verify_keyed`].
///
/// # Errors
/// Only if the file cannot be read; findings are in the report.
pub fn verify(path: &Path) -> Result<VerifyReport, JournalError> {
    verify_keyed(path, None)
}

/// [`verify`], and with `key`, every line's MAC against it: a keyed journal whose MACs do
/// not match is broken, naming the line. A journal without MACs verifies as
/// [`Keying::Unkeyed`].
///
/// # Errors
/// Only if the file cannot be read; findings are in the report.
pub fn verify_keyed(path: &Path, key: Option<&JournalKey>) -> Result<VerifyReport, JournalError> {
    let bytes = fs::read(path).map_err(io_err("read journal", path))?;
    Ok(scan(&bytes, key).report)
}
