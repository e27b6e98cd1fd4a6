//! `boyong rollback`: undo a run's changes, newest first, from its journal.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use boyong::engine::journal::{self, Journal};
use boyong::engine::state::StateDir;
use boyong::engine::{Executor, History};
use boyong::playbook::{self, SecretStore};

use super::report::Reporter;
use super::run::print_left;
use super::world::World;
use super::{exit, find_run, lock_app};

/// Options of `boyong rollback`.
#[derive(Debug, Clone, Copy, clap::Args)]
#[expect(clippy::struct_excessive_bools, reason = "command-line flags")]
pub struct RollbackArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Only show what would be undone.
    #[arg(long = "plan")]
    pub plan_only: bool,
    /// Print events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// Take the app's lock from a holder on another host or a dead process.
    #[arg(long)]
    pub break_lock: bool,
}

/// `boyong rollback APP [--run ID]`.
pub fn rollback(state: &Path, app: &str, run: Option<&str>, args: RollbackArgs) -> u8 {
    let dir = StateDir::new(state);
    let run = match find_run(&dir, app, run, "boyong rollback") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let h = match journal::read(&run.journal_path()) {
        Ok(c) => History::from_journal(&c),
        Err(e) => {
            eprintln!(
                "boyong rollback: {e}\nnothing was changed; `boyong journal verify {app} --run {}` shows the damage",
                run.id()
            );
            return exit::FAILED;
        }
    };
    let pending = h.pending();
    if pending.is_empty() {
        println!(
            "nothing to roll back: run {} of `{app}` has no change left to undo ({})",
            run.id(),
            h.result.map_or("unfinished", |r| r.word())
        );
        return exit::OK;
    }
    println!(
        "Rollback of run {} of `{app}`: {} change(s) to undo, newest first",
        run.id(),
        pending.len()
    );
    for item in &pending {
        let undo = item
            .change
            .get("undo")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("undo it");
        let happened = if item.done {
            ""
        } else {
            "  (its intent was journaled but not its outcome: it may not have happened; the undo is safe either way)"
        };
        println!(
            "  {} {}  [step `{}`]\n      undo: {undo}{happened}",
            item.change_id,
            item.summary(),
            item.step
        );
    }
    if args.plan_only {
        return exit::OK;
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "boyong rollback: refused without confirmation: pass --yes (stdin is not a terminal); nothing was changed"
            );
            return exit::BAD_INPUT;
        }
        eprint!("Undo these {} change(s)? [y/N] ", pending.len());
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("not confirmed; nothing was changed");
            return exit::FAILED;
        }
    }
    let lock = match lock_app(&dir, app, "boyong rollback", args.break_lock) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // What was shown may have changed before the lock was ours (a run still going):
    // undo exactly what the operator confirmed, or nothing.
    let now = journal::read(&run.journal_path()).map(|c| History::from_journal(&c));
    if !matches!(&now, Ok(n) if n.pending() == pending) {
        eprintln!(
            "boyong rollback: the run's journal changed since the list above was shown; nothing was changed. Run `boyong rollback {app}` again to see the new list"
        );
        return exit::FAILED;
    }
    // The playbook as run, read as if from its own folder (for its key files), and the
    // secrets it uses, for undo commands that need them (and to redact them).
    let original = std::fs::read(run.plan_path())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("playbook")
                .and_then(|p| p.as_str())
                .map(std::path::PathBuf::from)
        })
        .unwrap_or_else(|| run.playbook_path());
    let bytes = std::fs::read(run.playbook_path()).unwrap_or_default();
    let loaded = playbook::parse(&original, &bytes).playbook.map(|pb| {
        let secrets = playbook::check_local_inputs(&pb, &super::env_lookup).0;
        (pb, secrets)
    });
    let secrets = loaded
        .as_ref()
        .map_or_else(SecretStore::default, |(_, s)| s.clone());
    let world = match World::for_playbook(loaded, false, &[]) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("boyong rollback: {e}");
            return exit::BAD_INPUT;
        }
    };
    let journal = match Journal::open_append(&run.journal_path()) {
        Ok((j, _)) => j,
        Err(e) => {
            eprintln!("boyong rollback: {e}; nothing was changed");
            return exit::FAILED;
        }
    };
    let Ok((mut reporter, rt)) = Reporter::start("boyong rollback", args.json, &run.log_path())
    else {
        return exit::FAILED;
    };
    let result = rt.block_on(async {
        let mut ex = Executor::new(
            &world,
            journal,
            &mut reporter,
            &secrets,
            run.artifacts_dir(),
        );
        if let Some(b) = lock.broken() {
            ex.note("lock-broken", &b.to_string())?;
        }
        let (operator, host) = super::who();
        ex.note(
            "operator",
            &format!("boyong rollback by {operator} on {host}"),
        )?;
        ex.rollback(&h).await
    });
    drop(lock);
    match result {
        Ok(r) if r.is_complete() => {
            println!(
                "`{app}`: run {} rolled back: {} change(s) undone",
                run.id(),
                r.undone.len()
            );
            exit::OK
        }
        Ok(r) => {
            print_left(&r, app);
            exit::ROLLBACK_INCOMPLETE
        }
        Err(e) => {
            eprintln!(
                "boyong rollback: STOPPED: {e}\nrun `boyong rollback {app}` again once the journal can be written"
            );
            exit::ROLLBACK_INCOMPLETE
        }
    }
}
