//! A strict fake of the world (vendor host and target engine), for the engine's tests.
//!
//! Owns: [`FakeWorld`], a [`Runner`] that plays each planned [`Change`] on a map of
//! resources (`place:resource:name` → value) held in memory or in one JSON file (the
//! latter lets the real `boyong` binary be killed and restarted against the same world,
//! with the `sim` feature), and [`Fault`]s injected at chosen points.
//!
//! Strict: creating what exists or removing what does not is an error, as on a real
//! engine; undo is safe whether or not the change happened. Not a replacement for the
//! real SSH and Docker tests: it checks the engine's ordering, journaling and recovery.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::runner::{Runner, StepCx, StepError, UndoItem};
use crate::plan::{Change, Op, Place, PlannedStep};
use crate::playbook::StepKind;

/// Where in a step a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Before the change's intent is journaled.
    BeforeIntent,
    /// After the intent, before the change.
    AfterIntent,
    /// After the change, before its `done`.
    AfterChange,
    /// After the `done`.
    AfterDone,
    /// When rollback undoes the change.
    Undo,
    /// While the executor waits for the world to settle ([`Runner::settled`]): before the
    /// run's end, before each undo. The fault's step and change name what is "in flight".
    Settle,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The step (or undo) returns an error.
    Fail,
    /// The thread panics (a crash inside one process).
    Panic,
    /// It waits an hour: for Ctrl-C, time limits and SIGKILL.
    Wait,
    /// It waits 3 s, then goes on: longer than the executor waits before it says what it
    /// waits for.
    Slow,
}

/// A fault: at `point` of the `change`-th change (0-based) of step `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Step id.
    pub step: String,
    /// Index of the change within the step.
    pub change: usize,
    /// Where.
    pub point: Point,
    /// What.
    pub action: Action,
}

impl FromStr for Fault {
    type Err = String;

    /// `STEP:CHANGE:POINT:ACTION`, e.g. `build:0:after-change:wait`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [step, change, point, action] = parts.as_slice() else {
            return Err(format!("`{s}`: expected STEP:CHANGE:POINT:ACTION"));
        };
        let point = match *point {
            "before-intent" => Point::BeforeIntent,
            "after-intent" => Point::AfterIntent,
            "after-change" => Point::AfterChange,
            "after-done" => Point::AfterDone,
            "undo" => Point::Undo,
            "settle" => Point::Settle,
            p => {
                return Err(format!(
                    "`{p}`: expected before-intent, after-intent, after-change, after-done, undo or settle"
                ));
            }
        };
        let action = match *action {
            "fail" => Action::Fail,
            "panic" => Action::Panic,
            "wait" => Action::Wait,
            "slow" => Action::Slow,
            a => return Err(format!("`{a}`: expected fail, panic, wait or slow")),
        };
        Ok(Self {
            step: (*step).to_string(),
            change: change
                .parse()
                .map_err(|_| format!("`{change}`: expected a number"))?,
            point,
            action,
        })
    }
}

/// The fake world's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldState {
    /// `place:resource:name` → value.
    pub resources: BTreeMap<String, String>,
    /// What reached the far side (commands' environments, with secret values): a
    /// test checks secrets were delivered there and nowhere else.
    pub delivered: Vec<String>,
    /// A counter that makes every value written distinct.
    pub generation: u64,
}

/// The fake world. Faults fire once each.
#[derive(Debug, Default)]
pub struct FakeWorld {
    state: Mutex<WorldState>,
    file: Option<PathBuf>,
    faults: Mutex<Vec<Fault>>,
    /// What a settle fault holds "in flight" while it strikes.
    settling: Mutex<Option<String>>,
}

/// A resource's key. Local artifacts belong to their run's directory.
fn key(c: &Change, artifacts: &Path) -> String {
    let word = |v: Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let name = match c.place {
        Place::Local => artifacts
            .join(c.name.trim_start_matches("artifacts/"))
            .display()
            .to_string(),
        _ => c.name.clone(),
    };
    format!("{}:{}:{name}", word(json!(c.place)), c.resource.word())
}

