//! `boyong archive APP [--run ID]`: the run's verified artifacts (code, dump, manifests,
//! journal, plan, playbook, report) packed into one tarball with a SHA-256 list, for
//! the records; `boyong decommission` refuses without it. The library builds it
//! (`boyong::decommission::archive`); this file finds the run, takes the app's lock and
//! says where the archive is. Exit 2: unknown app or run; 1: an artifact that does not
//! verify, a broken journal, or an archive that exists already.

use std::path::Path;

use boyong::decommission::archive;
use boyong::engine::journal;
use boyong::engine::open::{find_run, playbook_as_run};
use boyong::engine::state::StateDir;
use boyong::playbook;
use boyong::report::{Report, md};

use super::error::{CliError, Result};

/// `boyong archive`.
pub fn archive(state: &Path, app: &str, run: Option<&str>) -> Result {
    const CMD: &str = "boyong archive";
    let dir = StateDir::new(state);
    let run = find_run(&dir, app, run).map_err(|e| CliError::no_run(CMD, &e))?;
    journal::read(&run.journal_path()).map_err(|e| {
        CliError::failed(format!(
            "{CMD}: refused: {e}; a broken journal is not archived as evidence"
        ))
    })?;
    let (original, bytes) = playbook_as_run(&run);
    let pb = playbook::parse(&original, &bytes).playbook.ok_or_else(|| {
        CliError::failed(format!(
            "{CMD}: the playbook stored with run {} does not validate",
            run.id()
        ))
    })?;
    let report =
        Report::from_run_dir(run.path()).map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    let lock = super::lock_app(&dir, app, CMD, false)?;
    let made = archive::create(&dir, &pb, &run, &md::render(&report));
    drop(lock);
    let a = made.map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    println!(
        "`{app}`: run {} archived (artifacts verified against their manifests)\n  {}\n  SHA-256 {}  ({} bytes)",
        run.id(),
        a.path.display(),
        a.sha256,
        a.bytes
    );
    Ok(())
}
