//! `boyong assess APP|PLAYBOOK [--json]`: the same requests sent to the vendor's site and
//! to the migrated one (the playbook's `assess:` section), compared side by side. With an
//! app's name, the playbook of its last run is used; with a file, that playbook. The
//! result is kept as the app's last assessment (`apps/<app>/assessment.json`, which
//! `status` shows). Exit status 0 when it passed, 1 when a threshold failed (each failure
//! names the request and the figure), 2 for bad input (no `assess:` section, a playbook
//! error, a missing secret). Header values and request bodies are never printed.

use std::fmt::Write as _;
use std::path::Path;

use boyong::assess::{self, Assessment, PathResult, Side};
use boyong::engine::state::StateDir;

use super::error::{CliError, Result};
use super::load::{load_ready, load_saved};
use super::table::{Col, render, stdout_width};

const CMD: &str = "boyong assess";

/// `boyong assess`.
pub fn assess(state: &Path, what: &str, json: bool) -> Result {
    let dir = StateDir::new(state);
    let file = Path::new(what);
    let (ready, playbook_path) = if file.is_file() {
        (load_ready(file, "assess")?, file.to_path_buf())
    } else {
        let run = dir
            .latest_run(what)
            .map_err(|e| CliError::bad_input(format!("{CMD}: {e}")))?
            .ok_or_else(|| {
                CliError::bad_input(format!(
                    "{CMD}: `{what}` is neither a playbook file nor an app with a run in {}",
                    state.display()
                ))
            })?;
        let run = dir
            .run(what, &run)
            .map_err(|e| CliError::bad_input(format!("{CMD}: {e}")))?;
        let (origin, bytes) = boyong::engine::open::playbook_as_run(&run);
        (load_saved(&origin, &bytes, "assess")?, origin)
    };
    let app = ready.playbook.app.clone();
    let Some(section) = &ready.playbook.assess else {
        return Err(CliError::bad_input(format!(
            "{CMD}: the playbook {} has no `assess:` section",
            playbook_path.display()
        ))
        .hint("add `assess: { vendor_url: http://…, target_url: http://…, paths: [\"/\"] }` (docs/playbook.md)"));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("{CMD}: cannot start the runtime: {e}")))?;
    let result = rt
        .block_on(assess::assess(section, &ready.secrets))
        .map_err(|e| CliError::bad_input(format!("{CMD}: {e}")))?;
    // A page that echoes a header's secret (a cookie, a token in a link) shows it in a
    // diff, a path or a redirect: redacted before it is kept or shown, as a run's step is.
    let redactor = boyong::engine::Redactor::new(&ready.secrets);
    let result: assess::Assessment = serde_json::to_value(&result)
        .map(|v| redactor.values(&v))
        .and_then(serde_json::from_value)
        .map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    let kept = assess::store::save(&dir, &app, &result)
        .map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    if json {
        let text = serde_json::to_string_pretty(&result)
            .map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", human(&result));
        eprintln!("{CMD}: kept as {}", kept.display());
    }
    if result.passed {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{CMD}: `{app}` {}: {}",
            result.verdict(),
            result.failures.join("; ")
        )))
    }
}

/// The side-by-side table, the failures and the first diff.
fn human(a: &Assessment) -> String {
    let mut out = format!(
        "assessment of {} (vendor) against {} (target): {} repeats, {} at once, {} requests in {:.1} s\n\n",
        a.vendor_url, a.target_url, a.repeat, a.concurrency, a.requests_sent, a.seconds
    );
    let cols = [
        Col::cut("REQUEST", 1, 12),
        Col::fixed("STATUS"),
        Col::fixed("SIZE"),
        Col::fixed("HASH"),
        Col::fixed("MEDIAN ms"),
        Col::fixed("P95 ms"),
        Col::fixed("MAX ms"),
        Col::fixed("VERDICT"),
    ];
    let rows: Vec<Vec<String>> = a.results.iter().map(row).collect();
    out.push_str(&render(&cols, &rows, stdout_width()));
    out.push('\n');
    for f in &a.failures {
        out.push_str("FAIL ");
        out.push_str(f);
        out.push('\n');
    }
    if let Some(d) = a.results.iter().find_map(|r| r.diff.as_deref()) {
        out.push('\n');
        out.push_str(d);
    }
    let _ = write!(out, "\nverdict: {}\n", a.verdict());
    out
}

/// One row: each figure as `vendor → target`.
fn row(r: &PathResult) -> Vec<String> {
    let both = |f: &dyn Fn(&Side) -> String| {
        let v = r.vendor.as_ref().map_or("-".into(), f);
        let t = r.target.as_ref().map_or("-".into(), f);
        if v == t { v } else { format!("{v} → {t}") }
    };
    vec![
        format!("{} {}", r.method, r.path),
        both(&|s| match &s.location {
            Some(l) => format!("{} {l}", s.status),
            None => s.status.to_string(),
        }),
        both(&|s| s.size.to_string()),
        both(&|s| s.hash.chars().take(8).collect()),
        both(&|s| format!("{:.1}", s.median_ms)),
        both(&|s| format!("{:.1}", s.p95_ms)),
        both(&|s| format!("{:.1}", s.max_ms)),
        if r.failures.is_empty() {
            "ok".into()
        } else {
            format!("FAIL ({})", r.failures.len())
        },
    ]
}
