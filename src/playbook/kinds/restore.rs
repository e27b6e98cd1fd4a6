//! The rules of a `restore` step.

use crate::playbook::model::Restore;
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
        Restore {
            from,
            image,
            name,
            volume,
            network,
            password,
            replace,
        }
    }
}
