//! The rules of an `exec` step.

use super::NO_SECRET_REMOTE;
use crate::playbook::model::{Exec, ExecOn};
use crate::playbook::raw::{RawExec, RawExecOn};
use crate::playbook::validate::Validator;
use crate::playbook::yaml::Sp;

impl Validator<'_> {
    pub(super) fn exec(&mut self, r: &RawExec, f: &str) -> Exec {
        // Vars go into these shell command lines as one quoted word each.
        self.shell_words = true;
        let run = self.text_because(&r.run, &format!("{f}.run"), NO_SECRET_REMOTE);
        if run.trim().is_empty() {
            self.error(r.run.loc, "`run` is empty", "expected a command");
        }
        let undo = r
            .undo
            .as_ref()
            .map(|u| self.text_because(u, &format!("{f}.undo"), NO_SECRET_REMOTE));
        self.shell_words = false;
        let on = match r.on.as_ref().map(|o| (&o.value, o.loc)) {
            None | Some((RawExecOn::Vendor(_), _)) => ExecOn::Vendor,
            Some((RawExecOn::Container { container }, loc)) => ExecOn::Container(self.docker_name(
                &Sp::new(container.clone(), loc),
                &format!("{f}.on.container"),
            )),
        };
        let env = self.env_map(&r.env, &format!("{f}.env"), true);
        let freeze = r.freeze.as_ref().is_some_and(|z| z.value);
        if let Some(z) = r.freeze.as_ref().filter(|z| z.value)
            && undo.is_none()
        {
            self.error(
                z.loc,
                "a freeze needs `undo`",
                "expected `undo:` with the command that takes the vendor app out of maintenance when the run is rolled back",
            );
        }
        Exec {
            run,
            undo,
            on,
            env,
            freeze,
        }
    }
}
