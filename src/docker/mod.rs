//! The target's Docker Engine, through its API (bollard): images for now.
//!
//! Owns [`Docker`]: connecting (a Unix socket, `tcp://` with TLS client certificates, or
//! `ssh://` to a remote engine's socket through an SSH connection, `tunnel.rs`; version
//! negotiated), image lookup, streaming a build context into the build endpoint without a
//! temporary copy, and removing an image tag; and [`Docker::dial`], a TCP connection made
//! from the engine's host (through the SSH connection for `ssh://`), for every check that
//! reaches an address on the target. Every error names what to do.
//!
//! Over TCP the engine's certificate must chain to the playbook's `tls.ca` and nothing else
//! (not the system's roots, as `docker --tlsverify --tlscacert` does), and must name the
//! host; the client presents `tls.cert` and `tls.key`. Crypto is rustls on ring.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::playbook::DockerEndpoint;

mod commit;
mod containers;
mod exec;
mod fleet;
mod inflight;
mod inspect;
mod load;
mod logs;
mod network;
mod podman_volume;
mod services;
mod snapshot;
mod tunnel;

pub use commit::ImageConfig;
pub use containers::{ContainerSpec, ContainerState, VolumeStorage};
pub use exec::ExecOutput;
pub use fleet::Listed;
pub use inspect::{About, Published};
pub use load::Layer;
pub use logs::LogTail;
pub use services::{HEALTHCHECK_LABEL, ServiceNow, SwarmNode, TaskNow};

/// Seconds any one API request may take (a build or a long pull of output included).
const REQUEST_TIMEOUT_SECS: u64 = 600;
/// Seconds a TCP connection to a `tcp://` engine may take to open.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the engine refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine cannot be reached (not running, wrong socket, port closed).
    #[error("the Docker Engine is not answering at {endpoint}: {reason}")]
    Unreachable {
        /// Where.
        endpoint: String,
        /// Why, and how to check.
        reason: String,
    },
    /// The TLS set-up or handshake with a `tcp://` engine failed: a certificate file that
    /// cannot be read, a CA that did not sign the engine's certificate, a client
    /// certificate the engine refused. A retry will not help.
    #[error("TLS with the Docker Engine at {endpoint} failed: {reason}")]
    Tls {
        /// Where.
        endpoint: String,
        /// Why (file paths only, never a key's content).
        reason: String,
    },
    /// The build failed; its last output lines say why.
    #[error("the image build failed: {0}")]
    Build(String),
    /// Another API error.
    #[error("Docker Engine: {0}")]
    Api(String),
    /// The SSH connection to a remote engine's host failed: unknown or changed host key,
    /// login refused, forwarding refused. A retry will not help.
    #[error("SSH to the Docker Engine at {endpoint}: {reason}")]
    Ssh {
        /// Where.
        endpoint: String,
        /// Why, and what to do.
        reason: String,
    },
}

/// A byte stream to an address on the target host (a TCP connection, or an SSH channel).
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}
/// A connection made by [`Docker::dial`].
pub type Conn = Box<dyn Stream>;

/// A connected engine.
#[expect(
    clippy::struct_field_names,
    reason = "`docker` is bollard's client, used as `self.docker` in every module here"
)]
pub struct Docker {
    docker: bollard::Docker,
    endpoint: String,
    /// For `ssh://`: the SSH connection every request and [`Docker::dial`] goes through.
    tunnel: Option<tunnel::Tunnel>,
    /// Whether the engine is Podman's Docker-compatible service (`podman system service`),
    /// learned once from `/version` at connect: its differences are handled where they
    /// matter (docs/targets.md).
    podman: bool,
    /// The requests that make or change something, in flight (`inflight.rs`).
    changes: inflight::Inflight,
}

