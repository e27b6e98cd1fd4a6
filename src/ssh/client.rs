//! The SSH client: connect with time limits, check the host key strictly, authenticate,
//! and run commands whose output streams back.
//!
//! Owns [`Target`] (where and how to log in), [`Session`] and [`Exec`]. Invariants: the
//! host key is decided by [`known_hosts::check`] alone; a command's stdin is the only
//! way a secret is sent (the caller builds the command line without secrets); an exec
//! is read until its channel closes, since the exit status can follow EOF.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, Handle, Msg};
use russh::keys::ssh_key::PublicKey;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, ChannelStream};

use super::error::SshError;
use super::known_hosts::{self, Verdict};
use crate::secret::Secret;

/// How to log in.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A private key file, with its passphrase if it has one.
    Key {
        /// The key file.
        path: PathBuf,
        /// Its passphrase.
        passphrase: Option<Secret>,
    },
    /// A password.
    Password(Secret),
}

/// A host to log in to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// How.
    pub auth: Auth,
    /// The `known_hosts` file the host key must be in.
    pub known_hosts: PathBuf,
    /// Add the key of a host that has none on record (`--accept-new-host-key`).
    pub accept_new: bool,
    /// Limit on TCP connect, key exchange and authentication, each.
    pub connect_timeout: Duration,
    /// Old algorithms allowed for this host (names from
    /// [`LEGACY_ALGORITHMS`](crate::playbook::LEGACY_ALGORITHMS)), offered last.
    pub legacy_algorithms: Vec<String>,
}

/// What the host key check saw.
#[derive(Debug, Clone)]
struct Seen {
    key: PublicKey,
    verdict: Verdict,
}

struct Checker {
    host: String,
    port: u16,
    known: String,
    accept_new: bool,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Certificates are not trusted: judge the bare key inside.
            PublicKeyOrCertificate::Certificate(c) => PublicKey::from(c.public_key().clone()),
        };
        let verdict = known_hosts::check(&self.known, &self.host, self.port, &key);
        let ok = match &verdict {
            Verdict::Known { .. } => true,
            // Only a host with no key at all on record: a key of another algorithm for a
            // host we know may be an attacker's, and is never added.
            Verdict::Unknown { other_algorithms } => self.accept_new && other_algorithms.is_empty(),
            Verdict::Changed { .. } | Verdict::Revoked { .. } => false,
        };
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(Seen { key, verdict });
        }
        Ok(ok)
    }
}

/// A logged-in connection.
pub struct Session {
    handle: Handle<Checker>,
    addr: String,
    /// The known_hosts line added for a new host (`--accept-new-host-key`), to journal.
    pub accepted_new: Option<String>,
    /// The host key the server proved it holds: `HOST:PORT ALGORITHM SHA256:…`, to journal.
    pub host_key: Option<String>,
}

/// The client configuration: big windows for long links, AES-GCM first, keepalives, and
/// the legacy algorithms allowed for this host, offered last.
fn config(legacy: &[String], on_record: &[String]) -> client::Config {
    let mut preferred = russh::Preferred::default();
    // Ask first for the host key algorithms already on record for this host, so a host
    // with several keys shows the one we can check.
    let mut keys = preferred.key.to_vec();
    let recorded = |alg: &str| {
        on_record
            .iter()
            .any(|r| r == alg || (r == "ssh-rsa" && alg.starts_with("rsa-sha2-")))
    };
    keys.sort_by_key(|k| !recorded(k.as_ref()));
    preferred.key = Cow::Owned(keys);
    let has = |n: &str| legacy.iter().any(|l| l == n);
    let mut kex = preferred.kex.to_vec();
    for (name, k) in [
        ("diffie-hellman-group14-sha1", russh::kex::DH_G14_SHA1),
        (
            "diffie-hellman-group-exchange-sha1",
            russh::kex::DH_GEX_SHA1,
        ),
        ("diffie-hellman-group1-sha1", russh::kex::DH_G1_SHA1),
    ] {
        if has(name) {
            kex.push(k);
        }
    }
    preferred.kex = Cow::Owned(kex);
    if has("ssh-rsa") {
        let mut key = preferred.key.to_vec();
        key.push(russh::keys::Algorithm::Rsa { hash: None });
        preferred.key = Cow::Owned(key);
    }
    let mut mac = preferred.mac.to_vec();
    for (name, m) in [
        ("hmac-sha1", russh::mac::HMAC_SHA1),
        ("hmac-sha1-etm@openssh.com", russh::mac::HMAC_SHA1_ETM),
    ] {
        if has(name) {
            mac.push(m);
        }
    }
    preferred.mac = Cow::Owned(mac);
    let mut ciphers: Vec<russh::cipher::Name> = preferred.cipher.to_vec();
    ciphers.sort_by_key(|c| match c.as_ref() {
        "aes128-gcm@openssh.com" => 0,
        "aes256-gcm@openssh.com" => 1,
        "chacha20-poly1305@openssh.com" => 2,
        _ => 3,
    });
    for (name, c) in [
        ("aes128-cbc", russh::cipher::AES_128_CBC),
        ("aes192-cbc", russh::cipher::AES_192_CBC),
        ("aes256-cbc", russh::cipher::AES_256_CBC),
    ] {
        if has(name) {
            ciphers.push(c);
        }
    }
    preferred.cipher = Cow::Owned(ciphers);
    client::Config {
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        channel_buffer_size: 256,
        preferred,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        inactivity_timeout: None,
        nodelay: true,
        ..client::Config::default()
    }
}

