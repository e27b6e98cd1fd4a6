//! `boyong archive` and `boyong decommission` against a real OpenSSH server and real
//! MariaDB and PostgreSQL servers as the vendor host: a migrated app's fetched tree and
//! database are deleted, checked gone and certified; a sibling app's files and database
//! survive; each precondition refuses by name and changes nothing; a vendor file changed
//! since the pull blocks it; a decommission cut half-way (a refused `DROP`, a dropped
//! connection) is finished by running it again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::db::{Mariadb, Postgres};
use support::env::Env;
use support::text;

const APP: &str = "dectest";

fn said(o: &Output) -> String {
    text(&o.stdout) + &text(&o.stderr)
}

/// The vendor's files: the app's tree (with an excluded cache) and a sibling app's.
fn vendor_files(env: &Env) -> (PathBuf, PathBuf) {
    let app = env.path("vendor/srv/dectest");
    let sibling = env.path("vendor/srv/sibling");
    for (rel, data) in [
        ("dectest/index.php", "<?php echo 'halo';\n"),
        ("dectest/app/config.php", "<?php return [];\n"),
        ("dectest/name with space.txt", "spasi"),
        ("dectest/cache/session-1", "excluded"),
        ("sibling/index.php", "<?php echo 'sibling';\n"),
    ] {
        env.write(&format!("vendor/srv/{rel}"), data);
    }
    (app, sibling)
}

/// The playbook: fetch the app's tree, dump its database (when `db` is given).
fn playbook(env: &Env, tree: &Path, db: Option<&Mariadb>) -> PathBuf {
    let mut pb = format!(
        "version: 1\napp: {APP}\n{vendor}",
        vendor = env.sshd().vendor_yaml()
    );
    if db.is_some() {
        pb.push_str("vars:\n  pw: { env: BOYONG_TEST_DB_PASSWORD }\n");
    }
    let _ = write!(
        pb,
        "steps:\n  - id: code\n    fetch:\n      path: {}\n      exclude: [\"cache/\"]\n",
        tree.display()
    );
    if let Some(db) = db {
        let _ = write!(
            pb,
            "  - id: db\n    dump:\n      engine: mariadb\n      database: {}\n      user: {}\n      password: \"{{{{ vars.pw }}}}\"\n      host: 127.0.0.1\n      port: {}\n",
            db.database, db.user, db.port
        );
    }
    env.write("dectest.yml", pb)
}

fn boyong(env: &Env, db: Option<&Mariadb>, args: &[&str]) -> Output {
    let mut c = env.command(args);
    c.env("BOYONG_OPERATOR", "petugas-uji");
    if let Some(db) = db {
        c.env("BOYONG_TEST_DB_PASSWORD", &db.password);
    }
    c.output().expect("boyong runs")
}

/// A sibling database, and the DROP privilege on the app's own (an app's user owns its
/// database on a real vendor host).
fn prepare_db(db: &Mariadb) {
    db.query(&format!(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO t VALUES (1, 'satu'), (2, 'dua');\n\
         CREATE DATABASE sibling; CREATE TABLE sibling.keep (id INT); INSERT INTO sibling.keep VALUES (7);\n\
         GRANT DROP ON `{d}`.* TO '{u}'@'%';",
        d = db.database,
        u = db.user
    ));
}

