//! `boyong status`: the fleet at a glance, from the state directory and the live engine.
//!
//! Per app: its lifecycle (planned, pulled, built, cut-over, failed, rolled-back, running,
//! no-runs, unknown), its last run and that run's result, and, unless `--offline`, the
//! container it cuts over to as its engine shows it now (state, health) with the image it
//! runs against the image id its journal recorded (`drift` when they differ). Sorted with
//! the apps that need someone first, then by name; filtered by an app glob, `--failed`,
//! `--drift` or `--lifecycle`. Read-only and never waits on a lock. The state directory
//! is read on a few threads and each engine is asked once for all its apps, so 70 apps
//! take well under a second. `--json` prints every field, documented in the README.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use boyong::engine::state::StateDir;

use super::error::{self, CliError, Kind};
use super::status_live::{self, Found};
use super::status_scan::{self, Lifecycle, Scanned};
use super::table::{self, Col};

/// Options of `boyong status`.
#[derive(Debug, Clone, clap::Args)]
#[expect(clippy::struct_excessive_bools, reason = "command-line flags")]
pub struct StatusArgs {
    /// Only apps whose name matches this glob (`*`, `?`), e.g. `peri*`.
    #[arg(value_name = "APP")]
    pub app: Option<String>,
    /// Print JSON (an array of apps, sorted as the table).
    #[arg(long)]
    pub json: bool,
    /// Do not ask the engines: the state directory alone.
    #[arg(long)]
    pub offline: bool,
    /// Only apps whose last run did not succeed (failed, rolled back, interrupted,
    /// incomplete rollback, broken journal).
    #[arg(long)]
    pub failed: bool,
    /// Only apps whose container runs another image than their journal recorded.
    #[arg(long)]
    pub drift: bool,
    /// Also run each cut-over app's health check from its playbook now (the HTTP GET, the
    /// TCP connection, or the command in its container), all at once, a few seconds each;
    /// exit status 1 when one fails.
    #[arg(long, conflicts_with = "offline")]
    pub check: bool,
    /// Only apps at this stage (repeat or comma-separate for several).
    #[arg(long, value_name = "STAGE", value_delimiter = ',', value_parser = parse_lifecycle)]
    pub lifecycle: Vec<Lifecycle>,
}

fn parse_lifecycle(s: &str) -> Result<Lifecycle, String> {
    Lifecycle::ALL
        .into_iter()
        .find(|l| l.word() == s)
        .ok_or_else(|| {
            let all: Vec<&str> = Lifecycle::ALL.iter().map(|l| l.word()).collect();
            format!("expected one of: {}", all.join(", "))
        })
}

/// An app's container as the engine shows it now.
#[derive(Debug, Clone, Serialize)]
struct ContainerNow {
    name: String,
    /// `running`, `exited`, `restarting`, `created`, `missing` (the engine has none by
    /// that name).
    state: String,
    /// The image's own health check now, if it has one.
    health: Option<String>,
    image_id: Option<String>,
    /// The run that made it (its `boyong.run` label); none when the container has no
    /// boyong labels (replaced by hand).
    run: Option<String>,
}

/// One app's row.
#[derive(Debug, Clone, Serialize)]
struct AppStatus {
    #[serde(flatten)]
    scanned: Scanned,
    container: Option<ContainerNow>,
    /// The image id journaled by the run that made the container.
    expected_image_id: Option<String>,
    /// Whether the container runs another image than journaled; none when not known.
    drift: Option<bool>,
    /// `checked`, `offline`, `no-container` (the playbook deploys none), or why the
    /// engine could not be asked.
    live: String,
    /// With `--check`: the playbook's health check run now.
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<CheckNow>,
}

/// The playbook's health check, run now by `status --check`.
#[derive(Debug, Clone, Serialize)]
struct CheckNow {
    /// Whether it passed.
    ok: bool,
    /// What it showed, or why it failed (or was not run).
    said: String,
}

impl AppStatus {
    fn lifecycle(&self) -> Lifecycle {
        self.scanned.lifecycle.unwrap_or(Lifecycle::Unknown)
    }

