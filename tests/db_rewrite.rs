//! `restore.rewrite` with real parts (issue 14, item 4): a real MariaDB and PostgreSQL on
//! the vendor host, dumped over SSH, restored into a container of the real engine, proven
//! equal, then the app's URL rewritten: plain text everywhere, PHP-serialized values with
//! their lengths right (nested ones too), composite keys and a table named with a tab; a
//! table without a primary key is named and left alone; rows changed per table are the
//! evidence; rollback removes it all with the restore.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::db::{Mariadb, Postgres, base_image};
use support::dbrun::restore_facts;
use support::docker::docker;
use support::env::Env;
use support::text;

const OLD: &str = "http://vendor.example";
const NEW: &str = "https://izin.kota.go.id";

/// A PHP-serialized array holding `url`: `a:2:{s:3:"url";s:N:"URL";s:1:"n";i:7;}`.
fn serialized(url: &str) -> String {
    format!(
        "a:2:{{s:3:\"url\";s:{}:\"{url}\";s:1:\"n\";i:7;}}",
        url.len()
    )
}

/// The same array, serialized again as a string inside an object (data serialized twice).
fn twice(url: &str) -> String {
    let inner = serialized(url);
    format!(
        "O:8:\"stdClass\":1:{{s:4:\"data\";s:{}:\"{inner}\";}}",
        inner.len()
    )
}

fn add_rewrite(env: &Env, pb: &std::path::Path) {
    let yaml = std::fs::read_to_string(pb).unwrap();
    std::fs::write(
        pb,
        format!("{yaml}      rewrite:\n        - {{ from: \"{OLD}\", to: \"{NEW}\" }}\n"),
    )
    .unwrap();
    let plan = env
        .command(&["plan", "--offline", pb.to_str().unwrap()])
        .env("BOYONG_TEST_DB_PASSWORD", "not-used")
        .output()
        .unwrap();
    let shown = text(&plan.stdout) + &text(&plan.stderr);
    assert!(
        shown.contains(&format!("`{OLD}` -> `{NEW}`")) && shown.contains("PHP-serialized"),
        "{shown}"
    );
}

/// What the run's restore recorded of its rewrite: rows per table, tables skipped.
fn rewrite_facts(env: &Env) -> serde_json::Value {
    restore_facts(&env.last_run("dbtest"))["rewrite"].clone()
}

fn expect_rows(got: &str) {
    let want = [
        format!("1\t{NEW}"),
        format!("2\t{}", serialized(&format!("{NEW}/wp-content/x"))),
        format!("3\t{}", twice(&format!("{NEW}/a"))),
        "4\tunrelated".to_string(),
        format!("5\tsee {NEW}/p and {NEW}/q"),
    ];
    assert_eq!(got.lines().collect::<Vec<_>>(), want, "{got}");
}

