//! Fault injection at every point of a run, against the strict fake world: for each
//! change of each step, a failure and a panic before the intent, after the intent,
//! after the change and after the `done`; then rollback returns the world to its start
//! and resume finishes the run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod engine_harness;

use std::time::Duration;

use boyong::engine::fake::{Action, FakeWorld, Fault, Point};
use boyong::engine::history::ChangeState;
use boyong::engine::journal::{self};
use boyong::engine::{Event, History, RunOutcome, RunResult};
use engine_harness::every_point::{
    Then, after_a_fault_at_every_point, every_failure_is_rolled_back_automatically, started,
    summary,
};
use engine_harness::{
    TOKEN, clean_run_shape, faulted, fixture, manual, new_journal, quick, rollback, run,
    run_interrupted, shape, start,
};

const PLAYBOOK: &str = include_str!("../fixtures/engine/demo.yml");

#[test]
fn a_clean_run_changes_what_the_plan_lists_and_rollback_undoes_it() {
    let f = fixture(PLAYBOOK);
    let world = FakeWorld::with_state(start());
    let j = new_journal(&f);
    let out = run(&f, &world, &j, false, quick(), &mut Vec::new()).unwrap();
    assert_eq!(out, RunOutcome::Succeeded);
    let after = shape(&world.snapshot());
    assert_eq!(after["target:container:demo-web"], "web");
    assert!(after.contains_key("target:network:demo-net"));
    assert!(
        after.contains_key("local:artifact:artifacts/code/"),
        "{after:?}"
    );
    // Every change the plan lists was journaled, in order.
    let contents = journal::read(&j).unwrap();
    let h = History::from_journal(&contents);
    let journaled: Vec<String> = h.changes.iter().map(|c| c.item.summary()).collect();
    let planned: Vec<String> = f
        .plan
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .map(summary)
        .collect();
    assert_eq!(journaled, planned);
    assert_eq!(h.result, Some(RunResult::Succeeded));

    let report = rollback(&f, &world, &j);
    assert!(report.is_complete());
    assert_eq!(report.undone.len(), planned.len());
    assert_eq!(world.snapshot().resources, start().resources);
    // A second rollback finds nothing to do.
    let again = rollback(&f, &world, &j);
    assert!(again.undone.is_empty() && again.is_complete());
    assert_eq!(world.snapshot().resources, start().resources);
    assert!(journal::verify(&j).unwrap().is_clean());
}

#[test]
fn a_failure_at_every_point_is_rolled_back_automatically() {
    every_failure_is_rolled_back_automatically(PLAYBOOK);
}

#[test]
fn after_a_failure_or_a_crash_at_every_point_rollback_restores_the_start() {
    after_a_fault_at_every_point(PLAYBOOK, &[Then::Rollback]);
}

#[test]
fn after_a_failure_or_a_crash_at_every_point_resume_finishes_the_run() {
    // Steps before the faulted one are not run again, after a failure or a crash.
    after_a_fault_at_every_point(
        PLAYBOOK,
        &[Then::Resume {
            starts_at_the_fault: &[Action::Fail, Action::Panic],
        }],
    );
}

#[test]
fn interrupt_stops_the_step_in_flight_and_leaves_a_journal_rollback_can_use() {
    let f = fixture(PLAYBOOK);
    let world = faulted("image", 0, Point::AfterChange, Action::Wait);
    let j = new_journal(&f);
    let out = run_interrupted(&f, &world, &j, Duration::from_millis(200));
    assert_eq!(
        out,
        RunOutcome::Interrupted {
            step: "image".into()
        }
    );
    let h = History::from_journal(&journal::read(&j).unwrap());
    assert_eq!(h.result, Some(RunResult::Interrupted));
    assert!(
        h.changes
            .iter()
            .any(|c| c.item.step == "image" && c.state == ChangeState::Failed),
        "the change in flight is marked failed: {:?}",
        h.changes
    );
    assert!(rollback(&f, &world, &j).is_complete());
    assert_eq!(world.snapshot().resources, start().resources);
}

#[test]
fn a_step_past_its_timeout_fails_and_is_rolled_back() {
    let text = PLAYBOOK.replace("  - id: image\n", "  - id: image\n    timeout: 1s\n");
    let f = fixture(&text);
    let world = faulted("image", 0, Point::AfterIntent, Action::Wait);
    let j = new_journal(&f);
    let out = run(&f, &world, &j, false, quick(), &mut Vec::new()).unwrap();
    let RunOutcome::Failed {
        error,
        rollback: Some(r),
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(error.contains("timeout of 1s"), "{error}");
    assert!(r.is_complete());
    assert_eq!(world.snapshot().resources, start().resources);
}

#[test]
fn a_retried_step_undoes_its_first_attempt_then_succeeds() {
    let text = PLAYBOOK.replace("  - id: web\n", "  - id: web\n    retries: 1\n");
    let f = fixture(&text);
    let world = faulted("web", 1, Point::AfterChange, Action::Fail);
    let j = new_journal(&f);
    let mut events = Vec::new();
    let out = run(&f, &world, &j, false, quick(), &mut events).unwrap();
    assert_eq!(out, RunOutcome::Succeeded);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::StepFailed {
            will_retry: true,
            ..
        }
    )));
    assert!(
        events.iter().any(
            |e| matches!(e, Event::RollbackStarted { reason, .. } if reason == "before retry")
        )
    );
    assert_eq!(shape(&world.snapshot()), clean_run_shape(PLAYBOOK));
}

