//! A decommission's own run: its directory and journal ([`open_or_continue`]) and the
//! removals, each journaled before it is made ([`execute`]).
//!
//! Invariants: an intent (undo `none`, marked irreversible) is durable before its `rm`
//! or `DROP` runs; a removal whose intent is journaled is never hashed again before it
//! is repeated (its files may be half gone), and repeating it is harmless (`rm -rf`,
//! `DROP … IF EXISTS`); a decommission whose journal has not ended is continued, never
//! started again beside it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::json;

use super::db::DumpLogin;
use super::{Item, db, differences, host, vendor};
use crate::engine::journal::{self, HeaderFields, Journal, JournalKey, Keying, Record};
use crate::engine::open::Who;
use crate::engine::state::{RunId, StateDir, utc_rfc3339};
use crate::plan::Undo;
use crate::playbook::{Playbook, StepKind};
use crate::secret::SecretStore;
use crate::ssh::Session;

/// An open decommission: its directory, its journal, and what an earlier attempt did.
#[derive(Debug)]
pub struct Removal {
    /// `apps/<app>/decommissions/<id>/`.
    pub dir: PathBuf,
    /// Its id (sorts by time, like a run's).
    pub id: String,
    /// Its journal, positioned to append.
    pub journal: Journal,
    /// When it began (RFC 3339 UTC).
    pub started: String,
    /// Items whose removal is journaled as done.
    pub done: BTreeSet<String>,
    /// Items whose removal's intent is journaled.
    pub begun: BTreeSet<String>,
    /// Whether an earlier, unfinished decommission is being continued.
    pub continued: bool,
}

/// One item after its removal.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    /// The item.
    #[serde(flatten)]
    pub item: Item,
    /// When its removal was done (RFC 3339 UTC).
    pub removed_at: String,
    /// The read-only check that it is gone, and what it said.
    pub gone_check: String,
    /// Whether it is gone.
    pub gone: bool,
}

fn now_rfc3339() -> String {
    utc_rfc3339(SystemTime::now()).unwrap_or_default()
}

/// A decommission whose journal has not ended: what an earlier attempt recorded and did.
#[derive(Debug)]
pub struct Unfinished {
    /// Its directory.
    pub dir: PathBuf,
    /// When it began.
    pub started: String,
    /// Items whose removal is journaled as done.
    pub done: BTreeSet<String>,
    /// Items whose removal's intent is journaled.
    pub begun: BTreeSet<String>,
    /// The items as it recorded them (`decommission.json`): a begun item is continued
    /// as recorded (its database user as found then, its `--wipe` or not).
    pub items: Vec<Item>,
}

/// The app's unfinished decommission, if its latest one has not ended. Its journal is
/// read with `key`: one that does not verify, or that has no MACs (anyone who can
/// write the state directory could have rewritten it), is refused, never continued.
///
/// # Errors
/// The journal is broken, unkeyed or unreadable, or `decommission.json` is.
pub fn unfinished(
    dir: &StateDir,
    app: &str,
    key: &JournalKey,
) -> Result<Option<Unfinished>, String> {
    let root = super::decommissions_dir(dir, app).map_err(|e| e.to_string())?;
    let mut ids: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    ids.sort();
    let Some(last) = ids.last() else {
        return Ok(None);
    };
    let jp = last.join("journal.jsonl");
    let c = journal::read_keyed(&jp, Some(key)).map_err(|e| {
        format!(
            "the decommission journal {}: {e}; refused: it is never continued",
            jp.display()
        )
    })?;
    if c.keying != Keying::Checked {
        return Err(format!(
            "the decommission journal {} has no MACs: anyone who can write the state directory could have rewritten it; refused: it is never continued",
            jp.display()
        ));
    }
    if c.entries
        .iter()
        .any(|e| matches!(e.record, Record::RunFinished { .. }))
    {
        return Ok(None);
    }
    let mut done = BTreeSet::new();
    let mut begun = BTreeSet::new();
    for e in &c.entries {
        match &e.record {
            Record::Intent { change_id, .. } => {
                begun.insert(change_id.clone());
            }
            Record::Done { change_id, .. } => {
                done.insert(change_id.clone());
            }
            _ => {}
        }
    }
    let ip = last.join("decommission.json");
    let text = std::fs::read(&ip).map_err(|e| format!("{}: {e}", ip.display()))?;
    if journal::sha256_hex(&text) != c.header.plan_sha256 {
        return Err(format!(
            "{} is not what its journal recorded (SHA-256 differs); refused: it is never continued",
            ip.display()
        ));
    }
    let items = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", ip.display()))?;
    Ok(Some(Unfinished {
        dir: last.clone(),
        started: c.header.started.clone(),
        done,
        begun,
        items,
    }))
}

