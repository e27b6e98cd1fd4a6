//! `restore`: load a verified dump into a database container on the target and prove
//! it equal, table by table.

use super::{Described, hardening, network_if_missing};
use crate::plan::{Change, Op, Place, Resource};
use crate::playbook::{Restore, Security};

pub(super) fn describe(r: &Restore) -> Described {
    let mut changes = Vec::new();
    if r.replace {
        changes.push(Change {
            op: Op::Replace,
            resource: Resource::Volume,
            place: Place::Target,
            name: r.volume.clone(),
            details: vec![
                "its current contents are snapshotted into the run's artifacts first".into(),
            ],
            condition: Some("if it exists".into()),
            undo: "restore the snapshot".into(),
        });
    }
    changes.push(Change {
        op: Op::Create,
        resource: Resource::Volume,
        place: Place::Target,
        name: r.volume.clone(),
        details: Vec::new(),
        condition: Some(
            if r.replace {
                "if missing"
            } else {
                "if missing; an existing one is refused unless `replace: true`"
            }
            .into(),
        ),
        undo: "remove it (only if this run created it)".into(),
    });
    if let Some(n) = &r.network {
        changes.push(network_if_missing(n));
    }
    let mut details = vec![
        format!("image {}", r.image),
        format!("volume {}", r.volume),
        format!("password {}", r.password),
    ];
    let db = Security {
        read_only: false,
        tmpfs: vec!["/tmp".into(), "/run".into()],
        memory: crate::playbook::units::Size(1 << 30),
        ..Security::default()
    };
    details.extend(hardening(&db).into_iter().map(|l| {
        l.replace(
            "OFF (relaxed by the playbook)",
            "off (a database server writes outside its volume)",
        )
    }));
    changes.push(Change {
        op: Op::Create,
        resource: Resource::Container,
        place: Place::Target,
        name: r.name.clone(),
        details,
        condition: None,
        undo: "stop and remove it".into(),
    });
    changes.push(Change {
        op: Op::Replace,
        resource: Resource::Database,
        place: Place::Target,
        name: format!("{} <- artifacts/{}.sql.gz", r.name, r.from),
        details: vec!["dump re-verified, streamed in through the Docker API; row counts and checksums compared per table".into()],
        condition: None,
        undo: "removed with its container and volume".into(),
    });
    Described {
        reads: vec![format!("artifacts/{}.sql.gz (SHA-256 re-verified)", r.from)],
        changes,
    }
}
