//! The validated playbook: what every later stage takes.
//!
//! A [`Playbook`] exists only if its file passed every rule of the format: ids are
//! unique, references point at earlier steps of the right kind, every `{{ vars.X }}` is
//! resolved (plain values substituted; secrets kept as references in [`Template`]s),
//! durations, sizes and ports are parsed, paths are resolved against the playbook's
//! folder, and hardened container defaults are filled in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::secret::SecretDef;
use super::template::Template;
use super::units::{PortMap, Size, Span};

/// A playbook that passed validation.
#[derive(Debug, Clone, Serialize)]
pub struct Playbook {
    /// The file it was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// The app's identity.
    pub app: String,
    /// Free text.
    pub description: Option<String>,
    /// The vendor's host.
    pub vendor: Vendor,
    /// The target engine.
    pub target: Target,
    /// Declared secrets by name.
    pub secrets: BTreeMap<String, SecretDef>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// `decommission.after`: the minimum seconds between the migration's end and a
    /// decommission; `None`: the command's default.
    pub decommission_after: Option<u64>,
    /// What else `decommission:` names on the vendor host: crontab lines, services.
    pub decommission: Decommission,
    /// The `assess:` section: before and after, the same requests to both sites.
    pub assess: Option<super::assess::Assess>,
}

/// What a decommission removes besides the fetched paths and dumped databases: only
/// what the playbook names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decommission {
    /// Whole lines of the vendor login's crontab.
    pub crontab: Vec<String>,
    /// systemd system units.
    pub services: Vec<String>,
    /// The vendor login's systemd user units.
    pub user_services: Vec<String>,
}

/// The vendor's host.
#[derive(Debug, Clone, Serialize)]
pub struct Vendor {
    /// Host name or address.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// SSH user.
    pub user: String,
    /// How boyong authenticates.
    pub auth: VendorAuth,
    /// known_hosts file; `None` means the operator's `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// Old SSH algorithms allowed for this host (names from [`LEGACY_ALGORITHMS`]).
    pub legacy_algorithms: Vec<String>,
}

/// The old SSH algorithms a playbook may allow for one vendor host (SHA-1 key exchange
/// and MACs, SHA-1 RSA host keys, CBC ciphers). boyong offers none of them otherwise.
pub const LEGACY_ALGORITHMS: [&str; 9] = [
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group1-sha1",
    "ssh-rsa",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "hmac-sha1",
    "hmac-sha1-etm@openssh.com",
];

/// How boyong authenticates to the vendor's host.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VendorAuth {
    /// A private key file, with an optional passphrase.
    Key {
        /// The key file.
        identity: PathBuf,
        /// Its passphrase (a secret).
        passphrase: Option<Template>,
    },
    /// A password (a secret).
    Password(Template),
}

/// The target engine.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Where the Docker Engine API listens.
    pub docker: DockerEndpoint,
    /// The engine's shared front proxy (used by apps with a route).
    #[serde(default)]
    pub front: Front,
    /// The engine is a Swarm manager: deploys are services, restores database services.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub swarm: bool,
}

/// The target engine's shared front proxy: one nginx container, on its own network, that
/// serves every routed app by host name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Front {
    /// Its container (its network and config volume are named after it).
    pub name: String,
    /// Its image.
    pub image: String,
    /// HTTP listen address and port on the host.
    pub http: (String, u16),
    /// HTTPS listen address and port on the host.
    pub https: (String, u16),
}

impl Default for Front {
    fn default() -> Self {
        Self {
            name: "boyong-front".into(),
            image: "gov/front:1".into(),
            http: ("0.0.0.0".into(), 80),
            https: ("0.0.0.0".into(), 443),
        }
    }
}

impl Front {
    /// Its network.
    pub fn network(&self) -> String {
        self.name.clone()
    }
    /// Its config volume.
    pub fn volume(&self) -> String {
        format!("{}.conf", self.name)
    }
    /// The attachable overlay network on which it reaches Swarm services by name.
    pub fn swarm_network(&self) -> String {
        format!("{}-swarm", self.name)
    }
}

