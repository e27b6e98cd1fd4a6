//! The rules of a `build` step.

use super::NO_SECRET_IMAGE;
use crate::diag::Diagnostic;
use crate::playbook::model::Build;
use crate::playbook::raw::RawBuild;
use crate::playbook::validate::Validator;
use crate::playbook::yaml::Sp;

impl Validator<'_> {
    pub(super) fn build(&mut self, at: usize, r: &RawBuild, f: &str) -> Build {
        let base = self.image_ref(&r.base, &format!("{f}.base"));
        let mut copy = Vec::new();
        for (key, dest) in &r.copy {
            let key = &key.0;
            let from = &key.value;
            if let Some(id) = self.step_ref(key, at, "fetch", &format!("{f}.copy")) {
                let d = self.abs_path(dest, &format!("{f}.copy.{from}"), NO_SECRET_IMAGE);
                copy.push((id, d));
            }
        }
        let run = r
            .run
            .iter()
            .map(|c| self.text_because(c, &format!("{f}.run"), NO_SECRET_IMAGE))
            .collect();
        let mut image_user = |u: &Sp<String>, field: &str| {
            let before = self.errors();
            let t = self.text_because(u, &format!("{f}.{field}"), NO_SECRET_IMAGE);
            if !crate::playbook::text::is_image_user(&t) && self.errors() == before {
                self.error(
                    u.loc,
                    format!("`{t}` is not a user for the image"),
                    "expected a user name or id, optionally `:` and a group: `33`, `www-data`, `65534:65534`",
                );
            }
            t
        };
        let user = r.user.as_ref().map(|u| image_user(u, "user"));
        let owner = r.owner.as_ref().map(|u| image_user(u, "owner"));
        let workdir = r
            .workdir
            .as_ref()
            .map(|w| self.abs_path(w, &format!("{f}.workdir"), NO_SECRET_IMAGE));
        let env = self
            .env_map(&r.env, &format!("{f}.env"), false)
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        let cmd = r.cmd.as_ref().map(|c| {
            c.iter()
                .map(|x| self.text_because(x, &format!("{f}.cmd"), NO_SECRET_IMAGE))
                .collect::<Vec<_>>()
        });
        if let Some(c) = &r.cmd
            && c.is_empty()
        {
            self.push(
                Diagnostic::error(Some(r.base.loc), format!("`{f}.cmd` is an empty list"))
                    .label("expected at least the program to run"),
            );
        }
        let mut expose = Vec::new();
        for p in &r.expose {
            if p.value == 0 {
                self.error(p.loc, "port 0 cannot be exposed", "expected 1 to 65535");
            }
            expose.push(p.value);
        }
        let tag = r
            .tag
            .as_ref()
            .map(|t| self.image_ref(t, &format!("{f}.tag")));
        let allow_secrets_in = r
            .allow_secrets_in
            .iter()
            .map(|p| self.abs_path(p, &format!("{f}.allow_secrets_in"), NO_SECRET_IMAGE))
            .collect();
        Build {
            allow_secrets_in,
            omit: Vec::new(),
            base,
            copy,
            run,
            user,
            owner,
            workdir,
            env,
            cmd,
            expose,
            tag,
        }
    }
}
