//! Databases: dropped (MariaDB, PostgreSQL), their users, `--wipe`.

use serde_json::Value;

use super::common::*;
use crate::support::db::{Mariadb, Postgres};
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

/// A migrated MariaDB app (tree and database), archived; `grants` run as root first.
fn migrated_mariadb(env: &Env, db: &Mariadb, grants: &str) -> std::path::PathBuf {
    prepare_db(db);
    root_sql(db, grants);
    let (tree, _) = vendor_files(env);
    let pb = playbook(env, &tree, Some(db));
    let run = boyong(env, Some(db), &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(boyong(env, None, &["archive", APP]).status.code(), Some(0));
    tree
}

fn accounts(db: &Mariadb) -> String {
    root_sql(
        db,
        "SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY 1",
    )
}

fn cert_of(env: &Env) -> Value {
    let dir = decommissions(env).pop().unwrap();
    serde_json::from_slice(&std::fs::read(dir.join("certificate.json")).unwrap()).unwrap()
}

#[test]
fn the_dump_user_is_dropped_after_its_database_and_checked_gone() {
    let Some(env) = Env::builder("decommission-user").sshd().build() else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    let tree = migrated_mariadb(
        &env,
        &db,
        &format!(
            "GRANT CREATE USER ON *.* TO '{u}'@'%'; CREATE USER 'other'@'%' IDENTIFIED BY 'x'; GRANT SELECT ON sibling.* TO 'other'@'%';",
            u = db.user
        ),
    );
    let plan = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--plan", "--min-age", "0"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", said(&plan));
    let p = said(&plan);
    assert!(
        p.contains("user mariadb account perizinan@% at 127.0.0.1")
            && p.contains("runs: DROP USER IF EXISTS 'perizinan'@'%'"),
        "{p}"
    );
    assert!(
        accounts(&db).contains("perizinan@%"),
        "the plan dropped nothing"
    );

    // The password never on a command line nor in a file on the vendor host.
    let done = env.watched(
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
        &db.password,
    );
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    assert!(!tree.exists());
    env.assert_no_secret_in_state(&db.password);
    let acc = accounts(&db);
    assert!(!acc.contains("perizinan@"), "the user is gone: {acc}");
    assert!(acc.contains("other@%"), "another user survives: {acc}");
    assert!(!databases(&db).lines().any(|l| l == db.database));
    assert_eq!(root_sql(&db, "SELECT id FROM sibling.keep"), "7");
    let cert = cert_of(&env);
    let user = &cert["removed"][2];
    assert_eq!(user["kind"], "user", "{cert}");
    assert_eq!(user["account"], "perizinan@%");
    assert_eq!(user["gone"], true);
    assert!(
        user["gone_check"]
            .as_str()
            .unwrap()
            .contains("is refused now"),
        "{cert}"
    );
    let md =
        std::fs::read_to_string(decommissions(&env).pop().unwrap().join("certificate.md")).unwrap();
    assert!(md.contains("perizinan@%"), "{md}");
}

/// A MariaDB app migrated with its dump login given `grants` (`{u}`: the login) too, and
/// what `decommission --plan` said of it.
fn planned_with_grants(test: &str, grants: &str) -> Option<(Env, Mariadb, String)> {
    let env = Env::builder(test).sshd().build()?;
    let db = Mariadb::start()?;
    migrated_mariadb(&env, &db, &grants.replace("{u}", &db.user));
    let plan = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--plan"],
    );
    let p = said(&plan);
    Some((env, db, p))
}

#[test]
fn a_user_who_may_grant_on_every_database_is_not_dropped() {
    let Some((_env, _db, p)) = planned_with_grants(
        "decommission-granter",
        "GRANT USAGE ON *.* TO '{u}'@'%' WITH GRANT OPTION;",
    ) else {
        return;
    };
    assert!(
        p.contains("KEPT, not removed: shared: it holds GRANT OPTION on every database"),
        "{p}"
    );
}

