//! A batch's combined live view, and the event sink of each of its runs.
//!
//! Owns how a batch shows its runs while they go: on a terminal, one line per running app
//! (app, current step, bytes moved, elapsed) at the bottom of stderr, and a line above it
//! when an app ends; off a terminal (CI, pipes), plain lines on stderr prefixed with the
//! app; with `--json`, each event as a JSON line on stdout with the app in it. Every run
//! also logs its own events to its `log.jsonl`: the log's subscriber is set on the run's
//! own thread only, so no run's log gets another's events. Every human line is shown with
//! control characters escaped (`boyong::escape::controls`), as `events.rs` does.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};

use boyong::engine::{Event, EventSink, RunResult};

/// How the batch shows its runs.
pub enum View {
    /// A terminal: a line per running app.
    Tty(MultiProgress),
    /// Plain lines on stderr, prefixed with the app.
    Plain,
    /// JSON lines on stdout.
    Json,
}

impl View {
    /// The view for this process's output: `--json`, a terminal on stderr, or plain.
    pub fn new(json: bool) -> Self {
        if json {
            Self::Json
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Self::Tty(MultiProgress::new())
        } else {
            Self::Plain
        }
    }

    /// A line about the batch itself (stderr; above the live lines on a terminal).
    pub fn say(&self, text: &str) {
        match self {
            Self::Tty(m) => {
                let _ = m.println(text);
            }
            Self::Plain | Self::Json => eprintln!("{text}"),
        }
    }

    /// Where `app`'s run prints its own messages: above the live lines on a terminal,
    /// otherwise on stderr, either way prefixed with the app.
    pub fn printer(&self, app: &str) -> super::say::Printer {
        let app = app.to_owned();
        match self {
            Self::Tty(m) => {
                let m = m.clone();
                Box::new(move |text| {
                    let _ = m.println(format!("`{app}`: {text}"));
                })
            }
            Self::Plain | Self::Json => Box::new(move |text| eprintln!("`{app}`: {text}")),
        }
    }

    /// The sink of `app`'s run, logging to `log`; `pad` aligns the app names.
    pub fn sink(&self, app: &str, pad: usize, log: &Path) -> Result<AppSink, String> {
        let guard = super::events::open_log(log)?;
        let out = match self {
            Self::Tty(m) => {
                let bar = m.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{prefix:{pad}}} {{spinner}} {{elapsed:>4}}  {{wide_msg}}"
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(app.to_string());
                bar.set_message("starting");
                bar.enable_steady_tick(Duration::from_millis(200));
                Out::Bar(bar, m.clone())
            }
            Self::Plain => Out::Plain { last: None },
            Self::Json => Out::Json,
        };
        Ok(AppSink {
            app: app.to_string(),
            pad,
            out,
            step: String::new(),
            started: Instant::now(),
            _log: guard,
        })
    }
}

enum Out {
    Bar(ProgressBar, MultiProgress),
    Plain { last: Option<Instant> },
    Json,
}

/// One run's events: to its log, and to the batch's view.
pub struct AppSink {
    app: String,
    pad: usize,
    out: Out,
    /// The step in flight, as shown: `[2/4] image (build)`.
    step: String,
    started: Instant,
    _log: tracing::subscriber::DefaultGuard,
}

impl EventSink for AppSink {
    fn emit(&mut self, e: &Event) {
        let line = serde_json::to_string(e).unwrap_or_default();
        tracing::info!(event = %line);
        if let Event::StepStarted {
            step,
            number,
            total,
            kind,
            attempt,
        } = e
        {
            self.step = if *attempt > 1 {
                format!("[{number}/{total}] {step} ({kind}), attempt {attempt}")
            } else {
                format!("[{number}/{total}] {step} ({kind})")
            };
        }
        match &mut self.out {
            Out::Json => {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.entry("app")
                        .or_insert_with(|| serde_json::Value::String(self.app.clone()));
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{v}");
                let _ = out.flush();
            }
            Out::Plain { last } => {
                let text = match e {
                    Event::Progress { bytes, .. } => {
                        // At most a line every 5 seconds per app.
                        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
                            return;
                        }
                        *last = Some(Instant::now());
                        Some(format!("{}: {} so far", self.step, HumanBytes(*bytes)))
                    }
                    _ => plain(e, &self.step),
                };
                let text = text.map(|t| boyong::escape::controls(&t).into_owned());
                if let Some(t) = text {
                    eprintln!("{:pad$}  {t}", self.app, pad = self.pad);
                }
            }
            Out::Bar(bar, multi) => match e {
                Event::Progress { bytes, total, .. } => bar.set_message(match total {
                    Some(t) => format!("{}  {}/{}", self.step, HumanBytes(*bytes), HumanBytes(*t)),
                    None => format!("{}  {}", self.step, HumanBytes(*bytes)),
                }),
                Event::RunFinished { result } => {
                    bar.finish_and_clear();
                    multi.remove(bar);
                    let _ = multi.println(format!(
                        "{:pad$}  {} after {}",
                        self.app,
                        result.word(),
                        secs(self.started.elapsed()),
                        pad = self.pad
                    ));
                }
                _ => {
                    if let Some(t) = live(e, &self.step) {
                        bar.set_message(boyong::escape::controls(&t).into_owned());
                    }
                }
            },
        }
    }
}

impl Drop for AppSink {
    fn drop(&mut self) {
        if let Out::Bar(bar, multi) = &self.out
            && !bar.is_finished()
        {
            bar.finish_and_clear();
            multi.remove(bar);
        }
    }
}

/// `12.3 s`, or `2m05s` from a minute on.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The live line of a running app after `e`, if it changes.
fn live(e: &Event, step: &str) -> Option<String> {
    Some(match e {
        Event::RunStarted { run, .. } => format!("run {run}"),
        Event::StepStarted { .. } => step.to_string(),
        Event::StepSkipped { step, .. } => format!("{step}: done earlier, skipped"),
        Event::StepFailed {
            error, will_retry, ..
        } => format!(
            "{step}: {}{error}",
            if *will_retry {
                "retrying: "
            } else {
                "FAILED: "
            }
        ),
        Event::RollbackStarted { changes, reason } => {
            format!("rolling back {changes} change(s) ({reason})")
        }
        Event::Undoing { change, .. } => format!("rolling back: undo {change}"),
        // After a wait for the engine, the line says the undo went on.
        Event::Undone { change, .. } => format!("rolling back: {change} undone"),
        Event::Waiting { on } if on.is_empty() => "waiting for the engine".into(),
        Event::Waiting { on } => format!("waiting for the engine: {}", on.join("; ")),
        _ => return None,
    })
}

/// The plain line (off a terminal) of `e`, if it gets one.
fn plain(e: &Event, step: &str) -> Option<String> {
    Some(match e {
        Event::RunStarted {
            run,
            steps,
            resumed,
            ..
        } => format!(
            "{} run {run}: {steps} steps",
            if *resumed { "resuming" } else { "starting" }
        ),
        Event::StepStarted { .. } => step.to_string(),
        Event::StepDone { elapsed_ms, .. } => {
            format!(
                "{step}: done in {}",
                secs(Duration::from_millis(*elapsed_ms))
            )
        }
        Event::UndoFailed { change, error, .. } => format!("undo {change} FAILED: {error}"),
        Event::RunFinished { result } => match result {
            RunResult::Succeeded => "finished: succeeded".into(),
            other => format!("finished: {}", other.word()),
        },
        // Only a live line moves on with it; a log has the undo's line already.
        Event::Undone { .. } => return None,
        _ => return live(e, step),
    })
}
