//! The dump and the restore from it, overlapped (a pipelined pair), with real parts: a
//! real MariaDB on the "vendor host" behind a real sshd, the real Docker Engine. A dump
//! cut while the restore already made its container: the restore is stopped, what it
//! made is undone, and it runs again after the dump's retry, ending equal table by table.
//! A `boyong run` killed (SIGKILL) while both are in flight leaves a journal from which
//! `boyong rollback` removes the container, the volume and the partial dump.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::db::{Mariadb, base_image};
use support::dbrun::{position, restore_facts};
use support::docker::docker;
use support::env::Env;
use support::{journal, text};

/// Whether the container `name` runs.
fn running(name: &str) -> bool {
    let out = docker(&["inspect", "-f", "{{.State.Running}}", name]);
    out.status.success() && text(&out.stdout).trim() == "true"
}

#[test]
fn a_dump_cut_while_the_restore_reads_it_stops_the_restore_which_is_undone_and_redone_equal() {
    let Some(env) = Env::database("cutpair") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    // The first SSH connection is held after 5 MB from the vendor (inside the dump) until
    // the overlapped restore's container runs, then cut.
    let name = env.name.clone();
    let (port, cut) =
        support::sshd::cutting_proxy_when(env.sshd().port, 5_000_000, move || running(&name));
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    env.through_proxy(&pb, port);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(cut.load(Ordering::SeqCst), "the proxy cut a connection");
    let run = env.last_run("dbtest");
    support::assert_plan_fidelity(&run);
    let rs = journal(&run);
    let is = |r: &Value, kind: &str, step: &str| r["type"] == kind && r["step"] == step;
    // The restore had made its volume and container when the dump was cut; it was
    // stopped, they were undone, then the dump ran again, then the restore, alone.
    let stopped = position(&rs, |r| {
        is(r, "step-failed", "database")
            && r["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("stopped")
    });
    let dump_failed = position(&rs, |r| is(r, "step-failed", "db"));
    assert!(stopped < dump_failed, "{rs:#?}");
    let undone: Vec<String> = rs[stopped..dump_failed]
        .iter()
        .filter(|r| is(r, "undone", "database"))
        .map(|r| r["change_id"].as_str().unwrap().to_string())
        .collect();
    let made: Vec<String> = rs[..stopped]
        .iter()
        .filter(|r| is(r, "done", "database"))
        .map(|r| r["change_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        made.len() >= 2,
        "the volume and the container were made: {rs:#?}"
    );
    for c in &made {
        assert!(undone.contains(c), "{c} undone before the retry: {rs:#?}");
    }
    let second_dump = rs
        .iter()
        .enumerate()
        .filter(|(_, r)| is(r, "step-started", "db"))
        .map(|(i, _)| i)
        .nth(1)
        .expect("the dump ran again");
    let dump_done = position(&rs, |r| is(r, "step-done", "db"));
    let last_restore = rs
        .iter()
        .rposition(|r| is(r, "step-started", "database"))
        .unwrap();
    assert!(
        second_dump < dump_done && dump_done < last_restore,
        "{rs:#?}"
    );
    // Equal table by table: boyong's evidence, and independently the fixture's fingerprint.
    let facts = restore_facts(&run);
    assert_eq!(facts["checksums_compared"], true, "{facts}");
    let restored = env.mariadb_fingerprint(&db.password);
    assert_eq!(restored, db.fingerprint());
    let names: Vec<String> = std::fs::read_dir(run.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("partial")),
        "no partial file is left: {names:?}"
    );
    env.rollback_leaves_nothing();
}

#[test]
fn a_run_killed_during_the_overlapped_pair_is_fully_undone_by_rollback() {
    let Some(env) = Env::database("killpair") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    // The dump is held after 5 MB until the test has killed boyong.
    let killed = Arc::new(AtomicBool::new(false));
    let k = Arc::clone(&killed);
    let (port, _cut) = support::sshd::cutting_proxy_when(env.sshd().port, 5_000_000, move || {
        k.load(Ordering::SeqCst)
    });
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    env.through_proxy(&pb, port);
    let mut child = support::spawn_quiet(
        env.playbook_run(&pb)
            .env("BOYONG_TEST_DB_PASSWORD", &db.password),
    );
    // Both in flight: the restore's container runs while the dump is held.
    let t0 = Instant::now();
    while !running(&env.name) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the restore's container did not start"
        );
        assert!(child.try_wait().unwrap().is_none(), "boyong ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    let _ = child.wait();
    killed.store(true, Ordering::SeqCst);
    let run = env.last_run("dbtest");
    let rs = journal(&run);
    assert!(
        !rs.iter().any(|r| r["type"] == "step-done"),
        "neither step finished: {rs:#?}"
    );
    let partial = std::fs::read_dir(run.join("artifacts"))
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().contains("partial"));
    assert!(
        partial,
        "the dump's partial file is there before the rollback"
    );
    env.rollback_leaves_nothing();
    let left: Vec<String> = std::fs::read_dir(run.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "the dump's files are gone: {left:?}");
}
