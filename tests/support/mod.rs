//! Shared test support: a real sshd, a small tmpfs.
#![allow(dead_code, reason = "each test binary uses a part")]

pub mod sshd;
pub mod tmpfs;
