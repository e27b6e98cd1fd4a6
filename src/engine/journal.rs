//! The run journal (`journal.jsonl`): write-ahead, hash-chained, fsync'd.
//!
//! This module owns the journal file format (documented for humans in
//! `docs/journal.md`): writing it, reading it back and verifying it. It knows
//! nothing about step kinds; step-specific payloads are opaque JSON values.
//!
//! Invariants:
//! - Line 1 is the header (`"type":"header"`, `"format":1`, `"prev":null`);
//!   it is seq 0. Every later line has `seq` = previous + 1 and `prev` = the
//!   lowercase hex SHA-256 of the previous line's exact bytes (no newline).
//! - A line is committed only once its trailing `\n` is on disk: each append
//!   is one `write_all` of `line + "\n"` followed by `sync_data`, and
//!   [`Journal::append`] returns only after both. The file is created with
//!   `O_EXCL`, mode 0o600, and its directory is fsync'd.
//! - The only repair ever made is dropping a torn tail (trailing bytes with no
//!   `\n`, left by a crash mid-append) in [`Journal::open_append`]. Such a
//!   record was never acknowledged, so the change it announced was not made.
//! - Nothing is ever appended to a journal whose chain does not verify, and
//!   after a failed append a [`Journal`] refuses further appends.
//! - A journal created with a [`JournalKey`] is keyed: every line, header included,
//!   ends in an HMAC-SHA256 of the rest of it (`"mac"`), so the chain cannot be
//!   recomputed without the key. Appends to a keyed journal need its key; a journal
//!   without MACs (earlier releases) stays unkeyed to its end.
//!
//! Appends are not locked here: the caller holds the app lock.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::engine::state::{TimeError, utc_rfc3339};

mod key;
mod record;
mod verify;

pub use key::JournalKey;
pub use record::{Entry, Header, HeaderFields, Record};
use record::{EntryIn, EntryOut, HeaderOut};
pub use verify::{Keying, Problem, ProblemKind, VerifyReport, verify, verify_bytes, verify_keyed};
use verify::{Scan, scan};

/// The journal format version this module writes and reads.
pub const FORMAT: u64 = 1;

/// Lowercase hex SHA-256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Errors from writing or reading a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// [`Journal::create`] found a file already there.
    #[error("journal {} already exists; refusing to overwrite it", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// The journal does not verify (a torn tail alone is not this error).
    #[error("journal {} is broken: {problem}", path.display())]
    Broken {
        /// The journal file.
        path: PathBuf,
        /// The first problem found.
        problem: Problem,
    },
    /// An earlier append on this handle failed; reopen with
    /// [`Journal::open_append`] to re-verify before writing again.
    #[error("journal {} had a failed append; refusing to write more", path.display())]
    Poisoned {
        /// The journal file.
        path: PathBuf,
    },
    /// The journal is keyed and no key was given to append to it.
    #[error("journal {} is keyed: appending to it needs its journal key", path.display())]
    NeedsKey {
        /// The journal file.
        path: PathBuf,
    },
    /// A timestamp could not be formatted.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A record could not be serialized.
    #[error("cannot serialize journal record: {0}")]
    Serialize(#[from] serde_json::Error),
    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { op, path, source }
}

/// A journal read back in full (see [`read`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JournalContents {
    /// Line 1.
    pub header: Header,
    /// Lines 2.., in order.
    pub entries: Vec<Entry>,
    /// Whether the file ended in a torn (incomplete, never acknowledged)
    /// line, which is ignored here.
    pub torn_tail: bool,
    /// SHA-256 of the last complete line: the chain head.
    pub head_sha256: String,
    /// Whether its lines carry MACs, and whether they were checked.
    pub keying: Keying,
}