/// Root's SQL over the socket, in no database (the app's may be gone).
fn root_sql(db: &Mariadb, sql: &str) -> String {
    let out = std::process::Command::new("/usr/bin/mariadb")
        .args([
            "--no-defaults",
            "-uroot",
            "--protocol=socket",
            "--batch",
            "--skip-column-names",
        ])
        .arg(format!("--socket={}", db.socket.display()))
        .args(["-e", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    text(&out.stdout).trim_end().to_string()
}

fn databases(db: &Mariadb) -> String {
    root_sql(
        db,
        "SELECT schema_name FROM information_schema.schemata ORDER BY 1",
    )
}

fn decommissions(env: &Env) -> Vec<PathBuf> {
    let mut d: Vec<PathBuf> =
        std::fs::read_dir(env.state().join("apps").join(APP).join("decommissions"))
            .map(|r| r.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
    d.sort();
    d
}

/// Nothing was deleted: the tree and the database are there.
fn assert_untouched(tree: &Path, db: Option<&Mariadb>) {
    assert!(
        tree.join("index.php").is_file(),
        "the vendor's tree is untouched"
    );
    if let Some(db) = db {
        assert!(
            databases(db).lines().any(|l| l == db.database),
            "the database is untouched"
        );
    }
}

#[test]
fn a_migrated_app_is_decommissioned_with_a_certificate_and_its_sibling_survives() {
    let Some(env) = Env::builder("decommission").sshd().build() else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    prepare_db(&db);
    let (tree, sibling) = vendor_files(&env);
    let pb = playbook(&env, &tree, Some(&db));
    let run = boyong(&env, Some(&db), &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));

    // No archive: refused, by name, nothing changed.
    let no_archive = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(no_archive.status.code(), Some(1), "{}", said(&no_archive));
    assert!(
        said(&no_archive).contains("boyong archive dectest"),
        "{}",
        said(&no_archive)
    );
    assert_untouched(&tree, Some(&db));

    let archived = boyong(&env, None, &["archive", APP]);
    assert_eq!(archived.status.code(), Some(0), "{}", said(&archived));
    let run_id = env
        .last_run(APP)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let tar = env
        .state()
        .join(format!("apps/{APP}/archives/{run_id}.tar"));
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    let names = text(&list.stdout);
    for want in [
        "artifacts/code/index.php",
        "artifacts/db.sql.gz",
        "journal.jsonl",
        "report.md",
        "SHA256SUMS",
    ] {
        assert!(names.contains(want), "{want} is in the archive: {names}");
    }
    // Its SHA-256 list checks out with the ordinary tool.
    let x = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(x.path())
            .status()
            .unwrap()
            .success()
    );
    let check = std::process::Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(x.path().join(&run_id))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", said(&check));
    // Archived twice: refused, the first kept.
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(1));

    // Too soon (the default minimum is 7 days).
    let soon = boyong(&env, Some(&db), &["decommission", APP, "--confirm", APP]);
    assert_eq!(soon.status.code(), Some(1), "{}", said(&soon));
    assert!(
        said(&soon).contains("minimum time since the cut-over"),
        "{}",
        said(&soon)
    );
    assert_untouched(&tree, Some(&db));

    // The plan: the tree (its file count), the database, what runs; nothing else.
    let plan = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--plan", "--min-age", "0"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", said(&plan));
    let p = said(&plan);
    assert!(
        p.contains(&format!("tree {}", tree.display())) && p.contains("3 files"),
        "{p}"
    );
    assert!(p.contains("DROP DATABASE IF EXISTS `perizinan`"), "{p}");
    assert!(
        p.contains("none    last assessment passed: none recorded"),
        "{p}"
    );
    assert!(
        !p.contains("sibling"),
        "nothing outside the playbook is listed: {p}"
    );
    assert_untouched(&tree, Some(&db));

    // No confirmation (stdin is not a terminal), or the wrong name: refused, exit 2.
    let unconfirmed = boyong(&env, Some(&db), &["decommission", APP, "--min-age", "0"]);
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", said(&unconfirmed));
    let wrong = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", "other"],
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", said(&wrong));
    assert_untouched(&tree, Some(&db));

    // A file changed on the vendor since the pull blocks it; a new excluded file does not.
    std::fs::write(tree.join("app/config.php"), "<?php return ['changed'];\n").unwrap();
    std::fs::write(tree.join("cache/session-2"), "new but excluded").unwrap();
    let changed = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(changed.status.code(), Some(1), "{}", said(&changed));
    let c = said(&changed);
    assert!(
        c.contains("CHANGED since the pull: changed: app/config.php"),
        "{c}"
    );
    assert!(
        !c.contains("session-2"),
        "an excluded file is not a change: {c}"
    );
    assert_untouched(&tree, Some(&db));
    assert!(decommissions(&env).is_empty(), "a refusal journals nothing");
    std::fs::write(tree.join("app/config.php"), "<?php return [];\n").unwrap();

    let done = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    assert!(!tree.exists(), "the app's tree is gone from the vendor");
    let dbs = databases(&db);
    assert!(
        !dbs.lines().any(|l| l == db.database),
        "the database is gone: {dbs}"
    );
    // The sibling's files and database survive.
    assert_eq!(
        std::fs::read_to_string(sibling.join("index.php")).unwrap(),
        "<?php echo 'sibling';\n"
    );
    assert_eq!(root_sql(&db, "SELECT id FROM sibling.keep"), "7");
    assert!(
        tree.parent().unwrap().is_dir(),
        "the parent of the fetched path stays"
    );

    // The certificate.
    let dir = decommissions(&env).pop().unwrap();
    let cert: Value =
        serde_json::from_slice(&std::fs::read(dir.join("certificate.json")).unwrap()).unwrap();
    assert_eq!(cert["app"], APP);
    assert_eq!(cert["operator"], "petugas-uji");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("certificate.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the state directory's files are 0600");
    }
    assert_eq!(cert["migration_run"], run_id.as_str());
    assert!(
        cert["vendor_host_key"]
            .as_str()
            .is_some_and(|k| k.contains(" ssh-ed25519 SHA256:")),
        "{cert}"
    );
    let removed = cert["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2, "{cert}");
    let manifest = env.last_run(APP).join("artifacts/code.manifest");
    let (tree_item, db_item) = (&removed[0], &removed[1]);
    assert_eq!(tree_item["target"], tree.display().to_string());
    assert_eq!(tree_item["files"], 3);
    assert_eq!(tree_item["last_sha256"], sha256(&manifest));
    assert_eq!(tree_item["gone"], true);
    assert_eq!(db_item["kind"], "database");
    assert_eq!(db_item["gone"], true);
    assert!(
        db_item["gone_check"]
            .as_str()
            .unwrap()
            .contains("no (gone)")
    );
    assert_eq!(cert["archive"]["path"], tar.display().to_string());
    assert_eq!(cert["archive"]["sha256"], sha256(&tar));
    let journal = std::fs::read(dir.join("journal.jsonl")).unwrap();
    let last_line = journal
        .split(|&b| b == b'\n')
        .rfind(|l| !l.is_empty())
        .unwrap();
    assert_eq!(
        cert["journal_head"],
        support::db::hex(&sha2_digest(last_line))
    );
    assert!(
        String::from_utf8_lossy(&journal).contains("\"action\":\"none\""),
        "undo is none"
    );
    let md = std::fs::read_to_string(dir.join("certificate.md")).unwrap();
    assert!(
        md.contains("# Decommission certificate: dectest") && md.contains(&sha256(&tar)),
        "{md}"
    );
    let html = std::fs::read_to_string(dir.join("certificate.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains(&sha256(&manifest)));
    // The journal verifies like any run's; the password is nowhere in the state.
    let grep = std::process::Command::new("grep")
        .args(["-rlF", "--", &db.password])
        .arg(env.state())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "the password is in {}",
        text(&grep.stdout)
    );

    // status and report know it; a second decommission has nothing to do.
    let status = boyong(&env, None, &["status", APP, "--json"]);
    assert!(
        text(&status.stdout).contains("\"decommissioned\""),
        "{}",
        said(&status)
    );
    let report = boyong(&env, None, &["report", APP]);
    assert!(
        text(&report.stdout).contains("certificate.md"),
        "{}",
        said(&report)
    );
    let again = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(again.status.code(), Some(0));
    assert!(
        said(&again).contains("decommissioned already"),
        "{}",
        said(&again)
    );
}

fn sha2_digest(b: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(b).to_vec()
}

fn sha256(p: &Path) -> String {
    support::db::hex(&sha2_digest(&std::fs::read(p).unwrap()))
}

#[test]
fn a_failed_run_or_a_broken_journal_refuses_and_nothing_is_deleted() {
    let Some(env) = Env::builder("decommission-refusals").sshd().build() else {
        return;
    };
    let (tree, _) = vendor_files(&env);
    let pb = playbook(&env, &tree, None);
    let run = boyong(&env, None, &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));

    // A journal edited after the run: refused, naming it.
    let journal = env.last_run(APP).join("journal.jsonl");
    let good = std::fs::read(&journal).unwrap();
    let bad = String::from_utf8(good.clone())
        .unwrap()
        .replacen("\"code\"", "\"c0de\"", 1);
    std::fs::write(&journal, bad).unwrap();
    let broken = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(broken.status.code(), Some(1), "{}", said(&broken));
    assert!(
        said(&broken).contains("REFUSED journal verifies"),
        "{}",
        said(&broken)
    );
    assert!(
        said(&broken).contains("REFUSED last run succeeded"),
        "{}",
        said(&broken)
    );
    assert_untouched(&tree, None);
    std::fs::write(&journal, good).unwrap();

    // The archive altered: refused.
    let run_id = env
        .last_run(APP)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let sum = env
        .state()
        .join(format!("apps/{APP}/archives/{run_id}.tar.sha256"));
    let kept = std::fs::read_to_string(&sum).unwrap();
    std::fs::write(&sum, format!("{}  x.tar\n", "0".repeat(64))).unwrap();
    let altered = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(altered.status.code(), Some(1), "{}", said(&altered));
    assert!(
        said(&altered).contains("does not verify"),
        "{}",
        said(&altered)
    );
    std::fs::write(&sum, kept).unwrap();

    // A later run that failed (its path is gone): the last run did not succeed.
    let failing = env.write(
        "failing.yml",
        std::fs::read_to_string(&pb)
            .unwrap()
            .replace(&tree.display().to_string(), "/nonexistent/boyong-decom"),
    );
    let failed = boyong(&env, None, &["run", failing.to_str().unwrap()]);
    assert_ne!(failed.status.code(), Some(0), "{}", said(&failed));
    let refused = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", said(&refused));
    assert!(
        said(&refused).contains("REFUSED last run succeeded"),
        "{}",
        said(&refused)
    );
    assert_untouched(&tree, None);
    assert!(decommissions(&env).is_empty(), "a refusal journals nothing");
    // A bad `decommission.after` in a playbook: file:line:col, exit 2.
    let bad_pb = env.write(
        "bad.yml",
        std::fs::read_to_string(&pb).unwrap() + "decommission:\n  after: soon\n",
    );
    let v = boyong(&env, None, &["validate", bad_pb.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(2), "{}", said(&v));
    assert!(
        said(&v).contains("bad.yml:") && said(&v).contains("decommission.after"),
        "{}",
        said(&v)
    );
    // Bad input: exit 2.
    assert_eq!(
        boyong(&env, None, &["decommission", APP, "--min-age", "soon"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        boyong(&env, None, &["decommission", "nosuchapp", "--min-age", "0"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_decommission_cut_half_way_is_finished_by_running_it_again() {
    let Some(env) = Env::builder("decommission-resume").sshd().build() else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    prepare_db(&db);
    let (tree, _) = vendor_files(&env);
    let pb = playbook(&env, &tree, Some(&db));
    // The minimum age from the playbook: none, so no --min-age below.
    let text_pb = std::fs::read_to_string(&pb).unwrap() + "decommission:\n  after: 0s\n";
    std::fs::write(&pb, text_pb).unwrap();
    let run = boyong(&env, Some(&db), &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));

    // The database's removal fails half-way (its privilege withdrawn): the tree is gone,
    // the database is not, and the journal says which.
    root_sql(
        &db,
        &format!("REVOKE DROP ON `{}`.* FROM '{}'@'%'", db.database, db.user),
    );
    let cut = boyong(&env, Some(&db), &["decommission", APP, "--confirm", APP]);
    assert_eq!(cut.status.code(), Some(1), "{}", said(&cut));
    assert!(
        said(&cut).contains("run `boyong decommission dectest` again"),
        "{}",
        said(&cut)
    );
    assert!(!tree.exists(), "the tree was removed before the cut");
    assert!(databases(&db).lines().any(|l| l == db.database));
    let dir = decommissions(&env).pop().unwrap();
    assert!(
        !dir.join("certificate.json").exists(),
        "no certificate for half a job"
    );
    let j = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(
        j.contains("\"type\":\"intent\"") && j.contains("database:db") && j.contains("step-failed"),
        "{j}"
    );

    // Run again: the tree (journaled done) is not hashed again, the database is dropped,
    // in the same decommission.
    root_sql(
        &db,
        &format!("GRANT DROP ON `{}`.* TO '{}'@'%'", db.database, db.user),
    );
    let again = boyong(&env, Some(&db), &["decommission", APP, "--confirm", APP]);
    assert_eq!(again.status.code(), Some(0), "{}", said(&again));
    assert!(
        said(&again).contains("continuing the unfinished decommission"),
        "{}",
        said(&again)
    );
    assert_eq!(
        decommissions(&env),
        vec![dir.clone()],
        "the same decommission was finished"
    );
    assert!(!databases(&db).lines().any(|l| l == db.database));
    let cert: Value =
        serde_json::from_slice(&std::fs::read(dir.join("certificate.json")).unwrap()).unwrap();
    assert_eq!(cert["continued"], true);
    assert_eq!(cert["removed"].as_array().unwrap().len(), 2);
    let read = boyong::engine::journal::read(&dir.join("journal.jsonl")).unwrap();
    assert_eq!(
        cert["journal_head"],
        read.head_sha256.as_str(),
        "one journal, its chain intact"
    );
}

/// A TCP proxy to `to`: every connection open when `cut_when()` first holds is cut then
/// (asked every 2 ms); later connections pass untouched.
fn cut_when(to: u16, cut_when: impl Fn() -> bool + Send + 'static) -> u16 {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let cut = Arc::new(AtomicBool::new(false));
    let (open2, cut2) = (Arc::clone(&open), Arc::clone(&cut));
    std::thread::spawn(move || {
        while !cut_when() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        cut2.store(true, Ordering::SeqCst);
        for s in open2.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    });
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", to)).unwrap();
            if !cut.load(Ordering::SeqCst) {
                let mut o = open.lock().unwrap();
                o.push(client.try_clone().unwrap());
                o.push(server.try_clone().unwrap());
            }
            let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c2, mut s2) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut s1);
                let _ = s1.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_connection_dropped_half_way_leaves_a_journal_that_a_rerun_finishes() {
    let Some(env) = Env::builder("decommission-cut").sshd().build() else {
        return;
    };
    let (tree, sibling) = vendor_files(&env);
    env.write("vendor/srv/uploads/a.pdf", "pdf");
    let uploads = env.path("vendor/srv/uploads");
    let pb = env.write(
        "dectest.yml",
        format!(
            "version: 1\napp: {APP}\n{vendor}steps:\n  - id: code\n    fetch:\n      path: {}\n      exclude: [\"cache/\"]\n  - id: uploads\n    fetch:\n      path: {}\n",
            tree.display(),
            uploads.display(),
            vendor = env.sshd().vendor_yaml()
        ),
    );
    // Every connection goes through a proxy that drops the link the moment the first
    // tree is gone: in the middle of the decommission, between its two removals.
    let gone = tree.clone();
    let port = cut_when(env.sshd().port, move || !gone.exists());
    env.through_proxy(&pb, port);
    let run = boyong(&env, None, &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));
    let args = ["decommission", APP, "--min-age", "0", "--confirm", APP];
    let cut = boyong(&env, None, &args);
    assert_eq!(cut.status.code(), Some(1), "{}", said(&cut));
    assert!(
        !tree.exists() && uploads.exists(),
        "cut between the two removals"
    );
    let dir = decommissions(&env).pop().unwrap();
    let j = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(
        j.contains("tree:code") && !j.contains("tree:uploads"),
        "{j}"
    );
    assert!(!dir.join("certificate.json").exists());

    let again = boyong(&env, None, &args);
    assert_eq!(again.status.code(), Some(0), "{}", said(&again));
    assert!(!uploads.exists(), "the rest was removed by the re-run");
    assert!(sibling.join("index.php").is_file(), "the sibling survives");
    assert_eq!(decommissions(&env), vec![dir.clone()]);
    let cert: Value =
        serde_json::from_slice(&std::fs::read(dir.join("certificate.json")).unwrap()).unwrap();
    assert_eq!(cert["continued"], true);
    let ids: Vec<&str> = cert["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tree:code", "tree:uploads"]);
    boyong::engine::journal::read(&dir.join("journal.jsonl")).unwrap();
}

#[test]
fn a_postgres_database_is_dropped_and_a_sibling_database_survives() {
    let Some(env) = Env::builder("decommission-pg").sshd().build() else {
        return;
    };
    let Some(db) = Postgres::start() else { return };
    db.query_as(
        &db.user,
        "CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1);",
    );
    run_sql(
        &mut db.psql(&db.superuser, "postgres"),
        "CREATE DATABASE sibling;",
    );
    let (tree, _) = vendor_files(&env);
    let pb = env.write(
        "dectest.yml",
        format!(
            "version: 1\napp: {APP}\n{vendor}vars:\n  pw: {{ env: BOYONG_TEST_DB_PASSWORD }}\nsteps:\n  - id: code\n    fetch:\n      path: {}\n  - id: db\n    dump:\n      engine: postgres\n      database: {}\n      user: {}\n      password: \"{{{{ vars.pw }}}}\"\n      host: 127.0.0.1\n      port: {}\n",
            tree.display(),
            db.database,
            db.user,
            db.port,
            vendor = env.sshd().vendor_yaml()
        ),
    );
    let go = |args: &[&str]| {
        env.command(args)
            .env("BOYONG_TEST_DB_PASSWORD", &db.password)
            .output()
            .unwrap()
    };
    let run = go(&["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(go(&["archive", APP]).status.code(), Some(0));
    let done = go(&["decommission", APP, "--min-age", "0", "--confirm", APP]);
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    assert!(
        said(&done).contains("DROP DATABASE IF EXISTS \"perizinan\""),
        "{}",
        said(&done)
    );
    let names = run_sql(
        &mut db.psql(&db.superuser, "postgres"),
        "SELECT datname FROM pg_database ORDER BY 1;",
    );
    assert!(!names.lines().any(|l| l == db.database), "gone: {names}");
    assert!(
        names.lines().any(|l| l == "sibling"),
        "the sibling survives: {names}"
    );
    assert!(!tree.exists());
    let dir = decommissions(&env).pop().unwrap();
    let cert: Value =
        serde_json::from_slice(&std::fs::read(dir.join("certificate.json")).unwrap()).unwrap();
    assert_eq!(
        cert["removed"][1]["target"],
        format!(
            "postgres database perizinan at 127.0.0.1:{} (user {})",
            db.port, db.user
        )
    );
    assert_eq!(cert["removed"][1]["gone"], true);
}

/// Runs `sql` on `psql`'s stdin; its output.
fn run_sql(psql: &mut std::process::Command, sql: &str) -> String {
    use std::io::Write as _;
    let mut child = psql
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", said(&out));
    text(&out.stdout)
}
