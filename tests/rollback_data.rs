//! No data lost on rollback, with real parts: a MariaDB database dumped over a real sshd,
//! restored into a container of the real engine, an app deployed beside it with a volume;
//! then rows and files written as users would; then `boyong rollback`, which first dumps
//! the database inside its container (`rollback/STEP.sql.gz`, its SHA-256 journaled) and
//! copies the deploy's volume, then removes them. A dump that fails stops the rollback
//! before anything is removed; `--discard-data` skips the saving, journaled.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use support::db::{Mariadb, base_image};
use support::docker::{docker, exists, web_image};
use support::env::Env;
use support::{journal, text};

impl Env {
    /// The database playbook, and an app deployed after it with a volume of its own.
    fn app_playbook(&self, db: &Mariadb, image: &str) -> PathBuf {
        let pb = self.db_playbook("mariadb", db.port, image, false);
        let web = web_image(self.label(), "web", "web");
        let text = std::fs::read_to_string(&pb).unwrap();
        let text = text
            + &format!(
                "  - id: web\n    deploy:\n      image: {web}\n      name: {name}-web\n      ports: [\"127.0.0.1:{port}:8080\"]\n      volumes: [\"{name}-files:/data\"]\n      health:\n        http: http://127.0.0.1:{port}/\n        timeout: 30s\n",
                name = self.name,
                port = self.port,
            );
        std::fs::write(&pb, text).unwrap();
        pb
    }

