//! The runner for real hosts: each step kind's execution against the vendor host (SSH)
//! and the target engine (Docker).
//!
//! In this release no step kind has its client yet: [`Live::supports`] refuses each
//! one by name before a run starts, so `boyong run` changes nothing and says why.

use std::path::Path;

use serde_json::Value;

use crate::engine::{Runner, StepCx, StepError, UndoItem};
use crate::plan::PlannedStep;

/// The runner for real hosts.
#[derive(Debug, Default)]
pub struct Live;

fn missing(kind: &str) -> String {
    let client = match kind {
        "fetch" | "dump" => "the SSH client",
        "exec" => "the SSH client (on: vendor) or the Docker client (on: container)",
        _ => "the Docker Engine client",
    };
    format!("step kind `{kind}` needs {client}, which this release does not have yet")
}

impl Runner for Live {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        Err(missing(step.kind))
    }

    async fn execute(&self, step: &PlannedStep, _cx: &mut StepCx<'_>) -> Result<Value, StepError> {
        Err(StepError::Failed(missing(step.kind)))
    }

    async fn undo(&self, item: &UndoItem) -> Result<(), StepError> {
        Err(StepError::Failed(format!(
            "cannot undo {} of step `{}`: this release has no client for it",
            item.summary(),
            item.step
        )))
    }

    async fn still_valid(
        &self,
        step: &PlannedStep,
        _facts: &Value,
        _artifacts: &Path,
    ) -> Result<(), String> {
        Err(missing(step.kind))
    }
}
