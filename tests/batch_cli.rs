//! Batches and fleet status through the real `boyong` binary (built with the `sim`
//! feature), on the strict fake world: one app's failure does not stop the others,
//! `--fail-fast` interrupts the running apps and starts no other, bad input runs nothing,
//! a directory, `--json`, each run's log holds only its own events; status's lifecycles,
//! filters and a broken journal. The real hosts' batch is in tests/fleet.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use support::env::Env;
use support::{logged_runs, text};

mod support;

const PLAYBOOK: &str = include_str!("../fixtures/engine/demo.yml");

impl Env {
    /// An empty fake world and the playbooks of `apps` (the demo app renamed) in `pb/`.
    fn new(apps: &[&str]) -> Self {
        let mut b = Self::builder("batch-cli")
            .sim(r#"{"resources": {}, "delivered": [], "generation": 0}"#)
            .var("DEMO_SSH_PASSWORD", "pw-3b7e")
            .var("DEMO_TOKEN", "tok-batch");
        for app in apps {
            b = b.file(&format!("pb/{app}.yml"), playbook(app));
        }
        b.build().unwrap()
    }

    /// Whether `app`'s first run has journaled the intent of `step`.
    fn reached(&self, app: &str, step: &str) -> bool {
        std::fs::read_dir(self.path(&format!("state/apps/{app}/runs")))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
            .and_then(|r| std::fs::read_to_string(r.path().join("journal.jsonl")).ok())
            .is_some_and(|j| j.contains(&format!("\"type\":\"intent\",\"step\":\"{step}\"")))
    }

    /// `status --json --offline` and any extra arguments, by app.
    fn status(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["status", "--json", "--offline"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    }

    fn of<'a>(rows: &'a [Value], app: &str) -> &'a Value {
        rows.iter()
            .find(|r| r["app"] == app)
            .unwrap_or_else(|| panic!("no row for {app}: {rows:?}"))
    }

    /// The app's only run's directory.
    fn run_dir(&self, app: &str) -> PathBuf {
        let runs = self.path(&format!("state/apps/{app}/runs"));
        std::fs::read_dir(&runs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    }

    fn last_record(&self, app: &str) -> Value {
        let j = std::fs::read_to_string(self.run_dir(app).join("journal.jsonl")).unwrap();
        serde_json::from_str(j.lines().last().unwrap()).unwrap()
    }
}

fn playbook(app: &str) -> String {
    PLAYBOOK
        .replace("app: demo", &format!("app: {app}"))
        .replace("demo-web", &format!("{app}-web"))
        .replace("demo-net", &format!("{app}-net"))
}

#[test]
fn one_failure_does_not_stop_the_others_and_the_summary_names_it() {
    let env = Env::new(&["alpha", "bravo", "charlie"]);
    // The first app to reach `web` fails there: with one job, `alpha`.
    let out = env.run_faulted(
        &["run", "pb/alpha.yml", "pb/bravo.yml", "pb/charlie.yml"],
        "web:0:after-intent:fail",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let line = |app: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(app))
            .unwrap_or_else(|| panic!("no summary line for {app}: {stdout}"))
            .to_string()
    };
    assert!(line("alpha").contains("rolled-back"), "{stdout}");
    assert!(line("alpha").contains("`web`: injected fault"), "{stdout}");
    assert!(line("bravo").contains("succeeded"), "{stdout}");
    assert!(line("charlie").contains("succeeded"), "{stdout}");
    assert!(stdout.contains("2 of 3 app(s) succeeded"), "{stdout}");
    assert!(
        stderr.contains("alpha: everything it changed was undone"),
        "{stderr}"
    );
    // Off a terminal, plain lines prefixed with the app.
    assert!(stderr.contains("bravo    [4/4] web (deploy)"), "{stderr}");
    for app in ["alpha", "bravo", "charlie"] {
        let run = env.run_dir(app);
        let id = run.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(logged_runs(&run), [(app.to_string(), id)], "{app}'s log");
    }
    let st = env.status(&[]);
    assert_eq!(Env::of(&st, "alpha")["lifecycle"], "rolled-back");
    assert_eq!(Env::of(&st, "bravo")["lifecycle"], "cut-over");
    assert_eq!(st[0]["app"], "alpha", "problems first: {st:?}");
}

