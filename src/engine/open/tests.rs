use super::*;
use crate::engine::journal::{JournalContents, Record};
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, UNIX_EPOCH};

const DEMO: &str = include_str!("../../../fixtures/engine/demo.yml");

fn demo() -> Playbook {
    crate::playbook::parse(Path::new("demo.yml"), DEMO.as_bytes())
        .playbook
        .unwrap()
}

fn key() -> crate::engine::journal::JournalKey {
    crate::engine::journal::JournalKey::new([9; 32])
}

fn who() -> Who {
    Who {
        operator: "andi".into(),
        host: "srv1".into(),
    }
}

/// A state directory with one new run of the demo app, its journal ended by `records`.
fn with_run(records: &[Record]) -> (tempfile::TempDir, StateDir, RunDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path().join("state"));
    let pb = demo();
    let mut plan = crate::steps::plan(&pb);
    let mut opened = create_run(&dir, &pb, DEMO, &mut plan, &who(), Some(&key())).unwrap();
    for r in records {
        opened.journal.append(r).unwrap();
    }
    (tmp, dir, opened.run)
}

fn finished(result: &str) -> Record {
    Record::RunFinished {
        result: result.into(),
    }
}

fn reopen(dir: &StateDir, text: &str) -> Result<OpenedRun, ResumeRefusal> {
    let pb = crate::playbook::parse(Path::new("demo.yml"), text.as_bytes())
        .playbook
        .unwrap();
    reopen_run(
        dir,
        &pb,
        text,
        &mut crate::steps::plan(&pb),
        &who(),
        Some(&key()),
    )
}

fn refusal(records: &[Record]) -> (String, ResumeRefusal) {
    let (_tmp, dir, run) = with_run(records);
    let e = reopen(&dir, DEMO).unwrap_err();
    (run.id().to_string(), e)
}

