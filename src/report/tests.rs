use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{Report, html, md, time};
use crate::engine::journal::{HeaderFields, Journal, Record};

const T0: u64 = 1_795_348_981; // 2026-11-22T12:03:01Z

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0 + s)
}

fn hex(b: &[u8]) -> String {
    crate::digest::hex(&Sha256::digest(b))
}

/// A run that pulled one file, ran a command whose text is hostile markup, failed, and
/// was rolled back.
fn rolled_back_run(dir: &Path) {
    std::fs::create_dir_all(dir.join("artifacts/code")).unwrap();
    std::fs::write(dir.join("artifacts/code/index.html"), b"hello\n").unwrap();
    std::fs::set_permissions(
        dir.join("artifacts/code/index.html"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let manifest = format!("{}  index.html\n", hex(b"hello\n"));
    let tree = "file 644 6 index.html\n";
    std::fs::write(dir.join("artifacts/code.manifest"), &manifest).unwrap();
    std::fs::write(dir.join("artifacts/code.tree"), tree).unwrap();
    let stat = "clock 1764000000\n1764000000  index.html\n";
    std::fs::write(dir.join("artifacts/code.stat"), stat).unwrap();
    let plan = json!({
        "format": 1, "app": "demo", "playbook": "/srv/pb/demo.yml",
        "vendor": {"address": "deploy@10.0.0.5:22", "known_hosts": "keys/known_hosts"},
        "target": "unix:///var/run/docker.sock",
        "steps": [
            {"number": 1, "id": "code", "kind": "fetch", "changes": [
                {"op": "create", "resource": "artifact", "place": "local", "name": "artifacts/code/"}]},
            {"number": 2, "id": "maint", "kind": "exec", "changes": [
                {"op": "run", "resource": "command", "place": "vendor",
                 "name": "on vendor: echo '<script>alert(1)</script>' && a&b"}]},
        ]
    });
    let plan_text = serde_json::to_string_pretty(&plan).unwrap();
    std::fs::write(dir.join("plan.json"), &plan_text).unwrap();
    std::fs::write(dir.join("playbook.yml"), b"version: 1\n").unwrap();
    let mut j = Journal::create(
        &dir.join("journal.jsonl"),
        &HeaderFields {
            run: "20261122T120301Z-3f9c".into(),
            app: "demo".into(),
            playbook_sha256: hex(b"version: 1\n"),
            plan_sha256: hex(plan_text.as_bytes()),
            operator: "siti".into(),
            host: "ops-1".into(),
            started: at(0),
        },
    )
    .unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let records = [
        Record::Note {
            kind: "host-key".into(),
            text: "10.0.0.5:22 ssh-ed25519 SHA256:abc".into(),
        },
        Record::StepStarted {
            step: "code".into(),
        },
        Record::Intent {
            step: "code".into(),
            change_id: "c3".into(),
            change: steps[0]["changes"][0].clone(),
            undo: json!({"action": "remove-artifact"}),
        },
        Record::Done {
            step: "code".into(),
            change_id: "c3".into(),
            facts: json!({}),
        },
        Record::StepDone {
            step: "code".into(),
            facts: json!({"manifest_sha256": hex(manifest.as_bytes()), "tree_sha256": hex(tree.as_bytes()), "stat_sha256": hex(stat.as_bytes()), "files": 1, "bytes": 6}),
        },
        Record::StepStarted {
            step: "maint".into(),
        },
        Record::Intent {
            step: "maint".into(),
            change_id: "c7".into(),
            change: steps[1]["changes"][0].clone(),
            undo: json!({"action": "none"}),
        },
        Record::StepFailed {
            step: "maint".into(),
            error: "exit 1: <b>&".into(),
        },
        Record::Note {
            kind: "rollback".into(),
            text: "step failed: undoing 2 change(s)".into(),
        },
        Record::UndoIntent {
            change_id: "c7".into(),
            step: "maint".into(),
        },
        Record::Undone {
            change_id: "c7".into(),
            step: "maint".into(),
        },
        Record::UndoIntent {
            change_id: "c3".into(),
            step: "code".into(),
        },
        Record::Undone {
            change_id: "c3".into(),
            step: "code".into(),
        },
        Record::RunFinished {
            result: "rolled-back".into(),
        },
    ];
    for (i, r) in records.iter().enumerate() {
        j.append_at(r, at(2 * i as u64 + 1)).unwrap();
    }
}

#[test]
fn a_rolled_back_run_reads_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    rolled_back_run(tmp.path());
    let r = Report::from_run_dir(tmp.path()).unwrap();
    assert_eq!(r.verdict.run, "rolled-back");
    assert!(r.verdict.journal_intact);
    assert_eq!(r.who.operator, "siti");
    assert_eq!(r.who.duration_s, Some(27));
    assert_eq!(r.route.host_keys, ["10.0.0.5:22 ssh-ed25519 SHA256:abc"]);
    assert_eq!(
        r.inputs.playbook_file_sha256.as_ref(),
        Some(&r.inputs.playbook_sha256)
    );
    assert_eq!(
        r.inputs.plan_file_sha256.as_ref(),
        Some(&r.inputs.plan_sha256)
    );
    let outcome: Vec<(&str, &str)> = r
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.outcome.as_str()))
        .collect();
    assert_eq!(outcome, [("code", "undone"), ("maint", "failed")]);
    assert_eq!(r.steps[0].duration_s, Some(6));
    let tree = &r.artifacts[0];
    assert_eq!(
        (tree.path.as_str(), tree.kind.as_str()),
        ("artifacts/code/", "tree")
    );
    assert_eq!(
        (tree.bytes, tree.files, tree.matches),
        (6, Some(1), Some(true))
    );
    assert!(
        r.artifacts
            .iter()
            .any(|a| a.path == "artifacts/code.stat" && a.kind == "stat-file"),
        "{:?}",
        r.artifacts
    );
    assert!(
        r.artifacts.iter().all(|a| a.matches == Some(true)),
        "{:?}",
        r.artifacts
    );
    assert_eq!(r.trees[0].files[0].sha256, hex(b"hello\n"));
    assert!(r.trees[0].verified_now, "{:?}", r.trees[0].problem);
    let events: Vec<&str> = r.rollback.iter().map(|x| x.event.as_str()).collect();
    assert_eq!(events, ["started", "undone", "undone", "finished"]);
    assert_eq!(r.changes.len(), 2);
    assert!(r.changes.iter().all(|c| c.state == "undone"));

    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["verdict"]["run"], "rolled-back");
    assert_eq!(v["journal"]["verify"], "intact");
    assert_eq!(v["journal"]["head_sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn hostile_text_is_escaped_in_html_and_markdown() {
    let tmp = tempfile::tempdir().unwrap();
    rolled_back_run(tmp.path());
    let r = Report::from_run_dir(tmp.path()).unwrap();
    let page = html::render(&r);
    assert!(
        !page.contains("<script"),
        "raw markup from the run reached the page"
    );
    assert!(!page.contains("<b>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&amp;&amp; a&amp;b"));
    assert!(page.contains("exit 1: &lt;b&gt;&amp;"));
    assert!(
        !page.contains("src=") && !page.contains("href="),
        "no external resource"
    );
    let text = md::render(&r);
    assert!(
        text.match_indices('<')
            .all(|(i, _)| text[..i].ends_with('\\')),
        "every `<` in the Markdown is escaped"
    );
    assert!(text.contains("\\<script\\>alert(1)\\</script\\>"));
    for s in [
        "## Summary",
        "## Steps",
        "## Artifacts",
        "## Rollback history",
        "## Journal",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
}

#[test]
fn a_file_changed_after_the_pull_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    rolled_back_run(tmp.path());
    std::fs::write(tmp.path().join("artifacts/code/index.html"), b"HELLO\n").unwrap();
    let r = Report::from_run_dir(tmp.path()).unwrap();
    let tree = &r.artifacts[0];
    assert_eq!(tree.matches, Some(false), "{tree:?}");
    assert!(!r.trees[0].verified_now);
    let p = r.trees[0].problem.as_deref().unwrap();
    assert!(p.contains("index.html"), "{p}");
    assert!(html::render(&r).contains("CHANGED SINCE THE PULL"));
}

#[test]
fn a_tampered_journal_is_reported_broken_first() {
    let tmp = tempfile::tempdir().unwrap();
    rolled_back_run(tmp.path());
    let path = tmp.path().join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("exit 1: <b>&", "exit 0: fine")).unwrap();
    let r = Report::from_run_dir(tmp.path()).unwrap();
    assert!(!r.verdict.journal_intact);
    assert!(
        r.verdict.summary.contains("BROKEN"),
        "{}",
        r.verdict.summary
    );
    assert!(r.journal.problem.as_deref().unwrap().contains("edited"));
    let page = html::render(&r);
    let verdict = page.find("JOURNAL BROKEN").unwrap();
    assert!(
        verdict < page.find("<h2>").unwrap(),
        "the verdict comes first"
    );
    assert!(md::render(&r).contains("JOURNAL BROKEN"));
}

