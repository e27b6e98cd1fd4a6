//! The database tests' environment: a real sshd as the vendor host, a playbook that
//! dumps a database there and restores it into a labelled container, runs of the real
//! binary watched for the password, and readers of what a run journaled.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::docker::exists;
use super::env::Env;
use super::{journal, text};

impl Env {
    /// The database tests' environment: a vendor sshd and the Docker Engine.
    pub fn database(test: &str) -> Option<Self> {
        Self::builder(test).sshd().docker().build()
    }

    /// The unique volume of the restored database.
    pub fn volume(&self) -> String {
        format!("{}-data", self.name)
    }

    pub fn db_playbook(&self, engine: &str, port: u16, image: &str, replace: bool) -> PathBuf {
        self.write(
            "db.yml",
            format!(
                "version: 1\napp: dbtest\n{vendor}{target}\
                 vars:\n  pw: {{ env: BOYONG_TEST_DB_PASSWORD }}\n\
                 steps:\n  - id: db\n    dump:\n      engine: {engine}\n      database: perizinan\n      user: perizinan\n      password: \"{{{{ vars.pw }}}}\"\n      host: 127.0.0.1\n      port: {port}\n\
                 \x20 - id: database\n    restore:\n      from: db\n      image: {image}\n      name: {name}\n      volume: {volume}\n      password: \"{{{{ vars.pw }}}}\"\n      replace: {replace}\n",
                vendor = self.sshd().vendor_yaml(),
                target = super::docker::target_yaml(),
                name = self.name,
                volume = self.volume(),
            ),
        )
    }

    /// The playbook `pb` reaches the vendor's sshd through a proxy on `port`.
    pub fn through_proxy(&self, pb: &Path, port: u16) {
        self.sshd().known_at(port);
        super::edit_file(
            pb,
            &format!("  port: {}\n", self.sshd().port),
            &format!("  port: {port}\n"),
        );
    }

    /// `boyong run`, with the password in the environment; meanwhile every process's
    /// command line on this machine (the vendor host too) is sampled and must never hold it.
    pub fn run_watched(&self, pb: &Path, password: &str) -> Output {
        self.watched(
            &["run", pb.to_str().unwrap(), "--label", &self.label().arg()],
            password,
        )
    }

    /// The real binary with `args` and the password in the environment, watched as
    /// [`Env::run_watched`] watches a run: never on a command line, nor in a file left in
    /// /tmp, /var/tmp or the vendor user's home.
    pub fn watched(&self, args: &[&str], password: &str) -> Output {
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
        let out = super::output_within(self.command(args).env("BOYONG_TEST_DB_PASSWORD", password));
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

    /// `boyong rollback`, which must succeed and leave neither the database container nor
    /// its volume.
    pub fn rollback_leaves_nothing(&self) {
        let rb = self.rollback("dbtest");
        assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
        assert!(!exists("container", &self.name), "the container is gone");
        assert!(!exists("volume", &self.volume()), "the volume is gone");
    }

    /// The state directory never holds the password, in any file.
    pub fn assert_no_secret_in_state(&self, password: &str) {
        let grep = Command::new("grep")
            .args(["-rlF", "--", password])
            .arg(self.state())
            .output()
            .unwrap();
        assert!(
            grep.stdout.is_empty(),
            "the password is in {}",
            text(&grep.stdout)
        );
    }

    /// The fixture's fingerprint of the restored MariaDB, read in its container as the
    /// app's user.
    pub fn mariadb_fingerprint(&self, password: &str) -> String {
        self.fingerprint_in_container(
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
            &super::db::fixture("mariadb-fingerprint.sql"),
            &format!("MYSQL_PWD={password}"),
        )
    }

    /// The fixture's fingerprint of the restored PostgreSQL, read in its container as the
    /// app's user.
    pub fn postgres_fingerprint(&self, password: &str) -> String {
        self.fingerprint_in_container(
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
            &super::db::fixture("postgres-fingerprint.sql"),
            &format!("PGPASSWORD={password}"),
        )
    }

    /// The fixture's fingerprint query run in the restored container.
    pub fn fingerprint_in_container(&self, cmd: &[&str], sql: &Path, password_env: &str) -> String {
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

pub fn position(rs: &[Value], what: impl Fn(&Value) -> bool) -> usize {
    rs.iter()
        .position(what)
        .expect("the record is in the journal")
}

/// The dump and the restore ran overlapped: the restore's first change was journaled
/// (so made) before the dump step was done, and the restore was done after it.
pub fn assert_overlapped(run: &Path) {
    let rs = journal(run);
    let is = |r: &Value, kind: &str, step: &str| r["type"] == kind && r["step"] == step;
    let intent = position(&rs, |r| is(r, "intent", "database"));
    let dump_done = position(&rs, |r| is(r, "step-done", "db"));
    let restore_done = position(&rs, |r| is(r, "step-done", "database"));
    assert!(
        intent < dump_done && dump_done < restore_done,
        "the restore overlapped the dump: {rs:#?}"
    );
}

pub fn restore_facts(run: &Path) -> Value {
    journal(run)
        .into_iter()
        .find(|r| r["type"] == "step-done" && r["step"] == "database")
        .map(|r| r["facts"].clone())
        .expect("the restore step finished")
}

impl super::db::Mariadb {
    /// Runs `sql` as root over the socket in no database (the app's may be gone); its
    /// output, rows as tab-separated lines.
    pub fn root_query(&self, sql: &str) -> String {
        let mut c = super::db::mariadb_root(&self.socket);
        c.args(["--batch", "--skip-column-names"]);
        super::db::run(&mut c, sql.as_bytes(), "mariadb")
    }

    /// The server's databases, one a line, sorted.
    pub fn databases(&self) -> String {
        self.root_query("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
    }
}

impl super::db::Postgres {
    /// Runs `sql` as `user` in `database`; its output (see `query`).
    pub fn query_in(&self, user: &str, database: &str, sql: &str) -> String {
        super::db::run(&mut self.psql(user, database), sql.as_bytes(), "psql")
    }
}
