//! The pipelined pair (a `dump` and the `restore` from it, run overlapped) against the
//! strict fake world: the restore starts while the dump writes and finishes after it;
//! every change is journaled as planned; a failure or a crash at every point of either
//! step leaves a journal that rollback undoes in full and resume finishes; a dump that
//! fails stops the restore, which is undone and run again after the dump's retry; an
//! interrupt stops both.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod engine_harness;

use std::time::Duration;

use boyong::engine::fake::{Action, FakeWorld, Point};
use boyong::engine::journal::{self, Record};
use boyong::engine::{Event, History, RunOutcome};
use engine_harness::every_point::{
    Then, after_a_fault_at_every_point, every_failure_is_rolled_back_automatically, summary,
};
use engine_harness::{
    clean_run_shape, faulted, fixture, new_journal, quick, rollback, run, run_interrupted, shape,
    start,
};

const PAIR: &str = "version: 1
app: demo
vendor:
  host: 127.0.0.1
  user: deploy
  password: { env: DEMO_SSH_PASSWORD }
vars:
  token: { env: DEMO_TOKEN }
steps:
  - id: db
    retries: 0
    dump:
      engine: mariadb
      database: izin
      user: izin
      password: \"{{ vars.token }}\"
  - id: database
    restore:
      from: db
      image: gov/mariadb:10.11
      name: demo-db
      volume: demo-data
      network: demo-net
      password: \"{{ vars.token }}\"
";

/// The records of a journal, in order.
fn records(j: &std::path::Path) -> Vec<Record> {
    journal::read(j)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.record)
        .collect()
}

fn position(rs: &[Record], what: impl Fn(&Record) -> bool) -> usize {
    rs.iter().position(what).expect("the record is there")
}

#[test]
fn the_restore_starts_while_the_dump_writes_and_every_change_is_journaled_as_planned() {
    let f = fixture(PAIR);
    let world = FakeWorld::with_state(start());
    let j = new_journal(&f);
    let out = run(&f, &world, &j, false, quick(), &mut Vec::new()).unwrap();
    assert_eq!(out, RunOutcome::Succeeded);
    let rs = records(&j);
    let dump_done = position(
        &rs,
        |r| matches!(r, Record::StepDone { step, .. } if step == "db"),
    );
    let restore_started = position(
        &rs,
        |r| matches!(r, Record::StepStarted { step } if step == "database"),
    );
    let restore_intent = position(
        &rs,
        |r| matches!(r, Record::Intent { step, .. } if step == "database"),
    );
    let restore_done = position(
        &rs,
        |r| matches!(r, Record::StepDone { step, .. } if step == "database"),
    );
    assert!(
        restore_started < dump_done && restore_intent < dump_done,
        "overlapped: {rs:#?}"
    );
    assert!(dump_done < restore_done, "the restore ends after the dump");
    // Every planned change journaled once, by its own step, in the plan's order per step.
    let h = History::from_journal(&journal::read(&j).unwrap());
    for step in &f.plan.steps {
        let journaled: Vec<String> = h
            .changes
            .iter()
            .filter(|c| c.item.step == step.id)
            .map(|c| c.item.summary())
            .collect();
        let planned: Vec<String> = step.changes.iter().map(summary).collect();
        assert_eq!(journaled, planned, "{}", step.id);
    }
    assert!(journal::verify(&j).unwrap().is_clean());
    let report = rollback(&f, &world, &j);
    assert!(report.is_complete());
    assert_eq!(world.snapshot().resources, start().resources);
}

#[test]
fn a_failure_at_every_point_of_the_pair_is_rolled_back_automatically() {
    every_failure_is_rolled_back_automatically(PAIR);
}

#[test]
fn after_a_failure_or_a_crash_at_every_point_of_the_pair_rollback_and_resume_work() {
    // The dump's outcome is journaled before the restore's: a restore that failed finds
    // the dump done and skipped.
    after_a_fault_at_every_point(
        PAIR,
        &[
            Then::Rollback,
            Then::Resume {
                starts_at_the_fault: &[Action::Fail],
            },
        ],
    );
}

#[test]
fn a_dump_that_fails_while_the_restore_reads_it_stops_the_restore_which_runs_again_after_the_retry()
{
    let text = PAIR.replace("    retries: 0\n", "    retries: 1\n");
    let f = fixture(&text);
    // After the dump announced its artifact (the restore has begun): the attempt fails.
    let world = faulted("db", 0, Point::AfterDone, Action::Fail);
    let j = new_journal(&f);
    let mut events = Vec::new();
    let out = run(&f, &world, &j, false, quick(), &mut events).unwrap();
    assert_eq!(out, RunOutcome::Succeeded);
    assert_eq!(shape(&world.snapshot()), clean_run_shape(&text));
    let rs = records(&j);
    let stopped = position(
        &rs,
        |r| matches!(r, Record::StepFailed { step, error } if step == "database" && error.starts_with("stopped")),
    );
    let dump_failed = position(
        &rs,
        |r| matches!(r, Record::StepFailed { step, .. } if step == "db"),
    );
    assert!(stopped < dump_failed, "the restore is stopped first");
    // What the stopped restore made was undone before the dump's retry.
    let undone: Vec<usize> = rs
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Record::Undone { step, .. } if step == "database"))
        .map(|(i, _)| i)
        .collect();
    let retry = rs
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Record::StepStarted { step } if step == "db"))
        .map(|(i, _)| i)
        .nth(1)
        .expect("the dump ran twice");
    assert!(
        !undone.is_empty() && undone.iter().all(|&i| i < retry),
        "{rs:#?}"
    );
    // Then the restore ran again, alone, after the dump was done.
    let started: Vec<(String, u32)> = events
        .iter()
        .filter_map(|e| match e {
            Event::StepStarted { step, attempt, .. } => Some((step.clone(), *attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        [
            ("db".to_string(), 1),
            ("database".to_string(), 1),
            ("db".to_string(), 2),
            ("database".to_string(), 1)
        ]
    );
    assert!(rollback(&f, &world, &j).is_complete());
    assert_eq!(world.snapshot().resources, start().resources);
}

#[test]
fn an_interrupt_during_the_pair_stops_both_and_rollback_undoes_both() {
    let f = fixture(PAIR);
    // The dump hangs after announcing its artifact; the restore makes its container and
    // waits for the dump's end.
    let world = faulted("db", 0, Point::AfterDone, Action::Wait);
    let j = new_journal(&f);
    let out = run_interrupted(&f, &world, &j, Duration::from_millis(300));
    assert_eq!(out, RunOutcome::Interrupted { step: "db".into() });
    let rs = records(&j);
    for step in ["db", "database"] {
        assert!(
            rs.iter().any(|r| matches!(r, Record::StepFailed { step: s, error } if s == step && error.contains("interrupted"))),
            "{step} is journaled as interrupted: {rs:#?}"
        );
    }
    assert!(
        world
            .snapshot()
            .resources
            .contains_key("target:container:demo-db"),
        "the restore had made its container"
    );
    assert!(rollback(&f, &world, &j).is_complete());
    assert_eq!(world.snapshot().resources, start().resources);
}