impl FakeWorld {
    /// An empty world in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A world in memory starting from `state`.
    pub fn with_state(state: WorldState) -> Self {
        Self {
            state: Mutex::new(state),
            ..Self::default()
        }
    }

    /// The world kept in `file` (created empty if missing), saved after every change.
    ///
    /// # Errors
    /// The file cannot be read or is not a world.
    pub fn open(file: &Path) -> Result<Self, String> {
        let state = match fs::read(file) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| format!("{}: not a fake world: {e}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => WorldState::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        Ok(Self {
            state: Mutex::new(state),
            file: Some(file.to_path_buf()),
            ..Self::default()
        })
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(fault);
    }

    /// A copy of the world now.
    pub fn snapshot(&self) -> WorldState {
        self.lock().clone()
    }

    /// Removes a resource behind the engine's back (a test of resume's re-checks).
    pub fn tamper_remove(&self, key: &str) -> Result<(), String> {
        let mut s = self.lock();
        s.resources.remove(key);
        self.save(&s)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WorldState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, s: &WorldState) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let tmp = file.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(s).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            fs::rename(&tmp, file)
        };
        write().map_err(|e| format!("cannot save the fake world {}: {e}", file.display()))
    }

    async fn strike(&self, step: &str, change: usize, point: Point) -> Result<(), StepError> {
        let fault = {
            let mut faults = self
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let at = faults
                .iter()
                .position(|f| f.step == step && f.change == change && f.point == point);
            at.map(|i| faults.remove(i))
        };
        match fault.map(|f| f.action) {
            None => Ok(()),
            Some(Action::Fail) => Err(StepError::failed(format!(
                "injected fault: step `{step}`, change {change}, {point:?}"
            ))),
            Some(Action::Panic) => panic_now(step, change, point),
            Some(Action::Wait) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            Some(Action::Slow) => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok(())
            }
        }
    }

    fn apply(&self, undo: &Value) -> Result<(), StepError> {
        let mut s = self.lock();
        let k = undo
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match undo.get("fake").and_then(Value::as_str) {
            Some("remove") => {
                s.resources.remove(&k);
            }
            Some("restore") => match undo.get("previous").and_then(Value::as_str) {
                Some(v) => {
                    s.resources.insert(k, v.to_string());
                }
                None => {
                    s.resources.remove(&k);
                }
            },
            Some("none") => return Ok(()),
            other => {
                return Err(StepError::failed(format!(
                    "the fake world cannot undo {other:?}"
                )));
            }
        }
        self.save(&s).map_err(StepError::Failed)
    }
}

#[expect(clippy::panic, reason = "the fault being injected is a panic")]
fn panic_now(step: &str, change: usize, point: Point) -> Result<(), StepError> {
    panic!("injected panic: step `{step}`, change {change}, {point:?}")
}

impl Runner for FakeWorld {
    fn supports(&self, _step: &PlannedStep) -> Result<(), String> {
        Ok(())
    }

    /// The fake world's changes undo with its own actions, which hold no data to keep.
    async fn keep(
        &self,
        keep: &super::keep::Keep,
        _run_dir: &Path,
    ) -> Result<super::keep::Kept, StepError> {
        Ok(super::keep::Kept {
            path: None,
            bytes: 0,
            sha256: String::new(),
            note: format!("the fake world holds no data of step `{}`", keep.step()),
        })
    }