#[test]
fn fail_fast_interrupts_the_running_app_and_starts_no_other() {
    let env = Env::new(&["a1", "a2", "a3", "a4"]);
    // The first app at `maint` waits; the other fails at `web`: fail-fast interrupts the
    // waiting one, and a3, a4 never start.
    let out = env.run_faulted(
        &["run", "pb", "--jobs", "2", "--fail-fast"],
        "maint:0:after-intent:wait,web:0:after-intent:fail",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let result = |app: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(app))
            .unwrap_or_else(|| panic!("no summary line for {app}: {stdout}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let mut first_two = [result("a1"), result("a2")];
    first_two.sort();
    assert_eq!(first_two, ["interrupted", "rolled-back"], "{stdout}");
    assert_eq!(result("a3"), "not-started", "{stdout}");
    assert_eq!(result("a4"), "not-started", "{stdout}");
    assert!(!env.path("state/apps/a3/runs").exists());
    let stopped = if result("a1") == "interrupted" {
        "a1"
    } else {
        "a2"
    };
    assert_eq!(env.last_record(stopped)["result"], "interrupted");
    let v = env.run(&["journal", "verify", stopped]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stdout));
    let rb = env.run(&["rollback", stopped, "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
}

#[test]
fn bad_input_anywhere_runs_nothing() {
    let env = Env::new(&["alpha", "bravo"]);
    std::fs::write(env.path("pb/again.yml"), playbook("alpha")).unwrap();
    let out = env.run(&["run", "pb/alpha.yml", "pb/again.yml", "pb/bravo.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("app `alpha` is in pb/alpha.yml and in pb/again.yml"),
        "{err}"
    );
    assert!(!env.path("state/apps").exists(), "nothing ran");

    std::fs::write(
        env.path("pb/again.yml"),
        playbook("delta").replace("fetch:", "fetsh:"),
    )
    .unwrap();
    let out = env.run(&["run", "pb", "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("pb/again.yml:"), "file:line:col: {err}");
    assert!(err.contains("1 of 3 playbook(s) cannot run"), "{err}");
    assert!(!env.path("state/apps").exists(), "nothing ran");
}

#[test]
fn a_directory_in_json_every_event_names_its_app() {
    let env = Env::new(&["bravo", "alpha"]);
    std::fs::write(env.path("pb/notes.txt"), "not a playbook").unwrap();
    let out = env.run(&["run", "pb", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "batch-finished");
    assert_eq!(last["exit"], 0);
    let order: Vec<&str> = last["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["app"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["alpha", "bravo"], "sorted by file");
    for e in &events[..events.len() - 1] {
        assert!(e["app"] == "alpha" || e["app"] == "bravo", "{e}");
    }
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "run-started")
        .map(|e| e["app"].as_str().unwrap())
        .collect();
    assert_eq!(started, ["alpha", "bravo"]);
}

#[test]
fn status_lifecycles_filters_and_a_broken_journal() {
    let env = Env::new(&["good", "kept", "undone", "broken"]);
    assert_eq!(env.run(&["run", "pb/good.yml"]).status.code(), Some(0));
    let kept = env.run_faulted(
        &["run", "pb/kept.yml", "--no-auto-rollback"],
        "image:0:after-change:fail",
    );
    assert_eq!(kept.status.code(), Some(1));
    let undone = env.run_faulted(&["run", "pb/undone.yml"], "image:0:after-change:fail");
    assert_eq!(undone.status.code(), Some(1));
    assert_eq!(env.run(&["run", "pb/broken.yml"]).status.code(), Some(0));
    let journal = env.run_dir("broken").join("journal.jsonl");
    let lines = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(
        &journal,
        lines.replacen("\"step\":\"code\"", "\"step\":\"c0de\"", 1),
    )
    .unwrap();

    let st = env.status(&[]);
    let order: Vec<&str> = st.iter().map(|r| r["app"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        ["broken", "kept", "undone", "good"],
        "problems first"
    );
    let broken = Env::of(&st, "broken");
    assert_eq!(broken["result"], "journal-broken");
    assert_eq!(broken["lifecycle"], "unknown");
    assert!(
        broken["failure"].as_str().unwrap().contains("line"),
        "{broken}"
    );
    let kept = Env::of(&st, "kept");
    assert_eq!(
        (&kept["lifecycle"], &kept["result"]),
        (&"failed".into(), &"failed".into())
    );
    assert_eq!(kept["steps_done"], 2);
    assert_eq!(Env::of(&st, "undone")["lifecycle"], "rolled-back");
    let g = Env::of(&st, "good");
    assert_eq!(
        (&g["lifecycle"], &g["steps_done"]),
        (&"cut-over".into(), &4.into())
    );
    assert_eq!(g["container_name"], "good-web");
    assert_eq!(g["live"], "offline");
    for field in [
        "run",
        "started",
        "last_change",
        "steps_total",
        "changes_in_place",
        "held_by",
        "target",
        "container",
        "expected_image_id",
        "drift",
        "journaled_image_id",
    ] {
        assert!(g.get(field).is_some(), "field {field} in {g}");
    }

    let names = |rows: Vec<Value>| -> Vec<String> {
        rows.iter()
            .map(|r| r["app"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(env.status(&["--failed"])),
        ["broken", "kept", "undone"]
    );
    assert_eq!(
        names(env.status(&["--lifecycle", "cut-over,rolled-back"])),
        ["undone", "good"]
    );
    assert_eq!(names(env.status(&["*o*"])), ["broken", "undone", "good"]);

    // The table fits COLUMNS, problems first.
    let out = env
        .command(&["status", "--offline"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let table = text(&out.stdout);
    assert!(table.starts_with("APP "), "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with("broken "),
        "{table}"
    );
    for l in table.lines() {
        assert!(l.chars().count() <= 80, "wider than COLUMNS: {l:?}");
    }
}

#[test]
fn ctrl_c_interrupts_every_running_app_and_starts_no_other() {
    let env = Env::new(&["c1", "c2", "c3"]);
    let child = env
        .faulted(
            &["run", "pb", "--jobs", "2"],
            "maint:0:after-intent:wait,maint:0:after-intent:wait",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let waiting = |app: &str| env.reached(app, "maint");
    while !(waiting("c1") && waiting("c2")) {
        assert!(
            t0.elapsed().as_secs() < 30,
            "c1 and c2 never reached `maint`"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(support::signal(child.id(), "-INT"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for (app, result) in [
        ("c1", "interrupted"),
        ("c2", "interrupted"),
        ("c3", "not-started"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(app))
            .unwrap_or_default();
        assert!(line.contains(result), "{app}: {stdout}");
    }
    assert!(
        text(&out.stderr).contains("interrupt: stopping every app"),
        "{}",
        text(&out.stderr)
    );
    for app in ["c1", "c2"] {
        assert_eq!(env.last_record(app)["result"], "interrupted");
    }
}

#[test]
fn an_app_locked_by_another_run_is_refused_by_name_and_the_others_go_on() {
    let env = Env::new(&["alpha", "bravo"]);
    let mut first = env
        .faulted(&["run", "pb/alpha.yml"], "maint:0:after-intent:wait")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !env.reached("alpha", "maint") {
        assert!(t0.elapsed().as_secs() < 30, "alpha never reached `maint`");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let out = env.run(&["run", "pb"]);
    let _ = first.kill();
    let _ = first.wait();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The refusal is said once, on its own line, named for its app.
    let refusal: Vec<&str> = err.lines().filter(|l| l.contains("is locked by")).collect();
    assert_eq!(refusal.len(), 1, "{err}");
    assert!(
        refusal[0].starts_with("`alpha`: boyong run: "),
        "{}",
        refusal[0]
    );
    let stdout = text(&out.stdout);
    let row = |app: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(app))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("bravo").contains("succeeded"), "{stdout}");
    assert!(!row("alpha").contains("succeeded"), "{stdout}");
}
