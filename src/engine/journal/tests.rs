use super::*;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

mod tamper_tests;

const T0: u64 = 1_795_348_981; // 2026-11-22T12:03:01Z

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn fields() -> HeaderFields {
    HeaderFields {
        run: "20261122T120301Z-3f9c".into(),
        app: "perizinan".into(),
        playbook_sha256: "aa".repeat(32),
        plan_sha256: "bb".repeat(32),
        operator: "andi".into(),
        host: "srv1".into(),
        started: at(T0),
    }
}

fn records() -> Vec<Record> {
    let s = || "s1".to_owned();
    let c = || "c1".to_owned();
    vec![
        Record::StepStarted { step: s() },
        Record::Intent {
            step: s(),
            change_id: c(),
            change: json!({"file": "/etc/x", "mode": "0644"}),
            undo: json!({"restore": "artifacts/x"}),
        },
        Record::Done {
            step: s(),
            change_id: c(),
            facts: json!({"changed": true}),
        },
        Record::Failed {
            step: s(),
            change_id: None,
            error: "boom\nline two".into(),
        },
        Record::StepDone {
            step: s(),
            facts: json!(null),
        },
        Record::StepFailed {
            step: s(),
            error: "e".into(),
        },
        Record::UndoIntent {
            change_id: c(),
            step: s(),
        },
        Record::Undone {
            change_id: c(),
            step: s(),
        },
        Record::UndoFailed {
            change_id: c(),
            step: s(),
            error: "e".into(),
        },
        Record::Note {
            kind: "lock-broken".into(),
            text: "pid 1 on srv2".into(),
        },
        Record::RunFinished {
            result: "rolled-back".into(),
        },
    ]
}

/// A journal with a header and all 11 record kinds: lines 1..=12.
fn sample(dir: &Path) -> PathBuf {
    let path = dir.join("journal.jsonl");
    let mut j = Journal::create(&path, &fields()).unwrap();
    for (i, r) in records().iter().enumerate() {
        assert_eq!(j.append_at(r, at(T0 + i as u64)).unwrap(), i as u64 + 1);
    }
    path
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Appends `obj` with a correct `prev`, bypassing [`Journal`].
fn append_raw(path: &Path, mut obj: Value) {
    let last = lines(path).pop().unwrap();
    obj["prev"] = json!(sha256_hex(last.as_bytes()));
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    writeln!(f, "{obj}").unwrap();
}

fn problem(path: &Path) -> Problem {
    verify(path).unwrap().problem.unwrap()
}

#[test]
fn sha256_known_vector() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let l = lines(&path);
    assert_eq!(
        l[0],
        format!(
            r#"{{"type":"header","format":1,"run":"20261122T120301Z-3f9c","app":"perizinan","playbook_sha256":"{}","plan_sha256":"{}","operator":"andi","host":"srv1","started":"2026-11-22T12:03:01Z","prev":null}}"#,
            "aa".repeat(32),
            "bb".repeat(32)
        )
    );
    assert!(l[1].starts_with(
        r#"{"type":"step-started","step":"s1","seq":1,"at":"2026-11-22T12:03:01Z","prev":""#
    ));
    for w in l.windows(2) {
        let v: Value = serde_json::from_str(&w[1]).unwrap();
        assert_eq!(v["prev"], json!(sha256_hex(w[0].as_bytes())));
    }
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let c = read(&path).unwrap();
    assert_eq!(c.header.app, "perizinan");
    assert_eq!(c.header.format, 1);
    assert_eq!(c.header.started, "2026-11-22T12:03:01Z");
    assert!(!c.torn_tail);
    assert_eq!(
        c.entries
            .iter()
            .map(|e| e.record.clone())
            .collect::<Vec<_>>(),
        records()
    );
    for (i, e) in c.entries.iter().enumerate() {
        assert_eq!((e.seq, e.line), (i as u64 + 1, i + 2));
    }
    assert_eq!(c.entries[1].at, "2026-11-22T12:03:02Z");
    assert_eq!(c.head_sha256, sha256_hex(l[11].as_bytes()));

    let report = verify(&path).unwrap();
    assert!(report.is_clean() && report.is_intact() && !report.torn_tail);
    assert_eq!(report.lines, 12);
    assert_eq!(report.head_sha256.as_deref(), Some(c.head_sha256.as_str()));

    assert!(matches!(
        Journal::create(&path, &fields()),
        Err(JournalError::Exists { .. })
    ));
    assert_eq!(lines(&path), l, "refused create must not touch the file");
}

