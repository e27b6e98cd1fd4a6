//! The characters a text field may hold, and the shape of two names that other programs
//! read: Docker's `USER` and PostgreSQL's database name.
//!
//! Owns: which control characters each field accepts ([`allowed_controls`]): a tab and a
//! line feed in scripts (`exec.run`, `exec.undo`, `build.run`), argument vectors
//! (`build.cmd`, `health.cmd`), environment values (`exec.env`, `deploy.env`), a deployed
//! file's text (`deploy.files[N].content`, `replace[M].find` and `.with`) and the
//! `description`; a tab only in `build.env` (a Dockerfile `ENV` cannot hold a line break);
//! none, in every other field. Names, paths, hosts, image references and users end up on
//! command lines, in the generated Dockerfile, in file names on the vendor host and on the
//! operator's terminal, where a line break or an escape sequence changes what they mean
//! (a `USER` line that adds a `RUN`, a path that names another file). A character is
//! checked after `{{ vars.X }}` is filled in, so a var cannot bring one in either.
//!
//! Invariant: "control character" is Unicode's (`char::is_control`: C0, DEL and C1), and
//! a carriage return, NUL or escape is refused in every field.

use super::template::Part;
use super::validate::Validator;
use super::yaml::Sp;

const LINES: &[char] = &['\t', '\n'];
const TAB: &[char] = &['\t'];

/// The control characters `field` (as validation names it: `steps.ID.exec.run`) may hold.
pub(super) fn allowed_controls(field: &str) -> &'static [char] {
    let parts: Vec<&str> = field.split('.').collect();
    match parts.as_slice() {
        ["description"]
        | ["steps", _, "exec", "run" | "undo"]
        | ["steps", _, "build", "run" | "cmd"]
        | ["steps", _, "deploy", "health", "cmd"]
        | ["steps", _, "exec" | "deploy", "env", _] => LINES,
        // a file's text written into the container, and what its edits find and put
        ["steps", _, "deploy", f, "content"] if f.starts_with("files[") => LINES,
        ["steps", _, "deploy", f, r, "find" | "with"]
            if f.starts_with("files[") && r.starts_with("replace[") =>
        {
            LINES
        }
        ["steps", _, "build", "env", _] => TAB,
        _ => &[],
    }
}

/// The first control character of `s` that is not in `allowed`, with its byte offset.
pub(super) fn first_control(s: &str, allowed: &[char]) -> Option<(usize, char)> {
    s.char_indices()
        .find(|(_, c)| c.is_control() && !allowed.contains(c))
}

/// A control character as a person reads it: `U+000A (line feed)`.
pub(super) fn describe(c: char) -> String {
    let name = match c {
        '\t' => " (tab)",
        '\n' => " (line feed)",
        '\r' => " (carriage return)",
        '\0' => " (NUL)",
        '\u{1b}' => " (escape)",
        '\u{7f}' => " (delete)",
        _ => "",
    };
    format!("U+{:04X}{name}", u32::from(c))
}

/// `build.user`: a user name or numeric id, optionally `:` and a group name or id
/// (`33`, `www-data`, `65534:65534`): what Docker's `USER` takes, and nothing that the
/// Dockerfile would read as more than one word.
pub(super) fn is_image_user(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 32
            && (p.bytes().all(|b| b.is_ascii_digit())
                || (p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))))
    };
    match s.split_once(':') {
        Some((user, group)) => part(user) && part(group),
        None => part(s),
    }
}

/// Why a PostgreSQL database name would not be read as a name by libpq's tools, if so:
/// `--dbname=` with a `=` in it is a connection string, and one starting `postgresql://`
/// or `postgres://` a URI, whose `host`, `sslmode` … override the dump's own.
pub(super) fn pg_database_problem(name: &str) -> Option<&'static str> {
    if name.contains('=') {
        Some(
            "PostgreSQL's tools read a database name with `=` as a connection string (its `host` or `sslmode` would override the dump's)",
        )
    } else if name.starts_with("postgresql://") || name.starts_with("postgres://") {
        Some("PostgreSQL's tools read a database name starting `postgresql://` as a connection URI")
    } else {
        None
    }
}

impl Validator<'_> {
    /// Refuses a control character that `field` may not hold, in `raw` as written (at
    /// the character) or in `value` once vars are filled in (at the field).
    pub(super) fn check_controls(&mut self, raw: &Sp<String>, field: &str, value: &[Part]) {
        let allowed = allowed_controls(field);
        let what = if allowed.is_empty() {
            "no control characters are allowed here"
        } else if allowed == TAB {
            "only a tab is allowed here: a Dockerfile `ENV` cannot hold a line break (set it in `deploy.env` instead)"
        } else {
            "only a tab and a line feed are allowed here"
        };
        if let Some((at, c)) = first_control(&raw.value, allowed) {
            let loc = self.loc_in(raw.loc, &raw.value, at, c.len_utf8());
            self.error(
                loc,
                format!("`{field}` contains the control character {}", describe(c)),
                what,
            );
            return;
        }
        let from_var = value.iter().find_map(|p| match p {
            Part::Lit(t) => first_control(t, allowed),
            Part::Secret(_) => None,
        });
        if let Some((_, c)) = from_var {
            self.error(
                raw.loc,
                format!(
                    "`{field}` gets the control character {} from a var",
                    describe(c)
                ),
                what,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_fields_take_which_control_characters() {
        for (field, allowed) in [
            ("description", LINES),
            ("steps.a.exec.run", LINES),
            ("steps.a.exec.undo", LINES),
            ("steps.a.exec.env.X", LINES),
            ("steps.a.deploy.env.X", LINES),
            ("steps.a.build.run", LINES),
            ("steps.a.build.cmd", LINES),
            ("steps.a.deploy.health.cmd", LINES),
            ("steps.a.deploy.files[0].content", LINES),
            ("steps.a.deploy.files[2].replace[1].find", LINES),
            ("steps.a.deploy.files[2].replace[0].with", LINES),
            ("steps.a.deploy.files[0].path", &[]),
            ("steps.a.deploy.files[0].owner", &[]),
            ("steps.a.build.env.X", TAB),
            ("steps.a.build.user", &[]),
            ("steps.a.build.workdir", &[]),
            ("steps.a.fetch.path", &[]),
            ("steps.a.dump.database", &[]),
            ("vendor.host", &[]),
            ("steps.a.b.exec.run", &[]),
        ] {
            assert_eq!(allowed_controls(field), allowed, "{field}");
        }
        assert_eq!(first_control("a\tb\nc", LINES), None);
        assert_eq!(first_control("a\tb\r\n", LINES), Some((3, '\r')));
        assert_eq!(first_control("ü\u{85}", &[]), Some((2, '\u{85}')));
        assert_eq!(describe('\n'), "U+000A (line feed)");
        assert_eq!(describe('\u{9b}'), "U+009B");
    }

    #[test]
    fn image_users_and_postgres_names() {
        for good in [
            "33",
            "33:33",
            "www-data",
            "www-data:staff",
            "_app",
            "nobody:65534",
        ] {
            assert!(is_image_user(good), "{good}");
        }
        for bad in [
            "",
            ":",
            "33:",
            ":33",
            "a:b:c",
            "a b",
            "$(id)",
            "-x",
            "it's",
            "0\nUSER 0",
        ] {
            assert!(!is_image_user(bad), "{bad}");
        }
        assert!(pg_database_problem("app_db-1").is_none());
        assert!(pg_database_problem("dbname=x host=y").is_some());
        assert!(pg_database_problem("postgresql://h/db").is_some());
    }
}
