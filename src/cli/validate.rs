//! `boyong validate PLAYBOOK…`: each playbook's structure, references and vars, with
//! unset secrets as warnings, and the `# TODO` markers of drafts (`boyong discover`). Each file's summary line goes to stdout when it is valid,
//! to stderr when not; exit status 2 when any is not.

use std::path::PathBuf;

use boyong::diag;
use boyong::playbook;

use super::error::{CliError, Kind, Result};
use super::load::{env_lookup, print_diags, summary_line};

/// `boyong validate`.
pub fn validate(files: &[PathBuf]) -> Result {
    let mut bad = false;
    for f in files {
        let loaded = playbook::load(f);
        let mut extra = Vec::new();
        if let Some(pb) = &loaded.playbook {
            let (_, problems) = playbook::check_local_inputs(pb, &env_lookup);
            extra = problems
                .into_iter()
                .map(|mut d| {
                    d.severity = diag::Severity::Warning;
                    d
                })
                .collect();
        }
        print_diags(&loaded, &extra);
        let errs = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        let warns = loaded.diagnostics.len() - errs + extra.len();
        let head = match &loaded.playbook {
            Some(pb) => format!(
                "{} (app `{}`, {} steps)",
                f.display(),
                pb.app,
                pb.steps.len()
            ),
            None => f.display().to_string(),
        };
        if errs > 0 {
            bad = true;
            say!("{}", summary_line(&head, errs, warns));
        } else {
            println!("{}", summary_line(&head, errs, warns));
        }
        // A draft's open questions (`boyong discover`): listed, not errors.
        for (line, col, what) in boyong::discover::todo::todos(&loaded.text) {
            println!(
                "  TODO {}:{line}:{col}: {}",
                f.display(),
                boyong::escape::controls(&what)
            );
        }
    }
    if bad {
        return Err(CliError::reported(Kind::BadInput));
    }
    Ok(())
}
