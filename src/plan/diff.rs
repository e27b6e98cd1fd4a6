//! The steps that changed between two plans of the same app: what `run --resume` shows
//! and decides from when the playbook was edited after a run began.
//!
//! Owns: [`StepDiff`] (one line per step id, in the new playbook's order, a removed step
//! where it stood) and where a resumed run must start redoing ([`StepDiff::redo_from`]).
//! Steps are compared as resolved (the plan's steps, not the YAML text): an edit that
//! only moves a comment or reformats changes nothing, and an edit of a variable shows
//! in every step that uses it. Invariant: a field's path is shown, never its value, so no
//! secret (already `***` in a plan) can reach the diff.

use std::fmt;

use serde_json::Value;

use super::{Plan, PlannedStep};
use crate::playbook::template::with_secret_names;
use crate::playbook::{ExecOn, Step, StepKind};

/// How one step differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepChange {
    /// The same resolved step.
    Unchanged,
    /// The same id, other settings: the paths of the fields that differ
    /// (`build.run`, `retries`, `vendor`).
    Changed(Vec<String>),
    /// An id the earlier plan did not have.
    New,
    /// An id the new plan no longer has.
    Removed,
}

/// One step of a [`StepDiff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLine {
    /// The step's id.
    pub id: String,
    /// How it differs.
    pub change: StepChange,
}

/// The steps of an earlier plan against a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDiff {
    /// One line per step id: the new plan's steps in order, each removed step after the
    /// step it followed.
    pub lines: Vec<StepLine>,
    /// The number of leading steps of the new plan that are the earlier plan's, in the
    /// same places and unchanged; a resumed run redoes everything from there.
    pub redo_from: usize,
}

impl StepDiff {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.change == StepChange::Unchanged)
    }

    /// The line of step `id`.
    pub fn line(&self, id: &str) -> Option<&StepLine> {
        self.lines.iter().find(|l| l.id == id)
    }
}

impl fmt::Display for StepDiff {
    /// `  = code  unchanged`, `  ~ image  changed: build.run`, `  + config  new`,
    /// `  - old  removed`, one a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.lines.iter().map(|l| l.id.len()).max().unwrap_or(0);
        for l in &self.lines {
            let (mark, what) = match &l.change {
                StepChange::Unchanged => ('=', "unchanged".to_string()),
                StepChange::Changed(paths) => ('~', format!("changed: {}", paths.join(", "))),
                StepChange::New => ('+', "new".to_string()),
                StepChange::Removed => ('-', "removed".to_string()),
            };
            writeln!(f, "  {mark} {:<width$}  {what}", l.id)?;
        }
        Ok(())
    }
}

impl StepDiff {
    /// Adds `paths` to what differs in step `id` of `new` (the plan this diff was made
    /// against), and moves [`StepDiff::redo_from`] back to it if it is after it.
    pub fn amend(&mut self, new: &Plan, id: &str, paths: Vec<String>) {
        if paths.is_empty() {
            return;
        }
        if let Some(l) = self.lines.iter_mut().find(|l| l.id == id) {
            match &mut l.change {
                StepChange::Unchanged => l.change = StepChange::Changed(paths),
                StepChange::Changed(p) => {
                    for x in paths {
                        if !p.contains(&x) {
                            p.push(x);
                        }
                    }
                }
                StepChange::New | StepChange::Removed => {}
            }
        }
        if let Some(i) = new.steps.iter().position(|s| s.id == id) {
            self.redo_from = self.redo_from.min(i);
        }
    }
}

/// The fields of two versions of a step that differ only in which secret they use
/// (a plan shows every secret as `***`): their paths, e.g. `restore.password`.
pub fn secret_paths(old: &Step, new: &Step) -> Vec<String> {
    let paths = |a: &Step, b: &Step| {
        let mut out = Vec::new();
        let (mut a, mut b) = (json(a), json(b));
        let (ka, kb) = (take(&mut a, "kind"), take(&mut b, "kind"));
        differ("", &a, &b, &mut out);
        differ("", &ka, &kb, &mut out);
        out
    };
    let shown = paths(old, new);
    let named = with_secret_names(|| paths(old, new));
    named.into_iter().filter(|p| !shown.contains(p)).collect()
}

