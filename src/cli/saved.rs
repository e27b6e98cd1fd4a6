//! `boyong run --plan PLAN.json`: runs a plan saved by `boyong plan --out`, exactly as
//! it was shown, or not at all.
//!
//! Before anything changes, the playbook is read again and must have the digest the plan
//! recorded; its hosts are probed again, and every fingerprint the plan holds (host key,
//! remote sizes and mtimes, current containers and their images, base images, networks,
//! volumes, ports) must be as the plan saw it; the steps and changes made from the
//! playbook now must equal the plan's. Any difference refuses the run (exit status 2),
//! naming each one. The plan then run is journaled with the saved file's SHA-256.

use std::fmt::Write as _;
use std::path::Path;

use boyong::plan::Plan;

use super::error::{CliError, Kind, Result};
use super::load::load_ready;
use super::plan;
use super::run::{RunArgs, run_planned};

/// `boyong run --plan FILE`.
pub fn run_saved(state: &Path, file: &Path, args: &RunArgs) -> Result {
    let refuse = |why: String| {
        Err(CliError::bad_input(format!(
            "boyong run --plan: {why}; nothing was changed"
        )))
    };
    // A regular file only: a FIFO or a device is refused before it is opened.
    let bytes = match boyong::playbook::read_regular(file, 256 << 20) {
        Ok(b) => b,
        Err(e) => return refuse(e.to_string()),
    };
    let saved = match Plan::read(&String::from_utf8_lossy(&bytes)) {
        Ok(p) => p,
        Err(e) => return refuse(format!("{}: not a boyong plan: {e}", file.display())),
    };
    if saved.mode != "live" {
        return refuse(format!(
            "{} is an offline plan: it saw nothing of the hosts, so nothing can be checked; make it again without --offline",
            file.display()
        ));
    }
    let playbook = Path::new(&saved.playbook);
    let ready = load_ready(playbook, "boyong run --plan")?;
    let mut fresh = plan::offline(&ready, playbook, false);
    if let Err(e) = plan::probe_all(
        state,
        std::slice::from_mut(&mut fresh),
        std::slice::from_ref(&ready),
    ) {
        return Err(CliError::failed(format!("boyong run --plan: {e}")));
    }
    let changed = saved.stale_against(&fresh);
    if !changed.is_empty() {
        let mut why = format!(
            "boyong run --plan: refused: the plan in {} is stale; since it was made ({}):",
            file.display(),
            saved.probes.as_ref().map_or("?", |p| p.at.as_str())
        );
        for c in &changed {
            let _ = write!(why, "\n  - {c}");
        }
        return Err(CliError::bad_input(why).hint(format!(
            "make a new plan (`boyong plan {} --out {}`), read it, and run that; nothing was changed",
            playbook.display(),
            file.display()
        )));
    }
    if let Some(p) = fresh.probes.as_ref().filter(|p| !p.problems.is_empty()) {
        let mut why = String::from(
            "boyong run --plan: refused: the plan's probes find problems that would make the run fail:",
        );
        for pr in &p.problems {
            let at = pr
                .step
                .as_ref()
                .map(|s| format!("step `{s}`: "))
                .unwrap_or_default();
            let _ = write!(why, "\n  - {at}{} (do: {})", pr.what, pr.fix);
        }
        return Err(CliError::new(Kind::Failed, why).hint("nothing was changed"));
    }
    let digest = boyong::engine::journal::sha256_hex(&bytes);
    run_planned(
        state,
        playbook,
        &ready,
        fresh,
        args,
        Some((
            "saved-plan",
            format!(
                "runs the plan saved in {} (sha256 {digest}); every fingerprint it recorded was found unchanged",
                file.display()
            ),
        )),
        None,
    )
}
