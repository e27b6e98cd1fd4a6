//! Command-line definitions (clap) and dispatch.

/// A message of the command's own (an error, a refusal): on stderr, or on a batch's thread
/// through the batch's view with the app's name (see [`say`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::say(&format!($($arg)*))
    };
}

mod audit;
mod batch;
mod batch_view;
mod exit;
mod plan;
mod render;
mod report;
mod rollback;
mod run;
mod saved;
mod status;
mod status_live;
mod status_scan;
mod table;
mod world;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use boyong::diag::{self, Diagnostic};

/// Where a thread's messages go instead of stderr.
pub type Printer = Box<dyn Fn(&str)>;

thread_local! {
    /// Where this thread's messages go instead of stderr: a batch's view, set by the
    /// batch on each of its threads for the app it runs.
    static SAY: std::cell::RefCell<Option<Printer>> = const { std::cell::RefCell::new(None) };
}

/// Prints a message of the command: on stderr, or through the hook this thread was given
/// ([`say_through`]), so a batch's terminal view is not torn and the line names its app.
pub fn say(text: &str) {
    SAY.with(|hook| match &*hook.borrow() {
        Some(f) => f(text),
        None => eprintln!("{text}"),
    });
}

/// Sends this thread's messages through `hook` until the guard is dropped.
pub fn say_through(hook: Printer) -> SayGuard {
    SAY.with(|h| *h.borrow_mut() = Some(hook));
    SayGuard
}

/// Gives this thread's messages back to stderr when dropped.
pub struct SayGuard;

impl Drop for SayGuard {
    fn drop(&mut self) {
        SAY.with(|h| *h.borrow_mut() = None);
    }
}
use boyong::playbook::{self, Loaded};

/// Moves vendor-hosted apps onto the government's own servers: pull over SSH, verify
/// SHA-256, repackage into images, deploy through Docker, journal every change.
#[derive(Debug, Parser)]
#[command(name = "boyong", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// State directory (journals, artifacts, locks).
    #[arg(
        long,
        global = true,
        env = "BOYONG_STATE",
        default_value = ".boyong",
        value_name = "DIR"
    )]
    state: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check playbooks: structure, references, vars; warn about unset secrets.
    Validate {
        /// Playbook files.
        #[arg(required = true, value_name = "PLAYBOOK")]
        files: Vec<PathBuf>,
    },
    /// Show what a run will read and change (the dry run); nothing is changed anywhere.
    Plan {
        /// Playbook files, or directories of them.
        #[arg(required = true, value_name = "PLAYBOOK")]
        files: Vec<PathBuf>,
        /// Build the plan from the playbook alone, without contacting any host.
        #[arg(long)]
        offline: bool,
        /// Print the plan as JSON (an array for several playbooks).
        #[arg(long)]
        json: bool,
        /// Also save the plan as JSON to this file (a directory for several playbooks:
        /// APP.plan.json each), for `boyong run --plan`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Migrate apps: run their playbooks, journaling every change before it is made.
    Run {
        /// Playbook files, or directories of them (a batch); none with --plan.
        #[arg(required_unless_present = "saved_plan", value_name = "PLAYBOOK")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        args: run::RunArgs,
    },
    /// Undo a run's changes, newest first, from its journal.
    Rollback {
        /// The app.
        app: String,
        /// The run (default: the latest).
        #[arg(long)]
        run: Option<String>,
        #[command(flatten)]
        args: rollback::RollbackArgs,
    },
    /// The fleet: each app's lifecycle, last run and result, and its container now.
    Status {
        #[command(flatten)]
        args: status::StatusArgs,
    },
    /// The evidence of one run for auditors, as Markdown, JSON or one HTML page.
    ///
    /// Who ran it, when, from where to where, the vendor's host key, every artifact's size
    /// and SHA-256, database evidence, images, containers and their hardening, health,
    /// each step's duration, the rollback history, the journal's chain head and verdict.
    /// Exit 2: unknown app or run; exit 1: the journal is BROKEN (the report says so first).
    Report {
        /// The app.
        app: String,
        /// The run (default: the latest).
        #[arg(long)]
        run: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "md")]
        format: audit::Format,
        /// Write the report to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Inspect run journals.
    Journal {
        #[command(subcommand)]
        action: JournalAction,
    },
    /// Print the playbook format's JSON Schema (for editors' YAML support).
    Schema,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum JournalAction {
    /// Check a journal's hash chain.
    Verify {
        /// The app.
        app: String,
        /// The run (default: the latest).
        #[arg(long)]
        run: Option<String>,
    },
}

