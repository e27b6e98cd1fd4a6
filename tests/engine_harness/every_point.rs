//! The fault at every point, once for every engine test: each change of each step of a
//! plan, before its intent, after its intent, after the change and after its `done`, a
//! failure or a crash; then what must hold after it (the run rolled back by itself, or a
//! rollback by hand, or a resume and then a rollback).

use boyong::engine::fake::{Action, FakeWorld, Fault, Point};
use boyong::engine::journal;
use boyong::engine::{Event, History, RunOutcome, RunResult};
use boyong::plan::Plan;

use super::{clean_run_shape, fixture, manual, new_journal, quick, rollback, run, shape, start};

/// Every (step, change index) of the plan.
pub fn points_of(plan: &Plan) -> Vec<(String, usize)> {
    plan.steps
        .iter()
        .flat_map(|s| (0..s.changes.len()).map(|i| (s.id.clone(), i)))
        .collect()
}

pub const POINTS: [Point; 4] = [
    Point::BeforeIntent,
    Point::AfterIntent,
    Point::AfterChange,
    Point::AfterDone,
];

/// Every fault case: each change of each step, each point, each action given. Returns
/// the fault and a name for messages.
pub fn cases(plan: &Plan, actions: &[Action]) -> Vec<(Fault, String)> {
    let mut out = Vec::new();
    for (step, change) in points_of(plan) {
        for point in POINTS {
            for &action in actions {
                let name = format!("{step}:{change}:{point:?}:{action:?}");
                out.push((
                    Fault {
                        step: step.clone(),
                        change,
                        point,
                        action,
                    },
                    name,
                ));
            }
        }
    }
    out
}

/// A failure at every point of `text`'s plan, on runs that roll back by themselves: each
/// run fails at the faulted step, its rollback is complete, the world is as it started,
/// and the journal says rolled back, with nothing pending.
pub fn every_failure_is_rolled_back_automatically(text: &str) {
    let f = fixture(text);
    for (fault, case) in cases(&f.plan, &[Action::Fail]) {
        let step = fault.step.clone();
        let world = FakeWorld::with_state(start());
        world.inject(fault);
        let j = new_journal(&f);
        let out = run(&f, &world, &j, false, quick(), &mut Vec::new()).unwrap();
        let RunOutcome::Failed {
            step: failed,
            rollback: Some(r),
            ..
        } = out
        else {
            panic!("{case}: expected a failure rolled back, got {out:?}");
        };
        assert_eq!(failed, step, "{case}");
        assert!(r.is_complete(), "{case}: {r:?}");
        assert_eq!(world.snapshot().resources, start().resources, "{case}");
        let h = History::from_journal(&journal::read(&j).unwrap());
        assert_eq!(h.result, Some(RunResult::RolledBack), "{case}");
        assert!(h.pending().is_empty(), "{case}");
    }
}

/// What is done after a fault left a run failed or crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// A rollback by hand.
    Rollback,
    /// A resume, then a rollback. The resumed run starts at the faulted step when the
    /// fault's action is in `starts_at_the_fault` (steps before it are not run again).
    Resume {
        starts_at_the_fault: &'static [Action],
    },
}

/// A failure and a crash at every point of `text`'s plan, on runs that do not roll back
/// by themselves: a failure is reported as such, a crash is a panic, and either leaves a
/// journal that verifies. Then, for each of `then`: a resume (if asked) finishes the run
/// as a clean run would have; a rollback restores the start completely, and a second one
/// finds nothing to do.
pub fn after_a_fault_at_every_point(text: &str, then: &[Then]) {
    let clean = clean_run_shape(text);
    let f = fixture(text);
    for (fault, case) in cases(&f.plan, &[Action::Fail, Action::Panic]) {
        for &then in then {
            let action = fault.action;
            let world = FakeWorld::with_state(start());
            world.inject(fault.clone());
            let j = new_journal(&f);
            let out = run(&f, &world, &j, false, manual(), &mut Vec::new());
            match action {
                Action::Panic => assert!(out.is_err(), "{case}: expected a crash"),
                _ => assert!(
                    matches!(out, Ok(RunOutcome::Failed { rollback: None, .. })),
                    "{case}: {out:?}"
                ),
            }
            // The journal a crash leaves still verifies.
            assert!(journal::verify(&j).unwrap().is_intact(), "{case}");
            if let Then::Resume {
                starts_at_the_fault,
            } = then
            {
                let mut events = Vec::new();
                let out = run(&f, &world, &j, true, manual(), &mut events).unwrap();
                assert_eq!(out, RunOutcome::Succeeded, "{case}");
                assert_eq!(shape(&world.snapshot()), clean, "{case}");
                if starts_at_the_fault.contains(&action) {
                    let first = started(&events).into_iter().next();
                    assert_eq!(first.as_deref(), Some(fault.step.as_str()), "{case}");
                }
            }
            let report = rollback(&f, &world, &j);
            assert!(report.is_complete(), "{case}: {report:?}");
            assert_eq!(world.snapshot().resources, start().resources, "{case}");
            assert!(
                rollback(&f, &world, &j).undone.is_empty(),
                "{case}: second rollback"
            );
        }
    }
}

/// The steps the events show started, in order.
pub fn started(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StepStarted { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

/// A planned change as the journal's history sums it up (its changes' `item.summary()`).
pub fn summary(c: &boyong::plan::Change) -> String {
    format!(
        "{} {} {} ({})",
        c.op.mark(),
        c.resource.word(),
        c.name,
        serde_json::to_value(c.place).unwrap().as_str().unwrap()
    )
}
