//! Which world a command acts on: the real hosts, or (built with the `sim` feature, for
//! the engine's crash tests through this binary) the fake world in the JSON file named
//! by `BOYONG_SIM`, with faults from `BOYONG_SIM_FAULT` (`STEP:CHANGE:POINT:ACTION`,
//! comma-separated).

use std::path::Path;

use serde_json::Value;

use boyong::engine::{Runner, StepCx, StepError, UndoItem};
use boyong::plan::PlannedStep;
use boyong::steps::Live;

/// The world a command acts on.
pub enum World {
    /// Real hosts.
    Live(Live),
    /// The fake world (tests only).
    #[cfg(feature = "sim")]
    Sim(boyong::engine::fake::FakeWorld),
}

impl World {
    /// The world this process is to act on.
    pub fn from_env() -> Result<Self, String> {
        #[cfg(feature = "sim")]
        if let Some(file) = std::env::var_os("BOYONG_SIM") {
            let world = boyong::engine::fake::FakeWorld::open(Path::new(&file))?;
            for f in std::env::var("BOYONG_SIM_FAULT")
                .unwrap_or_default()
                .split(',')
                .filter(|f| !f.is_empty())
            {
                world.inject(f.parse()?);
            }
            return Ok(Self::Sim(world));
        }
        Ok(Self::Live(Live))
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
}