/// Entry point: parse, dispatch, exit code.
pub fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // Journaled paths (artifacts, their undo) are absolute, whatever directory a later
    // `rollback` or `run --resume` starts from.
    if let Ok(abs) = std::path::absolute(&cli.state) {
        cli.state = abs;
    }
    let code = match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Plan {
            files,
            offline,
            json,
            out,
        } => plan::plan(&cli.state, &files, offline, json, out.as_deref()),
        Command::Schema => schema(),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "boyong", &mut std::io::stdout());
            exit::OK
        }
        Command::Run { files, args } => run::run(&cli.state, &files, &args),
        Command::Rollback { app, run, args } => {
            rollback::rollback(&cli.state, &app, run.as_deref(), args)
        }
        Command::Status { args } => status::status(&cli.state, &args),
        Command::Report {
            app,
            run,
            format,
            out,
        } => audit::report(&cli.state, &app, run.as_deref(), format, out.as_deref()),
        Command::Journal {
            action: JournalAction::Verify { app, run },
        } => journal_verify(&cli.state, &app, run.as_deref()),
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn print_diags(loaded: &Loaded, extra: &[Diagnostic]) {
    let mut all = loaded.diagnostics.clone();
    all.extend_from_slice(extra);
    if !all.is_empty() {
        let text = diag::render(&loaded.path.display().to_string(), &loaded.text, &all);
        eprint!("{text}");
    }
}

