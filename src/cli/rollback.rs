//! `boyong rollback`: undo a run's changes, newest first, from its journal.
//!
//! The list of what is undone comes from the engine (`engine::open::UndoList`); it is
//! shown, confirmed, and undone exactly as shown: if the journal changed before the
//! app's lock was taken, nothing is undone. Each undo is shown as it will execute, from
//! its typed undo data (`Undo::describe`), never from the plan's description of it, with
//! control characters escaped. The journal's MACs are checked against this
//! installation's key first; a journal without MACs (an earlier release's) is listed but
//! undone only with `--unkeyed`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use boyong::engine::journal::{Journal, Keying};
use boyong::engine::open::{UndoList, find_run, playbook_as_run};
use boyong::engine::state::StateDir;
use boyong::engine::{Executor, RollbackReport};
use boyong::escape;
use boyong::playbook;
use boyong::secret::SecretStore;

use super::error::{CliError, Kind, Result};
use super::events::Reporter;
use super::load::env_lookup;
use super::world::World;

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
    /// Undo from a journal without MACs (written by an earlier release): its undo data
    /// cannot be told from a rewrite by someone who could write the state directory.
    #[arg(long)]
    pub unkeyed: bool,
    /// Do not save the data the rollback removes first (a restore's database, a deploy's
    /// volume): it is lost. Journaled.
    #[arg(long)]
    pub discard_data: bool,
}

/// `boyong rollback APP [--run ID]`.
pub fn rollback(state: &Path, app: &str, run: Option<&str>, args: RollbackArgs) -> Result {
    const CMD: &str = "boyong rollback";
    let dir = StateDir::new(state);
    let run = find_run(&dir, app, run).map_err(|e| CliError::no_run(CMD, &e))?;
    let key = super::journal::key(state, CMD)?;
    let list = UndoList::read(&run, Some(&key)).map_err(|e| {
        CliError::failed(format!(
            "{CMD}: {e}\nnothing was changed; `boyong journal verify {app} --run {}` shows the damage",
            run.id()
        ))
    })?;
    let pending = &list.pending;
    if pending.is_empty() {
        println!(
            "nothing to roll back: run {} of `{app}` has no change left to undo ({})",
            run.id(),
            list.history.result.map_or("unfinished", |r| r.word())
        );
        return Ok(());
    }
    println!(
        "Rollback of run {} of `{app}`: {} change(s) to undo, newest first",
        run.id(),
        pending.len()
    );
    if list.keying == Keying::Unkeyed {
        println!(
            "  (this journal is unkeyed, as earlier releases wrote them: nothing proves the undo data below was not rewritten; check it, then pass --unkeyed)"
        );
    }
    if let Some(why) = &list.keep_problem {
        println!(
            "  the data to save first cannot be told ({}): {}",
            escape::controls(why),
            if args.discard_data {
                "nothing is saved (--discard-data); whatever data this removes is LOST"
            } else {
                "refused unless --discard-data"
            }
        );
    }
    if !list.keep.is_empty() {
        if args.discard_data {
            println!("  first: nothing is saved (--discard-data); this data is LOST:");
        } else {
            println!(
                "  first, before anything is removed, the data is saved into the run directory (--discard-data skips it; if saving fails, nothing is undone):"
            );
        }
        for k in &list.keep {
            println!(
                "  save  {}  [step `{}`]",
                escape::controls(&k.describe()),
                k.step()
            );
        }
    }
    // One change made in parts (a volume created, then filled through a helper) journals
    // each part under the change's own line: a part's line says which part it is (its
    // `part`), and so does the change's own first detail when its line repeats (and for
    // journals written before parts were named).
    let mut seen = std::collections::HashMap::new();
    for item in pending {
        *seen
            .entry(boyong::engine::runner::change_line(&item.change))
            .or_insert(0usize) += 1;
    }
    for item in pending {
        let mut summary = item.summary();
        if item.change.get("part").is_none()
            && seen.get(&summary).is_some_and(|n| *n > 1)
            && let Some(part) = item
                .change
                .get("details")
                .and_then(|d| d.get(0))
                .and_then(serde_json::Value::as_str)
        {
            summary = format!("{summary}: {part}");
        }
        let undo = item.undo.describe();
        let undo = escape::controls(&undo);
        let happened = if item.done {
            ""
        } else {
            "  (its intent was journaled but not its outcome: it may not have happened; the undo is safe either way)"
        };
        println!(
            "  {} {}  [step `{}`]\n      undo: {undo}{happened}",
            item.change_id,
            escape::controls(&summary),
            item.step
        );
    }
    if args.plan_only {
        return Ok(());
    }
    if list.keying == Keying::Unkeyed && !args.unkeyed {
        return Err(CliError::bad_input(format!(
            "{CMD}: refused: the journal of run {} has no MACs, so its undo data could have been rewritten; read the list above and pass --unkeyed to undo it anyway; nothing was changed",
            run.id()
        )));
    }
    if let Some(why) = &list.keep_problem
        && !args.discard_data
    {
        return Err(CliError::failed(format!(
            "{CMD}: refused: what data to save first cannot be told: {why}; pass --discard-data to undo without saving anything; nothing was changed"
        )));
    }
    if !args.yes {
        confirm(pending.len())?;
    }
    let lock = super::lock_app(&dir, app, CMD, args.break_lock)?;
    // What was shown may have changed before the lock was ours (a run still going):
    // undo exactly what the operator confirmed, or nothing.
    if !list.is_current(&run) {
        return Err(CliError::failed(format!(
            "{CMD}: the run's journal changed since the list above was shown; nothing was changed. Run `boyong rollback {app}` again to see the new list"
        )));
    }
    // The playbook as run, read as if from its own folder (for its key files), and the
    // secrets it uses, for undo commands that need them (and to redact them).
    let (original, bytes) = playbook_as_run(&run);
    let loaded = playbook::parse(&original, &bytes).playbook.map(|pb| {
        let secrets = playbook::check_local_inputs(&pb, &env_lookup).0;
        (pb, secrets)
    });
    let secrets = loaded
        .as_ref()
        .map_or_else(SecretStore::default, |(_, s)| s.clone());
    let world = World::for_playbook(loaded, false, &[])
        .map_err(|e| CliError::bad_input(format!("{CMD}: {e}")))?;
    let (journal, _) = Journal::open_append_keyed(&run.journal_path(), Some(&key))
        .map_err(|e| CliError::failed(format!("{CMD}: {e}; nothing was changed")))?;
    let (mut reporter, rt) = Reporter::start(CMD, args.json, &run.log_path())?;
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
        let who = super::who();
        ex.note(
            "operator",
            &format!("boyong rollback by {} on {}", who.operator, who.host),
        )?;
        if let Some(why) = &list.keep_problem {
            // (only with --discard-data: refused above otherwise)
            ex.note(
                "discard-data",
                &format!("--discard-data: what to save could not be told ({why}): nothing saved"),
            )?;
        }
        ex.rollback(&list.history, &list.keep, args.discard_data)
            .await
    });
    drop(lock);
    drop(reporter);
    let log_lost = super::events::log_lost();
    match result {
        Ok(r) if r.is_complete() && log_lost.is_some() => Err(CliError::failed(format!(
            "`{app}`: run {} rolled back ({} change(s) undone), but {}",
            run.id(),
            r.undone.len(),
            log_lost.unwrap_or_default()
        ))
        .hint("the journal is complete; free the disk")),
        Ok(r) if r.not_kept.is_some() => Err(CliError::failed(format!(
            "`{app}`: run {} NOT rolled back: saving its data first failed: {}",
            run.id(),
            r.not_kept.as_deref().unwrap_or_default()
        ))
        .hint(format!(
            "fix the cause and run `boyong rollback {app}` again, or pass --discard-data to roll back without saving the data (it is then lost)"
        ))),
        Ok(r) if r.is_complete() => {
            for (_, kept) in &r.kept {
                if let Some(p) = &kept.path {
                    println!(
                        "saved: {} ({} bytes, sha256 {}): {}",
                        run.path().join(p).display(),
                        kept.bytes,
                        kept.sha256,
                        kept.note
                    );
                }
            }
            println!(
                "`{app}`: run {} rolled back: {} change(s) undone",
                run.id(),
                r.undone.len()
            );
            Ok(())
        }
        Ok(r) => Err(left_in_place(None, &r, app)),
        Err(e) => Err(CliError::new(
            Kind::RollbackIncomplete,
            format!(
                "{CMD}: STOPPED: {e}\nrun `boyong rollback {app}` again once the journal can be written"
            ),
        )),
    }
}