#[test]
fn a_run_dir_without_a_journal_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Report::from_run_dir(tmp.path()),
        Err(super::ReportError::NoJournal(_))
    ));
}

#[test]
fn timestamps_and_durations() {
    assert_eq!(time::epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(time::epoch_seconds("2026-11-22T12:03:01Z"), Some(T0));
    assert_eq!(
        time::epoch_seconds("2024-02-29T23:59:59Z"),
        Some(1_709_251_199)
    );
    assert_eq!(time::epoch_seconds("2026-11-22 12:03:01"), None);
    assert_eq!(
        time::seconds_between("2026-11-22T12:03:01Z", "2026-11-22T13:05:04Z"),
        Some(3723)
    );
    assert_eq!(time::human(3723), "1 h 02 min 03 s");
    assert_eq!(time::human(65), "1 min 05 s");
    assert_eq!(time::human(0), "0 s");
}

#[test]
fn a_planned_change_shows_the_digest_and_run_the_journal_knows() {
    let facts = serde_json::json!({"source_sha256": "ab".repeat(32)});
    let planned = "LABEL boyong.app=a boyong.run=<run-id> boyong.step=image boyong.source.sha256=<digest known after fetch>";
    assert_eq!(
        super::build::known(planned, "20261123T104251Z-5f1b", Some(&facts)),
        format!(
            "LABEL boyong.app=a boyong.run=20261123T104251Z-5f1b boyong.step=image boyong.source.sha256={}",
            "ab".repeat(32)
        )
    );
    // Not known (the build did not finish): the placeholder stays, saying so.
    assert!(super::build::known(planned, "r", None).contains("<digest known after fetch>"));
}