    async fn execute(&self, step: &PlannedStep, cx: &mut StepCx<'_>) -> Result<Value, StepError> {
        if let StepKind::Exec(e) = &step.spec.kind {
            for (name, value) in &e.env {
                let v = value.resolve(cx.secrets()).map_err(StepError::Failed)?;
                let line = format!("{}: env {name}={}", step.id, v.expose());
                self.lock().delivered.push(line.clone());
                cx.output(&line);
            }
        }
        // A pipelined pair (a dump and the restore from it): the dump announces its
        // artifact once made, then lingers, so that the restore makes its first changes
        // meanwhile; the restore waits for the dump's end before its last change.
        let feed = cx.feed();
        let mut follow = cx.follow();
        let mut keys = Vec::new();
        for (i, change) in step.changes.iter().enumerate() {
            let k = key(change, cx.artifacts());
            if i + 1 == step.changes.len()
                && let Some(f) = &mut follow
                && !matches!(f.ended().await, super::stream::End::Finished { .. })
            {
                return Err(StepError::failed("the artifact it reads was not finished"));
            }
            self.strike(&step.id, i, Point::BeforeIntent).await?;
            let previous = self.lock().resources.get(&k).cloned();
            let undo = match change.op {
                Op::Create if change.condition.is_some() && previous.is_some() => {
                    cx.output(&format!("{k} exists; kept"));
                    continue;
                }
                Op::Create if previous.is_some() => {
                    return Err(StepError::failed(format!("{k} already exists")));
                }
                Op::Create => json!({"fake": "remove", "key": k}),
                Op::Run => match &step.spec.kind {
                    StepKind::Exec(e) if e.undo.is_none() => json!({"fake": "none"}),
                    _ => json!({"fake": "restore", "key": k, "previous": previous}),
                },
                Op::Replace | Op::Remove => {
                    json!({"fake": "restore", "key": k, "previous": previous})
                }
            };
            // The fake world's own undo actions: unknown to real rollbacks, by design; a
            // command without undo has none, as on real hosts.
            let undo = match undo.get("fake").and_then(Value::as_str) {
                Some("none") => crate::plan::Undo::None,
                _ => crate::plan::Undo::Other(undo),
            };
            let id = cx.intent(change, &undo)?;
            self.strike(&step.id, i, Point::AfterIntent).await?;
            {
                let mut s = self.lock();
                s.generation += 1;
                let value = format!("{}#{}", step.id, s.generation);
                match change.op {
                    Op::Remove if previous.is_none() => {
                        return Err(StepError::failed(format!("{k} does not exist")));
                    }
                    Op::Remove => {
                        s.resources.remove(&k);
                    }
                    _ => {
                        s.resources.insert(k.clone(), value);
                    }
                }
                self.save(&s).map_err(StepError::Failed)?;
            }
            self.strike(&step.id, i, Point::AfterChange).await?;
            cx.done(&id, &json!({"key": k}))?;
            if i == 0
                && let Some(f) = &feed
            {
                f.begin(Path::new(&k), None);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            keys.push(k);
            self.strike(&step.id, i, Point::AfterDone).await?;
        }
        if let Some(f) = &feed {
            f.finish(0, "");
        }
        Ok(json!({"keys": keys}))
    }

    fn streams_from(&self, producer: &PlannedStep, consumer: &PlannedStep) -> bool {
        matches!(
            (&producer.spec.kind, &consumer.spec.kind),
            (StepKind::Dump(_), StepKind::Restore(r)) if r.from == producer.id
        )
    }

    /// The fake world makes each change within its step's call: nothing goes on after,
    /// unless a settle fault says so.
    async fn settled(&self) {
        let fault = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|f| f.point == Point::Settle)
            .cloned();
        if let Some(f) = fault {
            *self
                .settling
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(format!(
                "change {} of step `{}` (an injected fault)",
                f.change, f.step
            ));
            let struck = self.strike(&f.step, f.change, Point::Settle).await;
            *self
                .settling
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            drop(struck);
        }
    }

    async fn unsettled(&self) -> Vec<String> {
        self.settling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    async fn undo(&self, item: &UndoItem) -> Result<(), StepError> {
        let change = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|f| f.step == item.step && f.point == Point::Undo)
            .map(|f| f.change);
        if let Some(c) = change {
            self.strike(&item.step, c, Point::Undo).await?;
        }
        match &item.undo {
            crate::plan::Undo::Other(undo) => self.apply(undo),
            crate::plan::Undo::None => Ok(()),
            other => Err(StepError::failed(format!(
                "the fake world cannot undo {}",
                other.action()
            ))),
        }
    }

    async fn still_valid(
        &self,
        _step: &PlannedStep,
        facts: &Value,
        _artifacts: &Path,
    ) -> Result<(), String> {
        let s = self.lock();
        for k in facts
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let k = k.as_str().unwrap_or_default();
            if !s.resources.contains_key(k) {
                return Err(format!("{k} is gone"));
            }
        }
        Ok(())
    }
}
