//! Building a [`Report`] from a run directory: the journal (read leniently, verified
//! separately), `plan.json`, and the files in `artifacts/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::evidence::{artifacts, databases, file_digest};
use super::{
    ChangeRow, Container, Image, Inputs, JournalEvidence, NoteRow, Report, ReportError,
    RollbackRow, Route, StepReport, Verdict, Who, time,
};
use crate::engine::history::ChangeState;
use crate::engine::journal::{self, Entry, Header, JournalContents, Record, VerifyReport};
use crate::engine::{History, RunResult};
use crate::plan::{Change, Plan};

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A journal line after the header, as written (the chain is checked elsewhere).
#[derive(Deserialize)]
struct LineIn {
    #[serde(flatten)]
    record: Record,
    seq: u64,
    at: String,
    prev: String,
}

/// Every complete line that parses: the header (if line 1 is one) and the records. A
/// broken journal is read as far as its lines parse; the verdict says it is broken.
fn lenient(bytes: &[u8]) -> (Option<Header>, Vec<Entry>) {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&bytes[..0], |end| &bytes[..end]);
    let mut header = None;
    let mut entries = Vec::new();
    for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
        if i == 0 {
            header = serde_json::from_slice::<Header>(line).ok();
            continue;
        }
        if let Ok(l) = serde_json::from_slice::<LineIn>(line) {
            entries.push(Entry {
                line: i + 1,
                seq: l.seq,
                at: l.at,
                prev: l.prev,
                record: l.record,
            });
        }
    }
    (header, entries)
}

pub(super) fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// Reads the run directory.
pub(super) fn from_run_dir(dir: &Path) -> Result<Report, ReportError> {
    let journal_path = dir.join("journal.jsonl");
    if !journal_path.is_file() {
        return Err(ReportError::NoJournal(journal_path));
    }
    let bytes = fs::read(&journal_path).map_err(io(&journal_path))?;
    let verified = journal::verify_bytes(&bytes);
    let (header, entries) = lenient(&bytes);
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map_or_else(|| "unknown".into(), |n| n.to_string_lossy().into_owned())
    };
    let header = header.unwrap_or_else(|| Header {
        format: journal::FORMAT,
        run: name(Some(dir)),
        app: name(dir.parent().and_then(Path::parent)),
        playbook_sha256: "unknown (no readable header)".into(),
        plan_sha256: "unknown (no readable header)".into(),
        operator: "unknown".into(),
        host: "unknown".into(),
        started: String::new(),
    });
    let contents = JournalContents {
        header,
        entries,
        torn_tail: verified.torn_tail,
        head_sha256: verified.head_sha256.clone().unwrap_or_default(),
        keying: verified.keying,
    };
    let h = History::from_journal(&contents);
    // The plan of the run's latest version: a resume after an edit adds `plan.vN.json`.
    let latest = (2..1000)
        .map(|n| dir.join(format!("plan.v{n}.json")))
        .take_while(|p| p.is_file())
        .last()
        .unwrap_or_else(|| dir.join("plan.json"));
    let plan: Option<Plan> = fs::read_to_string(latest)
        .ok()
        .and_then(|t| Plan::read(&t).ok());
    let plan = plan.as_ref();
    let digest_of = |f: &str| file_digest(&dir.join(f)).ok().map(|(d, _)| d);
    let mut steps = steps(plan, &contents.entries);
    for (id, ms) in log_elapsed(&dir.join("log.jsonl")) {
        if let Some(st) = steps.iter_mut().find(|s| s.id == id && s.outcome == "done") {
            st.elapsed_ms = Some(ms);
        }
    }
    let kinds: BTreeMap<&str, (&str, &str)> = steps
        .iter()
        .map(|s| (s.id.as_str(), (s.kind.as_str(), s.outcome.as_str())))
        .collect();
    // In plan order: sections list steps' evidence in the order the steps ran.
    let facts: Vec<(String, Value)> = steps
        .iter()
        .filter_map(|s| Some((s.id.clone(), s.facts.clone()?)))
        .collect();
    let (artifacts, trees) = artifacts(&dir.join("artifacts"), &facts, &contents.entries)?;
    let header = &contents.header;
    Ok(Report {
        format: super::FORMAT,
        app: header.app.clone(),
        run: header.run.clone(),
        verdict: verdict(&h, &verified),
        who: Who {
            operator: header.operator.clone(),
            host: header.host.clone(),
            started: header.started.clone(),
            last_record: h.last_at.clone(),
            duration_s: time::seconds_between(&header.started, &h.last_at),
            later: later(&contents.entries),
        },
        route: Route {
            vendor: plan.map(|p| p.vendor.address.clone()),
            known_hosts: plan.map(|p| p.vendor.known_hosts.clone()),
            host_keys: notes(&contents.entries)
                .into_iter()
                .filter(|n| n.kind == "host-key")
                .fold(Vec::new(), |mut keys, n| {
                    if !keys.contains(&n.text) {
                        keys.push(n.text);
                    }
                    keys
                }),
            target: plan.map(|p| p.target.clone()),
        },
        inputs: Inputs {
            playbook: plan.map(|p| p.playbook.clone()),
            playbook_sha256: header.playbook_sha256.clone(),
            playbook_file_sha256: digest_of("playbook.yml"),
            plan_sha256: header.plan_sha256.clone(),
            plan_file_sha256: digest_of("plan.json"),
        },
        databases: databases(&dir.join("artifacts"), &facts),
        images: images(&facts, &kinds),
        containers: containers(&facts, &kinds),
        steps,
        artifacts,
        trees,
        changes: changes(&h, &contents.entries),
        rollback: rollback(&h, &contents.entries),
        kept: super::kept::kept(dir, &notes(&contents.entries))?,
        notes: notes(&contents.entries),
        journal: JournalEvidence {
            path: "journal.jsonl".into(),
            lines: verified.lines,
            head_sha256: verified.head_sha256.clone(),
            file_sha256: crate::digest::hex(&Sha256::digest(&bytes)),
            verify: if verified.is_intact() {
                "intact".into()
            } else {
                "BROKEN".into()
            },
            problem: verified.problem.as_ref().map(ToString::to_string),
            torn_tail: verified.torn_tail,
        },
    })
}

