//! `dump` and `restore` with real parts: a real MariaDB and PostgreSQL on the "vendor
//! host" (a real sshd on loopback), dumped over SSH with their own tools, restored into a
//! container of the real engine from the fixture images, proven equal table by table (by
//! boyong's evidence and, independently, by the fixtures' fingerprint queries); the
//! password never on a command line; rollback removes the container and the volume.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use support::db::{Mariadb, Postgres, base_image, fixture};
use support::docker::{Labelled, available as docker_available};
use support::sshd::{Sshd, available as sshd_available};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn exists(what: &str, name: &str) -> bool {
    docker(&[what, "inspect", name]).status.success()
}

struct Env {
    sshd: Sshd,
    dir: tempfile::TempDir,
    label: Labelled,
    name: String,
    volume: String,
}

impl Env {
    fn new(test: &str) -> Option<Self> {
        if !sshd_available() || !docker_available() {
            return None;
        }
        let label = Labelled::new(test);
        Some(Self {
            sshd: Sshd::start(""),
            dir: tempfile::tempdir().unwrap(),
            name: format!("bd-{}", label.0),
            volume: format!("bd-{}-data", label.0),
            label,
        })
    }

    fn playbook(&self, engine: &str, port: u16, image: &str, replace: bool) -> PathBuf {
        let p = self.dir.path().join("db.yml");
        std::fs::write(
            &p,
            format!(
                "version: 1\napp: dbtest\nvendor:\n  host: 127.0.0.1\n  port: {sshport}\n  user: {user}\n  identity: {key}\n  known_hosts: {kh}\n\
                 vars:\n  pw: {{ env: BOYONG_TEST_DB_PASSWORD }}\n\
                 steps:\n  - id: db\n    dump:\n      engine: {engine}\n      database: perizinan\n      user: perizinan\n      password: \"{{{{ vars.pw }}}}\"\n      host: 127.0.0.1\n      port: {port}\n\
                 \x20 - id: database\n    restore:\n      from: db\n      image: {image}\n      name: {name}\n      volume: {volume}\n      password: \"{{{{ vars.pw }}}}\"\n      replace: {replace}\n",
                sshport = self.sshd.port,
                user = self.sshd.user,
                key = self.sshd.client_key.display(),
                kh = self.sshd.known_hosts.display(),
                name = self.name,
                volume = self.volume,
            ),
        )
        .unwrap();
        p
    }

    /// `boyong run`, with the password in the environment; meanwhile every process's
    /// command line on this machine (the vendor host too) is sampled and must never hold it.
    fn run(&self, pb: &Path, password: &str) -> Output {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, pw) = (stop.clone(), password.to_string());
        let watcher = std::thread::spawn(move || {
            let mut seen = 0;
            while !s.load(Ordering::SeqCst) {
                let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
                assert!(
                    !text(&ps.stdout).contains(&pw),
                    "the password is on a command line"
                );
                seen += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            seen
        });
        let marker = self.dir.path().join("run-started");
        std::fs::write(&marker, b"").unwrap();
        let out = support::boyong(&self.dir.path().join("state"))
            .args(["run", pb.to_str().unwrap(), "--label", &self.label.arg()])
            .env("BOYONG_TEST_DB_PASSWORD", password)
            .output()
            .unwrap();
        stop.store(true, Ordering::SeqCst);
        assert!(watcher.join().unwrap() > 0);
        // Nor in a file the run left on the vendor host (this machine): every file written
        // in /tmp, /var/tmp or the vendor user's home since the run started is searched.
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let found = Command::new("sh")
            .args([
                "-c",
                "find /tmp /var/tmp \"$2\" -xdev -type f -newer \"$1\" -size -64M -print0 2>/dev/null | xargs -0 -r grep -lF -- \"$3\" 2>/dev/null || true",
                "sh",
            ])
            .arg(&marker)
            .arg(&home)
            .arg(password)
            .output()
            .unwrap();
        assert!(
            found.stdout.is_empty(),
            "the password is in a file: {}",
            text(&found.stdout)
        );
        out
    }

    fn rollback(&self) -> Output {
        support::boyong(&self.dir.path().join("state"))
            .args(["rollback", "dbtest", "--yes"])
            .output()
            .unwrap()
    }

