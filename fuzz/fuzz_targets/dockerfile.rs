//! Fuzz target: the Dockerfile generator (`boyong::steps::dockerfile`) on arbitrary
//! `build` values.
//!
//! Whatever the values, the generator either refuses them (only for a control character
//! other than a tab where a quoted word goes, an `ENV` name that is not one, or a base
//! that is not an image reference) or writes one instruction per line, in the order of the step's
//! fields; each quoted word reads back as its value through a model of the engine's word
//! lexer (quotes, backslashes, `$` substitution: moby/buildkit `shell.Lex.ProcessWord`),
//! and each JSON array is the step's own.
#![no_main]

use std::collections::BTreeMap;

use boyong::playbook::Build;
use boyong::steps::dockerfile::dockerfile;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn build(u: &mut Unstructured) -> Result<Build> {
    let short = |u: &mut Unstructured| -> Result<Vec<String>> {
        let n = u.int_in_range(0..=3)?;
        (0..n).map(|_| u.arbitrary::<String>()).collect()
    };
    let mut env = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=3)? {
        // Mostly good names, sometimes anything.
        let k: String = if u.ratio(1, 8)? {
            u.arbitrary()?
        } else {
            format!("V{}", u.int_in_range(0..=99u8)?)
        };
        env.insert(k, u.arbitrary()?);
    }
    let copy = short(u)?
        .into_iter()
        .enumerate()
        .map(|(i, to)| (format!("step{i}"), to))
        .collect();
    Ok(Build {
        base: if u.ratio(1, 8)? {
            u.arbitrary()?
        } else {
            "gov/php:8.2".into()
        },
        copy,
        run: short(u)?,
        user: u.arbitrary()?,
        owner: u.arbitrary()?,
        workdir: u.arbitrary()?,
        env,
        cmd: u.arbitrary()?,
        expose: u.arbitrary()?,
        tag: None,
    })
}

/// One Dockerfile word as the engine's lexer reads it, with no variable set; `None` when
/// it would not be read as one word, unchanged (a `$` substituted, a blank outside
/// quotes, an unclosed quote).
fn lex(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '$' => return None,
                    '\\' => match chars.next()? {
                        c @ ('$' | '"' | '\\') => out.push(c),
                        c => {
                            out.push('\\');
                            out.push(c);
                        }
                    },
                    c => out.push(c),
                }
            },
            '\\' => out.push(chars.next()?),
            '$' => return None,
            c if c.is_whitespace() => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Whether a quoted word of this value may be refused: it holds a control character
/// that no Dockerfile line can carry.
fn unwritable(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\t')
}

fn json(rest: &str) -> Vec<String> {
    serde_json::from_str(rest).expect("a JSON array of strings")
}

fuzz_target!(|data: &[u8]| {
    let Ok(b) = build(&mut Unstructured::new(data)) else {
        return;
    };
    let text = match dockerfile(&b) {
        Ok(t) => t,
        Err(_) => {
            let bad_name = b
                .env
                .keys()
                .any(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            let bad_base = !boyong::playbook::is_image_ref(&b.base);
            let bad_value = b.copy.iter().any(|(_, to)| unwritable(to))
                || b.workdir.as_deref().is_some_and(unwritable)
                || b.user.as_deref().is_some_and(unwritable)
                || b.env.values().any(|v| unwritable(v));
            assert!(bad_name || bad_base || bad_value, "refused a writable build: {b:?}");
            return;
        }
    };
    assert!(text.ends_with('\n') && !text.contains('\r'));
    let mut lines = text.lines();
    let mut next = |keyword: &str| -> String {
        let line = lines.next().unwrap_or_else(|| panic!("no {keyword} line:\n{text}"));
        assert!(!line.ends_with('\\'), "a line that continues: {line:?}");
        line.strip_prefix(keyword)
            .and_then(|l| l.strip_prefix(' '))
            .unwrap_or_else(|| panic!("expected {keyword}, found {line:?}"))
            .to_string()
    };
    assert_eq!(next("FROM"), b.base);
    for (from, to) in &b.copy {
        let words = json(&next("COPY"));
        assert_eq!(words.len(), 2);
        assert_eq!(lex(&words[0]).as_deref(), Some(format!("ctx/{from}/").as_str()));
        assert_eq!(lex(&words[1]).as_deref(), Some(to.as_str()));
    }
    for r in &b.run {
        assert_eq!(json(&next("RUN")), ["/bin/sh".to_string(), "-c".into(), r.clone()]);
    }
    if let Some(w) = &b.workdir {
        assert_eq!(lex(&next("WORKDIR")).as_deref(), Some(w.as_str()));
    }
    for (k, v) in &b.env {
        let line = next("ENV");
        let (name, word) = line.split_once('=').expect("ENV K=V");
        assert_eq!(name, k);
        assert_eq!(lex(word).as_deref(), Some(v.as_str()), "{line:?}");
    }
    if let Some(u) = &b.user {
        assert_eq!(lex(&next("USER")).as_deref(), Some(u.as_str()));
    }
    for p in &b.expose {
        assert_eq!(next("EXPOSE"), p.to_string());
    }
    if let Some(c) = &b.cmd {
        assert_eq!(&json(&next("CMD")), c);
    }
    assert_eq!(lines.next(), None, "more lines than instructions:\n{text}");
});
