//! Whole migrations against a real sshd and the real Docker Engine: fetch → build →
//! deploy serving over HTTP; a bad release undone automatically; rollback to the first
//! release; a file changed at rest after the pull; a host port held by another process.
//! Every run's journal is checked against its plan: a change not in the plan fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::env::Env;
use support::site;
use support::{journal, serves, text};

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

impl Env {
    /// A vendor sshd serving release 1 of a site, the engine with busybox.
    fn new(test: &str) -> Option<Self> {
        let env = Self::builder(test).sshd().busybox().build()?;
        env.release("release 1");
        Some(env)
    }

    /// The vendor's site now says `body`.
    fn release(&self, body: &str) {
        self.write("vendor/www/index.html", format!("{body}\n"));
    }

    /// fetch → (`between`) → build → deploy, health checked at `health_path`.
    fn playbook(&self, between: &str, health_path: &str) -> PathBuf {
        self.write(
            "situs.yml",
            format!(
                "version: 1\napp: situs\n{vendor}\
                 steps:\n  - id: code\n    fetch: {{ path: {src} }}\n{between}\
                 {image}{web}",
                vendor = self.sshd().vendor_yaml(),
                src = self.path("vendor/www").display(),
                image = site::image_step("boyong-fixture/busybox:1"),
                web = site::web_step(&self.name, self.port, health_path, "5s", ""),
            ),
        )
    }
}

#[test]
fn a_migration_serves_the_pulled_site_a_bad_release_is_undone_and_rollback_brings_back_the_first() {
    let Some(env) = Env::new("e2e") else { return };
    let good = env.playbook("", "/");
    let out = env.run_playbook(&good);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "release 1");
    let first = env.last_run("situs");
    support::assert_plan_fidelity(&first);

    // A second release whose health check fails: undone by itself, the first serves.
    env.release("release 2");
    let bad = env.playbook("", "/missing");
    let out = env.run_playbook(&bad);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "release 1");
    let second = env.last_run("situs");
    support::assert_plan_fidelity(&second);
    let records = journal(&second);
    let done: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "done" && r["step"] != "code")
        .collect();
    assert!(!done.is_empty(), "the bad release changed the target");
    for d in done {
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "undone" && r["change_id"] == d["change_id"]),
            "change {} was not undone: {records:?}",
            d["change_id"]
        );
    }
    assert_eq!(
        records.last().unwrap()["result"],
        "rolled-back",
        "{records:?}"
    );
    assert_eq!(env.containers(), std::slice::from_ref(&env.name));

    // A good third release, then rollback: the first serves again.
    env.release("release 3");
    let good = env.playbook("", "/");
    let out = env.run_playbook(&good);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "release 3");
    support::assert_plan_fidelity(&env.last_run("situs"));
    let rb = env.rollback("situs");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(serves(env.port), "release 1");
    assert_eq!(env.containers(), std::slice::from_ref(&env.name));
}

#[test]
fn a_file_changed_at_rest_after_the_pull_fails_the_build_and_nothing_is_deployed() {
    let Some(env) = Env::new("tamper") else {
        return;
    };
    // The "vendor host" is this machine, so an exec step on it can change the pulled
    // artifact between the pull and the build: a byte changed at rest.
    let tamper = format!(
        "  - id: tamper\n    exec:\n      run: \"for f in {}/apps/situs/runs/*/artifacts/code/index.html; do echo changed >> $f; done\"\n",
        env.state().display()
    );
    let pb = env.playbook(&tamper, "/");
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("index.html") && err.contains("image"),
        "the step and the file are named: {err}"
    );
    assert!(
        env.containers().is_empty(),
        "nothing deployed: {:?}",
        env.containers()
    );
    assert!(env.label().images().is_empty(), "no image left");
    assert_eq!(
        support::http_get(env.port, "/", Duration::from_millis(300)),
        None
    );
    support::assert_plan_fidelity(&env.last_run("situs"));
}

#[test]
fn a_host_port_held_by_another_process_is_named_and_nothing_is_left_behind() {
    let Some(env) = Env::new("porttaken") else {
        return;
    };
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", env.port)).unwrap();
    let pb = env.playbook("", "/");
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{}", env.port)) && err.contains("in use"),
        "the port is named: {err}"
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    assert!(env.label().images().is_empty(), "no image left");
    support::assert_plan_fidelity(&env.last_run("situs"));
}

#[test]
fn the_shared_build_without_run_scenario_passes_on_docker() {
    let Some(env) = Env::builder("shared-layer")
        .sshd()
        .busybox()
        .plan_fidelity()
        .build()
    else {
        return;
    };
    support::scenario::build_without_run(&env);
}