#[test]
fn mariadb_urls_are_rewritten_serialized_values_stay_valid_and_rows_are_counted() {
    let Some(env) = Env::database("rewrite-my") else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    db.query(&format!(
        "CREATE TABLE wp_options (option_id BIGINT PRIMARY KEY, option_value LONGTEXT) DEFAULT CHARSET=utf8mb4;\n\
         INSERT INTO wp_options VALUES (1, '{OLD}'), (2, '{}'), (3, '{}'), (4, 'unrelated'), (5, 'see {OLD}/p and {OLD}/q');\n\
         CREATE TABLE `odd\tname` (a INT, b VARCHAR(10), v TEXT, PRIMARY KEY (a, b));\n\
         INSERT INTO `odd\tname` VALUES (1, 'k', '{OLD}/odd'), (2, 'k', 'none');\n\
         CREATE TABLE nopk (v TEXT);\nINSERT INTO nopk VALUES ('{OLD}');",
        serialized(&format!("{OLD}/wp-content/x")).replace('\'', "''"),
        twice(&format!("{OLD}/a")).replace('\'', "''"),
    ));
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    add_rewrite(&env, &pb);
    let out = env.run_watched(&pb, &db.password);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("rewrite: 5 row(s) changed"), "{said}");
    assert!(
        said.contains("not changed (no primary key): nopk"),
        "{said}"
    );
    let facts = rewrite_facts(&env);
    assert_eq!(facts["rows"]["wp_options"], 4, "{facts}");
    assert_eq!(facts["rows"]["odd\tname"], 1, "{facts}");
    assert_eq!(facts["skipped"], serde_json::json!(["nopk"]), "{facts}");
    let q = |sql: &str| {
        let o = docker(&[
            "exec",
            "-e",
            &format!("MYSQL_PWD={}", db.password),
            &env.name,
            "mariadb",
            "--protocol=tcp",
            "-h127.0.0.1",
            "-uperizinan",
            "--batch",
            "--skip-column-names",
            "--raw",
            "perizinan",
            "-e",
            sql,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    expect_rows(&q(
        "SELECT option_id, option_value FROM wp_options ORDER BY 1",
    ));
    assert_eq!(
        q("SELECT v FROM `odd\tname` ORDER BY a")
            .lines()
            .collect::<Vec<_>>(),
        [format!("{NEW}/odd"), "none".to_string()]
    );
    assert_eq!(q("SELECT v FROM nopk").trim(), OLD);
    env.rollback_leaves_nothing();
}

#[test]
fn postgres_urls_are_rewritten_serialized_values_stay_valid_and_rows_are_counted() {
    let Some(env) = Env::database("rewrite-pg") else {
        return;
    };
    let Some(db) = Postgres::start() else { return };
    db.query_as(
        "perizinan",
        &format!(
            "CREATE TABLE wp_options (option_id BIGINT PRIMARY KEY, option_value TEXT);\n\
             INSERT INTO wp_options VALUES (1, '{OLD}'), (2, '{}'), (3, '{}'), (4, 'unrelated'), (5, 'see {OLD}/p and {OLD}/q');\n\
             CREATE SCHEMA app;\nCREATE TABLE app.\"odd\tname\" (a INT, b VARCHAR(10), v TEXT, PRIMARY KEY (a, b));\n\
             INSERT INTO app.\"odd\tname\" VALUES (1, 'k', '{OLD}/odd'), (2, 'k', 'none');\n\
             CREATE TABLE nopk (v TEXT);\nINSERT INTO nopk VALUES ('{OLD}');",
            serialized(&format!("{OLD}/wp-content/x")).replace('\'', "''"),
            twice(&format!("{OLD}/a")).replace('\'', "''"),
        ),
    );
    let image = base_image("postgres");
    let pb = env.db_playbook("postgres", db.port, &image, false);
    add_rewrite(&env, &pb);
    let out = env.run_watched(&pb, &db.password);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("rewrite: 5 row(s) changed"), "{said}");
    let facts = rewrite_facts(&env);
    assert_eq!(facts["rows"]["wp_options"], 4, "{facts}");
    assert_eq!(facts["rows"]["app.odd\tname"], 1, "{facts}");
    assert_eq!(facts["skipped"], serde_json::json!(["nopk"]), "{facts}");
    let q = |sql: &str| {
        let o = docker(&[
            "exec",
            "-e",
            &format!("PGPASSWORD={}", db.password),
            &env.name,
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "perizinan",
            "-d",
            "perizinan",
            "-X",
            "-A",
            "-t",
            "-F",
            "\t",
            "-c",
            sql,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    expect_rows(&q(
        "SELECT option_id, option_value FROM wp_options ORDER BY 1",
    ));
    assert_eq!(
        q("SELECT v FROM app.\"odd\tname\" ORDER BY a")
            .lines()
            .collect::<Vec<_>>(),
        [format!("{NEW}/odd"), "none".to_string()]
    );
    assert_eq!(q("SELECT v FROM nopk").trim(), OLD);
    env.rollback_leaves_nothing();
}