/// Where the Docker Engine API listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerEndpoint {
    /// A Unix socket.
    Unix(PathBuf),
    /// TCP with TLS client certificates.
    Tcp {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// CA certificate file.
        ca: PathBuf,
        /// Client certificate file.
        cert: PathBuf,
        /// Client key file.
        key: PathBuf,
    },
    /// The remote engine's Unix socket, through an SSH connection (one per engine; each
    /// API request on a channel of its own, `direct-streamlocal@openssh.com`).
    Ssh {
        /// The login on the remote host.
        user: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The private key file.
        identity: PathBuf,
        /// The known_hosts file the host key must be in.
        known_hosts: PathBuf,
        /// The engine's socket on the remote host.
        socket: PathBuf,
    },
}

/// The engine's socket where none is named.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

impl std::fmt::Display for DockerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp { host, port, .. } => write!(f, "tcp://{host}:{port} (TLS)"),
            Self::Ssh {
                user,
                host,
                port,
                socket,
                ..
            } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                write!(f, "ssh://{user}@{host}:{port}")?;
                if socket != std::path::Path::new(DEFAULT_DOCKER_SOCKET) {
                    write!(f, " (socket {})", socket.display())?;
                }
                Ok(())
            }
        }
    }
}

/// One step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Unique id.
    pub id: String,
    /// Retries after a failure.
    pub retries: u32,
    /// Wait before the first retry (doubled for each further one); `None`: the default.
    pub retry_delay: Option<Span>,
    /// Time limit.
    pub timeout: Option<Span>,
    /// What the step does.
    pub kind: StepKind,
}

/// What a step does: exactly one kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// Pull a tree or file from the vendor host.
    Fetch(Fetch),
    /// Dump a database on the vendor host.
    Dump(Dump),
    /// Run a command.
    Exec(Exec),
    /// Build an image.
    Build(Build),
    /// Load a dump into a database container.
    Restore(Restore),
    /// Cut over to a new container.
    Deploy(Box<Deploy>),
    /// Run the playbook's `assess:` section (its target possibly replaced).
    Assess(super::assess::Assess),
}

impl StepKind {
    /// The kind's name as written in playbooks.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fetch(_) => "fetch",
            Self::Dump(_) => "dump",
            Self::Exec(_) => "exec",
            Self::Build(_) => "build",
            Self::Restore(_) => "restore",
            Self::Deploy(_) => "deploy",
            Self::Assess(_) => "assess",
        }
    }
}

/// Pull a directory or one file from the vendor host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fetch {
    /// Absolute path on the vendor host.
    pub path: String,
    /// Excluded paths, relative to `path`.
    pub exclude: Vec<String>,
    /// The vendor's SHA256SUMS file.
    pub sha256sums: Option<String>,
    /// How a pull after an earlier verified one finds what changed.
    #[serde(default, skip_serializing_if = "Incremental::is_default")]
    pub incremental: Incremental,
}

/// `fetch.incremental`: how a pull after an earlier verified artifact of the same inputs
/// finds what changed on the vendor host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Incremental {
    /// Size, modification time, mode, kind and link target (`true`, the default).
    #[default]
    Stat,
    /// As `Stat`, and the SHA-256 (computed on the vendor host) of every file whose size
    /// and time are unchanged (`digest`: for hosts whose times lie).
    Digest,
    /// Always the whole tree (`false`).
    Off,
}

impl Incremental {
    /// The default (`true`): left out of a plan's JSON.
    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "serde's skip_serializing_if passes a reference"
    )]
    fn is_default(&self) -> bool {
        *self == Self::Stat
    }
}

/// Database engines boyong dumps and restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "Engine")]
pub enum DbEngine {
    /// MariaDB.
    Mariadb,
    /// MySQL.
    Mysql,
    /// PostgreSQL.
    Postgres,
}

