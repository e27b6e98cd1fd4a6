//! `exec`: a command on the vendor host or inside a container on the target, with an
//! optional undo command that rollback runs.

use super::Described;
use crate::plan::{Change, Op, Place, Resource};
use crate::playbook::{Exec, ExecOn};

pub(super) fn describe(e: &Exec) -> Described {
    let (place, name) = match &e.on {
        ExecOn::Vendor => (Place::Vendor, format!("on vendor: {}", e.run)),
        ExecOn::Container(c) => (Place::Target, format!("in container {c}: {}", e.run)),
    };
    let details = e
        .env
        .iter()
        .map(|(k, v)| format!("env {k}={v} (sent off the command line)"))
        .collect();
    Described {
        reads: Vec::new(),
        changes: vec![Change {
            op: Op::Run,
            resource: Resource::Command,
            place,
            name,
            details,
            condition: None,
            undo: e.undo.as_ref().map_or_else(
                || "none: this step has no `undo`".into(),
                |u| format!("run: {u}"),
            ),
        }],
    }
}