    /// What users do once the app serves: a row in the database, a file in the volume.
    fn users_write(&self, db: &Mariadb, marker: &str) {
        let pw = format!("MYSQL_PWD={}", db.password);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS after_cutover (note VARCHAR(64)); INSERT INTO after_cutover VALUES ('{marker}')"
        );
        let out = docker(&[
            "exec",
            "-e",
            &pw,
            &self.name,
            "mariadb",
            "--protocol=tcp",
            "-h127.0.0.1",
            "-uperizinan",
            "perizinan",
            "-e",
            &sql,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let web = format!("{}-web", self.name);
        let out = docker(&[
            "exec",
            &web,
            "sh",
            "-c",
            &format!("echo {marker} > /data/upload.txt"),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    fn rollback_with(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["rollback", "dbtest", "--yes"];
        all.extend_from_slice(args);
        self.command(&all)
            .env("BOYONG_TEST_DB_PASSWORD", "unused by rollback")
            .output()
            .unwrap()
    }
}

fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The notes of `kind` in the run's journal.
/// The copy of step `web`'s `volume` in `run` holds `written`, and `kept` (the run's
/// `data-kept` notes) its SHA-256.
fn assert_copy_holds(run: &Path, volume: &str, written: &str, kept: &[String]) {
    let tar = run.join(format!("rollback/web.{volume}.tar"));
    let listing = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        text(&listing.stdout).contains(written),
        "the volume's file is in the copy: {}",
        text(&listing.stderr)
    );
    assert!(kept.iter().any(|n| n.contains(&sha256(&tar))), "{kept:?}");
}

fn notes(run: &Path, kind: &str) -> Vec<String> {
    journal(run)
        .iter()
        .filter(|r| r["type"] == "note" && r["kind"] == kind)
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn rollback_saves_what_users_wrote_after_the_cut_over_and_stops_if_it_cannot() {
    let Some(env) = Env::database("rollback-data") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.query(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO t VALUES (1, 'vendor')",
    );
    let image = base_image("mariadb");
    let pb = env.app_playbook(&db, &image);
    let volume = format!("{}-files", env.name);

    // 1. A run, users write, the rollback saves it all first.
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.users_write(&db, "written-after-cutover-1");
    let listed = env.run(&["rollback", "dbtest", "--plan"]);
    let listed = text(&listed.stdout);
    assert!(
        listed.contains("save  dump database `perizinan` with mariadb-dump")
            && listed.contains("rollback/database.sql.gz")
            && listed.contains(&format!(
                "save  copy volume `{volume}` into rollback/web.{volume}.tar"
            )),
        "{listed}"
    );
    let rb = env.watched(&["rollback", "dbtest", "--yes"], &db.password);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    let said = text(&rb.stdout) + &text(&rb.stderr);
    assert!(
        said.contains("saved: ") && said.contains("database.sql.gz"),
        "{said}"
    );
    let run = env.last_run("dbtest");
    let dump = run.join("rollback/database.sql.gz");
    let sql = gunzip(&dump);
    assert!(
        sql.contains("written-after-cutover-1"),
        "the new row is in the dump"
    );
    assert!(sql.contains("'vendor'"), "and the vendor's rows");
    let kept = notes(&run, "data-kept");
    let sum = sha256(&dump);
    assert!(
        kept.iter()
            .any(|n| n.contains("rollback/database.sql.gz") && n.contains(&sum)),
        "the journal holds the dump's SHA-256 {sum}: {kept:?}"
    );
    assert_copy_holds(&run, &volume, "written-after-cutover-1", &kept);
    assert!(!exists("container", &env.name) && !exists("volume", &env.volume()));
    assert!(!exists("volume", &volume));
    env.assert_no_secret_in_state(&db.password);

    // 2. Again; the dump cannot run (the container is paused): nothing is removed.
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.users_write(&db, "written-after-cutover-2");
    let paused = docker(&["pause", &env.name]);
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let rb = env.rollback_with(&[]);
    let _ = docker(&["unpause", &env.name]);
    assert_eq!(rb.status.code(), Some(1), "{}", text(&rb.stderr));
    assert!(
        text(&rb.stderr).contains("NOT rolled back"),
        "{}",
        text(&rb.stderr)
    );
    let run = env.last_run("dbtest");
    assert!(exists("container", &env.name) && exists("volume", &env.volume()));
    assert!(exists("container", &format!("{}-web", env.name)));
    assert_eq!(notes(&run, "data-not-kept").len(), 1);
    assert!(!run.join("rollback/database.sql.gz").exists());

    // 3. --discard-data: nothing saved, journaled, everything removed.
    let rb = env.rollback_with(&["--discard-data"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(!run.join("rollback/database.sql.gz").exists());
    let discarded = notes(&run, "discard-data");
    assert!(
        discarded.len() == 1 && discarded[0].contains("perizinan"),
        "{discarded:?}"
    );
    assert!(!exists("container", &env.name) && !exists("volume", &env.volume()));
}

/// The undo before a resume saves too: a deploy whose health check failed, left in place
/// (`--no-auto-rollback`), its volume written to meanwhile; the playbook mended and the run
/// resumed: the deploy is done again, its volume copied first (`rollback/web.VOL.tar`, a
/// `data-kept` note), not dropped.
#[test]
fn the_undo_before_a_resume_saves_what_was_written_meanwhile() {
    let Some(env) = Env::database("resume-data") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.query("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)");
    let image = base_image("mariadb");
    let pb = env.app_playbook(&db, &image);
    let good = std::fs::read_to_string(&pb).unwrap();
    let health = format!("http: http://127.0.0.1:{}/\n        timeout: 30s", env.port);
    assert!(good.contains(&health), "{good}");
    std::fs::write(
        &pb,
        good.replace(
            &health,
            &format!(
                "http: http://127.0.0.1:{}/missing\n        timeout: 3s",
                env.port
            ),
        ),
    )
    .unwrap();
    let volume = format!("{}-files", env.name);
    let run_with = |flag: &str| {
        let label = env.label().arg();
        env.watched(
            &["run", pb.to_str().unwrap(), "--label", &label, flag],
            &db.password,
        )
    };
    let out = run_with("--no-auto-rollback");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(exists("volume", &volume), "left in place");
    // Written into the volume meanwhile (as the half-deployed release would).
    let wrote = docker(&[
        "run",
        "--rm",
        "--label",
        &env.label().arg(),
        "-v",
        &format!("{volume}:/data"),
        "boyong-fixture/busybox:1",
        "sh",
        "-c",
        "echo written-before-resume > /data/upload.txt",
    ]);
    assert!(wrote.status.success(), "{}", text(&wrote.stderr));

    std::fs::write(&pb, &good).unwrap();
    let out = run_with("--resume");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.last_run("dbtest");
    assert_copy_holds(
        &run,
        &volume,
        "written-before-resume",
        &notes(&run, "data-kept"),
    );
    let rb = env.rollback_with(&["--discard-data"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
}
