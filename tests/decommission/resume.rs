//! A decommission cut half-way is finished by running it again.

use serde_json::Value;

use super::common::*;
use crate::support::db::Mariadb;
use crate::support::env::Env;

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
    assert_eq!(cert["removed"].as_array().unwrap().len(), 3, "{cert}");
    let read = boyong::engine::journal::read(&dir.join("journal.jsonl")).unwrap();
    assert_eq!(
        cert["journal_head"],
        read.head_sha256.as_str(),
        "one journal, its chain intact"
    );
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
