//! Why an SSH connection or command failed: [`SshError`], each variant saying what to do
//! in one line, and whether trying again may help.

use std::time::Duration;

/// Why a connection or a command failed. Each says what to do in one line.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// Nothing listens, or the route is missing.
    #[error("cannot reach {addr}: {source}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A phase took longer than the limit.
    #[error("{addr}: {phase} timed out after {limit:?}")]
    TimedOut {
        /// `host:port`.
        addr: String,
        /// connect, key exchange, authentication.
        phase: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The host's key is not on record.
    #[error(
        "host key of {addr} is not in {file}: refused. Its {fingerprint}; after checking it with the vendor, add this line to {file}:\n{line}{others}"
    )]
    HostKeyUnknown {
        /// `host:port`.
        addr: String,
        /// SHA-256 fingerprint.
        fingerprint: String,
        /// The line to add.
        line: String,
        /// The known_hosts file.
        file: String,
        /// A note on keys of other algorithms on record.
        others: String,
    },
    /// The host's key differs from the one on record: a possible man-in-the-middle.
    #[error(
        "HOST KEY OF {addr} HAS CHANGED: refused. The server offered {fingerprint}, but {file} line {lines} holds another key. Someone may be intercepting the connection (man-in-the-middle), or the vendor reinstalled the host: confirm the new key with the vendor out of band before editing {file}."
    )]
    HostKeyChanged {
        /// `host:port`.
        addr: String,
        /// The offered key's fingerprint.
        fingerprint: String,
        /// The known_hosts file.
        file: String,
        /// Lines of the keys on record.
        lines: String,
    },
    /// The host's key is revoked.
    #[error("host key of {addr} ({fingerprint}) is marked @revoked in {file} line {line}: refused")]
    HostKeyRevoked {
        /// `host:port`.
        addr: String,
        /// Fingerprint.
        fingerprint: String,
        /// The known_hosts file.
        file: String,
        /// The line.
        line: usize,
    },
    /// The known_hosts file cannot be read or written.
    #[error("cannot use known_hosts file {file}: {source}")]
    KnownHosts {
        /// The file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key file cannot be loaded.
    #[error("cannot load private key {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The server refused the login.
    #[error("{user}@{addr}: authentication with {how} failed")]
    AuthFailed {
        /// User.
        user: String,
        /// `host:port`.
        addr: String,
        /// key FILE or password.
        how: String,
    },
    /// The server offers only algorithms boyong does not enable.
    #[error("{addr}: no common {kind} algorithm (ours: {ours}; the server's: {theirs}). {fix}")]
    NoCommonAlgorithm {
        /// What to do.
        fix: String,
        /// `host:port`.
        addr: String,
        /// kex, cipher, mac, host key.
        kind: String,
        /// Ours.
        ours: String,
        /// Theirs.
        theirs: String,
    },
    /// The connection dropped, or another protocol error.
    #[error("{addr}: {what}")]
    Protocol {
        /// `host:port`.
        addr: String,
        /// What happened.
        what: String,
    },
}

impl SshError {
    /// Whether trying again may help (a dropped or timed-out connection).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::TimedOut { .. } | Self::Protocol { .. }
        )
    }
}
