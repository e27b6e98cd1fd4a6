//! A playbook's secrets: where they come from ([`SecretSource`], [`SecretDef`]) and
//! loading them into a [`SecretStore`] for a run ([`load_secrets`]). The values' type is
//! [`crate::secret`]'s.
//!
//! Loading reads environment variables through a lookup function given by the caller
//! (the library never reads the process environment itself) and files relative to the
//! playbook.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diag::{Diagnostic, Loc};
use crate::secret::{Secret, SecretStore};

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// An environment variable of the operator's shell.
    Env(String),
    /// A file (resolved against the playbook's folder).
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(n) => write!(f, "env {n}"),
            Self::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

/// A declared secret: its source, and where the playbook declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretDef {
    /// Where the value comes from.
    pub source: SecretSource,
    /// Where it is declared.
    #[serde(skip)]
    pub loc: Loc,
}

/// The largest secret file read.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Loads every declared secret. Missing ones come back as diagnostics (the caller
/// decides whether they are errors or warnings); the store holds what was found.
pub fn load_secrets(
    defs: &BTreeMap<String, SecretDef>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (SecretStore, Vec<Diagnostic>) {
    let mut store = SecretStore::default();
    let mut problems = Vec::new();
    for (name, def) in defs {
        match read_source(&def.source, env) {
            Ok(v) => {
                store.insert(name.clone(), Secret::new(v));
            }
            Err(why) => problems.push(
                Diagnostic::error(Some(def.loc), format!("secret `{name}` is not set: {why}"))
                    .label(format!("declared here ({})", def.source))
                    .help(match &def.source {
                        SecretSource::Env(v) => format!("export {v}=... in the shell that runs boyong (never on the command line of another host)"),
                        SecretSource::File(p) => format!("create {} with the value, readable only by you (chmod 600)", p.display()),
                    }),
            ),
        }
    }
    (store, problems)
}

fn read_source(src: &SecretSource, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    match src {
        SecretSource::Env(var) => match env(var) {
            Some(v) if !v.is_empty() => Ok(v),
            Some(_) => Err(format!("environment variable {var} is empty")),
            None => Err(format!("environment variable {var} is not set")),
        },
        SecretSource::File(path) => read_secret_file(path),
    }
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    let bytes = super::local_file::read_regular(path, MAX_SECRET_FILE).map_err(|e| match e {
        super::LocalFileError::TooLarge { .. } => {
            format!("{} is larger than 64 KiB", path.display())
        }
        other => other.to_string(),
    })?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(text)
}

/// Warnings about how secret files are kept (e.g. readable by other users).
pub fn file_permission_warnings(defs: &BTreeMap<String, SecretDef>) -> Vec<Diagnostic> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = Vec::new();
    for (name, def) in defs {
        if let SecretSource::File(p) = &def.source
            && let Ok(meta) = std::fs::metadata(p)
        {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push(
                    Diagnostic::warning(
                        Some(def.loc),
                        format!(
                            "secret file of `{name}` is readable by other users (mode {mode:o})"
                        ),
                    )
                    .help(format!("chmod 600 {}", p.display())),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?} {s:#?}"), "*** *** ***");
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn loads_env_and_files_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = dir.path().join("key");
        std::fs::write(&f, "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        let mut defs = BTreeMap::new();
        let def = |source| SecretDef {
            source,
            loc: Loc::at(3, 5),
        };
        defs.insert("a".to_string(), def(SecretSource::Env("A_PW".into())));
        defs.insert("b".to_string(), def(SecretSource::File(f)));
        defs.insert("c".to_string(), def(SecretSource::Env("MISSING".into())));
        defs.insert(
            "d".to_string(),
            def(SecretSource::File(dir.path().join("nope"))),
        );
        let env = |k: &str| (k == "A_PW").then(|| "pw".to_string());
        let (store, problems) = load_secrets(&defs, &env);
        assert_eq!(store.get("a").map(Secret::expose), Some("pw"));
        assert_eq!(store.get("b").map(Secret::expose), Some("s3cret"));
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("`c`") && problems[0].message.contains("MISSING"));
        assert_eq!(problems[1].loc, Some(Loc::at(3, 5)));
    }
}
