//! The playbook as written: serde types with a location on every field.
//!
//! Owns: the shape of format version 1 (field names, nesting, scalar types). The JSON
//! Schema printed by `boyong schema` is generated from these types, and the shape check
//! (`shape.rs`) enforces that same schema, so editors and boyong agree by construction.
//! Nothing here is validated beyond shape: see `validate.rs`. Doc comments become the
//! schema's descriptions.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::model::{DbEngine, RestartPolicy};
use super::yaml::{Key, Sp};

/// A boyong playbook: how one application moves from its vendor's host to the
/// government's server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "boyong playbook, format version 1")]
pub struct RawPlaybook {
    /// Format version; only 1 exists.
    pub version: Sp<u64>,
    /// The app's identity everywhere: `[a-z0-9][a-z0-9-]{0,62}`.
    pub app: Sp<String>,
    /// Free text shown in plans and reports.
    pub description: Option<Sp<String>>,
    /// The source host, reached over SSH.
    pub vendor: Sp<RawVendor>,
    /// The Docker Engine API of the government server.
    pub target: Option<Sp<RawTarget>>,
    /// Values for `{{ vars.NAME }}` in string fields; secrets come from `{ env: NAME }` or `{ file: PATH }`.
    #[serde(default)]
    pub vars: BTreeMap<String, Sp<RawValue>>,
    /// The steps, run in order.
    pub steps: Sp<Vec<Sp<RawStep>>>,
    /// After the migration: when the vendor's copy may be deleted (`boyong decommission`).
    pub decommission: Option<Sp<RawDecommission>>,
    /// Before and after: the same requests against the vendor's site and the migrated one
    /// (`boyong assess`).
    pub assess: Option<Sp<RawAssess>>,
}

/// When `boyong decommission` may delete the vendor's copy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Decommission")]
pub struct RawDecommission {
    /// The minimum time since the migration run ended, e.g. `7d`, `36h`, or `0` for none;
    /// default 7d. `--min-age` on the command line overrides it.
    pub after: Option<Sp<String>>,
    /// Lines removed from the vendor login's own crontab (as `crontab -l` lists it), each
    /// matched exactly, whole line; the other lines stay.
    #[serde(default)]
    pub crontab: Vec<Sp<String>>,
    /// systemd system units stopped and disabled, e.g. `perizinan-worker.service`; a
    /// decommission that names one is refused unless the vendor login may manage it.
    #[serde(default)]
    pub services: Vec<Sp<String>>,
    /// The vendor login's own systemd units (`systemctl --user`), stopped and disabled.
    #[serde(default)]
    pub user_services: Vec<Sp<String>>,
}

/// The assessment: the same requests sent to the vendor's site and to the migrated one,
/// interleaved, compared by status, redirect, content and latency.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Assess")]
pub struct RawAssess {
    /// The vendor's site, `http://host[:port][/base]` (only `http://`).
    pub vendor_url: Sp<String>,
    /// The migrated site, `http://host[:port][/base]` (only `http://`).
    pub target_url: Sp<String>,
    /// Paths requested with GET, e.g. `["/", "/?p=8"]`; relative to each URL's base.
    #[serde(default)]
    pub paths: Vec<Sp<String>>,
    /// Requests with a method, headers or a body.
    #[serde(default)]
    pub requests: Vec<Sp<RawAssessRequest>>,
    /// Up to this many more pages of the vendor's site, found by following its
    /// same-origin links from the base page (GET, at `rate`, within `budget`); default 0.
    pub crawl: Option<Sp<u32>>,
    /// Headers sent with every request to both sides; `Cookie` and `Authorization` values
    /// are never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, Sp<String>>,
    /// What is made equal before bodies are compared.
    pub normalize: Option<Sp<RawNormalize>>,
    /// Measured requests per path and side; default 20 (at most 1000).
    pub repeat: Option<Sp<u32>>,
    /// Unmeasured requests per path and side first; default 2.
    pub warmup: Option<Sp<u32>>,
    /// Paths assessed at once; default 4 (at most 64).
    pub concurrency: Option<Sp<u32>>,
    /// Requests per second at most against the vendor; default 20 (at most 10000).
    pub rate: Option<Sp<u32>>,
    /// Time budget of the whole assessment, e.g. `5m` (default).
    pub budget: Option<Sp<String>>,
    /// Bytes of a body read at most, e.g. `4m` (default); the rest is counted, not kept.
    pub max_body: Option<Sp<String>>,
    /// Allow methods other than GET and HEAD against the vendor; default false.
    pub allow_writes: Option<Sp<bool>>,
    /// What fails the assessment.
    pub thresholds: Option<Sp<RawThresholds>>,
}

