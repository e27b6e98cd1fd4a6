//! `boyong report` through the real binary (built with the `sim` feature), on runs of
//! the fake world: the three formats, a run rolled back by itself and one rolled back on
//! request, a tampered journal (BROKEN, exit 1), an unknown app or run (exit 2), and a
//! secret the run used, searched for in every format.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;

use serde_json::Value;
use support::env::Env;
use support::text;

mod support;

const TOKEN: &str = "tok-5e1f0a77c2-must-not-leak";
const START: &str = r#"{"resources": {"target:container:demo-web": "old-release"}, "delivered": [], "generation": 0}"#;
/// A command whose text is markup: the report must show it, never run it.
const HOSTILE: &str = r#"touch /srv/app/.maintenance && echo "<script>alert(1)</script> a&b""#;

impl Env {
    /// The demo playbook, its `maint` command made hostile, in the fake world's start.
    fn new() -> Self {
        let pb = include_str!("../fixtures/engine/demo.yml").replace(
            "run: touch /srv/app/.maintenance",
            &format!("run: '{}'", HOSTILE.replace('\'', "''")),
        );
        assert!(pb.contains("<script>"), "the fixture changed");
        Self::builder("report-cli")
            .file("demo.yml", pb)
            .sim(START)
            .var("BOYONG_OPERATOR", "auditor-test")
            .var("DEMO_SSH_PASSWORD", "pw-3b7e")
            .var("DEMO_TOKEN", TOKEN)
            .build()
            .unwrap()
    }

