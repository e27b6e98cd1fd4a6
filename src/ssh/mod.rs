//! SSH to the vendor host: strict host keys, key or password auth, exec streaming.
//!
//! Owns: [`known_hosts`] (the strict check) and [`client`] (connect, authenticate, run a
//! command with its output streamed back). Invariants: no connection proceeds past key
//! exchange unless the host key is on record in the playbook's `known_hosts` (or the
//! operator passed `--accept-new-host-key` for a host with no key on record); secrets
//! reach a remote command only through its stdin, never its command line.

pub mod client;
mod error;
pub mod known_hosts;
mod socket;

pub use client::{Auth, Exec, Out, Session, Target};
pub use error::SshError;
