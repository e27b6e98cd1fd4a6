//! The report as Markdown: readable as plain text in a terminal, and as a page in any
//! Markdown viewer. Every text from the run is escaped, so nothing in a step's command
//! or an error becomes markup (or raw HTML) in a viewer, and no control character from a
//! vendor or a container (a terminal escape) is written raw.

use std::fmt::Write as _;

use super::Report;
use super::layout::{Block, Cell, Section, sections};

/// Escapes Markdown's active characters (and raw HTML's `<`, `&`) with backslashes;
/// line breaks become spaces, so a text stays in its table cell; every other control
/// character but tab is written as `crate::escape::controls` writes it (`\e`, `\u{7}`),
/// so a vendor's name cannot reach a terminal that shows the report raw.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() && c != '\t' => {
                out.push_str(&escape(&crate::escape::controls(
                    c.encode_utf8(&mut [0; 4]),
                )));
            }
            _ => out.push(ch),
        }
    }
    out
}

fn cell(c: &Cell) -> String {
    match c {
        Cell::Text(s) | Cell::Good(s) => escape(s),
        // A code span cannot hold a backtick or a line break safely: plain text then.
        Cell::Code(s) if s.contains('`') || s.contains('|') || s.chars().any(char::is_control) => {
            escape(s)
        }
        Cell::Code(s) => format!("`{s}`"),
        Cell::Bad(s) => format!("**{}**", escape(s)),
    }
}

fn cells(cs: &[Cell]) -> String {
    cs.iter().map(cell).collect()
}

fn section(out: &mut String, s: &Section) {
    let _ = writeln!(out, "## {}\n", s.title);
    for b in &s.blocks {
        match b {
            Block::Para(cs) => {
                let _ = writeln!(out, "{}\n", cells(cs));
            }
            Block::Sub(cs) => {
                let _ = writeln!(out, "### {}\n", cells(cs).trim_end());
            }
            Block::Chart(_) => {}
            Block::Table(t) => {
                if t.rows.is_empty() {
                    out.push_str("(none)\n\n");
                    continue;
                }
                let head: Vec<&str> = t
                    .head
                    .iter()
                    .map(|h| if h.is_empty() { " " } else { h })
                    .collect();
                let _ = writeln!(out, "| {} |", head.join(" | "));
                let _ = writeln!(out, "|{}", " --- |".repeat(head.len()));
                for row in &t.rows {
                    let row: Vec<String> = row.iter().map(|c| cells(c)).collect();
                    let _ = writeln!(out, "| {} |", row.join(" | "));
                }
                out.push('\n');
            }
        }
    }
}

/// The report as Markdown.
#[must_use]
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Migration report: `{}`, run `{}`\n",
        escape(&r.app),
        escape(&r.run)
    );
    let _ = writeln!(out, "**Verdict: {}**\n", escape(&r.verdict.summary));
    if !r.verdict.journal_intact {
        let _ = writeln!(
            out,
            "> **JOURNAL BROKEN**: {}. Keep a copy of the run directory for the auditors before anything else.\n",
            escape(
                r.journal
                    .problem
                    .as_deref()
                    .unwrap_or("the chain does not verify")
            )
        );
    }
    for s in sections(r) {
        section(&mut out, &s);
    }
    let _ = writeln!(
        out,
        "---\nboyong report format {}: made from the run directory alone; digests computed when the report was made.",
        r.format
    );
    out
}

#[cfg(test)]
mod tests {
    use super::{Cell, cell};

    #[test]
    fn control_characters_from_a_vendor_are_never_written_raw() {
        let name = "title\x1b]0;pwned\x07 \x1b[2K\rfinished: succeeded";
        for c in [
            Cell::Text(name.into()),
            Cell::Code(name.into()),
            Cell::Bad(name.into()),
        ] {
            let md = cell(&c);
            assert!(!md.chars().any(char::is_control), "{md:?}");
            assert!(md.contains("\\\\e\\]0;pwned\\\\u{7}"), "{md}");
        }
    }
}
