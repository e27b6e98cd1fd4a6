//! Where a run's events go: the terminal (human lines on stderr, or JSON lines on
//! stdout with `--json`) and the run's structured log (`log.jsonl`, tracing JSON).

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use boyong::engine::{Event, EventSink, RunResult};

/// Prints events and writes them to the run's log.
pub struct Reporter {
    json: bool,
    _log: Option<tracing::subscriber::DefaultGuard>,
}

impl Reporter {
    /// A reporter logging to `log`, and the runtime a command runs its engine on;
    /// `Err(())` after saying why not.
    pub fn start(cmd: &str, json: bool, log: &Path) -> Result<(Self, tokio::runtime::Runtime), ()> {
        let reporter = Self::new(json, Some(log)).map_err(|e| eprintln!("{cmd}: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| eprintln!("{cmd}: cannot start the runtime: {e}"))?;
        Ok((reporter, rt))
    }

    /// A reporter writing JSON lines (`json`) or human lines, and logging to `log`.
    pub fn new(json: bool, log: Option<&Path>) -> Result<Self, String> {
        let guard = match log {
            Some(path) => {
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_writer(Mutex::new(file))
                    .with_target(false)
                    .finish();
                Some(tracing::subscriber::set_default(subscriber))
            }
            None => None,
        };
        Ok(Self { json, _log: guard })
    }
}

impl EventSink for Reporter {
    fn emit(&mut self, e: &Event) {
        let line = serde_json::to_string(e).unwrap_or_default();
        tracing::info!(event = %line);
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            return;
        }
        if let Some(text) = human(e) {
            eprintln!("{text}");
        }
    }
}

fn human(e: &Event) -> Option<String> {
    Some(match e {
        Event::RunStarted {
            app,
            run,
            steps,
            resumed,
        } => format!(
            "{} run {run} of `{app}`: {steps} steps",
            if *resumed { "resuming" } else { "starting" }
        ),
        Event::StepSkipped { step, reason } => format!("  {step}: skipped ({reason})"),
        Event::StepStarted {
            step,
            number,
            total,
            kind,
            attempt,
        } => {
            if *attempt > 1 {
                format!("[{number}/{total}] {step} ({kind}), attempt {attempt}")
            } else {
                format!("[{number}/{total}] {step} ({kind})")
            }
        }
        Event::ChangeStarted { summary, .. } => format!("    {summary}"),
        Event::ChangeDone { .. } | Event::Progress { .. } | Event::Undone { .. } => return None,
        Event::Output { line, .. } => format!("    | {line}"),
        Event::StepDone { elapsed_ms, .. } => format!("    done in {:.1} s", ms(*elapsed_ms)),
        Event::StepFailed {
            step,
            error,
            will_retry,
        } => format!(
            "    step `{step}` failed: {error}{}",
            if *will_retry { " (retrying)" } else { "" }
        ),
        Event::RollbackStarted { changes, reason } => {
            format!("rolling back {changes} change(s) ({reason})")
        }
        Event::Undoing {
            summary, change, ..
        } => format!("    undo {change}: {summary}"),
        Event::UndoFailed { change, error, .. } => format!("    undo {change} FAILED: {error}"),
        Event::RunFinished { result } => match result {
            RunResult::Succeeded => "finished: succeeded".into(),
            other => format!("finished: {}", other.word()),
        },
    })
}

fn ms(v: u64) -> f64 {
    // Display only: precision loss above 2^52 ms is irrelevant.
    #[expect(clippy::cast_precision_loss, reason = "display of a duration")]
    let f = v as f64;
    f / 1000.0
}
