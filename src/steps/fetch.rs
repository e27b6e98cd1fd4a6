//! `fetch`: pull a directory or file from the vendor host as one tar stream over SSH,
//! hashed and safely unpacked as it arrives.

use super::Described;
use crate::plan::{Change, Op, Place, Resource};
use crate::playbook::{Fetch, Step};

pub(super) fn describe(step: &Step, f: &Fetch) -> Described {
    let mut read = format!("vendor:{} (one tar stream over SSH", f.path);
    if !f.exclude.is_empty() {
        read.push_str(", excluding ");
        read.push_str(&f.exclude.join(", "));
    }
    read.push(')');
    let mut reads = vec![read];
    let mut details = vec![
        format!("SHA-256 manifest: artifacts/{}.manifest", step.id),
        "unpacked safely: no absolute paths, `..`, writes through links, devices or fifos; setuid/setgid and owners dropped".into(),
    ];
    if let Some(sums) = &f.sha256sums {
        reads.push(format!("vendor:{sums} (the vendor's SHA256SUMS)"));
        details.push(format!("every file listed in {sums} must match"));
    }
    Described {
        reads,
        changes: vec![Change {
            op: Op::Create,
            resource: Resource::Artifact,
            place: Place::Local,
            name: format!("artifacts/{}/", step.id),
            details,
            condition: None,
            undo: "delete the artifact".into(),
        }],
    }
}
