//! The command line: clap definitions, dispatch, and the end of the process.
//!
//! Owns `main`: it parses the arguments, runs the command on a thread of its own, and
//! turns how it ended into the exit status: the command's [`CliError`] is rendered here,
//! once (`error.rs` documents the statuses). A second Ctrl-C during a run quits at once
//! with status 130 through [`quit_now`], which ends `main`'s wait rather than the
//! process from inside the command. Each command is a file of its own: `validate.rs`,
//! `plan.rs`, `run.rs` (one app; `batch.rs` several, `saved.rs` a saved plan),
//! `rollback.rs`, `status.rs`, `report.rs`, `journal.rs`, `schema.rs`, `archive.rs`,
//! `decommission.rs`.

/// A message of the command that is not its final error (a note, a warning, progress):
/// on stderr, or on a batch's thread through the batch's view with the app's name (see
/// `say.rs`).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::say::say(&format!($($arg)*))
    };
}

mod archive;
mod assess;
mod batch;
mod batch_view;
mod decommission;
mod decommission_plan;
mod discover;
mod error;
mod events;
mod journal;
mod load;
mod plan;
mod render;
mod report;
mod rollback;
mod run;
mod saved;
mod say;
mod schema;
mod status;
mod status_live;
mod status_scan;
mod table;
mod validate;
mod world;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{OnceLock, mpsc};

use clap::{CommandFactory as _, Parser, Subcommand};

use boyong::engine::lock::AppLock;
use boyong::engine::open::{Who, take_lock};
use boyong::engine::state::StateDir;

use error::{CliError, Result};

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
        /// Say which `fetch` and `dump` steps a run with `--reuse-artifacts[=MAX_AGE]`
        /// would copy from an earlier run instead of pulling (default 24h).
        #[arg(long, value_name = "MAX_AGE", num_args = 0..=1, require_equals = true,
              default_missing_value = "24h", value_parser = run::parse_max_age)]
        reuse_artifacts: Option<std::time::Duration>,
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
        format: report::Format,
        /// Write the report to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Pack a run's verified artifacts into one tarball with a SHA-256 list.
    ///
    /// The code, dumps, manifests, journal, plan, playbook and report of the run (default:
    /// the latest), each checked against its manifest first; `boyong decommission` refuses
    /// without it. Exit 2: unknown app or run; exit 1: an artifact that does not verify, a
    /// broken journal, or an archive that exists already.
    Archive {
        /// The app.
        app: String,
        /// The run (default: the latest).
        #[arg(long)]
        run: Option<String>,
    },
    /// Delete the vendor's copy of a migrated app, with a certificate (irreversible).
    ///
    /// Exactly what the playbook fetched (paths) and dumped (databases, and the dump's own
    /// login), and the crontab lines and units its `decommission:` names, after checking
    /// the preconditions and re-hashing the vendor's files; journaled, then checked gone.
    ///
    /// Exit 2: unknown app, bad flags, no confirmation; exit 1: a precondition refused,
    /// a vendor file changed since the pull, or a removal failed (run it again: it
    /// continues from its journal).
    Decommission {
        /// The app.
        app: String,
        #[command(flatten)]
        args: decommission::DecommissionArgs,
    },
    /// Send the same requests to the vendor's site and to the migrated one (the
    /// playbook's `assess:` section) and compare status, redirect, content and latency;
    /// exit status 1 when a threshold fails.
    Assess {
        /// An app (the playbook of its last run) or a playbook file.
        #[arg(value_name = "APP|PLAYBOOK")]
        what: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Find the apps a vendor host serves, read-only: an inventory and draft playbooks.
    ///
    /// One SSH login and one read-only script per host (`--show-commands` prints it):
    /// web server sites, PHP-FPM pools, services, crontabs, ports, each app's stack,
    /// database, size and newest change. Writes STATE/inventory/HOST.json and HOST.csv;
    /// with --drafts DIR, a draft playbook per app (an edited one is kept: the draft goes
    /// beside it as .new, with the diff). Exit 1: a host could not be discovered.
    Discover {
        #[command(flatten)]
        args: discover::DiscoverArgs,
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

/// How the process ends: the command returned (or panicked), or a second Ctrl-C.
enum End {
    Done(Result),
    Panicked,
    Quit,
}

/// Where [`quit_now`] tells `main` to end the process.
static END: OnceLock<mpsc::Sender<End>> = OnceLock::new();

/// Quits the process at once with status 130 (a second Ctrl-C): `main` stops waiting for
/// the command and returns. The calling thread stops here until the process ends, so
/// nothing more of its run happens; a journal stays consistent wherever it is cut.
pub fn quit_now() {
    if END.get().is_some_and(|end| end.send(End::Quit).is_ok()) {
        loop {
            std::thread::park();
        }
    }
}

/// Entry point: parse, dispatch, render the error, exit status.
pub fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // Journaled paths (artifacts, their undo) are absolute, whatever directory a later
    // `rollback` or `run --resume` starts from.
    if let Ok(abs) = std::path::absolute(&cli.state) {
        cli.state = abs;
    }
    let (tx, rx) = mpsc::channel();
    let _ = END.set(tx.clone());
    // The command runs on its own thread, so that a second Ctrl-C can end the process
    // from here while a step hangs. It is named `main` and has main's stack size, as the
    // command always had: a panic reads as before.
    let command = std::thread::Builder::new()
        .name("main".into())
        .stack_size(8 << 20)
        .spawn(move || {
            let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli)));
            let _ = tx.send(ended.map_or(End::Panicked, End::Done));
        });
    let end = match command {
        Ok(thread) => {
            let end = rx.recv().unwrap_or(End::Panicked);
            // Its thread has ended (or is ending), unless the process quits at once.
            if !matches!(end, End::Quit) {
                let _ = thread.join();
            }
            end
        }
        Err(e) => End::Done(Err(CliError::failed(format!(
            "boyong: cannot start the command: {e}"
        )))),
    };
    let code = match end {
        End::Done(Ok(())) => error::OK,
        End::Done(Err(e)) => {
            e.render();
            e.kind().code()
        }
        // The panic's message is out already; 101 as for a panic in `main`.
        End::Panicked => 101,
        End::Quit => 130,
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

/// Runs the command.
fn dispatch(cli: Cli) -> Result {
    let state = &cli.state;
    match cli.command {
        Command::Validate { files } => validate::validate(&files),
        Command::Plan {
            files,
            offline,
            json,
            out,
            reuse_artifacts,
        } => plan::plan(
            state,
            &files,
            offline,
            json,
            out.as_deref(),
            reuse_artifacts,
        ),
        Command::Assess { what, json } => assess::assess(state, &what, json),
        Command::Schema => schema::schema(),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "boyong", &mut std::io::stdout());
            Ok(())
        }
        Command::Run { files, args } => run_command(state, &files, &args),
        Command::Rollback { app, run, args } => {
            rollback::rollback(state, &app, run.as_deref(), args)
        }
        Command::Status { args } => status::status(state, &args),
        Command::Report {
            app,
            run,
            format,
            out,
        } => report::report(state, &app, run.as_deref(), format, out.as_deref()),
        Command::Archive { app, run } => archive::archive(state, &app, run.as_deref()),
        Command::Decommission { app, args } => decommission::decommission(state, &app, &args),
        Command::Discover { args } => discover::discover(state, &args),
        Command::Journal {
            action: JournalAction::Verify { app, run },
        } => journal::verify(state, &app, run.as_deref()),
    }
}

