//! `boyong report APP [--run ID] [--format md|json|html] [--out FILE]`: the evidence of
//! one run for auditors. The library builds and renders it (`boyong::report`); this
//! file finds the run, writes the text where asked and chooses the exit code: 2 for an
//! unknown app or run, 1 when the journal's chain is broken (the report is still
//! written, its verdict saying so first). A decommissioned app's report links its
//! decommission certificate.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use boyong::engine::open::find_run;
use boyong::engine::state::StateDir;
use boyong::report::{Report, html, md};

use super::error::{CliError, Result};

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown: readable as text and as a page.
    Md,
    /// JSON, for tools.
    Json,
    /// One self-contained HTML page, printable.
    Html,
}

/// `boyong report`.
pub fn report(
    state: &Path,
    app: &str,
    run: Option<&str>,
    format: Format,
    out: Option<&Path>,
) -> Result {
    const CMD: &str = "boyong report";
    let dir = StateDir::new(state);
    if let Ok(d) = dir.app_dir(app)
        && !d.is_dir()
    {
        return Err(CliError::bad_input(format!(
            "{CMD}: unknown app `{app}`: no runs of it in {}",
            state.display()
        )));
    }
    let run = find_run(&dir, app, run).map_err(|e| CliError::no_run(CMD, &e))?;
    let report =
        Report::from_run_dir(run.path()).map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    let mut text = match format {
        Format::Md => md::render(&report),
        Format::Json => report.to_json() + "\n",
        Format::Html => html::render(&report),
    };
    if let Some(cert) = boyong::decommission::certificate_of(&dir, app) {
        link_certificate(&mut text, format, &cert);
    }
    let written = if let Some(path) = out {
        std::fs::write(path, text.as_bytes())
            .map(|()| eprintln!("{CMD}: wrote {}", path.display()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write the report: {e}"))
    };
    written.map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    if !report.verdict.journal_intact {
        return Err(CliError::failed(format!(
            "{CMD}: the journal of run {} of `{app}` is BROKEN ({}); the report says so first. Keep a copy of {} for the auditors",
            report.run,
            report
                .journal
                .problem
                .as_deref()
                .unwrap_or("the chain does not verify"),
            run.path().display()
        )));
    }
    Ok(())
}

/// Adds a link to the app's decommission certificate (Markdown and HTML; the JSON
/// report is left as it is: `certificate.json` beside it is the certificate for tools).
fn link_certificate(text: &mut String, format: Format, cert: &Path) {
    let md = cert.with_extension("md");
    match format {
        Format::Md => {
            let _ = write!(
                text,
                "\n## Decommission\n\nThe vendor's copy of this app was deleted; the certificate: [{}]({})\n",
                md.display(),
                md.display()
            );
        }
        Format::Html => {
            let page = cert.with_extension("html");
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('"', "&quot;")
            };
            let link = format!(
                "<section><h2>Decommission</h2><p>The vendor's copy of this app was deleted; the certificate: <a href=\"file://{0}\">{0}</a></p></section>\n",
                esc(&page.display().to_string())
            );
            match text.rfind("</body>") {
                Some(at) => text.insert_str(at, &link),
                None => text.push_str(&link),
            }
        }
        Format::Json => {}
    }
}
