//! The rules of a `fetch` step.

use super::NO_SECRET_REMOTE;
use crate::playbook::model::{Fetch, Incremental};
use crate::playbook::raw::{RawFetch, RawIncremental};
use crate::playbook::validate::Validator;

impl Validator<'_> {
    pub(super) fn fetch(&mut self, r: &RawFetch, f: &str) -> Fetch {
        let path = self.abs_path(&r.path, &format!("{f}.path"), NO_SECRET_REMOTE);
        let exclude = r
            .exclude
            .iter()
            .map(|e| {
                let t = self.text_because(e, &format!("{f}.exclude"), NO_SECRET_REMOTE);
                if t.is_empty() || t.starts_with('/') || t.split('/').any(|c| c == "..") {
                    self.error(
                        e.loc,
                        format!("exclude `{t}` must be a path relative to `path`"),
                        "expected e.g. `storage/logs/`",
                    );
                }
                t
            })
            .collect();
        let sha256sums = r
            .sha256sums
            .as_ref()
            .map(|s| self.abs_path(s, &format!("{f}.sha256sums"), NO_SECRET_REMOTE));
        let incremental = match r.incremental.as_ref().map(|i| i.value) {
            None | Some(RawIncremental::Flag(true)) => Incremental::Stat,
            Some(RawIncremental::Flag(false)) => Incremental::Off,
            Some(RawIncremental::Digest(_)) => Incremental::Digest,
        };
        Fetch {
            path,
            exclude,
            sha256sums,
            incremental,
        }
    }
}