fn verdict(h: &History, v: &VerifyReport) -> Verdict {
    let run = match (h.result, h.unfinished_tail) {
        (Some(r), false) => r.word(),
        (Some(RunResult::Interrupted), true) => "interrupted",
        _ => "unfinished",
    };
    let intact = v.is_intact();
    Verdict {
        run: run.into(),
        journal_intact: intact,
        summary: format!(
            "run {}; journal {}",
            run.to_uppercase().replace('-', " "),
            if intact {
                "intact (its hash chain verifies)"
            } else {
                "BROKEN (its hash chain does not verify: the records below cannot be trusted)"
            }
        ),
    }
}

fn blank_step(number: u64, id: String, kind: String, planned: Vec<String>) -> StepReport {
    StepReport {
        number,
        id,
        kind,
        planned,
        outcome: "not run".into(),
        attempts: 0,
        started: None,
        ended: None,
        duration_s: None,
        elapsed_ms: None,
        error: None,
        facts: None,
    }
}

/// Each step's last `elapsed_ms`, from the `step-done` events of the run's structured log
/// (`log.jsonl`: one tracing JSON object a line, the event as JSON text in
/// `fields.event`). A missing or unreadable log gives nothing.
fn log_elapsed(path: &Path) -> Vec<(String, u64)> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out: Vec<(String, u64)> = Vec::new();
    for line in text.lines() {
        let Some(event) = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| s(&v["fields"], "event"))
            .and_then(|e| serde_json::from_str::<Value>(&e).ok())
        else {
            continue;
        };
        if let (Some("step-done"), Some(step), Some(ms)) = (
            event["event"].as_str(),
            s(&event, "step"),
            event["elapsed_ms"].as_u64(),
        ) {
            out.retain(|(id, _)| *id != step);
            out.push((step, ms));
        }
    }
    out
}

