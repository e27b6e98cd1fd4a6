//! The `decommission:` section beyond `after:`: the crontab lines and systemd units a
//! decommission removes from the vendor host, validated (file:line:col) into
//! [`Decommission`].
//!
//! Invariants: a crontab line is one non-blank line without control characters (it is
//! matched whole against `crontab -l`); a unit is a plain systemd unit name ending in
//! `.service`, `.timer`, `.socket` or `.path` (never an option, a path or a glob); none
//! is named twice.

use super::model::Decommission;
use super::raw::RawDecommission;
use super::validate::Validator;
use super::yaml::Sp;

/// The unit suffixes a decommission stops and disables.
const UNIT_SUFFIXES: [&str; 4] = [".service", ".timer", ".socket", ".path"];

/// Why `name` is not a unit a decommission may stop, if it is not.
pub fn unit_problem(name: &str) -> Option<String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || ":_.@-\\".contains(c);
    if name.starts_with('-') || name.starts_with('.') {
        return Some("a unit name does not start with `-` or `.`".into());
    }
    if !name.chars().all(ok_char) {
        return Some(
            "a unit name holds only letters, digits and `:_.@-\\` (no path, blank or glob)".into(),
        );
    }
    let Some(stem) = UNIT_SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) else {
        return Some(format!("a unit name ends in {}", UNIT_SUFFIXES.join(", ")));
    };
    if stem.is_empty() || stem.ends_with('@') {
        return Some("a unit name (not a template) before its suffix".into());
    }
    None
}

impl Validator<'_> {
    /// `decommission.crontab`, `.services` and `.user_services`.
    pub(super) fn decommission(&mut self, raw: &RawDecommission) -> Decommission {
        let mut out = Decommission::default();
        let mut seen = std::collections::BTreeSet::new();
        for line in &raw.crontab {
            let l = &line.value;
            if l.trim().is_empty() || l.chars().any(char::is_control) {
                self.error(
                    line.loc,
                    "`decommission.crontab`: a line is one non-blank line without control characters",
                    "expected a whole line of the vendor login's `crontab -l`",
                );
            } else if !seen.insert(("crontab", l.clone())) {
                self.error(
                    line.loc,
                    "`decommission.crontab`: this line is named twice",
                    "named before",
                );
            } else {
                out.crontab.push(l.clone());
            }
        }
        for (field, list, into) in [
            ("services", &raw.services, &mut out.services),
            ("user_services", &raw.user_services, &mut out.user_services),
        ] {
            for unit in list {
                let u: &Sp<String> = unit;
                if let Some(p) = unit_problem(&u.value) {
                    self.error(
                        u.loc,
                        format!("`decommission.{field}`: `{}`: {p}", u.value),
                        "expected e.g. `perizinan-worker.service`",
                    );
                } else if !seen.insert(("unit", u.value.clone())) {
                    self.error(
                        u.loc,
                        format!("`decommission.{field}`: `{}` is named twice", u.value),
                        "named before",
                    );
                } else {
                    into.push(u.value.clone());
                }
            }
        }
        out
    }
}
