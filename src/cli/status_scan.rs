//! What the state directory says of one app, for `boyong status`: its lock, its last run,
//! that run's result and the lifecycle stage it reached.
//!
//! Read-only: the lock is probed, never taken (a running run is reported, not waited
//! for); nothing is written. Per app it reads the lock file, the run list, the last run's
//! `plan.json` (its steps' kinds, its target, the deployed container's name) and journal
//! (verified as it is read: a broken one makes a `journal-broken` row, never a panic),
//! and whether a decommission certificate exists (lifecycle `decommissioned`).

use serde::Serialize;
use serde_json::Value;

use boyong::engine::journal;
use boyong::engine::lock::AppLock;
use boyong::engine::state::{RunId, StateDir};
use boyong::engine::{History, RunResult};
use boyong::plan::Plan;
use boyong::playbook::HealthCheck;

/// Where an app stands, from its last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    /// The journal cannot be read or does not verify.
    Unknown,
    /// The last run failed or was interrupted, and left changes in place.
    Failed,
    /// A run holds the app's lock now.
    Running,
    /// The last run's changes were all undone.
    RolledBack,
    /// No run yet.
    NoRuns,
    /// Found on a vendor host by `boyong discover`, no run yet (`inventory/`).
    Discovered,
    /// A run began; no step that moves the app is done.
    Planned,
    /// Code or data pulled from the vendor (fetch, dump).
    Pulled,
    /// An image built or a database restored on the target.
    Built,
    /// The new container serves (deploy done).
    CutOver,
    /// The vendor's copy was deleted with a certificate (`boyong decommission`).
    Decommissioned,
}

impl Lifecycle {
    /// The word in the table, `--lifecycle` and JSON.
    pub fn word(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Failed => "failed",
            Self::Running => "running",
            Self::RolledBack => "rolled-back",
            Self::NoRuns => "no-runs",
            Self::Discovered => "discovered",
            Self::Planned => "planned",
            Self::Pulled => "pulled",
            Self::Built => "built",
            Self::CutOver => "cut-over",
            Self::Decommissioned => "decommissioned",
        }
    }

    /// Whether the app's container is to serve on the target (cut over, and perhaps
    /// decommissioned on the vendor's side since).
    pub fn serves(self) -> bool {
        matches!(self, Self::CutOver | Self::Decommissioned)
    }

    /// Every value, for `--lifecycle`'s help and checks.
    pub const ALL: [Self; 11] = [
        Self::Discovered,
        Self::Planned,
        Self::Pulled,
        Self::Built,
        Self::CutOver,
        Self::Decommissioned,
        Self::Failed,
        Self::RolledBack,
        Self::Running,
        Self::NoRuns,
        Self::Unknown,
    ];

    /// The stage a done step of `kind` brings the app to.
    fn of_kind(kind: &str) -> Self {
        match kind {
            "fetch" | "dump" => Self::Pulled,
            "build" | "restore" => Self::Built,
            "deploy" => Self::CutOver,
            _ => Self::Planned,
        }
    }
}

/// The verdict of an app's last assessment.
#[derive(Debug, Clone, Serialize)]
pub struct LastAssessment {
    /// Whether every threshold held.
    pub passed: bool,
    /// `passed (N requests)` or `failed (N of M requests)`.
    pub verdict: String,
    /// When it started, seconds since 1970.
    pub started: u64,
}

/// An app's route, as its deploy journaled it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteSeen {
    /// The host name.
    pub host: String,
    /// The front proxy's container.
    pub front: String,
    /// Where this machine reaches the proxy's HTTP listener.
    pub front_http: String,
    /// Served over HTTPS.
    pub tls: bool,
}