    /// Whether the last run did not succeed.
    fn failed(&self) -> bool {
        !matches!(
            self.scanned.result.as_str(),
            "succeeded" | "in-progress" | "no-runs"
        )
    }

    /// Whether a cut-over app's container is gone, stopped or unhealthy, or its check
    /// failed now.
    fn unwell(&self) -> bool {
        self.check.as_ref().is_some_and(|c| !c.ok)
            || self.lifecycle().serves()
                && self.container.as_ref().is_some_and(|c| {
                    c.state != "running" || c.health.as_deref() == Some("unhealthy")
                })
    }

    /// 0 first: broken journal or incomplete rollback, failed, drift or unwell, running,
    /// rolled back, the rest.
    fn rank(&self) -> u8 {
        match (self.lifecycle(), self.scanned.result.as_str()) {
            (Lifecycle::Unknown, _) | (_, "rollback-incomplete") => 0,
            (Lifecycle::Failed, _) => 1,
            _ if self.drift == Some(true) || self.unwell() => 2,
            (Lifecycle::Running, _) => 3,
            (Lifecycle::RolledBack, _) => 4,
            _ => 5,
        }
    }
}

/// `boyong status [APP-GLOB] [--json] [--offline] [filters]`.
pub fn status(state: &Path, args: &StatusArgs) -> error::Result {
    let dir = StateDir::new(state);
    let mut apps = dir
        .apps()
        .map_err(|e| CliError::failed(format!("boyong status: {e}")))?;
    let mut found = status_scan::discovered(state, &apps);
    if let Some(p) = &args.app {
        apps.retain(|a| status_scan::glob(p, a));
        found.retain(|s| status_scan::glob(p, &s.app));
        if apps.is_empty() && found.is_empty() && !p.contains(['*', '?']) {
            return Err(CliError::bad_input(format!(
                "boyong status: no app `{p}` in {}",
                state.display()
            )));
        }
    }
    let mut scanned = scan_all(&dir, &apps);
    scanned.retain(|s| !found.iter().any(|f| f.app == s.app));
    scanned.extend(found);
    let live = if args.offline {
        HashMap::new()
    } else {
        status_live::containers(&scanned)
    };
    let mut rows: Vec<AppStatus> = scanned
        .into_iter()
        .map(|s| {
            let found = live.get(&s.app).cloned();
            with_live(&dir, s, found, args.offline)
        })
        .collect();
    if args.check {
        check_all(&mut rows);
    }
    rows.retain(|r| {
        (!args.failed || r.failed())
            && (!args.drift || r.drift == Some(true))
            && (args.lifecycle.is_empty() || args.lifecycle.contains(&r.lifecycle()))
    });
    sort(&mut rows);
    // A failed `--check` is in the table (or the JSON), with what it showed.
    let code = if rows.iter().any(|r| r.check.as_ref().is_some_and(|c| !c.ok)) {
        Err(CliError::reported(Kind::Failed))
    } else {
        Ok(())
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return code;
    }
    if rows.is_empty() {
        println!("no apps in {} match", state.display());
        return code;
    }
    print!("{}", render(&rows, table::stdout_width()));
    code
}

/// `--check`: each cut-over app's health check, run now where its container runs.
fn check_all(rows: &mut [AppStatus]) {
    let running: Vec<(&Scanned, &str)> = rows
        .iter()
        .filter(|r| r.lifecycle().serves())
        .filter_map(|r| {
            let c = r.container.as_ref().filter(|c| c.state == "running")?;
            Some((&r.scanned, c.name.as_str()))
        })
        .collect();
    let mut results = status_live::checks(&running);
    for r in rows.iter_mut() {
        if !r.lifecycle().serves() {
            continue;
        }
        r.check = Some(match results.remove(&r.scanned.app) {
            Some(Ok(said)) => CheckNow { ok: true, said },
            Some(Err(why)) => CheckNow {
                ok: false,
                said: why,
            },
            None => CheckNow {
                ok: false,
                said: match &r.container {
                    Some(c) if c.state != "running" => {
                        format!("not run: the container is {}", c.state)
                    }
                    _ if r.scanned.health.is_none() => {
                        "not run: no health check in its plan".into()
                    }
                    _ => format!("not run: {}", r.live),
                },
            },
        });
    }
}