#[test]
fn a_new_run_has_its_playbook_plan_and_header() {
    let (_tmp, _dir, run) = with_run(&[]);
    assert_eq!(fs::read_to_string(run.playbook_path()).unwrap(), DEMO);
    let plan: serde_json::Value =
        serde_json::from_slice(&fs::read(run.plan_path()).unwrap()).unwrap();
    assert_eq!(plan["app"], "demo");
    let contents: JournalContents = journal::read(&run.journal_path()).unwrap();
    assert_eq!(contents.header.run, run.id().as_str());
    assert_eq!(
        (
            contents.header.operator.as_str(),
            contents.header.host.as_str()
        ),
        ("andi", "srv1")
    );
    assert_eq!(
        contents.header.plan_sha256,
        journal::sha256_hex(&fs::read(run.plan_path()).unwrap())
    );
    for f in [run.playbook_path(), run.plan_path()] {
        let mode = fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}

#[test]
fn no_run_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    let e = reopen(&dir, DEMO).unwrap_err();
    assert!(matches!(e, ResumeRefusal::NoRuns { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "app `demo` has no run to resume; run it without --resume"
    );
}

#[test]
fn a_run_that_ended_is_not_resumed() {
    let (id, e) = refusal(&[finished("succeeded")]);
    assert!(matches!(e, ResumeRefusal::Succeeded { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("the last run of `demo` ({id}) succeeded: nothing to resume")
    );
    let (id, e) = refusal(&[finished("rolled-back")]);
    assert!(matches!(e, ResumeRefusal::RolledBack { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("the last run of `demo` ({id}) was rolled back: start a new run without --resume")
    );
    let (id, e) = refusal(&[finished("rollback-incomplete")]);
    assert!(
        matches!(e, ResumeRefusal::RollbackIncomplete { .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "the last run of `demo` ({id}) has an incomplete rollback: finish it with `boyong rollback demo` first"
        )
    );
}

#[test]
fn an_unfinished_rollback_is_finished_first() {
    let (id, e) = refusal(&[
        finished("failed"),
        Record::Note {
            kind: "rollback".into(),
            text: "requested by andi".into(),
        },
    ]);
    assert!(
        matches!(e, ResumeRefusal::RollbackUnfinished { .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "a rollback of the last run of `demo` ({id}) began and did not finish: finish it with `boyong rollback demo` first"
        )
    );
}

#[test]
fn an_edited_playbook_is_saved_as_a_new_version_and_journaled_with_its_step_diff() {
    let (_tmp, dir, run) = with_run(&[finished("failed")]);
    let changed = DEMO.replace("retries: 0", "retries: 1");
    let opened = reopen(&dir, &changed).unwrap();
    let edit = opened.edit.clone().unwrap();
    assert_eq!(edit.version, 2);
    assert_eq!(opened.redo_from, Some(0));
    assert_eq!(
        edit.diff.to_string(),
        "  ~ code   changed: retries\n  = maint  unchanged\n  = image  unchanged\n  = web    unchanged\n"
    );
    // The first version stays as it was; the new one is beside it.
    assert_eq!(fs::read_to_string(run.playbook_path()).unwrap(), DEMO);
    assert_eq!(
        fs::read_to_string(run.playbook_version_path(2)).unwrap(),
        changed
    );
    assert_eq!(run.version(), 2);
    drop(opened);
    let contents = journal::read(&run.journal_path()).unwrap();
    assert!(matches!(
        &contents.entries.last().unwrap().record,
        Record::Note { kind, text } if kind == EDITED
            && text.starts_with("playbook edited: version 2 (playbook.v2.yml sha256 ")
            && text.contains("steps from `code` on are redone\n  ~ code   changed: retries\n")
    ));
    // The same text again is no new edit.
    let again = reopen(&dir, &changed).unwrap();
    assert_eq!(again.edit, None);
    assert_eq!(run.version(), 2);
}

#[test]
fn an_unfinished_run_is_resumed_and_says_who_resumed_it() {
    for tail in [
        vec![],
        vec![finished("failed")],
        vec![finished("interrupted")],
    ] {
        let (_tmp, dir, run) = with_run(&tail);
        let opened = reopen(&dir, DEMO).unwrap();
        assert_eq!(opened.run, run);
        assert!(opened.earlier.is_some());
        let h = History::from_journal(&journal::read(&run.journal_path()).unwrap());
        assert_eq!(h.resumes, 1);
        let contents = journal::read(&run.journal_path()).unwrap();
        assert!(matches!(
            &contents.entries.last().unwrap().record,
            Record::Note { kind, text } if kind == "resumed" && text == "resumed by andi on srv1"
        ));
    }
}

#[test]
fn run_ids_of_the_same_second_sort_in_the_order_runs_began() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    let now = UNIX_EPOCH + Duration::from_secs(1_795_348_981);
    let first = next_suffix(&dir, "demo", now);
    assert!(first < 0x8000, "{first:#x}: room above it");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let run = dir
            .create_run("demo", now, next_suffix(&dir, "demo", now))
            .unwrap();
        ids.push(run.id().clone());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(ids[0], RunId::new(now, first).unwrap());
    // Another second starts afresh.
    let later = now + Duration::from_secs(1);
    assert!(next_suffix(&dir, "demo", later) < 0x8000);
}

#[test]
fn run_files_are_written_once() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("plan.json");
    write_new(&path, b"x").unwrap();
    let e = write_new(&path, b"y").unwrap_err();
    assert!(matches!(e, CreateError::CreateFile { .. }), "{e:?}");
    assert!(e.to_string().starts_with("cannot create "), "{e}");
    assert_eq!(fs::read(&path).unwrap(), b"x");
}

#[test]
fn find_run_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    let e = find_run(&dir, "demo", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("app `demo` has no runs in {}", tmp.path().display())
    );
    let e = find_run(&dir, "demo", Some("latest")).unwrap_err();
    assert!(matches!(e, FindRunError::BadId { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("`latest` is not a run id: "),
        "{e}"
    );
    let run = dir.create_run("demo", SystemTime::now(), 7).unwrap();
    let e = find_run(&dir, "demo", None).unwrap_err();
    assert!(matches!(e, FindRunError::NoJournal { .. }), "{e:?}");
    let (_tmp, dir, made) = with_run(&[]);
    assert_eq!(find_run(&dir, "demo", None).unwrap(), made);
    assert_eq!(
        find_run(&dir, "demo", Some(made.id().as_str())).unwrap(),
        made
    );
    drop(run);
}

#[test]
fn the_undo_list_notices_a_journal_that_grew() {
    let intent = |id: &str| Record::Intent {
        step: "maint".into(),
        change_id: id.into(),
        change: serde_json::json!({"op": "+", "name": id}),
        undo: serde_json::json!({}),
    };
    let (_tmp, _dir, run) = with_run(&[intent("c1")]);
    let list = UndoList::read(&run, Some(&key())).unwrap();
    assert_eq!(list.pending.len(), 1);
    assert_eq!(list.keying, crate::engine::journal::Keying::Checked);
    assert!(list.is_current(&run));
    // Another installation's key: the MACs do not match, naming line 1.
    let other = crate::engine::journal::JournalKey::new([1; 32]);
    let e = UndoList::read(&run, Some(&other)).unwrap_err();
    assert!(
        e.to_string().contains("line 1 does not match its MAC"),
        "{e}"
    );
    let (mut j, _) = Journal::open_append_keyed(&run.journal_path(), Some(&key())).unwrap();
    j.append(&intent("c2")).unwrap();
    assert!(!list.is_current(&run));
}

#[test]
fn a_lock_is_taken_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    let lock = take_lock(&dir, "demo", "boyong run", false, &who()).unwrap();
    assert_eq!(lock.holder().operator, "andi");
    let e = take_lock(&dir, "demo", "boyong run", false, &who()).unwrap_err();
    assert!(matches!(e, TakeLockError::Held(_)), "{e:?}");
    assert!(matches!(
        take_lock(&dir, "Demo", "boyong run", false, &who()),
        Err(TakeLockError::AppDir(_))
    ));
}
