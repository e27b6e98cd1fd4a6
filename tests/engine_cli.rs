//! The engine through the real `boyong` binary (built with the `sim` feature): runs,
//! failures, SIGKILL and Ctrl-C mid-run, rollback, resume, the lock, status, and a grep
//! of the whole state directory for a secret. The world is the strict fake world kept
//! in a JSON file (`BOYONG_SIM`), so it survives the process being killed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::env::Env;
use support::text;
use support::tmpfs::mounted;

mod support;

const TOKEN: &str = "tok-91be2c0d7a-must-not-leak";

const PLAYBOOK: &str = include_str!("../fixtures/engine/demo.yml");

const START: &str = r#"{"resources": {"target:container:demo-web": "old-release"}, "delivered": [], "generation": 0}"#;

impl Env {
    /// The demo playbook and its secrets, in the fake world's start.
    fn new() -> Self {
        Self::builder("engine-cli")
            .file("demo.yml", PLAYBOOK)
            .sim(START)
            .var("DEMO_SSH_PASSWORD", "pw-3b7e")
            .var("DEMO_TOKEN", TOKEN)
            .build()
            .unwrap()
    }

    fn spawn(&self, args: &[&str], fault: &str) -> Child {
        self.faulted(args, fault)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn world(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path("world.json")).unwrap()).unwrap()
    }

    fn resources(&self) -> Value {
        self.world()["resources"].clone()
    }

    fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
    }

    /// The journal of the app's only run.
    fn journal(&self) -> PathBuf {
        let runs = self.path("state/apps/demo/runs");
        std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
            .map_or_else(|| runs.join("none"), |r| r.path().join("journal.jsonl"))
    }

    /// Waits until the journal holds an intent of `step`.
    fn wait_for_intent(&self, step: &str) {
        let t0 = Instant::now();
        while !std::fs::read_to_string(self.journal())
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.contains("\"type\":\"intent\"") && l.contains(&format!("\"step\":\"{step}\""))
            })
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "step {step} never journaled an intent"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the journal holds an intent of `step` and the world shows its change.
    fn wait_for_change(&self, step: &str, key_part: &str) {
        let t0 = Instant::now();
        loop {
            let journal = std::fs::read_to_string(self.journal()).unwrap_or_default();
            let has_intent = journal.lines().any(|l| {
                l.contains("\"type\":\"intent\"") && l.contains(&format!("\"step\":\"{step}\""))
            });
            let changed = self
                .resources()
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.contains(key_part));
            if has_intent && changed {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "step {step} never made its change"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn start_resources() -> Value {
    serde_json::from_str::<Value>(START).unwrap()["resources"].clone()
}

fn signal(child: &Child, sig: &str) {
    assert!(support::signal(child.id(), sig), "kill {sig} failed");
}

#[test]
fn run_status_rollback_and_a_second_rollback_that_does_nothing() {
    let env = Env::new();
    let out = env.run(&["run", "demo.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        env.resources()["target:container:demo-web"]
            .as_str()
            .unwrap()
            .split('#')
            .next(),
        Some("web")
    );
    let st = env.status();
    assert_eq!(st["result"], "succeeded");
    assert_eq!(st["steps_done"], 4);

    // --plan only shows; without --yes and without a terminal, nothing happens.
    let before = env.resources();
    let plan = env.run(&["rollback", "demo", "--plan"]);
    assert_eq!(plan.status.code(), Some(0));
    assert!(
        text(&plan.stdout).contains("6 change(s) to undo"),
        "{}",
        text(&plan.stdout)
    );
    let refused = env.run(&["rollback", "demo"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("--yes"));
    assert_eq!(env.resources(), before);

    // plan.json, which says what each step's data is, rewritten after the run: what to
    // save first cannot be told, so the rollback is refused (unless --discard-data).
    let plan_json = env.last_run("demo").join("plan.json");
    let kept = std::fs::read(&plan_json).unwrap();
    std::fs::write(&plan_json, [&kept[..], b" "].concat()).unwrap();
    let untold = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(untold.status.code(), Some(1), "{}", text(&untold.stderr));
    assert!(
        text(&untold.stderr).contains("what data to save first cannot be told")
            && text(&untold.stderr).contains("its SHA-256 differs"),
        "{}",
        text(&untold.stderr)
    );
    assert_eq!(env.resources(), before);
    std::fs::write(&plan_json, kept).unwrap();

    let rb = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(env.resources(), start_resources());
    assert_eq!(env.status()["result"], "rolled-back");
    let again = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stdout).contains("nothing to roll back"),
        "{}",
        text(&again.stdout)
    );
    let v = env.run(&["journal", "verify", "demo"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
}

#[test]
fn a_failed_step_is_rolled_back_automatically() {
    let env = Env::new();
    let out = env.run_faulted(&["run", "demo.yml"], "web:1:after-change:fail");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("FAILED at step `web`"), "{err}");
    assert!(
        err.contains("everything this run changed was undone"),
        "{err}"
    );
    assert_eq!(env.resources(), start_resources());
    let st = env.status();
    assert_eq!(st["result"], "rolled-back");
    assert!(st["failure"].as_str().unwrap().contains("web"));
}

#[test]
fn a_failure_left_for_inspection_then_resume_finishes_it() {
    let env = Env::new();
    let out = env.run_faulted(
        &["run", "demo.yml", "--no-auto-rollback"],
        "image:0:after-change:fail",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--resume"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.status()["result"], "failed");
    assert!(
        env.resources()
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("image"))
    );

    let out = env.run(&["run", "demo.yml", "--resume", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let skipped: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step-skipped")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["code", "maint"]);
    assert_eq!(env.status()["result"], "succeeded");
    // One image, one new container under the name: the failed attempt's image was undone.
    let images = env
        .resources()
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains(":image:"))
        .count();
    assert_eq!(images, 1);
    let again = env.run(&["run", "demo.yml", "--resume"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("nothing to resume"));
}

#[test]
fn sigkill_mid_step_then_rollback_restores_the_start() {
    let env = Env::new();
    let mut child = env.spawn(&["run", "demo.yml"], "image:0:after-change:wait");
    env.wait_for_change("image", ":image:");
    signal(&child, "-KILL");
    let _ = child.wait().unwrap();
    let st = env.status();
    assert_eq!(st["result"], "interrupted", "{st}");
    assert!(
        st["held_by"].is_null(),
        "the kernel released the dead run's lock"
    );
    let v = env.run(&["journal", "verify", "demo"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stdout));
    let rb = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    let err = text(&rb.stderr);
    assert!(
        err.contains("ended without releasing"),
        "the stale lock is reported: {err}"
    );
    assert_eq!(env.resources(), start_resources());
}

#[test]
fn sigkill_mid_step_then_resume_finishes() {
    let env = Env::new();
    let mut child = env.spawn(&["run", "demo.yml"], "web:1:after-intent:wait");
    env.wait_for_change("web", "demo-net");
    signal(&child, "-KILL");
    let _ = child.wait().unwrap();
    let out = env.run(&["run", "demo.yml", "--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = env.resources();
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.iter().filter(|k| k.contains("demo-web.next")).count(),
        1,
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k.contains("demo-net")));
    assert_eq!(env.status()["result"], "succeeded");
}

#[test]
fn ctrl_c_stops_the_step_and_says_how_to_recover() {
    let env = Env::new();
    let child = env.spawn(&["run", "demo.yml"], "maint:0:after-change:wait");
    env.wait_for_change("maint", "command");
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("interrupted during step `maint`"), "{err}");
    assert!(err.contains("boyong rollback demo"), "{err}");
    assert_eq!(env.status()["result"], "interrupted");
    let rb = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(env.resources(), start_resources());
}

#[test]
fn a_run_whose_world_is_slow_to_settle_after_ctrl_c_says_what_it_waits_for_and_a_second_ctrl_c_quits()
 {
    use std::io::BufRead as _;
    let env = Env::new();
    let mut child = env.spawn(
        &["run", "demo.yml"],
        "maint:0:after-change:wait,maint:0:settle:wait",
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    env.wait_for_change("maint", "command");
    signal(&child, "-INT");
    let t0 = Instant::now();
    let mut seen = Vec::new();
    let waiting = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if l.contains("waiting for the engine to finish") => break l,
            Ok(l) => seen.push(l),
            Err(e) => panic!("no waiting line ({e}); the run said: {seen:#?}"),
        }
    };
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "said before the executor's patience ran out: {waiting}"
    );
    assert!(
        waiting.contains("change 0 of step `maint` (an injected fault)"),
        "{waiting}"
    );
    assert!(
        waiting.contains("a second Ctrl-C quits at once"),
        "{waiting}"
    );
    assert!(
        !seen.iter().any(|l| l.starts_with("finished")),
        "the run ended before it settled: {seen:#?}"
    );
    signal(&child, "-INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "a second Ctrl-C quits at once");
    reader.join().unwrap();
    // The run's end was never journaled; its journal still undoes what it made.
    let rb = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(env.resources(), start_resources());
}

#[test]
fn a_second_run_of_the_same_app_is_refused_naming_the_holder() {
    let env = Env::new();
    let mut first = env.spawn(&["run", "demo.yml"], "code:0:after-intent:wait");
    env.wait_for_intent("code");
    let second = env.run(&["run", "demo.yml"]);
    assert_eq!(second.status.code(), Some(1));
    let err = text(&second.stderr);
    assert!(err.contains("is locked by"), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())) || err.contains(&first.id().to_string()),
        "{err}"
    );
    let st = env.status();
    assert_eq!(st["result"], "in-progress");
    let rb = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(rb.status.code(), Some(1), "rollback waits its turn too");
    signal(&first, "-KILL");
    let _ = first.wait().unwrap();
}

#[test]
fn a_rollback_that_fails_part_way_exits_3_and_lists_what_is_left() {
    let env = Env::new();
    assert_eq!(env.run(&["run", "demo.yml"]).status.code(), Some(0));
    let rb = env.run_faulted(&["rollback", "demo", "--yes"], "maint:0:undo:fail");
    assert_eq!(rb.status.code(), Some(3));
    let err = text(&rb.stderr);
    assert!(err.contains("rollback INCOMPLETE"), "{err}");
    assert!(err.contains("touch /srv/app/.maintenance"), "{err}");
    assert!(err.contains("artifacts/code/"), "{err}");
    assert_eq!(env.status()["result"], "rollback-incomplete");
    let rb = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(env.resources(), start_resources());
}

#[test]
fn resume_after_an_edit_shows_the_steps_that_changed_and_redoes_from_the_first() {
    let env = Env::new();
    let out = env.run_faulted(
        &["run", "demo.yml", "--no-auto-rollback"],
        "web:0:after-done:fail",
    );
    assert_eq!(out.status.code(), Some(1));
    // Two lines inserted (a new step) and one changed: the diff is one line a step.
    let edited = PLAYBOOK
        .replace(
            "  - id: web\n",
            "  - id: warm\n    exec: { run: touch /srv/app/.warm, undo: rm -f /srv/app/.warm }\n  - id: web\n",
        )
        .replace("name: demo-web", "name: demo-web2");
    std::fs::write(env.path("demo.yml"), &edited).unwrap();
    let out = env.run(&["run", "demo.yml", "--resume", "--json"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("the playbook changed since run"), "{err}");
    assert!(
        err.contains(
            "steps from `warm` on are redone:\n  = code   unchanged\n  = maint  unchanged\n  = image  unchanged\n  + warm   new\n  ~ web    changed: deploy.name\n"
        ),
        "{err}"
    );
    let skipped: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "step-skipped")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped, ["code", "maint", "image"]);
    let r = env.resources();
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert!(keys.iter().any(|k| k.ends_with(":demo-web2")), "{keys:?}");
    assert!(r["target:container:demo-web"] == "old-release", "{keys:?}");
    let rb = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(env.resources(), start_resources());
}

