//! `dump`: dump a database on the vendor host with its own tool, streamed back over SSH,
//! hashed and gzip-compressed as it arrives.

use super::Described;
use crate::plan::{Change, Op, Place, Resource};
use crate::playbook::{Dump, Engine, Step};

pub(super) fn describe(step: &Step, d: &Dump) -> Described {
    let consistency = match d.engine {
        Engine::Mariadb | Engine::Mysql => {
            "--single-transaction --routines --triggers --events --hex-blob, utf8mb4"
        }
        Engine::Postgres => "one snapshot",
    };
    let pw = if d.password.is_some() {
        "password *** through stdin, never on a command line"
    } else {
        "no password"
    };
    Described {
        reads: vec![format!(
            "{:?} database `{}` as `{}` at {}:{} on the vendor host, with {} ({consistency}; {pw})",
            d.engine, d.database, d.user, d.host, d.port, d.engine.dump_tool()
        )
        .to_lowercase()
        .replacen(&d.database.to_lowercase(), &d.database, 1)
        .replacen(&format!("`{}`", d.user.to_lowercase()), &format!("`{}`", d.user), 1)],
        changes: vec![Change {
            op: Op::Create,
            resource: Resource::Artifact,
            place: Place::Local,
            name: format!("artifacts/{}.sql.gz", step.id),
            details: vec![
                format!("SHA-256 in artifacts/{}.manifest", step.id),
                "row counts and checksums per table recorded as evidence".into(),
            ],
            condition: None,
            undo: "delete the artifact".into(),
        }],
    }
}
