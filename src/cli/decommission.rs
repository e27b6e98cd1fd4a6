//! `boyong decommission APP [--plan] [--confirm APP]`: delete the vendor's copy of a
//! migrated app (the paths its playbook fetched, the databases it dumped) with evidence.
//!
//! Shows the preconditions and what will be removed (with what changed on the vendor
//! since the pull), asks the operator to type the app's name (or `--confirm APP`), then
//! runs the library's journaled removal (`boyong::decommission`) and writes the
//! certificate. Exit 2: unknown app, bad flags, no confirmation; 1: a precondition
//! refused, a vendor file changed, or a removal failed (run it again: it continues).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use boyong::decommission::{
    self as dec, Check, Item, Source, cert, items, live, preconditions, vendor,
};
use boyong::engine::journal;
use boyong::engine::open::playbook_as_run;
use boyong::engine::state::StateDir;
use boyong::playbook;

use super::decommission_plan as plan;
use super::error::{CliError, Result};
use super::load::env_lookup;
use super::world::World;

const CMD: &str = "boyong decommission";

/// Options of `boyong decommission`.
#[derive(Debug, Clone, clap::Args)]
#[expect(clippy::struct_excessive_bools, reason = "command-line flags")]
pub struct DecommissionArgs {
    /// Only show the preconditions and what would be removed; nothing is changed.
    #[arg(long = "plan")]
    pub plan_only: bool,
    /// Confirm without a prompt, for scripts: the app's name.
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
    /// The minimum time since the migration run ended (`7d`, `36h`, `0`); default: the
    /// playbook's `decommission.after`, else 7 days.
    #[arg(long, value_name = "AGE")]
    pub min_age: Option<String>,
    /// Delete a fetched path even when its files changed on the vendor since the pull.
    #[arg(long)]
    pub allow_changed: bool,
    /// Empty each dumped database instead of dropping it (every table, view, sequence,
    /// routine, type and event; the database and its users stay), for a vendor that
    /// must keep the schema.
    #[arg(long)]
    pub wipe: bool,
    /// Take the app's lock from a holder on another host or a dead process.
    #[arg(long)]
    pub break_lock: bool,
}

