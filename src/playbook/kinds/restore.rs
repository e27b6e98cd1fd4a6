//! The rules of a `restore` step.

use crate::playbook::model::{Restore, Rewrite};
use crate::playbook::raw::RawRestore;
use crate::playbook::validate::Validator;

impl Validator<'_> {
    pub(super) fn restore(&mut self, at: usize, r: &RawRestore, f: &str) -> Restore {
        let from = self
            .step_ref(&r.from, at, "dump", &format!("{f}.from"))
            .unwrap_or_default();
        let image = self.image_ref(&r.image, &format!("{f}.image"));
        let name = self.docker_name(&r.name, &format!("{f}.name"));
        let volume = self.docker_name(&r.volume, &format!("{f}.volume"));
        let network = r
            .network
            .as_ref()
            .map(|n| self.docker_name(n, &format!("{f}.network")));
        let password = self.secret_field(&r.password, &format!("{f}.password"));
        let replace = r.replace.as_ref().is_some_and(|x| x.value);
        let service = self.swarm_target;
        let why = "a secret here would show in plans and the journal";
        let mut rewrite = Vec::new();
        for (i, w) in r.rewrite.iter().enumerate() {
            let from = self.text_because(&w.value.from, &format!("{f}.rewrite[{i}].from"), why);
            let to = self.text_because(&w.value.to, &format!("{f}.rewrite[{i}].to"), why);
            if from.is_empty() {
                self.error(
                    w.value.from.loc,
                    "`from` is empty",
                    "expected the old text, e.g. `https://izin.vendor.co.id`",
                );
            } else if from == to {
                self.error(
                    w.value.to.loc,
                    "`to` is the same as `from`",
                    "expected the new text",
                );
            }
            rewrite.push(Rewrite { from, to });
        }
        Restore {
            from,
            image,
            name,
            volume,
            network,
            password,
            replace,
            service,
            rewrite,
        }
    }
}
