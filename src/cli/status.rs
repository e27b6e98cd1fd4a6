//! `boyong status`: each app's last run, its result and when.

use std::path::Path;

use serde::Serialize;

use boyong::engine::journal;
use boyong::engine::lock::AppLock;
use boyong::engine::state::StateDir;
use boyong::engine::{History, RunResult};

use super::exit;

/// One app's line.
#[derive(Debug, Serialize)]
struct AppStatus {
    app: String,
    run: Option<String>,
    /// succeeded, failed, rolled-back, rollback-incomplete, interrupted, in-progress,
    /// journal-broken, no-runs.
    result: String,
    started: Option<String>,
    last_change: Option<String>,
    steps_done: usize,
    steps_total: Option<usize>,
    changes_in_place: usize,
    failure: Option<String>,
    held_by: Option<String>,
}

/// `boyong status [APP] [--json]`.
pub fn status(state: &Path, only: Option<&str>, json: bool) -> u8 {
    let dir = StateDir::new(state);
    let apps = match only {
        Some(a) => vec![a.to_string()],
        None => match dir.apps() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("boyong status: {e}");
                return exit::FAILED;
            }
        },
    };
    let mut rows = Vec::new();
    for app in apps {
        match one(&dir, &app) {
            Ok(r) => rows.push(r),
            Err(e) => {
                eprintln!("boyong status: {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return exit::OK;
    }
    if rows.is_empty() {
        println!("no apps in {}", state.display());
        return exit::OK;
    }
    let w = rows.iter().map(|r| r.app.len()).max().unwrap_or(3).max(3);
    println!(
        "{:w$}  {:22}  {:19}  {:5}  {:20}  NOTE",
        "APP", "LAST RUN", "RESULT", "STEPS", "LAST CHANGE"
    );
    for r in &rows {
        let steps = match r.steps_total {
            Some(t) => format!("{}/{t}", r.steps_done),
            None => "-".into(),
        };
        let note = match (&r.held_by, &r.failure) {
            (Some(h), _) => format!("locked by {h}"),
            (None, Some(f)) => f.clone(),
            (None, None) if r.changes_in_place > 0 && r.result != "succeeded" => {
                format!(
                    "{} change(s) in place: `boyong rollback {}`",
                    r.changes_in_place, r.app
                )
            }
            _ => String::new(),
        };
        println!(
            "{:w$}  {:22}  {:19}  {:5}  {:20}  {note}",
            r.app,
            r.run.as_deref().unwrap_or("-"),
            r.result,
            steps,
            r.last_change.as_deref().unwrap_or("-"),
        );
    }
    exit::OK
}

fn one(dir: &StateDir, app: &str) -> Result<AppStatus, String> {
    let mut s = AppStatus {
        app: app.to_string(),
        run: None,
        result: "no-runs".into(),
        started: None,
        last_change: None,
        steps_done: 0,
        steps_total: None,
        changes_in_place: 0,
        failure: None,
        held_by: None,
    };
    let lock = dir.lock_path(app).map_err(|e| e.to_string())?;
    let held = AppLock::probe(&lock).map_err(|e| e.to_string())?;
    s.held_by = held.as_ref().map(|h| {
        h.as_ref()
            .map_or_else(|| "another process".into(), ToString::to_string)
    });
    let Some(id) = dir.latest_run(app).map_err(|e| e.to_string())? else {
        return Ok(s);
    };
    let run = dir.run(app, &id).map_err(|e| e.to_string())?;
    s.run = Some(id.to_string());
    s.steps_total = std::fs::read(run.plan_path())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("steps").and_then(|s| s.as_array()).map(Vec::len));
    let h = match journal::read(&run.journal_path()) {
        Ok(c) => History::from_journal(&c),
        Err(e) => {
            s.result = "journal-broken".into();
            s.failure = Some(e.to_string());
            return Ok(s);
        }
    };
    s.started = Some(h.header.started.clone());
    s.last_change = Some(h.last_at.clone());
    s.steps_done = h.steps_done.len();
    s.changes_in_place = h.pending().len();
    s.result = if held.is_some() {
        "in-progress".into()
    } else if h.unfinished_tail || h.result.is_none() {
        RunResult::Interrupted.word().into()
    } else {
        h.result.map_or("interrupted", RunResult::word).into()
    };
    if matches!(
        h.result,
        Some(RunResult::Failed | RunResult::RolledBack | RunResult::RollbackIncomplete)
    ) && let Some((step, e)) = &h.last_failure
    {
        s.failure = Some(format!("step `{step}`: {e}"));
    }
    Ok(s)
}