/// One request of an assessment.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AssessRequest")]
pub struct RawAssessRequest {
    /// Path and query, starting with `/`.
    pub path: Sp<String>,
    /// `GET` (default), `HEAD`; others only with `allow_writes: true`.
    pub method: Option<Sp<String>>,
    /// Headers of this request only.
    #[serde(default)]
    pub headers: BTreeMap<String, Sp<String>>,
    /// Body sent.
    pub body: Option<Sp<String>>,
}

/// What is made equal before bodies are compared.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Normalize")]
pub struct RawNormalize {
    /// Replace each side's own origin (`host:port`) by `{origin}`; default true.
    pub origin: Option<Sp<bool>>,
    /// Per-response noise (nonces, tokens, times): the text between `after` and the next
    /// `until` is blanked.
    #[serde(default)]
    pub noise: Vec<Sp<RawNoise>>,
}

/// Noise in a body: what follows `after`, up to the next `until`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Noise")]
pub struct RawNoise {
    /// Text right before the noise, e.g. `nonce="`.
    pub after: Sp<String>,
    /// Text right after it, e.g. `"`.
    pub until: Sp<String>,
}

/// What fails an assessment (a status or redirect that differs always does).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Thresholds")]
pub struct RawThresholds {
    /// The target's p95 latency may be at most this times the vendor's (plus `latency_slack`);
    /// default 1.2.
    pub latency_p95_ratio: Option<Sp<f64>>,
    /// Added to the allowed p95, so that sub-millisecond noise on fast pages does not fail;
    /// default `10ms`.
    pub latency_slack: Option<Sp<String>>,
    /// `equal` (default): normalised bodies must be equal; `ignore`: not compared.
    pub content: Option<Sp<String>>,
}

/// The vendor's host, reached over SSH with a strict host key check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Vendor")]
pub struct RawVendor {
    /// Host name or address.
    pub host: Sp<String>,
    /// SSH port; default 22.
    pub port: Option<Sp<u16>>,
    /// SSH user.
    pub user: Sp<String>,
    /// Private key file (ed25519, ecdsa or rsa), relative to the playbook.
    pub identity: Option<Sp<String>>,
    /// Passphrase of the private key: a secret.
    pub passphrase: Option<Sp<RawValue>>,
    /// OpenSSH known_hosts file that the host key must match, relative to the playbook.
    pub known_hosts: Option<Sp<String>>,
    /// Password, instead of `identity`: a secret, never inline.
    pub password: Option<Sp<RawValue>>,
    /// Old SSH algorithms to allow for this host only, e.g. `[diffie-hellman-group14-sha1,
    /// ssh-rsa]`; none are allowed otherwise.
    #[serde(default)]
    pub legacy_algorithms: Vec<Sp<String>>,
}

