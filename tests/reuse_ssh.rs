//! `boyong run --reuse-artifacts` against a real OpenSSH server: a second run takes the
//! first run's verified tree instead of pulling (a file the vendor changed since is not
//! seen; the journal says where the copy came from), a changed `exclude` pulls again, a
//! run without the flag pulls, and a copy is never a link to the first run's files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::env::Env;
use support::{journal, text};

impl Env {
    /// A vendor sshd with a small tree in `vendor/www`.
    fn new() -> Option<Self> {
        let env = Self::builder("reuse").sshd().plan_fidelity().build()?;
        env.write("vendor/www/index.php", "<?php echo 'release 1';\n");
        env.write("vendor/www/lib/a.php", "<?php // a\n");
        env.write("vendor/www/cache/session", "excluded\n");
        env.write("vendor/www/logs/today.log", "a log line\n");
        std::os::unix::fs::symlink("index.php", env.path("vendor/www/home.php")).unwrap();
        Some(env)
    }

    /// A playbook that pulls the tree, excluding `exclude`.
    fn playbook(&self, exclude: &str) -> PathBuf {
        self.write(
            "app.yml",
            format!(
                "version: 1\napp: wisata\nvendor:\n  host: 127.0.0.1\n  port: {port}\n  user: {user}\n  identity: {key}\n  known_hosts: {kh}\nsteps:\n  - id: code\n    fetch:\n      path: {src}\n      exclude: [{exclude}]\n",
                port = self.sshd().port,
                user = self.sshd().user,
                key = self.sshd().client_key.display(),
                kh = self.sshd().known_hosts.display(),
                src = self.path("vendor/www").display(),
            ),
        )
    }