#[test]
fn appends_are_unbuffered_and_resume_continues_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let mut j = Journal::create(&path, &fields()).unwrap();
    assert_eq!(
        lines(&path).len(),
        1,
        "header is on disk before create returns"
    );
    j.append(&Record::StepStarted { step: "a".into() }).unwrap();
    assert_eq!(
        lines(&path).len(),
        2,
        "record is on disk before append returns"
    );
    assert_eq!(j.head_sha256(), sha256_hex(lines(&path)[1].as_bytes()));
    drop(j);

    let (mut j, c) = Journal::open_append(&path).unwrap();
    assert_eq!(
        (c.entries.len(), j.next_seq(), j.repaired_torn_tail()),
        (1, 2, None)
    );
    j.append_at(
        &Record::RunFinished {
            result: "succeeded".into(),
        },
        at(T0),
    )
    .unwrap();
    assert!(verify(&path).unwrap().is_clean());
    assert_eq!(read(&path).unwrap().entries[1].seq, 2);
}

#[test]
fn torn_tail_is_reported_then_repaired_by_open_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"type":"note","kind":"x","te"#).unwrap();
    drop(f);

    let report = verify(&path).unwrap();
    assert!(report.torn_tail && report.is_intact() && !report.is_clean());
    assert_eq!(report.lines, 12);
    let p = report.problem.unwrap();
    assert_eq!(
        p,
        Problem {
            line: 13,
            kind: ProblemKind::TornTail { bytes: 29 }
        }
    );
    assert!(p.to_string().contains("torn"), "{p}");

    let before = fs::read(&path).unwrap();
    let c = read(&path).unwrap();
    assert!(c.torn_tail);
    assert_eq!(c.entries.len(), 11);
    assert_eq!(fs::read(&path).unwrap(), before, "read must not repair");

    let (mut j, c) = Journal::open_append(&path).unwrap();
    assert!(c.torn_tail);
    assert_eq!(j.repaired_torn_tail(), Some(29));
    assert_eq!(j.next_seq(), 12);
    j.append_at(
        &Record::Note {
            kind: "resumed".into(),
            text: String::new(),
        },
        at(T0),
    )
    .unwrap();
    let report = verify(&path).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.lines, 13);

    // A torn header: nothing to resume.
    let torn = dir.path().join("torn.jsonl");
    fs::write(&torn, br#"{"type":"header","form"#).unwrap();
    assert!(matches!(
        Journal::open_append(&torn),
        Err(JournalError::Broken {
            problem: Problem {
                line: 1,
                kind: ProblemKind::NoHeader
            },
            ..
        })
    ));
    fs::write(&torn, b"").unwrap();
    assert_eq!(problem(&torn).kind, ProblemKind::NoHeader);
}

#[test]
fn open_append_refuses_broken_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let mut l = lines(&path);
    l.remove(3);
    write_lines(&path, &l);
    let before = fs::read(&path).unwrap();
    let err = Journal::open_append(&path).unwrap_err();
    assert!(matches!(
        err,
        JournalError::Broken {
            problem: Problem { line: 4, .. },
            ..
        }
    ));
    assert!(err.to_string().contains("is broken: line 4:"), "{err}");
    assert!(matches!(read(&path), Err(JournalError::Broken { .. })));
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn unknown_fields_tolerated_unknown_types_and_formats_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let header = json!({"type": "header", "format": 1, "run": "r", "app": "a",
        "playbook_sha256": "p", "plan_sha256": "q", "operator": "o", "host": "h",
        "started": "s", "prev": null, "added_in_future": [1, 2]});
    fs::write(&path, format!("{header}\n")).unwrap();
    append_raw(
        &path,
        json!({"type": "done", "seq": 1, "at": "t", "step": "s",
        "change_id": "c", "facts": {}, "future": {"x": 1}}),
    );
    append_raw(
        &path,
        json!({"type": "failed", "seq": 2, "at": "t", "step": "s", "error": "e"}),
    );
    let c = read(&path).unwrap();
    assert_eq!(c.entries.len(), 2);
    assert_eq!(
        c.entries[1].record,
        Record::Failed {
            step: "s".into(),
            change_id: None,
            error: "e".into()
        }
    );
    let (mut j, _) = Journal::open_append(&path).unwrap();
    j.append(&Record::RunFinished {
        result: "failed".into(),
    })
    .unwrap();

    append_raw(&path, json!({"type": "teleport", "seq": 4, "at": "t"}));
    let err = read(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("line 5: unknown record type \"teleport\""),
        "{err}"
    );

    append_raw(&path, json!({"type": "done", "seq": 5}));
    let mut l = lines(&path);
    l.remove(4);
    write_lines(&path, &l);
    assert!(matches!(
        problem(&path),
        Problem {
            line: 5,
            kind: ProblemKind::InvalidRecord(_)
        }
    ));

    let v2 = header.to_string().replace("\"format\":1", "\"format\":2");
    fs::write(&path, format!("{v2}\n")).unwrap();
    let p = problem(&path);
    assert_eq!(
        p,
        Problem {
            line: 1,
            kind: ProblemKind::UnsupportedFormat("2".into())
        }
    );
    assert!(p.to_string().contains("unsupported format 2"));
    let bad_prev = header
        .to_string()
        .replace("\"prev\":null", "\"prev\":\"x\"");
    fs::write(&path, format!("{bad_prev}\n")).unwrap();
    assert!(matches!(problem(&path).kind, ProblemKind::InvalidHeader(_)));
}