/// Where the target Docker Engine listens.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Target")]
pub struct RawTarget {
    /// `unix:///var/run/docker.sock` (default), `tcp://host:2376` with `tls`, or
    /// `ssh://user@host[:port]` with `identity` and `known_hosts` (the remote engine's
    /// socket reached through the SSH connection).
    pub docker: Option<Sp<String>>,
    /// Client certificate files for `tcp://`.
    pub tls: Option<Sp<RawTls>>,
    /// For `ssh://`: the private key file (ed25519, ecdsa or rsa; no passphrase), relative
    /// to the playbook.
    pub identity: Option<Sp<String>>,
    /// For `ssh://`: the OpenSSH known_hosts file the server's key must be in (strict:
    /// an unknown or changed key is refused), relative to the playbook.
    pub known_hosts: Option<Sp<String>>,
    /// For `ssh://`: the engine's Unix socket on the remote host; default
    /// `/var/run/docker.sock`.
    pub socket: Option<Sp<String>>,
    /// The shared front proxy of this engine, for apps with a `deploy.route`.
    pub front: Option<Sp<RawFront>>,
    /// The engine is a Docker Swarm manager: each `deploy` becomes a Swarm service
    /// (rolling, start-first, health-gated updates the engine rolls back itself), each
    /// `restore` a database service pinned to one node with its volume; default false.
    pub swarm: Option<Sp<bool>>,
}

/// The target engine's shared front proxy (one per engine, for every routed app).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Front")]
pub struct RawFront {
    /// Its container's name; default `boyong-front`.
    pub name: Option<Sp<String>>,
    /// Its image (nginx, built by `fixtures/base-images.sh front`); default `gov/front:1`.
    pub image: Option<Sp<String>>,
    /// Where it listens for HTTP, `ADDRESS:PORT`; default `0.0.0.0:80`.
    pub http: Option<Sp<String>>,
    /// Where it listens for HTTPS, `ADDRESS:PORT`; default `0.0.0.0:443`.
    pub https: Option<Sp<String>>,
}

/// TLS files for a `tcp://` Docker endpoint, relative to the playbook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Tls")]
pub struct RawTls {
    /// CA certificate.
    pub ca: Sp<String>,
    /// Client certificate.
    pub cert: Sp<String>,
    /// Client key.
    pub key: Sp<String>,
}

/// One step: an `id`, exactly one kind, and optional `retries` and `timeout`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Step", transform = exactly_one_kind)]
pub struct RawStep {
    /// Unique id of the step; later steps name it to use its artifact.
    pub id: Sp<String>,
    /// How many times to retry on failure; default 2 for steps that read from the vendor, 0 otherwise.
    pub retries: Option<Sp<u32>>,
    /// Time limit, e.g. `10m`.
    pub timeout: Option<Sp<String>>,
    /// Wait before the first retry, e.g. `5s` (default 2s); doubled for each further one, at most 60s.
    pub retry_delay: Option<Sp<String>>,
    /// Pull a directory or a file from the vendor host.
    pub fetch: Option<Sp<RawFetch>>,
    /// Dump a database on the vendor host with its own tool.
    pub dump: Option<Sp<RawDump>>,
    /// Run a command on the vendor host or in a container on the target.
    pub exec: Option<Sp<RawExec>>,
    /// Build a container image from fetched artifacts.
    pub build: Option<Sp<RawBuild>>,
    /// Load a dump into a database container on the target.
    pub restore: Option<Sp<RawRestore>>,
    /// Cut the app over to a new container, gated by a health check.
    pub deploy: Option<Sp<RawDeploy>>,
    /// Run the top-level `assess:` section now; failing thresholds fail the step.
    pub assess: Option<Sp<RawAssessStep>>,
}

/// A step that runs the playbook's `assess:` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AssessStep")]
pub struct RawAssessStep {
    /// The migrated site for this step, instead of `assess.target_url` (e.g. the new
    /// release's internal address, before the switch).
    pub target_url: Option<Sp<String>>,
}

/// The step kinds, in the order they are documented.
pub const STEP_KINDS: [&str; 7] = [
    "fetch", "dump", "exec", "build", "restore", "deploy", "assess",
];

fn exactly_one_kind(schema: &mut schemars::Schema) {
    let alts: Vec<serde_json::Value> = STEP_KINDS
        .iter()
        .map(|k| serde_json::json!({ "required": [k] }))
        .collect();
    schema.insert("oneOf".into(), serde_json::Value::Array(alts));
}

