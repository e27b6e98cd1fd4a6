//! `boyong run A.yml B.yml DIR/ … [--jobs N] [--fail-fast]`: a batch of apps.
//!
//! Owns running many apps' playbooks from one command: the inputs (a directory means each
//! `*.yml`/`*.yaml` in it, sorted), checking them all before anything runs (any playbook
//! error, missing secret or app named twice: exit 2 and nothing runs, like a compiler), up
//! to `--jobs` apps at once, each on its own thread with its own runtime, lock and journal
//! through [`run_one`], the live view (`batch_view.rs`), `--fail-fast` and Ctrl-C (both
//! interrupt the running apps through the executor's cancellation and start no other),
//! and the summary table. Exit status: the worst of the apps' (0 all succeeded, 1 one
//! failed or was interrupted, 3 a rollback was incomplete), 2 for bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use boyong::engine::state::RunDir;
use boyong::engine::{EventSink, RunOutcome};
use boyong::playbook;

use super::batch_view::{View, secs};
use super::error::{self, CliError, Kind, Result};
use super::load::{env_lookup, load_ready};
use super::run::{Outcome, RunArgs, Slot, run_one};
use super::table::{self, Col};

/// Whether `boyong run` was given a batch: several playbooks, a directory, or a batch flag.
pub fn is_batch(files: &[PathBuf], args: &RunArgs) -> bool {
    files.len() > 1 || files.iter().any(|f| f.is_dir()) || args.jobs.is_some() || args.fail_fast
}

/// One app of the batch, and how it went.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    app: String,
    file: PathBuf,
    /// `waiting` until it starts; then a run's result (`succeeded`, `rolled-back`,
    /// `failed`, `rollback-incomplete`, `interrupted`), `refused` (it stopped before its
    /// run began: the lock held, a host unsupported; the reason is above the summary),
    /// or `not-started` (`--fail-fast` or Ctrl-C came first).
    result: String,
    run: Option<String>,
    step: Option<String>,
    error: Option<String>,
    /// What to do next, for a run that did not succeed.
    hint: Option<String>,
    seconds: Option<f64>,
    /// Its exit status, as a single run's.
    #[serde(serialize_with = "exit_status")]
    exit: Option<Kind>,
    #[serde(skip)]
    started: Option<Instant>,
}

/// The batch in flight, shared by its threads.
struct Batch {
    rows: Mutex<Vec<Row>>,
    next: Mutex<usize>,
    /// Set by `--fail-fast` after a failure, or by Ctrl-C: start no other app.
    stop: AtomicBool,
    cancel: tokio::sync::watch::Sender<bool>,
    view: View,
    pad: usize,
}

impl Batch {
    fn row<T>(&self, i: usize, f: impl FnOnce(&mut Row) -> T) -> Option<T> {
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rows.get_mut(i).map(f)
    }

    /// Starts no other app, and interrupts the running ones.
    fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Kept even with no receiver yet: an app between `take` and its first step sees it.
        self.cancel.send_replace(true);
    }

    /// The next app to start, unless the batch is stopping.
    fn take(&self) -> Option<usize> {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.stop.load(Ordering::SeqCst) {
            return None;
        }
        let i = *next;
        *next += 1;
        Some(i)
    }
}

/// The JSON of a row's exit status: a number.
#[expect(
    clippy::ref_option,
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with signature"
)]
fn exit_status<S: serde::Serializer>(
    kind: &Option<Kind>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u8(kind.map_or(error::OK, Kind::code))
}

/// What [`run_one`] is given in a batch: where its run's events, cancellation and
/// outcome go.
struct AppSlot<'a> {
    batch: &'a Batch,
    index: usize,
}

impl Slot for AppSlot<'_> {
    /// The run's event sink (its log, the batch's view) and its runtime.
    fn start(&self, run: &RunDir) -> Result<(Box<dyn EventSink>, tokio::runtime::Runtime)> {
        self.batch.row(self.index, |r| {
            r.run = Some(run.id().to_string());
        });
        let app = self.app();
        let fail = |e: String| CliError::failed(format!("boyong run: {e}"));
        let sink = self
            .batch
            .view
            .sink(&app, self.batch.pad, &run.log_path())
            .map_err(fail)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the runtime: {e}")))?;
        Ok((Box::new(sink), rt))
    }

    fn cancel(&self) -> tokio::sync::watch::Receiver<bool> {
        self.batch.cancel.subscribe()
    }

    fn finished(&self, outcome: &Outcome) -> Result {
        let kind = self
            .batch
            .row(self.index, |r| {
                let (result, kind) = describe(r, outcome);
                r.result = result.into();
                r.exit = kind;
                kind
            })
            .unwrap_or(Some(Kind::Failed));
        error::worst(kind)
    }
}