fn contents(path: &Path, scan: Scan) -> Result<JournalContents, JournalError> {
    match (scan.report.problem, scan.header, scan.report.head_sha256) {
        (Some(p), _, _) if !matches!(p.kind, ProblemKind::TornTail { .. }) => {
            Err(JournalError::Broken {
                path: path.to_path_buf(),
                problem: p,
            })
        }
        (_, Some(header), Some(head_sha256)) => Ok(JournalContents {
            keying: scan.report.keying,
            header,
            entries: scan.entries,
            torn_tail: scan.report.torn_tail,
            head_sha256,
        }),
        // Unreachable: without a header, the problem is NoHeader or worse.
        _ => Err(JournalError::Broken {
            path: path.to_path_buf(),
            problem: Problem {
                line: 1,
                kind: ProblemKind::NoHeader,
            },
        }),
    }
}

/// Reads and verifies the journal at `path`. A torn tail is ignored and
/// reported in [`JournalContents::torn_tail`]; the file is not modified.
///
/// # Errors
/// [`JournalError::Broken`] if the chain does not verify, or an I/O error.
pub fn read(path: &Path) -> Result<JournalContents, JournalError> {
    read_keyed(path, None)
}

/// [`read`], and with `key`, every line's MAC checked against it (see [`verify_keyed`]).
///
/// # Errors
/// [`JournalError::Broken`] if the chain or a MAC does not verify, or an I/O error.
pub fn read_keyed(path: &Path, key: Option<&JournalKey>) -> Result<JournalContents, JournalError> {
    let bytes = fs::read(path).map_err(io_err("read journal", path))?;
    contents(path, scan(&bytes, key))
}

/// An open journal, positioned to append the next record.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    len: u64,
    next_seq: u64,
    head: String,
    poisoned: bool,
    repaired_torn_tail: Option<u64>,
    /// The key its lines are sealed with (none: an unkeyed journal).
    key: Option<JournalKey>,
}

fn sync_parent(path: &Path) -> Result<(), JournalError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

impl Journal {
    /// Creates a new journal at `path` (exclusively, mode 0o600) holding
    /// only the header, fsyncs it and its directory.
    ///
    /// # Errors
    /// [`JournalError::Exists`] if the file exists; time or I/O errors. If
    /// writing the header fails the new file is removed.
    pub fn create(path: &Path, fields: &HeaderFields) -> Result<Self, JournalError> {
        Self::create_keyed(path, fields, None)
    }

