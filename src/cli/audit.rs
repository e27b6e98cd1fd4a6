//! `boyong report APP [--run ID] [--format md|json|html] [--out FILE]`: the evidence of
//! one run for auditors. The library builds and renders it (`boyong::report`); this
//! file finds the run, writes the text where asked and chooses the exit code: 2 for an
//! unknown app or run, 1 when the journal's chain is broken (the report is still
//! written, its verdict saying so first).

use std::io::Write as _;
use std::path::Path;

use boyong::engine::state::StateDir;
use boyong::report::{Report, html, md};

use super::{exit, find_run};

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown: readable as text and as a page.
    Md,
    /// JSON, for tools.
    Json,
    /// One self-contained HTML page, printable.
    Html,
}

/// `boyong report`.
pub fn report(
    state: &Path,
    app: &str,
    run: Option<&str>,
    format: Format,
    out: Option<&Path>,
) -> u8 {
    const CMD: &str = "boyong report";
    let dir = StateDir::new(state);
    if let Ok(d) = dir.app_dir(app)
        && !d.is_dir()
    {
        eprintln!(
            "{CMD}: unknown app `{app}`: no runs of it in {}",
            state.display()
        );
        return exit::BAD_INPUT;
    }
    let run = match find_run(&dir, app, run, CMD) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let report = match Report::from_run_dir(run.path()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{CMD}: {e}");
            return exit::FAILED;
        }
    };
    let text = match format {
        Format::Md => md::render(&report),
        Format::Json => report.to_json() + "\n",
        Format::Html => html::render(&report),
    };
    let written = if let Some(path) = out {
        std::fs::write(path, text.as_bytes())
            .map(|()| eprintln!("{CMD}: wrote {}", path.display()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write the report: {e}"))
    };
    if let Err(e) = written {
        eprintln!("{CMD}: {e}");
        return exit::FAILED;
    }
    if !report.verdict.journal_intact {
        eprintln!(
            "{CMD}: the journal of run {} of `{app}` is BROKEN ({}); the report says so first. Keep a copy of {} for the auditors",
            report.run,
            report
                .journal
                .problem
                .as_deref()
                .unwrap_or("the chain does not verify"),
            run.path().display()
        );
        return exit::FAILED;
    }
    exit::OK
}
