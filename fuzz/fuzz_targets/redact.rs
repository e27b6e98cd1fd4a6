//! Fuzz target: the `Redactor` (`boyong::engine::redact`) on arbitrary secrets and text.
//!
//! After redaction no secret value is left in the text, nor any line of a secret of
//! several lines that is `MIN_LINE` characters or longer once trimmed; a text that holds
//! none of them is left as it was. (A value that contains `*` is not checked: `***`
//! written for one secret may spell it.)
#![no_main]

use boyong::engine::Redactor;
use boyong::engine::redact::MIN_LINE;
use boyong::secret::SecretStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<String>, String)| {
    let (secrets, text) = input;
    let store = SecretStore::from_pairs(
        secrets
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("s{i}"), s.clone())),
    );
    let r = Redactor::new(&store);
    let out = r.text(&text);
    let mut needles: Vec<&str> = Vec::new();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        needles.push(s);
        if s.contains(['\n', '\r']) {
            needles.extend(
                s.split(['\n', '\r'])
                    .map(str::trim)
                    .filter(|l| l.chars().count() >= MIN_LINE),
            );
        }
    }
    for n in needles.iter().filter(|n| !n.contains('*')) {
        assert!(!out.contains(n), "{n:?} is still in {out:?}");
    }
    if !needles.iter().any(|n| text.contains(n)) {
        assert_eq!(out, text);
    }
    assert_eq!(
        r.value(&serde_json::Value::String(text.clone())),
        serde_json::Value::String(out)
    );
});
