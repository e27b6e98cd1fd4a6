//! Reading playbooks for the commands: each playbook's diagnostics printed like rustc,
//! its summary line (`FILE: 2 errors, 1 warning`), and, for `plan` and `run`, a
//! playbook that validated with the secrets and files a run needs ([`Ready`]).
//!
//! Invariant: a [`Ready`] never lacks a secret or a file its run needs.

use std::path::Path;

use boyong::diag::{self, Diagnostic};
use boyong::playbook::{self, Loaded, Playbook};
use boyong::secret::SecretStore;

use super::error::CliError;

/// The process environment, for the secrets a playbook names.
pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Prints `loaded`'s diagnostics and `extra` on stderr, rustc-style.
pub fn print_diags(loaded: &Loaded, extra: &[Diagnostic]) {
    let mut all = loaded.diagnostics.clone();
    all.extend_from_slice(extra);
    if !all.is_empty() {
        let text = diag::render(&loaded.path.display().to_string(), &loaded.text, &all);
        eprint!("{text}");
    }
}

/// `KIND: ok`, `KIND: 1 error, 2 warnings`, …
pub fn summary_line(kind: &str, n_err: usize, n_warn: usize) -> String {
    let plural = |n: usize, w: &str| {
        if n == 1 {
            format!("1 {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    match (n_err, n_warn) {
        (0, 0) => format!("{kind}: ok"),
        (0, w) => format!("{kind}: ok, {}", plural(w, "warning")),
        (e, 0) => format!("{kind}: {}", plural(e, "error")),
        (e, w) => format!("{kind}: {}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// A playbook that validated, with the secrets a run needs loaded.
pub struct Ready {
    /// The playbook.
    pub playbook: Playbook,
    /// Its text, as read.
    pub text: String,
    /// Its secrets.
    pub secrets: SecretStore,
}

/// Loads a playbook for `cmd` (`plan` or `run`), printing its diagnostics. Bad input on
/// any error, including a secret or file that a run needs and that is missing.
pub fn load_ready(file: &Path, cmd: &str) -> Result<Ready, CliError> {
    ready(playbook::load(file), file, cmd)
}

/// A run's saved playbook, as it ran (`engine::open::playbook_as_run`): the stored
/// text, whose relative paths (identity, known_hosts, delivered files) are read from the
/// directory of the playbook the run was started with (`origin`, in its plan).
///
/// # Errors
/// As [`load_ready`].
pub fn load_saved(origin: &Path, bytes: &[u8], cmd: &str) -> Result<Ready, CliError> {
    ready(playbook::parse(origin, bytes), origin, cmd)
}

fn ready(loaded: Loaded, file: &Path, cmd: &str) -> Result<Ready, CliError> {
    let Some(pb) = &loaded.playbook else {
        print_diags(&loaded, &[]);
        let errs = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        return Err(CliError::bad_input(summary_line(
            &file.display().to_string(),
            errs,
            loaded.diagnostics.len() - errs,
        )));
    };
    let (secrets, problems) = playbook::check_local_inputs(pb, &env_lookup);
    print_diags(&loaded, &problems);
    if problems.iter().any(Diagnostic::is_error) {
        return Err(CliError::bad_input(format!(
            "{cmd}: refused: a run needs the secrets and files above; nothing was changed"
        )));
    }
    let Loaded { playbook, text, .. } = loaded;
    let playbook = playbook.ok_or_else(|| CliError::reported(super::error::Kind::BadInput))?;
    Ok(Ready {
        playbook,
        text,
        secrets,
    })
}
