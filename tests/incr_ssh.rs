//! The incremental second pull against a real OpenSSH server: an unchanged tree moves no
//! file content; changed, added, deleted, re-moded and re-linked entries give the very
//! manifest and tree file of a full pull of the same tree; `incremental: digest` catches a
//! change that kept the size and the time; a freeze step's undo runs on rollback and the
//! run reports the freeze window.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use boyong::artifact::manifest;
use serde_json::Value;
use support::env::Env;
use support::text;

/// Sets a file's modification time to `secs_ago` seconds before now.
fn age(p: &Path, secs_ago: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs_ago))
        .unwrap();
}

/// A vendor tree with the names and kinds that break naive copies, every file an hour old.
fn vendor_tree(root: &Path) {
    let w = |p: &str, data: &[u8]| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    };
    w("index.php", b"<?php echo 'halo';\n");
    w("app/config/db.php", b"<?php return [];\n");
    w("app/name with space.txt", b"spasi");
    w("app/back\\slash", b"bs");
    w("app/new\nline", b"nl");
    w("app/-leading-dash", b"dash");
    w("empty-file", b"");
    w("cache/session-1", b"excluded");
    w("bin/run.sh", b"#!/bin/sh\necho run\n");
    w("bin/suid", b"suid");
    std::fs::set_permissions(
        root.join("bin/suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("uploads/empty")).unwrap();
    std::os::unix::fs::symlink("../index.php", root.join("app/link-inside")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("app/link-outside")).unwrap();
    std::fs::hard_link(root.join("index.php"), root.join("index-hardlink.php")).unwrap();
    for i in 0..300 {
        w(
            &format!("many/{:02}/f{i}.txt", i % 20),
            format!("file {i}\n").as_bytes(),
        );
    }
    age_all(root);
}

/// Every regular file under `root` an hour old.
fn age_all(root: &Path) {
    for e in walk(root) {
        if std::fs::symlink_metadata(&e).unwrap().is_file() {
            age(&e, 3600);
        }
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

struct Incr {
    env: Env,
}

impl Incr {
    fn new(test: &str) -> Option<Self> {
        let env = Env::builder(test).sshd().plan_fidelity().build()?;
        vendor_tree(&env.path("vendor/www"));
        Some(Self { env })
    }

    fn src(&self) -> PathBuf {
        self.env.path("vendor/www")
    }

    /// The playbook: one fetch with `incremental` as given (none: the default), and
    /// `more` steps after it.
    fn playbook(&self, incremental: Option<&str>, more: &str) -> PathBuf {
        let s = self.env.sshd();
        let inc = incremental.map_or(String::new(), |i| format!("\n      incremental: {i}"));
        self.env.write(
            "app.yml",
            format!(
                r#"version: 1
app: wisata
vendor:
  host: 127.0.0.1
  port: {port}
  user: {user}
  identity: {key}
  known_hosts: {kh}
steps:
  - id: code
    fetch:
      path: {src}
      exclude: ["cache/"]{inc}
{more}"#,
                port = s.port,
                user = s.user,
                key = s.client_key.display(),
                kh = s.known_hosts.display(),
                src = self.src().display(),
            ),
        )
    }

    /// Runs the playbook; the run's directory.
    fn pull(&self, incremental: Option<&str>) -> PathBuf {
        let pb = self.playbook(incremental, "");
        let out = self.env.run(&["run", pb.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        self.env.last_run("wisata")
    }
}

/// The facts of step `code` in a run's journal.
fn facts(run: &Path) -> Value {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "step-done" && v["step"] == "code")
        .map(|v| v["facts"].clone())
        .expect("step `code` done")
}

/// The manifest and tree file of a run's artifact.
fn described(run: &Path) -> (String, String) {
    let a = run.join("artifacts");
    (
        std::fs::read_to_string(a.join("code.manifest")).unwrap(),
        std::fs::read_to_string(a.join("code.tree")).unwrap(),
    )
}

/// The artifact verifies against its manifest with coreutils, and against its tree file.
fn verifies(run: &Path) {
    let a = run.join("artifacts");
    let check = std::process::Command::new("sha256sum")
        .args(["--strict", "--quiet", "-c"])
        .arg(a.join("code.manifest"))
        .current_dir(a.join("code"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stdout));
    let m = std::fs::read(a.join("code.manifest")).unwrap();
    let t = std::fs::read(a.join("code.tree")).unwrap();
    let tree = manifest::parse(&m, &t).unwrap();
    manifest::verify(&a.join("code"), &tree).unwrap();
}

#[test]
fn an_unchanged_repull_moves_no_content_and_every_kind_of_change_gives_a_full_pulls_manifest() {
    let Some(t) = Incr::new("incr") else { return };
    let first = t.pull(None);
    let f1 = facts(&first);
    assert!(
        f1.get("incremental").is_none(),
        "a first pull is a full pull: {f1}"
    );
    assert!(f1["transferred"].as_u64().unwrap() > 0);

    // Unchanged: nothing asked for, nothing moved, the same descriptions.
    let second = t.pull(None);
    let f2 = facts(&second);
    assert_eq!(f2["incremental"]["pulled"], 0, "{f2}");
    assert_eq!(f2["transferred"], 0, "{f2}");
    assert_eq!(
        f2["incremental"]["from_run"],
        first.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(described(&second), described(&first));
    verifies(&second);

    // Every kind of change.
    let src = t.src();
    std::fs::write(src.join("index.php"), b"<?php echo 'halo dunia';\n").unwrap(); // and its hard link
    std::fs::write(src.join("app/back\\slash"), b"BS").unwrap(); // same size, new time
    age(&src.join("app/back\\slash"), 1800);
    std::fs::write(src.join("app/added file.txt"), b"new").unwrap();
    std::fs::create_dir_all(src.join("added/dir")).unwrap();
    std::fs::write(src.join("added/dir/x"), b"x").unwrap();
    std::fs::remove_file(src.join("many/03/f3.txt")).unwrap();
    std::fs::remove_dir_all(src.join("many/07")).unwrap();
    std::fs::set_permissions(
        src.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(src.join("uploads"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::remove_file(src.join("app/link-inside")).unwrap();
    std::os::unix::fs::symlink("config/db.php", src.join("app/link-inside")).unwrap();
    std::fs::remove_file(src.join("app/new\nline")).unwrap();
    std::os::unix::fs::symlink("back\\slash", src.join("app/new\nline")).unwrap();
    age_all(&src.join("added"));
    age(&src.join("app/added file.txt"), 600);
    age(&src.join("index.php"), 600);

    let third = t.pull(None);
    let f3 = facts(&third);
    // index.php, its hard link, back\slash, run.sh (mode), two added files.
    assert_eq!(f3["incremental"]["pulled"], 6, "{f3}");
    assert_eq!(f3["incremental"]["deleted"], 16, "{f3}"); // f3 and the 15 files of many/07
    verifies(&third);
    // The same tree pulled whole.
    let full = t.pull(Some("false"));
    assert!(facts(&full).get("incremental").is_none());
    assert_eq!(described(&third), described(&full));
    let expected = {
        let mut e = manifest::scan(&src).unwrap();
        e.retain(|k, _| !k.starts_with(b"cache"));
        if let Some(boyong::artifact::Node::File { mode, .. }) = e.get_mut(b"bin/suid".as_slice()) {
            *mode = 0o755;
        }
        e
    };
    assert_eq!(
        manifest::scan(&third.join("artifacts/code")).unwrap(),
        expected
    );
    // The earlier artifact is untouched by the later one.
    verifies(&first);
    assert_eq!(described(&second), described(&first));
}

#[test]
fn digest_mode_catches_a_change_that_kept_the_size_and_the_time() {
    let Some(t) = Incr::new("incr-digest") else {
        return;
    };
    let first = t.pull(None);
    let p = t.src().join("app/config/db.php");
    let when = std::fs::metadata(&p).unwrap().modified().unwrap();
    std::fs::write(&p, b"<?php return[1];\n").unwrap(); // the same 17 bytes as before
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(when)
        .unwrap();
    // Sizes and times: the change is not seen (what `digest` is for).
    let stat = t.pull(None);
    assert_eq!(described(&stat), described(&first));
    // Digests: it is.
    let digest = t.pull(Some("digest"));
    let f = facts(&digest);
    assert_eq!(f["incremental"]["pulled"], 1, "{f}");
    assert!(f["incremental"]["digested"].as_u64().unwrap() > 300, "{f}");
    verifies(&digest);
    let full = t.pull(Some("false"));
    assert_eq!(described(&digest), described(&full));
    assert_ne!(described(&digest), described(&first));
}

#[test]
fn a_failed_cut_over_after_a_freeze_unfreezes_the_vendor_app() {
    let Some(t) = Incr::new("incr-freeze") else {
        return;
    };
    let _ = t.pull(None);
    let flag = t.env.path("vendor/maintenance.flag");
    let f = flag.display();
    let freeze = format!(
        "  - id: freeze\n    exec:\n      run: touch {f}\n      undo: rm -f {f}\n      freeze: true\n"
    );
    // The freeze first, then the final (incremental) pull, then a step that fails.
    let pb = t.playbook(None, "  - id: broken\n    exec: { run: exit 3 }\n");
    let text_pb = std::fs::read_to_string(&pb).unwrap();
    let text_pb = text_pb.replacen("steps:\n", &format!("steps:\n{freeze}"), 1);
    std::fs::write(&pb, &text_pb).unwrap();
    let v = t.env.run(&["validate", pb.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    let out = t.env.run(&["run", pb.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0), "the run fails at `broken`");
    let run = t.env.last_run("wisata");
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(journal.contains("touch"), "the freeze ran: {journal}");
    assert!(
        !flag.exists(),
        "rollback ran the freeze's undo: {}",
        text(&out.stderr)
    );
    // The final pull was incremental (built on the first run).
    assert_eq!(facts(&run)["incremental"]["pulled"], 0);
}

#[test]
fn a_repull_whose_connection_is_refused_leaves_no_partial_tree_and_the_earlier_untouched() {
    let Some(t) = Incr::new("incr-refused") else {
        return;
    };
    // Enough files that linking them takes longer than the refused connection.
    for d in 0..10 {
        let dir = t.src().join(format!("bulk/{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..100 {
            std::fs::write(dir.join(format!("{i}.txt")), b"x").unwrap();
        }
    }
    age_all(&t.src().join("bulk"));
    let first = t.pull(None);
    // The earlier tree is linked in as soon as the step starts, before the connection;
    // the vendor's host key then fails to match (the key on record replaced by another).
    let s = t.env.sshd();
    let line = std::fs::read_to_string(&s.known_hosts).unwrap();
    let other = std::fs::read_to_string(s.client_key.with_extension("pub")).unwrap();
    let host = line.split_whitespace().next().unwrap();
    let alg_and_key: Vec<&str> = other.split_whitespace().take(2).collect();
    std::fs::write(
        &s.known_hosts,
        format!("{host} {}\n", alg_and_key.join(" ")),
    )
    .unwrap();
    let pb = t.playbook(None, "");
    let out = t.env.run(&["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.to_lowercase().contains("host key"), "{err}");
    let failed = t.env.last_run("wisata");
    assert_ne!(failed, first);
    let left: Vec<String> = std::fs::read_dir(failed.join("artifacts"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "the failed pull left {left:?}");
    verifies(&first);
}