impl Docker {
    /// Connects, negotiates the API version and pings.
    ///
    /// # Errors
    /// [`DockerError::Unreachable`]: the socket is missing or nothing answers;
    /// [`DockerError::Tls`]: a certificate file is unusable or the handshake failed.
    pub async fn connect(endpoint: &DockerEndpoint) -> Result<Self, DockerError> {
        let name = endpoint.to_string();
        let mut tunnel = None;
        let docker = match endpoint {
            DockerEndpoint::Ssh {
                user,
                host,
                port,
                identity,
                known_hosts,
                socket,
            } => {
                let t = tunnel::Tunnel::open(&tunnel::Remote {
                    user,
                    host,
                    port: *port,
                    identity,
                    known_hosts,
                })
                .await
                .map_err(|e| ssh_error(&name, known_hosts, e))?;
                let client = t
                    .client(&socket.display().to_string(), REQUEST_TIMEOUT_SECS)
                    .map_err(|e| connect_error(endpoint, &name, &e))?;
                tunnel = Some(t);
                client
            }
            DockerEndpoint::Unix(path) => bollard::Docker::connect_with_unix(
                &path.display().to_string(),
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            )
            .map_err(|e| connect_error(endpoint, &name, &e))?,
            DockerEndpoint::Tcp {
                host,
                port,
                ca,
                cert,
                key,
            } => {
                let tls = |reason: String| DockerError::Tls {
                    endpoint: name.clone(),
                    reason,
                };
                let config = tls_config(ca, cert, key).map_err(tls)?;
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only()
                    .enable_http1()
                    .wrap_connector({
                        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
                        http.enforce_http(false);
                        http.set_nodelay(true);
                        http.set_connect_timeout(Some(TCP_CONNECT_TIMEOUT));
                        http
                    });
                // As bollard's own transports: no idle connection kept between requests.
                let client = Arc::new(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .pool_max_idle_per_host(0)
                    .build(connector),
                );
                bollard::Docker::connect_with_custom_transport(
                    move |req: bollard::BollardRequest| {
                        let client = Arc::clone(&client);
                        async move {
                            client
                                .request(req)
                                .await
                                .map_err(bollard::errors::Error::from)
                        }
                    },
                    Some(format!("https://{host}:{port}")),
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| connect_error(endpoint, &name, &e))?
            }
        };
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| connect_error(endpoint, &name, &e))?;
        docker
            .ping()
            .await
            .map_err(|e| connect_error(endpoint, &name, &e))?;
        let podman = match docker.version().await {
            Ok(v) => is_podman(&v),
            Err(e) => return Err(connect_error(endpoint, &name, &e)),
        };
        Ok(Self {
            docker,
            endpoint: name,
            tunnel,
            podman,
            changes: inflight::Inflight::new(),
        })
    }

    /// Waits until every request that makes or changes something has ended, those of a
    /// step that was stopped while waiting for one included: an undo calls this first, so
    /// that what it removes is not made again behind it.
    pub async fn settled(&self) {
        self.changes.settled().await;
    }

    /// What the requests that make or change something, still in flight, do (`load image
    /// web:1`), oldest first: what [`Docker::settled`] waits for.
    pub fn unsettled(&self) -> Vec<String> {
        self.changes.pending()
    }

    /// Runs `request`, given a clone of the client, as a change carried through even when
    /// the caller is dropped (`inflight.rs`): every request that makes or changes something.
    /// `what` it does, in a few words, for a wait that must say what it waits for.
    async fn change<T, F>(
        &self,
        what: String,
        request: impl FnOnce(bollard::Docker) -> F,
    ) -> Result<T, DockerError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, DockerError>> + Send + 'static,
    {
        self.changes.run(what, request(self.docker.clone())).await
    }

    /// Whether the engine is Podman's Docker-compatible service.
    pub fn is_podman(&self) -> bool {
        self.podman
    }

    /// The endpoint, as the playbook names it.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// For `ssh://`: the host key the engine's host proved it holds
    /// (`HOST:PORT ALGORITHM SHA256:…`).
    pub fn host_key(&self) -> Option<&str> {
        self.tunnel.as_ref().and_then(tunnel::Tunnel::host_key)
    }

    /// A TCP connection to `addr` (`HOST:PORT`) as the engine's host makes it: through the
    /// SSH connection (`direct-tcpip`) for an `ssh://` engine, so that `127.0.0.1` means
    /// the target host; from this machine otherwise. Nothing listening there is
    /// [`std::io::ErrorKind::ConnectionRefused`] either way.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn dial(&self, addr: &str) -> std::io::Result<Conn> {
        if let Some(t) = &self.tunnel {
            return t.dial(addr).await;
        }
        let s = tokio::net::TcpStream::connect(addr).await?;
        Ok(Box::new(s))
    }

    /// The id (`sha256:…`) of an image, or `None` if the engine does not have it.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn image_id(&self, name: &str) -> Result<Option<String>, DockerError> {
        match self.docker.inspect_image(name).await {
            Ok(i) => Ok(i.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(DockerError::Api(e.to_string())),
        }
    }

    /// The labels of an image.
    ///
    /// # Errors
    /// The image is missing, or an API error.
    pub async fn image_labels(&self, name: &str) -> Result<HashMap<String, String>, DockerError> {
        let i = self
            .docker
            .inspect_image(name)
            .await
            .map_err(|e| DockerError::Api(e.to_string()))?;
        Ok(i.config.and_then(|c| c.labels).unwrap_or_default())
    }

    /// Removes an image tag (and the image, if nothing else uses it). Gone already is fine.
    ///
    /// # Errors
    /// An API error other than "not found" (e.g. a container still uses it).
    pub async fn remove_image(&self, name: &str) -> Result<(), DockerError> {
        match self
            .docker
            .remove_image(
                name,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(DockerError::Api(e.to_string())),
        }
    }
}

