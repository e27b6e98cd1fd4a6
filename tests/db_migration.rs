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

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use support::db::{Mariadb, Postgres, base_image};
use support::dbrun::{assert_overlapped, restore_facts};
use support::docker::{docker, exists};
use support::env::Env;
use support::text;

#[test]
fn a_mariadb_database_moves_into_a_container_equal_table_by_table_and_rollback_removes_it() {
    let Some(env) = Env::database("mariadb") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    db.seed_myisam();
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("legacy_log") && said.contains("not InnoDB"),
        "the MyISAM table is warned about: {said}"
    );
    let run = env.last_run("dbtest");
    support::assert_plan_fidelity(&run);
    assert_overlapped(&run);
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
    let restored = env.mariadb_fingerprint(&db.password);
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

    env.rollback_leaves_nothing();
}

#[test]
fn a_postgres_database_moves_into_a_container_equal_table_by_table() {
    let Some(env) = Env::database("postgres") else {
        return;
    };
    let Some(db) = Postgres::start() else { return };
    db.seed();
    let image = base_image("postgres");
    let pb = env.db_playbook("postgres", db.port, &image, false);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.last_run("dbtest");
    support::assert_plan_fidelity(&run);
    assert_overlapped(&run);
    let facts = restore_facts(&run);
    assert_eq!(facts["checksums_compared"], true, "{facts}");
    assert!(facts["rows"].as_u64().unwrap() > 1_000_000, "{facts}");
    let env_pw = format!("PGPASSWORD={}", db.password);
    let restored = env.postgres_fingerprint(&db.password);
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
    env.rollback_leaves_nothing();
}

#[test]
fn a_wrong_password_is_a_clear_error_and_nothing_is_left() {
    let Some(env) = Env::database("badpw") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    let pb = env.db_playbook("mariadb", db.port, "gov/mariadb:10.11", false);
    let out = env.run_watched(&pb, &format!("wrong-{}", support::db::password()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("Access denied"), "{err}");
    assert!(!err.contains("attempt 2"), "not retried: {err}");
    let artifacts = env.last_run("dbtest").join("artifacts");
    let left: Vec<_> = std::fs::read_dir(&artifacts)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing left in artifacts: {left:?}");
    assert!(!exists("container", &env.name));
    assert!(!exists("volume", &env.volume()));
}

#[test]
fn an_existing_volume_is_not_overwritten_without_replace() {
    let Some(env) = Env::database("volume") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    let made = docker(&[
        "volume",
        "create",
        "--label",
        &env.label().arg(),
        &env.volume(),
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&env.volume()) && err.contains("replace: true"),
        "{err}"
    );
    assert!(exists("volume", &env.volume()), "the volume is kept");
    assert!(!exists("container", &env.name));
    let _ = docker(&["volume", "rm", &env.volume()]);
}

#[test]
fn a_volume_with_its_own_storage_is_not_replaced_and_the_plan_says_so() {
    let Some(env) = Env::database("volume-opts") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    // A volume on storage of its own (here a tmpfs; on a server, a bind to a data disk):
    // removed and made again it would land on the engine's default storage.
    let made = docker(&[
        "volume",
        "create",
        "--label",
        &env.label().arg(),
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=16m",
        &env.volume(),
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, true);

    let plan = env
        .command(&["plan", pb.to_str().unwrap()])
        .env("BOYONG_TEST_DB_PASSWORD", &db.password)
        .output()
        .unwrap();
    let said = text(&plan.stdout) + &text(&plan.stderr);
    assert_eq!(plan.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "has its own storage (driver local, options device=tmpfs,o=size=16m,type=tmpfs)"
        ),
        "{said}"
    );

    let out = env.run_watched(&pb, &db.password);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has its own storage") && err.contains(&env.volume()),
        "{err}"
    );
    let opts = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{json .Options}}",
        &env.volume(),
    ]);
    assert!(
        text(&opts.stdout).contains("size=16m"),
        "the volume is kept as it was: {}",
        text(&opts.stdout)
    );
    assert!(!exists("container", &env.name));
    let _ = docker(&["volume", "rm", &env.volume()]);
}

#[test]
fn replace_saves_the_existing_volume_first_and_rollback_puts_it_back() {
    let Some(env) = Env::database("replace") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    support::docker::busybox();
    let label = env.label().arg();
    let ls = |env: &Env| {
        let out = docker(&[
            "run",
            "--rm",
            "--label",
            &label,
            "-v",
            &format!("{}:/v", env.volume()),
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
        &format!("{}:/v", env.volume()),
        "boyong-fixture/busybox:1",
        "sh",
        "-c",
        "echo earlier > /v/earlier-data && chown 999:999 /v/earlier-data",
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, true);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    support::assert_plan_fidelity(&env.last_run("dbtest"));
    assert!(
        env.last_run("dbtest")
            .join("artifacts/database.volume.tar")
            .exists(),
        "the old contents were saved"
    );
    let now = ls(&env);
    assert!(
        !now.contains("earlier-data") && now.contains("ibdata1"),
        "the volume holds the restored database only: {now}"
    );
    let rb = env.rollback("dbtest");
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
        &format!("{}:/v", env.volume()),
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
    let Some(env) = Env::database("cutdump") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    // The first SSH connection is cut after 5 MB from the vendor: inside the dump.
    let (port, cut) = support::sshd::cutting_proxy(env.sshd().port, 5_000_000);
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    env.through_proxy(&pb, port);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(cut.load(Ordering::SeqCst), "the proxy cut a connection");
    let err = text(&out.stderr);
    assert!(err.contains("attempt 2"), "the dump was retried: {err}");
    let artifacts = env.last_run("dbtest").join("artifacts");
    let names: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("partial")),
        "no partial file is left: {names:?}"
    );
    let facts = restore_facts(&env.last_run("dbtest"));
    assert_eq!(facts["checksums_compared"], true, "{facts}");
}