    fn last_run(&self) -> PathBuf {
        let mut r: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("state/apps/dbtest/runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        r.sort();
        r.pop().unwrap()
    }

    /// The state directory never holds the password, in any file.
    fn assert_no_secret_in_state(&self, password: &str) {
        let grep = Command::new("grep")
            .args(["-rlF", "--", password])
            .arg(self.dir.path().join("state"))
            .output()
            .unwrap();
        assert!(
            grep.stdout.is_empty(),
            "the password is in {}",
            text(&grep.stdout)
        );
    }

    /// The fixture's fingerprint query run in the restored container.
    fn fingerprint_in_container(&self, cmd: &[&str], sql: &Path, password_env: &str) -> String {
        let mut c = Command::new("docker");
        c.args(["exec", "-i", "-e", password_env, &self.name])
            .args(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&std::fs::read(sql).unwrap()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim_end().to_string()
    }
}

fn restore_facts(run: &Path) -> Value {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["type"] == "step-done" && r["step"] == "database")
        .map(|r| r["facts"].clone())
        .expect("the restore step finished")
}

#[test]
fn a_mariadb_database_moves_into_a_container_equal_table_by_table_and_rollback_removes_it() {
    let Some(env) = Env::new("mariadb") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    db.seed_myisam();
    let image = base_image("mariadb");
    let pb = env.playbook("mariadb", db.port, &image, false);
    let out = env.run(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("legacy_log") && said.contains("not InnoDB"),
        "the MyISAM table is warned about: {said}"
    );
    let run = env.last_run();
    support::assert_plan_fidelity(&run);
    let facts = restore_facts(&run);
    assert_eq!(facts["checksums_compared"], true, "{facts}");
    let big = facts["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "big")
        .unwrap()
        .clone();
    assert_eq!(big["rows"], 1_000_000);
    // Independently of boyong's own evidence: the fixture's fingerprint, both sides.
    let env_pw = format!("MYSQL_PWD={}", db.password);
    let restored = env.fingerprint_in_container(
        &[
            "mariadb",
            "--protocol=tcp",
            "-h127.0.0.1",
            "-uperizinan",
            "--default-character-set=utf8mb4",
            "--batch",
            "--skip-column-names",
            "perizinan",
        ],
        &fixture("mariadb-fingerprint.sql"),
        &env_pw,
    );
    assert_eq!(restored, db.fingerprint());
    env.assert_no_secret_in_state(&db.password);
    // The app's password is not root's.
    let root = docker(&[
        "exec",
        "-e",
        &env_pw,
        &env.name,
        "mariadb",
        "--protocol=tcp",
        "-h127.0.0.1",
        "-uroot",
        "-e",
        "SELECT 1",
    ]);
    assert!(!root.status.success(), "root takes the app's password");

    let rb = env.rollback();
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(!exists("container", &env.name), "the container is gone");
    assert!(!exists("volume", &env.volume), "the volume is gone");
}

#[test]
fn a_postgres_database_moves_into_a_container_equal_table_by_table() {
    let Some(env) = Env::new("postgres") else {
        return;
    };
    let Some(db) = Postgres::start() else { return };
    db.seed();
    let image = base_image("postgres");
    let pb = env.playbook("postgres", db.port, &image, false);
    let out = env.run(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.last_run();
    support::assert_plan_fidelity(&run);
    let facts = restore_facts(&run);
    assert_eq!(facts["checksums_compared"], true, "{facts}");
    assert!(facts["rows"].as_u64().unwrap() > 1_000_000, "{facts}");
    let env_pw = format!("PGPASSWORD={}", db.password);
    let restored = env.fingerprint_in_container(
        &[
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "perizinan",
            "-d",
            "perizinan",
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
        ],
        &fixture("postgres-fingerprint.sql"),
        &env_pw,
    );
    assert_eq!(restored, db.fingerprint());
    env.assert_no_secret_in_state(&db.password);
    let superuser = docker(&[
        "exec",
        "-e",
        &env_pw,
        &env.name,
        "psql",
        "-h",
        "127.0.0.1",
        "-U",
        "perizinan",
        "-d",
        "perizinan",
        "-Atc",
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
    ]);
    assert_eq!(
        text(&superuser.stdout).trim(),
        "f",
        "the app's role is not a superuser"
    );
    let rb = env.rollback();
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(!exists("container", &env.name));
    assert!(!exists("volume", &env.volume));
}

#[test]
fn a_wrong_password_is_a_clear_error_and_nothing_is_left() {
    let Some(env) = Env::new("badpw") else { return };
    let Some(db) = Mariadb::start() else { return };
    let pb = env.playbook("mariadb", db.port, "gov/mariadb:10.11", false);
    let out = env.run(&pb, &format!("wrong-{}", support::db::password()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("Access denied"), "{err}");
    assert!(!err.contains("attempt 2"), "not retried: {err}");
    let artifacts = env.last_run().join("artifacts");
    let left: Vec<_> = std::fs::read_dir(&artifacts)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing left in artifacts: {left:?}");
    assert!(!exists("container", &env.name));
    assert!(!exists("volume", &env.volume));
}

#[test]
fn an_existing_volume_is_not_overwritten_without_replace() {
    let Some(env) = Env::new("volume") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    let made = docker(&["volume", "create", "--label", &env.label.arg(), &env.volume]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let image = base_image("mariadb");
    let pb = env.playbook("mariadb", db.port, &image, false);
    let out = env.run(&pb, &db.password);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&env.volume) && err.contains("replace: true"),
        "{err}"
    );
    assert!(exists("volume", &env.volume), "the volume is kept");
    assert!(!exists("container", &env.name));
    let _ = docker(&["volume", "rm", &env.volume]);
}

#[test]
fn replace_saves_the_existing_volume_first_and_rollback_puts_it_back() {
    let Some(env) = Env::new("replace") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    support::docker::busybox();
    let label = env.label.arg();
    let ls = |env: &Env| {
        let out = docker(&[
            "run",
            "--rm",
            "--label",
            &label,
            "-v",
            &format!("{}:/v", env.volume),
            "boyong-fixture/busybox:1",
            "ls",
            "-A",
            "/v",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let made = docker(&[
        "run",
        "--rm",
        "--label",
        &label,
        "-v",
        &format!("{}:/v", env.volume),
        "boyong-fixture/busybox:1",
        "sh",
        "-c",
        "echo earlier > /v/earlier-data && chown 999:999 /v/earlier-data",
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let image = base_image("mariadb");
    let pb = env.playbook("mariadb", db.port, &image, true);
    let out = env.run(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    support::assert_plan_fidelity(&env.last_run());
    assert!(
        env.last_run()
            .join("artifacts/database.volume.tar")
            .exists(),
        "the old contents were saved"
    );
    let now = ls(&env);
    assert!(
        !now.contains("earlier-data") && now.contains("ibdata1"),
        "the volume holds the restored database only: {now}"
    );
    let rb = env.rollback();
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(!exists("container", &env.name));
    let back = ls(&env);
    assert_eq!(back.trim(), "earlier-data", "the old contents are back");
    let owner = docker(&[
        "run",
        "--rm",
        "--label",
        &label,
        "-v",
        &format!("{}:/v", env.volume),
        "boyong-fixture/busybox:1",
        "stat",
        "-c",
        "%u %s",
        "/v/earlier-data",
    ]);
    assert_eq!(text(&owner.stdout).trim(), "999 8", "owner and size kept");
}

#[test]
fn a_dump_cut_off_mid_stream_is_retried_from_scratch_and_leaves_no_partial_file() {
    let Some(env) = Env::new("cutdump") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    // The first SSH connection is cut after 5 MB from the vendor: inside the dump.
    let (port, cut) = support::sshd::cutting_proxy(env.sshd.port, 5_000_000);
    let kh = std::fs::read_to_string(&env.sshd.known_hosts).unwrap();
    std::fs::write(
        &env.sshd.known_hosts,
        format!("{kh}[127.0.0.1]:{port} {}\n", env.sshd.host_key_pub),
    )
    .unwrap();
    let image = base_image("mariadb");
    let pb = env.playbook("mariadb", db.port, &image, false);
    support::edit_file(
        &pb,
        &format!("  port: {}\n", env.sshd.port),
        &format!("  port: {port}\n"),
    );
    let out = env.run(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(cut.load(Ordering::SeqCst), "the proxy cut a connection");
    let err = text(&out.stderr);
    assert!(err.contains("attempt 2"), "the dump was retried: {err}");
    let artifacts = env.last_run().join("artifacts");
    let names: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("partial")),
        "no partial file is left: {names:?}"
    );
    let facts = restore_facts(&env.last_run());
    assert_eq!(facts["checksums_compared"], true, "{facts}");
}