/// Whether `/version` describes Podman's Docker-compatible service (a component named
/// "Podman Engine"; Docker's are "Engine", "containerd", "runc").
fn is_podman(v: &bollard::models::SystemVersion) -> bool {
    v.components
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"))
}

/// The client's TLS configuration: roots from `ca` only, the client certificate chain from
/// `cert` and its key from `key`, all PEM; ring's provider, TLS 1.2 and 1.3. An error
/// names the file (and the playbook field), never a key's bytes.
fn tls_config(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let read = |path: &Path, field: &str| {
        std::fs::read(path)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| format!("cannot read `{field}` {}: {e}", path.display()))
    };
    let certs = |path: &Path, field: &str| -> Result<Vec<CertificateDer<'static>>, String> {
        let bytes = read(path, field)?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{field}` {} is not valid PEM: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "`{field}` {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        Ok(certs)
    };

    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca, "target.tls.ca")? {
        roots.add(c).map_err(|e| {
            format!(
                "`target.tls.ca` {} holds a certificate that cannot be a CA: {e}",
                ca.display()
            )
        })?;
    }
    let chain = certs(cert, "target.tls.cert")?;
    let key_der = {
        let bytes = read(key, "target.tls.key")?;
        // The PEM error is not shown: it may quote the key's text.
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
            format!(
                "`target.tls.key` {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                key.display()
            )
        })?
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("no TLS version available: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| {
            format!(
                "the client certificate `target.tls.cert` {} and key `target.tls.key` {} cannot be used together: {e}",
                cert.display(),
                key.display()
            )
        })?;
    // A full handshake each time: some TLS terminators in front of an engine (socat,
    // OpenSSL servers without a session id context) fail a resumed session that carried a
    // client certificate. Requests are few; connections are not pooled anyway.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// A failure to connect, negotiate or ping, as one line: a TLS failure says which side
/// refused what; anything else says the engine does not answer and how to check.
fn connect_error(endpoint: &DockerEndpoint, name: &str, e: &bollard::errors::Error) -> DockerError {
    let causes = causes(e);
    if let Some(t) = causes
        .iter()
        .find_map(|c| c.downcast_ref::<rustls::Error>())
    {
        return DockerError::Tls {
            endpoint: name.to_string(),
            reason: tls_reason(endpoint, t),
        };
    }
    let why = match e {
        bollard::errors::Error::SocketNotFoundError(_) => "no such socket".to_string(),
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!(
            "something answers there, but not as the Docker API (HTTP {status_code}: {message})"
        ),
        bollard::errors::Error::RequestTimeoutError => {
            format!("no answer within {REQUEST_TIMEOUT_SECS} s")
        }
        _ => match causes
            .iter()
            .rev()
            .find_map(|c| c.downcast_ref::<std::io::Error>())
        {
            Some(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
                format!("{io} (run as root or as a member of the `docker` group)")
            }
            Some(io) => io.to_string(),
            None => causes
                .last()
                .map_or_else(|| e.to_string(), ToString::to_string),
        },
    };
    let check = match endpoint {
        DockerEndpoint::Unix(p) => format!(
            "is the engine running? Check with `docker -H unix://{} info`",
            p.display()
        ),
        DockerEndpoint::Tcp { host, port, .. } => format!(
            "is the engine running and listening there? Check with `docker --tlsverify -H tcp://{host}:{port} info` and the same certificates"
        ),
        DockerEndpoint::Ssh {
            user,
            host,
            port,
            socket,
            ..
        } => format!(
            "is the engine running there with its socket at {s}, may {user} use it (root or the `docker` group), and does that sshd allow forwarding (OpenSSH needs both `AllowStreamLocalForwarding` and `AllowTcpForwarding`, yes or local)? Check with `ssh -p {port} {user}@{host} docker -H unix://{s} info`",
            s = socket.display()
        ),
    };
    DockerError::Unreachable {
        endpoint: name.to_string(),
        reason: format!("{}; {check}", one_line(&why)),
    }
}