#[test]
fn resume_is_refused_when_an_edit_would_repeat_a_change_without_undo() {
    let env = Env::new();
    let no_undo = PLAYBOOK.replace("      undo: rm -f /srv/app/.maintenance\n", "");
    std::fs::write(env.path("demo.yml"), &no_undo).unwrap();
    let out = env.run_faulted(
        &["run", "demo.yml", "--no-auto-rollback"],
        "web:0:after-done:fail",
    );
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(
        env.path("demo.yml"),
        no_undo.replace("fetch: { path: /srv/app }", "fetch: { path: /srv/app2 }"),
    )
    .unwrap();
    let before = env.resources();
    let out = env.run(&["run", "demo.yml", "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("step `maint` made a change that has no undo"),
        "{err}"
    );
    assert!(err.contains("  ~ code   changed: fetch.path\n"), "{err}");
    assert!(err.contains("boyong rollback demo"), "{err}");
    assert_eq!(env.resources(), before);
}

#[test]
fn no_secret_value_anywhere_in_the_state_directory() {
    let env = Env::new();
    assert_eq!(env.run(&["run", "demo.yml"]).status.code(), Some(0));
    let failed = env.run_faulted(&["run", "demo.yml"], "web:2:after-change:fail");
    assert_eq!(failed.status.code(), Some(1));
    assert!(!text(&failed.stderr).contains(TOKEN));
    assert!(text(&failed.stderr).contains("TOKEN=***"));
    // The secret really was used: it reached the far side.
    assert!(env.world()["delivered"].to_string().contains(TOKEN));
    let mut files = 0;
    for f in walk(&env.path("state")) {
        files += 1;
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "{} holds the secret",
            f.display()
        );
    }
    assert!(
        files >= 8,
        "the state directory holds the runs' files ({files})"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_full_disk_stops_the_run_cleanly_and_rollback_works_once_space_is_freed() {
    let mut stopped_mid_run = 0;
    for free_kib in [4, 8, 12, 16, 20, 24, 28, 32, 40, 48] {
        let env = Env::new();
        let state = env.path("state");
        let Some(_guard) = mounted(&state, 1 << 20) else {
            return;
        };
        // Fill the file system, then free `free_kib`.
        let filler = state.join("filler");
        let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
        let len = std::fs::metadata(&filler).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap();
        f.set_len(len.saturating_sub(free_kib * 1024)).unwrap();
        drop(f);

        let out = env.run(&["run", "demo.yml"]);
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{free_kib} KiB: {err}");
        std::fs::remove_file(&filler).unwrap();
        eprintln!(
            "{free_kib} KiB free: exit {:?}: {}",
            out.status.code(),
            err.lines()
                .rev()
                .find(|l| !l.is_empty())
                .unwrap_or_default()
        );
        if out.status.code() == Some(0) {
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{free_kib} KiB: {err}");
        let journal = env.journal();
        if !journal.exists() {
            // Refused before the run began: nothing changed, and no half-made run is left.
            assert_eq!(env.resources(), start_resources(), "{free_kib} KiB");
            assert!(err.contains("nothing was changed"), "{err}");
            let runs = std::fs::read_dir(state.join("apps/demo/runs"))
                .unwrap()
                .count();
            assert_eq!(
                runs, 0,
                "{free_kib} KiB: a half-made run directory was left"
            );
            continue;
        }
        let v = env.run(&["journal", "verify", "demo"]);
        assert_eq!(
            v.status.code(),
            Some(0),
            "{free_kib} KiB: {}",
            text(&v.stdout)
        );
        if std::fs::read_to_string(&journal)
            .unwrap()
            .contains("\"type\":\"intent\"")
        {
            stopped_mid_run += 1;
        }
        let rb = env.run(&["rollback", "demo", "--yes"]);
        assert_eq!(
            rb.status.code(),
            Some(0),
            "{free_kib} KiB: {}",
            text(&rb.stderr)
        );
        assert_eq!(env.resources(), start_resources(), "{free_kib} KiB");
    }
    assert!(stopped_mid_run > 0, "no size made the run stop mid-way");
}

#[test]
fn a_rollback_killed_half_way_blocks_resume_and_a_second_rollback_finishes_it() {
    let env = Env::new();
    assert_eq!(env.run(&["run", "demo.yml"]).status.code(), Some(0));
    let mut rb = env.spawn(&["rollback", "demo", "--yes"], "maint:0:undo:wait");
    let t0 = Instant::now();
    while !std::fs::read_to_string(env.journal())
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains("\"type\":\"undo-intent\"") && l.contains("\"step\":\"maint\""))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the rollback never reached maint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&rb, "-KILL");
    let _ = rb.wait().unwrap();
    let resume = env.run(&["run", "demo.yml", "--resume"]);
    assert_eq!(resume.status.code(), Some(2));
    assert!(
        text(&resume.stderr).contains("did not finish"),
        "{}",
        text(&resume.stderr)
    );
    let again = env.run(&["rollback", "demo", "--yes"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(env.resources(), start_resources());
}

/// Issue 21, item 9: on a state directory that fills up, a run whose `log.jsonl` could
/// not be written completely never reports success: a run that exits 0 has logged its
/// end (its `run-finished` event); otherwise its result says what was lost.
#[test]
fn a_log_that_cannot_be_written_is_never_a_silent_success() {
    let mut lost = 0;
    for free_kib in [4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 56, 64] {
        let env = Env::new();
        let state = env.path("state");
        let Some(_guard) = mounted(&state, 1 << 20) else {
            return;
        };
        let filler = state.join("filler");
        let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
        let len = std::fs::metadata(&filler).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap();
        f.set_len(len.saturating_sub(free_kib * 1024)).unwrap();
        drop(f);
        let out = env.run(&["run", "demo.yml"]);
        let err = text(&out.stderr);
        std::fs::remove_file(&filler).unwrap();
        let Some(run) = std::fs::read_dir(state.join("apps/demo/runs"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
        else {
            continue;
        };
        let log = std::fs::read_to_string(run.path().join("log.jsonl")).unwrap_or_default();
        // A run that ends logs its end; one that succeeded with less is a lost log.
        let complete = log.contains("run-finished");
        if out.status.code() == Some(0) {
            assert!(
                complete,
                "{free_kib} KiB: log lost, yet the run succeeded: {err}"
            );
        } else if err.contains("log.jsonl could not be written") {
            lost += 1;
        }
    }
    eprintln!("{lost} size(s) reported a lost log");
}