/// The index of step `id` in `out`, added (not in the plan) if missing.
fn slot(out: &mut Vec<StepReport>, id: &str) -> usize {
    if let Some(i) = out.iter().position(|s| s.id == id) {
        return i;
    }
    out.push(blank_step(0, id.into(), String::new(), Vec::new()));
    out.len() - 1
}

/// Each step of the plan, then any journaled step the plan does not list.
fn steps(plan: Option<&Plan>, entries: &[Entry]) -> Vec<StepReport> {
    let mut out: Vec<StepReport> = plan
        .map(|p| p.steps.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            blank_step(
                u64::try_from(p.number).unwrap_or(0),
                p.id.clone(),
                p.kind.to_string(),
                p.changes.iter().map(Change::summary).collect(),
            )
        })
        .collect();
    for e in entries {
        match &e.record {
            Record::StepStarted { step } => {
                let i = slot(&mut out, step);
                let st = &mut out[i];
                st.attempts += 1;
                st.started.get_or_insert_with(|| e.at.clone());
                st.outcome = "interrupted".into();
            }
            Record::StepDone { step, facts } => {
                let i = slot(&mut out, step);
                let st = &mut out[i];
                st.outcome = "done".into();
                st.ended = Some(e.at.clone());
                st.facts = Some(facts.clone());
                st.error = None;
            }
            Record::StepFailed { step, error } => {
                let i = slot(&mut out, step);
                let st = &mut out[i];
                st.outcome = "failed".into();
                st.ended = Some(e.at.clone());
                st.error = Some(error.clone());
            }
            Record::Undone { step, .. } => {
                let i = slot(&mut out, step);
                let st = &mut out[i];
                if st.outcome == "done" {
                    st.outcome = "undone".into();
                }
            }
            _ => {}
        }
    }
    for st in &mut out {
        st.duration_s = match (&st.started, &st.ended) {
            (Some(a), Some(b)) => time::seconds_between(a, b),
            _ => None,
        };
    }
    out
}

/// An object's members as sorted `(key, value)` text pairs.
fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let text = match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    out.sort();
    out
}

/// Each step's `(kind, outcome)`.
type Kinds<'a> = BTreeMap<&'a str, (&'a str, &'a str)>;

fn outcome(kinds: &Kinds<'_>, id: &str) -> String {
    kinds.get(id).map_or("", |k| k.1).to_string()
}

fn images(facts: &[(String, Value)], kinds: &Kinds<'_>) -> Vec<Image> {
    facts
        .iter()
        .filter(|(id, f)| {
            kinds.get(id.as_str()).is_some_and(|k| k.0 == "build")
                || f.get("context_sha256").is_some()
        })
        .map(|(id, f)| Image {
            step: id.clone(),
            outcome: outcome(kinds, id),
            tag: s(f, "image").unwrap_or_default(),
            image_id: s(f, "image_id"),
            source_sha256: s(f, "source_sha256"),
            context_sha256: s(f, "context_sha256"),
            labels: pairs(f.get("labels")),
        })
        .collect()
}

fn containers(facts: &[(String, Value)], kinds: &Kinds<'_>) -> Vec<Container> {
    facts
        .iter()
        .filter(|(id, f)| {
            kinds
                .get(id.as_str())
                .is_some_and(|k| matches!(k.0, "deploy" | "restore"))
                || f.get("container_id").is_some()
        })
        .map(|(id, f)| Container {
            step: id.clone(),
            outcome: outcome(kinds, id),
            name: s(f, "container").unwrap_or_default(),
            container_id: s(f, "container_id"),
            image: s(f, "image"),
            image_id: s(f, "image_id"),
            previous: s(f, "previous"),
            settings: pairs(f.get("settings")),
            health: f.get("health").map(|h| match h {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            }),
            route: f.get("route").map(|r| {
                let t = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("?");
                match r.get("cert_sha256").and_then(Value::as_str) {
                    Some(fp) => format!(
                        "https://{} through front proxy `{}`; certificate SHA-256 {fp}, expires {}",
                        t("host"),
                        t("front"),
                        t("cert_expires")
                    ),
                    None => format!("http://{} through front proxy `{}`", t("host"), t("front")),
                }
            }),
        })
        .collect()
}

