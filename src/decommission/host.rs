//! What the playbook's `decommission:` names on the vendor host besides its paths and
//! databases: lines of the vendor login's own crontab, and systemd units (system ones,
//! or the login's `--user` ones). Only what the playbook names; nothing found by a search.
//!
//! A crontab line is removed by exact, whole-line match: `crontab -l` is read, every line
//! equal to it is dropped, and the rest is written back with `crontab -` (on stdin, never
//! on a command line). A unit is stopped and disabled (`systemctl disable --now`) only
//! when the vendor login may: root for a system unit, its own user manager for a
//! `--user` one; otherwise the plan refuses, naming why. Every check afterwards is
//! read-only (`crontab -l`, `systemctl is-active` / `is-enabled`).

use crate::playbook::Decommission;
use crate::shell::quote;
use crate::ssh::Session;

use super::Item;
use super::vendor::{run, run_input};

/// The items `decommission:` names, in the order they are removed: crontab lines, then
/// system units, then user units.
#[must_use]
pub fn items(d: &Decommission) -> Vec<Item> {
    let mut out = Vec::new();
    for (i, line) in d.crontab.iter().enumerate() {
        out.push(Item::new(
            format!("crontab:{}", i + 1),
            "decommission",
            "crontab",
            line.clone(),
            "the line dropped from the vendor login's crontab (`crontab -l`, written back with `crontab -`)".into(),
        ));
    }
    for (kind, list) in [("service", &d.services), ("user-service", &d.user_services)] {
        for unit in list {
            out.push(Item::new(
                format!("{kind}:{unit}"),
                "decommission",
                kind,
                unit.clone(),
                format!("{} disable --now -- {}", systemctl(kind), quote(unit)),
            ));
        }
    }
    out
}

fn systemctl(kind: &str) -> &'static str {
    if kind == "user-service" {
        "systemctl --user"
    } else {
        "systemctl"
    }
}

/// Before anything is removed, read-only: each crontab line's presence noted in its
/// action; each unit the vendor login cannot manage is a refusal (a blocking check).
///
/// # Errors
/// The connection dropped, or `crontab -l` failed.
pub async fn look(session: &Session, list: &mut [Item]) -> Result<Vec<super::Check>, String> {
    let mut checks = Vec::new();
    let cron = if list.iter().any(|i| i.kind == "crontab") {
        crontab(session).await?
    } else {
        Vec::new()
    };
    for item in list.iter_mut() {
        match item.kind.as_str() {
            "crontab" if !cron.contains(&item.target) => {
                item.action = "not in the vendor login's crontab now: nothing to remove".into();
            }
            "service" | "user-service" => {
                if let Some(why) = unit_refusal(session, item).await? {
                    checks.push(super::Check::new(
                        &format!("unit `{}` may be stopped", item.target),
                        false,
                        why,
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(checks)
}

/// The vendor login's crontab now, one entry per line (empty when it has none).
///
/// # Errors
/// `crontab` is missing or failed, or the connection dropped.
pub async fn crontab(session: &Session) -> Result<Vec<String>, String> {
    let (code, out, err) = run(session, "crontab -l", b"").await?;
    match code {
        0 => Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect()),
        1 if err.contains("no crontab") => Ok(Vec::new()),
        c => Err(format!(
            "`crontab -l` failed on the vendor host (exit status {c}): {err}"
        )),
    }
}

/// Drops every line equal to `line` from the vendor login's crontab; the others stay.
///
/// # Errors
/// `crontab` failed, or the connection dropped.
pub async fn remove_cron_line(session: &Session, line: &str) -> Result<(), String> {
    let now = crontab(session).await?;
    if !now.iter().any(|l| l == line) {
        return Ok(());
    }
    let mut kept = String::new();
    for l in now.iter().filter(|l| *l != line) {
        kept.push_str(l);
        kept.push('\n');
    }
    if kept.is_empty() {
        kept.push('\n');
    }
    let (code, _, err) = run_input(session, "crontab -", kept.as_bytes()).await?;
    if code == 0 {
        Ok(())
    } else {
        Err(format!(
            "`crontab -` failed on the vendor host (exit status {code}): {err}"
        ))
    }
}

/// Before anything is removed, read-only: whether the vendor login may stop and disable
/// the unit of `item` (`None`), or why not.
///
/// # Errors
/// The connection dropped.
pub async fn unit_refusal(session: &Session, item: &Item) -> Result<Option<String>, String> {
    let unit = quote(&item.target);
    if item.kind == "service" {
        let (_, uid, _) = run(session, "id -u", b"").await?;
        if String::from_utf8_lossy(&uid).trim() != "0" {
            return Ok(Some(format!(
                "the vendor login is not root: it cannot stop or disable the system unit `{}`; its administrator stops it, or leave it out of `decommission.services`",
                item.target
            )));
        }
    }
    let sc = systemctl(&item.kind);
    let (code, out, err) = run(
        session,
        &format!("{sc} show --property=LoadState --value -- {unit}"),
        b"",
    )
    .await?;
    let state = String::from_utf8_lossy(&out).trim().to_string();
    Ok(if code != 0 {
        Some(format!(
            "`{sc}` cannot reach systemd on the vendor host for `{}` (exit status {code}: {err}): the vendor login cannot manage it",
            item.target
        ))
    } else if state == "not-found" {
        Some(format!(
            "`{}` is not a unit systemd knows on the vendor host",
            item.target
        ))
    } else {
        None
    })
}

/// Stops and disables the unit.
///
/// # Errors
/// `systemctl` failed, or the connection dropped.
pub async fn stop_unit(session: &Session, item: &Item) -> Result<(), String> {
    let sc = systemctl(&item.kind);
    let cmd = format!("{sc} disable --now -- {}", quote(&item.target));
    let (code, _, err) = run(session, &cmd, b"").await?;
    if code == 0 {
        Ok(())
    } else {
        Err(format!(
            "`{cmd}` failed on the vendor host (exit status {code}): {err}"
        ))
    }
}

/// Read-only: whether the unit is stopped and disabled; `(gone, what was seen)`.
///
/// # Errors
/// The connection dropped.
pub async fn unit_stopped(session: &Session, item: &Item) -> Result<(bool, String), String> {
    let sc = systemctl(&item.kind);
    let unit = quote(&item.target);
    let ask = |what: &'static str| format!("{sc} {what} -- {unit}");
    let (_, active, _) = run(session, &ask("is-active"), b"").await?;
    let (_, enabled, _) = run(session, &ask("is-enabled"), b"").await?;
    let active = String::from_utf8_lossy(&active).trim().to_string();
    let enabled = String::from_utf8_lossy(&enabled).trim().to_string();
    let stopped = active != "active" && !enabled.starts_with("enabled");
    Ok((
        stopped,
        format!(
            "`{}`: is-active {active}, is-enabled {enabled}{}",
            item.target,
            if stopped {
                ""
            } else {
                " (STILL RUNNING OR ENABLED)"
            }
        ),
    ))
}
