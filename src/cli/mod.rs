//! Command-line definitions (clap) and dispatch.

mod exit;
mod render;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use boyong::diag::{self, Diagnostic};
use boyong::plan::Plan;
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
        /// Playbook file.
        #[arg(value_name = "PLAYBOOK")]
        file: PathBuf,
        /// Build the plan from the playbook alone, without contacting any host.
        #[arg(long)]
        offline: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Also write the plan as JSON to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Migrate apps: run their playbooks.
    Run {
        /// Playbook files.
        #[arg(value_name = "PLAYBOOK")]
        files: Vec<PathBuf>,
        /// Continue the last unfinished run of the app.
        #[arg(long)]
        resume: bool,
    },
    /// Undo a run's changes, newest first.
    Rollback {
        /// The app.
        app: String,
        /// The run (default: the latest).
        #[arg(long)]
        run: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// The state of every app: last run, result, when.
    Status {
        /// Only this app.
        app: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Plan {
            file,
            offline,
            json,
            out,
        } => plan(&file, offline, json, out.as_deref()),
        Command::Schema => schema(),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "boyong", &mut std::io::stdout());
            exit::OK
        }
        Command::Run { .. } => not_built("run"),
        Command::Rollback { .. } => not_built("rollback"),
        Command::Status { .. } => not_built("status"),
        Command::Journal {
            action: JournalAction::Verify { app, run },
        } => journal_verify(&cli.state, &app, run.as_deref()),
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

fn not_built(what: &str) -> u8 {
    eprintln!(
        "boyong {what}: not built yet. This release validates and plans playbooks (`boyong validate`, `boyong plan --offline`)."
    );
    exit::FAILED
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
            eprintln!("{}", summary_line(&head, errs, warns));
        } else {
            println!("{}", summary_line(&head, errs, warns));
        }
    }
    worst
}

fn plan(file: &Path, offline: bool, json: bool, out: Option<&Path>) -> u8 {
    let loaded = playbook::load(file);
    let Some(pb) = &loaded.playbook else {
        print_diags(&loaded, &[]);
        let errs = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        eprintln!(
            "{}",
            summary_line(
                &file.display().to_string(),
                errs,
                loaded.diagnostics.len() - errs
            )
        );
        return exit::BAD_INPUT;
    };
    let (_, problems) = playbook::check_local_inputs(pb, &env_lookup);
    print_diags(&loaded, &problems);
    if problems.iter().any(Diagnostic::is_error) {
        eprintln!(
            "boyong plan: refused: a run would need the secrets and files above; nothing was changed"
        );
        return exit::BAD_INPUT;
    }
    if !offline {
        eprintln!(
            "note: live probes of the hosts are not built yet; this is the offline plan (`--offline`)"
        );
    }
    let plan = Plan::offline(pb);
    let as_json = match serde_json::to_string_pretty(&plan) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("boyong plan: cannot encode the plan: {e}");
            return exit::FAILED;
        }
    };
    if let Some(path) = out
        && let Err(e) = std::fs::write(path, format!("{as_json}\n"))
    {
        eprintln!("boyong plan: cannot write {}: {e}", path.display());
        return exit::FAILED;
    }
    if json {
        println!("{as_json}");
    } else {
        print!("{}", render::plan(&plan));
    }
    exit::OK
}

fn journal_verify(state: &Path, app: &str, run: Option<&str>) -> u8 {
    use boyong::engine::journal;
    use boyong::engine::state::{RunId, StateDir};
    let dir = StateDir::new(state);
    let run_id = match run {
        Some(r) => match RunId::parse(r) {
            Ok(id) => id,
            Err(e) => {
                eprintln!("boyong journal verify: `{r}` is not a run id: {e}");
                return exit::BAD_INPUT;
            }
        },
        None => match dir.latest_run(app) {
            Ok(Some(id)) => id,
            Ok(None) => {
                eprintln!(
                    "boyong journal verify: app `{app}` has no runs in {}",
                    state.display()
                );
                return exit::BAD_INPUT;
            }
            Err(e) => {
                eprintln!("boyong journal verify: {e}");
                return exit::BAD_INPUT;
            }
        },
    };
    let path = match dir.run(app, &run_id) {
        Ok(r) => r.journal_path(),
        Err(e) => {
            eprintln!("boyong journal verify: {e}");
            return exit::BAD_INPUT;
        }
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
                    eprintln!("{}: BROKEN: {p}", path.display());
                    eprintln!(
                        "the journal was changed after it was written; keep a copy for the auditors before anything else"
                    );
                    exit::FAILED
                }
            }
        }
        Err(e) => {
            eprintln!("boyong journal verify: {e}");
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
            eprintln!("boyong schema: {e}");
            exit::FAILED
        }
    }
}
