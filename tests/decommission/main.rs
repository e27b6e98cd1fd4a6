//! `boyong archive` and `boyong decommission` against a real OpenSSH server and real
//! MariaDB and PostgreSQL servers as the vendor host: a migrated app's fetched tree and
//! database are deleted, checked gone and certified; a sibling app's files and database
//! survive; each precondition refuses by name and changes nothing; a vendor file changed
//! since the pull blocks it; a decommission cut half-way (a refused `DROP`, a dropped
//! connection) is finished by running it again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "../support/mod.rs"]
mod support;

mod common;
mod databases;
mod host;
mod lifecycle;
mod refusals;
mod resume;
