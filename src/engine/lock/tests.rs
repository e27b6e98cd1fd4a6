use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

fn holder(pid: u32, host: &str, operator: &str) -> Holder {
    let started = UNIX_EPOCH + Duration::from_secs(1_795_348_981);
    Holder::new(pid, host, operator, "boyong run", started).unwrap()
}

fn me(operator: &str) -> Holder {
    holder(std::process::id(), "srv1", operator)
}

/// A pid that has exited (and been reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn lock_path(dir: &tempfile::TempDir) -> PathBuf {
    let app = dir.path().join("apps/perizinan");
    fs::create_dir_all(&app).unwrap();
    app.join("lock")
}

fn content(path: &Path) -> Option<Holder> {
    serde_json::from_slice(&fs::read(path).unwrap()).ok()
}

/// Holds the OS lock on `path` with `h` written in it, as another run would.
fn hold(path: &Path, h: &Holder) -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    f.try_lock().unwrap();
    f.set_len(0).unwrap();
    f.write_all_at(&serde_json::to_vec(h).unwrap(), 0).unwrap();
    f
}

#[test]
fn second_acquire_in_same_process_is_held_and_names_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_path(&dir);
    let first = holder(4242, "srv1", "andi");
    let lock = AppLock::acquire(&path, first.clone()).unwrap();
    assert_eq!(lock.holder(), &first);
    assert_eq!(lock.previous(), None);
    assert_eq!(content(&path).as_ref(), Some(&first));
    let raw: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        raw,
        serde_json::json!({"pid": 4242, "host": "srv1", "operator": "andi",
            "command": "boyong run", "started": "2026-11-22T12:03:01Z"})
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // std's try_lock is flock(2): separate opens conflict even in one process.
    let err = AppLock::acquire(&path, me("budi")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "app `perizinan` is locked by pid 4242 (operator andi on host srv1, `boyong run`, \
         since 2026-11-22T12:03:01Z)"
    );
    assert!(matches!(err, LockError::Held { holder: Some(h), .. } if *h == first));
    assert_eq!(
        content(&path).as_ref(),
        Some(&first),
        "a failed acquire must not write"
    );

    drop(lock);
    assert_eq!(fs::read(&path).unwrap(), b"", "drop clears the holder");
    let lock = AppLock::acquire(&path, me("budi")).unwrap();
    assert_eq!(lock.previous(), None);
    lock.release().unwrap();
    assert!(AppLock::acquire(&path, me("citra")).is_ok());
}

#[test]
fn held_with_unreadable_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_path(&dir);
    let f = hold(&path, &me("x"));
    f.set_len(3).unwrap();
    let err = AppLock::acquire(&path, me("y")).unwrap_err();
    assert!(matches!(err, LockError::Held { holder: None, .. }));
    assert!(err.to_string().contains("holder unknown"), "{err}");
    assert!(matches!(
        AppLock::break_and_acquire(&path, me("y"), "r"),
        Err(LockError::HolderUnknown { .. })
    ));
}

#[test]
fn crashed_previous_holder_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_path(&dir);
    for (h, liveness) in [
        (holder(dead_pid(), "srv1", "andi"), Liveness::Dead),
        (holder(dead_pid(), "srv2", "andi"), Liveness::Unknown),
        (me("andi"), Liveness::Alive), // pid reused: alive, but not the holder
    ] {
        fs::write(&path, serde_json::to_vec(&h).unwrap()).unwrap(); // left, not locked
        let lock = AppLock::acquire(&path, me("budi")).unwrap();
        assert_eq!(lock.previous(), Some((&h, liveness)));
        assert_eq!(content(&path), Some(me("budi")));
    }
}

#[test]
fn liveness() {
    assert_eq!(me("a").is_process_alive("srv1"), Liveness::Alive);
    assert_eq!(me("a").is_process_alive("srv2"), Liveness::Unknown);
    assert_eq!(
        holder(dead_pid(), "srv1", "a").is_process_alive("srv1"),
        Liveness::Dead
    );
    assert_eq!(
        holder(0, "srv1", "a").is_process_alive("srv1"),
        Liveness::Unknown
    );
    assert_eq!(
        holder(u32::MAX, "srv1", "a").is_process_alive("srv1"),
        Liveness::Dead
    );
}

#[test]
fn break_refuses_live_local_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_path(&dir);
    let lock = AppLock::acquire(&path, me("andi")).unwrap();
    let err = AppLock::break_and_acquire(&path, me("budi"), "stuck").unwrap_err();
    assert!(matches!(
        err,
        LockError::HolderAlive {
            liveness: Liveness::Alive,
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("refusing to break the lock of app `perizinan`: pid")
    );
    assert_eq!(content(&path), Some(me("andi")));
    drop(lock);
}

#[test]
fn break_takes_lock_of_remote_or_dead_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_path(&dir);
    for (old, liveness) in [
        (holder(4242, "srv2", "andi"), Liveness::Unknown),
        (holder(dead_pid(), "srv1", "andi"), Liveness::Dead),
    ] {
        let stale = hold(&path, &old);
        let lock = AppLock::break_and_acquire(&path, me("budi"), "srv2 is gone").unwrap();
        let broken = BrokenLock {
            holder: old.clone(),
            liveness,
            reason: "srv2 is gone".into(),
        };
        assert_eq!(lock.broken(), Some(&broken));
        assert!(broken.to_string().starts_with("broke lock held by pid "));
        assert_eq!(content(&path), Some(me("budi")));
        let err = AppLock::acquire(&path, me("citra")).unwrap_err();
        assert!(matches!(err, LockError::Held { holder: Some(h), .. } if *h == me("budi")));
        drop(stale);
        drop(lock);
    }
    // Not held: plain acquire, nothing broken.
    let lock = AppLock::break_and_acquire(&path, me("dewi"), "r").unwrap();
    assert_eq!(lock.broken(), None);
}
