//! The one error of every command, [`CliError`]: its [`Kind`] (the documented exit
//! status), the message the operator reads and the hints that say what to do next.
//! `cli::main` renders it once, after the command returned; a batch renders each app's
//! through its view, named for the app.
//!
//! Exit statuses, documented in the README (scripts rely on them):
//!
//! | status | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | the work failed (a step, a verification, a lock held by another run, an interrupt) |
//! | 2 | bad input (usage, a playbook error, a missing secret or file): nothing was changed |
//! | 3 | a rollback could not undo everything; what is left is listed |
//!
//! Invariant: the message and each hint are said in order, each as one message (see
//! `say.rs`), so a batch puts the app's name in front of each.
//!
//! The library's errors are worded here for the command that met them: what the
//! library's `Display` says, with what it means for the command.

use boyong::engine::open::{CreateError, FindRunError, ResumeRefusal, TakeLockError};

use super::say::say;

/// Exit status 0.
pub const OK: u8 = 0;

/// What kind of failure: it decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The work failed (a step, a verification, a lock held by another run, an
    /// interrupt). Exit status 1.
    Failed,
    /// Bad input: usage, a playbook error, a missing secret or file. Nothing was
    /// changed. Exit status 2.
    BadInput,
    /// A rollback could not undo everything; what is left is listed. Exit status 3.
    RollbackIncomplete,
}

impl Kind {
    /// The exit status.
    pub const fn code(self) -> u8 {
        match self {
            Self::Failed => 1,
            Self::BadInput => 2,
            Self::RollbackIncomplete => 3,
        }
    }
}

/// How a command failed, and what to say about it.
#[derive(Debug)]
pub struct CliError {
    kind: Kind,
    /// `None` when the command's output already said why (a plan's problems, a batch's
    /// summary, each playbook's diagnostics).
    message: Option<String>,
    hints: Vec<String>,
}

/// What a command returns.
pub type Result<T = ()> = std::result::Result<T, CliError>;

impl CliError {
    /// A failure of `kind`, with its message.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: Some(message.into()),
            hints: Vec::new(),
        }
    }

    /// Exit status 1, with its message.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Kind::Failed, message)
    }

    /// Exit status 2, with its message.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(Kind::BadInput, message)
    }

    /// A failure that the command's output already explained: nothing more to say.
    pub fn reported(kind: Kind) -> Self {
        Self {
            kind,
            message: None,
            hints: Vec::new(),
        }
    }

    /// Adds what to do next, said after the message.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Adds several hints, in order.
    #[must_use]
    pub fn hints(mut self, hints: impl IntoIterator<Item = String>) -> Self {
        self.hints.extend(hints);
        self
    }

    /// The kind, and with it the exit status.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Says the message, then each hint (on stderr, or through this thread's hook).
    pub fn render(&self) {
        for line in self.message.iter().chain(&self.hints) {
            say(line);
        }
    }

    /// The app's lock was not taken by `cmd`.
    pub fn lock(cmd: &str, e: &TakeLockError) -> Self {
        Self::failed(match e {
            TakeLockError::AppDir(_) | TakeLockError::Lock(_) => {
                format!("{cmd}: {e}; nothing was changed")
            }
            TakeLockError::Held(_) => format!(
                "{cmd}: {e}; wait for it to finish (one operator at a time per app); nothing was changed"
            ),
            TakeLockError::Path(_) | TakeLockError::Holder(_) => format!("{cmd}: {e}"),
        })
    }

    /// `cmd` found no such run.
    pub fn no_run(cmd: &str, e: &FindRunError) -> Self {
        Self::bad_input(format!("{cmd}: {e}"))
    }
}

impl From<ResumeRefusal> for CliError {
    fn from(e: ResumeRefusal) -> Self {
        let err = Self::bad_input(format!("boyong run --resume: {e}"));
        match &e {
            ResumeRefusal::PlaybookChanged { app, .. } => err.hint(format!(
                "roll the run back (`boyong rollback {app}`) and start a new one, or restore the playbook"
            )),
            _ => err,
        }
    }
}

impl From<CreateError> for CliError {
    fn from(e: CreateError) -> Self {
        Self::failed(format!("boyong run: {e}; nothing was changed"))
    }
}

/// A command's result from the worst of its parts' (`None`: all succeeded).
pub fn worst(kind: Option<Kind>) -> Result {
    kind.map_or(Ok(()), |k| Err(CliError::reported(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kinds_are_the_readmes_exit_codes() {
        assert_eq!(
            [
                OK,
                Kind::Failed.code(),
                Kind::BadInput.code(),
                Kind::RollbackIncomplete.code()
            ],
            [0, 1, 2, 3]
        );
        // A batch exits with the worst of its apps' codes: 3 over 2 over 1.
        assert_eq!(
            [Kind::BadInput, Kind::RollbackIncomplete, Kind::Failed]
                .into_iter()
                .max(),
            Some(Kind::RollbackIncomplete)
        );
        assert!(worst(None).is_ok());
        assert_eq!(
            worst(Some(Kind::Failed)).map_err(|e| e.kind()),
            Err(Kind::Failed)
        );
    }

    #[test]
    fn a_changed_playbook_says_how_to_go_on() {
        let e = CliError::from(ResumeRefusal::NoRuns { app: "demo".into() });
        assert_eq!(e.kind(), Kind::BadInput);
        assert_eq!(
            e.message.as_deref(),
            Some("boyong run --resume: app `demo` has no run to resume; run it without --resume")
        );
        assert!(e.hints.is_empty());
        let e = CliError::from(ResumeRefusal::PlaybookChanged {
            app: "demo".into(),
            run: boyong::engine::state::RunId::parse("20261122T120301Z-3f9c").unwrap(),
            why: "step `maint` made a change that has no undo".into(),
            diff: "  ~ maint  changed: exec.run\n".into(),
        });
        assert_eq!(
            e.hints,
            [
                "roll the run back (`boyong rollback demo`) and start a new one, or restore the playbook"
            ]
        );
    }
}
