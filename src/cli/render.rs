//! The human rendering of a plan.

use std::fmt::Write as _;

use boyong::plan::Plan;

/// Renders a plan for a terminal.
pub fn plan(p: &Plan) -> String {
    let mut o = String::new();
    match &p.probes {
        Some(x) => {
            let _ = writeln!(
                o,
                "Plan for `{}` (live: probed {}, in {:.2} s; nothing was changed)",
                p.app, x.at, x.seconds
            );
        }
        None => {
            let _ = writeln!(
                o,
                "Plan for `{}` ({}: no host was contacted)",
                p.app, p.mode
            );
        }
    }
    if let Some(d) = &p.description {
        let _ = writeln!(o, "  {d}");
    }
    let _ = writeln!(
        o,
        "  playbook  {} (sha256 {})",
        p.playbook,
        p.playbook_sha256.get(..12).unwrap_or_default()
    );
    let _ = writeln!(o, "  vendor    {}, {}", p.vendor.address, p.vendor.auth);
    let _ = writeln!(
        o,
        "            host key must match {}",
        p.vendor.known_hosts
    );
    let _ = writeln!(o, "  target    {}", p.target);
    if !p.secrets.is_empty() {
        let list: Vec<String> = p
            .secrets
            .iter()
            .map(|(k, v)| format!("{k} ({v})"))
            .collect();
        let _ = writeln!(o, "  secrets   {}", list.join(", "));
    }
    if let Some(x) = &p.probes {
        for l in &x.vendor {
            let _ = writeln!(o, "  found     vendor {l}");
        }
        for l in &x.target {
            let _ = writeln!(o, "  found     {l}");
        }
    }
    for s in &p.steps {
        let _ = writeln!(o);
        let mut extras = Vec::new();
        if s.retries > 0 {
            extras.push(format!("retries {}", s.retries));
        }
        if let Some(t) = s.timeout {
            extras.push(format!("timeout {t}"));
        }
        let extras = if extras.is_empty() {
            String::new()
        } else {
            format!("  ({})", extras.join(", "))
        };
        let _ = writeln!(o, "{:>2}. {} [{}]{extras}", s.number, s.id, s.kind);
        for r in &s.reads {
            let _ = writeln!(o, "      reads {r}");
        }
        for f in &s.found {
            let _ = writeln!(o, "      found {f}");
        }
        if let Some(e) = &s.estimate {
            let bytes = e
                .bytes
                .map(|b| format!("{}, ", boyong::steps::human_bytes(b)))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "      estimate {bytes}~{:.0} s ({})",
                e.seconds.ceil(),
                e.basis
            );
        }
        for c in &s.changes {
            let cond = c
                .condition
                .as_ref()
                .map(|c| format!("  ({c})"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "    {} {} {}{cond}",
                c.op.mark(),
                c.resource.word(),
                c.name
            );
            for d in &c.details {
                let _ = writeln!(o, "          {d}");
            }
            if let Some(n) = &c.now {
                let _ = writeln!(o, "          now: {n}");
            }
            let _ = writeln!(o, "          undo: {}", c.undo);
        }
    }
    let s = p.summary;
    let _ = writeln!(o);
    if let Some(x) = &p.probes {
        if x.problems.is_empty() {
            let _ = writeln!(o, "Probes: no problem found.");
        } else {
            let _ = writeln!(
                o,
                "Problems ({}): the run would fail; fix these first",
                x.problems.len()
            );
            for pr in &x.problems {
                let at = pr
                    .step
                    .as_ref()
                    .map(|s| format!("step `{s}`: "))
                    .unwrap_or_default();
                let _ = writeln!(o, "  x {at}{}", pr.what);
                let _ = writeln!(o, "      do: {}", pr.fix);
            }
        }
        let total: f64 = p
            .steps
            .iter()
            .filter_map(|s| s.estimate.as_ref().map(|e| e.seconds))
            .sum();
        let _ = writeln!(o, "Estimated time: ~{:.0} s.", total.ceil());
    }
    let _ = writeln!(
        o,
        "Plan: {} to create, {} to replace, {} to remove, {} command{} to run.",
        s.create,
        s.replace,
        s.remove,
        s.run,
        if s.run == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        o,
        "Marks: + create  ~ replace (the old one is kept for rollback)  - remove  ! run"
    );
    o
}
