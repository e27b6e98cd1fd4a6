use super::*;
use std::time::{Duration, UNIX_EPOCH};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn app_names() {
    for good in ["a", "0", "perizinan", "sim-ktp-2", &"a".repeat(63)] {
        assert!(is_valid_app_name(good), "{good}");
    }
    for bad in [
        "",
        "-a",
        "A",
        "a_b",
        "a/b",
        "..",
        ".",
        "a.b",
        "é",
        &"a".repeat(64),
    ] {
        assert!(!is_valid_app_name(bad), "{bad}");
    }
    let s = StateDir::new("/nonexistent");
    assert!(matches!(
        s.app_dir(".."),
        Err(StateError::InvalidAppName(_))
    ));
    assert!(s.lock_path("../x").is_err());
    assert!(s.runs("A").is_err());
}

#[test]
fn layout_and_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state");
    let s = StateDir::new(&root);
    assert_eq!(s.apps().unwrap(), Vec::<String>::new());
    assert_eq!(s.latest_run("app").unwrap(), None);
    assert_eq!(s.lock_path("app").unwrap(), root.join("apps/app/lock"));

    let r1 = s.create_run("web", at(1_795_348_981), 0x3f9c).unwrap();
    let r2 = s.create_run("web", at(1_795_348_982), 0x0001).unwrap();
    let r0 = s.create_run("web", at(1_700_000_000), 0xffff).unwrap();
    s.create_run("api", at(1_700_000_000), 7).unwrap();
    assert_eq!(r1.path(), root.join("apps/web/runs/20261122T120301Z-3f9c"));
    assert_eq!(r1.journal_path(), r1.path().join("journal.jsonl"));
    assert_eq!(r1.plan_path(), r1.path().join("plan.json"));
    assert_eq!(r1.playbook_path(), r1.path().join("playbook.yml"));
    assert_eq!(r1.log_path(), r1.path().join("log.jsonl"));
    assert!(r1.artifacts_dir().is_dir());
    for dir in [
        &root,
        &root.join("apps/web"),
        r1.path(),
        &r1.artifacts_dir(),
    ] {
        let mode = fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    assert!(matches!(
        s.create_run("web", at(1_795_348_981), 0x3f9c),
        Err(StateError::RunExists { .. })
    ));

    // Stray entries are ignored.
    fs::create_dir(root.join("apps/Not-An-App")).unwrap();
    fs::write(root.join("apps/file"), b"").unwrap();
    fs::create_dir(s.runs_dir("web").unwrap().join("tmp")).unwrap();
    std::os::unix::fs::symlink(
        r1.path(),
        s.runs_dir("web").unwrap().join("20300101T000000Z-0000"),
    )
    .unwrap();

    assert_eq!(s.apps().unwrap(), ["api", "web"]);
    let runs = s.runs("web").unwrap();
    assert_eq!(runs, [r0.id().clone(), r1.id().clone(), r2.id().clone()]);
    assert_eq!(s.latest_run("web").unwrap().as_ref(), Some(r2.id()));
    assert_eq!(s.run("web", r2.id()).unwrap(), r2);
    assert_eq!(s.ensure_app_dir("db").unwrap(), root.join("apps/db"));
    assert_eq!(s.runs("db").unwrap(), Vec::<RunId>::new());
}