    /// `boyong run app.yml ARGS…`, which must succeed; the run's directory.
    fn ok(&self, args: &[&str]) -> (PathBuf, String) {
        let pb = self.path("app.yml");
        let mut all = vec!["run", pb.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        (self.last_run("wisata"), err)
    }
}

/// The facts of step `code`'s `step-done` in a run's journal.
fn facts(run: &Path) -> Value {
    journal(run)
        .into_iter()
        .find(|r| r["type"] == "step-done" && r["step"] == "code")
        .map(|r| r["facts"].clone())
        .expect("code is done")
}

fn index(run: &Path) -> String {
    std::fs::read_to_string(run.join("artifacts/code/index.php")).unwrap()
}

#[test]
fn a_second_run_reuses_the_verified_pull_and_a_changed_exclude_pulls_again() {
    let Some(env) = Env::new() else {
        return;
    };
    env.playbook("\"cache/\"");
    let (first, _) = env.ok(&[]);
    let first_facts = facts(&first);
    assert!(first_facts["inputs_sha256"].as_str().unwrap().len() == 64);
    assert!(first_facts["pulled_at"].as_u64().is_some());
    assert!(first_facts.get("reused_from").is_none());
    assert!(index(&first).contains("release 1"));

    // The vendor changes a file after the pull: a run that reuses does not see it.
    env.write("vendor/www/index.php", "<?php echo 'release 2';\n");
    let (second, err) = env.ok(&["--reuse-artifacts=1h"]);
    assert_ne!(second, first);
    assert!(
        index(&second).contains("release 1"),
        "the file was pulled again"
    );
    let f = facts(&second);
    let first_id = first.file_name().unwrap().to_str().unwrap();
    assert_eq!(f["reused_from"]["run"], first_id, "{f}");
    assert_eq!(f["reused_from"]["step"], "code");
    assert_eq!(f["manifest_sha256"], first_facts["manifest_sha256"]);
    assert_eq!(
        f["pulled_at"], first_facts["pulled_at"],
        "the first pull's time is kept"
    );
    assert!(
        err.contains(&format!("reused from run {first_id} step `code`")),
        "{err}"
    );
    // A copy: its own files, links kept as links, the same tree as the first run's.
    let ino = |r: &Path| {
        std::fs::metadata(r.join("artifacts/code/index.php"))
            .unwrap()
            .ino()
    };
    assert_ne!(ino(&first), ino(&second), "a copy, not a hard link");
    assert_eq!(
        std::fs::read_link(second.join("artifacts/code/home.php")).unwrap(),
        Path::new("index.php")
    );
    assert_eq!(
        boyong::artifact::manifest::scan(&second.join("artifacts/code")).unwrap(),
        boyong::artifact::manifest::scan(&first.join("artifacts/code")).unwrap()
    );
    let check = std::process::Command::new("sha256sum")
        .args(["--strict", "-c", "../code.manifest"])
        .current_dir(second.join("artifacts/code"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stdout));

    // The plan says what a run would take.
    let plan = |flag: &str| {
        let out = env.run(&["plan", "app.yml", "--offline", flag]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let second_id = second.file_name().unwrap().to_str().unwrap();
    let said = plan("--reuse-artifacts=1h");
    assert!(
        said.contains(&format!(
            "--reuse-artifacts: reused from run {second_id} step `code` (pulled "
        )),
        "{said}"
    );
    assert!(!plan("--json").contains("reuse"));

    // Another exclusion is another input: pulled again, the vendor's change seen.
    env.playbook("\"cache/\", \"logs/\"");
    assert!(plan("--reuse-artifacts").contains("no earlier run has an artifact with these inputs"));
    let (third, _) = env.ok(&["--reuse-artifacts=1h"]);
    assert!(index(&third).contains("release 2"));
    assert!(facts(&third).get("reused_from").is_none());
    assert!(!third.join("artifacts/code/logs").exists());

    // Without the flag a run pulls, whatever earlier runs hold.
    let (fourth, _) = env.ok(&[]);
    assert!(facts(&fourth).get("reused_from").is_none());
    assert!(index(&fourth).contains("release 2"));

    // A rollback of the reusing run removes its copy only.
    let rb = env.run(&["rollback", "wisata", "--run", second_id, "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(!second.join("artifacts/code").exists());
    assert!(index(&first).contains("release 1"));
}

#[test]
fn a_second_dump_with_the_same_inputs_is_the_verified_first_one() {
    let Some(env) = Env::builder("reuse-dump").sshd().plan_fidelity().build() else {
        return;
    };
    let Some(db) = support::db::Mariadb::start() else {
        return;
    };
    let d = &db.database;
    db.query(&format!(
        "CREATE TABLE `{d}`.permit (id INT PRIMARY KEY); INSERT INTO `{d}`.permit VALUES (1);"
    ));
    let pb = env.write(
        "db.yml",
        format!(
            "version: 1\napp: dbreuse\n{vendor}vars:\n  pw: {{ env: BOYONG_TEST_DB_PASSWORD }}\nsteps:\n  - id: db\n    dump:\n      engine: mariadb\n      database: {d}\n      user: {user}\n      password: \"{{{{ vars.pw }}}}\"\n      host: 127.0.0.1\n      port: {port}\n",
            vendor = env.sshd().vendor_yaml(),
            user = db.user,
            port = db.port,
        ),
    );
    let run = |args: &[&str]| {
        let mut all = vec!["run", pb.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = env
            .command(&all)
            .env("BOYONG_TEST_DB_PASSWORD", &db.password)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(!err.contains(&db.password));
        let run = env.last_run("dbreuse");
        let facts = journal(&run)
            .into_iter()
            .find(|r| r["type"] == "step-done" && r["step"] == "db")
            .map(|r| r["facts"].clone())
            .expect("db is done");
        (run, facts, err)
    };
    let (first, f1, _) = run(&[]);
    // Written after the first dump: a reused dump does not have it.
    db.query(&format!("INSERT INTO `{d}`.permit VALUES (2);"));
    let (second, f2, err) = run(&["--reuse-artifacts"]);
    let first_id = first.file_name().unwrap().to_str().unwrap();
    assert_eq!(f2["reused_from"]["run"], first_id, "{f2}");
    assert_eq!(f2["sql_sha256"], f1["sql_sha256"]);
    assert!(
        err.contains(&format!("reused from run {first_id} step `db`")),
        "{err}"
    );
    let check = std::process::Command::new("sha256sum")
        .args(["--strict", "-c", "db.manifest"])
        .current_dir(second.join("artifacts"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stdout));
    // Without the flag: a fresh dump, with the new row.
    let (_, f3, _) = run(&[]);
    assert!(f3.get("reused_from").is_none());
    assert_ne!(f3["sql_sha256"], f1["sql_sha256"]);
}
