//! Where a run's events go: the terminal (human lines on stderr, or JSON lines on
//! stdout with `--json`) and the run's structured log (`log.jsonl`, tracing JSON).
//!
//! Invariant: a human line is one line with no control character but tab
//! (`boyong::escape::controls`): event texts carry what vendors and containers sent
//! (output lines, file names, link targets, error texts). JSON escapes them itself.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Mutex;

use boyong::engine::{Event, EventSink, RunResult};
use boyong::escape;

use super::error::CliError;

/// Prints events and writes them to the run's log.
pub struct Reporter {
    json: bool,
    /// Show [`Event::Detail`] lines (`--verbose`).
    verbose: bool,
    _log: Option<tracing::subscriber::DefaultGuard>,
    /// On a terminal: the bar of the transfer in flight.
    tty: bool,
    bar: Option<indicatif::ProgressBar>,
    /// Off a terminal: when the last progress line was printed.
    last_line: Option<std::time::Instant>,
    /// Each step started, as its heading says it (`[1/3] db (dump)`), the latest last: a
    /// step that ends while a later one runs (a pipelined pair) is named by its heading.
    headings: Vec<(String, String)>,
}

impl Reporter {
    /// A reporter logging to `log`, and the runtime `cmd` runs its engine on.
    pub fn start(
        cmd: &str,
        json: bool,
        log: &Path,
    ) -> Result<(Self, tokio::runtime::Runtime), CliError> {
        let reporter =
            Self::new(json, Some(log)).map_err(|e| CliError::failed(format!("{cmd}: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::failed(format!("{cmd}: cannot start the runtime: {e}")))?;
        Ok((reporter, rt))
    }

    /// A reporter writing JSON lines (`json`) or human lines, and logging to `log`.
    pub fn new(json: bool, log: Option<&Path>) -> Result<Self, String> {
        let guard = log.map(open_log).transpose()?;
        Ok(Self {
            json,
            verbose: false,
            _log: guard,
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            bar: None,
            last_line: None,
            headings: Vec::new(),
        })
    }
}

impl Reporter {
    /// Shows every line of a step's output, the details included (`--verbose`).
    #[must_use]
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
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
        if matches!(e, Event::Detail { .. }) && !self.verbose {
            return;
        }
        if let Event::Progress { step, bytes, total } = e {
            self.progress(step, *bytes, *total);
            return;
        }
        if let Event::StepStarted {
            step,
            number,
            total,
            kind,
            ..
        } = e
        {
            self.headings.retain(|(s, _)| s != step);
            self.headings
                .push((step.clone(), format!("[{number}/{total}] {step} ({kind})")));
        }
        let beside = match e {
            Event::StepDone {
                step, elapsed_ms, ..
            } => self
                .headings
                .last()
                .filter(|(latest, _)| latest != step)
                .and_then(|(latest, _)| {
                    let (_, heading) = self.headings.iter().find(|(s, _)| s == step)?;
                    Some(format!(
                        "    {heading}: done in {:.1} s (it ran beside `{latest}`, which goes on)",
                        ms(*elapsed_ms)
                    ))
                }),
            _ => None,
        };
        if let Some(text) = beside.or_else(|| human(e)) {
            let text = escape::controls(&text);
            match &self.bar {
                Some(bar) => bar.println(text),
                None => eprintln!("{text}"),
            }
        }
        if matches!(
            e,
            Event::StepDone { .. } | Event::StepFailed { .. } | Event::RunFinished { .. }
        ) && let Some(bar) = self.bar.take()
        {
            bar.finish_and_clear();
            self.last_line = None;
        }
    }
}

impl Reporter {
    /// A bar (bytes, rate, ETA when the total is known) on a terminal; elsewhere a plain
    /// line at most every 5 seconds.
    fn progress(&mut self, step: &str, bytes: u64, total: Option<u64>) {
        if !self.tty {
            let due = self
                .last_line
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(5));
            if due {
                self.last_line = Some(std::time::Instant::now());
                eprintln!("    {step}: {} so far", indicatif::HumanBytes(bytes));
            }
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "    {spinner} {prefix} {bytes} at {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_prefix(step.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        if let Some(t) = total
            && bar.length() != Some(t)
        {
            bar.set_length(t);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "    {prefix} [{bar:30}] {bytes}/{total_bytes} at {bytes_per_sec}, {eta} left",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
        }
        bar.set_position(bytes);
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
        Event::Output { line, .. } | Event::Detail { line, .. } => format!("    | {line}"),
        // Named: two steps of a pipelined pair print their lines interleaved.
        Event::StepDone {
            step, elapsed_ms, ..
        } => format!("    {step}: done in {:.1} s", ms(*elapsed_ms)),
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
        Event::Waiting { on } => waiting(on),
        Event::RunFinished { result } => match result {
            RunResult::Succeeded => "finished: succeeded".into(),
            other => format!("finished: {}", other.word()),
        },
    })
}

/// The line of [`Event::Waiting`].
pub(crate) fn waiting(on: &[String]) -> String {
    let what = if on.is_empty() {
        "what a stopped step asked of it".to_string()
    } else {
        on.join("; ")
    };
    format!(
        "    waiting for the engine to finish: {what} (nothing more is undone, and the run does not end, before it answers; a second Ctrl-C quits at once, the journal usable by `boyong rollback`)"
    )
}

fn ms(v: u64) -> f64 {
    // Display only: precision loss above 2^52 ms is irrelevant.
    #[expect(clippy::cast_precision_loss, reason = "display of a duration")]
    let f = v as f64;
    f / 1000.0
}

/// The run's log (`log.jsonl`, tracing JSON, mode 0600), for this thread only. A write
/// that fails (a full disk) is remembered for [`log_lost`]: a log is never lost silently.
pub fn open_log(path: &Path) -> Result<tracing::subscriber::DefaultGuard, String> {
    let file = File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let check = file
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    LOG.with(|l| {
        *l.borrow_mut() = Some(LogState {
            path: path.to_path_buf(),
            file: check,
            error: None,
        });
    });
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(Mutex::new(LogWriter(file)))
        .with_target(false)
        .finish();
    Ok(tracing::subscriber::set_default(subscriber))
}

/// The log of this thread's run: its path, a handle to flush it, its first failed write.
struct LogState {
    path: std::path::PathBuf,
    file: File,
    error: Option<String>,
}

thread_local! {
    /// The log opened on this thread (each run, and each app of a batch, has its thread).
    static LOG: std::cell::RefCell<Option<LogState>> = const { std::cell::RefCell::new(None) };
}

/// The log file, remembering its first failed write on this thread.
struct LogWriter(File);

impl LogWriter {
    fn failed<T>(r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            LOG.with(|l| {
                if let Some(s) = l.borrow_mut().as_mut() {
                    s.error.get_or_insert_with(|| e.to_string());
                }
            });
        }
        r
    }
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Self::failed(self.0.write(buf))
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        Self::failed(self.0.write_all(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Self::failed(self.0.flush())
    }
}

/// Why this thread's run log (opened by [`open_log`]) is incomplete, if it is: a write
/// failed, or flushing it to disk fails now. Forgets the log.
pub fn log_lost() -> Option<String> {
    let state = LOG.with(|l| l.borrow_mut().take())?;
    let error = state
        .error
        .or_else(|| state.file.sync_data().err().map(|e| e.to_string()))?;
    Some(format!(
        "its log {} could not be written ({error}): lines are missing from it",
        state.path.display()
    ))
}
