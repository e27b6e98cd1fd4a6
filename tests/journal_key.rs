//! The journal's keyed chain (issue 21, item 6) through the real binary on the fake
//! world: a forged undo command whose plain SHA-256 chain was recomputed is refused by
//! `journal verify` and by `rollback`, naming the line; a journal written without a key
//! (as earlier releases wrote them) still reads; and the rollback list shows the undo as
//! it will execute, not the plan's description of it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use boyong::engine::journal::{HeaderFields, Journal, Record};
use boyong::engine::state::StateDir;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use support::env::Env;
use support::text;

mod support;

const PLAYBOOK: &str = include_str!("../fixtures/engine/demo.yml");
const START: &str = r#"{"resources": {"target:container:demo-web": "old-release"}, "delivered": [], "generation": 0}"#;

fn env() -> Env {
    Env::builder("journal-key")
        .file("demo.yml", PLAYBOOK)
        .sim(START)
        .var("DEMO_SSH_PASSWORD", "pw-3b7e")
        .var("DEMO_TOKEN", "tok-5d1f")
        .build()
        .unwrap()
}

fn journal_of(env: &Env) -> PathBuf {
    env.last_run("demo").join("journal.jsonl")
}

/// Rewrites the journal as someone with write access to the state directory alone
/// would: `edit` each line, then recompute every `prev` with plain SHA-256.
fn forge(path: &std::path::Path, edit: impl Fn(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut prev: Option<String> = None;
    for line in text.lines() {
        let line = edit(line.to_string());
        let fixed = match &prev {
            Some(p) => {
                let at = line.find("\"prev\":\"").unwrap() + 8;
                let end = at + line[at..].find('"').unwrap();
                format!("{}{p}{}", &line[..at], &line[end..])
            }
            None => line,
        };
        prev = Some(boyong::digest::hex(&Sha256::digest(fixed.as_bytes())));
        out.push_str(&fixed);
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_forged_undo_command_with_a_recomputed_chain_is_refused_naming_the_line() {
    let env = env();
    let out = env.run(&["run", "demo.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let path = journal_of(&env);
    let forged_line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l.contains("\"key\":\"target:network:demo-net\""))
        .unwrap()
        + 1;
    forge(&path, |l| {
        l.replace(
            "\"key\":\"target:network:demo-net\"",
            "\"key\":\"target:network:evil-net\"",
        )
    });
    assert!(std::fs::read_to_string(&path).unwrap().contains("evil-net"));

    let v = env.run(&["journal", "verify", "demo"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v.stdout));
    let said = text(&v.stderr) + &text(&v.stdout);
    assert!(said.contains(&format!("line {forged_line}")), "{said}");
    assert!(!said.contains("intact"), "{said}");

    let before = std::fs::read(env.path("world.json")).unwrap();
    let rb = env.run(&["rollback", "demo", "--yes"]);
    assert_ne!(rb.status.code(), Some(0), "{}", text(&rb.stdout));
    let said = text(&rb.stderr) + &text(&rb.stdout);
    assert!(said.contains(&format!("line {forged_line}")), "{said}");
    assert!(
        !said.contains("evil-net") || said.contains("BROKEN") || said.contains("does not verify"),
        "{said}"
    );
    assert_eq!(std::fs::read(env.path("world.json")).unwrap(), before);
}

/// A journal as an earlier release (no key) wrote it: intent `c1` whose plan text says
/// one command and whose undo data holds another.
fn unkeyed_run(state: &std::path::Path) {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let run = StateDir::new(state).create_run("demo", t0, 0x3f9c).unwrap();
    std::fs::write(run.playbook_path(), PLAYBOOK).unwrap();
    let fields = HeaderFields {
        run: run.id().to_string(),
        app: "demo".into(),
        playbook_sha256: "a".repeat(64),
        plan_sha256: "b".repeat(64),
        operator: "andi".into(),
        host: "srv1".into(),
        started: t0,
    };
    let mut j = Journal::create(&run.journal_path(), &fields).unwrap();
    j.append(&Record::StepStarted {
        step: "maint".into(),
    })
    .unwrap();
    j.append(&Record::Intent {
        step: "maint".into(),
        change_id: "maint:0".into(),
        change: json!({"op": "run", "resource": "command", "name": "touch /srv/app/.maintenance",
                       "place": "vendor", "undo": "run `php artisan up` on the vendor host"}),
        undo: json!({"action": "vendor-command", "run": "rm -f /srv/app/.maintenance"}),
    })
    .unwrap();
    j.append(&Record::Done {
        step: "maint".into(),
        change_id: "maint:0".into(),
        facts: json!({}),
    })
    .unwrap();
}

#[test]
fn a_journal_written_without_a_key_still_reads_and_rollback_shows_what_will_run() {
    let env = env();
    unkeyed_run(&env.state());
    let v = env.run(&["journal", "verify", "demo"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    let out = text(&v.stdout);
    assert!(out.contains("intact") && out.contains("unkeyed"), "{out}");

    let plan = env.run(&["rollback", "demo", "--plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let shown = text(&plan.stdout);
    assert!(shown.contains("rm -f /srv/app/.maintenance"), "{shown}");
    assert!(!shown.contains("php artisan up"), "{shown}");
    assert!(shown.contains("unkeyed"), "{shown}");
}

#[test]
fn a_run_writes_a_keyed_journal_that_verifies() {
    let env = env();
    let out = env.run(&["run", "demo.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = env.run(&["journal", "verify", "demo"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    let said = text(&v.stdout);
    assert!(
        said.contains("intact") && said.contains(", keyed"),
        "{said}"
    );
    let journal = std::fs::read_to_string(journal_of(&env)).unwrap();
    assert!(
        journal.lines().all(|l| l.contains("\"mac\":\"")),
        "{journal}"
    );
}
