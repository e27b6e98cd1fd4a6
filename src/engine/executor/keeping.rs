//! Before a rollback's first undo: the data it is about to remove saved ([`Keep`]), each
//! file and its SHA-256 journaled (`note` of kind `data-kept`), or, with `--discard-data`,
//! the decision journaled (`discard-data`). A save that fails is journaled
//! (`data-not-kept`) and stops the rollback before anything is undone.

use super::{EngineError, Executor};
use crate::engine::event::Event;
use crate::engine::keep::{Keep, Kept};
use crate::engine::runner::{Runner, StepError};

/// What the saving did: each [`Keep`] with what it gave, or why saving stopped.
pub(super) type Saved = Result<Vec<(Keep, Kept)>, String>;

impl<R: Runner> Executor<'_, R> {
    /// Saves each of `keep` (or journals that `discard` skips them).
    pub(super) async fn keep_data(
        &self,
        keep: &[Keep],
        discard: bool,
    ) -> Result<Saved, EngineError> {
        if keep.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let say = |step: &str, line: String| {
            self.emit(&Event::Output {
                step: step.to_string(),
                line: self.redactor.text(&line),
            });
        };
        if discard {
            let what: Vec<String> = keep.iter().map(Keep::describe).collect();
            self.note_shared(
                "discard-data",
                &format!(
                    "--discard-data: not saved before the rollback: {}",
                    what.join("; ")
                ),
            )?;
            for k in keep {
                say(
                    k.step(),
                    format!("--discard-data: not saved: {}", k.describe()),
                );
            }
            return Ok(Ok(Vec::new()));
        }
        let run_dir = self
            .artifacts
            .parent()
            .unwrap_or(&self.artifacts)
            .to_path_buf();
        let mut done = Vec::new();
        for k in keep {
            say(k.step(), format!("before the rollback: {}", k.describe()));
            match self.runner.keep(k, &run_dir).await {
                Ok(kept) => {
                    let text = match &kept.path {
                        Some(p) => format!(
                            "step `{}`: {}: {} (sha256 {}, {} bytes)",
                            k.step(),
                            kept.note,
                            p.display(),
                            kept.sha256,
                            kept.bytes
                        ),
                        None => format!("step `{}`: {}", k.step(), kept.note),
                    };
                    self.note_shared("data-kept", &text)?;
                    say(k.step(), format!("saved: {text}"));
                    done.push((k.clone(), kept));
                }
                Err(StepError::Journal(e)) => return Err(e.into()),
                Err(StepError::Failed(e) | StepError::Fatal(e)) => {
                    let e = self.redactor.text(&e);
                    let text = format!(
                        "step `{}`: {} FAILED: {e}; nothing was undone",
                        k.step(),
                        k.describe()
                    );
                    self.note_shared("data-not-kept", &text)?;
                    return Ok(Err(text));
                }
            }
        }
        Ok(Ok(done))
    }
}
