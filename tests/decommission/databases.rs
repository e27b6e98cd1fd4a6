//! Databases: dropped (MariaDB, PostgreSQL), their users, `--wipe`.

use serde_json::Value;

use super::common::*;
use crate::support::db::Postgres;
use crate::support::env::Env;

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
