//! A snapshot of what an auditor reads: `boyong report` (Markdown) of a deterministic run
//! directory, written here through the library's own journal writer at fixed times, with
//! every kind of evidence a real run records (tree, dump, image, database, container).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boyong::engine::journal::{HeaderFields, Journal, Record};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const RUN: &str = "20261122T120301Z-3f9c";

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_348_981 + s)
}

fn hex(b: &[u8]) -> String {
    boyong::digest::hex(&Sha256::digest(b))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    std::fs::write(dir.join(name), bytes).unwrap();
    hex(bytes)
}

/// The run's plan: a real plan (the typed contract a report reads) of fetch → dump →
/// build → restore → deploy, each step showing the one change the report lists.
fn plan_of_the_run() -> (boyong::plan::Plan, Vec<(String, Value)>) {
    let yaml = "version: 1
app: perizinan
vendor: { host: 10.20.0.5, user: deploy, identity: keys/vendor_ed25519, known_hosts: keys/known_hosts }
vars: { pw: { env: PERIZINAN_DB_PASSWORD } }
steps:
  - id: code
    fetch: { path: /srv/www/perizinan }
  - id: db
    dump: { engine: mariadb, database: perizinan, user: perizinan }
  - id: image
    build: { base: gov/php:8.2, copy: { code: /var/www/html }, tag: \"perizinan:2026.11.1\" }
  - id: database
    restore: { from: db, image: gov/mariadb:10.11, name: perizinan-db, volume: perizinan-data, password: \"{{ vars.pw }}\" }
  - id: app
    deploy: { image: image, name: perizinan, health: { tcp: \"127.0.0.1:8080\" } }
";
    let dir = Path::new("/srv/boyong/playbooks");
    let loaded = boyong::playbook::parse(&dir.join("perizinan.yml"), yaml.as_bytes());
    let pb = loaded.playbook.expect("the fixture playbook validates");
    let mut plan = boyong::steps::plan(&pb);
    let listed = [
        json!({"op": "create", "resource": "artifact", "place": "local", "name": "artifacts/code/", "undo": "delete the artifact"}),
        json!({"op": "create", "resource": "artifact", "place": "local", "name": "artifacts/db.sql.gz", "undo": "delete the artifact"}),
        json!({"op": "create", "resource": "image", "place": "target", "name": "perizinan:2026.11.1", "undo": "remove the image"}),
        json!({"op": "create", "resource": "container", "place": "target", "name": "perizinan-db", "undo": "remove it"}),
        json!({"op": "create", "resource": "container", "place": "target", "name": "perizinan", "undo": "remove it; the previous one serves again"}),
    ];
    let mut journaled = Vec::new();
    for (step, change) in plan.steps.iter_mut().zip(listed) {
        step.changes = vec![serde_json::from_value(change.clone()).unwrap()];
        journaled.push((step.id.clone(), change));
    }
    (plan, journaled)
}

/// fetch → dump → build → restore → deploy, all done, with their facts as real steps
/// record them.
fn deterministic_run(state: &Path) {
    let run = state.join("apps/perizinan/runs").join(RUN);
    let art = run.join("artifacts");
    std::fs::create_dir_all(art.join("code/public")).unwrap();
    let index = b"<?php echo 'Izin usaha';\n";
    let style = b"body { color: #123; }\n";
    std::fs::write(art.join("code/public/index.php"), index).unwrap();
    std::fs::write(art.join("code/public/style.css"), style).unwrap();
    // The modes the tree file records, whatever the umask.
    let mode = |p: &str, m: u32| {
        std::fs::set_permissions(art.join(p), std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode("code/public", 0o755);
    mode("code/public/index.php", 0o644);
    mode("code/public/style.css", 0o644);
    let manifest = format!(
        "{}  public/index.php\n{}  public/style.css\n",
        hex(index),
        hex(style)
    );
    let tree = format!(
        "dir 755 public\nfile 644 {} public/index.php\nfile 644 {} public/style.css\n",
        index.len(),
        style.len()
    );
    let manifest_sha = write(&art, "code.manifest", manifest.as_bytes());
    let tree_sha = write(&art, "code.tree", tree.as_bytes());
    let sql = b"CREATE TABLE izin (id INT);\nINSERT INTO izin VALUES (1),(2),(3);\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(sql).unwrap();
    let gz = gz.finish().unwrap();
    let gz_sha = write(&art, "db.sql.gz", &gz);
    let evidence = serde_json::to_vec_pretty(&json!({
        "server": "10.11.6-MariaDB-0+deb12u1",
        "tables": [
            {"table": "izin", "rows": 3, "checksum": "2207474421", "engine": "InnoDB"},
            {"table": "pemohon", "rows": 2, "checksum": "913371", "engine": "InnoDB"}
        ]
    }))
    .unwrap();
    let ev_sha = write(&art, "db.evidence.json", &evidence);
    let db_manifest = format!("{gz_sha}  db.sql.gz\n{ev_sha}  db.evidence.json\n");
    let db_manifest_sha = write(&art, "db.manifest", db_manifest.as_bytes());

    let (plan, steps) = plan_of_the_run();
    let plan_text = serde_json::to_string_pretty(&plan).unwrap() + "\n";
    let playbook = b"version: 1\napp: perizinan\n";
    std::fs::write(run.join("plan.json"), &plan_text).unwrap();
    std::fs::write(run.join("playbook.yml"), playbook).unwrap();
    let mut j = Journal::create(
        &run.join("journal.jsonl"),
        &HeaderFields {
            run: RUN.into(),
            app: "perizinan".into(),
            playbook_sha256: hex(playbook),
            plan_sha256: hex(plan_text.as_bytes()),
            operator: "siti.rahma".into(),
            host: "ops-diskominfo-1".into(),
            started: at(0),
        },
    )
    .unwrap();
    let image_id = format!("sha256:{}", hex(b"image"));
    let facts: [Value; 5] = [
        json!({"manifest_sha256": manifest_sha, "tree_sha256": tree_sha, "files": 2, "entries": 3, "bytes": 47, "links_outside": 0}),
        json!({"manifest_sha256": db_manifest_sha, "sql_gz_sha256": gz_sha, "sql_sha256": hex(sql), "sql_bytes": sql.len(), "gz_bytes": gz.len(), "server": "10.11.6-MariaDB-0+deb12u1", "tables": 2, "rows": 5, "not_transactional": []}),
        json!({"image": "perizinan:2026.11.1", "image_id": image_id, "context_sha256": hex(b"context"), "source_sha256": manifest_sha,
               "labels": {"boyong.app": "perizinan", "boyong.run": RUN, "boyong.step": "image", "boyong.source.sha256": manifest_sha}}),
        json!({"container": "perizinan-db", "container_id": hex(b"db-container"), "image": "gov/mariadb:10.11", "volume": "perizinan-data",
               "sql_bytes": sql.len(), "server": "10.11.6-MariaDB-0+deb12u1", "tables": 2, "rows": 5, "checksums_compared": true,
               "evidence": [{"table": "izin", "rows": 3, "checksum": "2207474421"}, {"table": "pemohon", "rows": 2, "checksum": "913371"}]}),
        json!({"container": "perizinan", "container_id": hex(b"app-container"), "image": "perizinan:2026.11.1", "image_id": image_id, "previous": null,
               "health": "healthy: GET http://127.0.0.1:8080/healthz answered 200 after 1.2 s (3 check(s))",
               "settings": {"HostConfig.ReadonlyRootfs": true, "HostConfig.SecurityOpt": ["no-new-privileges:true"], "HostConfig.CapDrop": ["ALL"],
                            "HostConfig.Memory": 536_870_912, "HostConfig.PidsLimit": 256, "HostConfig.RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                            "Config.User": "33"}}),
    ];
    let mut t = 0;
    let mut append = |j: &mut Journal, r: Record, dt: u64| {
        t += dt;
        j.append_at(&r, at(t)).unwrap();
    };
    append(
        &mut j,
        Record::Note {
            kind: "host-key".into(),
            text: "10.20.0.5:22 ssh-ed25519 SHA256:Wm0pTqBDSn3Jq5m5cM3Jm3XJ0x1o3l9vQbYk2nYQe0E"
                .into(),
        },
        1,
    );
    for (i, ((id, change), facts)) in steps.into_iter().zip(facts).enumerate() {
        append(&mut j, Record::StepStarted { step: id.clone() }, 1);
        let change_id = format!("c{}", j.next_seq());
        append(
            &mut j,
            Record::Intent {
                step: id.clone(),
                change_id: change_id.clone(),
                change,
                undo: json!({"action": "none"}),
            },
            0,
        );
        append(
            &mut j,
            Record::Done {
                step: id.clone(),
                change_id,
                facts: json!({}),
            },
            3 + 4 * i as u64,
        );
        append(&mut j, Record::StepDone { step: id, facts }, 0);
    }
    append(
        &mut j,
        Record::RunFinished {
            result: "succeeded".into(),
        },
        1,
    );
}

#[test]
fn report_of_a_deterministic_run() {
    let tmp = tempfile::tempdir().unwrap();
    deterministic_run(tmp.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_boyong"))
        .args(["report", "perizinan"])
        .env("BOYONG_STATE", tmp.path())
        .env_remove("BOYONG_SIM")
        .output()
        .unwrap();
    let md = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !md.contains(&tmp.path().display().to_string()),
        "no machine-local path"
    );
    insta::assert_snapshot!("report_md_perizinan", md);
}