#[test]
fn a_shared_user_is_not_dropped_and_the_plan_and_certificate_say_why() {
    let Some((env, db, p)) = planned_with_grants(
        "decommission-shared",
        "GRANT CREATE USER ON *.* TO '{u}'@'%'; GRANT SELECT ON sibling.* TO '{u}'@'%';",
    ) else {
        return;
    };
    let args = ["decommission", APP, "--min-age", "0", "--confirm", APP];
    assert!(
        p.contains("KEPT, not removed: shared: it has grants on other databases (sibling)"),
        "{p}"
    );
    let done = boyong(&env, Some(&db), &args);
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    assert!(said(&done).contains("1 kept"), "{}", said(&done));
    assert!(
        !databases(&db).lines().any(|l| l == db.database),
        "its database is gone"
    );
    assert!(
        accounts(&db).contains("perizinan@%"),
        "the shared user stays"
    );
    let cert = cert_of(&env);
    assert_eq!(cert["removed"][2]["gone"], false);
    assert!(
        cert["removed"][2]["gone_check"]
            .as_str()
            .unwrap()
            .starts_with("kept: shared"),
        "{cert}"
    );
    let j =
        std::fs::read_to_string(decommissions(&env).pop().unwrap().join("journal.jsonl")).unwrap();
    assert!(
        j.contains("\"kind\":\"kept\"") && j.contains("not removed: shared"),
        "the journal says it was kept: {j}"
    );
    assert!(
        !j.contains("\"change_id\":\"user:db\""),
        "no intent to drop it: {j}"
    );
}

#[test]
fn wipe_leaves_an_empty_mariadb_database_and_its_user() {
    let Some(env) = Env::builder("decommission-wipe").sshd().build() else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    migrated_mariadb(
        &env,
        &db,
        &format!(
            "GRANT ALL ON `{d}`.* TO '{u}'@'%'; CREATE TABLE `{d}`.child (id INT PRIMARY KEY, t INT, FOREIGN KEY (t) REFERENCES `{d}`.t (id)); \
             CREATE VIEW `{d}`.`a view` AS SELECT id FROM `{d}`.t; CREATE PROCEDURE `{d}`.p() SELECT 1; CREATE FUNCTION `{d}`.f() RETURNS INT RETURN 1; \
             CREATE SEQUENCE `{d}`.s;",
            d = db.database,
            u = db.user
        ),
    );
    let args = ["decommission", APP, "--min-age", "0", "--wipe"];
    let plan = boyong(&env, Some(&db), &[&args[..], &["--plan"]].concat());
    assert_eq!(plan.status.code(), Some(0), "{}", said(&plan));
    let p = said(&plan);
    assert!(
        p.contains("database-wipe") && p.contains("wipe `perizinan`"),
        "{p}"
    );
    assert!(!p.contains("DROP USER"), "a wipe keeps the user: {p}");
    let done = boyong(&env, Some(&db), &[&args[..], &["--confirm", APP]].concat());
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    assert!(
        databases(&db).lines().any(|l| l == db.database),
        "the database stays"
    );
    let d = db.database.clone();
    let left = root_sql(
        &db,
        &format!(
            "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{d}') + \
             (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = '{d}')"
        ),
    );
    assert_eq!(left, "0", "the database is empty");
    assert!(accounts(&db).contains("perizinan@%"), "the user stays");
    assert_eq!(root_sql(&db, "SELECT id FROM sibling.keep"), "7");
    let cert = cert_of(&env);
    assert_eq!(cert["removed"].as_array().unwrap().len(), 2, "{cert}");
    assert_eq!(cert["removed"][1]["kind"], "database-wipe");
    assert!(
        cert["removed"][1]["gone_check"]
            .as_str()
            .unwrap()
            .contains("(empty)"),
        "{cert}"
    );
}

#[test]
fn wipe_leaves_an_empty_postgres_database() {
    let Some(env) = Env::builder("decommission-pg-wipe").sshd().build() else {
        return;
    };
    let Some(db) = Postgres::start() else { return };
    db.query_as(
        &db.user,
        "CREATE TYPE mood AS ENUM ('ok'); CREATE TABLE t (id serial primary key, m mood); \
         CREATE TABLE c (id int generated always as identity, t int references t (id)); \
         CREATE VIEW v AS SELECT id FROM t; CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'SELECT a'; \
         CREATE SCHEMA extra; CREATE TABLE extra.\"odd name\" (x int); CREATE DOMAIN posint AS int CHECK (VALUE > 0);",
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
    let done = go(&[
        "decommission",
        APP,
        "--min-age",
        "0",
        "--wipe",
        "--confirm",
        APP,
    ]);
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    let left = db.query(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'extra')) + \
         (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('public', 'extra')) + \
         (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname IN ('public', 'extra'))",
    );
    assert_eq!(left, "0", "the database is empty");
    // The database and its user stay: the user still logs in and may create a table.
    db.query_as(&db.user, "CREATE TABLE again (id int)");
    let cert: Value = serde_json::from_slice(
        &std::fs::read(decommissions(&env).pop().unwrap().join("certificate.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cert["removed"][1]["kind"], "database-wipe", "{cert}");
    assert_eq!(cert["removed"][1]["gone"], true);
}