impl DbEngine {
    /// The engine's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Mariadb | Self::Mysql => 3306,
            Self::Postgres => 5432,
        }
    }

    /// The engine's name, as people write it.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Mariadb => "MariaDB",
            Self::Mysql => "MySQL",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// The engine's dump tool.
    pub fn dump_tool(self) -> &'static str {
        match self {
            Self::Mariadb => "mariadb-dump",
            Self::Mysql => "mysqldump",
            Self::Postgres => "pg_dump",
        }
    }
}

/// Dump a database on the vendor host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dump {
    /// Engine.
    pub engine: DbEngine,
    /// Database.
    pub database: String,
    /// User.
    pub user: String,
    /// Password (a secret), if the database needs one.
    pub password: Option<Template>,
    /// Host as seen from the vendor host.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Where an exec step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecOn {
    /// The vendor host.
    Vendor,
    /// A container on the target.
    Container(String),
}

/// Run a command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exec {
    /// Command line.
    pub run: String,
    /// Undo command line.
    pub undo: Option<String>,
    /// Where.
    pub on: ExecOn,
    /// Environment (may hold secrets; sent off the command line).
    pub env: BTreeMap<String, Template>,
    /// The freeze of the cut-over: the run reports the window from this step's end to
    /// the next deploy serving.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub freeze: bool,
}

/// Build an image from artifacts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    /// Base image.
    pub base: String,
    /// (fetch step id, absolute destination in the image), sorted by step id.
    pub copy: Vec<(String, String)>,
    /// RUN commands.
    pub run: Vec<String>,
    /// USER.
    pub user: Option<String>,
    /// Owner of the copied trees (`COPY --chown`); `None`: root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// WORKDIR.
    pub workdir: Option<String>,
    /// ENV.
    pub env: BTreeMap<String, String>,
    /// CMD.
    pub cmd: Option<Vec<String>>,
    /// EXPOSE.
    pub expose: Vec<u16>,
    /// Tag; `None` means `boyong/APP-STEP:RUN`.
    pub tag: Option<String>,
    /// Paths in the image where credentials may stay (the playbook says so).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_secrets_in: Vec<String>,
    /// Fetched files left out of the image because a deploy delivers them:
    /// `(fetch step, path in the artifact, deploy step)`. Filled in by validation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omit: Vec<(String, String, String)>,
}

/// Load a dump into a database container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restore {
    /// The dump step.
    pub from: String,
    /// Database server image.
    pub image: String,
    /// Container name.
    pub name: String,
    /// Data volume.
    pub volume: String,
    /// Network.
    pub network: Option<String>,
    /// Password (a secret).
    pub password: Template,
    /// Overwrite an existing volume after snapshotting it.
    pub replace: bool,
    /// With `target.swarm`: a database service of one task, pinned with its volume to
    /// the node boyong talks to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub service: bool,
    /// Search-and-replace of the app's own URL in its data, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<Rewrite>,
}

/// One search-and-replace of a restore's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    /// Old text.
    pub from: String,
    /// New text.
    pub to: String,
}

/// The image a deploy runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSource {
    /// The image built by this build step.
    Build(String),
    /// An image reference that exists on the target.
    Reference(String),
}

/// A named volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// Volume name.
    pub volume: String,
    /// Absolute path in the container.
    pub path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Cut over to a new container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deploy {
    /// The image.
    pub image: ImageSource,
    /// Container name.
    pub name: String,
    /// Network.
    pub network: Option<String>,
    /// Published ports.
    pub ports: Vec<PortMap>,
    /// Environment (may hold secrets).
    pub env: BTreeMap<String, Template>,
    /// Volumes.
    pub volumes: Vec<VolumeMount>,
    /// Health gate.
    pub health: Health,
    /// Hardening.
    pub security: Security,
    /// Previous releases kept for rollback.
    pub keep: u32,
    /// How long the current release gets to stop (SIGTERM, then SIGKILL) at a cut-over.
    #[serde(default = "stop_grace_default")]
    pub stop_grace: Span,
    /// Files delivered into the container at deploy time (never into an image layer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DeployFile>,
    /// With `target.swarm`: run as a Swarm service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// Served through the front proxy under a host name (no published port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
}