/// Pull a directory (or one file) from the vendor host.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Fetch")]
pub struct RawFetch {
    /// Absolute path on the vendor host.
    pub path: Sp<String>,
    /// Paths to leave out, relative to `path`; a trailing `/` means a directory.
    #[serde(default)]
    pub exclude: Vec<Sp<String>>,
    /// The vendor's own SHA256SUMS file (absolute path); every listed file is checked.
    pub sha256sums: Option<Sp<String>>,
    /// A pull after an earlier verified one takes only what changed: `true` (the default:
    /// sizes and modification times), `digest` (the vendor hashes the files whose size
    /// and time are unchanged) or `false` (always the whole tree).
    pub incremental: Option<Sp<RawIncremental>>,
}

/// `fetch.incremental`: `true`, `false` or `digest`.
#[derive(Debug, JsonSchema, Clone, Copy)]
#[serde(untagged)]
#[schemars(rename = "Incremental")]
pub enum RawIncremental {
    /// `true`: sizes and times; `false`: always the whole tree.
    Flag(bool),
    /// `digest`: sizes, times and, for the files they say are unchanged, SHA-256.
    Digest(DigestWord),
}

impl<'de> Deserialize<'de> for RawIncremental {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Word;
        impl serde::de::Visitor<'_> for Word {
            type Value = RawIncremental;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`true`, `false` or `digest`")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(RawIncremental::Flag(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                if s == "digest" {
                    Ok(RawIncremental::Digest(DigestWord::Digest))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(s), &self))
                }
            }
        }
        d.deserialize_any(Word)
    }
}

/// The word `digest`.
#[derive(Debug, JsonSchema, Clone, Copy)]
pub enum DigestWord {
    /// The vendor hashes the candidates.
    #[serde(rename = "digest")]
    Digest,
}

/// Dump a database on the vendor host with its own native tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Dump")]
pub struct RawDump {
    /// `mariadb`, `mysql` or `postgres`.
    pub engine: Sp<DbEngine>,
    /// Database name.
    pub database: Sp<String>,
    /// Database user.
    pub user: Sp<String>,
    /// Database password: a secret.
    pub password: Option<Sp<RawValue>>,
    /// Database host as seen from the vendor host; default localhost.
    pub host: Option<Sp<String>>,
    /// Database port; default the engine's own.
    pub port: Option<Sp<u16>>,
}

/// Run a command on the vendor host (default) or inside a container on the target.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Exec")]
pub struct RawExec {
    /// The command (a shell command line).
    pub run: Sp<String>,
    /// What rollback runs; a step without `undo` has none.
    pub undo: Option<Sp<String>>,
    /// `vendor` (default) or `{ container: NAME }`.
    pub on: Option<Sp<RawExecOn>>,
    /// Environment for the command; secrets go here, never into `run`.
    #[serde(default)]
    pub env: BTreeMap<String, Sp<String>>,
    /// This command freezes the vendor app (maintenance mode) for the cut-over: the run
    /// reports the window from here to the new app serving. Needs `undo` (what rollback
    /// runs to unfreeze it); one per playbook.
    pub freeze: Option<Sp<bool>>,
}

/// Where an `exec` step runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "ExecOn")]
pub enum RawExecOn {
    /// On the vendor host.
    Vendor(OnVendor),
    /// Inside a container on the target.
    Container {
        /// The container's name.
        container: String,
    },
}

/// The word `vendor`.
#[derive(Debug, Deserialize, JsonSchema, Clone, Copy)]
pub enum OnVendor {
    /// On the vendor host.
    #[serde(rename = "vendor")]
    Vendor,
}

