//! Shell quoting for command lines run on another host.
//!
//! Invariant: [`quote`] turns any text into exactly one word of a POSIX shell, whatever
//! it holds (spaces, quotes, `$`, backticks, newlines, a leading dash is left to the
//! command's own `--`).

/// `text` as one single-quoted shell word: `it's` becomes `'it'\''s'`.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;
    use std::process::Command;

    #[test]
    fn every_text_comes_back_as_one_word() {
        for text in [
            "",
            "plain",
            "two words",
            "it's",
            "'''",
            "$(touch /tmp/boyong-pwned) `id` $HOME ; rm -rf / && x || y",
            "-rf",
            "new\nline\ttab",
            "back\\slash \\' mixed",
            "ünïcödé ꦧꦺꦴꦪꦺꦴꦁ 🚚",
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(text)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{text:?}");
        }
    }
}
