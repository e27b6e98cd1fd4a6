//! `boyong run` of one app, and `boyong run --resume`: the playbook loaded, its plan
//! made, the world chosen, the app's lock taken, the run opened by the engine
//! (`engine::open`), executed with Ctrl-C watched, and its outcome worded.
//!
//! A batch (`batch.rs`) runs each of its apps through [`run_one`] with a [`Slot`] that
//! takes the run's events, cancellation and outcome; a saved plan (`saved.rs`) goes
//! through [`run_planned`]. This file knows neither: they call it, never the other way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use boyong::engine::journal::Record;
use boyong::engine::lock::AppLock;
use boyong::engine::open::{OpenedRun, create_run, reopen_run};
use boyong::engine::state::{RunDir, StateDir};
use boyong::engine::{EngineError, EventSink, Executor, RunOptions, RunOutcome, Runner};
use boyong::plan::Plan;
use boyong::secret::SecretStore;

use super::error::{CliError, Result};
use super::events::Reporter;
use super::load::{Ready, load_ready};
use super::rollback::left_in_place;
use super::world::World;

/// Options of `boyong run`.
#[derive(Debug, Clone, clap::Args)]
#[expect(clippy::struct_excessive_bools, reason = "command-line flags")]
pub struct RunArgs {
    /// Continue the app's last unfinished run: steps done are checked and skipped. After
    /// an edit of the playbook, the steps that changed are shown and redone from the
    /// first one (refused, naming the step, when that is not safe).
    #[arg(long)]
    pub resume: bool,
    /// Let `fetch` and `dump` take the verified artifact of an earlier run of the app
    /// whose inputs (host, path, exclude, …; database, user, …) are the same, pulled at
    /// most MAX_AGE ago (default 24h; e.g. `7d`, `36h`), instead of pulling again. Off
    /// unless given: a run pulls fresh data.
    #[arg(long, value_name = "MAX_AGE", num_args = 0..=1, require_equals = true,
          default_missing_value = "24h", value_parser = parse_max_age)]
    pub reuse_artifacts: Option<Duration>,
    /// On a failure, leave the run's changes in place for inspection instead of
    /// undoing them.
    #[arg(long)]
    pub no_auto_rollback: bool,
    /// Print events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// Show every line of a step's output (a build's `run` commands); without it a build
    /// says a line a phase. `--json` and the run's log.jsonl always hold them all.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Take the app's lock from a holder on another host or a dead process.
    #[arg(long)]
    pub break_lock: bool,
    /// Trust the vendor host's key if none is on record for it, and add it to the
    /// known_hosts file (journaled). A changed key is never accepted.
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Add a label to every image and container the run makes on the target.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
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

/// Where a run of a batch sends its events, takes its cancellation from, and tells how
/// it ended (the batch implements it).
pub trait Slot {
    /// The run's event sink and the runtime it runs on.
    fn start(&self, run: &RunDir) -> Result<(Box<dyn EventSink>, tokio::runtime::Runtime)>;
    /// The batch's cancellation: set by Ctrl-C or `--fail-fast`.
    fn cancel(&self) -> tokio::sync::watch::Receiver<bool>;
    /// Records how the run ended. The result is a single run's, with nothing more to
    /// say: the batch's summary says it.
    fn finished(&self, outcome: &Outcome) -> Result;
}

/// How the engine ended a run.
pub type Outcome = std::result::Result<RunOutcome, EngineError>;

/// One app's run; in a batch, `slot` takes its events, its cancellation and its outcome.
pub fn run_one(state: &Path, file: &Path, args: &RunArgs, slot: Option<&dyn Slot>) -> Result {
    let ready = load_ready(file, "boyong run")?;
    // Rollback finds the playbook's folder (for its key files) from the absolute path.
    let plan = super::plan::offline(&ready, file, false);
    run_planned(state, file, &ready, plan, args, None, slot)
}