/// Repackage artifacts into a container image.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Build")]
pub struct RawBuild {
    /// An image that exists on the target engine.
    pub base: Sp<String>,
    /// Artifact of a `fetch` step (by id) -> absolute path in the image.
    #[serde(default)]
    pub copy: BTreeMap<Key, Sp<String>>,
    /// Build commands (RUN), in order.
    #[serde(default)]
    pub run: Vec<Sp<String>>,
    /// User the image runs as.
    pub user: Option<Sp<String>>,
    /// Owner of every copied file and directory: a user (and group) id or name, as `user`
    /// (e.g. `33:33`); default root. Set it to the user the app runs as when the vendor's
    /// files are not readable by others (a 0640 `wp-config.php`).
    pub owner: Option<Sp<String>>,
    /// Working directory.
    pub workdir: Option<Sp<String>>,
    /// Environment baked into the image (no secrets).
    #[serde(default)]
    pub env: BTreeMap<String, Sp<String>>,
    /// The command, as a list.
    pub cmd: Option<Vec<Sp<String>>>,
    /// Ports the image listens on.
    #[serde(default)]
    pub expose: Vec<Sp<u16>>,
    /// Image tag, e.g. `perizinan:2026.11.1`; default `boyong/APP-STEP:RUN`.
    pub tag: Option<Sp<String>>,
    /// Paths in the image (e.g. `/var/www/html/config.php`) where the vendor's
    /// credentials may stay. By default a build refuses to put a file holding credentials
    /// (a literal password in a well-known config file, or the value of one of the
    /// playbook's secrets in any file) into an image layer.
    #[serde(default)]
    pub allow_secrets_in: Vec<Sp<String>>,
}

/// Load a dump into a database container on the target.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Restore")]
pub struct RawRestore {
    /// The `dump` step whose artifact is loaded.
    pub from: Sp<String>,
    /// Database server image on the target engine.
    pub image: Sp<String>,
    /// Container name.
    pub name: Sp<String>,
    /// Named volume for the data.
    pub volume: Sp<String>,
    /// Network to attach to.
    pub network: Option<Sp<String>>,
    /// Password of the database's user: a secret.
    pub password: Sp<RawValue>,
    /// Overwrite an existing volume (after snapshotting it).
    pub replace: Option<Sp<bool>>,
    /// The app's own URL in its data, old to new (e.g. WordPress's `siteurl`): after the
    /// restored database is proven equal to the dump, every text column is searched and
    /// each `from` replaced by its `to`, safely for PHP-serialized values.
    #[serde(default)]
    pub rewrite: Vec<Sp<RawRewrite>>,
}

/// One search-and-replace of a restore's data.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Rewrite")]
pub struct RawRewrite {
    /// The text to find, e.g. the vendor's origin `https://izin.vendor.co.id`.
    pub from: Sp<String>,
    /// What it becomes, e.g. `https://izin.kota.go.id`.
    pub to: Sp<String>,
}

/// Cut the app over to a container built by a `build` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Deploy")]
pub struct RawDeploy {
    /// A build step's id, or a plain image reference.
    pub image: Sp<String>,
    /// Container name.
    pub name: Sp<String>,
    /// Network to attach to (created when missing).
    pub network: Option<Sp<String>>,
    /// Port mappings `[ADDRESS:]HOST:CONTAINER[/tcp|udp]`.
    #[serde(default)]
    pub ports: Vec<Sp<String>>,
    /// Environment of the container.
    #[serde(default)]
    pub env: BTreeMap<String, Sp<String>>,
    /// Named volumes `VOLUME:/path[:ro]`.
    #[serde(default)]
    pub volumes: Vec<Sp<String>>,
    /// The health gate of the cut-over.
    pub health: Option<Sp<RawHealth>>,
    /// Relaxations of the hardened defaults.
    pub security: Option<Sp<RawSecurity>>,
    /// How many previous releases to keep, stopped, for rollback; default 1.
    pub keep: Option<Sp<u32>>,
    /// How long the current release gets to stop at a cut-over (SIGTERM, then SIGKILL);
    /// default 10s.
    pub stop_grace: Option<Sp<String>>,
    /// Files the app reads (its config), delivered at deploy time into the container,
    /// never into an image layer: a template from the playbook's folder, inline content,
    /// or the fetched file edited by `replace`. They may hold secrets.
    #[serde(default)]
    pub files: Vec<Sp<RawFile>>,
    /// Serve the app through the target's shared front proxy under a host name, instead
    /// of publishing ports: the cut-over and rollback switch the route with no failed
    /// request.
    pub route: Option<Sp<RawRoute>>,
    /// With `target.swarm`: the Swarm service's replicas, placement and update monitor.
    pub service: Option<Sp<RawService>>,
}