impl Plan {
    /// The steps of `new` against this (earlier) plan of the same app. Both should be
    /// bound to the same run ([`Plan::for_run`]), so that names made from the run's id
    /// compare equal; what live probes added to a step does not count.
    pub fn step_diff(&self, new: &Self) -> StepDiff {
        let vendor_moved = json(&self.vendor) != json(&new.vendor);
        let target_moved = self.target != new.target;
        let compared = |old: &PlannedStep, now: &PlannedStep| {
            let mut paths = field_paths(old, now);
            let host_moved = if reads_vendor(now) {
                vendor_moved.then_some("vendor")
            } else {
                target_moved.then_some("target")
            };
            paths.extend(host_moved.map(str::to_owned));
            paths
        };
        let mut lines: Vec<StepLine> = new
            .steps
            .iter()
            .map(|s| StepLine {
                id: s.id.clone(),
                change: match self.steps.iter().find(|o| o.id == s.id) {
                    None => StepChange::New,
                    Some(o) => match compared(o, s) {
                        p if p.is_empty() => StepChange::Unchanged,
                        p => StepChange::Changed(p),
                    },
                },
            })
            .collect();
        // A removed step goes after the nearest step before it that is still there (and
        // after the removed steps already put there).
        let mut at = 0;
        for old in &self.steps {
            if let Some(i) = lines.iter().position(|l| l.id == old.id) {
                at = i + 1;
                continue;
            }
            lines.insert(
                at,
                StepLine {
                    id: old.id.clone(),
                    change: StepChange::Removed,
                },
            );
            at += 1;
        }
        let redo_from = new
            .steps
            .iter()
            .zip(&self.steps)
            .take_while(|(n, o)| n.id == o.id && compared(o, n).is_empty())
            .count();
        StepDiff { lines, redo_from }
    }
}

/// Whether a step reads the vendor host (its inputs change when the vendor does).
fn reads_vendor(step: &PlannedStep) -> bool {
    match &step.spec.kind {
        StepKind::Fetch(_) | StepKind::Dump(_) => true,
        StepKind::Exec(e) => e.on == ExecOn::Vendor,
        _ => false,
    }
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The paths of the fields that differ between two steps of the same id: the resolved
/// step's own fields (`build.run`, `timeout`); only when those are equal, what the plan
/// made of them (`changes`, `reads`: e.g. another step's id they name).
fn field_paths(old: &PlannedStep, new: &PlannedStep) -> Vec<String> {
    let mut out = Vec::new();
    let (mut a, mut b) = (json(&old.spec), json(&new.spec));
    // `kind` holds one key, the kind's name: its fields read as `build.run`.
    let (ka, kb) = (take(&mut a, "kind"), take(&mut b, "kind"));
    differ("", &a, &b, &mut out);
    if old.kind == new.kind {
        differ("", &ka, &kb, &mut out);
    } else {
        out.push("kind".into());
    }
    out.retain(|p| p != "id");
    if out.is_empty() {
        let bare = |s: &PlannedStep| {
            let mut changes = s.changes.clone();
            for c in &mut changes {
                c.now = None;
            }
            (s.reads.clone(), json(&changes))
        };
        let ((ra, ca), (rb, cb)) = (bare(old), bare(new));
        if ra != rb {
            out.push("reads".into());
        }
        if ca != cb {
            out.push("changes".into());
        }
    }
    out
}

fn take(v: &mut Value, key: &str) -> Value {
    v.as_object_mut()
        .and_then(|o| o.remove(key))
        .unwrap_or(Value::Null)
}

/// Appends the path of every field where `a` and `b` differ: objects field by field, a
/// list or a value as a whole.
fn differ(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().collect();
            keys.extend(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                let null = Value::Null;
                differ(
                    &join(k),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ => out.push(if path.is_empty() {
            "(the step)".into()
        } else {
            path.to_string()
        }),
    }
}