/// Runs `plan`, made from `ready`; `note` (e.g. which saved plan this is) goes into the
/// journal first.
pub fn run_planned(
    state: &Path,
    file: &Path,
    ready: &Ready,
    mut plan: Plan,
    args: &RunArgs,
    note: Option<(&str, String)>,
    slot: Option<&dyn Slot>,
) -> Result {
    let (pb, secrets) = (&ready.playbook, &ready.secrets);
    let world = World::for_playbook(
        Some((pb.clone(), secrets.clone())),
        args.accept_new_host_key,
        &args.labels,
    )
    .map_err(|e| CliError::bad_input(format!("boyong run: {e}")))?;
    for step in &plan.steps {
        world.supports(step).map_err(|why| {
            CliError::failed(format!(
                "boyong run: `{}` cannot run: step `{}`: {why}; nothing was changed",
                pb.app, step.id
            ))
        })?;
    }
    let dir = StateDir::new(state);
    let lock = super::lock_app(&dir, &pb.app, "boyong run", args.break_lock)?;
    let who = super::who();
    let key = super::journal::key(state, "boyong run")?;
    let mut opened = if args.resume {
        reopen_run(&dir, pb, &ready.text, &mut plan, &who, Some(&key))?
    } else {
        create_run(&dir, pb, &ready.text, &mut plan, &who, Some(&key))?
    };
    if let Some((kind, text)) = note {
        let note = Record::Note {
            kind: kind.into(),
            text,
        };
        opened
            .journal
            .append(&note)
            .map_err(|e| CliError::failed(format!("boyong run: {e}; nothing was changed")))?;
    }
    if let Some(e) = &opened.edit {
        let redo = plan.steps.get(e.diff.redo_from).map_or_else(
            || "no step is redone".to_string(),
            |s| format!("steps from `{}` on are redone", s.id),
        );
        say!(
            "`{}`: the playbook changed since run {} began (now version {}); {redo}:\n{}",
            pb.app,
            opened.run.id(),
            e.version,
            e.diff.to_string().trim_end()
        );
    }
    let id = opened.run.id().clone();
    let outcome = execute(&world, opened, &plan, secrets, &lock, args, slot)?;
    drop(lock);
    match slot {
        Some(slot) => slot.finished(&outcome),
        None => worded(&plan.app, &id.to_string(), file, args.json, outcome),
    }
}

/// Runs the opened run to its end, with Ctrl-C (or the batch's cancellation) watched.
fn execute(
    world: &World,
    opened: OpenedRun,
    plan: &Plan,
    secrets: &SecretStore,
    lock: &AppLock,
    args: &RunArgs,
    slot: Option<&dyn Slot>,
) -> Result<Outcome> {
    let OpenedRun {
        run,
        journal,
        earlier,
        redo_from,
        ..
    } = opened;
    let (mut sink, rt) = match slot {
        Some(slot) => slot.start(&run)?,
        None => Reporter::start("boyong run", args.json, &run.log_path())
            .map(|(r, rt)| (r.verbose(args.verbose), rt))
            .map(|(r, rt)| (Box::new(r) as Box<dyn EventSink>, rt))?,
    };
    let opts = RunOptions {
        auto_rollback: !args.no_auto_rollback,
        retry_delay: Duration::from_secs(2),
        redo_from,
        reuse_artifacts: args.reuse_artifacts,
    };
    let outcome = rt.block_on(async {
        // A batch watches Ctrl-C (and --fail-fast) for all its runs.
        let mut rx = match slot {
            Some(slot) => slot.cancel(),
            None => watch_interrupt(),
        };
        let mut ex = Executor::new(world, journal, &mut *sink, secrets, run.artifacts_dir());
        if let Some(b) = lock.broken() {
            ex.note("lock-broken", &b.to_string())?;
        }
        Box::pin(ex.run(plan, earlier.as_ref(), opts, &mut rx)).await
    });
    // The sink's bar is cleared before anything is said of the outcome.
    drop(sink);
    // A log that could not be written is never a silent success.
    if let Some(lost) = super::events::log_lost() {
        let (app, id) = (&plan.app, run.id());
        if matches!(outcome, Ok(RunOutcome::Succeeded)) {
            return Err(CliError::failed(format!(
                "`{app}`: run {id} made every change, but {lost}"
            ))
            .hint(format!(
                "the journal is complete (`boyong report {app}` reads it); free the disk. The run stands: `boyong rollback {app}` undoes it if you want it undone"
            )));
        }
        say!("`{app}`: note: {lost}");
    }
    Ok(outcome)
}

