//! Shared test support: the end-to-end tests' environment (`env`), a real sshd, the real
//! Docker Engine, a small tmpfs, a headless browser.
#![allow(dead_code, reason = "each test binary uses a part")]

pub mod browser;
pub mod db;
pub mod dbrun;
pub mod docker;
pub mod env;
pub mod scenario;
pub mod site;
pub mod sshd;
pub mod swarm;
pub mod tmpfs;

/// Sends `sig` (`"-INT"`, `"-KILL"`, …) to the process `pid` with kill(1): whether it was
/// delivered.
pub fn signal(pid: u32, sig: &str) -> bool {
    std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// The real `boyong` binary, with its state in `state`, on the real world (not the fake),
/// its journal key beside the state directory (never the operator's own).
pub fn boyong(state: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_boyong"));
    let key = state.with_file_name(format!(
        "{}.journal.key",
        state
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("state")
    ));
    c.env("BOYONG_STATE", state)
        .env("BOYONG_JOURNAL_KEY_FILE", key)
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

/// Plan fidelity: every change the run's journal records was listed by the run's plan
/// (same step, operation, resource and name). A change not in the plan fails the test.
pub fn assert_plan_fidelity(run: &std::path::Path) {
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("plan.json")).expect("plan.json"))
            .expect("plan.json is JSON");
    let key = |step: &serde_json::Value, c: &serde_json::Value| {
        format!("{} {} {} {}", step, c["op"], c["resource"], c["name"])
    };
    let planned: Vec<String> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| {
            s["changes"]
                .as_array()
                .expect("changes")
                .iter()
                .map(|c| key(&s["id"], c))
        })
        .collect();
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).expect("journal");
    let mut seen = 0;
    for line in journal.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if r["type"] == "intent" {
            seen += 1;
            let k = key(&r["step"], &r["change"]);
            assert!(
                planned.contains(&k),
                "plan fidelity: the run made `{k}`, which its plan does not list:\n{planned:#?}"
            );
        }
    }
    assert!(seen > 0, "the run journaled no change at all");
}

/// A TCP port on 127.0.0.1 that was free a moment ago, from below the kernel's range for
/// the local ports of outgoing connections (32768 and up on Linux): a port of that range,
/// which `bind(0)` gives, can be taken meanwhile by any connection a test opens (seen: a
/// container's published port "already allocated" to such a connection). Random in the
/// range, so that tests in parallel processes pick different ones.
pub fn free_port() -> u16 {
    const LOW: u32 = 15_000;
    const SPAN: u32 = 17_000;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ (std::process::id() << 12);
    for i in 0..SPAN {
        let port = LOW + seed.wrapping_add(i.wrapping_mul(7_919)) % SPAN;
        let port = u16::try_from(port).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("has an address")
        .port()
}

/// The body served at `127.0.0.1:port` `path`, or `None` if nothing answers within `wait`.
pub fn http_get(port: u16, path: &str, wait: std::time::Duration) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if let Some((_, body)) = out.split_once("\r\n\r\n") {
                return Some(body.trim().to_string());
            }
        }
        if t0.elapsed() >= wait {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Plan fidelity for every run under the state directory `state` that made a change (see
/// [`assert_plan_fidelity`]). The test environments call it when they are dropped, so each
/// run of each end-to-end test is checked.
pub fn assert_plan_fidelity_all(state: &std::path::Path) {
    let Ok(apps) = std::fs::read_dir(state.join("apps")) else {
        return;
    };
    for app in apps.flatten() {
        let Ok(runs) = std::fs::read_dir(app.path().join("runs")) else {
            continue;
        };
        for run in runs.flatten() {
            let journal =
                std::fs::read_to_string(run.path().join("journal.jsonl")).unwrap_or_default();
            let intents = journal.lines().any(|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|r| r["type"] == "intent")
            });
            if intents {
                assert_plan_fidelity(&run.path());
            }
        }
    }
}

/// The body served at `127.0.0.1:port` `/`, waiting up to 10 s for it; panics if nothing
/// answers.
pub fn serves(port: u16) -> String {
    http_get(port, "/", std::time::Duration::from_secs(10))
        .unwrap_or_else(|| panic!("nothing serves on {port}"))
}

/// The records of a run's journal (`RUN/journal.jsonl`), in order.
pub fn journal(run: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .expect("the run's journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The runs a run's log (`RUN/log.jsonl`) says started, as (app, run id): a log holds
/// its own run only.
pub fn logged_runs(run: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .expect("the run's log")
        .lines()
        .filter_map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).ok()?;
            let e: serde_json::Value =
                serde_json::from_str(line["fields"]["event"].as_str()?).ok()?;
            (e["event"] == "run-started").then(|| {
                (
                    e["app"].as_str().expect("an app").into(),
                    e["run"].as_str().expect("a run id").into(),
                )
            })
        })
        .collect()
}

/// Bytes as text, lossily (command output in assertions).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// How long one command a test runs may take (boyong, the `docker` CLI) before the test
/// stops it and fails with what it printed: `BOYONG_TEST_LIMIT` seconds, else 600. A
/// command that hangs (an engine that never answers, a stream that never ends) fails its
/// test, with the evidence, instead of holding the whole run until CI's own limit.
pub fn command_limit() -> std::time::Duration {
    let secs = std::env::var("BOYONG_TEST_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    std::time::Duration::from_secs(secs)
}

/// Runs `c` to its end as `Command::output` does, within [`command_limit`].
pub fn output_within(c: &mut std::process::Command) -> std::process::Output {
    output_limited(c, command_limit())
}

/// Runs `c` to its end as `Command::output` does, within `limit`: past it, the command is
/// interrupted (SIGINT: boyong undoes what its run changed), killed 30 s later if still
/// there, and the test panics with the command (its program and arguments, never its
/// environment: a test's secrets are there) and what it printed so far.
pub fn output_limited(
    c: &mut std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    use std::io::Read as _;
    use std::process::Stdio;
    use std::sync::mpsc::RecvTimeoutError;
    let what = std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let send = |sig: &str| {
        let _ = signal(pid, sig);
    };
    let mut stopped = false;
    let status = match rx.recv_timeout(limit) {
        Ok(status) => status,
        Err(RecvTimeoutError::Timeout) => {
            stopped = true;
            send("-INT");
            if let Ok(status) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
                status
            } else {
                send("-KILL");
                rx.recv().unwrap_or_else(|e| panic!("{what}: {e}"))
            }
        }
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: its waiting thread ended"),
    }
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    assert!(
        !stopped,
        "{what} did not end within {} s, stopped ({status}); its stdout:\n{}\nits stderr:\n{}",
        limit.as_secs(),
        text(&stdout),
        text(&stderr)
    );
    std::process::Output {
        status,
        stdout,
        stderr,
    }
}