/// `boyong decommission`.
pub fn decommission(state: &Path, app: &str, args: &DecommissionArgs) -> Result {
    let flag_age = args
        .min_age
        .as_deref()
        .map(dec::parse_age)
        .transpose()
        .map_err(|e| CliError::bad_input(format!("{CMD}: --min-age: {e}")))?;
    if let Some(c) = &args.confirm
        && c != app
    {
        return Err(CliError::bad_input(format!(
            "{CMD}: --confirm `{c}` is not the app `{app}`; nothing was changed"
        )));
    }
    let dir = StateDir::new(state);
    // Read only: a decommission never makes the key (the migration's run did).
    let key = super::journal::existing_key(state, CMD)?.ok_or_else(|| {
        CliError::failed(format!(
            "{CMD}: refused: this machine has no journal key, so neither the migration's journal nor a decommission's can be verified; nothing was changed"
        ))
        .hint("run the decommission where the migration ran, with its key (BOYONG_JOURNAL_KEY_FILE)")
    })?;
    let src =
        Source::latest(&dir, app, &key).map_err(|e| CliError::bad_input(format!("{CMD}: {e}")))?;
    if let Some(c) = dec::certificate_of(&dir, app) {
        println!(
            "`{app}` is decommissioned already: its certificate is {}",
            c.display()
        );
        return Ok(());
    }
    let (original, bytes) = playbook_as_run(&src.run);
    let pb = playbook::parse(&original, &bytes).playbook.ok_or_else(|| {
        CliError::failed(format!(
            "{CMD}: the playbook stored with run {} does not validate",
            src.run.id()
        ))
    })?;
    let (secrets, problems) = playbook::check_local_inputs(&pb, &env_lookup);
    if problems.iter().any(boyong::diag::Diagnostic::is_error) {
        let said: Vec<String> = problems.iter().map(|d| d.message.clone()).collect();
        return Err(CliError::bad_input(format!(
            "{CMD}: refused: {}; nothing was changed",
            said.join("; ")
        )));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let min_age = flag_age
        .or(pb.decommission_after)
        .unwrap_or(dec::DEFAULT_MIN_AGE_SECS);
    // An unfinished decommission is continued: read (and verified) now, read again under
    // the lock before anything is done.
    let prior = dec::unfinished(&dir, app, &key)
        .map_err(|e| CliError::failed(format!("{CMD}: {e}; nothing was changed")))?;
    let mut checks = preconditions(&dir, app, &src, min_age, now, prior.is_some());
    let mut list = match items(&pb, &src.run, args.wipe) {
        Ok(l) => l,
        Err(e) => {
            checks.push(Check {
                name: "the run's manifests".into(),
                state: "refused".into(),
                detail: format!("{e}: nothing to compare the vendor's files with"),
            });
            Vec::new()
        }
    };
    for i in list.iter().filter(|i| i.kind == "tree") {
        if let Err(e) = vendor::safe_path(&i.target) {
            checks.push(Check {
                name: format!("step `{}`'s path may be removed", i.step),
                state: "refused".into(),
                detail: e,
            });
        }
    }
    let world = World::for_playbook(Some((pb.clone(), secrets.clone())), false, &[])
        .map_err(|e| CliError::bad_input(format!("{CMD}: {e}")))?;
    let live_runner = match world {
        World::Live(l) => l,
        #[cfg(feature = "sim")]
        World::Sim(_) => {
            return Err(CliError::bad_input(format!(
                "{CMD}: a decommission needs the real hosts"
            )));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    let begun: Vec<String> = prior
        .as_ref()
        .map(|u| u.begun.iter().cloned().collect())
        .unwrap_or_default();
    if let Some(u) = &prior {
        plan::as_recorded(&mut list, u, args.wipe)
            .map_err(|e| CliError::bad_input(format!("{CMD}: {e}; nothing was changed")))?;
    }
    let session = rt.block_on(async {
        let done = src.history.as_ref().ok().map(|h| &h.steps_done);
        checks.extend(live::serves(&pb, done).await);
        let session = live::connect(&live_runner).await?;
        checks.extend(plan::look(&session, &pb, &secrets, &src, &mut list, &begun).await?);
        Ok::<_, String>(session)
    });
    let session =
        session.map_err(|e| CliError::failed(format!("{CMD}: {e}; nothing was changed")))?;
    plan::show(app, &src, &checks, &list, &pb);
    let refused: Vec<&Check> = checks.iter().filter(|c| c.blocks()).collect();
    let changed: Vec<&Item> = list.iter().filter(|i| !i.changed.is_empty()).collect();
    let mut why: Vec<String> = refused
        .iter()
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if !args.allow_changed {
        why.extend(changed.iter().map(|i| {
            format!(
                "{} changed on the vendor since the pull (pass --allow-changed to delete it anyway)",
                i.target
            )
        }));
    }
    if !why.is_empty() {
        return Err(CliError::failed(format!(
            "{CMD}: refused; nothing was changed:\n  {}",
            why.join("\n  ")
        )));
    }
    if args.plan_only {
        println!("\n(--plan: nothing was changed)");
        return Ok(());
    }
    if args.confirm.is_none() {
        confirm(app)?;
    }
    // One operator at a time: the removal holds the app's lock (the plan above took
    // none and wrote nothing). What was shown may have changed before the lock was ours.
    let lock = super::lock_app(&dir, app, CMD, args.break_lock)?;
    if let Some(c) = dec::certificate_of(&dir, app) {
        println!(
            "`{app}` was decommissioned meanwhile by another operator: its certificate is {}",
            c.display()
        );
        return Ok(());
    }
    let now_prior = dec::unfinished(&dir, app, &key)
        .map_err(|e| CliError::failed(format!("{CMD}: {e}; nothing was changed")))?;
    let seen = |u: &Option<dec::Unfinished>| u.as_ref().map(|u| (u.dir.clone(), u.begun.clone()));
    if seen(&now_prior) != seen(&prior) {
        return Err(CliError::failed(format!(
            "{CMD}: another decommission of `{app}` changed the state since the plan above was shown; nothing was changed. Run `boyong decommission {app}` again to see the new plan"
        )));
    }
    // The migration it follows, read again under the lock: a run or a rollback that ended
    // while the plan was on screen, or an assessment that failed meanwhile (`boyong assess`
    // takes no lock), refuses it as the plan would have.
    let src_now = Source::latest(&dir, app, &key)
        .map_err(|e| CliError::failed(format!("{CMD}: {e}; nothing was changed")))?;
    let head = |s: &Source| (s.run.id().as_str().to_owned(), s.journal_head.clone());
    if head(&src_now) != head(&src) {
        return Err(CliError::failed(format!(
            "{CMD}: the migration's latest run changed since the plan above was shown (now run {}); nothing was changed. Run `boyong decommission {app}` again to see the new plan",
            src_now.run.id().as_str()
        )));
    }
    let blocked: Vec<String> = preconditions(&dir, app, &src_now, min_age, now, prior.is_some())
        .iter()
        .filter(|c| c.blocks())
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if !blocked.is_empty() {
        return Err(CliError::failed(format!(
            "{CMD}: refused, since the plan above was shown; nothing was changed:\n  {}",
            blocked.join("\n  ")
        )));
    }
    let who = super::who();
    let mut removal = dec::open_or_continue(&dir, &pb, &list, &who, &key, now_prior)
        .map_err(|e| CliError::failed(format!("{CMD}: {e}; nothing was changed")))?;
    if removal.continued {
        say!(
            "note: continuing the unfinished decommission {}",
            removal.id
        );
    }
    let artifacts = src.run.artifacts_dir();
    let (result, host_key) = rt.block_on(async {
        let r = dec::execute(
            &session,
            &pb,
            &secrets,
            &artifacts,
            &mut removal,
            &list,
            args.allow_changed,
        )
        .await;
        let key = session.host_key.clone();
        session.close().await;
        (r, key)
    });
    drop(lock);
    let removed = result.map_err(|e| {
        CliError::failed(format!(
            "{CMD}: STOPPED: {e}\nwhat was removed is journaled in {}; run `boyong decommission {app}` again to finish",
            removal.dir.display()
        ))
    })?;
    let head = journal::read_keyed(&removal.dir.join("journal.jsonl"), Some(&key))
        .map(|c| c.head_sha256)
        .map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    let archive = dec::archive::verify(&dir, app, src.run.id().as_str())
        .map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    let c = cert::Certificate {
        format: cert::FORMAT,
        app: app.to_owned(),
        decommission: removal.id.clone(),
        migration_run: src.run.id().to_string(),
        operator: who.operator,
        machine: who.host,
        started: removal.started.clone(),
        finished: boyong::engine::state::utc_rfc3339(SystemTime::now()).unwrap_or_default(),
        vendor: format!("{}@{}:{}", pb.vendor.user, pb.vendor.host, pb.vendor.port),
        vendor_host_key: host_key,
        preconditions: checks,
        removed,
        archive: cert::ArchiveRef {
            path: archive.path.display().to_string(),
            sha256: archive.sha256,
            bytes: archive.bytes,
        },
        migration_journal_head: src.journal_head.clone().unwrap_or_default(),
        journal_head: head,
        continued: removal.continued,
    };
    c.write(&removal.dir).map_err(|e| {
        CliError::failed(format!(
            "{CMD}: the vendor's copy is deleted, but the certificate could not be written: {e}"
        ))
    })?;
    println!(
        "\n`{app}` decommissioned: {} item(s) removed from the vendor host and checked gone{}\n  certificate: {}",
        c.removed.iter().filter(|r| r.gone).count(),
        match c.removed.iter().filter(|r| r.item.kept.is_some()).count() {
            0 => String::new(),
            n => format!(", {n} kept (see the certificate)"),
        },
        removal.dir.join("certificate.md").display()
    );
    Ok(())
}

/// Asks the operator to type the app's name; refused when stdin is not a terminal.
fn confirm(app: &str) -> Result {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::bad_input(format!(
            "{CMD}: refused without confirmation: pass --confirm {app} (stdin is not a terminal); nothing was changed"
        )));
    }
    eprint!(
        "This deletes the above from the vendor host and cannot be undone. Type the app's name to go on: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() != app {
        return Err(CliError::failed("not confirmed; nothing was changed"));
    }
    Ok(())
}
