//! `boyong journal verify` against real journals written by the engine, then tampered with.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::process::Command;
use std::time::{Duration, SystemTime};

use boyong::engine::journal::{HeaderFields, Journal, Record};
use boyong::engine::state::StateDir;
use serde_json::json;

fn verify(state: &std::path::Path, app: &str) -> (i32, String, String) {
    // The journal key lives outside the state directory: beside it, removed afterwards.
    let key = state.with_extension("journal.key");
    let out = Command::new(env!("CARGO_BIN_EXE_boyong"))
        .args(["--state", state.to_str().unwrap(), "journal", "verify", app])
        .env("BOYONG_JOURNAL_KEY_FILE", &key)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&key);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A run with a header and six records; returns the journal's path.
fn write_run(state: &StateDir) -> std::path::PathBuf {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let run = state.create_run("perizinan", t0, 0x3f9c).unwrap();
    let fields = HeaderFields {
        run: run.id().to_string(),
        app: "perizinan".into(),
        playbook_sha256: "a".repeat(64),
        plan_sha256: "b".repeat(64),
        operator: "andi".into(),
        host: "srv1".into(),
        started: t0,
    };
    let mut j = Journal::create(&run.journal_path(), &fields).unwrap();
    for i in 0..3 {
        let id = format!("c{i}");
        j.append(&Record::Intent {
            step: "app".into(),
            change_id: id.clone(),
            change: json!({"create": "container", "name": format!("x{i}")}),
            undo: json!({"remove": format!("x{i}")}),
        })
        .unwrap();
        j.append(&Record::Done {
            step: "app".into(),
            change_id: id,
            facts: json!({"id": i}),
        })
        .unwrap();
    }
    run.journal_path()
}

#[test]
fn intact_journal_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    write_run(&state);
    let (code, out, err) = verify(dir.path(), "perizinan");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("intact, 7 lines"), "{out}");
}

#[test]
fn edited_dropped_and_reordered_records_are_named() {
    type Tamper = fn(&mut Vec<String>);
    let cases: [(&str, Tamper, &str); 3] = [
        (
            "edit",
            |l| l[3] = l[3].replace("\"x1\"", "\"evil\""),
            "line 4",
        ),
        ("drop", |l| drop(l.remove(3)), "line 4"),
        ("swap", |l| l.swap(2, 3), "line 3"),
    ];
    for (what, tamper, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let path = write_run(&state);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        tamper(&mut lines);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let (code, _, err) = verify(dir.path(), "perizinan");
        assert_eq!(code, 1, "{what}: tampering must be found");
        assert!(
            err.contains("BROKEN") && err.contains(expect),
            "{what}: {err}"
        );
    }
}

#[test]
fn unknown_app_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = verify(dir.path(), "nothing-here");
    assert_eq!(code, 2);
    assert!(err.contains("has no runs"), "{err}");
    let (code, _, _) = verify(dir.path(), "../etc");
    assert_eq!(code, 2, "a path is not an app name");
}