/// SQL that makes `count` tables named `prefix` and a number (`quote` quotes a name, `engine`
/// ends the CREATE TABLE), a row each, in one batch.
fn many_tables(count: usize, prefix: &str, quote: impl Fn(&str) -> String, engine: &str) -> String {
    let mut sql = String::from("BEGIN;\n");
    for i in 0..count {
        let t = quote(&format!("{prefix}{i:04}"));
        let _ = writeln!(
            sql,
            "CREATE TABLE {t} (id INT, berkas VARCHAR(40)){engine};\nINSERT INTO {t} VALUES ({i}, 'lampiran {i}');"
        );
    }
    sql.push_str("COMMIT;\n");
    sql
}

/// The restore's evidence, table name to rows.
fn restored_rows(facts: &serde_json::Value) -> std::collections::HashMap<String, u64> {
    facts["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_postgres_database_of_1500_tables_some_oddly_named_moves_equal_table_by_table() {
    let Some(env) = Env::database("pgmany") else {
        return;
    };
    let Some(db) = Postgres::start() else { return };
    db.seed_odd_names();
    let t0 = std::time::Instant::now();
    let prefix = "permohonan_izin_usaha_mikro_kecil_lampiran_";
    db.query_as(
        &db.user,
        &many_tables(1500, prefix, |t| format!("\"{t}\""), ""),
    );
    eprintln!("postgres: 1,500 tables made in {:.1?}", t0.elapsed());
    let image = base_image("postgres");
    let pb = env.db_playbook("postgres", db.port, &image, false);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.last_run("dbtest");
    let facts = restore_facts(&run);
    assert_eq!(facts["checksums_compared"], true, "{facts}");
    assert_eq!(facts["tables"], 1500 + 9, "{facts}");
    let rows = restored_rows(&facts);
    for (name, n) in [
        ("public.tab\there", 3),
        ("public.line\nbreak", 3),
        ("public.back\\slash", 3),
        ("public.\"it's \"\"quoted\"\"\"", 3),
        ("public.with space", 3),
        ("public.\"dot.ted\"", 3),
        ("public.Jawa ꦗꦮ 🙂", 3),
        ("\"dot.schema\".with space", 1),
        ("public.permohonan_izin_usaha_mikro_kecil_lampiran_1499", 1),
    ] {
        assert_eq!(rows.get(name), Some(&n), "{name:?} in {rows:?}");
    }
    // The vendor's evidence names the same tables (compared by boyong; read here too).
    let dumped: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("artifacts/db.evidence.json")).unwrap())
            .unwrap();
    assert_eq!(dumped["tables"].as_array().unwrap().len(), 1509);
    let restored = env.postgres_fingerprint(&db.password);
    assert_eq!(restored, db.fingerprint());
}

#[test]
fn a_mariadb_database_of_800_tables_named_long_and_odd_moves_equal_table_by_table() {
    let Some(env) = Env::database("mymany") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed_odd_names();
    let t0 = std::time::Instant::now();
    // 64 characters, MariaDB's longest: 800 such tables need ~150 KiB of evidence SQL,
    // more than one argument may hold. MyISAM: made and restored in seconds, not minutes.
    let prefix = "permohonan_izin_usaha_mikro_kecil_menengah_lampiran_dokumen_";
    assert_eq!(prefix.len() + 4, 64);
    db.query(&many_tables(
        800,
        prefix,
        |t| format!("`{t}`"),
        " ENGINE=MyISAM",
    ));
    eprintln!("mariadb: 800 tables made in {:.1?}", t0.elapsed());
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let facts = restore_facts(&env.last_run("dbtest"));
    assert_eq!(facts["checksums_compared"], true, "{facts}");
    assert_eq!(facts["tables"], 800 + 8, "{facts}");
    let rows = restored_rows(&facts);
    for (name, n) in [
        ("tab\there", 3),
        ("line\nbreak", 2),
        ("back\\slash", 2),
        ("it's \"quoted\" `x`", 2),
        ("with space", 1),
        ("dot.ted", 1),
        ("Jawa ꦗꦮ é", 2),
        (
            "permohonan_izin_usaha_mikro_kecil_menengah_lampiran_dokumen_0799",
            1,
        ),
    ] {
        assert_eq!(rows.get(name), Some(&n), "{name:?} in {rows:?}");
    }
    // Not the fixture's fingerprint here: its query reads information_schema.COLUMNS once
    // per table, minutes for 800 tables (the first test compares it, on the seed).
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("808 tables, 814 rows: equal to the dump"),
        "{said}"
    );
}

