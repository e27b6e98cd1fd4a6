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