    fn report(&self, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec!["report", "demo"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }
}

fn id(run: &Path) -> String {
    run.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn a_run_is_reported_in_markdown_json_and_html_without_its_secret() {
    let env = Env::new();
    let out = env.run(&["run", "demo.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.last_run("demo");

    let (code, md, err) = env.report(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        md.contains("**Verdict: run SUCCEEDED; journal intact"),
        "{md}"
    );
    for section in [
        "## Summary",
        "## Steps",
        "## Artifacts",
        "## Databases",
        "## Images and containers",
        "## Changes",
        "## Rollback history",
        "## Journal",
    ] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    for step in ["`code`", "`maint`", "`image`", "`web`"] {
        assert!(md.contains(step), "step {step} missing");
    }
    assert!(md.contains("`auditor-test`"), "the operator is named");
    assert!(md.contains("\\<script\\>"), "markup is escaped in Markdown");

    let (code, json, err) = env.report(&["--format", "json", "--run", &id(&run)]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&json).expect("the JSON report parses");
    assert_eq!(v["format"], 1);
    assert_eq!(v["app"], "demo");
    assert_eq!(v["run"], id(&run));
    assert_eq!(v["verdict"]["run"], "succeeded");
    assert_eq!(v["verdict"]["journal_intact"], true);
    assert_eq!(v["who"]["operator"], "auditor-test");
    assert_eq!(v["route"]["vendor"], "deploy@127.0.0.1:22");
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["code", "maint", "image", "web"]);
    for s in v["steps"].as_array().unwrap() {
        assert_eq!(s["outcome"], "done", "{s}");
        assert_eq!(s["attempts"], 1, "{s}");
        assert!(s["duration_s"].is_u64(), "journal times: {s}");
        assert!(s["elapsed_ms"].is_u64(), "the log's milliseconds: {s}");
    }
    assert!(!v["changes"].as_array().unwrap().is_empty());
    // The chain head is the one `journal verify` prints.
    let verify = env.run(&["journal", "verify", "demo"]);
    let head = v["journal"]["head_sha256"].as_str().unwrap();
    assert!(
        text(&verify.stdout).contains(head),
        "{}",
        text(&verify.stdout)
    );
    assert_eq!(
        v["inputs"]["playbook_sha256"],
        v["inputs"]["playbook_file_sha256"]
    );

    let file = env.path("report.html");
    let (code, stdout, err) = env.report(&["--format", "html", "--out", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.is_empty(), "--out writes the file only");
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("RUN SUCCEEDED"));
    assert!(
        !html.contains("<script"),
        "no script, and the run's markup escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; a&amp;b"));
    assert!(html.contains(head));

    for (name, body) in [("md", &md), ("json", &json), ("html", &html)] {
        assert!(
            !body.contains(TOKEN),
            "the secret leaked into the {name} report"
        );
        assert!(
            !body.contains("pw-3b7e"),
            "the password leaked into the {name} report"
        );
    }
}

#[test]
fn rolled_back_runs_show_their_rollback_history() {
    let env = Env::new();
    // A failure at the last step: the run undoes itself.
    let out = env.run_faulted(&["run", "demo.yml"], "web:1:after-change:fail");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let (code, json, err) = env.report(&["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"]["run"], "rolled-back");
    let web = &v["steps"][3];
    assert_eq!(
        (web["id"].as_str(), web["outcome"].as_str()),
        (Some("web"), Some("failed"))
    );
    assert!(web["error"].as_str().is_some());
    let rb = v["rollback"].as_array().unwrap();
    assert_eq!(rb.first().unwrap()["event"], "started");
    assert_eq!(rb.last().unwrap()["event"], "finished");
    assert!(
        rb.iter().filter(|r| r["event"] == "undone").count() >= 3,
        "{rb:#?}"
    );
    let (_, md, _) = env.report(&[]);
    assert!(md.contains("run ROLLED BACK"), "{md}");
    assert!(
        md.contains("| started |") && md.contains("| undone |"),
        "{md}"
    );

    // A run that succeeded, then rolled back on request: who asked is recorded.
    let out = env.run(&["run", "demo.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (code, md, err) = env.report(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("run ROLLED BACK"), "{md}");
    assert!(md.contains("boyong rollback by auditor-test"), "{md}");
    let (_, html, _) = env.report(&["--format", "html"]);
    assert!(html.contains("RUN ROLLED BACK"));
    assert!(html.contains("<section id=\"rollback\">"));
    // The first run's report is still there, by id.
    let first = id(&env.runs("demo")[0]);
    let (code, json, _) = env.report(&["--format", "json", "--run", &first]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["run"], first);
}

#[test]
fn a_tampered_journal_gives_the_broken_verdict_and_exit_1() {
    let env = Env::new();
    let out = env.run(&["run", "demo.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let journal = env.last_run("demo").join("journal.jsonl");
    let before = std::fs::read_to_string(&journal).unwrap();
    // An auditor's nightmare: the operator's name changed after the fact.
    let after = before.replacen("auditor-test", "someone-else", 1);
    assert_ne!(before, after);
    std::fs::write(&journal, after).unwrap();
    for format in ["md", "json", "html"] {
        let (code, body, err) = env.report(&["--format", format]);
        assert_eq!(code, 1, "{format}: {err}");
        assert!(err.contains("BROKEN"), "{err}");
        assert!(
            body.contains("BROKEN"),
            "{format}: the report is still printed:\n{body}"
        );
        if format == "json" {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["verdict"]["journal_intact"], false);
            assert_eq!(v["journal"]["verify"], "BROKEN");
            assert!(v["journal"]["problem"].as_str().unwrap().contains("line 1"));
        }
        if format == "html" {
            let verdict = body.find("JOURNAL BROKEN").unwrap();
            assert!(
                verdict < body.find("<h2>").unwrap(),
                "the verdict comes first"
            );
        }
    }
}

#[test]
fn an_unknown_app_or_run_is_refused_with_exit_2() {
    let env = Env::new();
    let (code, out, err) = env.report(&[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("unknown app `demo`"), "{err}");
    let out = env.run(&["run", "demo.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (code, _, err) = env.report(&["--run", "20200101T000000Z-0000"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("20200101T000000Z-0000") && err.contains("no journal"),
        "{err}"
    );
    let (code, _, err) = env.report(&["--run", "../../etc"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a run id"), "{err}");
    let out = env.run(&["report", "Not_An_App"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_failed_run_left_in_place_then_resumed_shows_both() {
    let env = Env::new();
    let out = env.run_faulted(
        &["run", "demo.yml", "--no-auto-rollback"],
        "image:0:after-change:fail",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let (code, html, err) = env.report(&["--format", "html"]);
    assert_eq!(
        code, 0,
        "a failed run with an intact journal reports fine: {err}"
    );
    assert!(html.contains("class=\"verdict bad\""), "a failure is red");
    assert!(html.contains("RUN FAILED"));
    let (_, md, _) = env.report(&[]);
    assert!(md.contains("| `image` | build | **failed** |"), "{md}");
    assert!(md.contains("| `web` | deploy | not run |"), "{md}");

    let out = env.run(&["run", "demo.yml", "--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (_, json, _) = env.report(&["--format", "json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"]["run"], "succeeded");
    let later = v["who"]["later"].as_array().unwrap();
    assert!(
        later
            .iter()
            .any(|l| l.as_str().unwrap().contains("resumed by auditor-test")),
        "{later:?}"
    );
    let image = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "image")
        .unwrap();
    assert_eq!(image["outcome"], "done");
    assert_eq!(image["attempts"], 2, "{image}");
}
