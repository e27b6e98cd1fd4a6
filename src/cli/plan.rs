//! `boyong plan` (and `boyong run --dry-run`): each playbook's plan, then, unless
//! `--offline`, the live probes of its hosts, many playbooks side by side over shared
//! connections (one SSH connection per vendor login, one per engine).
//!
//! With `--reuse-artifacts`, each `fetch` and `dump` step says which earlier run's
//! artifact a run would copy instead of pulling.
//!
//! A plan changes nothing anywhere. Exit status: 0 when no problem was found, 1 when the
//! probes found problems (listed, each with what to do), 2 for bad input.

use std::path::{Path, PathBuf};

use boyong::plan::Plan;
use boyong::steps::{Live, LiveOptions, Pool, probe, shared_disk};

use super::error::{self, CliError, Kind};
use super::load::{Ready, load_ready};
use super::render;

/// The playbooks named: files as given; a directory stands for its `*.yml` and `*.yaml`
/// files, sorted.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("cannot read the directory {}: {e}", p.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| {
                    f.is_file()
                        && f.extension().is_some_and(|x| {
                            x.eq_ignore_ascii_case("yml") || x.eq_ignore_ascii_case("yaml")
                        })
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(format!(
                    "{} is a directory with no playbook (*.yml, *.yaml) in it",
                    p.display()
                ));
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// How a live runner reaches the hosts when only probing.
pub fn probe_options() -> LiveOptions {
    let home =
        std::env::var_os("HOME").map_or_else(|| std::path::PathBuf::from("/root"), Into::into);
    LiveOptions {
        default_known_hosts: home.join(".ssh/known_hosts"),
        accept_new_host_key: false,
        connect_timeout: std::time::Duration::from_secs(10),
        labels: std::collections::HashMap::new(),
    }
}

/// The plan of a loaded playbook, its path made absolute (a run, and a saved plan, is
/// rolled back or run from anywhere) unless `as_given`.
pub fn offline(ready: &Ready, file: &Path, as_given: bool) -> Plan {
    let mut plan = boyong::steps::plan(&ready.playbook);
    if !as_given && let Ok(abs) = std::fs::canonicalize(file) {
        plan.playbook = abs.display().to_string();
    }
    plan
}

/// Probes the hosts of every plan, side by side, sharing connections.
pub fn probe_all(state: &Path, plans: &mut [Plan], readies: &[Ready]) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let pool = Pool::new();
    let lives: Vec<Live> = readies
        .iter()
        .map(|r| Live::new(r.playbook.clone(), r.secrets.clone(), probe_options()))
        .collect();
    rt.block_on(futures_util::future::join_all(
        plans
            .iter_mut()
            .zip(&lives)
            .map(|(p, l)| probe(&pool, l, p, state)),
    ));
    shared_disk(plans);
    Ok(())
}

/// `boyong plan PLAYBOOK… [--offline] [--json] [--out FILE|DIR]`.
pub fn plan(
    state: &Path,
    files: &[PathBuf],
    offline_only: bool,
    json: bool,
    out: Option<&Path>,
    reuse: Option<std::time::Duration>,
) -> error::Result {
    let files = expand(files).map_err(|e| CliError::bad_input(format!("boyong plan: {e}")))?;
    let mut readies = Vec::new();
    let mut bad = false;
    for f in &files {
        match load_ready(f, "boyong plan") {
            Ok(r) => readies.push(r),
            // Said now, beside its file's diagnostics.
            Err(e) => {
                e.render();
                bad = true;
            }
        }
    }
    if bad {
        return Err(CliError::reported(Kind::BadInput));
    }
    let mut plans: Vec<Plan> = readies
        .iter()
        .zip(&files)
        .map(|(r, f)| offline(r, f, offline_only))
        .collect();
    if !offline_only {
        probe_all(state, &mut plans, &readies)
            .map_err(|e| CliError::failed(format!("boyong plan: {e}")))?;
    }
    if let Some(max_age) = reuse {
        for (p, r) in plans.iter_mut().zip(&readies) {
            note_reuse(state, p, &r.playbook, max_age);
        }
    }
    let encode = |p: &Plan| serde_json::to_string_pretty(p).map(|s| s + "\n");
    if let Some(out) = out {
        let written = if plans.len() == 1 {
            encode(&plans[0]).map_err(|e| e.to_string()).and_then(|j| {
                std::fs::write(out, j).map_err(|e| format!("cannot write {}: {e}", out.display()))
            })
        } else {
            std::fs::create_dir_all(out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))
                .and_then(|()| {
                    plans.iter().try_for_each(|p| {
                        let path = out.join(format!("{}.plan.json", p.app));
                        encode(p).map_err(|e| e.to_string()).and_then(|j| {
                            std::fs::write(&path, j)
                                .map_err(|e| format!("cannot write {}: {e}", path.display()))
                        })
                    })
                })
        };
        written.map_err(|e| CliError::failed(format!("boyong plan: {e}")))?;
    }
    if json {
        let text = if plans.len() == 1 {
            serde_json::to_string_pretty(&plans[0])
        } else {
            serde_json::to_string_pretty(&plans)
        };
        let t = text
            .map_err(|e| CliError::failed(format!("boyong plan: cannot encode the plan: {e}")))?;
        println!("{t}");
    } else {
        for (i, p) in plans.iter().enumerate() {
            if i > 0 {
                println!();
            }
            // A live plan quotes what the hosts said: shown line by line, controls escaped.
            for line in render::plan(p).lines() {
                println!("{}", boyong::escape::controls(line));
            }
        }
    }
    let problems: usize = plans
        .iter()
        .map(|p| p.probes.as_ref().map_or(0, |x| x.problems.len()))
        .sum();
    if plans.len() > 1 {
        let secs = plans
            .iter()
            .filter_map(|p| p.probes.as_ref().map(|x| x.seconds))
            .fold(0.0_f64, f64::max);
        eprintln!(
            "{} plans{}; {problems} problem{} found",
            plans.len(),
            if offline_only {
                " (offline)".to_string()
            } else {
                format!(", probed side by side (slowest {secs:.2} s)")
            },
            if problems == 1 { "" } else { "s" }
        );
    }
    if problems > 0 {
        // Each problem is in the plan, with what to do.
        return Err(CliError::reported(Kind::Failed));
    }
    Ok(())
}

/// `--reuse-artifacts`: for each `fetch` and `dump` step, the earlier run whose artifact a
/// run would copy (its journal's chain checked; its MACs and files are checked by the run),
/// or that it pulls; in the step's findings.
fn note_reuse(
    state: &Path,
    plan: &mut Plan,
    pb: &boyong::playbook::Playbook,
    max_age: std::time::Duration,
) {
    use boyong::engine::reuse::{age, candidates};
    // No run has this name: every run of the app is an earlier one.
    let artifacts = state
        .join("apps")
        .join(&plan.app)
        .join("runs")
        .join("plan")
        .join("artifacts");
    let reuse = boyong::engine::Reuse { max_age, key: None };
    for s in &mut plan.steps {
        let Some(key) = boyong::steps::reuse_key(pb, &s.spec) else {
            continue;
        };
        s.found.push(match candidates(&artifacts, &key, &reuse).next() {
            Some(e) => format!(
                "--reuse-artifacts: {}, if it still verifies when the run takes it",
                e.said()
            ),
            None => format!(
                "--reuse-artifacts: no earlier run has an artifact with these inputs pulled within {}: pulled",
                age(max_age)
            ),
        });
    }
}