/// A failed SSH login to a remote engine's host, in the target's terms: an unknown host
/// key refused with its fingerprint and the line to add to `target.known_hosts`; a changed
/// one refused as a possible man-in-the-middle; an unreachable host as
/// [`DockerError::Unreachable`] (a retry may help).
fn ssh_error(name: &str, known_hosts: &Path, e: crate::ssh::SshError) -> DockerError {
    use crate::ssh::SshError as S;
    let file = known_hosts.display();
    let reason = match e {
        S::Unreachable { .. } | S::TimedOut { .. } => {
            return DockerError::Unreachable {
                endpoint: name.to_string(),
                reason: format!("{e}; is the host up and its sshd listening on that port?"),
            };
        }
        S::HostKeyUnknown {
            addr,
            fingerprint,
            line,
            ..
        } => format!(
            "host key of {addr} is not in `target.known_hosts` {file}: refused. Its {fingerprint}; after checking it with the server's administrators, add this line to {file}:\n{line}"
        ),
        S::HostKeyChanged {
            addr,
            fingerprint,
            lines,
            ..
        } => format!(
            "HOST KEY OF {addr} HAS CHANGED: refused. The server offered {fingerprint}, but `target.known_hosts` {file} line {lines} holds another key. Someone may be intercepting the connection (man-in-the-middle), or the server was reinstalled: confirm the new key with its administrators out of band before editing {file}."
        ),
        S::AuthFailed { .. } => format!(
            "{e}: is the public half of `target.identity` in that user's ~/.ssh/authorized_keys?"
        ),
        other => other.to_string(),
    };
    DockerError::Ssh {
        endpoint: name.to_string(),
        reason,
    }
}

/// `e` and its causes, outermost first. An `io::Error` that wraps another error is
/// followed by that error (its `source()` would skip it).
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = vec![e];
    let mut cur = e;
    while out.len() < 16 {
        let next = match cur.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => cur.source(),
        };
        let Some(n) = next else { break };
        out.push(n);
        cur = n;
    }
    out
}

/// What a rustls error means here, with the file to look at.
fn tls_reason(endpoint: &DockerEndpoint, e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C};
    let DockerEndpoint::Tcp { host, ca, cert, .. } = endpoint else {
        return format!("TLS error: {e}");
    };
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "the engine's certificate is not signed by the CA in `target.tls.ca` {} ({e})",
            ca.display()
        ),
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => format!(
            "the engine's certificate does not name {host} (its subjectAltName must list it) ({e})"
        ),
        rustls::Error::InvalidCertificate(_) => {
            format!("the engine's certificate is not acceptable: {e}")
        }
        rustls::Error::AlertReceived(
            A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateRequired,
        ) => format!(
            "the engine refused the client certificate `target.tls.cert` {} ({e}); is it signed by the CA the engine trusts (its --tlscacert)?",
            cert.display()
        ),
        _ => format!("the TLS handshake failed: {e}"),
    }
}

/// Text on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
