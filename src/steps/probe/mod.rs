//! The live plan's probes: read-only questions to the vendor host and the target engine
//! that turn an offline plan into one that says what is there now.
//!
//! Owns: [`Pool`] (one SSH connection per vendor login and one engine connection per
//! endpoint, shared by every playbook of a `boyong plan` over many apps, with at most
//! [`CHANNELS`] commands in flight per connection) and [`probe`], which fills a plan's
//! `found`, `estimate`, `now`, `probes.problems` and `probes.fingerprints`.
//!
//! Invariants: nothing here changes anything anywhere. On the vendor host it runs only
//! `test`, `find`, `stat`, `--version` and SELECT queries (every value shell-quoted, the
//! database password on stdin as for a dump); on the engine only inspections and lists;
//! on this machine `df`. A new host key is never written to known_hosts here. A probe
//! that cannot answer says so as a problem; it never skips silently.

mod batch;
mod target;

pub(crate) use target::{image_present, network, port_free, proto};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OnceCell, Semaphore};

use super::live::Live;
use crate::docker::{Docker, Published};
use crate::plan::{Estimate, Plan, Probes, Problem};
use crate::playbook::DockerEndpoint;
use crate::ssh::{Out, Session};

/// Commands in flight at once on one SSH connection (OpenSSH's `MaxSessions` is 10).
pub const CHANNELS: usize = 8;
/// Longest wait for one probe's answer.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

type Shared<T> = Arc<OnceCell<Result<T, String>>>;

/// A vendor connection and the limit of commands in flight on it.
#[derive(Clone)]
pub(crate) struct Vendor {
    pub(crate) session: Arc<Session>,
    pub(crate) channels: Arc<Semaphore>,
    /// Commands of every playbook on this connection, run a batch per session.
    batch: batch::Batcher,
}

/// What an engine is and which ports its containers hold, asked once.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) engine: Arc<Docker>,
    about: String,
    root_dir: Option<String>,
    /// A storage driver whose every file access costs more than the kernel's overlayfs.
    slow_storage: Option<String>,
    pub(crate) ports: Vec<Published>,
}

/// Connections shared by the probes of many playbooks.
#[derive(Default)]
pub struct Pool {
    vendors: Mutex<HashMap<String, Shared<Vendor>>>,
    targets: Mutex<HashMap<String, Shared<Target>>>,
    /// Free bytes by path (`df`), asked once.
    free: std::sync::Mutex<HashMap<std::path::PathBuf, Option<u64>>>,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    async fn vendor(&self, live: &Live) -> Result<Vendor, String> {
        let mut t = live.ssh_target().map_err(|e| e.to_string())?;
        // A plan writes nothing: an unknown host key is a problem to report, not to add.
        t.accept_new = false;
        let key = format!(
            "{}@{}:{} {:?} {}",
            t.user,
            t.host,
            t.port,
            t.auth,
            t.known_hosts.display()
        );
        let cell = Arc::clone(self.vendors.lock().await.entry(key).or_default());
        cell.get_or_init(|| async move {
            Session::connect(&t)
                .await
                .map(|s| {
                    let session = Arc::new(s);
                    let channels = Arc::new(Semaphore::new(CHANNELS));
                    Vendor {
                        batch: batch::Batcher::start(Arc::clone(&session), Arc::clone(&channels)),
                        session,
                        channels,
                    }
                })
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }

    async fn target(&self, endpoint: &DockerEndpoint) -> Result<Target, String> {
        let cell = Arc::clone(
            self.targets
                .lock()
                .await
                .entry(endpoint.to_string())
                .or_default(),
        );
        cell.get_or_init(|| async move {
            let engine = Docker::connect(endpoint).await.map_err(|e| e.to_string())?;
            let about = engine.about().await.map_err(|e| e.to_string())?;
            let ports = engine.published_ports().await.map_err(|e| e.to_string())?;
            let key = engine
                .host_key()
                .map_or_else(String::new, |k| format!(", its host key {k}"));
            let storage = about
                .storage_driver
                .as_deref()
                .map_or_else(String::new, |d| format!(", storage {d}"));
            Ok(Target {
                about: format!(
                    "Docker Engine {} (API {}, {}{storage}) at {endpoint}{key}",
                    about.version, about.api, about.platform
                ),
                slow_storage: about
                    .storage_driver
                    .filter(|d| matches!(d.as_str(), "fuse-overlayfs" | "vfs")),
                root_dir: about.root_dir,
                engine: Arc::new(engine),
                ports,
            })
        })
        .await
        .clone()
    }
}

impl Pool {
    /// Free bytes of the file system holding `path`, asked of `df` once per path.
    fn free_bytes(&self, path: &std::path::Path) -> Option<u64> {
        if let Ok(cache) = self.free.lock()
            && let Some(v) = cache.get(path)
        {
            return *v;
        }
        let v = target::free_bytes(path);
        if let Ok(mut cache) = self.free.lock() {
            cache.insert(path.to_path_buf(), v);
        }
        v
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool")
    }
}

/// Runs `command` on the vendor host: `(exit status, stdout)`, or stderr for a failure.
/// Without stdin it joins a batch of the commands asked at the same time.
pub(crate) async fn sh(
    v: &Vendor,
    command: &str,
    stdin: Option<&[u8]>,
) -> Result<(u32, String), String> {
    if stdin.is_none() {
        return v.batch.ask(command).await;
    }
    let _permit = v
        .channels
        .acquire()
        .await
        .map_err(|_| "the probe pool closed".to_string())?;
    let run = async {
        let mut e = v
            .session
            .exec(command, stdin)
            .await
            .map_err(|e| e.to_string())?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(o) = e.next().await {
            match o {
                Out::Stdout(b) if out.len() < 1 << 20 => out.extend_from_slice(&b),
                Out::Stderr(b) if err.len() < 64 << 10 => err.extend_from_slice(&b),
                _ => {}
            }
        }
        let code = e.exit_status().map_err(|e| e.to_string())?;
        let mut text = String::from_utf8_lossy(&out).into_owned();
        if code != 0 {
            text = String::from_utf8_lossy(&err).trim().to_string();
        }
        Ok((code, text))
    };
    tokio::time::timeout(PROBE_TIMEOUT, run)
        .await
        .map_err(|_| format!("no answer within {}s", PROBE_TIMEOUT.as_secs()))?
}

/// Bytes for people: `1.2 MB`.
pub fn human_bytes(n: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a figure for people")]
    let f = n as f64;
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", f / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", f / 1e6),
        _ => format!("{:.2} GB", f / 1e9),
    }
}

