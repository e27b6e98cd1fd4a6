//! The real Docker Engine for tests: availability, the busybox base image, and cleanup of
//! everything a test made (found by its unique `boyong.test` label), pass or fail.

use std::process::{Command, Stdio};

/// Whether the engine answers; when not, a test skips with a message, or fails under CI.
pub fn available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: the Docker Engine does not answer (`docker info`)"
    );
    eprintln!("skipped: the Docker Engine does not answer (`docker info`)");
    false
}

/// Builds `boyong-fixture/busybox:1` if it is missing.
pub fn busybox() {
    let root = env!("CARGO_MANIFEST_DIR");
    let ok = Command::new("bash")
        .arg(format!("{root}/fixtures/base-images.sh"))
        .arg("busybox")
        .status()
        .expect("bash runs")
        .success();
    assert!(ok, "fixtures/base-images.sh busybox failed");
}

/// A unique `boyong.test` label value; everything carrying it is removed on drop.
pub struct Labelled(pub String);

impl Labelled {
    pub fn new(test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self(format!("{test}-{}-{nanos:x}", std::process::id()))
    }

    /// `--label boyong.test=VALUE` for `boyong run`.
    pub fn arg(&self) -> String {
        format!("boyong.test={}", self.0)
    }

    /// Images carrying the label.
    pub fn images(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["image", "ls", "-q", "--no-trunc", "--filter"])
            .arg(format!("label=boyong.test={}", self.0))
            .output()
            .expect("docker image ls");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Labelled {
    fn drop(&mut self) {
        let filter = format!("label=boyong.test={}", self.0);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        for id in self.images() {
            let _ = Command::new("docker").args(["rmi", "-f", &id]).output();
        }
    }
}