fn summary_line(kind: &str, n_err: usize, n_warn: usize) -> String {
    let plural = |n: usize, w: &str| {
        if n == 1 {
            format!("1 {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    match (n_err, n_warn) {
        (0, 0) => format!("{kind}: ok"),
        (0, w) => format!("{kind}: ok, {}", plural(w, "warning")),
        (e, 0) => format!("{kind}: {}", plural(e, "error")),
        (e, w) => format!("{kind}: {}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

fn validate(files: &[PathBuf]) -> u8 {
    let mut worst = exit::OK;
    for f in files {
        let loaded = playbook::load(f);
        let mut extra = Vec::new();
        if let Some(pb) = &loaded.playbook {
            let (_, problems) = playbook::check_local_inputs(pb, &env_lookup);
            extra = problems
                .into_iter()
                .map(|mut d| {
                    d.severity = diag::Severity::Warning;
                    d
                })
                .collect();
        }
        print_diags(&loaded, &extra);
        let errs = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        let warns = loaded.diagnostics.len() - errs + extra.len();
        let head = match &loaded.playbook {
            Some(pb) => format!(
                "{} (app `{}`, {} steps)",
                f.display(),
                pb.app,
                pb.steps.len()
            ),
            None => f.display().to_string(),
        };
        if errs > 0 {
            worst = exit::BAD_INPUT;
            say!("{}", summary_line(&head, errs, warns));
        } else {
            println!("{}", summary_line(&head, errs, warns));
        }
    }
    worst
}

fn journal_verify(state: &Path, app: &str, run: Option<&str>) -> u8 {
    use boyong::engine::journal;
    use boyong::engine::state::StateDir;
    let dir = StateDir::new(state);
    let path = match find_run(&dir, app, run, "boyong journal verify") {
        Ok(r) => r.journal_path(),
        Err(code) => return code,
    };
    match journal::verify(&path) {
        Ok(report) => {
            let head = report.head_sha256.as_deref().unwrap_or("-");
            match &report.problem {
                None => {
                    println!(
                        "{}: intact, {} lines, chain head sha256 {head}",
                        path.display(),
                        report.lines
                    );
                    exit::OK
                }
                Some(p) if report.is_intact() => {
                    println!(
                        "{}: intact, {} lines, chain head sha256 {head} ({p}: a crash cut the last write; it is dropped on resume)",
                        path.display(),
                        report.lines
                    );
                    exit::OK
                }
                Some(p) => {
                    say!("{}: BROKEN: {p}", path.display());
                    say!(
                        "the journal was changed after it was written; keep a copy for the auditors before anything else"
                    );
                    exit::FAILED
                }
            }
        }
        Err(e) => {
            say!("boyong journal verify: {e}");
            exit::FAILED
        }
    }
}

fn schema() -> u8 {
    match serde_json::to_string_pretty(playbook::json_schema()) {
        Ok(s) => {
            println!("{s}");
            exit::OK
        }
        Err(e) => {
            say!("boyong schema: {e}");
            exit::FAILED
        }
    }
}

/// The run `run` of `app`, or its latest; prints why not and returns the exit code.
fn find_run(
    dir: &boyong::engine::state::StateDir,
    app: &str,
    run: Option<&str>,
    cmd: &str,
) -> Result<boyong::engine::state::RunDir, u8> {
    use boyong::engine::state::RunId;
    let refuse = |e: String| {
        say!("{cmd}: {e}");
        exit::BAD_INPUT
    };
    let id = match run {
        Some(r) => RunId::parse(r).map_err(|e| refuse(format!("`{r}` is not a run id: {e}")))?,
        None => dir
            .latest_run(app)
            .map_err(|e| refuse(e.to_string()))?
            .ok_or_else(|| {
                refuse(format!(
                    "app `{app}` has no runs in {}",
                    dir.root().display()
                ))
            })?,
    };
    let run = dir.run(app, &id).map_err(|e| refuse(e.to_string()))?;
    if !run.journal_path().is_file() {
        return Err(refuse(format!(
            "run {id} of `{app}` has no journal at {}",
            run.journal_path().display()
        )));
    }
    Ok(run)
}

/// Who runs boyong, and where: `(operator, host)`.
fn who() -> (String, String) {
    let operator = ["BOYONG_OPERATOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    (operator, host)
}

/// Takes the app's lock for `command`; prints why not and returns the exit code.
fn lock_app(
    dir: &boyong::engine::state::StateDir,
    app: &str,
    command: &str,
    break_lock: bool,
) -> Result<boyong::engine::lock::AppLock, u8> {
    use boyong::engine::lock::{AppLock, Holder, LockError};
    let fail = |e: String| {
        say!("{command}: {e}");
        exit::FAILED
    };
    dir.ensure_app_dir(app)
        .map_err(|e| fail(format!("{e}; nothing was changed")))?;
    let path = dir.lock_path(app).map_err(|e| fail(e.to_string()))?;
    let (operator, host) = who();
    let holder = Holder::current(host, operator, command, std::time::SystemTime::now())
        .map_err(|e| fail(e.to_string()))?;
    let taken = if break_lock {
        AppLock::break_and_acquire(&path, holder, "--break-lock given by the operator")
    } else {
        AppLock::acquire(&path, holder)
    };
    match taken {
        Ok(lock) => {
            if let Some((prev, _)) = lock.previous() {
                say!(
                    "note: the previous holder of `{app}`'s lock ({prev}) ended without releasing it: it crashed or was killed; `boyong status {app}` shows what it left"
                );
            }
            Ok(lock)
        }
        Err(e @ LockError::Held { .. }) => Err(fail(format!(
            "{e}; wait for it to finish (one operator at a time per app); nothing was changed"
        ))),
        Err(e) => Err(fail(format!("{e}; nothing was changed"))),
    }
}

/// A playbook that validated, with the secrets a run needs loaded.
struct Ready {
    playbook: boyong::playbook::Playbook,
    text: String,
    secrets: boyong::playbook::SecretStore,
}

/// Loads a playbook for `plan` or `run`, printing its diagnostics. `Err(())` (exit 2)
/// on any error, including a secret or file that a run needs and that is missing.
fn load_ready(file: &Path, cmd: &str) -> Result<Ready, ()> {
    let loaded = playbook::load(file);
    let Some(pb) = &loaded.playbook else {
        print_diags(&loaded, &[]);
        let errs = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        say!(
            "{}",
            summary_line(
                &file.display().to_string(),
                errs,
                loaded.diagnostics.len() - errs
            )
        );
        return Err(());
    };
    let (secrets, problems) = playbook::check_local_inputs(pb, &env_lookup);
    print_diags(&loaded, &problems);
    if problems.iter().any(Diagnostic::is_error) {
        say!("{cmd}: refused: a run needs the secrets and files above; nothing was changed");
        return Err(());
    }
    let Loaded { playbook, text, .. } = loaded;
    playbook
        .map(|playbook| Ready {
            playbook,
            text,
            secrets,
        })
        .ok_or(())
}

/// `KEY=VALUE` for `--label`.
pub(crate) fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v))
            if !k.is_empty()
                && !k.starts_with("boyong.app")
                && !k.starts_with("boyong.run")
                && !k.starts_with("boyong.step")
                && !k.starts_with("boyong.source") =>
        {
            Ok((k.to_string(), v.to_string()))
        }
        Some((k, _)) if !k.is_empty() => Err(format!("`{k}` is one of boyong's own labels")),
        _ => Err(format!("`{s}`: expected KEY=VALUE")),
    }
}