/// A deploy as a Docker Swarm service (`target.swarm: true`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Service")]
pub struct RawService {
    /// How many tasks serve the app; default 1.
    pub replicas: Option<Sp<u32>>,
    /// Placement constraints, e.g. `node.role == worker`, `node.labels.zone == dc1`.
    #[serde(default)]
    pub placement: Vec<Sp<String>>,
    /// How long the engine watches each updated task for a failure before it goes on
    /// (a failure then rolls the update back); default 5s. Each new task is healthy
    /// before an old one stops whatever this is.
    pub monitor: Option<Sp<String>>,
}

/// The app's route on the target's front proxy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Route")]
pub struct RawRoute {
    /// The host name clients use, e.g. `izin.kota.go.id`.
    pub host: Sp<String>,
    /// The port the app listens on inside its container.
    pub port: Sp<u16>,
    /// HTTPS with the office's certificate: `cert` and `key` (PEM), each a secret
    /// (`{ file: … }`, `{ env: … }` or `"{{ vars.NAME }}"`).
    pub tls: Option<Sp<RawRouteTls>>,
    /// With `tls`: answer plain HTTP with a redirect to HTTPS; default true.
    pub redirect_http: Option<Sp<bool>>,
    /// How long the old release keeps serving the requests it has after the switch,
    /// before it is stopped; default 5s.
    pub drain: Option<Sp<String>>,
    /// Run the playbook's `assess:` section against the new release's own address before
    /// the switch: failing thresholds leave the route where it was and fail the step.
    pub assess: Option<Sp<bool>>,
}

/// The certificate and key of a route.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RouteTls")]
pub struct RawRouteTls {
    /// The certificate chain, PEM.
    pub cert: Sp<RawValue>,
    /// The private key, PEM: a secret.
    pub key: Sp<RawValue>,
}

/// A file delivered into the container at deploy time: exactly one of `template`,
/// `content`, `replace`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DeployFile")]
pub struct RawFile {
    /// Absolute path of the file in the container, e.g. `/var/www/html/wp-config.php`.
    pub path: Sp<String>,
    /// A local file (relative to the playbook) whose text is the file's, with
    /// `{{ vars.NAME }}` filled in (secrets allowed).
    pub template: Option<Sp<String>>,
    /// The file's text, with `{{ vars.NAME }}` filled in (secrets allowed).
    pub content: Option<Sp<String>>,
    /// The fetched file at `path` (through the build's `copy`), with each `find` replaced
    /// by its `with`; a `find` that is not in the file fails the deploy before any change.
    pub replace: Option<Vec<Sp<RawReplace>>>,
    /// Numeric owner `UID:GID`; default the build's `owner`, else its `user`, else `0:0`.
    pub owner: Option<Sp<String>>,
    /// Octal mode, e.g. `"0440"` (the default).
    pub mode: Option<Sp<String>>,
}

/// One literal replacement in a fetched file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Replace")]
pub struct RawReplace {
    /// The text to find (literal; `{{ vars.NAME }}` allowed, secrets too).
    pub find: Sp<String>,
    /// What it becomes (`{{ vars.NAME }}` allowed, secrets too).
    pub with: Sp<String>,
}

