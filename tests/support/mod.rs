//! Shared test support: a real sshd, the real Docker Engine, a small tmpfs.
#![allow(dead_code, reason = "each test binary uses a part")]

pub mod docker;
pub mod sshd;
pub mod tmpfs;
