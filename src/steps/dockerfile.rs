//! The Dockerfile a `build` step sends to the engine, and the quoting that keeps every
//! playbook value inside the instruction it belongs to.
//!
//! Owns: the text of the generated Dockerfile. The engine reads it line by line; in
//! `COPY`, `WORKDIR`, `ENV` and `USER` it substitutes variables (`$X`, `${X}`) and removes
//! quotes and backslashes, even inside a `COPY` JSON array. So each such value is written
//! as one single-quoted word (`'...'`, a `'` inside as `'\''`), in which the engine's
//! lexer substitutes nothing and removes nothing: the value in the image is the
//! playbook's, byte for byte. `RUN` and `CMD` are JSON arrays (exec form), which the engine
//! neither substitutes nor unquotes. `FROM` takes an image reference (checked again
//! here: one ending in `\` would join the next line to it), `EXPOSE` numbers.
//!
//! Invariant: one instruction per line, always. A value that could end a line or join
//! two (a line break or any other control character, except a tab inside a quoted word
//! or an escaped one in JSON) is refused here, whatever validation let through, so no
//! value can add an instruction. Per-run labels go in as build options, not here: the
//! same artifacts and playbook give the same context, byte for byte.

use std::fmt::Write as _;

use crate::playbook::{Build, is_image_ref};

/// `s` as one Dockerfile word that the engine's lexer reads back as `s` exactly: the
/// engine's lexer follows the POSIX shell's quoting, so this is the shell's single-quoted
/// word (each `'` written as `'\''`: close, an escaped quote, reopen).
pub fn quote(s: &str) -> String {
    crate::shell::quote(s)
}

/// Refuses what a quoted word cannot carry on one line: control characters other than
/// a tab.
fn one_line(what: &str, s: &str) -> Result<(), String> {
    match s.chars().find(|c| c.is_control() && *c != '\t') {
        Some(c) => Err(format!(
            "{what} contains the control character U+{:04X}, which a Dockerfile line cannot carry",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// The generated Dockerfile.
///
/// # Errors
/// A value that would not stay on its line (see the module's invariant), or a name that
/// is not one (an `ENV` name, the base image).
pub fn dockerfile(b: &Build) -> Result<String, String> {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
    if !is_image_ref(&b.base) {
        return Err(format!("base image `{}` is not an image reference", b.base));
    }
    let mut d = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(d, "FROM {}", b.base);
    for (from, to) in &b.copy {
        let src = format!("ctx/{from}/");
        one_line("a `copy` source", &src)?;
        one_line("a `copy` destination", to)?;
        // The owner is checked like `user` (a name or id, `:` and a group): no quoting.
        let chown = match &b.owner {
            Some(o) => {
                one_line("`owner`", o)?;
                if !o
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b":_.-".contains(&c))
                {
                    return Err(format!("`{o}` is not a user for the image"));
                }
                format!("--chown={o} ")
            }
            None => String::new(),
        };
        let _ = writeln!(d, "COPY {chown}{}", json(&[quote(&src), quote(to)]));
    }
    for r in &b.run {
        let _ = writeln!(
            d,
            "RUN {}",
            json(&["/bin/sh".into(), "-c".into(), r.clone()])
        );
    }
    if let Some(w) = &b.workdir {
        one_line("`workdir`", w)?;
        let _ = writeln!(d, "WORKDIR {}", quote(w));
    }
    for (k, v) in &b.env {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{k}` is not an environment variable name"));
        }
        one_line(&format!("`env.{k}`"), v)?;
        let _ = writeln!(d, "ENV {k}={}", quote(v));
    }
    if let Some(u) = &b.user {
        one_line("`user`", u)?;
        let _ = writeln!(d, "USER {}", quote(u));
    }
    for p in &b.expose {
        let _ = writeln!(d, "EXPOSE {p}");
    }
    if let Some(c) = &b.cmd {
        let _ = writeln!(d, "CMD {}", json(c));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> Build {
        Build {
            base: "gov/php:8.2".into(),
            copy: vec![("code".into(), "/var/www".into())],
            run: vec!["a\nb".into()],
            user: Some("33".into()),
            owner: None,
            workdir: Some("/var/www".into()),
            env: [("A".to_string(), "x".to_string())].into(),
            cmd: Some(vec!["php".into(), "-S".into()]),
            expose: vec![8080],
            tag: None,
            allow_secrets_in: Vec::new(),
            omit: Vec::new(),
        }
    }

    #[test]
    fn each_value_is_one_quoted_word_on_its_own_line() {
        let mut b = build();
        b.env.insert("B".into(), "$HOME it's \\ \"q\"\t".into());
        assert_eq!(
            dockerfile(&b).expect("generates"),
            "FROM gov/php:8.2\n\
             COPY [\"'ctx/code/'\",\"'/var/www'\"]\n\
             RUN [\"/bin/sh\",\"-c\",\"a\\nb\"]\n\
             WORKDIR '/var/www'\n\
             ENV A='x'\n\
             ENV B='$HOME it'\\''s \\ \"q\"\t'\n\
             USER '33'\n\
             EXPOSE 8080\n\
             CMD [\"php\",\"-S\"]\n"
        );
    }

    #[test]
    fn a_value_that_would_leave_its_line_is_refused() {
        for bad in ["65534\nUSER 0", "a\rb", "a\u{0}", "a\u{85}b", "x\u{1b}[2J"] {
            let mut b = build();
            b.user = Some(bad.into());
            assert!(dockerfile(&b).is_err(), "{bad:?}");
            let mut b = build();
            b.workdir = Some(format!("/w/{bad}"));
            assert!(dockerfile(&b).is_err(), "{bad:?}");
            let mut b = build();
            b.env.insert("V".into(), bad.into());
            assert!(dockerfile(&b).is_err(), "{bad:?}");
            let mut b = build();
            b.copy = vec![("code".into(), format!("/w/{bad}"))];
            assert!(dockerfile(&b).is_err(), "{bad:?}");
        }
        let mut b = build();
        b.env.insert("A B".into(), "x".into());
        assert!(dockerfile(&b).is_err());
        for base in ["x\nRUN id", "gov/php:8.2 \\", "\\\\"] {
            let mut b = build();
            b.base = base.into();
            assert!(dockerfile(&b).is_err(), "{base:?}");
        }
    }
}
