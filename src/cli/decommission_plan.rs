//! `boyong decommission`'s plan: what the live, read-only look finds on the vendor host
//! before anything is removed ([`look`]), the plan as shown ([`show`]), and an unfinished
//! decommission's items as it recorded them ([`as_recorded`]).

use boyong::decommission::{self as dec, Check, Item, Source, Unfinished, differences, vendor};
use boyong::playbook::{self, StepKind};
use boyong::secret::SecretStore;

/// `list` with each item an unfinished decommission began replaced by the item as it
/// recorded it (its database account as found then); refused when the operator asks
/// for a wipe where it dropped, or the other way round.
///
/// # Errors
/// `--wipe` differs from the unfinished decommission's.
pub fn as_recorded(list: &mut [Item], u: &Unfinished, wipe: bool) -> Result<(), String> {
    let was_wipe = u.items.iter().any(|i| i.kind == "database-wipe");
    let had_db = u.items.iter().any(|i| i.kind.starts_with("database"));
    if had_db && was_wipe != wipe {
        return Err(format!(
            "the unfinished decommission {} was started {} --wipe: run it again the same way",
            u.dir.display(),
            if was_wipe { "with" } else { "without" }
        ));
    }
    for item in list.iter_mut() {
        if u.begun.contains(&item.id)
            && let Some(rec) = u.items.iter().find(|r| r.id == item.id)
        {
            *item = rec.clone();
        }
    }
    Ok(())
}

/// Read-only, before anything is removed: hashes each fetched path on the vendor again
/// and notes what changed; asks each database's server who the dump's login is (and
/// whether it is shared); looks at the crontab and at whether each unit may be
/// stopped. The refusals found (a unit the vendor login cannot manage).
pub async fn look(
    session: &boyong::ssh::Session,
    pb: &playbook::Playbook,
    secrets: &SecretStore,
    src: &Source,
    list: &mut [Item],
    begun: &[String],
) -> std::result::Result<Vec<Check>, String> {
    for item in list.iter_mut() {
        if begun.contains(&item.id) || item.kind != "tree" {
            continue;
        }
        let Some(StepKind::Fetch(f)) = pb.steps.iter().find(|s| s.id == item.step).map(|s| &s.kind)
        else {
            continue;
        };
        if vendor::safe_path(&f.path).is_err() {
            continue; // refused above; never hashed (`/` would be the whole host)
        }
        let now = vendor::hash_now(session, &f.path).await?;
        item.changed = differences(
            &src.run.artifacts_dir(),
            &item.step,
            &f.exclude,
            now.as_deref(),
        )?;
    }
    dec::db::resolve_users(session, pb, secrets, list, begun).await?;
    dec::host::look(session, list).await
}

pub fn show(app: &str, src: &Source, checks: &[Check], list: &[Item], pb: &playbook::Playbook) {
    println!(
        "Decommission of `{app}` (migration run {}), vendor {}@{}:{}\n\nPreconditions:",
        src.run.id(),
        pb.vendor.user,
        pb.vendor.host,
        pb.vendor.port
    );
    for c in checks {
        let mark = match c.state.as_str() {
            "ok" => "ok     ",
            "none" => "none   ",
            _ => "REFUSED",
        };
        println!("  {mark} {}: {}", c.name, c.detail);
    }
    println!("\nTo be removed from the vendor host (cannot be undone; the archive is kept):");
    for i in list {
        // a crontab line's `-pPASSWORD` and the like, masked on screen
        let target = if i.kind == "crontab" {
            boyong::discover::redact(&i.target)
        } else {
            i.target.clone()
        };
        let size = match (i.files, i.bytes) {
            (Some(f), Some(b)) => format!("{f} files, {}", boyong::steps::human_bytes(b)),
            (None, Some(b)) => format!("dump {}", boyong::steps::human_bytes(b)),
            _ => String::new(),
        };
        if i.last_sha256.is_empty() {
            println!("  - {} {target}", i.kind);
        } else {
            println!(
                "  - {} {target}  ({size}; last SHA-256 {})",
                i.kind, i.last_sha256
            );
        }
        match &i.kept {
            Some(why) => println!("      KEPT, not removed: {why}"),
            None => println!("      runs: {}", i.action),
        }
        if i.changed.is_empty() {
            if i.kind == "tree" {
                println!("      vendor's files now: as pulled");
            }
        } else {
            for c in i.changed.iter().take(20) {
                println!("      CHANGED since the pull: {c}");
            }
        }
    }
    if list.is_empty() {
        println!("  (nothing: the playbook fetched, dumped and named nothing)");
    }
}
