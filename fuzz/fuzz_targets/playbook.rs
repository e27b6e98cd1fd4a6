//! Fuzz target: `boyong::playbook::parse` on arbitrary bytes.
//!
//! The parser promises never to panic whatever the bytes (src/playbook/mod.rs), and
//! `diag::render` promises never to panic whatever the text or location (src/diag.rs).
//! When a playbook validates, its offline plan is built and serialised too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = boyong::playbook::parse(std::path::Path::new("fuzz.yml"), data);
    if let Some(playbook) = &loaded.playbook {
        // `playbook` is Some only when no diagnostic is an error.
        assert!(!loaded.has_errors(), "a playbook was returned together with errors");
        let plan = boyong::steps::plan(playbook);
        let json = serde_json::to_string(&plan).expect("a plan serialises to JSON");
        assert!(!json.is_empty());
    }
    let text = boyong::diag::render("fuzz.yml", &loaded.text, &loaded.diagnostics);
    assert_eq!(text.is_empty(), loaded.diagnostics.is_empty());
});