impl Session {
    /// Connects, checks the host key, and logs in.
    ///
    /// # Errors
    /// See [`SshError`]; each variant says what to do.
    pub async fn connect(t: &Target) -> Result<Self, SshError> {
        let addr = format!("{}:{}", t.host, t.port);
        let file = t.known_hosts.display().to_string();
        let known = match std::fs::read_to_string(&t.known_hosts) {
            Ok(k) => k,
            // A file not made yet holds no key: the host is unknown (refused with its
            // fingerprint and the line to add, or, with accept_new, recorded).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(SshError::KnownHosts { file, source }),
        };
        let limit = t.connect_timeout;
        let timed_out = |phase| SshError::TimedOut {
            addr: addr.clone(),
            phase,
            limit,
        };
        let stream = tokio::time::timeout(
            limit,
            tokio::net::TcpStream::connect((t.host.as_str(), t.port)),
        )
        .await
        .map_err(|_| timed_out("TCP connect"))?
        .map_err(|source| SshError::Unreachable {
            addr: addr.clone(),
            source,
        })?;
        // russh sets TCP_NODELAY only on a socket it opens itself (socket.rs).
        let stream = super::socket::QuickAck::new(stream);
        let on_record = known_hosts::algorithms_for(&known, &t.host, t.port);
        let seen = Arc::new(Mutex::new(None));
        let checker = Checker {
            host: t.host.clone(),
            port: t.port,
            known,
            accept_new: t.accept_new,
            seen: Arc::clone(&seen),
        };
        let connected = tokio::time::timeout(
            limit,
            client::connect_stream(
                Arc::new(config(&t.legacy_algorithms, &on_record)),
                // russh reads a packet's length, then the packet: two reads a packet
                // (32 KiB) straight from the socket. Buffered, one read takes many.
                tokio::io::BufReader::with_capacity(256 * 1024, stream),
                checker,
            ),
        )
        .await
        .map_err(|_| timed_out("key exchange"))?;
        let seen = seen.lock().ok().and_then(|s| s.clone());
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => return Err(connect_error(&addr, &file, t, seen, e)),
        };
        let host_key = seen.as_ref().map(|Seen { key, .. }| {
            format!(
                "{addr} {} {}",
                key.algorithm(),
                known_hosts::fingerprint(key)
            )
        });
        let mut accepted_new = None;
        if let Some(Seen {
            key,
            verdict: Verdict::Unknown { .. },
        }) = &seen
        {
            known_hosts::append(&t.known_hosts, &t.host, t.port, key).map_err(|source| {
                SshError::KnownHosts {
                    file: file.clone(),
                    source,
                }
            })?;
            accepted_new = Some(known_hosts::line_for(&t.host, t.port, key));
        }
        let auth = tokio::time::timeout(limit, authenticate(&mut handle, t))
            .await
            .map_err(|_| timed_out("authentication"))??;
        if !auth {
            return Err(SshError::AuthFailed {
                user: t.user.clone(),
                addr,
                how: match &t.auth {
                    Auth::Key { path, .. } => format!("key {}", path.display()),
                    Auth::Password(_) => "password".into(),
                },
            });
        }
        Ok(Self {
            handle,
            addr,
            accepted_new,
            host_key,
        })
    }

    /// Starts `command`; `stdin` (if any) is sent, then EOF. Read the output from the
    /// returned [`Exec`].
    ///
    /// # Errors
    /// The channel cannot be opened (the connection dropped).
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<Exec, SshError> {
        self.start(command, stdin, true).await
    }

    /// Starts `command` and sends `stdin` but leaves its stdin open, so that the remote
    /// side sees EOF only when the connection ends (a watcher there can then stop it).
    ///
    /// # Errors
    /// The channel cannot be opened (the connection dropped).
    pub async fn exec_held(&self, command: &str, stdin: &[u8]) -> Result<Exec, SshError> {
        self.start(command, Some(stdin), false).await
    }

    async fn start(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        eof: bool,
    ) -> Result<Exec, SshError> {
        let proto = |e: russh::Error| SshError::Protocol {
            addr: self.addr.clone(),
            what: e.to_string(),
        };
        let channel = self.handle.channel_open_session().await.map_err(proto)?;
        channel.exec(true, command).await.map_err(proto)?;
        if let Some(input) = stdin {
            channel
                .data_bytes(Bytes::copy_from_slice(input))
                .await
                .map_err(proto)?;
        }
        if eof {
            channel.eof().await.map_err(proto)?;
        }
        Ok(Exec {
            channel,
            addr: self.addr.clone(),
            exit: None,
        })
    }

    /// A stream to the Unix socket `path` on the remote host
    /// (`direct-streamlocal@openssh.com`; the server must allow `AllowStreamLocalForwarding`).
    ///
    /// # Errors
    /// The server refused the channel or could not connect to the socket (as
    /// [`std::io::ErrorKind::ConnectionRefused`] or `PermissionDenied`), or the connection
    /// dropped.
    pub async fn open_socket(&self, path: &str) -> std::io::Result<ChannelStream<Msg>> {
        self.handle
            .channel_open_direct_streamlocal(path)
            .await
            .map(Channel::into_stream)
            .map_err(|e| forward_error(&self.addr, &format!("the socket {path}"), e))
    }

    /// A TCP connection to `host:port` made by the remote host (`direct-tcpip`; the server
    /// must allow `AllowTcpForwarding`).
    ///
    /// # Errors
    /// As [`Session::open_socket`]: nothing listens there (refused), forwarding is not
    /// allowed, or the connection dropped.
    pub async fn open_tcp(&self, host: &str, port: u16) -> std::io::Result<ChannelStream<Msg>> {
        self.handle
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await
            .map(Channel::into_stream)
            .map_err(|e| forward_error(&self.addr, &format!("{host}:{port}"), e))
    }

    /// Whether the connection is gone (the server closed it, the network dropped it, or a
    /// keepalive went unanswered): no channel can be opened on it any more.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Ends the connection politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