/// A deploy as a Docker Swarm service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Tasks.
    pub replicas: u32,
    /// Placement constraints.
    pub placement: Vec<String>,
    /// How long each updated task is watched for a failure.
    pub monitor: Span,
}

/// An app's route on the target's front proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The host name.
    pub host: String,
    /// The app's port inside its container.
    pub port: u16,
    /// Certificate and key (PEM), when served over HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouteTls>,
    /// Plain HTTP redirected to HTTPS (with `tls`).
    pub redirect_http: bool,
    /// How long the old release serves its requests after the switch.
    pub drain: Span,
    /// The playbook's assessment runs against the new release before the switch.
    #[serde(default)]
    pub assess: bool,
}

/// A route's certificate and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTls {
    /// Certificate chain, PEM.
    pub cert: Template,
    /// Private key, PEM (a secret).
    pub key: Template,
}

/// A file the app reads, delivered at deploy time: its bytes are made on the target's
/// side from the playbook (and the verified artifact, for `replace`), kept in a volume of
/// the release, and mounted read-only over the image's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployFile {
    /// Absolute path in the container.
    pub path: String,
    /// Where its text comes from.
    pub source: FileSource,
    /// Owner, numeric.
    pub uid: u32,
    /// Group, numeric.
    pub gid: u32,
    /// Mode bits.
    pub mode: u32,
    /// The fetched file this one stands for, when `path` lies in a tree the deploy's
    /// build copies: `(fetch step, path in the artifact)`. The build leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<(String, String)>,
}

/// Where a delivered file's text comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileSource {
    /// A local template file (its name as written), read when the playbook was checked.
    Template {
        /// The file, as the playbook names it.
        file: String,
        /// Its text, with variables (secrets stay references).
        text: Template,
    },
    /// Inline text.
    Content(Template),
    /// The fetched file, edited: `(find, with)` in order.
    Replace(Vec<(Template, Template)>),
}

/// What "healthy" means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheck {
    /// An HTTP GET answered with this status.
    Http {
        /// URL.
        url: String,
        /// Expected status.
        expect_status: u16,
        /// The `Host` header sent, when not the URL's authority: a routed release is asked
        /// with its route's host name, as the front proxy will ask it (an app with canonical
        /// redirects, WordPress, answers any other name with a redirect).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// A TCP connection accepted.
    Tcp(String),
    /// A command in the container exits 0.
    Cmd(Vec<String>),
    /// No check given: the container keeps running.
    Running,
}

/// The health gate of a cut-over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The check.
    pub check: HealthCheck,
    /// How long to wait.
    pub timeout: Span,
    /// Time between checks.
    pub interval: Span,
}

/// Docker restart policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    No,
    /// Restart when it exits non-zero.
    OnFailure,
    /// Always restart.
    Always,
    /// Restart unless stopped by an operator.
    UnlessStopped,
}

/// Container hardening; the defaults are the hardened values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// Read-only root file system.
    pub read_only: bool,
    /// no-new-privileges.
    pub no_new_privileges: bool,
    /// Capabilities added back after dropping all.
    pub cap_add: Vec<String>,
    /// Memory limit.
    pub memory: Size,
    /// Process limit.
    pub pids: u32,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Writable tmpfs mounts.
    pub tmpfs: Vec<String>,
    /// json-file log size before rotation.
    pub log_max_size: Size,
    /// Rotated log files kept.
    pub log_max_files: u32,
    /// The engine's init (docker-init, tini) as PID 1, so SIGTERM reaches the app.
    #[serde(default = "init_default")]
    pub init: bool,
}

fn stop_grace_default() -> Span {
    Span::secs(10)
}

const fn init_default() -> bool {
    true
}

impl Default for Security {
    fn default() -> Self {
        Self {
            read_only: true,
            no_new_privileges: true,
            cap_add: Vec::new(),
            memory: Size(512 << 20),
            pids: 256,
            restart: RestartPolicy::UnlessStopped,
            tmpfs: vec!["/tmp".into()],
            init: true,
            log_max_size: Size(10 << 20),
            log_max_files: 3,
        }
    }
}