/// What a failed restore said differs, up to the end of its line.
fn differences(stderr: &str) -> &str {
    let at = stderr
        .find("the restored database differs from the dump: ")
        .unwrap_or_else(|| panic!("no differences in: {stderr}"));
    let rest = &stderr[at + "the restored database differs from the dump: ".len()..];
    rest.split('\n').next().unwrap_or_default().trim_end()
}

/// Runs `boyong run` on `pb` while `meanwhile` runs: once the dump and the vendor's
/// evidence both wait on the lock a test holds (`waiting` says so), `change` is made and
/// the lock let go. The dump's snapshot predates the change, the evidence (counted after
/// the lock) sees it: a real difference between the dump and the vendor's evidence.
fn run_with_change_under_a_held_lock(
    env: &Env,
    pb: &std::path::Path,
    password: &str,
    waiting: impl Fn() -> bool,
    change_and_release: impl FnOnce(),
) -> std::process::Output {
    let mut child = env
        .playbook_run(pb)
        .env("BOYONG_TEST_DB_PASSWORD", password)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !waiting() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(120),
            "the dump and the evidence never waited on the lock"
        );
        assert!(child.try_wait().unwrap().is_none(), "boyong ended early");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    change_and_release();
    child.wait_with_output().unwrap()
}

/// A psql or mariadb session as the superuser that holds what `sql` locks until dropped
/// (its stdin closed ends it).
struct Holding(std::process::Child);

impl Holding {
    fn start(mut cmd: std::process::Command, sql: &str) -> Self {
        use std::io::Write as _;
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        Self(child)
    }

    fn release(mut self, sql: &str) {
        use std::io::Write as _;
        let mut stdin = self.0.stdin.take().unwrap();
        stdin.write_all(sql.as_bytes()).unwrap();
        drop(stdin);
        let _ = self.0.wait();
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if self.0.stdin.is_some() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_postgres_table_named_with_a_tab_that_changed_during_the_dump_fails_the_restore_by_name() {
    let Some(env) = Env::database("pgdiff") else {
        return;
    };
    let Some(db) = Postgres::start() else { return };
    db.seed_odd_names();
    let image = base_image("postgres");
    let pb = env.db_playbook("postgres", db.port, &image, false);
    let gate = Holding::start(
        db.client(),
        "BEGIN;\nLOCK TABLE aaa_gate IN ACCESS EXCLUSIVE MODE;\n",
    );
    let locked = || {
        db.query("SELECT count(*) FROM pg_locks WHERE relation = 'aaa_gate'::regclass AND mode = 'AccessExclusiveLock' AND granted")
            == "1"
    };
    let t0 = std::time::Instant::now();
    while !locked() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // pg_dump (its snapshot taken) and the evidence's count, both waiting on the gate.
    let waiting = || {
        db.query(
            "SELECT count(DISTINCT application_name) FROM pg_stat_activity WHERE datname = 'perizinan' AND wait_event_type = 'Lock' AND application_name IN ('pg_dump', 'psql') AND usename = 'perizinan'",
        ) == "2"
    };
    let out = run_with_change_under_a_held_lock(&env, &pb, &db.password, waiting, || {
        db.query_as(&db.user, "INSERT INTO \"tab\there\" VALUES (4, 'later')");
        gate.release("COMMIT;\n");
    });
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(
        differences(&err),
        "table `public.tab\\there` has 3 rows, the dump had 4",
        "that table alone, named: {err}"
    );
}

#[test]
fn a_mariadb_table_named_with_a_tab_that_changed_during_the_dump_fails_the_restore_by_name() {
    let Some(env) = Env::database("mydiff") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.seed_odd_names();
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    let gate = Holding::start(db.client(), "LOCK TABLES aaa_gate WRITE;\n");
    let count = |state: &str| {
        db.query(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE {state}"
        ))
    };
    let t0 = std::time::Instant::now();
    while db
        .query("SHOW OPEN TABLES FROM perizinan WHERE `Table` = 'aaa_gate' AND In_use > 0")
        .is_empty()
    {
        assert!(t0.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The dump (its snapshot taken) and the evidence's count, both waiting on the gate.
    let waiting = || {
        count("USER = 'perizinan' AND STATE = 'Waiting for table metadata lock'")
            .parse::<u32>()
            .unwrap()
            >= 2
    };
    let out = run_with_change_under_a_held_lock(&env, &pb, &db.password, waiting, || {
        db.query("INSERT INTO `tab\there` VALUES (4, 'later')");
        gate.release("UNLOCK TABLES;\n");
    });
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(
        differences(&err),
        "table `tab\\there` has 3 rows, the dump had 4",
        "that table alone, named: {err}"
    );
}

#[test]
fn a_replaced_volume_comes_back_on_rollback_with_every_owner_and_mode() {
    let Some(env) = Env::database("replaceowners") else {
        return;
    };
    support::scenario::volume_replace_and_rollback_keep_owners(&env);
}
