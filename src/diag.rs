//! Diagnostics about a user's input, rendered like rustc's.
//!
//! Owns: [`Diagnostic`] (one problem at one place), [`Loc`] (a 1-based line and column
//! with a length to underline), and [`render`], which turns a file's diagnostics into the
//! text an operator reads: the message, `--> file:line:col`, the line itself and a caret.
//! Invariant: rendering never fails and never panics, whatever the text or location
//! (out-of-range lines, tabs, very long lines, non-ASCII text).

use std::fmt::Write as _;

/// A place in a source file: 1-based line and column (in characters), and how many
/// characters to underline (at least one is drawn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Loc {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
    /// Characters to underline; 0 draws a single caret.
    pub len: u32,
}

impl Loc {
    /// A location with no underline length.
    pub const fn at(line: u32, col: u32) -> Self {
        Self { line, col, len: 0 }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input is refused.
    Error,
    /// The input is accepted, but something needs the operator's attention.
    Warning,
}

/// One problem found in an input file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one line.
    pub message: String,
    /// Where, when the problem has a place in the file.
    pub loc: Option<Loc>,
    /// A short note printed under the caret: usually what was expected.
    pub label: Option<String>,
    /// Further lines printed as `= help: ...`.
    pub help: Vec<String>,
    /// The underlined text is a secret written inline: it is shown as `*`s.
    pub mask: bool,
}

impl Diagnostic {
    /// An error at a place.
    pub fn error(loc: Option<Loc>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            loc,
            label: None,
            help: Vec::new(),
            mask: false,
        }
    }

    /// A warning at a place.
    pub fn warning(loc: Option<Loc>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(loc, message)
        }
    }

    /// Adds the note printed under the caret.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a `help:` line.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    /// Hides the underlined text when the source line is shown (an inline secret).
    #[must_use]
    pub fn masked(mut self) -> Self {
        self.mask = true;
        self
    }

    /// Adds `did you mean ...?` when a close candidate exists.
    #[must_use]
    pub fn did_you_mean<'a>(
        self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        match suggest(word, candidates) {
            Some(s) => self.help(format!("did you mean `{s}`?")),
            None => self,
        }
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lc = word.to_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for cand in candidates {
        if cand == word {
            continue;
        }
        let dist = strsim::damerau_levenshtein(&word_lc, &cand.to_lowercase());
        let limit = (cand.chars().count().max(word.chars().count()) / 3).max(1);
        let jw = strsim::jaro_winkler(&word_lc, &cand.to_lowercase());
        let close = dist <= limit || jw >= 0.88;
        if close && best.is_none_or(|(s, _)| jw > s) {
            best = Some((jw, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// Renders diagnostics of one file as rustc does: message, `--> file:line:col`, the
/// source line and a caret with the label, then `= help:` lines.
pub fn render(file: &str, source: &str, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        render_one(&mut out, file, source, d);
        out.push('\n');
    }
    out
}

fn render_one(out: &mut String, file: &str, source: &str, d: &Diagnostic) {
    let kind = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let _ = writeln!(out, "{kind}: {}", d.message);
    let Some(loc) = d.loc else {
        let _ = writeln!(out, "  --> {file}");
        for h in &d.help {
            let _ = writeln!(out, "   = help: {h}");
        }
        return;
    };
    let line_no = loc.line.max(1);
    let width = line_no.to_string().len();
    let pad = " ".repeat(width);
    let _ = writeln!(out, "{pad}--> {file}:{line_no}:{}", loc.col.max(1));
    let line = source
        .lines()
        .nth((line_no - 1) as usize)
        .unwrap_or_default();
    let line = if d.mask {
        let start = loc.col.max(1) as usize - 1;
        let end = start + loc.len.max(1) as usize;
        line.chars()
            .enumerate()
            .map(|(i, c)| if (start..end).contains(&i) { '*' } else { c })
            .collect::<String>()
    } else {
        line.to_string()
    };
    let (shown, caret_at) = visible_window(&line, loc.col.max(1) as usize - 1);
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{line_no} | {shown}");
    let carets = "^".repeat(loc.len.clamp(1, 80) as usize);
    let label = d
        .label
        .as_deref()
        .map(|l| format!(" {l}"))
        .unwrap_or_default();
    let _ = writeln!(out, "{pad} | {}{carets}{label}", " ".repeat(caret_at));
    for h in &d.help {
        let _ = writeln!(out, "{pad} = help: {h}");
    }
}

/// The part of `line` to show (tabs expanded, at most ~120 characters around `col`)
/// and the caret's offset inside it.
fn visible_window(line: &str, col: usize) -> (String, usize) {
    const WIDTH: usize = 120;
    let chars: Vec<char> = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let col = col.min(chars.len());
    let start = col.saturating_sub(WIDTH / 2);
    let end = (start + WIDTH).min(chars.len());
    let mut shown: String = chars[start..end].iter().collect();
    let mut caret = col - start;
    if start > 0 {
        shown.insert(0, '…');
        caret += 1;
    }
    if end < chars.len() {
        shown.push('…');
    }
    (shown, caret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_column() {
        let src = "a: 1\nvendor:\n  hots: x\n";
        let d = Diagnostic::error(
            Some(Loc {
                line: 3,
                col: 3,
                len: 4,
            }),
            "unknown field `hots`",
        )
        .label("expected one of host, port")
        .did_you_mean("hots", ["host", "port"]);
        let text = render("p.yml", src, &[d]);
        assert!(text.contains("--> p.yml:3:3"), "{text}");
        assert!(text.contains("3 |   hots: x"), "{text}");
        assert!(
            text.contains("  |   ^^^^ expected one of host, port"),
            "{text}"
        );
        assert!(text.contains("did you mean `host`?"), "{text}");
    }

    #[test]
    fn masked_text_is_hidden() {
        let src = "vendor:\n  password: hunter2\n";
        let d = Diagnostic::error(
            Some(Loc {
                line: 2,
                col: 13,
                len: 7,
            }),
            "inline",
        )
        .masked();
        let text = render("p.yml", src, &[d]);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("password: *******"), "{text}");
    }

    #[test]
    fn out_of_range_locations_do_not_panic() {
        let d = Diagnostic::error(Some(Loc::at(99, 500)), "x");
        let text = render("p.yml", "short\n", &[d]);
        assert!(text.contains("p.yml:99:500"));
        let d = Diagnostic::error(Some(Loc::at(0, 0)), "y");
        assert!(render("p.yml", "", &[d]).contains("p.yml:1:1"));
    }

    #[test]
    fn long_lines_are_windowed() {
        let line = "x".repeat(5000);
        let d = Diagnostic::error(Some(Loc::at(1, 4000)), "z");
        let text = render("p.yml", &line, &[d]);
        assert!(text.lines().all(|l| l.chars().count() < 200), "{text}");
    }

    #[test]
    fn suggestions_only_for_close_words() {
        assert_eq!(suggest("hots", ["host", "port", "user"]), Some("host"));
        assert_eq!(suggest("fetchh", ["fetch", "dump"]), Some("fetch"));
        assert_eq!(suggest("zzzzzz", ["fetch", "dump"]), None);
        assert_eq!(
            suggest("knwon_hosts", ["known_hosts", "host"]),
            Some("known_hosts")
        );
    }
}
