//! The database fixtures that the `dump` and `restore` tests stand on: the vendor's MariaDB
//! and PostgreSQL servers (tests/support/db.rs) seeded with fixtures/db/*-seed.sql, and the
//! target's base images gov/mariadb:10.11 and gov/postgres:15 (fixtures/base-images.sh), which
//! initialise an empty volume with the passwords they are given, as the official images do,
//! even when started hardened.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::db::{self, Mariadb, Postgres};
use support::docker::{Labelled, available as docker_available};

const JAVANESE_EMOJI: &str = "Sri Rahayu ꦗꦮ 🇮🇩🙂";

/// How long a new database container may take to initialise its volume and answer.
const CONTAINER_READY: Duration = Duration::from_secs(120);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn hex_upper(bytes: &[u8]) -> String {
    db::hex(bytes).to_uppercase()
}

/// The bytes 0x00 to 0xFF in hex, as the seeds' blobs hold them.
fn all_bytes_hex() -> String {
    hex_upper(&(0..=255_u8).collect::<Vec<_>>())
}

/// `mariadb` over TCP as `user` with `password` (not on its command line); its output.
fn mariadb_tcp(port: u16, user: &str, password: &str, sql: &str) -> Output {
    Command::new("mariadb")
        .args(["--no-defaults", "-h127.0.0.1", "--protocol=tcp", "--batch"])
        .arg("--default-character-set=utf8mb4")
        .arg("--skip-column-names")
        .arg(format!("-P{port}"))
        .arg(format!("-u{user}"))
        .args(["-e", sql])
        .env("MYSQL_PWD", password)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `psql` over TCP as `user` with `password` (not on its command line); its output.
fn psql_tcp(port: u16, user: &str, password: &str, database: &str, sql: &str) -> Output {
    Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-X", "-q", "-w", "-At", "-h", "127.0.0.1"])
        .args([
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            database,
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_seeded_mariadb_holds_a_million_rows_and_javanese_and_emoji_come_back_intact() {
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    db.seed_myisam();

    assert_eq!(db.query("SELECT COUNT(*) FROM big"), "1000000");
    assert_eq!(
        db.query("SELECT name FROM applicants WHERE id = 2"),
        JAVANESE_EMOJI
    );
    assert_eq!(
        db.query("SELECT HEX(name) FROM applicants WHERE id = 2"),
        hex_upper(JAVANESE_EMOJI.as_bytes())
    );
    assert_eq!(
        db.query("SELECT HEX(content) FROM documents WHERE id = 1"),
        all_bytes_hex()
    );
    assert_eq!(
        db.query("SELECT COUNT(*) FROM big WHERE note LIKE '%ꦗꦮ 🇮🇩🙂'"),
        "1000"
    );
    assert_eq!(
        db.query("SELECT email IS NULL, email = '' FROM applicants WHERE id IN (3, 2) ORDER BY id"),
        "0\t1\n1\tNULL"
    );
    assert_eq!(
        db.query(
            "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'legacy_log'"
        ),
        "MyISAM"
    );
    // the trigger fired when the procedure issued two permits
    assert_eq!(db.query("SELECT COUNT(*) FROM permit_history"), "2");
    // written and read back through the client
    db.query(&format!(
        "UPDATE applicants SET address = '{JAVANESE_EMOJI}' WHERE id = 3"
    ));
    assert_eq!(
        db.query("SELECT address FROM applicants WHERE id = 3"),
        JAVANESE_EMOJI
    );

    // the app's user, with its password over TCP (and only with it) ...
    let out = mariadb_tcp(db.port, &db.user, &db.password, "SELECT CURRENT_USER()");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "perizinan@%");
    let out = mariadb_tcp(db.port, &db.user, "wrong", "SELECT 1");
    assert!(!out.status.success(), "a wrong password was taken");
    // ... may take a consistent dump with routines, triggers and events
    let dump = db.dir.path().join("dump.sql");
    let out = Command::new("mariadb-dump")
        .args(["--no-defaults", "-h127.0.0.1", "--protocol=tcp"])
        .arg(format!("-P{}", db.port))
        .arg(format!("-u{}", db.user))
        .args([
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
        ])
        .arg(format!("--result-file={}", dump.display()))
        .arg(&db.database)
        .env("MYSQL_PWD", &db.password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "mariadb-dump warned");
    let sql = text(&std::fs::read(&dump).unwrap()); // blobs are raw bytes in it
    for object in [
        "PROCEDURE `issue_permit`",
        "FUNCTION `permit_fee`",
        "TRIGGER permits_status_history",
        "EVENT `expire_permits`",
        "VIEW `active_permits`",
    ] {
        assert!(sql.contains(object), "{object} is not in the dump");
    }

    let fingerprint = db.fingerprint();
    assert!(
        fingerprint.lines().any(|l| l.starts_with("big\t1000000\t")),
        "{fingerprint}"
    );
    assert!(fingerprint.contains("legacy_log:MyISAM"), "{fingerprint}");
}

#[test]
fn a_seeded_postgres_holds_a_million_rows_and_javanese_and_emoji_come_back_intact() {
    let Some(db) = Postgres::start() else { return };
    db.seed();

    assert_eq!(db.query("SELECT count(*) FROM big"), "1000000");
    assert_eq!(
        db.query("SELECT name FROM applicants WHERE id = 2"),
        JAVANESE_EMOJI
    );
    assert_eq!(
        db.query(
            "SELECT upper(encode(convert_to(name, 'UTF8'), 'hex')) FROM applicants WHERE id = 2"
        ),
        hex_upper(JAVANESE_EMOJI.as_bytes())
    );
    assert_eq!(
        db.query("SELECT upper(encode(content, 'hex')) FROM documents WHERE id = 1"),
        all_bytes_hex()
    );
    assert_eq!(
        db.query("SELECT count(*) FROM big WHERE note LIKE '%ꦗꦮ 🇮🇩🙂'"),
        "1000"
    );
    assert_eq!(
        db.query("SELECT email IS NULL, email = '' FROM applicants WHERE id IN (3, 2) ORDER BY id"),
        "f\tt\nt\t"
    );
    assert_eq!(db.query("SELECT count(*) FROM permit_history"), "2");
    assert_eq!(
        db.query("SELECT count(*) FROM pg_largeobject_metadata"),
        "1"
    );
    db.query(&format!(
        "UPDATE applicants SET address = '{JAVANESE_EMOJI}' WHERE id = 3"
    ));
    assert_eq!(
        db.query("SELECT address FROM applicants WHERE id = 3"),
        JAVANESE_EMOJI
    );
    // the app's user owns what the seed made
    assert_eq!(
        db.query(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace \
             AND relowner <> 'perizinan'::regrole"
        ),
        "0"
    );

    // the app's user, with its password over TCP (and only with it) ...
    let out = psql_tcp(
        db.port,
        &db.user,
        &db.password,
        &db.database,
        "SELECT current_user",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "perizinan");
    let out = psql_tcp(db.port, &db.user, "wrong", &db.database, "SELECT 1");
    assert!(!out.status.success(), "a wrong password was taken");
    // ... may dump the whole database
    let dump = db.dir.path().join("dump.pgc");
    let out = Command::new("/usr/lib/postgresql/15/bin/pg_dump")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &db.port.to_string(),
            "-U",
            &db.user,
        ])
        .args(["-d", &db.database, "-Fc", "-f"])
        .arg(&dump)
        .env("PGPASSWORD", &db.password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "pg_dump warned");
    assert!(std::fs::metadata(&dump).unwrap().len() > 1_000_000);

    let fingerprint = db.fingerprint();
    assert!(
        fingerprint.lines().any(|l| l.starts_with("big\t1000000\t")),
        "{fingerprint}"
    );
    assert!(fingerprint.contains("p:issue_permit("), "{fingerprint}");
}

/// A database container made by a test, and its volume: removed on drop, pass or fail.
struct Container {
    name: String,
    volume: String,
}

impl Container {
    /// Starts `image` hardened (read-only root, tmpfs /run and /tmp, no capability but
    /// SETUID and SETGID, no new privileges) on a new volume at `data`, with `args` (env,
    /// mounts), its port published on 127.0.0.1.
    fn start(label: &Labelled, image: &str, data: &str, port: u16, args: &[String]) -> Self {
        let name = format!("boyong-test-{}", label.0);
        let volume = format!("{name}-data");
        let made = docker(&["volume", "create", "--label", &label.arg(), &volume]);
        assert!(made.status.success(), "{}", text(&made.stderr));
        let this = Self { name, volume };
        let out = Command::new("docker")
            .args(["run", "-d", "--name", &this.name, "--label", &label.arg()])
            .args(["-v", &format!("{}:{data}", this.volume)])
            .args(["-p", &format!("127.0.0.1::{port}")])
            .args(["--read-only", "--tmpfs", "/run", "--tmpfs", "/tmp"])
            .args([
                "--cap-drop",
                "ALL",
                "--cap-add",
                "SETUID",
                "--cap-add",
                "SETGID",
            ])
            .args(["--security-opt", "no-new-privileges"])
            .args(args)
            .arg(image)
            .output()
            .unwrap();
        assert!(out.status.success(), "docker run: {}", text(&out.stderr));
        this
    }

    /// The host port that the container's `port` is published on.
    fn port(&self, port: u16) -> u16 {
        let out = docker(&["port", &self.name, &port.to_string()]);
        let text = text(&out.stdout);
        let first = text.lines().next().unwrap_or_default();
        first
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no published port {port}: {text}"))
    }

    fn logs(&self) -> String {
        let out = docker(&["logs", &self.name]);
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    }

    /// Waits until `cmd` (run in the container) succeeds; how long that took.
    fn wait_for(&self, cmd: &[&str]) -> Duration {
        let t0 = Instant::now();
        loop {
            let out = Command::new("docker")
                .args(["exec", &self.name])
                .args(cmd)
                .output()
                .unwrap();
            if out.status.success() {
                return t0.elapsed();
            }
            let running = docker(&["inspect", "-f", "{{.State.Running}}", &self.name]);
            assert!(
                text(&running.stdout).trim() == "true" || t0.elapsed() < Duration::from_secs(2),
                "the container stopped:\n{}",
                self.logs()
            );
            assert!(
                t0.elapsed() < CONTAINER_READY,
                "no answer within {CONTAINER_READY:?} ({}):\n{}",
                text(&out.stderr),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.name]);
        let _ = docker(&["volume", "rm", "-f", &self.volume]);
    }
}

/// A file holding `secret`, for a `_FILE` variable (a Docker secret's form).
fn secret_file(dir: &Path, secret: &str) -> String {
    let path = dir.join("secret");
    std::fs::write(&path, secret).unwrap();
    format!("{}:/run/secrets/db_root_password:ro", path.display())
}

#[test]
fn the_mariadb_image_initialises_an_empty_volume_hardened_and_takes_only_its_passwords() {
    if !docker_available() || !db::installed(&["/usr/bin/mariadb"], "mariadb-client") {
        return;
    }
    let image = db::base_image("mariadb");
    let label = Labelled::new("db-mariadb-image");
    let dir = tempfile::tempdir().unwrap();
    let root_pw = db::password();
    let app_pw = db::password();
    let c = Container::start(
        &label,
        &image,
        "/var/lib/mysql",
        3306,
        &[
            "-v".into(),
            secret_file(dir.path(), &root_pw),
            "-e".into(),
            "MARIADB_ROOT_PASSWORD_FILE=/run/secrets/db_root_password".into(),
            "-e".into(),
            "MARIADB_DATABASE=perizinan".into(),
            "-e".into(),
            "MARIADB_USER=perizinan".into(),
            "-e".into(),
            format!("MARIADB_PASSWORD={app_pw}"),
        ],
    );
    let root_check = format!("--password={root_pw}");
    // over TCP: while it initialises, a temporary server answers on the socket only
    let ready = [
        "mariadb",
        "-h127.0.0.1",
        "-uroot",
        &root_check,
        "-eSELECT 1",
    ];
    let took = c.wait_for(&ready);
    eprintln!("gov/mariadb:10.11 answered in {took:.1?}");

    let port = c.port(3306);
    let out = mariadb_tcp(
        port,
        "perizinan",
        &app_pw,
        "SELECT CURRENT_USER(), DATABASE()",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = mariadb_tcp(
        port,
        "perizinan",
        &app_pw,
        "CREATE TABLE perizinan.t (s VARCHAR(20)) CHARSET utf8mb4; \
         INSERT INTO perizinan.t VALUES ('ꦗꦮ 🇮🇩🙂'); SELECT s FROM perizinan.t",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ꦗꦮ 🇮🇩🙂");
    let out = mariadb_tcp(port, "root", &root_pw, "SELECT CURRENT_USER()");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "root@%");
    for (user, pw) in [
        ("root", "wrong"),
        ("perizinan", root_pw.as_str()),
        ("root", ""),
    ] {
        let out = mariadb_tcp(port, user, pw, "SELECT 1");
        assert!(!out.status.success(), "{user} got in with a wrong password");
    }
    assert!(
        !c.logs().contains(&root_pw),
        "the root password is in the log"
    );

    // started again on its volume: nothing to initialise, the same passwords
    let out = docker(&["restart", &c.name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    c.wait_for(&ready);
    let out = mariadb_tcp(
        c.port(3306),
        "perizinan",
        &app_pw,
        "SELECT s FROM perizinan.t",
    );
    assert_eq!(text(&out.stdout).trim(), "ꦗꦮ 🇮🇩🙂", "{}", text(&out.stderr));
    assert!(c.logs().contains("is initialised already"), "{}", c.logs());
}

#[test]
fn the_postgres_image_initialises_an_empty_volume_hardened_and_takes_only_its_passwords() {
    if !docker_available()
        || !db::installed(&["/usr/lib/postgresql/15/bin/psql"], "postgresql-client")
    {
        return;
    }
    let image = db::base_image("postgres");
    let label = Labelled::new("db-postgres-image");
    let dir = tempfile::tempdir().unwrap();
    let pw = db::password();
    let c = Container::start(
        &label,
        &image,
        "/var/lib/postgresql/data",
        5432,
        &[
            "-v".into(),
            secret_file(dir.path(), &pw),
            "-e".into(),
            "POSTGRES_PASSWORD_FILE=/run/secrets/db_root_password".into(),
            "-e".into(),
            "POSTGRES_USER=perizinan".into(),
            "-e".into(),
            "POSTGRES_DB=perizinan".into(),
        ],
    );
    // over TCP: while it initialises, a temporary server answers on the socket only
    let ready = [
        "psql",
        "-h127.0.0.1",
        "-Uperizinan",
        "-dperizinan",
        "-cSELECT 1",
    ];
    let took = c.wait_for(&ready);
    eprintln!("gov/postgres:15 answered in {took:.1?}");

    let port = c.port(5432);
    let out = psql_tcp(
        port,
        "perizinan",
        &pw,
        "perizinan",
        "CREATE TABLE t (s text); INSERT INTO t VALUES ('ꦗꦮ 🇮🇩🙂'); SELECT s FROM t",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ꦗꦮ 🇮🇩🙂");
    let out = psql_tcp(port, "perizinan", &pw, "perizinan", "SHOW server_encoding");
    assert_eq!(text(&out.stdout).trim(), "UTF8", "{}", text(&out.stderr));
    for (user, wrong) in [
        ("perizinan", "wrong"),
        ("perizinan", ""),
        ("postgres", pw.as_str()),
    ] {
        let out = psql_tcp(port, user, wrong, "perizinan", "SELECT 1");
        assert!(!out.status.success(), "{user} got in with a wrong password");
    }
    assert!(!c.logs().contains(&pw), "the password is in the log");

    let out = docker(&["restart", &c.name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    c.wait_for(&ready);
    let out = psql_tcp(
        c.port(5432),
        "perizinan",
        &pw,
        "perizinan",
        "SELECT s FROM t",
    );
    assert_eq!(text(&out.stdout).trim(), "ꦗꦮ 🇮🇩🙂", "{}", text(&out.stderr));
    assert!(
        c.logs().contains("holds a database already"),
        "{}",
        c.logs()
    );
}
