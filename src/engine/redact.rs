//! Redaction: secret values out of every text a run writes or shows.
//!
//! Owns: [`Redactor`], built from the run's `SecretStore`, through which every change,
//! fact, error, note and output line passes before it reaches the journal, an event, the
//! terminal or `log.jsonl`.
//!
//! A secret is hidden wherever its whole value appears. A secret of several lines (a PEM
//! key, a certificate chain) is also hidden line by line, because output reaches the
//! redactor a line at a time (a command's output, a dump tool's messages) or with its lines
//! joined (` / ` in an error): each of its lines that is at least [`MIN_LINE`] characters
//! long, once its surrounding blanks are trimmed, is hidden on its own. Shorter lines (`}`,
//! `--`, an empty one) are left: hiding them would hide ordinary output everywhere, and
//! they give away at most three characters of the secret.
//!
//! Invariant: the longest value is replaced first, so a value that contains another (a
//! whole secret and its lines) is hidden whole, as one `***`.

use serde_json::Value;

use crate::secret::SecretStore;

/// The shortest line of a multi-line secret that is hidden on its own, in characters.
pub const MIN_LINE: usize = 4;

/// Replaces every secret value (and every line of [`MIN_LINE`] characters or more of a
/// secret of several lines) in a text by `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// A redactor for every value in `store` (empty values are ignored).
    pub fn new(store: &SecretStore) -> Self {
        let mut values: Vec<String> = Vec::new();
        for secret in store.values() {
            let v = secret.expose();
            if v.is_empty() {
                continue;
            }
            values.push(v.to_string());
            if v.contains(['\n', '\r']) {
                values.extend(
                    v.split(['\n', '\r'])
                        .map(str::trim)
                        .filter(|l| l.chars().count() >= MIN_LINE)
                        .map(str::to_string),
                );
            }
        }
        // Longest first, so a secret that contains another is hidden whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    /// `text` with every secret value replaced by `***`.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// `value` with every string in it redacted.
    pub fn value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.value(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// `value` with every string value in it redacted, its keys as they are: for a value
    /// read back as a type afterwards (a secret that happens to be part of a field name
    /// must not rename the field).
    pub fn values(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.values(v)).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), self.values(v))).collect())
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_of_several_lines_is_redacted_line_by_line() {
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\r\n  abc\nxq9+Kp0c  \n-----END KEY-----\n";
        let r = Redactor::new(&SecretStore::from_pairs([(
            "k".to_string(),
            key.to_string(),
        )]));
        // Whole, and each line on its own (as exec output comes, or joined by ` / `).
        assert_eq!(r.text(&format!("key: {key}.")), "key: ***.");
        assert_eq!(
            r.text("a / MIIEvQIBADANBgkq / xq9+Kp0c / -----END KEY-----"),
            "a / *** / *** / ***"
        );
        assert_eq!(
            r.text("  xq9+Kp0c"),
            "  ***",
            "a line is found without its blanks"
        );
        // A line shorter than four characters is too common to hide alone.
        assert_eq!(r.text("abc"), "abc");
    }

    #[test]
    fn a_secret_inside_another_is_hidden_whole_and_values_inside_json_too() {
        let r = Redactor::new(&SecretStore::from_pairs([
            ("a".to_string(), "hunter2".to_string()),
            ("b".to_string(), "xhunter2x".to_string()),
            ("c".to_string(), String::new()),
        ]));
        assert_eq!(r.text("[xhunter2x] [hunter2]"), "[***] [***]");
        assert_eq!(
            r.value(&serde_json::json!({"k hunter2": ["hunter2", 1]})),
            serde_json::json!({"k ***": ["***", 1]})
        );
    }
}
