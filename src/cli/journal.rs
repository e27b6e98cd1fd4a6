//! `boyong journal verify APP [--run ID]`: checks a run journal's hash chain. Exit
//! status 0 when intact (a torn last line, which a resume drops, is intact), 1 when
//! BROKEN or unreadable, 2 for an unknown app or run.

use std::path::Path;

use boyong::engine::journal;
use boyong::engine::open::find_run;
use boyong::engine::state::StateDir;

use super::error::{CliError, Result};

/// `boyong journal verify`.
pub fn verify(state: &Path, app: &str, run: Option<&str>) -> Result {
    const CMD: &str = "boyong journal verify";
    let dir = StateDir::new(state);
    let path = find_run(&dir, app, run)
        .map_err(|e| CliError::no_run(CMD, &e))?
        .journal_path();
    let report = journal::verify(&path).map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    let head = report.head_sha256.as_deref().unwrap_or("-");
    match &report.problem {
        None => println!(
            "{}: intact, {} lines, chain head sha256 {head}",
            path.display(),
            report.lines
        ),
        Some(p) if report.is_intact() => println!(
            "{}: intact, {} lines, chain head sha256 {head} ({p}: a crash cut the last write; it is dropped on resume)",
            path.display(),
            report.lines
        ),
        Some(p) => {
            return Err(
                CliError::failed(format!("{}: BROKEN: {p}", path.display())).hint(
                    "the journal was changed after it was written; keep a copy for the auditors before anything else",
                ),
            );
        }
    }
    Ok(())
}