/// Continues `prior` (the app's unfinished decommission, see [`unfinished`]), or creates
/// a new one recording `items`, its journal keyed with `key`. The caller holds the app's
/// lock and read `prior` under it.
///
/// # Errors
/// The state directory or the journal (a broken one is never appended to).
pub fn open_or_continue(
    dir: &StateDir,
    pb: &Playbook,
    items: &[Item],
    who: &Who,
    key: &JournalKey,
    prior: Option<Unfinished>,
) -> Result<Removal, String> {
    let root = super::decommissions_dir(dir, &pb.app).map_err(|e| e.to_string())?;
    if let Some(u) = prior {
        let jp = u.dir.join("journal.jsonl");
        let (mut journal, _) =
            Journal::open_append_keyed(&jp, Some(key)).map_err(|e| e.to_string())?;
        journal
            .append(&Record::Note {
                kind: "resumed".into(),
                text: format!(
                    "continued by {} on {}: {} removal(s) done, {} begun",
                    who.operator,
                    who.host,
                    u.done.len(),
                    u.begun.len()
                ),
            })
            .map_err(|e| e.to_string())?;
        return Ok(Removal {
            id: u
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir: u.dir,
            journal,
            started: u.started,
            done: u.done,
            begun: u.begun,
            continued: true,
        });
    }
    let now = SystemTime::now();
    let id = RunId::new(now, crate::engine::open::suffix(now)).map_err(|e| e.to_string())?;
    let path = root.join(id.as_str());
    super::mkdir_private(&path)?;
    let plan = serde_json::to_string_pretty(items).map_err(|e| e.to_string())? + "\n";
    if let Err(e) = super::write_private(&path.join("decommission.json"), plan.as_bytes()) {
        let _ = std::fs::remove_dir_all(&path);
        return Err(e);
    }
    let journal = Journal::create_keyed(
        &path.join("journal.jsonl"),
        &HeaderFields {
            run: id.to_string(),
            app: pb.app.clone(),
            playbook_sha256: pb.sha256.clone(),
            plan_sha256: journal::sha256_hex(plan.as_bytes()),
            operator: who.operator.clone(),
            host: who.host.clone(),
            started: now,
        },
        Some(key),
    );
    let mut journal = match journal {
        Ok(j) => j,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&path);
            return Err(e.to_string());
        }
    };
    journal
        .append(&Record::Note {
            kind: "decommission".into(),
            text: "a decommission deletes from the vendor host: its changes cannot be undone (undo: none); the archive is the only copy kept".into(),
        })
        .map_err(|e| e.to_string())?;
    Ok(Removal {
        dir: path,
        id: id.to_string(),
        journal,
        started: utc_rfc3339(now).unwrap_or_default(),
        done: BTreeSet::new(),
        begun: BTreeSet::new(),
        continued: false,
    })
}

/// Removes each item from the vendor host over `session`, journaled, then checks it is
/// gone (or, for a wiped database, empty). A tree not yet begun is hashed again first
/// and refused on any difference unless `allow_changed`; an item the plan keeps (a
/// shared database user) is certified as kept, not touched.
///
/// # Errors
/// The first failure (journaled as the item's `step-failed`); what was done stays
/// journaled for the next attempt to continue.
pub async fn execute(
    session: &Session,
    pb: &Playbook,
    secrets: &SecretStore,
    artifacts: &std::path::Path,
    r: &mut Removal,
    items: &[Item],
    allow_changed: bool,
) -> Result<Vec<Removed>, String> {
    let mut out = Vec::new();
    for item in items {
        let ctx = Ctx {
            session,
            pb,
            secrets,
            artifacts,
            allow_changed,
        };
        match one(&ctx, r, item).await {
            Ok(removed) => out.push(removed),
            Err(e) => {
                let _ = r.journal.append(&Record::StepFailed {
                    step: item.id.clone(),
                    error: e.clone(),
                });
                return Err(format!("{}: {e}", item.id));
            }
        }
    }
    r.journal
        .append(&Record::RunFinished {
            result: "succeeded".into(),
        })
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// What every removal needs.
struct Ctx<'a> {
    session: &'a Session,
    pb: &'a Playbook,
    secrets: &'a SecretStore,
    artifacts: &'a std::path::Path,
    allow_changed: bool,
}

impl Ctx<'_> {
    fn step(&self, item: &Item) -> Result<&crate::playbook::Step, String> {
        self.pb
            .steps
            .iter()
            .find(|s| s.id == item.step)
            .ok_or_else(|| format!("step `{}` is not in the playbook", item.step))
    }
}

