//! `boyong run` and `boyong run --resume`; several playbooks (or a directory) make a batch
//! (`batch.rs`), whose apps each go through [`run_one`].

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use boyong::engine::journal::{self, HeaderFields, Journal};
use boyong::engine::lock::AppLock;
use boyong::engine::state::{RunDir, StateDir};
use boyong::engine::{
    EventSink, Executor, History, RollbackReport, RunOptions, RunOutcome, RunResult, Runner,
};
use boyong::plan::Plan;
use boyong::playbook::{Playbook, SecretStore};

use super::batch::Slot;
use super::report::Reporter;
use super::world::World;
use super::{exit, load_ready, lock_app, who};

/// Options of `boyong run`.
#[derive(Debug, Clone, clap::Args)]
#[expect(clippy::struct_excessive_bools, reason = "command-line flags")]
pub struct RunArgs {
    /// Continue the app's last unfinished run: steps done are checked and skipped.
    #[arg(long)]
    pub resume: bool,
    /// On a failure, leave the run's changes in place for inspection instead of
    /// undoing them.
    #[arg(long)]
    pub no_auto_rollback: bool,
    /// Print events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// Take the app's lock from a holder on another host or a dead process.
    #[arg(long)]
    pub break_lock: bool,
    /// Trust the vendor host's key if none is on record for it, and add it to the
    /// known_hosts file (journaled). A changed key is never accepted.
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Add a label to every image and container the run makes on the target.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = super::parse_label)]
    pub labels: Vec<(String, String)>,
    /// Run a plan saved by `boyong plan --out`: its hosts are probed again first, and the
    /// run is refused, naming what changed, unless everything it saw is still so.
    #[arg(long = "plan", value_name = "PLAN.json", conflicts_with = "resume")]
    pub saved_plan: Option<PathBuf>,
    /// Show the live plan and stop (the same as `boyong plan`): nothing is changed.
    #[arg(long)]
    pub dry_run: bool,
    /// A batch: how many apps run at once (default 1). Several playbooks or a directory
    /// make a batch.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// A batch: after the first app fails, start no other and interrupt the running ones.
    #[arg(long)]
    pub fail_fast: bool,
}

/// Runs one playbook, or a batch (several, a directory, `--jobs`, `--fail-fast`).
pub fn run(state: &Path, files: &[PathBuf], args: &RunArgs) -> u8 {
    if args.dry_run {
        if args.saved_plan.is_some() {
            say!(
                "boyong run: --dry-run shows a new plan; use `boyong plan` to look at a saved one"
            );
            return exit::BAD_INPUT;
        }
        return super::plan::plan(state, files, false, args.json, None);
    }
    if let Some(saved) = &args.saved_plan {
        if !files.is_empty() {
            say!(
                "boyong run: give either playbooks or --plan, not both (the plan names its playbook)"
            );
            return exit::BAD_INPUT;
        }
        return super::saved::run_saved(state, saved, args);
    }
    if super::batch::is_batch(files, args) {
        return super::batch::run(state, files, args);
    }
    files
        .iter()
        .map(|f| run_one(state, f, args, None))
        .max()
        .unwrap_or(exit::OK)
}

/// One app's run; in a batch, `batch` takes its events, its cancellation and its outcome.
pub fn run_one(state: &Path, file: &Path, args: &RunArgs, batch: Option<&Slot<'_>>) -> u8 {
    let Ok(ready) = load_ready(file, "boyong run") else {
        return exit::BAD_INPUT;
    };
    // Rollback finds the playbook's folder (for its key files) from the absolute path.
    let plan = super::plan::offline(&ready, file, false);
    run_planned(state, file, &ready, plan, args, None, batch)
}

