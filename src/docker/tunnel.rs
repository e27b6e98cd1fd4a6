//! The Docker API of a remote engine over SSH (`target.docker: ssh://user@host[:port]`).
//!
//! One SSH connection per engine ([`Session`]: strict host keys, key auth, keepalives),
//! multiplexing many channels: each API request opens its own
//! `direct-streamlocal@openssh.com` channel to the engine's socket on the remote host and
//! speaks one HTTP/1.1 exchange on it (upgraded for an exec's attached streams), as
//! bollard's own transports keep no idle connection. Nothing runs on the far side but
//! sshd: no `docker` CLI, no socat. [`Tunnel::dial`] opens `direct-tcpip` channels, so
//! that addresses the playbook gives for the target (a health check's `127.0.0.1:8080`, a
//! container's address, the front proxy's listener) are reached as the remote host sees
//! them, not on this machine.
//!
//! A connection that drops between requests (the server's sshd restarted, a NAT table
//! forgot it, a keepalive went unanswered) is made again, with the same strict host-key
//! check, when the next channel is to be opened: the request that found it gone is sent
//! on the new one. A request is never sent twice: one whose channel had opened is not
//! retried, whatever became of the connection afterwards.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;

use crate::ssh::{Auth, Session, SshError, Target};

/// Limit on each phase of the SSH connection (TCP connect, key exchange, login).
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The SSH connection to a remote engine's host.
#[derive(Clone)]
pub(super) struct Tunnel {
    link: Arc<Link>,
}

/// The connection of the moment, and how to make it again.
struct Link {
    target: Target,
    current: tokio::sync::Mutex<Arc<Session>>,
    /// The host key the first connection's server proved it holds.
    host_key: Option<String>,
}

/// Where and how to log in, and the engine's socket there.
pub(super) struct Remote<'a> {
    pub user: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub identity: &'a std::path::Path,
    pub known_hosts: &'a std::path::Path,
}

impl Link {
    /// The open connection: the current one, or a new one when it is closed or is
    /// `failed` (the one a channel just could not be opened on because it dropped).
    async fn session(&self, failed: Option<&Arc<Session>>) -> std::io::Result<Arc<Session>> {
        let mut current = self.current.lock().await;
        let gone = current.is_closed() || failed.is_some_and(|f| Arc::ptr_eq(f, &current));
        if gone {
            tracing::warn!(
                "the SSH connection to the engine's host {} dropped: connecting again",
                current.addr()
            );
            let again = Session::connect(&self.target).await.map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    format!("the SSH connection to the engine's host dropped; connecting again failed: {e}"),
                )
            })?;
            *current = Arc::new(again);
        }
        Ok(Arc::clone(&current))
    }

    /// A channel opened by `open` on the connection, made again once if it had dropped.
    async fn channel<T, F, Fut>(&self, open: F) -> std::io::Result<T>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<T>>,
    {
        let session = self.session(None).await?;
        match open(Arc::clone(&session)).await {
            Err(e) if dropped(&session, &e) => open(self.session(Some(&session)).await?).await,
            other => other,
        }
    }
}

/// Whether a channel could not be opened because the connection is gone (not because the
/// server refused it: that answer is the same on any connection).
fn dropped(session: &Session, e: &std::io::Error) -> bool {
    session.is_closed() || e.kind() == std::io::ErrorKind::ConnectionAborted
}

impl Tunnel {
    /// Logs in (the host key checked against `known_hosts` only; never added).
    pub(super) async fn open(r: &Remote<'_>) -> Result<Self, SshError> {
        let target = Target {
            host: r.host.to_string(),
            port: r.port,
            user: r.user.to_string(),
            auth: Auth::Key {
                path: r.identity.to_path_buf(),
                passphrase: None,
            },
            known_hosts: r.known_hosts.to_path_buf(),
            accept_new: false,
            connect_timeout: SSH_CONNECT_TIMEOUT,
            legacy_algorithms: Vec::new(),
        };
        let session = Session::connect(&target).await?;
        Ok(Self {
            link: Arc::new(Link {
                host_key: session.host_key.clone(),
                current: tokio::sync::Mutex::new(Arc::new(session)),
                target,
            }),
        })
    }

    /// The host key the server proved it holds (`HOST:PORT ALGORITHM SHA256:…`).
    pub(super) fn host_key(&self) -> Option<&str> {
        self.link.host_key.as_deref()
    }

    /// bollard on this connection: each request on a new channel to `socket`.
    pub(super) fn client(
        &self,
        socket: &str,
        timeout_secs: u64,
    ) -> Result<bollard::Docker, bollard::errors::Error> {
        let link = Arc::clone(&self.link);
        let socket = socket.to_string();
        bollard::Docker::connect_with_custom_transport(
            move |req: bollard::BollardRequest| {
                let link = Arc::clone(&link);
                let socket = socket.clone();
                async move {
                    let stream = link
                        .channel(|s| {
                            let socket = socket.clone();
                            async move { s.open_socket(&socket).await }
                        })
                        .await?;
                    let (mut send, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                    tokio::spawn(async move {
                        // Ends when the exchange (or the upgraded stream) is done.
                        let _ = conn.with_upgrades().await;
                    });
                    let res = send.send_request(origin_form(req)?).await?;
                    Ok(res)
                }
            },
            Some("http://docker"),
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        )
    }

    /// A TCP connection to `addr` (`HOST:PORT`) as the remote host makes it.
    pub(super) async fn dial(&self, addr: &str) -> std::io::Result<super::Conn> {
        let (host, port) = split_addr(addr)?;
        let stream = self
            .link
            .channel(|s| async move { s.open_tcp(host, port).await })
            .await?;
        Ok(Box::new(stream))
    }
}

/// The request with its URI in origin form (`/v1.41/…`) and a `Host` header: what an
/// HTTP/1.1 server expects on a connection of its own.
fn origin_form(
    req: bollard::BollardRequest,
) -> Result<bollard::BollardRequest, bollard::errors::Error> {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str)
        .to_string();
    parts.uri = path.parse::<hyper::Uri>()?;
    parts
        .headers
        .entry(hyper::header::HOST)
        .or_insert(hyper::header::HeaderValue::from_static("docker"));
    Ok(bollard::BollardRequest::from_parts(parts, body))
}

/// `HOST:PORT` (an IPv6 host in brackets) as its parts.
pub(super) fn split_addr(addr: &str) -> std::io::Result<(&str, u16)> {
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{addr}` is not HOST:PORT"),
        )
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::split_addr;

    #[test]
    fn an_address_splits_into_host_and_port() {
        assert_eq!(split_addr("127.0.0.1:8080").unwrap(), ("127.0.0.1", 8080));
        assert_eq!(split_addr("[::1]:80").unwrap(), ("::1", 80));
        assert!(split_addr("127.0.0.1").is_err());
        assert!(split_addr(":80").is_err());
        assert!(split_addr("h:x").is_err());
    }
}
