//! Step kinds: one file each (`fetch.rs`, `dump.rs`, `exec.rs`, `build.rs`,
//! `restore.rs`, `deploy.rs`).
//!
//! Owns: what each kind reads and changes ([`describe`]), which is what a plan shows and
//! what a run is held to; and the [`Live`] runner that executes kinds on real hosts.
//! Adding a kind: CONTRIBUTING.md lists every place, including the lists the compiler
//! does not point at (`STEP_KINDS`, `kind_name`, `reads_vendor`).

/// The end of the vendor-side wrappers of `exec` and `dump`, after the command they start
/// in the background: the wrapper's fd 3 (its stdin, which boyong holds open) is watched;
/// when it ends (boyong went away: a time limit, Ctrl-C, a dropped link), the session's
/// process group (sshd gives each session its own) is sent TERM, then KILL 5 s later for
/// what ignored it. Otherwise the wrapper exits with the command's status.
macro_rules! held_on_vendor {
    () => {
        r#"__boyong_cmd=$!
{ while IFS= read -r __boyong_x; do :; done; trap '' TERM; kill -TERM 0; sleep 5; kill -KILL 0; } <&3 >/dev/null 2>&1 &
__boyong_watch=$!
exec 3<&-
wait "$__boyong_cmd"
__boyong_status=$?
kill "$__boyong_watch" 2>/dev/null
exit "$__boyong_status""#
    };
}

mod build;
mod db;
mod deploy;
mod deploy_run;
pub mod dockerfile;
mod dump;
mod exec;
mod fetch;
mod live;
mod probe;
mod restore;
mod restore_db;

pub use deploy_run::check_health;
pub use live::{Live, LiveOptions};
pub use probe::{Pool, human_bytes, probe, shared_disk};

use crate::plan::{Change, PlanContext};
use crate::playbook::{Security, Step, StepKind};

/// What a step reads and what it changes.
#[derive(Debug, Clone, Default)]
pub struct Described {
    /// What it reads, one line each.
    pub reads: Vec<String>,
    /// What it changes.
    pub changes: Vec<Change>,
}

/// Describes a step for the plan.
pub fn describe(step: &Step, ctx: &PlanContext) -> Described {
    match &step.kind {
        StepKind::Fetch(f) => fetch::describe(step, f),
        StepKind::Dump(d) => dump::describe(step, d),
        StepKind::Exec(e) => exec::describe(e),
        StepKind::Build(b) => build::describe(step, b, ctx),
        StepKind::Restore(r) => restore::describe(step, r, ctx),
        StepKind::Deploy(d) => deploy::describe(d, ctx),
    }
}

/// A network created when missing, and removed by rollback only if this run made it.
pub(crate) fn network_if_missing(name: &str) -> Change {
    if_missing(crate::plan::Resource::Network, name)
}

/// A volume created when missing, and removed by rollback only if this run made it.
pub(crate) fn volume_if_missing(name: &str) -> Change {
    if_missing(crate::plan::Resource::Volume, name)
}

fn if_missing(resource: crate::plan::Resource, name: &str) -> Change {
    Change {
        now: None,
        op: crate::plan::Op::Create,
        resource,
        place: crate::plan::Place::Target,
        name: name.to_string(),
        details: Vec::new(),
        condition: Some("if missing".into()),
        undo: "remove it (only if this run created it)".into(),
    }
}

/// The hardening of a container, spelled out for plans.
pub(crate) fn hardening(s: &Security) -> Vec<String> {
    let onoff = |b: bool, what: &str| {
        if b {
            what.to_string()
        } else {
            format!("{what}: OFF (relaxed by the playbook)")
        }
    };
    let caps = if s.cap_add.is_empty() {
        "capabilities: drop ALL".to_string()
    } else {
        format!("capabilities: drop ALL, add {}", s.cap_add.join(", "))
    };
    let tmpfs = if s.tmpfs.is_empty() {
        String::new()
    } else {
        format!(" (tmpfs {})", s.tmpfs.join(", "))
    };
    vec![
        onoff(s.no_new_privileges, "no-new-privileges"),
        caps,
        format!(
            "{}{tmpfs}",
            onoff(s.read_only, "read-only root file system")
        ),
        format!("memory {}, pids {}", s.memory, s.pids),
        format!(
            "restart {}",
            serde_json::to_value(s.restart)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        format!("logs json-file, {} x {}", s.log_max_size, s.log_max_files),
        "no Docker socket, no host paths mounted".into(),
    ]
}
