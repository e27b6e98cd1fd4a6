//! `--reuse-artifacts`: the artifacts of earlier runs of the same app that a `fetch` or a
//! `dump` may take instead of pulling again.
//!
//! Owns: the key of a step's inputs ([`inputs_sha256`]: the SHA-256 of the resolved fields
//! that decide the artifact's bytes, chosen by the kind; never a secret's value), the
//! facts that make an artifact findable (`inputs_sha256`, `pulled_at`), and the search
//! ([`candidates`]): each earlier run's journal, read and checked (MACs with the run's
//! key), for a step done, not undone, with the same key and pulled at most the bound
//! ago, newest run first.
//!
//! Invariants: a candidate is only a lead. The kind re-verifies its files against the
//! manifest whose SHA-256 the earlier journal holds before it copies them (copies, never
//! links: an artifact is not read-only, and no two runs share one by mutation), and the
//! copy keeps the first pull's time, so reusing never makes data look younger.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::history::History;
use super::journal;
use super::runner::Reuse;
use super::state::RunId;

/// An earlier run's artifact that may stand in for a pull.
#[derive(Debug, Clone)]
pub struct Earlier {
    /// The earlier run's id.
    pub run: String,
    /// The step that pulled it (its id in that run).
    pub step: String,
    /// That run's `artifacts/`.
    pub artifacts: PathBuf,
    /// What that step journaled when done.
    pub facts: Value,
    /// How long ago the bytes were pulled from the vendor.
    pub age: Duration,
}

impl Earlier {
    /// The facts of a copy of this artifact: the earlier facts (the same digests, the
    /// first pull's time), and where the copy came from.
    pub fn facts_of_copy(&self) -> Value {
        let mut facts = self.facts.clone();
        if let Some(o) = facts.as_object_mut() {
            o.insert(
                "reused_from".into(),
                json!({
                    "run": self.run,
                    "step": self.step,
                    "age_seconds": self.age.as_secs(),
                }),
            );
        }
        facts
    }

    /// `reused from run X step `code` (pulled 2h 5m ago)`.
    pub fn said(&self) -> String {
        format!(
            "reused from run {} step `{}` (pulled {} ago)",
            self.run,
            self.step,
            age(self.age)
        )
    }
}

/// The key of a step's inputs: the SHA-256 of `inputs` as JSON (object keys sorted).
pub fn inputs_sha256(inputs: &Value) -> String {
    journal::sha256_hex(inputs.to_string().as_bytes())
}

/// Now, in seconds since 1970: a pull's `pulled_at` fact.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Earlier runs of the app whose run directory holds `artifacts` (this run's), with a
/// step done and not undone whose inputs are `inputs` (an [`inputs_sha256`]), pulled at
/// most `reuse.max_age` ago: newest run first. A journal that cannot be read or does
/// not verify is passed over. Lazy: a journal is read (and verified) only when the ones
/// after it gave nothing the caller took, so an app with a long history pays for its
/// newest runs only.
pub fn candidates(
    artifacts: &Path,
    inputs: &str,
    reuse: &Reuse,
) -> impl Iterator<Item = Earlier> + use<> {
    let (runs, ids) = run_ids(artifacts);
    let (inputs, key, max_age, now) = (
        inputs.to_string(),
        reuse.key.clone(),
        reuse.max_age,
        now_secs(),
    );
    ids.into_iter().rev().flat_map(move |id| {
        let dir = runs.join(id.as_str());
        let mut out = Vec::new();
        let Ok(contents) = journal::read_keyed(&dir.join("journal.jsonl"), key.as_ref()) else {
            return out;
        };
        for (step, facts) in History::from_journal(&contents).steps_done {
            // Its files are found by the step's id: only an id a playbook may hold.
            if !crate::playbook::is_step_id(&step) {
                continue;
            }
            if facts.get("inputs_sha256").and_then(Value::as_str) != Some(inputs.as_str()) {
                continue;
            }
            let Some(pulled) = facts.get("pulled_at").and_then(Value::as_u64) else {
                continue;
            };
            let age = Duration::from_secs(now.saturating_sub(pulled));
            if age <= max_age {
                out.push(Earlier {
                    run: id.to_string(),
                    step,
                    artifacts: dir.join("artifacts"),
                    facts,
                    age,
                });
            }
        }
        out
    })
}

/// The runs folder of the run whose artifacts are `artifacts`, and the other runs in it,
/// oldest first.
fn run_ids(artifacts: &Path) -> (PathBuf, Vec<RunId>) {
    let Some(run_dir) = artifacts.parent() else {
        return (PathBuf::new(), Vec::new());
    };
    let (Some(runs), Some(own)) = (run_dir.parent(), run_dir.file_name()) else {
        return (PathBuf::new(), Vec::new());
    };
    let mut ids: Vec<RunId> = std::fs::read_dir(runs)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name() != own)
                .filter_map(|e| RunId::parse(&e.file_name().to_string_lossy()).ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    (runs.to_path_buf(), ids)
}

/// An age in words: `45s`, `12m 5s`, `2h 5m`, `3d 4h`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_words() {
        assert_eq!(age(Duration::from_secs(45)), "45s");
        assert_eq!(age(Duration::from_secs(725)), "12m 5s");
        assert_eq!(age(Duration::from_secs(7_500)), "2h 5m");
        assert_eq!(age(Duration::from_secs(3 * 86_400 + 4 * 3_600)), "3d 4h");
    }

    #[test]
    fn the_key_does_not_depend_on_field_order() {
        let a = json!({"path": "/srv", "exclude": ["a"]});
        let b: Value =
            serde_json::from_str(r#"{"exclude": ["a"], "path": "/srv"}"#).unwrap_or_default();
        assert_eq!(inputs_sha256(&a), inputs_sha256(&b));
        assert_ne!(
            inputs_sha256(&a),
            inputs_sha256(&json!({"path": "/srv", "exclude": []}))
        );
    }
}