/// When each change's intent was journaled.
fn intent_times(entries: &[Entry]) -> BTreeMap<&str, &str> {
    entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Intent { change_id, .. } => Some((change_id.as_str(), e.at.as_str())),
            _ => None,
        })
        .collect()
}

/// A planned change's text with what the run learned put in for its placeholders: the
/// run's id, and a build's source digest (`<digest known after fetch>`) from its facts.
pub(super) fn known(text: &str, run: &str, facts: Option<&Value>) -> String {
    let mut t = text.replace("<run-id>", run);
    if let Some(d) = facts.and_then(|f| s(f, "source_sha256")) {
        t = t.replace("<digest known after fetch>", &d);
    }
    t
}

fn changes(h: &History, entries: &[Entry]) -> Vec<ChangeRow> {
    let times = intent_times(entries);
    let run = h.header.run.as_str();
    // Each step's last journaled facts, kept after a rollback undid the step.
    let facts: BTreeMap<&str, &Value> = entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::StepDone { step, facts } => Some((step.as_str(), facts)),
            _ => None,
        })
        .collect();
    h.changes
        .iter()
        .map(|c| ChangeRow {
            change_id: c.item.change_id.clone(),
            step: c.item.step.clone(),
            summary: c.item.summary(),
            details: c.item.change["details"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|d| {
                    d.as_str()
                        .map(|d| known(d, run, facts.get(c.item.step.as_str()).copied()))
                })
                .collect(),
            state: match &c.state {
                ChangeState::Intended => "intended (outcome not journaled)".into(),
                ChangeState::Done => "done".into(),
                ChangeState::Failed => "failed".into(),
                ChangeState::Undone => "undone".into(),
                ChangeState::UndoFailed(e) => format!("undo failed: {e}"),
            },
            at: times
                .get(c.item.change_id.as_str())
                .map(|t| (*t).to_string())
                .unwrap_or_default(),
            undo: s(&c.item.change, "undo"),
        })
        .collect()
}

fn rollback(h: &History, entries: &[Entry]) -> Vec<RollbackRow> {
    let summary = |id: &str| {
        h.changes
            .iter()
            .find(|c| c.item.change_id == id)
            .map(|c| c.item.summary())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut open = false;
    for e in entries {
        let row =
            |event: &str, change_id: Option<&String>, step: Option<&String>, text| RollbackRow {
                at: e.at.clone(),
                event: event.into(),
                change_id: change_id.cloned(),
                step: step.cloned(),
                text,
            };
        match &e.record {
            Record::Note { kind, text } if kind == "rollback" => {
                open = true;
                out.push(row("started", None, None, text.clone()));
            }
            Record::Undone { change_id, step } => {
                out.push(row(
                    "undone",
                    Some(change_id),
                    Some(step),
                    summary(change_id),
                ));
            }
            Record::UndoFailed {
                change_id,
                step,
                error,
            } => out.push(row(
                "undo-failed",
                Some(change_id),
                Some(step),
                format!("{}: {error}", summary(change_id)),
            )),
            Record::RunFinished { result } if open => {
                open = false;
                out.push(row("finished", None, None, result.clone()));
            }
            _ => {}
        }
    }
    out
}

fn notes(entries: &[Entry]) -> Vec<NoteRow> {
    entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Note { kind, text } => Some(NoteRow {
                at: e.at.clone(),
                kind: kind.clone(),
                text: text.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// What happened to the run after it started: resumes, rollbacks, broken locks.
fn later(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Note { kind, text }
                if matches!(kind.as_str(), "resumed" | "operator" | "lock-broken") =>
            {
                Some(format!("{}: {text}", e.at))
            }
            Record::RunFinished { result } => Some(format!("{}: run finished: {result}", e.at)),
            _ => None,
        })
        .collect()
}
