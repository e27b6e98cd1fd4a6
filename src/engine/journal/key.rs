//! The journal's key: an HMAC-SHA256 over each line, so that someone with write access to
//! the state directory alone cannot rewrite a journal and recompute its chain.
//!
//! Owns [`JournalKey`] and the `mac` field's place in a line. Invariants: a keyed line
//! ends in `,"mac":"<64 hex>"}` and its MAC is over the same line without that field (the
//! bytes that [`super::Journal`] serialises first); the chain's `prev` is over the whole
//! line, MAC included. The key itself is never printed (its `Debug` is redacted) and the
//! library never looks for it: the CLI finds it and passes it in.

use std::fmt;

use hmac::{KeyInit as _, Mac as _};
use sha2::Sha256;

/// The field a keyed line ends with, up to its value.
const FIELD: &[u8] = b",\"mac\":\"";
/// Bytes of `,"mac":"<64 hex>"}`.
const SUFFIX_LEN: usize = FIELD.len() + 64 + 2;

/// A per-installation secret that authenticates journal lines.
#[derive(Clone, PartialEq, Eq)]
pub struct JournalKey([u8; 32]);

impl fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JournalKey(***)")
    }
}

impl JournalKey {
    /// A key of these 32 bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key written as 64 hex digits (as in a key file), if `text` is that.
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }

    /// The key as 64 lowercase hex digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        crate::digest::hex(&self.0)
    }

    /// Lowercase hex HMAC-SHA256 of `body`.
    #[must_use]
    pub fn mac(&self, body: &[u8]) -> String {
        crate::digest::hex(&self.raw_mac(body))
    }

    fn raw_mac(&self, body: &[u8]) -> Vec<u8> {
        let Ok(mut m) = hmac::Hmac::<Sha256>::new_from_slice(&self.0) else {
            // Unreachable: HMAC takes a key of any length.
            return Vec::new();
        };
        m.update(body);
        m.finalize().into_bytes().to_vec()
    }

    /// Whether `mac` (hex) is this key's MAC of `body`, compared in constant time.
    #[must_use]
    pub fn checks(&self, body: &[u8], mac: &str) -> bool {
        let Ok(mut m) = hmac::Hmac::<Sha256>::new_from_slice(&self.0) else {
            return false;
        };
        m.update(body);
        let Some(tag) = JournalKey::from_hex(mac) else {
            return false;
        };
        m.verify_slice(&tag.0).is_ok()
    }

    /// `body` (a JSON object's bytes) with its MAC appended as the last field.
    pub(super) fn seal(&self, body: &[u8]) -> Vec<u8> {
        let mac = self.mac(body);
        let mut line = body
            .get(..body.len().saturating_sub(1))
            .unwrap_or_default()
            .to_vec();
        line.extend_from_slice(FIELD);
        line.extend_from_slice(mac.as_bytes());
        line.extend_from_slice(b"\"}");
        line
    }
}

/// A line split into the bytes its MAC is over and the MAC, when it ends in one.
pub(super) fn unseal(line: &[u8]) -> Option<(Vec<u8>, String)> {
    let at = line.len().checked_sub(SUFFIX_LEN)?;
    let (body, suffix) = line.split_at(at);
    let mac = suffix.strip_prefix(FIELD)?.strip_suffix(b"\"}")?;
    if !mac.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut body = body.to_vec();
    body.push(b'}');
    Some((body, String::from_utf8_lossy(mac).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_unseals_to_its_body_and_checks() {
        let k = JournalKey::new([7; 32]);
        let body = br#"{"type":"note","kind":"k","text":"t","seq":1,"at":"x","prev":"p"}"#;
        let line = k.seal(body);
        assert!(line.ends_with(b"\"}"));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["kind"], "k");
        let (b, mac) = unseal(&line).unwrap();
        assert_eq!(b, body);
        assert!(k.checks(&b, &mac));
        assert!(!JournalKey::new([8; 32]).checks(&b, &mac));
        assert!(unseal(body).is_none());
        assert_eq!(JournalKey::from_hex(&k.to_hex()), Some(k.clone()));
        assert_eq!(format!("{k:?}"), "JournalKey(***)");
    }
}
