//! Secret values: [`Secret`], a value that never prints, and [`SecretStore`], the values
//! loaded for a run by name.
//!
//! Invariant: a [`Secret`]'s Debug, Display and Serialize print `***`; its value is only
//! reachable through [`Secret::expose`], and it is wiped from memory when dropped. Where
//! the values come from is the playbook's business (`playbook::load_secrets`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use zeroize::Zeroizing;

/// A secret value. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value, for handing to an API or a channel. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// Loaded secret values by name.
#[derive(Debug, Default, Clone)]
pub struct SecretStore {
    values: BTreeMap<String, Secret>,
}

impl SecretStore {
    /// The value of a secret.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name)
    }

    /// Every loaded value (for scrubbing output: a run replaces them with `***`).
    pub fn values(&self) -> impl Iterator<Item = &Secret> {
        self.values.values()
    }

    /// Every loaded value with its name (for scanning files for them).
    pub fn named(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.values.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Adds (or replaces) a value.
    pub fn insert(&mut self, name: String, value: Secret) {
        self.values.insert(name, value);
    }

    /// A store with the given values (tests and fakes).
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k, Secret::new(v)))
                .collect(),
        }
    }
}