async fn authenticate(handle: &mut Handle<Checker>, t: &Target) -> Result<bool, SshError> {
    let addr = format!("{}:{}", t.host, t.port);
    let proto = |e: russh::Error| SshError::Protocol {
        addr: addr.clone(),
        what: e.to_string(),
    };
    match &t.auth {
        Auth::Key { path, passphrase } => {
            let key = russh::keys::load_secret_key(path, passphrase.as_ref().map(Secret::expose))
                .map_err(|e| SshError::KeyFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(proto)?
                .flatten();
            let r = handle
                .authenticate_publickey(&t.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                .await
                .map_err(proto)?;
            Ok(r.success())
        }
        Auth::Password(p) => {
            let r = handle
                .authenticate_password(&t.user, p.expose())
                .await
                .map_err(proto)?;
            Ok(r.success())
        }
    }
}

fn connect_error(
    addr: &str,
    file: &str,
    t: &Target,
    seen: Option<Seen>,
    e: russh::Error,
) -> SshError {
    match (seen, e) {
        (Some(Seen { key, verdict }), russh::Error::UnknownKey) => {
            let fingerprint = known_hosts::fingerprint(&key);
            match verdict {
                Verdict::Changed { lines } => SshError::HostKeyChanged {
                    addr: addr.into(),
                    fingerprint,
                    file: file.into(),
                    lines: lines
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                Verdict::Revoked { line } => SshError::HostKeyRevoked {
                    addr: addr.into(),
                    fingerprint,
                    file: file.into(),
                    line,
                },
                Verdict::Unknown { other_algorithms } => SshError::HostKeyUnknown {
                    addr: addr.into(),
                    fingerprint,
                    line: known_hosts::line_for(&t.host, t.port, &key),
                    file: file.into(),
                    others: if other_algorithms.is_empty() {
                        "\n(or run once with --accept-new-host-key)".into()
                    } else {
                        format!(
                            "\nKeys of other algorithms are on record for this host ({}), and the server offered {}: --accept-new-host-key does not apply; confirm the key with the vendor first",
                            other_algorithms.join(", "),
                            key.algorithm()
                        )
                    },
                },
                Verdict::Known { .. } => unreachable_verdict(addr),
            }
        }
        (_, russh::Error::NoCommonAlgo { kind, ours, theirs }) => SshError::NoCommonAlgorithm {
            fix: {
                let allowable: Vec<&str> = theirs
                    .iter()
                    .filter_map(|t| {
                        crate::playbook::LEGACY_ALGORITHMS
                            .iter()
                            .find(|l| **l == t.as_str())
                    })
                    .copied()
                    .collect();
                if allowable.is_empty() {
                    "boyong cannot speak any of the server's: the vendor must update its SSH server"
                        .into()
                } else {
                    format!(
                        "This old host can be allowed one of them, for it alone, in the playbook: `vendor.legacy_algorithms: [{}]` (weaker; ask the vendor to update its SSH server)",
                        allowable[0]
                    )
                }
            },
            addr: addr.into(),
            kind: format!("{kind:?}").to_lowercase(),
            ours: ours.join(", "),
            theirs: theirs.join(", "),
        },
        (_, russh::Error::IO(source)) => SshError::Unreachable {
            addr: addr.into(),
            source,
        },
        (_, e) => SshError::Protocol {
            addr: addr.into(),
            what: e.to_string(),
        },
    }
}

/// A refused or failed forwarding channel as an I/O error of the kind a local connection
/// would give (refused stays refused: a health check's "not listening yet").
fn forward_error(addr: &str, to: &str, e: russh::Error) -> std::io::Error {
    use russh::ChannelOpenFailure as F;
    use std::io::{Error, ErrorKind as K};
    match e {
        // OpenSSH answers so both when nothing listens and when it does not permit the
        // forwarding (for a socket, always: `AllowTcpForwarding no` refuses sockets too).
        russh::Error::ChannelOpenFailure(F::ConnectFailed) => Error::new(
            K::ConnectionRefused,
            format!(
                "{addr} could not connect to {to} (refused, missing, or not permitted by that sshd)"
            ),
        ),
        russh::Error::ChannelOpenFailure(F::AdministrativelyProhibited) => Error::new(
            K::PermissionDenied,
            format!(
                "the SSH server {addr} refuses to forward to {to} (its AllowTcpForwarding / AllowStreamLocalForwarding, or the login's restrictions)"
            ),
        ),
        russh::Error::ChannelOpenFailure(f) => Error::other(format!(
            "the SSH server {addr} did not open a channel to {to}: {f:?}"
        )),
        other => Error::new(
            K::ConnectionAborted,
            format!("the SSH connection to {addr}: {other}"),
        ),
    }
}

fn unreachable_verdict(addr: &str) -> SshError {
    SshError::Protocol {
        addr: addr.into(),
        what: "the connection was refused after its host key was accepted".into(),
    }
}

/// A piece of a running command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Bytes on stdout.
    Stdout(Bytes),
    /// Bytes on stderr.
    Stderr(Bytes),
}

/// A running remote command.
pub struct Exec {
    channel: Channel<Msg>,
    addr: String,
    exit: Option<u32>,
}

impl Exec {
    /// The next piece of output; `None` once the channel closed.
    pub async fn next(&mut self) -> Option<Out> {
        loop {
            match self.channel.wait().await? {
                ChannelMsg::Data { data } => return Some(Out::Stdout(data)),
                ChannelMsg::ExtendedData { data, ext: 1 } => return Some(Out::Stderr(data)),
                ChannelMsg::ExitStatus { exit_status } => self.exit = Some(exit_status),
                ChannelMsg::ExitSignal { .. } => self.exit = Some(255),
                _ => {}
            }
        }
    }

    /// Sends `data` on the command's stdin (a command started with
    /// [`Session::exec_held`]).
    ///
    /// # Errors
    /// The connection dropped.
    pub async fn send(&self, data: &[u8]) -> Result<(), SshError> {
        self.channel
            .data_bytes(Bytes::copy_from_slice(data))
            .await
            .map_err(|e| SshError::Protocol {
                addr: self.addr.clone(),
                what: e.to_string(),
            })
    }

    /// Ends the command's stdin.
    ///
    /// # Errors
    /// The connection dropped.
    pub async fn eof(&self) -> Result<(), SshError> {
        self.channel.eof().await.map_err(|e| SshError::Protocol {
            addr: self.addr.clone(),
            what: e.to_string(),
        })
    }

    /// The exit status, once [`Exec::next`] returned `None`.
    ///
    /// # Errors
    /// The channel closed without an exit status: the connection dropped.
    pub fn exit_status(&self) -> Result<u32, SshError> {
        self.exit.ok_or_else(|| SshError::Protocol {
            addr: self.addr.clone(),
            what: "the connection dropped before the command finished (no exit status)".into(),
        })
    }
}
