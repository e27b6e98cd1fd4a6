//! Shared test support: a real sshd, the real Docker Engine, a small tmpfs.
#![allow(dead_code, reason = "each test binary uses a part")]

pub mod docker;
pub mod sshd;
pub mod tmpfs;

/// The real `boyong` binary, with its state in `state`, on the real world (not the fake).
pub fn boyong(state: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_boyong"));
    c.env("BOYONG_STATE", state)
        .env_remove("BOYONG_SIM")
        .stdin(std::process::Stdio::null());
    c
}
