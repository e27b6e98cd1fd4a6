//! The report as one self-contained HTML page: inline CSS, no script, no external
//! resource (it opens the same offline, in an archive, years later), printable. Every
//! text from the run is escaped; the verdict is the first thing on the page.

use std::fmt::Write as _;

use super::Report;
use super::layout::{Block, Cell, Section, sections};

/// Escapes the five characters HTML gives meaning to, in text and attribute values.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;margin:0 auto;max-width:1180px;padding:24px}
h1{font-size:22px;margin:0 0 12px}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:2px solid #d0d7de}
h3{font-size:14px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;table-layout:auto}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f7}
code{font:12px/1.4 ui-monospace,'DejaVu Sans Mono',Menlo,monospace;overflow-wrap:break-word}
.verdict{border-radius:6px;padding:14px 18px;margin:0 0 16px;font-size:18px;font-weight:700;color:#fff}
.ok{background:#1a7f37}.warn{background:#9a6700}.bad{background:#cf222e}
.verdict small{display:block;font-size:13px;font-weight:400;margin-top:4px}
.good{color:#1a7f37;font-weight:600}
strong.bad{color:#cf222e;background:none}
footer{margin-top:28px;color:#57606a;font-size:12px}
@media print{body{max-width:none;padding:0}.verdict{-webkit-print-color-adjust:exact;print-color-adjust:exact}h2{break-after:avoid}tr{break-inside:avoid}}
";

fn cell(c: &Cell) -> String {
    match c {
        Cell::Text(s) => escape(s),
        Cell::Code(s) => format!("<code>{}</code>", escape(s)),
        Cell::Bad(s) => format!("<strong class=\"bad\">{}</strong>", escape(s)),
        Cell::Good(s) => format!("<span class=\"good\">{}</span>", escape(s)),
    }
}

fn cells(cs: &[Cell]) -> String {
    cs.iter().map(cell).collect()
}

fn section(out: &mut String, s: &Section) {
    let _ = writeln!(out, "<section id=\"{}\"><h2>{}</h2>", s.id, escape(s.title));
    for b in &s.blocks {
        match b {
            Block::Para(cs) => {
                let _ = writeln!(out, "<p>{}</p>", cells(cs));
            }
            Block::Sub(cs) => {
                let _ = writeln!(out, "<h3>{}</h3>", cells(cs));
            }
            Block::Chart(bars) => {
                let _ = writeln!(out, "<p>{}</p>", super::assessment::svg(bars, escape));
            }
            Block::Table(t) => {
                if t.rows.is_empty() {
                    out.push_str("<p>(none)</p>\n");
                    continue;
                }
                out.push_str("<table>");
                if t.head.iter().any(|h| !h.is_empty()) {
                    out.push_str("<thead><tr>");
                    for h in &t.head {
                        let _ = write!(out, "<th>{}</th>", escape(h));
                    }
                    out.push_str("</tr></thead>");
                }
                out.push_str("<tbody>\n");
                for row in &t.rows {
                    out.push_str("<tr>");
                    for (i, c) in row.iter().enumerate() {
                        // A two-column key/value table: the key is a row heading.
                        if t.head.iter().all(|h| h.is_empty()) && i == 0 {
                            let _ = write!(out, "<th scope=\"row\">{}</th>", cells(c));
                        } else {
                            let _ = write!(out, "<td>{}</td>", cells(c));
                        }
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody></table>\n");
            }
        }
    }
    out.push_str("</section>\n");
}

/// The verdict's colour: green only when the run succeeded and the journal is intact.
fn tone(r: &Report) -> &'static str {
    match (r.verdict.journal_intact, r.verdict.run.as_str()) {
        (true, "succeeded") => "ok",
        (true, "rolled-back") => "warn",
        _ => "bad",
    }
}

/// The report as an HTML page.
#[must_use]
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let title = format!("boyong report: {} run {}", r.app, r.run);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<h1>Migration report: <code>{}</code>, run <code>{}</code></h1>",
        escape(&r.app),
        escape(&r.run)
    );
    let run_word = r.verdict.run.to_uppercase().replace('-', " ");
    let journal_word = if r.verdict.journal_intact {
        "JOURNAL INTACT"
    } else {
        "JOURNAL BROKEN"
    };
    let detail = if r.verdict.journal_intact {
        format!(
            "hash chain verifies: {} lines, head sha256 {}",
            r.journal.lines,
            r.journal.head_sha256.as_deref().unwrap_or("-")
        )
    } else {
        format!(
            "{}: the records below are as written and cannot be trusted; keep a copy of the run directory",
            r.journal
                .problem
                .as_deref()
                .unwrap_or("the chain does not verify")
        )
    };
    let _ = writeln!(
        out,
        "<div class=\"verdict {}\" id=\"verdict\">RUN {} &middot; {}<small>{}</small></div>",
        tone(r),
        escape(&run_word),
        journal_word,
        escape(&detail)
    );
    for s in sections(r) {
        section(&mut out, &s);
    }
    let _ = writeln!(
        out,
        "<footer>boyong report format {}: made from the run directory alone; digests computed when the report was made.</footer>\n</body></html>",
        r.format
    );
    out
}