/// Runs `plan`, made from `ready`; `note` (e.g. which saved plan this is) goes into the
/// journal first.
pub(super) fn run_planned(
    state: &Path,
    file: &Path,
    ready: &super::Ready,
    mut plan: Plan,
    args: &RunArgs,
    note: Option<(&str, String)>,
    batch: Option<&Slot<'_>>,
) -> u8 {
    let (pb, secrets) = (&ready.playbook, &ready.secrets);
    let world = match World::for_playbook(
        Some((pb.clone(), secrets.clone())),
        args.accept_new_host_key,
        &args.labels,
    ) {
        Ok(w) => w,
        Err(e) => {
            say!("boyong run: {e}");
            return exit::BAD_INPUT;
        }
    };
    let world = &world;
    for step in &plan.steps {
        if let Err(why) = world.supports(step) {
            say!(
                "boyong run: `{}` cannot run: step `{}`: {why}; nothing was changed",
                pb.app,
                step.id
            );
            return exit::FAILED;
        }
    }
    let dir = StateDir::new(state);
    let lock = match lock_app(&dir, &pb.app, "boyong run", args.break_lock) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let opened = if args.resume {
        reopen(&dir, pb, &ready.text, &mut plan)
    } else {
        create(&dir, pb, &ready.text, &mut plan)
    };
    let (run, mut journal, earlier) = match opened {
        Ok(o) => o,
        Err(code) => return code,
    };
    if let Some((kind, text)) = note
        && let Err(e) = journal.append(&boyong::engine::journal::Record::Note {
            kind: kind.into(),
            text,
        })
    {
        say!("boyong run: {e}; nothing was changed");
        return exit::FAILED;
    }
    let code = execute(
        world,
        &run,
        journal,
        earlier.as_ref(),
        &plan,
        secrets,
        &lock,
        file,
        args,
        batch,
    );
    drop(lock);
    code
}

/// A new run: its directory, `playbook.yml`, `plan.json` and the journal's header.
fn create(
    dir: &StateDir,
    pb: &Playbook,
    text: &str,
    plan: &mut Plan,
) -> Result<(RunDir, Journal, Option<History>), u8> {
    let fail = |e: String| {
        say!("boyong run: {e}; nothing was changed");
        exit::FAILED
    };
    let now = SystemTime::now();
    let run = dir
        .create_run(&pb.app, now, next_suffix(dir, &pb.app, now))
        .map_err(|e| fail(e.to_string()))?;
    plan.for_run(run.id().as_str());
    let started = (|| {
        let plan_json = serde_json::to_string_pretty(&*plan).map_err(|e| e.to_string())? + "\n";
        write_new(&run.playbook_path(), text.as_bytes())?;
        write_new(&run.plan_path(), plan_json.as_bytes())?;
        let (operator, host) = who();
        Journal::create(
            &run.journal_path(),
            &HeaderFields {
                run: run.id().to_string(),
                app: pb.app.clone(),
                playbook_sha256: pb.sha256.clone(),
                plan_sha256: journal::sha256_hex(plan_json.as_bytes()),
                operator,
                host,
                started: now,
            },
        )
        .map_err(|e| e.to_string())
    })();
    let journal = started.map_err(|e| {
        // The run never began: leave no half-made run directory behind.
        let _ = fs::remove_dir_all(run.path());
        fail(e)
    })?;
    Ok((run, journal, None))
}