/// A health check: exactly one of `http`, `tcp`, `cmd`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Health", transform = exactly_one_check)]
pub struct RawHealth {
    /// URL to GET, e.g. `http://127.0.0.1:8080/healthz`.
    pub http: Option<Sp<String>>,
    /// `host:port` that must accept a connection.
    pub tcp: Option<Sp<String>>,
    /// Command run inside the container; exit 0 is healthy.
    pub cmd: Option<Sp<Vec<Sp<String>>>>,
    /// HTTP status expected; default 200.
    pub expect_status: Option<Sp<u16>>,
    /// How long to wait for health; default 60s.
    pub timeout: Option<Sp<String>>,
    /// Time between checks; default 1s.
    pub interval: Option<Sp<String>>,
}

/// The health check kinds.
pub const HEALTH_KINDS: [&str; 3] = ["http", "tcp", "cmd"];

fn exactly_one_check(schema: &mut schemars::Schema) {
    let alts: Vec<serde_json::Value> = HEALTH_KINDS
        .iter()
        .map(|k| serde_json::json!({ "required": [k] }))
        .collect();
    schema.insert("oneOf".into(), serde_json::Value::Array(alts));
}

/// Relaxations of the hardened container defaults.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Security")]
pub struct RawSecurity {
    /// Read-only root file system; default true.
    pub read_only: Option<Sp<bool>>,
    /// no-new-privileges; default true.
    pub no_new_privileges: Option<Sp<bool>>,
    /// Capabilities added back after dropping all, e.g. `NET_BIND_SERVICE`.
    #[serde(default)]
    pub cap_add: Vec<Sp<String>>,
    /// Memory limit, e.g. `512m`; default 512m.
    pub memory: Option<Sp<String>>,
    /// Process limit; default 256.
    pub pids: Option<Sp<u32>>,
    /// Restart policy; default unless-stopped.
    pub restart: Option<Sp<RestartPolicy>>,
    /// Writable tmpfs mounts; default `/tmp`.
    pub tmpfs: Option<Vec<Sp<String>>>,
    /// Size of one json-file log before rotation; default 10m.
    pub log_max_size: Option<Sp<String>>,
    /// Rotated log files kept; default 3.
    pub log_max_files: Option<Sp<u32>>,
    /// The engine's init (tini) as PID 1, forwarding signals to the app; default true.
    pub init: Option<Sp<bool>>,
}

/// A string field that may also be a secret source: `"text"`, `{ env: NAME }` or `{ file: PATH }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// Literal text (may hold `{{ vars.NAME }}`).
    Text(String),
    /// A secret read from an environment variable.
    Env(String),
    /// A secret read from a file, relative to the playbook.
    File(String),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, `{ env: NAME }` or `{ file: PATH }`")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue::Text(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
                Ok(RawValue::Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue::Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
                Ok(RawValue::Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RawValue, E> {
                Err(E::custom(
                    "a number with a fraction loses its spelling in YAML (1.10 reads as 1.1): put it in quotes, e.g. \"1.10\"",
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
                use serde::de::Error as _;
                let Some(key) = a.next_key::<String>()? else {
                    return Err(A::Error::custom(
                        "expected `{ env: NAME }` or `{ file: PATH }`, found an empty mapping",
                    ));
                };
                let value = a.next_value::<String>()?;
                if a.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(
                        "a secret has one source: `{ env: NAME }` or `{ file: PATH }`, not both",
                    ));
                }
                match key.as_str() {
                    "env" => Ok(RawValue::Env(value)),
                    "file" => Ok(RawValue::File(value)),
                    other => Err(A::Error::custom(format!(
                        "unknown secret source `{other}`: expected `env` or `file`"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RawValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Value".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Text (may hold {{ vars.NAME }}), or a secret: { env: NAME } or { file: PATH }.",
            "anyOf": [
                { "type": "string" },
                { "type": "object", "properties": { "env": { "type": "string" } },
                  "required": ["env"], "additionalProperties": false },
                { "type": "object", "properties": { "file": { "type": "string" } },
                  "required": ["file"], "additionalProperties": false }
            ]
        })
    }
}
