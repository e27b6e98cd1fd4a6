//! A failed health gate leaves evidence, against the real Docker Engine: the new
//! container's last log lines (secrets redacted) and the last answer to the check, in the
//! run's `health/` directory and, briefly, in the error and the report; with
//! `--no-auto-rollback` the container is kept, stopped, as `NAME.failed-RUN`, which
//! rollback removes. A first deploy (no current container) says so, not "kept".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::docker::{inspect, web_image_cmd};
use support::env::Env;
use support::text;

/// The secret the app prints to its log at start.
const SECRET: &str = "s3cr3t-health-Pw";

impl Env {
    /// A first deploy of `image` on this test's port, its health URL answering 404.
    fn failing_playbook(&self, image: &str) -> std::path::PathBuf {
        self.write(
            "web.yml",
            format!(
                "version: 1\napp: healthtest\nvendor: {{ host: 127.0.0.1, user: x, identity: none, known_hosts: none }}\n\
                 vars:\n  pw: {{ env: BOYONG_TEST_APP_PASSWORD }}\n\
                 steps:\n  - id: web\n    deploy:\n      image: {image}\n      name: {}\n      ports: [\"127.0.0.1:{}:8080\"]\n      env: {{ APP_PASSWORD: \"{{{{ vars.pw }}}}\" }}\n      health:\n        http: http://127.0.0.1:{}/healthz\n        timeout: 3s\n        interval: 1s\n",
                self.name, self.port, self.port
            ),
        )
    }
}

#[test]
fn a_failed_health_check_keeps_the_container_stopped_with_its_logs_and_answer_and_rollback_removes_it()
 {
    let Some(env) = Env::builder("health-evidence")
        .busybox()
        .var("BOYONG_TEST_APP_PASSWORD", SECRET)
        .plan_fidelity()
        .build()
    else {
        return;
    };
    // The app logs two lines at start, one of them its password, then serves (no /healthz).
    let image = web_image_cmd(
        env.label(),
        "logs",
        "up",
        r#"CMD ["sh", "-c", "echo boot: first line; echo boot: password is $APP_PASSWORD; exec httpd -f -p 8080 -h /www"]"#,
    );
    let pb = env.failing_playbook(&image);
    let out = env
        .playbook_run(&pb)
        .arg("--no-auto-rollback")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let said = text(&out.stdout) + &err;
    assert!(!said.contains(SECRET), "the secret is shown: {said}");
    let run = env.last_run("healthtest");
    let id = run.file_name().unwrap().to_str().unwrap().to_string();
    let failed = format!("{}.failed-{id}", env.name);

    // The error: why, what became of it, no "current one kept" (there was none), the
    // answer's status line and the last log lines.
    assert!(err.contains("is unhealthy"), "{err}");
    assert!(err.contains("there was no current one"), "{err}");
    assert!(!err.contains("current one kept"), "{err}");
    assert!(
        err.contains(&format!("kept, stopped, as `{failed}`")),
        "{err}"
    );
    assert!(
        err.contains("last answer: HTTP/1.") && err.contains("404"),
        "{err}"
    );
    assert!(err.contains("| boot: first line"), "{err}");
    assert!(err.contains("| boot: password is ***"), "{err}");

    // The container: kept, stopped, labelled; no `.next-` left.
    let c = inspect(&failed).expect("the failed container is kept");
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["Config"]["Labels"]["boyong.app"], "healthtest");
    assert_eq!(env.containers(), std::slice::from_ref(&failed));

    // The evidence files, redacted.
    let txt = std::fs::read_to_string(run.join("health/web.txt")).unwrap();
    for want in ["404", "boot: first line", "boot: password is ***", &failed] {
        assert!(txt.contains(want), "{want} not in: {txt}");
    }
    assert!(!txt.contains(SECRET), "{txt}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("health/web.json")).unwrap()).unwrap();
    assert_eq!(json["answer"]["status"], 404, "{json}");
    assert_eq!(json["kept_as"], failed.as_str());
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("\"health-evidence\"") && journal.contains("health/web.txt"),
        "{journal}"
    );

    // The report shows it.
    let report = env.run(&["report", "healthtest"]);
    let page = text(&report.stdout);
    assert!(
        page.contains("Kept for inspection")
            && page.contains("health/web.txt")
            && page.contains("boot: first line")
            && page.contains("matches the journal"),
        "{page}"
    );
    assert!(!page.contains(SECRET), "{page}");

    // Rollback removes it.
    let rb = env.rollback("healthtest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(inspect(&failed).is_none(), "rollback removed {failed}");
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    assert!(run.join("health/web.txt").is_file(), "the evidence stays");
}

#[test]
fn without_no_auto_rollback_the_unhealthy_container_is_removed_but_its_evidence_stays() {
    let Some(env) = Env::builder("health-removed")
        .busybox()
        .var("BOYONG_TEST_APP_PASSWORD", SECRET)
        .build()
    else {
        return;
    };
    let image = web_image_cmd(
        env.label(),
        "logs",
        "up",
        r#"CMD ["sh", "-c", "echo boot: removed app; exec httpd -f -p 8080 -h /www"]"#,
    );
    let out = env.run_playbook(&env.failing_playbook(&image));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("it was removed") && err.contains("there was no current one"),
        "{err}"
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    let txt = std::fs::read_to_string(env.last_run("healthtest").join("health/web.txt")).unwrap();
    assert!(
        txt.contains("boot: removed app") && txt.contains("removed after"),
        "{txt}"
    );
}