#[expect(clippy::cast_precision_loss, reason = "an estimate")]
pub(crate) fn secs(bytes: u64, rate: f64) -> f64 {
    bytes as f64 / rate
}

/// Accumulates what the probes of one plan find.
#[derive(Default)]
pub(crate) struct Findings {
    problems: Vec<Problem>,
    pub(crate) fingerprints: BTreeMap<String, String>,
    vendor: Vec<String>,
    target: Vec<String>,
    /// Bytes the run writes on this machine and on the target, for the disk check.
    pub(crate) local_bytes: u64,
    pub(crate) target_bytes: u64,
    /// The file systems written to, for the batch's sum ([`shared_disk`]).
    disk: Vec<crate::plan::DiskUse>,
    /// What each fetch step's probe saw, by step id (a build's context).
    pub(crate) fetched: HashMap<String, crate::steps::fetch::Tree>,
    /// Each dump step's database size, by step id (a restore's load).
    pub(crate) dumped: HashMap<String, u64>,
}

impl Findings {
    pub(crate) fn problem(
        &mut self,
        step: Option<&str>,
        what: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem {
            step: step.map(str::to_owned),
            what: what.into(),
            fix: fix.into(),
        });
    }

    pub(crate) fn print(&mut self, key: String, value: impl Into<String>) {
        self.fingerprints.insert(key, value.into());
    }
}

/// What the probes add to one step of the plan.
#[derive(Default)]
pub(crate) struct StepFound {
    pub(crate) found: Vec<String>,
    pub(crate) estimate: Option<Estimate>,
    /// By the step's changes, in order.
    pub(crate) now: Vec<Option<String>>,
}

/// What a kind's probe is handed: the connections (each `None` when it could not be
/// opened, a problem already said so), what the plan has found so far, and this step's
/// findings.
pub(crate) struct ProbeCx<'a> {
    /// The vendor connection, when a step needs it and it opened.
    pub(crate) vendor: Option<&'a Vendor>,
    /// The target engine, when it answered.
    pub(crate) target: Option<&'a Target>,
    /// Where the engine listens.
    pub(crate) endpoint: Option<&'a DockerEndpoint>,
    /// The runner of the playbook (its secrets, for a database's password).
    pub(crate) live: &'a Live,
    /// What the plan has found.
    pub(crate) fx: &'a mut Findings,
    /// What this step's probe found.
    pub(crate) sf: &'a mut StepFound,
}

impl ProbeCx<'_> {
    /// A step that reads the vendor host, when it could not be reached.
    pub(crate) fn vendor_unreached(&mut self) {
        self.sf
            .found
            .push("the vendor host was not reached: sizes unknown".into());
    }
}

