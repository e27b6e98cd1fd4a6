//! Showing text that came from outside (a vendor host, a container, an engine) to a
//! person: on the terminal, in log lines and in Markdown.
//!
//! Owns [`controls`], the one function every such place uses. Invariant: its output holds
//! no control character but tab (no ESC, CR, BEL, DEL, C1 controls, and no line breaks,
//! so one line stays one line): a vendor's file name cannot rewrite the operator's
//! terminal title, erase a line or print a fake `finished: succeeded`. Printable UTF-8 is
//! kept as it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with each control character but tab written as an escape: `\e` for ESC, `\r`,
/// `\n`, `\0`, else `\u{XX}`; a backslash is kept as it is. Borrowed when nothing needs
/// escaping.
#[must_use]
pub fn controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\x1b' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\0' => out.push_str("\\0"),
            c if needs(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs(c: char) -> bool {
    c != '\t' && c.is_control()
}

#[cfg(test)]
mod tests {
    use super::controls;

    #[test]
    fn escapes_every_control_but_tab_and_keeps_printable_utf8() {
        let s = "a\x1b]0;pwned\x07b\x1b[2K\rfinished: succeeded\n\u{9b}c\td\u{7f} é 漢";
        let e = controls(s);
        assert!(!e.chars().any(|c| c.is_control() && c != '\t'), "{e}");
        assert_eq!(
            e,
            "a\\e]0;pwned\\u{7}b\\e[2K\\rfinished: succeeded\\n\\u{9b}c\td\\u{7f} é 漢"
        );
        assert!(matches!(controls("plain é"), std::borrow::Cow::Borrowed(_)));
    }
}
