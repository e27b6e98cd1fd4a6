//! Which world a command acts on: the real hosts, or (built with the `sim` feature, for
//! the engine's crash tests through this binary) the fake world in the JSON file named
//! by `BOYONG_SIM`, with faults from `BOYONG_SIM_FAULT` (`STEP:CHANGE:POINT:ACTION`,
//! comma-separated). One fake world per process: the runs of a batch share it, as real
//! runs share the real hosts.

use std::path::Path;

use serde_json::Value;

use boyong::engine::keep::{Keep, Kept};
use boyong::engine::{Runner, StepCx, StepError, UndoItem};
use boyong::plan::PlannedStep;
use boyong::playbook::Playbook;
use boyong::secret::SecretStore;
use boyong::steps::{Live, LiveOptions};

/// The world a command acts on.
pub enum World {
    /// Real hosts.
    Live(Box<Live>),
    /// The fake world (tests only).
    #[cfg(feature = "sim")]
    Sim(std::sync::Arc<boyong::engine::fake::FakeWorld>),
}

/// The process's fake world, opened once (a batch's threads share it and its faults).
#[cfg(feature = "sim")]
fn sim_world(file: &Path) -> Result<std::sync::Arc<boyong::engine::fake::FakeWorld>, String> {
    static WORLD: std::sync::OnceLock<
        Result<std::sync::Arc<boyong::engine::fake::FakeWorld>, String>,
    > = std::sync::OnceLock::new();
    WORLD
        .get_or_init(|| {
            let world = boyong::engine::fake::FakeWorld::open(file)?;
            for f in std::env::var("BOYONG_SIM_FAULT")
                .unwrap_or_default()
                .split(',')
                .filter(|f| !f.is_empty())
            {
                world.inject(f.parse()?);
            }
            Ok(std::sync::Arc::new(world))
        })
        .clone()
}

impl World {
    /// The world this process is to act on: `playbook`'s hosts, reached with its
    /// secrets.
    pub fn for_playbook(
        playbook: Option<(Playbook, SecretStore)>,
        accept_new_host_key: bool,
        labels: &[(String, String)],
    ) -> Result<Self, String> {
        #[cfg(feature = "sim")]
        if let Some(file) = std::env::var_os("BOYONG_SIM") {
            return Ok(Self::Sim(sim_world(Path::new(&file))?));
        }
        let Some((pb, secrets)) = playbook else {
            return Ok(Self::Live(Box::default()));
        };
        let home =
            std::env::var_os("HOME").map_or_else(|| std::path::PathBuf::from("/root"), Into::into);
        Ok(Self::Live(Box::new(Live::new(
            pb,
            secrets,
            LiveOptions {
                default_known_hosts: home.join(".ssh/known_hosts"),
                accept_new_host_key,
                connect_timeout: std::time::Duration::from_secs(30),
                labels: labels.iter().cloned().collect(),
            },
        ))))
    }
}

impl Runner for World {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        match self {
            Self::Live(w) => w.supports(step),
            #[cfg(feature = "sim")]
            Self::Sim(w) => w.supports(step),
        }
    }

    async fn execute(&self, step: &PlannedStep, cx: &mut StepCx<'_>) -> Result<Value, StepError> {
        match self {
            Self::Live(w) => w.execute(step, cx).await,
            #[cfg(feature = "sim")]
            Self::Sim(w) => w.execute(step, cx).await,
        }
    }

    async fn keep(&self, keep: &Keep, run_dir: &Path) -> Result<Kept, StepError> {
        match self {
            Self::Live(w) => w.keep(keep, run_dir).await,
            #[cfg(feature = "sim")]
            Self::Sim(w) => w.keep(keep, run_dir).await,
        }
    }

    async fn undo(&self, item: &UndoItem) -> Result<(), StepError> {
        match self {
            Self::Live(w) => w.undo(item).await,
            #[cfg(feature = "sim")]
            Self::Sim(w) => w.undo(item).await,
        }
    }

    async fn still_valid(
        &self,
        step: &PlannedStep,
        facts: &Value,
        artifacts: &Path,
    ) -> Result<(), String> {
        match self {
            Self::Live(w) => w.still_valid(step, facts, artifacts).await,
            #[cfg(feature = "sim")]
            Self::Sim(w) => w.still_valid(step, facts, artifacts).await,
        }
    }

    fn streams_from(&self, producer: &PlannedStep, consumer: &PlannedStep) -> bool {
        match self {
            Self::Live(w) => w.streams_from(producer, consumer),
            #[cfg(feature = "sim")]
            Self::Sim(w) => w.streams_from(producer, consumer),
        }
    }

    async fn settled(&self) {
        match self {
            Self::Live(w) => w.settled().await,
            #[cfg(feature = "sim")]
            Self::Sim(w) => w.settled().await,
        }
    }

    async fn unsettled(&self) -> Vec<String> {
        match self {
            Self::Live(w) => w.unsettled().await,
            #[cfg(feature = "sim")]
            Self::Sim(w) => w.unsettled().await,
        }
    }
}