#[test]
fn a_world_slow_to_settle_is_waited_for_before_an_undo_and_the_wait_is_said_once() {
    let f = fixture(PLAYBOOK);
    let world = faulted("code", 0, Point::AfterChange, Action::Fail);
    world.inject(Fault {
        step: "code".into(),
        change: 0,
        point: Point::Settle,
        action: Action::Slow,
    });
    let j = new_journal(&f);
    let mut events = Vec::new();
    let out = run(&f, &world, &j, false, quick(), &mut events).unwrap();
    assert!(
        matches!(&out, RunOutcome::Failed { rollback: Some(r), .. } if r.is_complete()),
        "{out:?}"
    );
    let at = |want: fn(&Event) -> bool| events.iter().position(want);
    let waiting = at(|e| matches!(e, Event::Waiting { .. })).expect("the wait is said");
    assert_eq!(
        events[waiting],
        Event::Waiting {
            on: vec!["change 0 of step `code` (an injected fault)".into()]
        }
    );
    let undoing = at(|e| matches!(e, Event::Undoing { .. })).expect("an undo");
    let undone = at(|e| matches!(e, Event::Undone { .. })).expect("an undo done");
    assert!(
        undoing < waiting && waiting < undone,
        "the wait comes between the undo's announcement and its end: {events:#?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Waiting { .. }))
            .count(),
        1,
        "the world settles once; no later wait is said"
    );
    assert_eq!(world.snapshot().resources, start().resources);
}

#[test]
fn a_rollback_that_fails_part_way_says_what_is_left_and_a_second_one_finishes() {
    let f = fixture(PLAYBOOK);
    let world = FakeWorld::with_state(start());
    let j = new_journal(&f);
    assert_eq!(
        run(&f, &world, &j, false, quick(), &mut Vec::new()).unwrap(),
        RunOutcome::Succeeded
    );
    world.inject(Fault {
        step: "maint".into(),
        change: 0,
        point: Point::Undo,
        action: Action::Fail,
    });
    let report = rollback(&f, &world, &j);
    assert!(!report.is_complete());
    let (failed, _) = report.failed.clone().unwrap();
    assert_eq!(failed.step, "maint");
    // Left: maint's change and code's, newest first.
    let left: Vec<&str> = report.left.iter().map(|i| i.step.as_str()).collect();
    assert_eq!(left, ["maint", "code"]);
    let h = History::from_journal(&journal::read(&j).unwrap());
    assert_eq!(h.result, Some(RunResult::RollbackIncomplete));
    let second = rollback(&f, &world, &j);
    assert!(second.is_complete());
    assert_eq!(second.undone.len(), 2);
    assert_eq!(world.snapshot().resources, start().resources);
}

#[test]
fn resume_runs_again_a_done_step_whose_results_are_gone() {
    let f = fixture(PLAYBOOK);
    let world = faulted("web", 0, Point::AfterIntent, Action::Fail);
    let j = new_journal(&f);
    let _ = run(&f, &world, &j, false, manual(), &mut Vec::new()).unwrap();
    world
        .tamper_remove("target:image:boyong/demo-image:<run-id>")
        .unwrap();
    let mut events = Vec::new();
    assert_eq!(
        run(&f, &world, &j, true, manual(), &mut events).unwrap(),
        RunOutcome::Succeeded
    );
    assert_eq!(started(&events), ["image", "web"]);
    assert_eq!(shape(&world.snapshot()), clean_run_shape(PLAYBOOK));
}

#[test]
fn secrets_reach_the_far_side_but_never_the_journal_or_the_events() {
    let f = fixture(PLAYBOOK);
    let world = FakeWorld::with_state(start());
    let j = new_journal(&f);
    let mut events = Vec::new();
    world.inject(Fault {
        step: "web".into(),
        change: 2,
        point: Point::AfterChange,
        action: Action::Fail,
    });
    let _ = run(&f, &world, &j, false, quick(), &mut events).unwrap();
    assert!(
        world.snapshot().delivered.iter().any(|d| d.contains(TOKEN)),
        "the secret was not delivered"
    );
    let text = std::fs::read_to_string(&j).unwrap();
    assert!(!text.contains(TOKEN));
    let ev = serde_json::to_string(&events).unwrap();
    assert!(!ev.contains(TOKEN));
    assert!(ev.contains("TOKEN=***"), "{ev}");
}

#[test]
fn resume_redoes_every_step_after_one_whose_results_are_gone_undoing_them_newest_first() {
    let f = fixture(PLAYBOOK);
    let world = faulted("web", 0, Point::AfterIntent, Action::Fail);
    let j = new_journal(&f);
    let _ = run(&f, &world, &j, false, manual(), &mut Vec::new()).unwrap();
    let artifact = world
        .snapshot()
        .resources
        .into_keys()
        .find(|k| k.starts_with("local:artifact:"))
        .unwrap();
    world.tamper_remove(&artifact).unwrap();
    let mut events = Vec::new();
    assert_eq!(
        run(&f, &world, &j, true, manual(), &mut events).unwrap(),
        RunOutcome::Succeeded
    );
    assert_eq!(started(&events), ["code", "maint", "image", "web"]);
    // The later steps' earlier changes were undone before the redo, newest first.
    let undone: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Undoing { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(undone, ["web", "image", "maint", "code"]);
    assert_eq!(shape(&world.snapshot()), clean_run_shape(PLAYBOOK));
    assert!(rollback(&f, &world, &j).is_complete());
    assert_eq!(world.snapshot().resources, start().resources);
}
