//! The evidence that proves a restored database equal to its dump: per-table row counts
//! and checksums ([`Evidence`]), compared engine-version aware, and the tables as their
//! server lists them ([`Table`]: any legal name, hex-decoded, labelled unambiguously).

use serde::{Deserialize, Serialize};

use super::pg_id;

/// One table's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEvidence {
    /// Name (`schema.table` for PostgreSQL).
    pub table: String,
    /// Rows.
    pub rows: u64,
    /// Content checksum: `CHECKSUM TABLE … EXTENDED` (MariaDB/MySQL) or a sum of the rows'
    /// MD5s (PostgreSQL); comparable only between servers of the same version.
    pub checksum: String,
    /// Storage engine (MariaDB/MySQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

/// A database's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The server's version string.
    pub server: String,
    /// Base tables, sorted.
    pub tables: Vec<TableEvidence>,
}

impl Evidence {
    /// Rows in all tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Tables whose storage engine gives `--single-transaction` no consistency.
    pub fn non_transactional(&self) -> Vec<&str> {
        self.tables
            .iter()
            .filter(|t| {
                t.engine
                    .as_deref()
                    .is_some_and(|e| !e.eq_ignore_ascii_case("InnoDB"))
            })
            .map(|t| t.table.as_str())
            .collect()
    }

    /// Differences from `dumped`, one line per table; checksums are compared when both
    /// servers are the same major.minor version (else a note says they were not).
    pub fn differences(&self, dumped: &Self) -> (Vec<String>, bool) {
        let same = major_minor(&self.server) == major_minor(&dumped.server);
        let mine: std::collections::HashMap<&str, &TableEvidence> =
            self.tables.iter().map(|t| (t.table.as_str(), t)).collect();
        let theirs: std::collections::HashSet<&str> =
            dumped.tables.iter().map(|t| t.table.as_str()).collect();
        let mut diff = Vec::new();
        for d in &dumped.tables {
            let name = shown(&d.table);
            match mine.get(d.table.as_str()) {
                None => diff.push(format!("table `{name}` is missing")),
                Some(t) if t.rows != d.rows => diff.push(format!(
                    "table `{name}` has {} rows, the dump had {}",
                    t.rows, d.rows
                )),
                Some(t) if same && t.checksum != d.checksum => diff.push(format!(
                    "table `{name}`: content checksum {} differs from the dump's {}",
                    t.checksum, d.checksum
                )),
                Some(_) => {}
            }
        }
        for t in &self.tables {
            if !theirs.contains(t.table.as_str()) {
                diff.push(format!("table `{}` is not in the dump", shown(&t.table)));
            }
        }
        (diff, same)
    }
}

fn major_minor(version: &str) -> String {
    let flavour = if version.to_ascii_lowercase().contains("mariadb") {
        "mariadb"
    } else {
        ""
    };
    let v: Vec<&str> = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .collect();
    // PostgreSQL 10 and later: the first number is the major version (15.8 and 15.14
    // write the same text for the same rows); MariaDB and MySQL: the first two.
    let postgres_major = flavour.is_empty() && v.first().is_some_and(|m| m.len() >= 2);
    let keep = if postgres_major { 1 } else { 2 };
    format!("{flavour}{}", v[..keep.min(v.len())].join("."))
}

/// A base table as its server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// PostgreSQL's schema.
    pub schema: Option<String>,
    /// The table's name, exactly.
    pub name: String,
    /// Storage engine (MariaDB/MySQL).
    pub engine: Option<String>,
}

impl Table {
    /// How the evidence names the table: its name; for PostgreSQL `schema.name`, where a
    /// part that holds a dot or a double quote is double-quoted (quotes doubled), so that
    /// two tables never share a label.
    pub fn label(&self) -> String {
        let part = |s: &str| {
            if s.contains(['.', '"']) {
                pg_id(s)
            } else {
                s.to_string()
            }
        };
        match &self.schema {
            Some(schema) => format!("{}.{}", part(schema), part(&self.name)),
            None => self.name.clone(),
        }
    }
}

/// A name as a message shows it: control characters (a tab, a line break) and backslashes
/// escaped, everything else as it is.
pub fn shown(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() || c == '\\' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Hex (either case) to a UTF-8 string.
pub(super) fn unhex(h: &str) -> Option<String> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// Undoes the escaping of the `mariadb`/`mysql` client's batch mode: `\0`, `\t`, `\n`
/// and `\\` (a field's tab and line break would otherwise end it).
pub(super) fn unescape_batch(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}
