//! The human rendering of a plan.

use std::fmt::Write as _;

use boyong::plan::Plan;

/// Renders a plan for a terminal.
pub fn plan(p: &Plan) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Plan for `{}` ({}: no host was contacted)",
        p.app, p.mode
    );
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
            let _ = writeln!(o, "          undo: {}", c.undo);
        }
    }
    let s = p.summary;
    let _ = writeln!(o);
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