async fn one(ctx: &Ctx<'_>, r: &mut Removal, item: &Item) -> Result<Removed, String> {
    let j = |e: journal::JournalError| e.to_string();
    let session = ctx.session;
    let mut item = item.clone();
    if let Some(why) = &item.kept {
        // Not removed: journaled as a note (the plan recorded it too), certified as kept.
        r.journal
            .append(&Record::Note {
                kind: "kept".into(),
                text: format!("{} {}: not removed: {why}", item.id, item.target),
            })
            .map_err(j)?;
        return Ok(Removed {
            gone_check: format!("kept: {why}"),
            item,
            removed_at: String::new(),
            gone: false,
        });
    }
    let already = r.done.contains(&item.id);
    let begun = r.begun.contains(&item.id);
    if !already {
        r.journal
            .append(&Record::StepStarted {
                step: item.id.clone(),
            })
            .map_err(j)?;
    }
    let (gone, check) = match item.kind.as_str() {
        "tree" => {
            let StepKind::Fetch(f) = &ctx.step(&item)?.kind else {
                return Err(format!("step `{}` fetches nothing", item.step));
            };
            if !already && !begun {
                let now = vendor::hash_now(session, &f.path).await?;
                item.changed = differences(ctx.artifacts, &item.step, &f.exclude, now.as_deref())?;
                if !item.changed.is_empty() && !ctx.allow_changed {
                    return Err(format!(
                        "{} changed on the vendor host since it was pulled ({}); refused: pull it again, or pass --allow-changed to delete it anyway",
                        f.path,
                        item.changed.join(", ")
                    ));
                }
            }
            if !already {
                let id = intent(r, &item)?;
                vendor::remove_path(session, &f.path).await?;
                done(r, &id)?;
            }
            let gone = vendor::path_gone(session, &f.path).await?;
            (
                gone,
                format!(
                    "`test ! -e {}`: {}",
                    crate::shell::quote(&f.path),
                    if gone { "gone" } else { "STILL THERE" }
                ),
            )
        }
        "database" | "database-wipe" => {
            let step = ctx.step(&item)?;
            let wipe = item.kind == "database-wipe";
            let StepKind::Dump(d) = &step.kind else {
                return Err(format!("step `{}` dumps no database", step.id));
            };
            let database = d.database.as_str();
            // A wipe works inside the database; a drop from the maintenance database.
            let owned = DumpLogin::of(step, ctx.secrets, wipe.then_some(database))?;
            let login = owned.login();
            if !already {
                let id = intent(r, &item)?;
                if wipe {
                    db::wipe(session, &login, database).await?;
                } else {
                    let sql = login.dialect.drop_database_sql(database);
                    vendor::sql(session, login.dialect, &login.conn, login.line, &sql).await?;
                }
                done(r, &id)?;
            }
            if wipe {
                db::is_empty(session, &login, database).await?
            } else {
                let sql = login.dialect.database_exists_sql(database);
                let n = vendor::sql(session, login.dialect, &login.conn, login.line, &sql).await?;
                let gone = n.trim() == "0";
                (
                    gone,
                    format!(
                        "database `{database}` listed by the server: {}",
                        if gone {
                            "no (gone)"
                        } else {
                            "YES (still there)"
                        }
                    ),
                )
            }
        }
        "user" => {
            let step = ctx.step(&item)?;
            let account = item
                .account
                .clone()
                .ok_or("the account was not found before the removal")?;
            let owned = DumpLogin::of(step, ctx.secrets, None)?;
            let login = owned.login();
            if !already {
                let id = intent(r, &item)?;
                // The SQL as the probe built it from the server's own name for the
                // account (when continued: as `decommission.json` recorded it, whose
                // SHA-256 the keyed journal's header holds).
                db::drop_account(session, &login, &item.action).await?;
                done(r, &id)?;
            }
            db::account_gone(session, &login, &account).await?
        }
        "crontab" => {
            if !already {
                let id = intent(r, &item)?;
                host::remove_cron_line(session, &item.target).await?;
                done(r, &id)?;
            }
            let present = host::crontab(session).await?.contains(&item.target);
            (
                !present,
                format!(
                    "`crontab -l` of the vendor login: {}",
                    if present {
                        "the line is STILL THERE"
                    } else {
                        "the line is gone"
                    }
                ),
            )
        }
        "service" | "user-service" => {
            if !already {
                let id = intent(r, &item)?;
                host::stop_unit(session, &item).await?;
                done(r, &id)?;
            }
            host::unit_stopped(session, &item).await?
        }
        other => return Err(format!("`{other}` is not a kind a decommission removes")),
    };
    if !already {
        r.journal
            .append(&Record::StepDone {
                step: item.id.clone(),
                facts: json!({"gone": gone, "check": check}),
            })
            .map_err(j)?;
    }
    if !gone {
        return Err(format!(
            "{} is still there after its removal ({check})",
            item.target
        ));
    }
    Ok(Removed {
        item,
        removed_at: now_rfc3339(),
        gone_check: check,
        gone,
    })
}

fn intent(r: &mut Removal, item: &Item) -> Result<String, String> {
    let undo = serde_json::to_value(Undo::None).map_err(|e| e.to_string())?;
    r.journal
        .append(&Record::Intent {
            step: item.id.clone(),
            change_id: item.id.clone(),
            change: json!({
                "op": "-",
                "kind": item.kind,
                "target": item.target,
                "action": item.action,
                "last_sha256": item.last_sha256,
                "changed": item.changed,
                "irreversible": true,
                "note": "cannot be undone: the archive keeps the only copy",
            }),
            undo,
        })
        .map_err(|e| e.to_string())?;
    r.begun.insert(item.id.clone());
    Ok(item.id.clone())
}

fn done(r: &mut Removal, id: &str) -> Result<(), String> {
    r.journal
        .append(&Record::Done {
            step: id.to_string(),
            change_id: id.to_string(),
            facts: json!({"removed_at": now_rfc3339()}),
        })
        .map_err(|e| e.to_string())?;
    r.done.insert(id.to_string());
    Ok(())
}