/// Ctrl-C stops the step in flight (the flag turns true); a second quits at once.
fn watch_interrupt() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    // The handler is installed here, before the run starts, not when the task below is
    // first polled: a Ctrl-C that came before then would kill the process mid-change.
    let Ok(mut sigint) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    else {
        return rx;
    };
    tokio::spawn(async move {
        if sigint.recv().await.is_some() {
            say!(
                "interrupt: stopping the step in flight (Ctrl-C again to quit at once; the journal stays consistent)"
            );
            let _ = tx.send(true);
            if sigint.recv().await.is_some() {
                super::quit_now();
            }
        }
    });
    rx
}

/// What the operator reads of a single run's outcome, and its exit status.
fn worded(app: &str, id: &str, file: &Path, json: bool, outcome: Outcome) -> Result {
    let file = file.display();
    match outcome {
        Ok(RunOutcome::Succeeded) => {
            if json {
                say!("`{app}`: run {id} succeeded");
            } else {
                println!("`{app}`: run {id} succeeded");
            }
            Ok(())
        }
        Ok(RunOutcome::Failed {
            step,
            error,
            rollback,
        }) => {
            let failed = format!("`{app}`: run {id} FAILED at step `{step}`: {error}");
            Err(match rollback {
                Some(r) if r.not_kept.is_some() => CliError::failed(failed).hint(format!(
                    "its changes were NOT undone: saving the data of the app that served first failed: {}; fix the cause and run `boyong rollback {app}` (or `boyong rollback {app} --discard-data`)",
                    r.not_kept.as_deref().unwrap_or_default()
                )),
                Some(r) if r.is_complete() => CliError::failed(failed).hint(format!(
                    "everything this run changed was undone ({} change(s)); fix the cause and run again",
                    r.undone.len()
                )),
                Some(r) => left_in_place(Some(failed), &r, app),
                None => CliError::failed(failed).hint(format!(
                    "its changes are left in place for inspection: undo them with `boyong rollback {app}`, or finish with `boyong run {file} --resume`"
                )),
            })
        }
        Ok(RunOutcome::Interrupted { step }) => Err(CliError::failed(format!(
            "`{app}`: run {id} interrupted during step `{step}`; the journal is consistent."
        ))
        .hint(format!(
            "undo what it changed with `boyong rollback {app}`, or continue with `boyong run {file} --resume`"
        ))),
        Err(e) => Err(CliError::failed(format!("`{app}`: run {id} STOPPED: {e}")).hint(format!(
            "no change was made after the last journaled record; free the disk and run `boyong rollback {app}` or `boyong run {file} --resume`"
        ))),
    }
}

/// `MAX_AGE` for `--reuse-artifacts`: `7d`, `36h`, `30m`.
pub(super) fn parse_max_age(s: &str) -> std::result::Result<Duration, String> {
    match boyong::playbook::units::parse_age(s)? {
        0 => Err("a maximum age of 0 reuses nothing: leave the flag out".into()),
        n => Ok(Duration::from_secs(n)),
    }
}

/// `KEY=VALUE` for `--label`.
fn parse_label(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v))
            if !k.is_empty()
                && !k.starts_with("boyong.app")
                && !k.starts_with("boyong.run")
                && !k.starts_with("boyong.step")
                && !k.starts_with("boyong.source") =>
        {
            Ok((k.to_string(), v.to_string()))
        }
        Some((k, _)) if !k.is_empty() => Err(format!("`{k}` is one of boyong's own labels")),
        _ => Err(format!("`{s}`: expected KEY=VALUE")),
    }
}
