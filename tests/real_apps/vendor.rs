//! A real PHP app on a vendor host of this machine (fixtures/apps/APP.sh): its sshd, its
//! database and its web server, started for one test and stopped when dropped, pass or
//! fail. One per app at a time on the machine: the host holds `/tmp/boyong-vendor-APP.lock`
//! while it lives (the app's files are at a fixed place, /srv/APP).
//!
//! Needs root (an account, an sshd) and the Docker Engine; the fixture installs what else it
//! needs (Debian packages from the machine's apt sources). When root or the engine is
//! missing, [`VendorApp::available`] says so: the test skips, or fails under CI.

use std::collections::HashMap;
use std::process::Command;

/// A running vendor host; see the module's doc.
pub struct VendorApp {
    app: String,
    dir: tempfile::TempDir,
    /// What the fixture wrote in `DIR/vendor.env`: `VH_SSH_PORT`, `VH_DB_PASSWORD`, ...
    pub vars: HashMap<String, String>,
    _lock: std::fs::File,
}

impl VendorApp {
    /// Whether this machine can run one: root and the engine. When not, a test skips with
    /// a message, or fails under CI.
    pub fn available() -> bool {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !root {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: a vendor host needs root (an account, an sshd)"
            );
            eprintln!("skipped: a vendor host needs root (an account, an sshd)");
            return false;
        }
        crate::support::docker::available()
    }

    /// Starts `fixtures/apps/APP.sh up DIR`, DIR a new temporary directory (waiting for
    /// the machine's lock on APP first).
    pub fn up(app: &str) -> Self {
        let lock = std::fs::File::create(format!("/tmp/boyong-vendor-{app}.lock")).expect("lock");
        lock.lock().expect("locks");
        let mut host = Self {
            app: app.to_string(),
            dir: tempfile::tempdir().expect("a temporary directory"),
            vars: HashMap::new(),
            _lock: lock,
        };
        let out = host.fixture("up");
        assert!(
            out.status.success(),
            "fixtures/apps/{app}.sh up failed:\n{}{}",
            crate::support::text(&out.stdout),
            crate::support::text(&out.stderr)
        );
        let env = std::fs::read_to_string(host.dir.path().join("vendor.env")).expect("vendor.env");
        host.vars = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), unquote(v)))
            .collect();
        host
    }

    /// A value from `vendor.env`.
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in vendor.env: {:?}", self.vars.keys()))
    }

    fn fixture(&self, what: &str) -> std::process::Output {
        let script = format!(
            "{}/fixtures/apps/{}.sh",
            env!("CARGO_MANIFEST_DIR"),
            self.app
        );
        Command::new("bash")
            .arg(script)
            .arg(what)
            .arg(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("bash runs")
    }
}

impl Drop for VendorApp {
    fn drop(&mut self) {
        let out = self.fixture("down");
        if !out.status.success() {
            eprintln!(
                "fixtures/apps/{}.sh down: {}",
                self.app,
                crate::support::text(&out.stderr)
            );
        }
    }
}

/// A value as bash's `printf %q` wrote it (the values the fixtures write need no more).
fn unquote(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// Builds `fixtures/base-images.sh WHICH` (gov/php:8.2, gov/mariadb:10.11, gov/postgres:15)
/// if it is missing: minutes the first time.
pub fn base_image(which: &str) {
    let ok = Command::new("bash")
        .arg(format!(
            "{}/fixtures/base-images.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(which)
        .status()
        .expect("bash runs")
        .success();
    assert!(ok, "fixtures/base-images.sh {which} failed");
}
