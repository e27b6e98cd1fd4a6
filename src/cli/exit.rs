//! Exit codes, documented in the README; scripts rely on them.

/// Success.
pub const OK: u8 = 0;
/// The work failed (a step, a verification, a lock held by another run, an interrupt).
pub const FAILED: u8 = 1;
/// Bad input: usage, a playbook error, a missing secret or file. Nothing was changed.
pub const BAD_INPUT: u8 = 2;
/// A rollback could not undo everything; what is left is listed.
pub const ROLLBACK_INCOMPLETE: u8 = 3;
