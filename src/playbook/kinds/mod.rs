//! The rules of each step kind, one file each (`fetch.rs`, `dump.rs`, `exec.rs`,
//! `build.rs`, `restore.rs`, `deploy.rs`): a kind's raw, spanned settings (`raw.rs`) made
//! into its validated model (`model.rs`), every problem reported at its `Loc`. This file
//! holds what they share: the dispatch of a step to its kind, and the field helpers
//! (durations, sizes, absolute paths, image references, env maps). The machinery common
//! to the whole playbook (text, templates, secrets, step references) is `validate.rs`.

mod build;
mod deploy;
mod dump;
mod exec;
mod fetch;
mod files;
mod restore;
mod route;

pub use route::is_route_host;

use std::collections::BTreeMap;

use super::model::{Step, StepKind};
use super::raw::RawStep;
use super::template::{Template, is_var_name};
use super::units::{Size, Span};
use super::validate::Validator;
use super::yaml::Sp;
use crate::diag::Loc;

pub(super) use files::link as link_files;

pub(super) const NO_SECRET_REMOTE: &str = "a secret on a command line is visible to every user of that host (`ps`): pass it in the step's `env:` instead";
pub(super) const NO_SECRET_IMAGE: &str = "a secret here would be written into the image, readable by anyone who has it: pass it at deploy time in `deploy.env`";

/// Linux capabilities `cap_add` accepts.
pub const CAPABILITIES: [&str; 41] = [
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// An image reference with a tag or digest: `name[:tag]`, `registry/ns/name:tag`, `name@sha256:...`.
pub fn is_image_ref(s: &str) -> bool {
    let (name, tag) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d.starts_with("sha256:") && d.len() == 71)),
        None => match s.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (
                n,
                Some(
                    !t.is_empty()
                        && t.len() <= 128
                        && t.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                ),
            ),
            _ => (s, None),
        },
    };
    tag.unwrap_or(false)
        && !name.is_empty()
        && !name.starts_with(['/', '-', '.'])
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-:".contains(c))
        })
}

pub(super) fn is_abs_path(s: &str) -> bool {
    s.starts_with('/') && !s.split('/').any(|c| c == "..") && !s.contains('\0')
}

impl Validator<'_> {
    pub(super) fn step(&mut self, at: usize, raw: &RawStep, loc: Loc) -> Option<Step> {
        let id = raw.id.value.clone();
        let timeout = raw.timeout.as_ref().and_then(|t| self.span(t, "timeout"));
        let retry_delay = raw
            .retry_delay
            .as_ref()
            .and_then(|t| self.span(t, "retry_delay"));
        if let (Some(d), Some(raw_d)) = (retry_delay, &raw.retry_delay)
            && d.0 > std::time::Duration::from_secs(600)
        {
            self.error(
                raw_d.loc,
                "`retry_delay` is at most 10m",
                "expected e.g. `5s`",
            );
        }
        let reads_vendor = raw.fetch.is_some() || raw.dump.is_some();
        let retries = raw
            .retries
            .as_ref()
            .map_or(if reads_vendor { 2 } else { 0 }, |r| r.value);
        if let Some(r) = &raw.retries
            && r.value > 10
        {
            self.error(r.loc, "at most 10 retries", "expected 0 to 10");
        }
        let p = |f: &str| format!("steps.{id}.{f}");
        let kind = if let Some(f) = &raw.fetch {
            Some(StepKind::Fetch(self.fetch(&f.value, &p("fetch"))))
        } else if let Some(d) = &raw.dump {
            Some(StepKind::Dump(self.dump(&d.value, &p("dump"))))
        } else if let Some(e) = &raw.exec {
            Some(StepKind::Exec(self.exec(&e.value, &p("exec"))))
        } else if let Some(b) = &raw.build {
            Some(StepKind::Build(self.build(at, &b.value, &p("build"))))
        } else if let Some(r) = &raw.restore {
            Some(StepKind::Restore(self.restore(at, &r.value, &p("restore"))))
        } else if let Some(d) = &raw.deploy {
            Some(StepKind::Deploy(Box::new(self.deploy(
                at,
                &d.value,
                d.loc,
                &p("deploy"),
            ))))
        } else if let Some(a) = &raw.assess {
            self.assess_step(&a.value, a.loc, &p("assess"))
                .map(StepKind::Assess)
        } else {
            let _ = loc;
            None
        };
        Some(Step {
            id,
            retries,
            retry_delay,
            timeout,
            kind: kind?,
        })
    }

    pub(super) fn span(&mut self, s: &Sp<String>, field: &str) -> Option<Span> {
        self.unit(s, field, "a duration", Span::parse)
    }

    pub(super) fn size(&mut self, s: &Sp<String>, field: &str) -> Option<Size> {
        self.unit(s, field, "a size", Size::parse)
    }

    /// A field holding a value with units; nothing more is said when its text failed.
    pub(super) fn unit<T>(
        &mut self,
        s: &Sp<String>,
        field: &str,
        what: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let before = self.errors();
        let t = self.text(s, field);
        if self.errors() > before {
            return None;
        }
        parse(&t)
            .map_err(|e| self.error(s.loc, format!("`{field}` is not {what}: `{t}`"), e))
            .ok()
    }

    pub(super) fn abs_path(&mut self, s: &Sp<String>, field: &str, why: &str) -> String {
        let before = self.errors();
        let t = self.text_because(s, field, why);
        if !is_abs_path(&t) && self.errors() == before {
            self.error(
                s.loc,
                format!("`{field}` must be an absolute path without `..`: `{t}`"),
                "expected e.g. `/srv/www/app`",
            );
        }
        t
    }

    pub(super) fn image_ref(&mut self, s: &Sp<String>, field: &str) -> String {
        let before = self.errors();
        let t = self.text_because(s, field, NO_SECRET_IMAGE);
        if !is_image_ref(&t) && self.errors() == before {
            self.error(s.loc, format!("`{t}` is not an image reference with a tag"), "expected e.g. `gov/php:8.2` (a tag is required: no registry decides what `latest` means)");
        }
        t
    }

    pub(super) fn env_map(
        &mut self,
        m: &BTreeMap<String, Sp<String>>,
        field: &str,
        secrets_ok: bool,
    ) -> BTreeMap<String, Template> {
        let mut out = BTreeMap::new();
        for (k, v) in m {
            if !is_var_name(k) {
                self.error(
                    v.loc,
                    format!("`{k}` is not an environment variable name"),
                    "expected letters, digits and `_`",
                );
            }
            let f = format!("{field}.{k}");
            let t = if secrets_ok {
                self.template(v, &f)
            } else {
                Template::text(self.text_because(v, &f, NO_SECRET_IMAGE))
            };
            out.insert(k.clone(), t);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for ok in [
            "gov/php:8.2",
            "perizinan:2026.11.1",
            "registry.local:5000/a/b:1",
            "x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(is_image_ref(ok), "{ok}");
        }
        for bad in [
            "php",
            "Gov/php:8",
            "php:",
            "-x:1",
            "a b:1",
            "x@sha256:12",
            "/x:1",
        ] {
            assert!(!is_image_ref(bad), "{bad}");
        }
    }
}
