//! Shared test support: a real sshd.
#![allow(dead_code, reason = "each test binary uses a part")]

pub mod sshd;