/// Probes the hosts of `plan` (made from the playbook `live` runs) and writes what they
/// found into it. Read-only; see the module's invariants.
pub async fn probe(pool: &Pool, live: &Live, plan: &mut Plan, state_dir: &std::path::Path) {
    let started = Instant::now();
    let mut fx = Findings::default();
    fx.print("playbook".into(), plan.playbook_sha256.clone());
    let vendor = if plan.steps.iter().any(super::reads_vendor) {
        match pool.vendor(live).await {
            Ok(v) => {
                // `HOST:PORT ALGORITHM SHA256:…`: the key, without the address.
                let key = v
                    .session
                    .host_key
                    .as_deref()
                    .map_or("?", |k| k.split_once(' ').map_or(k, |(_, key)| key));
                fx.vendor.push(format!(
                    "reachable at {}, host key {} matches {}; logged in with {}",
                    plan.vendor.address, key, plan.vendor.known_hosts, plan.vendor.auth
                ));
                fx.print("vendor.host_key".into(), key);
                Some(v)
            }
            Err(e) => {
                fx.problem(
                    None,
                    format!("the vendor host cannot be used: {e}"),
                    "check the address, the key and known_hosts; nothing that reads from the vendor can run",
                );
                None
            }
        }
    } else {
        None
    };
    let endpoint = live.endpoint();
    let engine = match &endpoint {
        Some(ep) => match pool.target(ep).await {
            Ok(t) => {
                fx.target.push(t.about.clone());
                fx.print("target.engine".into(), t.about.clone());
                if let Some(d) = &t.slow_storage {
                    fx.target.push(target::slow_storage(d));
                }
                if live.swarm() {
                    target::swarm_manager(&t, &mut fx).await;
                }
                Some(t)
            }
            Err(e) => {
                fx.problem(
                    None,
                    format!("the target engine cannot be used: {e}"),
                    "check `target.docker` and that the engine runs (`docker info` on the target)",
                );
                None
            }
        },
        None => None,
    };
    // Steps are probed one after the other; the plans of many apps run side by side.
    let mut per_step = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let mut sf = StepFound {
            now: vec![None; step.changes.len()],
            ..StepFound::default()
        };
        let mut p = ProbeCx {
            vendor: vendor.as_ref(),
            target: engine.as_ref(),
            endpoint: endpoint.as_ref(),
            live,
            fx: &mut fx,
            sf: &mut sf,
        };
        super::probe_step(&mut p, step).await;
        per_step.push(sf);
    }
    for (step, sf) in plan.steps.iter_mut().zip(per_step) {
        step.found = sf.found;
        step.estimate = sf.estimate;
        for (c, n) in step.changes.iter_mut().zip(sf.now) {
            c.now = n;
        }
    }
    target::disk(pool, state_dir, engine.as_ref(), endpoint.as_ref(), &mut fx);
    plan.mode = "live";
    plan.probes = Some(Probes {
        at: utc(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
        seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        vendor: fx.vendor,
        target: fx.target,
        problems: fx.problems,
        fingerprints: fx.fingerprints,
        disk: fx.disk,
    });
}

pub(crate) fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// `2026-11-23 10:04 UTC` from seconds since the epoch.
pub(crate) fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// The disk check of a batch: plans that write to the same file system are held to its
/// free space together. Each plan whose share, added to the others', does not fit gets a
/// problem naming the total (a plan that does not fit alone already has its own).
pub fn shared_disk(plans: &mut [Plan]) {
    use std::os::unix::fs::MetadataExt as _;
    // The file system of a path: the device of its nearest existing parent.
    let device = |path: &str| {
        let mut p = std::path::PathBuf::from(path);
        loop {
            if let Ok(m) = std::fs::metadata(&p) {
                return Some(m.dev());
            }
            if !p.pop() {
                return None;
            }
        }
    };
    // (device, what) -> (free, total need, plan indices)
    let mut groups: BTreeMap<(u64, String), (u64, u64, Vec<usize>)> = BTreeMap::new();
    for (i, plan) in plans.iter().enumerate() {
        for d in plan.probes.iter().flat_map(|p| &p.disk) {
            let (Some(free), Some(dev)) = (d.free, device(&d.path)) else {
                continue;
            };
            let g = groups
                .entry((dev, d.what.clone()))
                .or_insert((free, 0, Vec::new()));
            g.1 = g.1.saturating_add(d.need);
            if !g.2.contains(&i) {
                g.2.push(i);
            }
        }
    }
    for ((_, what), (free, need, members)) in groups {
        if members.len() < 2 || free >= need.saturating_add(need / 10) {
            continue;
        }
        for &i in &members {
            let Some(probes) = plans[i].probes.as_mut() else {
                continue;
            };
            let Some(mine) = probes.disk.iter().find(|d| d.what == what) else {
                continue;
            };
            if free < mine.need.saturating_add(mine.need / 10) {
                continue; // named already, alone
            }
            let what_path = format!("{what} {}", mine.path);
            probes.problems.push(Problem {
                step: None,
                what: format!(
                    "{what_path} has {} free; the {} plans of this batch that write there need about {} together (this one {})",
                    human_bytes(free),
                    members.len(),
                    human_bytes(need),
                    human_bytes(mine.need)
                ),
                fix: "free space there, or run these apps in smaller batches with space freed in between".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
        assert_eq!(human_bytes(3_000_000_000), "3.00 GB");
    }
}