    /// [`Journal::create`], keyed with `key` when there is one: every line carries its
    /// MAC.
    ///
    /// # Errors
    /// As [`Journal::create`].
    pub fn create_keyed(
        path: &Path,
        fields: &HeaderFields,
        key: Option<&JournalKey>,
    ) -> Result<Self, JournalError> {
        let header = Header {
            format: FORMAT,
            run: fields.run.clone(),
            app: fields.app.clone(),
            playbook_sha256: fields.playbook_sha256.clone(),
            plan_sha256: fields.plan_sha256.clone(),
            operator: fields.operator.clone(),
            host: fields.host.clone(),
            started: utc_rfc3339(fields.started)?,
        };
        let mut buf = serde_json::to_vec(&HeaderOut {
            kind: "header",
            header: &header,
            prev: None,
        })?;
        if let Some(k) = key {
            buf = k.seal(&buf);
        }
        let head = sha256_hex(&buf);
        buf.push(b'\n');
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => JournalError::Exists {
                    path: path.to_path_buf(),
                },
                _ => io_err("create journal", path)(e),
            })?;
        if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_all()) {
            // Best effort: the file holds nothing of value yet.
            let _ = fs::remove_file(path);
            return Err(io_err("write journal header", path)(e));
        }
        sync_parent(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len: buf.len() as u64,
            next_seq: 1,
            head,
            poisoned: false,
            repaired_torn_tail: None,
            key: key.cloned(),
        })
    }

    /// Opens an existing journal to resume appending. The whole chain is
    /// verified first; a torn tail is truncated away (the one legal repair,
    /// see [`Journal::repaired_torn_tail`]). Returns the journal and its
    /// contents as read.
    ///
    /// # Errors
    /// [`JournalError::Broken`] if the chain does not verify (nothing is
    /// modified then), or an I/O error.
    pub fn open_append(path: &Path) -> Result<(Self, JournalContents), JournalError> {
        Self::open_append_keyed(path, None)
    }

    /// [`Journal::open_append`] with `key`: each MAC is checked first, and new lines of a
    /// keyed journal are sealed with it. A keyed journal cannot be opened without its
    /// key (nothing could be appended that verifies); an unkeyed one stays unkeyed.
    ///
    /// # Errors
    /// As [`Journal::open_append`]; [`JournalError::NeedsKey`] for a keyed journal and
    /// no key.
    pub fn open_append_keyed(
        path: &Path,
        key: Option<&JournalKey>,
    ) -> Result<(Self, JournalContents), JournalError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_err("open journal", path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_err("read journal", path))?;
        let scan = scan(&bytes, key);
        let len = scan.complete_len;
        let contents = contents(path, scan)?;
        let key = match contents.keying {
            Keying::Unkeyed => None,
            Keying::Checked => key.cloned(),
            Keying::NotChecked => {
                return Err(JournalError::NeedsKey {
                    path: path.to_path_buf(),
                });
            }
        };
        let mut repaired_torn_tail = None;
        if contents.torn_tail {
            file.set_len(len)
                .and_then(|()| file.sync_all())
                .map_err(io_err("truncate torn tail of", path))?;
            repaired_torn_tail = Some(bytes.len() as u64 - len);
        }
        let journal = Self {
            file,
            path: path.to_path_buf(),
            len,
            next_seq: contents.entries.last().map_or(1, |e| e.seq + 1),
            head: contents.head_sha256.clone(),
            poisoned: false,
            repaired_torn_tail,
            key,
        };
        Ok((journal, contents))
    }

    /// Appends `record` stamped with the current time. See [`Journal::append_at`].
    ///
    /// # Errors
    /// As [`Journal::append_at`].
    pub fn append(&mut self, record: &Record) -> Result<u64, JournalError> {
        self.append_at(record, SystemTime::now())
    }

    /// Appends `record` stamped `at`: one `write_all` of the line and its
    /// newline, then `sync_data`. Returns the record's seq once it is durable.
    ///
    /// # Errors
    /// Time, serialization or I/O errors. After an I/O error this handle is
    /// poisoned and every later append fails with [`JournalError::Poisoned`].
    pub fn append_at(&mut self, record: &Record, at: SystemTime) -> Result<u64, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
            });
        }
        let at = utc_rfc3339(at)?;
        let mut buf = serde_json::to_vec(&EntryOut {
            record,
            seq: self.next_seq,
            at: &at,
            prev: &self.head,
        })?;
        if let Some(k) = &self.key {
            buf = k.seal(&buf);
        }
        let head = sha256_hex(&buf);
        buf.push(b'\n');
        if let Err(e) = self.file.write_all(&buf) {
            self.poisoned = true;
            // Best effort: remove a partial line; verification would call it
            // a torn tail anyway.
            let _ = self.file.set_len(self.len);
            return Err(io_err("append to journal", &self.path)(e));
        }
        if let Err(e) = self.file.sync_data() {
            self.poisoned = true;
            return Err(io_err("fsync journal", &self.path)(e));
        }
        self.len += buf.len() as u64;
        self.head = head;
        self.next_seq += 1;
        Ok(self.next_seq - 1)
    }

    /// The journal file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seq the next record will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The key its lines are sealed with, if it is keyed.
    #[must_use]
    pub fn key(&self) -> Option<&JournalKey> {
        self.key.as_ref()
    }

    /// SHA-256 of the last line written: the chain head.
    #[must_use]
    pub fn head_sha256(&self) -> &str {
        &self.head
    }

    /// Bytes of torn tail removed by [`Journal::open_append`], if any (the
    /// caller may want to journal a note about it).
    #[must_use]
    pub fn repaired_torn_tail(&self) -> Option<u64> {
        self.repaired_torn_tail
    }
}

#[cfg(test)]
mod tests;