/// Problems first (see [`AppStatus::rank`]), then by app.
fn sort(rows: &mut [AppStatus]) {
    rows.sort_by(|a, b| (a.rank(), &a.scanned.app).cmp(&(b.rank(), &b.scanned.app)));
}

/// Scans every app's state, on a few threads (the work is small files and hashing).
fn scan_all(dir: &StateDir, apps: &[String]) -> Vec<Scanned> {
    let threads = std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .clamp(1, 4);
    let chunk = apps.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = apps
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|a| {
                            status_scan::scan(dir, a).unwrap_or_else(|e| Scanned {
                                app: a.clone(),
                                lifecycle: Some(Lifecycle::Unknown),
                                result: "unreadable".into(),
                                failure: Some(e),
                                ..Scanned::default()
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_default())
            .collect()
    })
}

/// The row of `s`, with its container now (`found`) and the drift check.
fn with_live(dir: &StateDir, s: Scanned, found: Option<Found>, offline: bool) -> AppStatus {
    let mut row = AppStatus {
        container: None,
        expected_image_id: None,
        drift: None,
        live: if offline { "offline" } else { "no-container" }.into(),
        check: None,
        scanned: s,
    };
    let (Some(name), Some(found)) = (row.scanned.container_name.clone(), found) else {
        return row;
    };
    let c = match found {
        Err(e) => {
            row.live = e;
            return row;
        }
        Ok(c) => c,
    };
    row.live = "checked".into();
    let Some(c) = c else {
        row.container = Some(ContainerNow {
            name,
            state: "missing".into(),
            health: None,
            image_id: None,
            run: None,
        });
        return row;
    };
    let made_by = c.labels.get("boyong.run").cloned();
    row.expected_image_id = match (&made_by, &row.scanned.deploy_step) {
        (Some(r), Some(step)) if Some(r) != row.scanned.run.as_ref() => {
            status_scan::journaled_image(dir, &row.scanned.app, r, step)
        }
        _ => row.scanned.journaled_image_id.clone(),
    };
    row.drift = row.expected_image_id.as_ref().map(|e| *e != c.image_id);
    row.container = Some(ContainerNow {
        name,
        state: c.state,
        health: c.health,
        image_id: Some(c.image_id),
        run: made_by,
    });
    row
}