/// An app as the state directory tells it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scanned {
    /// The app.
    pub app: String,
    /// Where it stands.
    pub lifecycle: Option<Lifecycle>,
    /// The last run's id.
    pub run: Option<String>,
    /// The last run's result: succeeded, failed, rolled-back, rollback-incomplete,
    /// interrupted, in-progress, journal-broken, no-runs.
    pub result: String,
    /// When the last run started (RFC 3339 UTC).
    pub started: Option<String>,
    /// When its journal was last written.
    pub last_change: Option<String>,
    /// Its steps done (and not undone since).
    pub steps_done: usize,
    /// Its steps, from its plan.
    pub steps_total: Option<usize>,
    /// Its changes not undone.
    pub changes_in_place: usize,
    /// The last failure: `step `ID`: error`.
    pub failure: Option<String>,
    /// Who holds the app's lock now.
    pub held_by: Option<String>,
    /// The target engine, as the last run's plan names it.
    pub target: Option<String>,
    /// The container the playbook cuts over to.
    pub container_name: Option<String>,
    /// The image id the last run's deploy step journaled.
    pub journaled_image_id: Option<String>,
    /// Where `boyong discover` found it, for an app with no run: `STACK at ROOT on HOST`.
    pub discovered: Option<String>,
    /// The app's last assessment: the newer of its last `boyong assess`
    /// (`apps/<app>/assessment.json`) and its last run's `assess` steps.
    pub assessment: Option<LastAssessment>,
    /// Its route on the front proxy, as the last deploy journaled it.
    pub route: Option<RouteSeen>,
    /// The playbook's path when it ran (to reach a TLS engine's certificates).
    #[serde(skip)]
    pub playbook: String,
    /// The deploy step's health check (for `--check`).
    #[serde(skip)]
    pub health: Option<HealthCheck>,
    /// The deploy step's id.
    #[serde(skip)]
    pub deploy_step: Option<String>,
}

/// Reads `app`'s status from the state directory. `Err` only for an invalid app name.
pub fn scan(dir: &StateDir, app: &str) -> Result<Scanned, String> {
    let mut s = Scanned {
        app: app.to_string(),
        lifecycle: Some(Lifecycle::NoRuns),
        result: "no-runs".into(),
        assessment: boyong::assess::store::last(dir, app).map(|a| LastAssessment {
            passed: a.passed,
            verdict: a.verdict(),
            started: a.started,
        }),
        ..Scanned::default()
    };
    let lock = dir.lock_path(app).map_err(|e| e.to_string())?;
    let held = match AppLock::probe(&lock) {
        Ok(h) => h,
        Err(e) => {
            s.failure = Some(format!("cannot read the lock: {e}"));
            None
        }
    };
    s.held_by = held.as_ref().map(|h| {
        h.as_ref()
            .map_or_else(|| "another process".into(), ToString::to_string)
    });
    let latest = match dir.latest_run(app) {
        Ok(l) => l,
        Err(e) => {
            s.failure = Some(e.to_string());
            s.lifecycle = Some(Lifecycle::Unknown);
            return Ok(s);
        }
    };
    let Some(id) = latest else {
        if held.is_some() {
            s.lifecycle = Some(Lifecycle::Running);
            s.result = "in-progress".into();
        }
        return Ok(s);
    };
    let run = dir.run(app, &id).map_err(|e| e.to_string())?;
    s.run = Some(id.to_string());
    // The plan as the run has it now: its latest version after an edit a resume took.
    let plan: Option<Plan> = std::fs::read_to_string(run.plan_version_path(run.version()))
        .ok()
        .and_then(|t| Plan::read(&t).ok());
    if let Some(plan) = &plan {
        if !plan.steps.is_empty() {
            s.steps_total = Some(plan.steps.len());
        }
        s.target = Some(plan.target.clone());
        s.playbook.clone_from(&plan.playbook);
        if let Some((step, name)) = plan.deployed() {
            s.deploy_step = Some(step.to_string());
            s.container_name = Some(name.to_string());
            s.health = plan.health(step).cloned();
        }
    }
    let h = match journal::read(&run.journal_path()) {
        Ok(c) => History::from_journal(&c),
        Err(e) => {
            s.result = "journal-broken".into();
            s.lifecycle = Some(Lifecycle::Unknown);
            s.failure = Some(e.to_string());
            return Ok(s);
        }
    };
    // the newer of the last `boyong assess` and this run's own `assess` steps (of a run that
    // succeeded: a rolled-back release's passed step says nothing of what runs now)
    let succeeded = h.result == Some(RunResult::Succeeded) && !h.unfinished_tail;
    let steps = succeeded.then_some(&h.steps_done);
    s.assessment = boyong::assess::store::newest(dir, app, steps).map(|(a, _)| LastAssessment {
        passed: a.passed,
        verdict: a.verdict(),
        started: a.started,
    });
    s.started = Some(h.header.started.clone());
    s.last_change = Some(h.last_at.clone());
    s.steps_done = h.steps_done.len();
    s.changes_in_place = h.pending().len();
    s.journaled_image_id = s
        .deploy_step
        .as_ref()
        .and_then(|d| h.steps_done.get(d))
        .and_then(image_id);
    s.route = s
        .deploy_step
        .as_ref()
        .and_then(|d| h.steps_done.get(d))
        .and_then(|f| f.get("route"))
        .and_then(|r| {
            let t = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
            Some(RouteSeen {
                host: t("host")?,
                front: t("front")?,
                front_http: t("front_http")?,
                tls: r.get("tls").and_then(Value::as_bool).unwrap_or(false),
            })
        });
    let result = if held.is_some() {
        None
    } else if h.unfinished_tail || h.result.is_none() {
        Some(RunResult::Interrupted)
    } else {
        h.result
    };
    s.result = result.map_or("in-progress", RunResult::word).into();
    let stage = plan
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|p| h.steps_done.contains_key(&p.id))
        .map(|p| Lifecycle::of_kind(p.kind))
        .max()
        .unwrap_or(Lifecycle::Planned);
    let decommissioned = boyong::decommission::certificate_of(dir, app).is_some();
    s.lifecycle = Some(match result {
        None => Lifecycle::Running,
        Some(RunResult::Succeeded) if decommissioned => Lifecycle::Decommissioned,
        Some(RunResult::Succeeded) => stage,
        Some(RunResult::RolledBack) => Lifecycle::RolledBack,
        Some(_) => Lifecycle::Failed,
    });
    if matches!(
        result,
        Some(RunResult::Failed | RunResult::RolledBack | RunResult::RollbackIncomplete)
    ) && let Some((step, e)) = &h.last_failure
    {
        s.failure = Some(format!("step `{step}`: {e}"));
    }
    Ok(s)
}

