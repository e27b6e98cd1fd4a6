//! A small tmpfs, to fill a disk on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Mounts a tmpfs of `size` bytes at `dir`; false when this machine does not allow it.
pub fn mount_tmpfs(dir: &Path, size: usize) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A tmpfs of `size` bytes mounted at `dir` until the guard drops; `None` (the test skips,
/// with a message) where this machine does not allow it, which fails the test under CI.
pub fn mounted(dir: &Path, size: usize) -> Option<Unmount> {
    if mount_tmpfs(dir, size) {
        return Some(Unmount(dir.to_path_buf()));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: this test needs to mount a tmpfs (run as root)"
    );
    eprintln!("skipped: cannot mount a tmpfs here (needs root)");
    None
}