/// `boyong run`: a dry run (the plan), a saved plan (`saved.rs`), a batch (`batch.rs`),
/// or one app (`run.rs`).
fn run_command(state: &Path, files: &[PathBuf], args: &run::RunArgs) -> Result {
    if args.dry_run {
        if args.saved_plan.is_some() {
            return Err(CliError::bad_input(
                "boyong run: --dry-run shows a new plan; use `boyong plan` to look at a saved one",
            ));
        }
        return plan::plan(state, files, false, args.json, None, args.reuse_artifacts);
    }
    if let Some(saved) = &args.saved_plan {
        if !files.is_empty() {
            return Err(CliError::bad_input(
                "boyong run: give either playbooks or --plan, not both (the plan names its playbook)",
            ));
        }
        return saved::run_saved(state, saved, args);
    }
    if batch::is_batch(files, args) {
        return batch::run(state, files, args);
    }
    // Several playbooks make a batch: this is one.
    files
        .iter()
        .try_for_each(|f| run::run_one(state, f, args, None))
}

/// Who runs boyong, and where.
fn who() -> Who {
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let operator = operator(&|v| std::env::var(v).ok(), &passwd, uid);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    Who { operator, host }
}

/// Who runs boyong: `BOYONG_OPERATOR`; else the login that ran `sudo` (`SUDO_USER`, not
/// root); else `USER` or `LOGNAME`; else the name of the process's uid in `passwd` (a
/// service or container without a login environment); else `uid N`.
fn operator(env: &dyn Fn(&str) -> Option<String>, passwd: &str, uid: Option<u32>) -> String {
    if let Some(name) = ["BOYONG_OPERATOR", "SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| env(v).filter(|s| !s.is_empty()))
    {
        return name;
    }
    let Some(uid) = uid else {
        return "unknown".into();
    };
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid.to_string()).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Takes the app's lock for `command`, noting a previous holder that crashed.
fn lock_app(dir: &StateDir, app: &str, command: &str, break_lock: bool) -> Result<AppLock> {
    let lock = take_lock(dir, app, command, break_lock, &who())
        .map_err(|e| CliError::lock(command, &e))?;
    if let Some((prev, _)) = lock.previous() {
        say!(
            "note: the previous holder of `{app}`'s lock ({prev}) ended without releasing it: it crashed or was killed; `boyong status {app}` shows what it left"
        );
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::operator;

    #[test]
    fn the_operator_is_the_sudo_user_then_the_login_then_the_uids_name() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nandi:x:1000:1000::/home/andi:/bin/sh\n";
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_string())
            }
        };
        let sudo = env(&[("USER", "root"), ("SUDO_USER", "andi")]);
        assert_eq!(operator(&sudo, passwd, Some(0)), "andi");
        assert_eq!(operator(&env(&[("USER", "siti")]), passwd, Some(0)), "siti");
        let none = env(&[("USER", "")]);
        assert_eq!(operator(&none, passwd, Some(1000)), "andi");
        assert_eq!(operator(&none, passwd, Some(0)), "root");
        assert_eq!(operator(&none, passwd, Some(4242)), "uid 4242");
        assert_eq!(operator(&none, passwd, None), "unknown");
        let pinned = env(&[("BOYONG_OPERATOR", "budi"), ("SUDO_USER", "andi")]);
        assert_eq!(operator(&pinned, passwd, Some(0)), "budi");
    }
}