impl AppSlot<'_> {
    fn app(&self) -> String {
        self.batch
            .row(self.index, |r| r.app.clone())
            .unwrap_or_default()
    }
}

/// Fills `r`'s step, error and hint from `outcome`; its result word and how it failed.
fn describe(r: &mut Row, outcome: &Outcome) -> (&'static str, Option<Kind>) {
    let (app, file) = (r.app.clone(), r.file.display().to_string());
    match outcome {
        Ok(RunOutcome::Succeeded) => ("succeeded", None),
        Ok(RunOutcome::Failed {
            step,
            error,
            rollback,
        }) => {
            r.step = Some(step.clone());
            r.error = Some(error.clone());
            match rollback {
                Some(rb) if rb.is_complete() => {
                    r.hint = Some(format!(
                        "everything it changed was undone ({} change(s)); fix the cause and run it again",
                        rb.undone.len()
                    ));
                    ("rolled-back", Some(Kind::Failed))
                }
                Some(rb) => {
                    r.hint = Some(format!(
                        "rollback INCOMPLETE, {} change(s) still in place: `boyong rollback {app} --plan` lists them; fix the cause and run `boyong rollback {app}`",
                        rb.left.len()
                    ));
                    ("rollback-incomplete", Some(Kind::RollbackIncomplete))
                }
                None => {
                    r.hint = Some(format!(
                        "its changes are left in place: `boyong rollback {app}`, or `boyong run {file} --resume`"
                    ));
                    ("failed", Some(Kind::Failed))
                }
            }
        }
        Ok(RunOutcome::Interrupted { step }) => {
            r.step = Some(step.clone());
            r.hint = Some(format!(
                "the journal is consistent: `boyong rollback {app}`, or `boyong run {file} --resume`"
            ));
            ("interrupted", Some(Kind::Failed))
        }
        Err(e) => {
            r.error = Some(e.to_string());
            r.hint = Some(format!(
                "no change was made after its last journal record: `boyong rollback {app}` or `boyong run {file} --resume`"
            ));
            ("failed", Some(Kind::Failed))
        }
    }
}

/// Every playbook's app, or bad input after printing every problem: a playbook that does
/// not validate or lacks a secret (with its file:line:col diagnostics), an app named
/// twice.
fn check_all(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut apps = Vec::new();
    let mut bad = 0;
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    for f in files {
        let loaded = playbook::load(f);
        let app = loaded.playbook.as_ref().and_then(|pb| {
            let (_, problems) = playbook::check_local_inputs(pb, &env_lookup);
            let ok = !loaded
                .diagnostics
                .iter()
                .any(boyong::diag::Diagnostic::is_error)
                && !problems.iter().any(boyong::diag::Diagnostic::is_error);
            ok.then(|| pb.app.clone())
        });
        let Some(app) = app else {
            // Prints the diagnostics and says why, as a single run would.
            if let Err(e) = load_ready(f, "boyong run") {
                e.render();
            }
            bad += 1;
            continue;
        };
        if let Some(first) = seen.get(&app) {
            eprintln!(
                "boyong run: app `{app}` is in {} and in {}: one app runs once per batch",
                first.display(),
                f.display()
            );
            bad += 1;
        } else {
            seen.insert(app.clone(), f);
        }
        apps.push(app);
    }
    if bad > 0 {
        return Err(CliError::bad_input(format!(
            "boyong run: refused: {bad} of {} playbook(s) cannot run; nothing was run or changed",
            files.len()
        )));
    }
    Ok(apps)
}

/// `boyong run` with a batch.
pub fn run(state: &Path, files: &[PathBuf], args: &RunArgs) -> Result {
    let files = super::plan::expand(files)
        .map_err(|e| CliError::bad_input(format!("boyong run: {e}; nothing was run")))?;
    let apps = check_all(&files)?;
    let jobs = usize::from(args.jobs.unwrap_or(1)).min(apps.len()).max(1);
    let batch = Batch {
        rows: Mutex::new(
            apps.iter()
                .zip(&files)
                .map(|(app, file)| Row {
                    app: app.clone(),
                    file: file.clone(),
                    result: "waiting".into(),
                    run: None,
                    step: None,
                    error: None,
                    hint: None,
                    seconds: None,
                    exit: None,
                    started: None,
                })
                .collect(),
        ),
        next: Mutex::new(0),
        stop: AtomicBool::new(false),
        cancel: tokio::sync::watch::channel(false).0,
        view: super::batch_view::View::new(args.json),
        pad: apps.iter().map(String::len).max().unwrap_or(3),
    };
    batch.view.say(&format!(
        "batch of {} app(s), {jobs} at a time{}",
        apps.len(),
        if args.fail_fast { ", --fail-fast" } else { "" }
    ));
    let t0 = Instant::now();
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    std::thread::scope(|s| {
        let batch = &batch;
        s.spawn(move || watch_interrupt(batch, done_rx));
        let workers: Vec<_> = (0..jobs)
            .map(|_| s.spawn(|| worker(batch, state, &files, args)))
            .collect();
        for w in workers {
            if w.join().is_err() {
                // A run's thread panicked: the others went on; its row says `failed`.
                batch.view.say("boyong run: a run's thread panicked");
            }
        }
        let _ = done_tx.send(true);
    });
    let rows = batch
        .rows
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    summary(&rows, t0.elapsed(), args.json)
}

