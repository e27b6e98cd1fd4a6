//! boyong: moves apps that vendors built and host onto a government's own servers.
//!
//! One YAML playbook per app: pull the code and database from the vendor's host over
//! SSH, verify SHA-256 checksums, repackage into container images, deploy them through
//! the Docker Engine API, and journal every change so that a failed cut-over is undone
//! with one command.
//!
//! This library is the engine. It never prints, reads argv or the environment, or exits:
//! it returns values, diagnostics and typed errors, and the `boyong` binary presents them.
//! The stages each have their own type: a file becomes a validated
//! [`playbook::Playbook`], which becomes a [`plan::Plan`] of resolved steps and changes.

pub mod artifact;
pub mod assess;
pub mod decommission;
pub mod diag;
pub mod digest;
pub mod discover;
pub mod docker;
pub mod engine;
pub mod escape;
pub mod front;
pub mod plan;
pub mod playbook;
pub mod report;
pub mod secret;
pub mod shell;
pub mod ssh;
pub mod steps;