/// `--resume`: the app's last run, if it is unfinished and its playbook unchanged.
fn reopen(
    dir: &StateDir,
    pb: &Playbook,
    text: &str,
    plan: &mut Plan,
) -> Result<(RunDir, Journal, Option<History>), u8> {
    let refuse = |e: String| {
        say!("boyong run --resume: {e}");
        exit::BAD_INPUT
    };
    let id = match dir.latest_run(&pb.app) {
        Ok(Some(id)) => id,
        Ok(None) => {
            return Err(refuse(format!(
                "app `{}` has no run to resume; run it without --resume",
                pb.app
            )));
        }
        Err(e) => return Err(refuse(e.to_string())),
    };
    let run = dir.run(&pb.app, &id).map_err(|e| refuse(e.to_string()))?;
    let contents = journal::read(&run.journal_path()).map_err(|e| refuse(e.to_string()))?;
    let h = History::from_journal(&contents);
    if h.rollback_unfinished {
        return Err(refuse(format!(
            "a rollback of the last run of `{}` ({id}) began and did not finish: finish it with `boyong rollback {}` first",
            pb.app, pb.app
        )));
    }
    match (h.result, h.unfinished_tail) {
        (Some(RunResult::Succeeded), false) => {
            return Err(refuse(format!(
                "the last run of `{}` ({id}) succeeded: nothing to resume",
                pb.app
            )));
        }
        (Some(RunResult::RolledBack), false) => {
            return Err(refuse(format!(
                "the last run of `{}` ({id}) was rolled back: start a new run without --resume",
                pb.app
            )));
        }
        (Some(RunResult::RollbackIncomplete), false) => {
            return Err(refuse(format!(
                "the last run of `{}` ({id}) has an incomplete rollback: finish it with `boyong rollback {}` first",
                pb.app, pb.app
            )));
        }
        _ => {}
    }
    let before = fs::read_to_string(run.playbook_path()).map_err(|e| {
        refuse(format!(
            "cannot read {}: {e}",
            run.playbook_path().display()
        ))
    })?;
    if before != text {
        say!(
            "boyong run --resume: refused: the playbook changed since run {id} started; a resumed run must do what the run began.\n{}",
            line_diff(&before, text)
        );
        say!(
            "roll the run back (`boyong rollback {}`) and start a new one, or restore the playbook",
            pb.app
        );
        return Err(exit::BAD_INPUT);
    }
    plan.for_run(id.as_str());
    let (mut journal, _) =
        Journal::open_append(&run.journal_path()).map_err(|e| refuse(e.to_string()))?;
    let (operator, host) = who();
    let mut note = format!("resumed by {operator} on {host}");
    if let Some(n) = journal.repaired_torn_tail() {
        let _ = write!(
            note,
            "; a torn last line ({n} bytes, never acknowledged) was dropped"
        );
    }
    journal
        .append(&boyong::engine::journal::Record::Note {
            kind: "resumed".into(),
            text: note,
        })
        .map_err(|e| refuse(e.to_string()))?;
    Ok((run, journal, Some(h)))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces of a run"
)]
fn execute(
    world: &World,
    run: &RunDir,
    journal: Journal,
    earlier: Option<&History>,
    plan: &Plan,
    secrets: &SecretStore,
    lock: &AppLock,
    file: &Path,
    args: &RunArgs,
    batch: Option<&Slot<'_>>,
) -> u8 {
    let started = match batch {
        Some(slot) => slot.start(run),
        None => Reporter::start("boyong run", args.json, &run.log_path())
            .map(|(r, rt)| (Box::new(r) as Box<dyn EventSink>, rt)),
    };
    let Ok((mut sink, rt)) = started else {
        return exit::FAILED;
    };
    let opts = RunOptions {
        auto_rollback: !args.no_auto_rollback,
        retry_delay: Duration::from_secs(2),
    };
    let app = plan.app.clone();
    let outcome = rt.block_on(async {
        // A batch watches Ctrl-C (and --fail-fast) for all its runs.
        let mut rx = if let Some(slot) = batch {
            slot.cancel()
        } else {
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    say!("interrupt: stopping the step in flight (Ctrl-C again to quit at once; the journal stays consistent)");
                    let _ = tx.send(true);
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            });
            rx
        };
        let mut ex = Executor::new(world, journal, &mut *sink, secrets, run.artifacts_dir());
        if let Some(b) = lock.broken() {
            ex.note("lock-broken", &b.to_string())?;
        }
        ex.run(plan, earlier, opts, &mut rx).await
    });
    drop(sink);
    if let Some(slot) = batch {
        return slot.finished(&outcome);
    }
    let id = run.id();
    match outcome {
        Ok(RunOutcome::Succeeded) => {
            if args.json {
                say!("`{app}`: run {id} succeeded");
            } else {
                println!("`{app}`: run {id} succeeded");
            }
            exit::OK
        }
        Ok(RunOutcome::Failed {
            step,
            error,
            rollback,
        }) => {
            say!("`{app}`: run {id} FAILED at step `{step}`: {error}");
            match rollback {
                Some(r) if r.is_complete() => {
                    say!(
                        "everything this run changed was undone ({} change(s)); fix the cause and run again",
                        r.undone.len()
                    );
                    exit::FAILED
                }
                Some(r) => {
                    print_left(&r, &app);
                    exit::ROLLBACK_INCOMPLETE
                }
                None => {
                    say!(
                        "its changes are left in place for inspection: undo them with `boyong rollback {app}`, or finish with `boyong run {} --resume`",
                        file.display()
                    );
                    exit::FAILED
                }
            }
        }
        Ok(RunOutcome::Interrupted { step }) => {
            say!(
                "`{app}`: run {id} interrupted during step `{step}`; the journal is consistent.\nundo what it changed with `boyong rollback {app}`, or continue with `boyong run {} --resume`",
                file.display()
            );
            exit::FAILED
        }
        Err(e) => {
            say!(
                "`{app}`: run {id} STOPPED: {e}\nno change was made after the last journaled record; free the disk and run `boyong rollback {app}` or `boyong run {} --resume`",
                file.display()
            );
            exit::FAILED
        }
    }
}