/// The apps of the inventory (`boyong discover`) that have no state of their own yet,
/// as rows of lifecycle `discovered`.
pub fn discovered(state: &std::path::Path, have: &[String]) -> Vec<Scanned> {
    boyong::discover::inventory::known(state)
        .into_iter()
        .filter(|k| !have.contains(&k.app))
        .map(|k| Scanned {
            lifecycle: Some(Lifecycle::Discovered),
            result: "no-runs".into(),
            discovered: Some(format!("{} at {} on {}", k.stack, k.root, k.host)),
            app: k.app,
            ..Scanned::default()
        })
        .collect()
}

/// The image id in a deploy step's facts.
fn image_id(facts: &Value) -> Option<String> {
    facts
        .get("image_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The image id that run `run` of `app` journaled for its deploy step `step`, if it did
/// (for a container made by an earlier run than the last).
pub fn journaled_image(dir: &StateDir, app: &str, run: &str, step: &str) -> Option<String> {
    let id = RunId::parse(run).ok()?;
    let run = dir.run(app, &id).ok()?;
    let c = journal::read(&run.journal_path()).ok()?;
    let h = History::from_journal(&c);
    h.steps_done.get(step).and_then(image_id)
}

/// Whether `name` matches the glob `pattern` (`*` any run of characters, `?` one).
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_a_shell_does() {
        assert!(glob("*", "perizinan"));
        assert!(glob("peri*", "perizinan"));
        assert!(glob("*zin*", "perizinan"));
        assert!(glob("p?rizinan", "perizinan"));
        assert!(!glob("peri", "perizinan"));
        assert!(!glob("*x*", "perizinan"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXbY"));
    }

    #[test]
    fn stages_order_as_a_migration_goes() {
        assert!(Lifecycle::of_kind("deploy") > Lifecycle::of_kind("build"));
        assert!(Lifecycle::of_kind("restore") > Lifecycle::of_kind("dump"));
        assert!(Lifecycle::of_kind("fetch") > Lifecycle::of_kind("exec"));
    }
}
