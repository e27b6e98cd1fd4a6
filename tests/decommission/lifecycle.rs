//! A migrated app archived, planned, refused, decommissioned and certified.

use serde_json::Value;

use super::common::*;
use crate::support::db::Mariadb;
use crate::support::env::Env;
use crate::support::text;

#[test]
fn a_migrated_app_is_decommissioned_with_a_certificate_and_its_sibling_survives() {
    let Some(env) = Env::builder("decommission").sshd().build() else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    prepare_db(&db);
    let (tree, sibling) = vendor_files(&env);
    let pb = playbook(&env, &tree, Some(&db));
    let run = boyong(&env, Some(&db), &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));

    // No archive: refused, by name, nothing changed.
    let no_archive = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(no_archive.status.code(), Some(1), "{}", said(&no_archive));
    assert!(
        said(&no_archive).contains("boyong archive dectest"),
        "{}",
        said(&no_archive)
    );
    assert_untouched(&tree, Some(&db));

    let archived = boyong(&env, None, &["archive", APP]);
    assert_eq!(archived.status.code(), Some(0), "{}", said(&archived));
    let run_id = env
        .last_run(APP)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let tar = env
        .state()
        .join(format!("apps/{APP}/archives/{run_id}.tar"));
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    let names = text(&list.stdout);
    for want in [
        "artifacts/code/index.php",
        "artifacts/db.sql.gz",
        "journal.jsonl",
        "report.md",
        "SHA256SUMS",
    ] {
        assert!(names.contains(want), "{want} is in the archive: {names}");
    }
    // Its SHA-256 list checks out with the ordinary tool.
    let x = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(x.path())
            .status()
            .unwrap()
            .success()
    );
    let check = std::process::Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(x.path().join(&run_id))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", said(&check));
    // Archived twice: refused, the first kept.
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(1));

    // Too soon (the default minimum is 7 days).
    let soon = boyong(&env, Some(&db), &["decommission", APP, "--confirm", APP]);
    assert_eq!(soon.status.code(), Some(1), "{}", said(&soon));
    assert!(
        said(&soon).contains("minimum time since the cut-over"),
        "{}",
        said(&soon)
    );
    assert_untouched(&tree, Some(&db));

    // The plan: the tree (its file count), the database, what runs; nothing else.
    let plan = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--plan", "--min-age", "0"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", said(&plan));
    let p = said(&plan);
    assert!(
        p.contains(&format!("tree {}", tree.display())) && p.contains("3 files"),
        "{p}"
    );
    assert!(p.contains("DROP DATABASE IF EXISTS `perizinan`"), "{p}");
    assert!(
        p.contains("none    last assessment passed: none recorded"),
        "{p}"
    );
    assert!(
        !p.contains("sibling"),
        "nothing outside the playbook is listed: {p}"
    );
    assert_untouched(&tree, Some(&db));

    // No confirmation (stdin is not a terminal), or the wrong name: refused, exit 2.
    let unconfirmed = boyong(&env, Some(&db), &["decommission", APP, "--min-age", "0"]);
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", said(&unconfirmed));
    let wrong = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", "other"],
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", said(&wrong));
    assert_untouched(&tree, Some(&db));

    // A file changed on the vendor since the pull blocks it; a new excluded file does not.
    std::fs::write(tree.join("app/config.php"), "<?php return ['changed'];\n").unwrap();
    std::fs::write(tree.join("cache/session-2"), "new but excluded").unwrap();
    let changed = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(changed.status.code(), Some(1), "{}", said(&changed));
    let c = said(&changed);
    assert!(
        c.contains("CHANGED since the pull: changed: app/config.php"),
        "{c}"
    );
    assert!(
        !c.contains("session-2"),
        "an excluded file is not a change: {c}"
    );
    assert_untouched(&tree, Some(&db));
    assert!(decommissions(&env).is_empty(), "a refusal journals nothing");
    std::fs::write(tree.join("app/config.php"), "<?php return [];\n").unwrap();

    let done = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    assert!(!tree.exists(), "the app's tree is gone from the vendor");
    let dbs = databases(&db);
    assert!(
        !dbs.lines().any(|l| l == db.database),
        "the database is gone: {dbs}"
    );
    // The sibling's files and database survive.
    assert_eq!(
        std::fs::read_to_string(sibling.join("index.php")).unwrap(),
        "<?php echo 'sibling';\n"
    );
    assert_eq!(root_sql(&db, "SELECT id FROM sibling.keep"), "7");
    assert!(
        tree.parent().unwrap().is_dir(),
        "the parent of the fetched path stays"
    );

    // The certificate.
    let dir = decommissions(&env).pop().unwrap();
    let cert: Value =
        serde_json::from_slice(&std::fs::read(dir.join("certificate.json")).unwrap()).unwrap();
    assert_eq!(cert["app"], APP);
    assert_eq!(cert["operator"], "petugas-uji");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("certificate.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the state directory's files are 0600");
    }
    assert_eq!(cert["migration_run"], run_id.as_str());
    assert!(
        cert["vendor_host_key"]
            .as_str()
            .is_some_and(|k| k.contains(" ssh-ed25519 SHA256:")),
        "{cert}"
    );
    let removed = cert["removed"].as_array().unwrap();
    // The tree, the database, and its user: kept (without CREATE USER it cannot drop
    // itself), saying why.
    assert_eq!(removed.len(), 3, "{cert}");
    assert_eq!(removed[2]["kind"], "user");
    assert_eq!(removed[2]["gone"], false);
    assert!(
        removed[2]["kept"]
            .as_str()
            .is_some_and(|k| k.contains("CREATE USER")),
        "{cert}"
    );
    let manifest = env.last_run(APP).join("artifacts/code.manifest");
    let (tree_item, db_item) = (&removed[0], &removed[1]);
    assert_eq!(tree_item["target"], tree.display().to_string());
    assert_eq!(tree_item["files"], 3);
    assert_eq!(tree_item["last_sha256"], sha256(&manifest));
    assert_eq!(tree_item["gone"], true);
    assert_eq!(db_item["kind"], "database");
    assert_eq!(db_item["gone"], true);
    assert!(
        db_item["gone_check"]
            .as_str()
            .unwrap()
            .contains("no (gone)")
    );
    assert_eq!(cert["archive"]["path"], tar.display().to_string());
    assert_eq!(cert["archive"]["sha256"], sha256(&tar));
    let journal = std::fs::read(dir.join("journal.jsonl")).unwrap();
    let last_line = journal
        .split(|&b| b == b'\n')
        .rfind(|l| !l.is_empty())
        .unwrap();
    assert_eq!(
        cert["journal_head"],
        crate::support::db::hex(&sha2_digest(last_line))
    );
    assert!(
        String::from_utf8_lossy(&journal).contains("\"action\":\"none\""),
        "undo is none"
    );
    let md = std::fs::read_to_string(dir.join("certificate.md")).unwrap();
    assert!(
        md.contains("# Decommission certificate: dectest") && md.contains(&sha256(&tar)),
        "{md}"
    );
    let html = std::fs::read_to_string(dir.join("certificate.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains(&sha256(&manifest)));
    // The journal verifies like any run's; the password is nowhere in the state.
    let grep = std::process::Command::new("grep")
        .args(["-rlF", "--", &db.password])
        .arg(env.state())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "the password is in {}",
        text(&grep.stdout)
    );

    // status and report know it; a second decommission has nothing to do.
    let status = boyong(&env, None, &["status", APP, "--json"]);
    assert!(
        text(&status.stdout).contains("\"decommissioned\""),
        "{}",
        said(&status)
    );
    let report = boyong(&env, None, &["report", APP]);
    assert!(
        text(&report.stdout).contains("certificate.md"),
        "{}",
        said(&report)
    );
    let again = boyong(
        &env,
        Some(&db),
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(again.status.code(), Some(0));
    assert!(
        said(&again).contains("decommissioned already"),
        "{}",
        said(&again)
    );
}