/// Says what a partial rollback left and how to finish it.
pub fn print_left(r: &RollbackReport, app: &str) {
    if let Some((item, e)) = &r.failed {
        say!(
            "rollback INCOMPLETE: undoing {} ({}, step `{}`) failed: {e}",
            item.change_id,
            item.summary(),
            item.step
        );
    }
    say!("still in place, newest first:");
    for item in &r.left {
        let happened = if item.done {
            ""
        } else {
            " (may not have happened)"
        };
        say!(
            "  {} {}  [step `{}`]{happened}",
            item.change_id,
            item.summary(),
            item.step
        );
    }
    say!("fix the cause and run `boyong rollback {app}` again: it continues from there");
}

/// Writes a new file and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The random part of a new run's id, above any run's of the same second, so that ids
/// keep sorting in the order runs began (the app's lock is held, so none can race).
fn next_suffix(dir: &StateDir, app: &str, now: SystemTime) -> u16 {
    let Ok(probe) = boyong::engine::state::RunId::new(now, 0) else {
        return suffix(now);
    };
    let second = &probe.as_str()[..probe.as_str().len() - 4];
    let last = dir
        .runs(app)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.as_str().starts_with(second))
        .filter_map(|r| u16::from_str_radix(&r.as_str()[second.len()..], 16).ok())
        .max();
    match last {
        Some(n) => n.saturating_add(1),
        None => suffix(now) & 0x7fff,
    }
}

/// A run id's random part: time and pid mixed (ids also sort by time).
fn suffix(now: SystemTime) -> u16 {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = nanos ^ std::process::id().rotate_left(16) ^ (nanos >> 16);
    u16::try_from(mixed & 0xffff).unwrap_or(0)
}

/// The lines that differ between two texts, with line numbers (common head and tail
/// trimmed; at most 20 lines each side).
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut out = String::new();
    for (i, l) in a[head..a.len() - tail].iter().enumerate().take(20) {
        let _ = writeln!(out, "  - line {}: {l}", head + i + 1);
    }
    for (i, l) in b[head..b.len() - tail].iter().enumerate().take(20) {
        let _ = writeln!(out, "  + line {}: {l}", head + i + 1);
    }
    if out.is_empty() {
        out.push_str("  (only line endings or the final newline differ)\n");
    }
    out
}
