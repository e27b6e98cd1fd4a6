//! `boyong run --plan PLAN.json`: runs a plan saved by `boyong plan --out`, exactly as
//! it was shown, or not at all.
//!
//! Before anything changes, the playbook is read again and must have the digest the plan
//! recorded; its hosts are probed again, and every fingerprint the plan holds (host key,
//! remote sizes and mtimes, current containers and their images, base images, networks,
//! volumes, ports) must be as the plan saw it; the steps and changes made from the
//! playbook now must equal the plan's. Any difference refuses the run (exit status 2),
//! naming each one. The plan then run is journaled with the saved file's SHA-256.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use boyong::plan::PLAN_FORMAT;

use super::error::{CliError, Kind, Result};
use super::load::load_ready;
use super::plan;
use super::run::{RunArgs, run_planned};

/// The differences between a saved plan and a fresh look at the same world, one line each.
pub fn stale(saved: &Value, fresh: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if saved["playbook_sha256"] != fresh["playbook_sha256"] {
        out.push(format!(
            "the playbook changed: sha256 {} when planned, {} now",
            short(&saved["playbook_sha256"]),
            short(&fresh["playbook_sha256"])
        ));
        return out;
    }
    let empty = serde_json::Map::new();
    let prints = |v: &Value| {
        v["probes"]["fingerprints"]
            .as_object()
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (a, b) = (prints(saved), prints(fresh));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let (was, now) = (a.get(k), b.get(k));
        if was != now {
            let show = |v: Option<&Value>| {
                v.and_then(Value::as_str)
                    .map_or_else(|| "(not seen)".to_string(), str::to_owned)
            };
            out.push(format!(
                "{k}: {} when planned, {} now",
                show(was),
                show(now)
            ));
        }
    }
    if out.is_empty() && bare_steps(saved) != bare_steps(fresh) {
        out.push(
            "the steps made from this playbook now differ from the plan's (was it made by another version of boyong?)"
                .into(),
        );
    }
    out
}

fn short(v: &Value) -> String {
    v.as_str()
        .map_or_else(|| "?".into(), |s| s.chars().take(12).collect())
}

/// The plan's steps without what the probes added (found, estimates, now).
fn bare_steps(plan: &Value) -> Value {
    let mut steps = plan["steps"].clone();
    if let Some(list) = steps.as_array_mut() {
        for s in list {
            if let Some(o) = s.as_object_mut() {
                o.remove("found");
                o.remove("estimate");
                if let Some(changes) = o.get_mut("changes").and_then(Value::as_array_mut) {
                    for c in changes {
                        if let Some(c) = c.as_object_mut() {
                            c.remove("now");
                        }
                    }
                }
            }
        }
    }
    steps
}

/// `boyong run --plan FILE`.
pub fn run_saved(state: &Path, file: &Path, args: &RunArgs) -> Result {
    let refuse = |why: String| {
        Err(CliError::bad_input(format!(
            "boyong run --plan: {why}; nothing was changed"
        )))
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return refuse(format!("cannot read {}: {e}", file.display())),
    };
    let saved: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return refuse(format!("{}: not a plan: {e}", file.display())),
    };
    if saved["format"].as_u64() != Some(u64::from(PLAN_FORMAT)) {
        return refuse(format!(
            "{}: not a boyong plan of format {PLAN_FORMAT}",
            file.display()
        ));
    }
    if saved["mode"] != "live" {
        return refuse(format!(
            "{} is an offline plan: it saw nothing of the hosts, so nothing can be checked; make it again without --offline",
            file.display()
        ));
    }
    let Some(playbook) = saved["playbook"].as_str() else {
        return refuse(format!("{}: names no playbook", file.display()));
    };
    let playbook = Path::new(playbook);
    let ready = load_ready(playbook, "boyong run --plan")?;
    let mut fresh = plan::offline(&ready, playbook, false);
    if let Err(e) = plan::probe_all(
        state,
        std::slice::from_mut(&mut fresh),
        std::slice::from_ref(&ready),
    ) {
        return Err(CliError::failed(format!("boyong run --plan: {e}")));
    }
    let fresh_json = match serde_json::to_value(&fresh) {
        Ok(v) => v,
        Err(e) => return refuse(format!("cannot encode the plan: {e}")),
    };
    let changed = stale(&saved, &fresh_json);
    if !changed.is_empty() {
        let mut why = format!(
            "boyong run --plan: refused: the plan in {} is stale; since it was made ({}):",
            file.display(),
            saved["probes"]["at"].as_str().unwrap_or("?")
        );
        for c in &changed {
            let _ = write!(why, "\n  - {c}");
        }
        return Err(CliError::bad_input(why).hint(format!(
            "make a new plan (`boyong plan {} --out {}`), read it, and run that; nothing was changed",
            playbook.display(),
            file.display()
        )));
    }
    if let Some(p) = fresh.probes.as_ref().filter(|p| !p.problems.is_empty()) {
        let mut why = String::from(
            "boyong run --plan: refused: the plan's probes find problems that would make the run fail:",
        );
        for pr in &p.problems {
            let at = pr
                .step
                .as_ref()
                .map(|s| format!("step `{s}`: "))
                .unwrap_or_default();
            let _ = write!(why, "\n  - {at}{} (do: {})", pr.what, pr.fix);
        }
        return Err(CliError::new(Kind::Failed, why).hint("nothing was changed"));
    }
    let digest = boyong::engine::journal::sha256_hex(&bytes);
    run_planned(
        state,
        playbook,
        &ready,
        fresh,
        args,
        Some((
            "saved-plan",
            format!(
                "runs the plan saved in {} (sha256 {digest}); every fingerprint it recorded was found unchanged",
                file.display()
            ),
        )),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_changed_fingerprint() {
        let saved = json!({"playbook_sha256": "aa", "steps": [],
            "probes": {"fingerprints": {"target.container.web": "absent", "vendor.host_key": "k1", "x": "same"}}});
        let fresh = json!({"playbook_sha256": "aa", "steps": [],
            "probes": {"fingerprints": {"target.container.web": "id=1 image=sha256:2", "vendor.host_key": "k1", "x": "same", "new": "y"}}});
        assert_eq!(
            stale(&saved, &fresh),
            vec![
                "new: (not seen) when planned, y now".to_string(),
                "target.container.web: absent when planned, id=1 image=sha256:2 now".to_string(),
            ]
        );
        assert!(stale(&saved, &saved).is_empty());
    }

    #[test]
    fn a_changed_playbook_is_named_first() {
        let a = json!({"playbook_sha256": "aaaaaaaaaaaaaaaa", "steps": []});
        let b = json!({"playbook_sha256": "bbbbbbbbbbbbbbbb", "steps": []});
        assert_eq!(
            stale(&a, &b),
            vec!["the playbook changed: sha256 aaaaaaaaaaaa when planned, bbbbbbbbbbbb now"]
        );
    }

    #[test]
    fn probe_annotations_do_not_count_as_step_changes() {
        let a = json!({"playbook_sha256": "a", "steps": [{"id": "x", "changes": [{"name": "n"}]}]});
        let b = json!({"playbook_sha256": "a", "steps": [{"id": "x", "found": ["f"], "changes": [{"name": "n", "now": "absent"}]}]});
        assert!(stale(&a, &b).is_empty());
        let c = json!({"playbook_sha256": "a", "steps": [{"id": "x", "changes": [{"name": "m"}]}]});
        assert_eq!(stale(&a, &c).len(), 1);
    }
}
