//! The data a rollback saves before it removes where the data lives: a `restore`'s
//! database (users wrote to it once the app served from it) and a volume a `deploy`
//! mounted and this run created. Computed from the run's plans and the changes still to
//! undo ([`keep_list`]), shown in the rollback's list before it runs, and saved by the
//! runner ([`super::Runner::keep`]) into the run directory's `rollback/` before the first
//! undo, each file's SHA-256 journaled (`note` of kind `data-kept`).
//!
//! Invariant: when saving fails, nothing is undone (the rollback stops before its first
//! undo), unless the operator said `--discard-data`, which is journaled (`discard-data`).

use std::path::PathBuf;

use serde::Serialize;

use super::runner::UndoItem;
use crate::plan::{PlannedStep, Undo};
use crate::playbook::{DbEngine, ImageSource, StepKind};

/// Data saved before a rollback removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Keep {
    /// A restore's database, dumped with the engine's own tool inside its container (or,
    /// if the container does not run, its data volume copied).
    Database {
        /// The restore step.
        step: String,
        /// The database container.
        container: String,
        /// Its data volume.
        volume: String,
        /// Its image.
        image: String,
        /// The engine.
        engine: DbEngine,
        /// The database.
        database: String,
    },
    /// A volume a deploy mounted, copied as a tar file.
    Volume {
        /// The deploy step.
        step: String,
        /// The volume.
        volume: String,
        /// An image on the target for the helper container that reads it.
        image: String,
    },
}

impl Keep {
    /// The step it belongs to.
    pub fn step(&self) -> &str {
        match self {
            Self::Database { step, .. } | Self::Volume { step, .. } => step,
        }
    }

    /// Where it is saved, relative to the run directory: `rollback/STEP.sql.gz`,
    /// `rollback/STEP.VOLUME.tar`.
    pub fn path(&self) -> PathBuf {
        match self {
            Self::Database { step, .. } => format!("rollback/{step}.sql.gz").into(),
            Self::Volume { step, volume, .. } => format!("rollback/{step}.{volume}.tar").into(),
        }
    }

    /// One line: what is saved, how, and where.
    pub fn describe(&self) -> String {
        match self {
            Self::Database {
                container,
                database,
                engine,
                volume,
                ..
            } => format!(
                "dump database `{database}` with {} inside container `{container}` into {} (if the container does not run: copy its volume `{volume}` into {})",
                match engine {
                    DbEngine::Postgres => "pg_dump",
                    _ => "mariadb-dump",
                },
                self.path().display(),
                self.volume_path().display()
            ),
            Self::Volume { volume, .. } => {
                format!("copy volume `{volume}` into {}", self.path().display())
            }
        }
    }

    /// Where a database container's volume is copied when the container does not run.
    pub fn volume_path(&self) -> PathBuf {
        match self {
            Self::Database { step, volume, .. } => format!("rollback/{step}.{volume}.tar").into(),
            Self::Volume { .. } => self.path(),
        }
    }
}

/// What saving one [`Keep`] gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The file written, relative to the run directory; `None`: nothing to save (the
    /// container or volume is gone), with why in `note`.
    pub path: Option<PathBuf>,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// How it was saved, or why nothing was.
    pub note: String,
}

/// Whether a change with this undo may have let users reach the new release: a container
/// made (publishing its ports from its start), a route switched, a service made or updated.
fn serves(undo: &Undo) -> bool {
    matches!(
        undo,
        Undo::RemoveContainer { .. }
            | Undo::StartContainer { .. }
            | Undo::Rename { .. }
            | Undo::Route { .. }
            | Undo::RemoveService { .. }
            | Undo::RestoreService { .. }
    )
}

/// The data a rollback of `pending` (newest first) would remove, given the run's planned
/// steps (of every version of its playbook; a later one overrides an earlier of the same
/// id), `images` (each build step's tag in the run) and `done` (the steps done and not
/// undone). A restore counts once it is done (before that its database holds only part of
/// the vendor's dump, which the run's artifacts keep whole); with `served_only` (the
/// undo inside a run: a failed run's automatic rollback, before a resume or a retry),
/// only once a deploy after it is done or has changed something still pending (its
/// cut-over began: a route switched, a container publishing, before the step failed):
/// before that, no app has served from it.
pub fn keep_list(
    steps: &[PlannedStep],
    pending: &[UndoItem],
    images: &std::collections::BTreeMap<String, String>,
    done: &std::collections::BTreeMap<String, serde_json::Value>,
    served_only: bool,
) -> Vec<Keep> {
    let removes = |step: &str, what: &str| {
        pending.iter().any(|i| {
            i.step == step
                && match &i.undo {
                    Undo::RemoveContainer { name }
                    | Undo::RemoveVolume { name }
                    | Undo::RestoreVolume { name, .. } => name == what,
                    _ => false,
                }
        })
    };
    let mut out = Vec::new();
    for (at, s) in steps.iter().enumerate() {
        match &s.spec.kind {
            StepKind::Restore(r) => {
                if !done.contains_key(&s.id) {
                    continue;
                }
                if served_only {
                    // a deploy done, or one whose cut-over began (it changed something
                    // not undone yet): its release may have served, and written
                    let deployed = steps[at + 1..].iter().any(|later| {
                        matches!(later.spec.kind, StepKind::Deploy(_))
                            && (done.contains_key(&later.id)
                                || pending
                                    .iter()
                                    .any(|i| i.step == later.id && serves(&i.undo)))
                    });
                    if !deployed {
                        continue;
                    }
                }
                if !(removes(&s.id, &r.name) || removes(&s.id, &r.volume)) {
                    continue;
                }
                let Some(StepKind::Dump(d)) =
                    steps.iter().find(|x| x.id == r.from).map(|x| &x.spec.kind)
                else {
                    continue;
                };
                out.push(Keep::Database {
                    step: s.id.clone(),
                    container: r.name.clone(),
                    volume: r.volume.clone(),
                    image: r.image.clone(),
                    engine: d.engine,
                    database: d.database.clone(),
                });
            }
            StepKind::Deploy(d) => {
                let image = match &d.image {
                    ImageSource::Reference(r) => r.clone(),
                    ImageSource::Build(b) => images.get(b).cloned().unwrap_or_default(),
                };
                for v in &d.volumes {
                    if removes(&s.id, &v.volume) && !image.is_empty() {
                        out.push(Keep::Volume {
                            step: s.id.clone(),
                            volume: v.volume.clone(),
                            image: image.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    // a step listed more than once (its versions) keeps its data once
    let mut seen = Vec::with_capacity(out.len());
    out.retain(|k| {
        let new = !seen.contains(k);
        if new {
            seen.push(k.clone());
        }
        new
    });
    out
}
