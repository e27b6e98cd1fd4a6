//! `{{ vars.NAME }}` interpolation.
//!
//! Owns: scanning a string for `{{ ... }}` references ([`scan`]), and [`Template`], a
//! string whose secret parts stay references until a run needs them. Invariant: a
//! template's Display, Debug and Serialize never show a secret's value, only `***` (or,
//! inside [`with_secret_names`], the secret's name: which secret, never its value).

use std::fmt;

use serde::{Serialize, Serializer};

use crate::secret::{Secret, SecretStore};

/// A piece of a scanned string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Lit(String),
    /// `{{ vars.NAME }}`: the name and the piece's byte offset and length in the string.
    Var {
        /// The variable's name.
        name: String,
        /// Byte offset of `{{` in the string.
        offset: usize,
        /// Byte length of the whole reference.
        len: usize,
    },
}

/// A malformed reference: what is wrong, and where in the string (byte offset, length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// What was expected.
    pub message: String,
    /// Byte offset in the string.
    pub offset: usize,
    /// Byte length of the bad part.
    pub len: usize,
}

/// Splits a string into literal text and `{{ vars.NAME }}` references.
pub fn scan(text: &str) -> Result<Vec<Piece>, ScanError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut base = 0;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Lit(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ScanError {
                message: "`{{` is not closed: expected `{{ vars.NAME }}`".into(),
                offset: base + start,
                len: 2,
            });
        };
        let inner = after[..end].trim();
        let len = end + 4;
        let name = inner.strip_prefix("vars.").filter(|n| is_var_name(n));
        let Some(name) = name else {
            return Err(ScanError {
                message: format!(
                    "`{{{{ {inner} }}}}` is not a reference boyong knows: expected `{{{{ vars.NAME }}}}`"
                ),
                offset: base + start,
                len,
            });
        };
        pieces.push(Piece::Var {
            name: name.to_owned(),
            offset: base + start,
            len,
        });
        base += start + len;
        rest = &rest[start + len..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Lit(rest.to_owned()));
    }
    Ok(pieces)
}

/// A variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters.
pub fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

/// A part of a resolved template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text, with plain variables already substituted.
    Lit(String),
    /// A reference to the secret of this name.
    Secret(String),
}

/// A string that may contain secrets: shown as `***`, resolved only for use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template(pub Vec<Part>);

impl Template {
    /// A template of plain text.
    pub fn text(s: impl Into<String>) -> Self {
        Self(vec![Part::Lit(s.into())])
    }

    /// A template that is exactly one secret.
    pub fn secret(name: impl Into<String>) -> Self {
        Self(vec![Part::Secret(name.into())])
    }

    /// The names of the secrets it uses.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Secret(n) => Some(n.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// True when the value is exactly one secret and nothing else.
    pub fn is_only_secret(&self) -> bool {
        matches!(self.0.as_slice(), [Part::Secret(_)])
    }

    /// The value with every secret filled in, for handing to an API (never for printing).
    pub fn resolve(&self, store: &SecretStore) -> Result<Secret, String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Secret(n) => out.push_str(
                    store
                        .get(n)
                        .ok_or_else(|| format!("secret `{n}` is not loaded"))?
                        .expose(),
                ),
            }
        }
        Ok(Secret::new(out))
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            match p {
                Part::Lit(s) => f.write_str(s)?,
                Part::Secret(_) => f.write_str("***")?,
            }
        }
        Ok(())
    }
}

thread_local! {
    /// Whether templates serialise each secret by its name ([`with_secret_names`]).
    static SECRET_NAMES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every template serialising each secret part as `{{ secret NAME }}`, its
/// identity (never its value) instead of `***`: to tell which secret a field uses, e.g.
/// when a resumed run compares the steps of an edited playbook.
pub fn with_secret_names<T>(f: impl FnOnce() -> T) -> T {
    let before = SECRET_NAMES.with(|c| c.replace(true));
    let out = f();
    SECRET_NAMES.with(|c| c.set(before));
    out
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if SECRET_NAMES.with(std::cell::Cell::get) {
            let mut out = String::new();
            for p in &self.0 {
                match p {
                    Part::Lit(l) => out.push_str(l),
                    Part::Secret(n) => {
                        out.push_str("{{ secret ");
                        out.push_str(n);
                        out.push_str(" }}");
                    }
                }
            }
            return s.serialize_str(&out);
        }
        s.collect_str(self)
    }
}

/// A template read back from a plan is its shown text: secrets stay `***`. A plan read
/// back is for reading (stale checks, status, reports); a run resolves the playbook again.
impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_references() {
        let p = scan("a {{ vars.x }}b{{vars.y_2}}").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[1],
            Piece::Var {
                name: "x".into(),
                offset: 2,
                len: 12
            }
        );
        assert_eq!(
            p[3],
            Piece::Var {
                name: "y_2".into(),
                offset: 15,
                len: 12
            }
        );
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in [
            "{{ vars.x",
            "{{ env.X }}",
            "{{ vars. }}",
            "{{ vars.a-b }}",
            "{{}}",
        ] {
            assert!(scan(bad).is_err(), "{bad}");
        }
        let e = scan("ab {{ foo }}").expect_err("bad");
        assert_eq!((e.offset, e.len), (3, 9));
    }

    #[test]
    fn secrets_are_redacted() {
        let t = Template(vec![Part::Lit("pw=".into()), Part::Secret("db".into())]);
        assert_eq!(t.to_string(), "pw=***");
        assert_eq!(serde_json::to_string(&t).unwrap_or_default(), "\"pw=***\"");
    }
}
