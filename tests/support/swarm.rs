//! A single-node swarm for the Swarm tests, and the cleanup of what they made in it.
//!
//! The engine is left as it was found: the first holder (across processes) makes the
//! swarm only when the engine is not in one (`docker swarm init --advertise-addr
//! 127.0.0.1`), and the last holder leaves it (`docker swarm leave --force`, and removes
//! the `docker_gwbridge` network the swarm added) only if a holder made it. Test processes (nextest runs one per test, in parallel) coordinate
//! through a lock file and a holders file in the temporary directory: each holding
//! process writes its pid there; a pid that no longer runs does not count. Within one
//! process the holders are counted, so the swarm is held from the first test's
//! [`join`] to the last one's drop.

use std::io::{Read as _, Seek as _, Write as _};
use std::process::Command;
use std::sync::Mutex;

use super::docker::{self, Labelled};

/// The tests of this process that hold the swarm now.
static HELD: Mutex<usize> = Mutex::new(0);

fn lock_path() -> std::path::PathBuf {
    std::env::temp_dir().join("boyong-test-swarm.lock")
}

/// The holders file under the lock: `made=0|1`, then one pid a line, live ones only.
fn with_holders(f: impl FnOnce(&mut bool, &mut Vec<u32>)) {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path())
        .expect("the swarm tests' lock file");
    file.lock().expect("locks the swarm tests' lock file");
    let mut text = String::new();
    file.read_to_string(&mut text).expect("reads the holders");
    let mut made = text.lines().next() == Some("made=1");
    let mut pids: Vec<u32> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().parse().ok())
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    f(&mut made, &mut pids);
    let out = std::iter::once(format!("made={}", u8::from(made)))
        .chain(pids.iter().map(u32::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    file.set_len(0).expect("truncates");
    file.rewind().expect("rewinds");
    file.write_all(out.as_bytes()).expect("writes the holders");
    file.unlock().expect("unlocks");
}

fn state() -> String {
    super::text(&docker::docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout)
        .trim()
        .to_string()
}

/// Holds the swarm while it lives; see the module's doc.
pub struct Swarm(());

/// The swarm, made if the engine is not in one; `None` (the test skips; under CI it
/// fails) when the engine does not answer.
pub fn join() -> Option<Swarm> {
    if !docker::available() {
        return None;
    }
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *held == 0 {
        with_holders(|made, pids| {
            if pids.is_empty() {
                let now = state();
                *made = false;
                if now != "active" {
                    // What `swarm init` adds and `swarm leave` keeps: removed at leave
                    // unless it was there before.
                    let gw = docker::docker(&["network", "inspect", "docker_gwbridge"]);
                    let _ = std::fs::write(
                        std::env::temp_dir().join("boyong-test-swarm.gwbridge"),
                        if gw.status.success() { "kept" } else { "made" },
                    );
                    let out = docker::docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
                    assert!(
                        out.status.success(),
                        "docker swarm init: {}",
                        super::text(&out.stderr)
                    );
                    *made = true;
                }
            }
            pids.push(std::process::id());
        });
    }
    *held += 1;
    Some(Swarm(()))
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held -= 1;
        if *held > 0 {
            return;
        }
        with_holders(|made, pids| {
            pids.retain(|p| *p != std::process::id());
            if pids.is_empty() && *made {
                let _ = docker::docker(&["swarm", "leave", "--force"]);
                let gw = std::env::temp_dir().join("boyong-test-swarm.gwbridge");
                if std::fs::read_to_string(&gw).is_ok_and(|s| s == "made") {
                    let _ = docker::docker(&["network", "rm", "docker_gwbridge"]);
                }
                let _ = std::fs::remove_file(gw);
                *made = false;
            }
        });
    }
}

/// Removes the services and secrets carrying a test's label when dropped (before the
/// test's [`Labelled`] removes its containers, volumes and networks): the services
/// first, waiting until their task containers are gone, then the secrets.
pub struct Services(pub String);

impl Services {
    /// For the test's label.
    pub fn of(label: &Labelled) -> Self {
        Self(label.arg())
    }

    fn ids(&self, what: &str) -> Vec<String> {
        let out = Command::new("docker")
            .args([what, "ls", "-q", "--filter", &format!("label={}", self.0)])
            .output()
            .expect("docker runs");
        super::text(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for id in self.ids("service") {
            let _ = docker::docker(&["service", "rm", &id]);
        }
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_secs(60) {
            let out = docker::docker(&[
                "ps",
                "-aq",
                "--filter",
                &format!("label={}", self.0),
                "--filter",
                "label=com.docker.swarm.task.id",
            ]);
            if super::text(&out.stdout).trim().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        for id in self.ids("secret") {
            let _ = docker::docker(&["secret", "rm", &id]);
        }
    }
}
