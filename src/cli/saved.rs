//! `boyong run --plan PLAN.json`: runs a plan saved by `boyong plan --out`, exactly as
//! it was shown, or not at all.
//!
//! Before anything changes, the playbook is read again and must have the digest the plan
//! recorded; its hosts are probed again, and every fingerprint the plan holds (host key,
//! remote sizes and mtimes, current containers and their images, base images, networks,
//! volumes, ports) must be as the plan saw it; the steps and changes made from the
//! playbook now must equal the plan's. Any difference refuses the run (exit status 2),
//! naming each one. The plan then run is journaled with the saved file's SHA-256.

use std::path::Path;

use boyong::plan::Plan;

use super::run::{RunArgs, run_planned};
use super::{exit, load_ready, plan};

/// `boyong run --plan FILE`.
pub fn run_saved(state: &Path, file: &Path, args: &RunArgs) -> u8 {
    let refuse = |why: String| {
        eprintln!("boyong run --plan: {why}; nothing was changed");
        exit::BAD_INPUT
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return refuse(format!("cannot read {}: {e}", file.display())),
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
    let Ok(ready) = load_ready(playbook, "boyong run --plan") else {
        return exit::BAD_INPUT;
    };
    let mut fresh = plan::offline(&ready, playbook, false);
    if let Err(e) = plan::probe_all(
        state,
        std::slice::from_mut(&mut fresh),
        std::slice::from_ref(&ready),
    ) {
        eprintln!("boyong run --plan: {e}");
        return exit::FAILED;
    }
    let changed = saved.stale_against(&fresh);
    if !changed.is_empty() {
        eprintln!(
            "boyong run --plan: refused: the plan in {} is stale; since it was made ({}):",
            file.display(),
            saved.probes.as_ref().map_or("?", |p| p.at.as_str())
        );
        for c in &changed {
            eprintln!("  - {c}");
        }
        eprintln!(
            "make a new plan (`boyong plan {} --out {}`), read it, and run that; nothing was changed",
            playbook.display(),
            file.display()
        );
        return exit::BAD_INPUT;
    }
    if let Some(p) = fresh.probes.as_ref().filter(|p| !p.problems.is_empty()) {
        eprintln!(
            "boyong run --plan: refused: the plan's probes find problems that would make the run fail:"
        );
        for pr in &p.problems {
            let at = pr
                .step
                .as_ref()
                .map(|s| format!("step `{s}`: "))
                .unwrap_or_default();
            eprintln!("  - {at}{} (do: {})", pr.what, pr.fix);
        }
        eprintln!("nothing was changed");
        return exit::FAILED;
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