/// `sha256:0123456789ab…` as `0123456789ab`.
fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// The table.
fn render(rows: &[AppStatus], width: Option<usize>) -> String {
    const COLS: [Col; 7] = [
        Col::fixed("APP"),
        Col::cut("LIFECYCLE", 6, 7),
        Col::cut("RESULT", 5, 7),
        Col::cut("LAST RUN", 3, 8),
        Col::cut("CONTAINER", 4, 7),
        Col::cut("IMAGE", 2, 12),
        Col::cut("NOTE", 1, 4),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let s = &r.scanned;
            let (container, image) = match &r.container {
                None => ("-".to_string(), "-".to_string()),
                Some(c) => (
                    match (&c.health, &r.check) {
                        (_, Some(k)) if !k.ok => format!("{} CHECK FAILED", c.state),
                        (Some(h), _) => format!("{} ({h})", c.state),
                        (None, Some(_)) => format!("{} (check ok)", c.state),
                        (None, None) => c.state.clone(),
                    } + &s
                        .route
                        .as_ref()
                        .map(|rt| format!(", as {}", rt.host))
                        .unwrap_or_default(),
                    match (&c.image_id, r.drift, &r.expected_image_id) {
                        (Some(i), Some(true), Some(e)) => {
                            format!("{} DRIFT: journal {}", short(i), short(e))
                        }
                        (Some(i), _, _) => short(i),
                        (None, _, _) => "-".into(),
                    },
                ),
            };
            let note = match (&s.held_by, &s.failure) {
                (Some(h), _) => format!("locked by {h}"),
                _ if r.check.as_ref().is_some_and(|k| !k.ok) => {
                    r.check.as_ref().map(|k| k.said.clone()).unwrap_or_default()
                }
                (None, Some(f)) => f.clone(),
                _ if s.discovered.is_some() => s.discovered.clone().unwrap_or_default(),
                (None, None) if s.changes_in_place > 0 && s.result != "succeeded" => format!(
                    "{} change(s) in place: `boyong rollback {}`",
                    s.changes_in_place, s.app
                ),
                _ if !matches!(r.live.as_str(), "checked" | "offline" | "no-container") => {
                    r.live.clone()
                }
                _ => s
                    .assessment
                    .as_ref()
                    .map(|a| format!("assessment {}", a.verdict))
                    .unwrap_or_default(),
            };
            vec![
                s.app.clone(),
                r.lifecycle().word().into(),
                s.result.clone(),
                s.run.clone().unwrap_or_else(|| "-".into()),
                container,
                image,
                note,
            ]
        })
        .collect();
    table::render(&COLS, &cells, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(app: &str, lifecycle: Lifecycle, result: &str, drift: Option<bool>) -> AppStatus {
        AppStatus {
            scanned: Scanned {
                app: app.into(),
                lifecycle: Some(lifecycle),
                result: result.into(),
                run: Some("20261123T160102Z-3f9c".into()),
                ..Scanned::default()
            },
            container: drift.map(|_| ContainerNow {
                name: app.into(),
                state: "running".into(),
                health: None,
                image_id: Some("sha256:0123456789abcdef".into()),
                run: None,
            }),
            expected_image_id: drift.map(|_| "sha256:fedcba9876543210".into()),
            drift,
            live: "checked".into(),
            check: None,
        }
    }

    #[test]
    fn a_failed_check_sorts_with_the_problems_and_says_why() {
        let mut ok = row("alpha", Lifecycle::CutOver, "succeeded", Some(false));
        ok.check = Some(CheckNow {
            ok: true,
            said: "GET http://127.0.0.1:8080/ answered 200".into(),
        });
        let mut bad = row("zulu", Lifecycle::CutOver, "succeeded", Some(false));
        bad.check = Some(CheckNow {
            ok: false,
            said: "GET http://127.0.0.1:8081/ answered 404, expected 200".into(),
        });
        let mut rows = vec![ok, bad];
        sort(&mut rows);
        assert_eq!(rows[0].scanned.app, "zulu");
        let t = render(&rows, Some(200));
        let zulu = t
            .lines()
            .find(|l| l.starts_with("zulu"))
            .unwrap_or_default();
        assert!(
            zulu.contains("CHECK FAILED") && zulu.contains("answered 404"),
            "{t}"
        );
        let alpha = t
            .lines()
            .find(|l| l.starts_with("alpha"))
            .unwrap_or_default();
        assert!(alpha.contains("running (check ok)"), "{t}");
    }

    #[test]
    fn problems_sort_first_then_names() {
        let mut rows = [
            row("a-fine", Lifecycle::CutOver, "succeeded", Some(false)),
            row("b-undone", Lifecycle::RolledBack, "rolled-back", None),
            row("c-drift", Lifecycle::CutOver, "succeeded", Some(true)),
            row("d-failed", Lifecycle::Failed, "failed", None),
            row("e-broken", Lifecycle::Unknown, "journal-broken", None),
            row("f-busy", Lifecycle::Running, "in-progress", None),
            row("g-left", Lifecycle::Failed, "rollback-incomplete", None),
        ];
        sort(&mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r.scanned.app.as_str()).collect();
        assert_eq!(
            order,
            [
                "e-broken", "g-left", "d-failed", "c-drift", "f-busy", "b-undone", "a-fine"
            ]
        );
    }

    #[test]
    fn drift_is_named_in_the_table_and_the_table_fits() {
        let rows = [
            row("perizinan", Lifecycle::CutOver, "succeeded", Some(true)),
            row("sipkd", Lifecycle::CutOver, "succeeded", Some(false)),
        ];
        let t = render(&rows, None);
        assert!(
            t.lines()
                .nth(1)
                .is_some_and(|l| l.ends_with("0123456789ab DRIFT: journal fedcba987654")),
            "{t}"
        );
        for l in render(&rows, Some(72)).lines() {
            assert!(l.chars().count() <= 72, "{l:?}");
        }
    }
}