/// A worker thread: takes the next app until none is left or the batch stops.
fn worker(batch: &Batch, state: &Path, files: &[PathBuf], args: &RunArgs) {
    while let Some(i) = batch.take() {
        let Some(file) = files.get(i) else { return };
        let t = Instant::now();
        batch.row(i, |r| {
            r.result = "refused".into();
            r.started = Some(t);
        });
        let slot = AppSlot { batch, index: i };
        let app = slot.app();
        // What the run path says before or beside its events (a lock refusal, a failure)
        // goes above the live lines, named for its app.
        let said = super::say::say_through(batch.view.printer(&app));
        let result = run_one(state, file, args, Some(&slot));
        if let Err(e) = &result {
            e.render();
        }
        drop(said);
        let failed = result.err().map(|e| e.kind());
        batch.row(i, |r| {
            r.seconds = Some(t.elapsed().as_secs_f64());
            r.exit = failed;
            if r.run.is_none() && failed.is_some() {
                r.hint =
                    Some("it stopped before its run began: the reason is printed above".into());
            }
        });
        if failed.is_some() && args.fail_fast && !batch.stop.load(Ordering::SeqCst) {
            let app = batch.row(i, |r| r.app.clone()).unwrap_or_default();
            batch.view.say(&format!(
                "--fail-fast: `{app}` did not succeed; interrupting the running apps and starting no other"
            ));
            batch.halt();
        }
    }
}

/// Ctrl-C: the running apps are interrupted (each journal stays consistent) and no other
/// starts; a second Ctrl-C quits at once. Returns when `done` turns true.
fn watch_interrupt(batch: &Batch, mut done: tokio::sync::watch::Receiver<bool>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                if r.is_err() {
                    return;
                }
                batch.view.say("interrupt: stopping every app's step in flight and starting no other (Ctrl-C again to quit at once; the journals stay consistent)");
                batch.halt();
            }
            _ = done.wait_for(|d| *d) => return,
        }
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                if r.is_ok() {
                    super::quit_now();
                }
            }
            _ = done.wait_for(|d| *d) => {}
        }
    });
}

/// The summary's columns.
const COLS: [Col; 5] = [
    Col::fixed("APP"),
    Col::fixed("RESULT"),
    Col::cut("STEP / ERROR", 1, 20),
    Col::fixed("TIME"),
    Col::cut("RUN", 2, 10),
];

/// Prints the summary (a table, or a JSON line with `--json`); the batch's result: the
/// worst of its apps'.
fn summary(rows: &[Row], took: Duration, json: bool) -> Result {
    let rows: Vec<Row> = rows
        .iter()
        .cloned()
        .map(|mut r| {
            if r.result == "waiting" {
                r.result = "not-started".into();
                r.exit = Some(Kind::Failed);
            }
            r
        })
        .collect();
    let worst = rows.iter().filter_map(|r| r.exit).max();
    let ok = rows.iter().filter(|r| r.exit.is_none()).count();
    if json {
        let line = serde_json::json!({
            "event": "batch-finished",
            "apps": rows,
            "succeeded": ok,
            "seconds": took.as_secs_f64(),
            "exit": worst.map_or(error::OK, Kind::code),
        });
        println!("{line}");
        return error::worst(worst);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let what = match (&r.step, &r.error) {
                (Some(s), Some(e)) => format!("`{s}`: {}", first_line(e)),
                (Some(s), None) => format!("during `{s}`"),
                (None, Some(e)) => first_line(e).to_string(),
                (None, None) => String::new(),
            };
            vec![
                r.app.clone(),
                r.result.clone(),
                what,
                r.seconds
                    .map_or_else(|| "-".into(), |s| secs(Duration::from_secs_f64(s))),
                r.run.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    println!();
    print!("{}", table::render(&COLS, &cells, table::stdout_width()));
    println!("{ok} of {} app(s) succeeded in {}", rows.len(), secs(took));
    for r in rows.iter().filter(|r| r.exit.is_some()) {
        if let Some(h) = &r.hint {
            eprintln!("{}: {}", r.app, boyong::escape::controls(h));
        }
    }
    error::worst(worst)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
