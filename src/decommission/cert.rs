//! The decommission certificate: the evidence that the vendor's copy was deleted, as
//! JSON (serde, for tools), Markdown and one self-contained HTML page, all three from
//! one [`Certificate`] and written into the decommission's directory.
//!
//! Invariant: the certificate holds no secret (only names, paths, digests, sizes and
//! the checks' words); every text put in the HTML page is escaped.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::Check;
use super::run::Removed;

/// The certificate's format version.
pub const FORMAT: u32 = 1;

/// Everything the certificate says.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    /// [`FORMAT`].
    pub format: u32,
    /// The app.
    pub app: String,
    /// The decommission's id.
    pub decommission: String,
    /// The migration run it follows.
    pub migration_run: String,
    /// Who ran it.
    pub operator: String,
    /// The machine it ran from.
    pub machine: String,
    /// When it began and ended (RFC 3339 UTC).
    pub started: String,
    /// When it ended.
    pub finished: String,
    /// The vendor host, `user@host:port`.
    pub vendor: String,
    /// The vendor host's key, as it proved it holds it during the decommission.
    pub vendor_host_key: Option<String>,
    /// The preconditions as they were checked.
    pub preconditions: Vec<Check>,
    /// Each removed item, its last digest and size, and the check that it is gone.
    pub removed: Vec<Removed>,
    /// The archive kept on the government side.
    pub archive: ArchiveRef,
    /// The migration run's journal chain head.
    pub migration_journal_head: String,
    /// The decommission journal's chain head once it ended.
    pub journal_head: String,
    /// Whether a previous, interrupted attempt was continued.
    pub continued: bool,
}

/// The archive kept.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveRef {
    /// Its path.
    pub path: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

impl Certificate {
    /// Writes `certificate.json`, `.md` and `.html` into `dir`.
    ///
    /// # Errors
    /// The file system.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        // A crontab line is matched whole, so the playbook holds it as the vendor wrote it,
        // a `-pPASSWORD` and all: the certificate, evidence handed to others, shows it
        // with such values masked.
        let mut shown = self.clone();
        for r in &mut shown.removed {
            if r.item.kind == "crontab" {
                r.item.target = crate::discover::redact(&r.item.target);
            }
        }
        let json = serde_json::to_string_pretty(&shown).map_err(|e| e.to_string())? + "\n";
        for (name, text) in [
            ("certificate.md", markdown(&shown)),
            ("certificate.html", html(&shown)),
            // Last: its presence says the decommission is complete.
            ("certificate.json", json),
        ] {
            super::write_private(&dir.join(name), text.as_bytes())?;
        }
        Ok(())
    }
}

/// The rows each rendering shows: `(heading, [(label, value)])`, and the items' table.
fn sections(c: &Certificate) -> Vec<(&'static str, Vec<(String, String)>)> {
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    vec![
        (
            "Who, when, where",
            vec![
                kv("App", &c.app),
                kv("Decommission", &c.decommission),
                kv("Migration run", &c.migration_run),
                kv("Operator", &c.operator),
                kv("From machine", &c.machine),
                kv("Started", &c.started),
                kv("Finished", &c.finished),
                kv("Vendor host", &c.vendor),
                kv(
                    "Vendor host key",
                    c.vendor_host_key.as_deref().unwrap_or("(not recorded)"),
                ),
                kv(
                    "Continued an interrupted attempt",
                    if c.continued { "yes" } else { "no" },
                ),
            ],
        ),
        (
            "Preconditions",
            c.preconditions
                .iter()
                .map(|p| (p.name.clone(), format!("{}: {}", p.state, p.detail)))
                .collect(),
        ),
        (
            "Archive kept on the government side",
            vec![
                kv("Path", &c.archive.path),
                kv("SHA-256", &c.archive.sha256),
                kv("Bytes", &c.archive.bytes.to_string()),
            ],
        ),
        (
            "Journals",
            vec![
                kv("Migration journal chain head", &c.migration_journal_head),
                kv("Decommission journal chain head", &c.journal_head),
            ],
        ),
    ]
}

fn item_rows(c: &Certificate) -> Vec<[String; 6]> {
    c.removed
        .iter()
        .map(|r| {
            let size = match (r.item.files, r.item.bytes) {
                (Some(f), Some(b)) => format!("{f} files, {b} bytes"),
                (None, Some(b)) => format!("dump {b} bytes"),
                _ => String::new(),
            };
            [
                r.item.kind.clone(),
                r.item.target.clone(),
                size,
                r.item.last_sha256.clone(),
                if r.item.kept.is_some() {
                    "not removed (kept)".to_string()
                } else {
                    r.removed_at.clone()
                },
                r.gone_check.clone(),
            ]
        })
        .collect()
}

const ITEM_HEAD: [&str; 6] = [
    "Kind",
    "What",
    "Size",
    "Last SHA-256",
    "Removed",
    "Gone check",
];

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown certificate.
#[must_use]
pub fn markdown(c: &Certificate) -> String {
    let mut s = format!(
        "# Decommission certificate: {}\n\nThe vendor's copy of `{}` was deleted from {} on {}; every item removed below was checked, read-only, to be gone (a wiped database: empty); an item kept says why.\n",
        c.app, c.app, c.vendor, c.finished
    );
    for (h, rows) in sections(c) {
        let _ = write!(s, "\n## {h}\n\n| | |\n| --- | --- |\n");
        for (k, v) in rows {
            let _ = writeln!(s, "| {} | {} |", md_cell(&k), md_cell(&v));
        }
    }
    let _ = write!(
        s,
        "\n## Removed from the vendor host\n\n| {} |\n|{}\n",
        ITEM_HEAD.join(" | "),
        " --- |".repeat(ITEM_HEAD.len())
    );
    for row in item_rows(c) {
        let cells: Vec<String> = row.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The HTML certificate: one page, no script, printable.
#[must_use]
pub fn html(c: &Certificate) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Decommission certificate: {app}</title>\n<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}}code{{word-break:break-all}}</style></head><body>\n<h1>Decommission certificate: {app}</h1>\n<p>The vendor's copy of <code>{app}</code> was deleted from {vendor} on {fin}; every item removed below was checked, read-only, to be gone (a wiped database: empty); an item kept says why.</p>\n",
        app = esc(&c.app),
        vendor = esc(&c.vendor),
        fin = esc(&c.finished)
    );
    for (h, rows) in sections(c) {
        let _ = write!(s, "<h2>{}</h2>\n<table>\n", esc(h));
        for (k, v) in rows {
            let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(&k), esc(&v));
        }
        s.push_str("</table>\n");
    }
    s.push_str("<h2>Removed from the vendor host</h2>\n<table>\n<tr>");
    for h in ITEM_HEAD {
        let _ = write!(s, "<th>{h}</th>");
    }
    s.push_str("</tr>\n");
    for row in item_rows(c) {
        s.push_str("<tr>");
        for cell in row {
            let _ = write!(s, "<td>{}</td>", esc(&cell));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n</body></html>\n");
    s
}
