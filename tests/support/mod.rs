//! Shared test support: a real sshd, the real Docker Engine, a small tmpfs.
#![allow(dead_code, reason = "each test binary uses a part")]

pub mod db;
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

/// Replaces `old` (which must be there) by `new` in the file at `path`.
pub fn edit_file(path: &std::path::Path, old: &str, new: &str) {
    let text = std::fs::read_to_string(path).expect("reads");
    assert!(text.contains(old), "`{old}` is not in {}", path.display());
    std::fs::write(path, text.replace(old, new)).expect("writes");
}

/// Starts `cmd` in the background, its output discarded (a run to be killed).
pub fn spawn_quiet(cmd: &mut std::process::Command) -> std::process::Child {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts")
}
