//! Snapshots of what people read: plans (human and JSON) of every example playbook,
//! error messages of bad playbooks, `--help`, and the JSON Schema (drift check).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::path::Path;
use std::process::Command;

fn boyong(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_boyong"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PERIZINAN_DB_PASSWORD", "plan-secret-perizinan")
        .env("SIPKD_DB_PASSWORD", "plan-secret-sipkd")
        .env("IZIN_DB_PASSWORD", "plan-secret-izin")
        .env("WP_DB_PASSWORD", "plan-secret-wp")
        .env("WP_VENDOR_DB_PASSWORD", "plan-secret-wp-vendor")
        .env("PFA_DB_PASSWORD", "plan-secret-pfa")
        .env("PFA_VENDOR_DB_PASSWORD", "plan-secret-pfa-vendor")
        .env_remove("DB_PASSWORD")
        .output()
        .expect("run boyong");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn examples() -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks"))
            .expect("playbooks/")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| Path::new(n).extension().is_some_and(|e| e == "yml"))
            .collect();
    v.sort();
    assert!(v.len() >= 3, "expected at least three example playbooks");
    v
}

#[test]
fn offline_plans_of_examples() {
    for name in examples() {
        let file = format!("playbooks/{name}");
        let (code, out, err) = boyong(&["plan", "--offline", &file]);
        assert_eq!(code, 0, "{file}: {err}");
        assert!(
            !out.contains("plan-secret"),
            "a secret leaked into the plan of {file}"
        );
        insta::assert_snapshot!(format!("plan_{name}"), out);
        let (code, json, _) = boyong(&["plan", "--offline", "--json", &file]);
        assert_eq!(code, 0);
        assert!(
            !json.contains("plan-secret"),
            "a secret leaked into the JSON plan of {file}"
        );
        let v: serde_json::Value = serde_json::from_str(&json).expect("plan JSON parses");
        assert_eq!(v["format"], 1);
        insta::assert_snapshot!(format!("plan_json_{name}"), json);
    }
}

#[test]
fn error_messages() {
    for name in ["newcomer.yml", "structure.yml", "secrets.yml"] {
        let file = format!("tests/snapshot_inputs/{name}");
        let (code, out, err) = boyong(&["validate", &file]);
        assert_eq!(code, 2, "{file} must be refused");
        assert!(
            out.is_empty(),
            "nothing on stdout for a refused playbook: {out}"
        );
        assert!(!err.contains("panicked"));
        assert!(!err.contains("s3cret"), "an inline secret was echoed back");
        insta::assert_snapshot!(format!("errors_{name}"), err);
    }
}

#[test]
fn help_texts() {
    let (code, out, _) = boyong(&["--help"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("help", out);
    let (code, out, _) = boyong(&["plan", "--help"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("help_plan", out);
    for cmd in ["run", "rollback", "status", "report", "discover"] {
        let (code, out, _) = boyong(&[cmd, "--help"]);
        assert_eq!(code, 0);
        insta::assert_snapshot!(format!("help_{cmd}"), out);
    }
}

/// docs/playbook.schema.json is what `boyong schema` prints; regenerate it with
/// `cargo run -q -- schema > docs/playbook.schema.json`.
#[test]
fn schema_has_not_drifted() {
    let (code, out, _) = boyong(&["schema"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/playbook.schema.json"),
    )
    .expect("docs/playbook.schema.json exists");
    assert_eq!(
        out, committed,
        "the schema changed: regenerate docs/playbook.schema.json"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("schema is JSON");
    let step = &v["$defs"]["Step"];
    assert_eq!(
        step["additionalProperties"], false,
        "unknown step fields must be refused"
    );
    assert_eq!(
        step["oneOf"].as_array().map(Vec::len),
        Some(7),
        "exactly one of seven kinds"
    );
}

#[test]
fn completions_generate() {
    let (code, out, _) = boyong(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("_boyong()") && out.contains("validate"),
        "bash completion script"
    );
}