/// Asks the operator on the terminal; refused when stdin is not one.
fn confirm(changes: usize) -> Result {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::bad_input(
            "boyong rollback: refused without confirmation: pass --yes (stdin is not a terminal); nothing was changed",
        ));
    }
    eprint!("Undo these {changes} change(s)? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        return Err(CliError::failed("not confirmed; nothing was changed"));
    }
    Ok(())
}

/// A rollback that left changes in place (exit status 3): `first` (a run's failure, if
/// any), what undo failed, what is still in place, and how to finish.
pub fn left_in_place(first: Option<String>, r: &RollbackReport, app: &str) -> CliError {
    let mut lines: Vec<String> = first.into_iter().collect();
    if let Some((item, e)) = &r.failed {
        lines.push(format!(
            "rollback INCOMPLETE: undoing {} ({}, step `{}`) failed: {e}",
            item.change_id,
            escape::controls(&item.summary()),
            item.step
        ));
    }
    lines.push("still in place, newest first:".into());
    for item in &r.left {
        let happened = if item.done {
            ""
        } else {
            " (may not have happened)"
        };
        lines.push(format!(
            "  {} {}  [step `{}`]{happened}",
            item.change_id,
            escape::controls(&item.summary()),
            item.step
        ));
    }
    lines.push(format!(
        "fix the cause and run `boyong rollback {app}` again: it continues from there"
    ));
    let mut lines = lines.into_iter();
    let message = lines.next().unwrap_or_default();
    CliError::new(Kind::RollbackIncomplete, message).hints(lines)
}
