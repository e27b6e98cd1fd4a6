//! The engine tests' harness: a playbook made into a plan, a fresh journal, runs and
//! rollbacks of the executor against the strict fake world, and (in `every_point`) the
//! fault at every point of a run.
#![allow(dead_code, reason = "each test binary uses a part")]

pub mod every_point;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use boyong::engine::fake::{Action, FakeWorld, Fault, Point, WorldState};
use boyong::engine::journal::{HeaderFields, Journal};
use boyong::engine::state::StateDir;
use boyong::engine::{Event, Executor, History, RunOptions, RunOutcome};
use boyong::plan::Plan;
use boyong::playbook;
use boyong::secret::SecretStore;
use tokio::sync::watch;

pub const TOKEN: &str = "tok-5f1c9a77e2-never-in-state";

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub plan: Plan,
    pub secrets: SecretStore,
}

pub fn fixture(text: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.yml");
    std::fs::write(&path, text).unwrap();
    let loaded = playbook::load(&path);
    let pb = loaded
        .playbook
        .unwrap_or_else(|| panic!("test playbook invalid: {:?}", loaded.diagnostics));
    let secrets = SecretStore::from_pairs([
        ("token".to_string(), TOKEN.to_string()),
        ("vendor.password".to_string(), "pw-8c1d".to_string()),
    ]);
    Fixture {
        root: dir.path().join("state"),
        plan: boyong::steps::plan(&pb),
        secrets,
        _dir: dir,
    }
}

/// The world before any run: an old release of the app serving as `demo-web`.
pub fn start() -> WorldState {
    let mut s = WorldState::default();
    s.resources
        .insert("target:container:demo-web".into(), "old-release".into());
    s
}

/// The start world with one fault injected.
pub fn faulted(step: &str, change: usize, point: Point, action: Action) -> FakeWorld {
    let world = FakeWorld::with_state(start());
    world.inject(Fault {
        step: step.into(),
        change,
        point,
        action,
    });
    world
}

/// The world with generation numbers dropped: which step wrote each resource.
pub fn shape(s: &WorldState) -> BTreeMap<String, String> {
    s.resources
        .iter()
        .map(|(k, v)| {
            // Local artifacts live in their run's directory: keep the part after it.
            let k = k
                .find("/artifacts/")
                .map_or_else(|| k.clone(), |i| format!("local:artifact:{}", &k[i + 1..]));
            (k, v.split('#').next().unwrap_or(v).to_string())
        })
        .collect()
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

pub fn new_journal(f: &Fixture) -> PathBuf {
    let state = StateDir::new(&f.root);
    let run = state
        .create_run("demo", SystemTime::now(), rand_suffix())
        .unwrap();
    let path = run.journal_path();
    Journal::create(
        &path,
        &HeaderFields {
            run: run.id().to_string(),
            app: "demo".into(),
            playbook_sha256: f.plan.playbook_sha256.clone(),
            plan_sha256: "0".repeat(64),
            operator: "test".into(),
            host: "test".into(),
            started: SystemTime::now(),
        },
    )
    .unwrap();
    path
}

pub fn rand_suffix() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static N: AtomicU16 = AtomicU16::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Runs (or resumes) the plan; `Err` if the run panicked.
pub fn run(
    f: &Fixture,
    world: &FakeWorld,
    journal_path: &Path,
    resume: bool,
    opts: RunOptions,
    events: &mut Vec<Event>,
) -> Result<RunOutcome, ()> {
    let (j, contents) = Journal::open_append(journal_path).unwrap();
    let earlier = resume.then(|| History::from_journal(&contents));
    let (_tx, mut rx) = watch::channel(false);
    let artifacts = journal_path.parent().unwrap().join("artifacts");
    let mut sink = |e: &Event| events.push(e.clone());
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt().block_on(async {
            let mut ex = Executor::new(world, j, &mut sink, &f.secrets, artifacts);
            ex.run(&f.plan, earlier.as_ref(), opts, &mut rx)
                .await
                .unwrap()
        })
    }))
    .map_err(|_| ())
}

/// A new run of `f` without automatic rollback, interrupted (as by Ctrl-C) `after` it
/// starts.
pub fn run_interrupted(
    f: &Fixture,
    world: &FakeWorld,
    journal_path: &Path,
    after: Duration,
) -> RunOutcome {
    let (j, _) = Journal::open_append(journal_path).unwrap();
    let (tx, mut rx) = watch::channel(false);
    let mut sink = |_: &Event| {};
    rt().block_on(async {
        let mut ex = Executor::new(world, j, &mut sink, &f.secrets, PathBuf::new());
        let run = ex.run(&f.plan, None, manual(), &mut rx);
        let stop = async {
            tokio::time::sleep(after).await;
            tx.send(true).unwrap();
        };
        tokio::join!(run, stop).0.unwrap()
    })
}

pub fn rollback(
    f: &Fixture,
    world: &FakeWorld,
    journal_path: &Path,
) -> boyong::engine::RollbackReport {
    let (j, contents) = Journal::open_append(journal_path).unwrap();
    let h = History::from_journal(&contents);
    let mut sink = |_: &Event| {};
    rt().block_on(async {
        let mut ex = Executor::new(world, j, &mut sink, &f.secrets, PathBuf::new());
        ex.rollback(&h, &[], false).await.unwrap()
    })
}

pub fn quick() -> RunOptions {
    RunOptions {
        auto_rollback: true,
        retry_delay: Duration::from_millis(1),
        ..RunOptions::default()
    }
}

pub fn manual() -> RunOptions {
    RunOptions {
        auto_rollback: false,
        ..quick()
    }
}

/// The world a clean run of `text` leaves.
pub fn clean_run_shape(text: &str) -> BTreeMap<String, String> {
    let f = fixture(text);
    let world = FakeWorld::with_state(start());
    let j = new_journal(&f);
    let out = run(&f, &world, &j, false, quick(), &mut Vec::new()).unwrap();
    assert_eq!(out, RunOutcome::Succeeded);
    shape(&world.snapshot())
}
