//! The rules of a `dump` step.

use super::NO_SECRET_REMOTE;
use crate::playbook::model::Dump;
use crate::playbook::raw::RawDump;
use crate::playbook::validate::Validator;

impl Validator<'_> {
    pub(super) fn dump(&mut self, r: &RawDump, f: &str) -> Dump {
        let database = self.text_because(&r.database, &format!("{f}.database"), NO_SECRET_REMOTE);
        let user = self.text_because(&r.user, &format!("{f}.user"), NO_SECRET_REMOTE);
        for (v, what) in [(&database, &r.database), (&user, &r.user)] {
            if v.is_empty() || v.starts_with('-') || v.chars().any(char::is_control) {
                self.error(
                    what.loc,
                    format!("`{v}` is not a valid name"),
                    "expected a database or user name, not starting with `-`",
                );
            }
        }
        if r.engine.value == crate::playbook::model::DbEngine::Postgres
            && let Some(why) = crate::playbook::text::pg_database_problem(&database)
        {
            self.error(
                r.database.loc,
                format!("`{database}` is not a PostgreSQL database name"),
                why,
            );
        }
        let password = r
            .password
            .as_ref()
            .map(|p| self.secret_field(p, &format!("{f}.password")));
        let host = r.host.as_ref().map_or_else(
            || "localhost".to_string(),
            |h| self.text_because(h, &format!("{f}.host"), NO_SECRET_REMOTE),
        );
        if host.starts_with('-') || host.is_empty() {
            let loc = r.host.as_ref().map_or(r.database.loc, |h| h.loc);
            self.error(
                loc,
                format!("`{host}` is not a host name"),
                "expected e.g. `localhost`",
            );
        }
        let engine = r.engine.value;
        let port = r.port.as_ref().map_or(engine.default_port(), |p| p.value);
        Dump {
            engine,
            database,
            user,
            password,
            host,
            port,
        }
    }
}
