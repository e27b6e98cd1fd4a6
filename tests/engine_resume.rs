//! `run --resume` after an edit of the playbook, against the strict fake world: the step
//! diff (resolved steps, not text), the steps before the first changed one kept, the rest
//! undone and redone, the edit saved and journaled, rollback still undoing everything,
//! and the refusals (a command without undo that would run twice, a restored database
//! the app has used) that change nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod engine_harness;

use std::path::{Path, PathBuf};

use boyong::engine::fake::{Action, FakeWorld, Fault, Point};
use boyong::engine::journal::{self, Record};
use boyong::engine::open::{EDITED, OpenedRun, ResumeRefusal, Who, create_run, reopen_run};
use boyong::engine::state::StateDir;
use boyong::engine::{Event, Executor, History, RunOptions, RunOutcome};
use boyong::plan::{Plan, StepChange};
use boyong::playbook::{self, Playbook};
use engine_harness::{TOKEN, quick, rt, start};
use tokio::sync::watch;

const PLAYBOOK: &str = include_str!("../fixtures/engine/demo.yml");

/// A playbook file in a temporary directory, its state directory beside it.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> StateDir {
        StateDir::new(self.tmp.path().join("state"))
    }

    fn load(&self, text: &str) -> (Playbook, Plan) {
        let path = self.tmp.path().join("demo.yml");
        std::fs::write(&path, text).unwrap();
        let pb = playbook::load(&path)
            .playbook
            .unwrap_or_else(|| panic!("test playbook invalid:\n{text}"));
        let plan = boyong::steps::plan(&pb);
        (pb, plan)
    }

    /// A new run of `text` in `world`, without automatic rollback.
    fn first(&self, text: &str, world: &FakeWorld) -> (RunOutcome, PathBuf) {
        let (pb, mut plan) = self.load(text);
        let opened = create_run(&self.state(), &pb, text, &mut plan, &who(), None).unwrap();
        let run = opened.run.path().to_path_buf();
        (execute(opened, &plan, world, &mut Vec::new()), run)
    }

    fn reopen(&self, text: &str) -> Result<(OpenedRun, Plan), ResumeRefusal> {
        let (pb, mut plan) = self.load(text);
        reopen_run(&self.state(), &pb, text, &mut plan, &who(), None).map(|o| (o, plan))
    }
}

fn who() -> Who {
    Who {
        operator: "andi".into(),
        host: "srv1".into(),
    }
}

fn secrets() -> boyong::secret::SecretStore {
    boyong::secret::SecretStore::from_pairs([
        ("token".to_string(), TOKEN.to_string()),
        ("vendor.password".to_string(), "pw-8c1d".to_string()),
    ])
}

fn execute(
    opened: OpenedRun,
    plan: &Plan,
    world: &FakeWorld,
    events: &mut Vec<Event>,
) -> RunOutcome {
    let opts = RunOptions {
        auto_rollback: false,
        redo_from: opened.redo_from,
        ..quick()
    };
    let secrets = secrets();
    let (_tx, mut rx) = watch::channel(false);
    let mut sink = |e: &Event| events.push(e.clone());
    rt().block_on(async {
        let mut ex = Executor::new(
            world,
            opened.journal,
            &mut sink,
            &secrets,
            opened.run.artifacts_dir(),
        );
        ex.run(plan, opened.earlier.as_ref(), opts, &mut rx)
            .await
            .unwrap()
    })
}

fn faulted(step: &str, change: usize, point: Point) -> FakeWorld {
    let world = FakeWorld::with_state(start());
    world.inject(Fault {
        step: step.into(),
        change,
        point,
        action: Action::Fail,
    });
    world
}

fn skipped(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StepSkipped { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

fn history(run: &Path) -> History {
    History::from_journal(&journal::read(&run.join("journal.jsonl")).unwrap())
}

/// The demo with a new step `config` (two lines of YAML and its body) before `image`,
/// and `image`'s command changed.
fn edited() -> String {
    PLAYBOOK
        .replace(
            "  - id: image\n",
            "  - id: config\n    exec: { run: touch /srv/app/.env, undo: rm -f /srv/app/.env }\n  - id: image\n",
        )
        .replace(r#"cmd: ["httpd", "-f"]"#, r#"cmd: ["httpd", "-f", "-v"]"#)
}

#[test]
fn the_step_diff_compares_resolved_steps_in_playbook_order_and_shows_no_value() {
    let d = Dir::new();
    let (_, old) = d.load(PLAYBOOK);
    // Comments and layout are no change.
    let (_, same) = d.load(&PLAYBOOK.replace("# The engine's", "#  The engine's"));
    assert!(old.step_diff(&same).is_empty());
    assert_eq!(old.step_diff(&same).redo_from, 4);

    let text = edited()
        .replace("  - id: maint\n", "  - id: maint2\n")
        .replace(
            "TOKEN: \"{{ vars.token }}\"",
            "TOKEN: \"{{ vars.token }}x\"",
        );
    let (_, new) = d.load(&text);
    let diff = old.step_diff(&new);
    assert_eq!(
        diff.to_string(),
        "  = code    unchanged\n  - maint   removed\n  + maint2  new\n  + config  new\n  ~ image   changed: build.cmd\n  = web     unchanged\n"
    );
    assert_eq!(diff.redo_from, 1);
    assert_eq!(
        diff.line("maint2").unwrap().change,
        StepChange::New,
        "a renamed step is a new one"
    );
    assert!(!diff.to_string().contains(TOKEN));
    // Which secret a field uses is not in a plan (`***`): a resume reads the playbooks.
    let pick = |p: &str| {
        p.replace(
            "  token: { env: DEMO_TOKEN }\n",
            "  token: { env: DEMO_TOKEN }\n  other: { env: DEMO_TOKEN }\n",
        )
    };
    let (_, a) = d.load(&pick(PLAYBOOK));
    let (_, b) = d.load(&pick(PLAYBOOK).replace("{{ vars.token }}", "{{ vars.other }}"));
    assert!(a.step_diff(&b).is_empty());
    let (pa, pb) = (
        playbook::parse(Path::new("a.yml"), pick(PLAYBOOK).as_bytes())
            .playbook
            .unwrap(),
        playbook::parse(
            Path::new("b.yml"),
            pick(PLAYBOOK)
                .replace("{{ vars.token }}", "{{ vars.other }}")
                .as_bytes(),
        )
        .playbook
        .unwrap(),
    );
    assert_eq!(
        boyong::plan::secret_paths(&pa.steps[1], &pb.steps[1]),
        ["exec.env.TOKEN"]
    );
    assert!(boyong::plan::secret_paths(&pa.steps[2], &pb.steps[2]).is_empty());
    // A changed secret's place shows by its field, never its value.
    let (_, env) = d.load(&PLAYBOOK.replace("{{ vars.token }}", "{{ vars.token }}-2"));
    assert_eq!(
        old.step_diff(&env).to_string().lines().nth(1).unwrap(),
        "  ~ maint  changed: exec.env.TOKEN"
    );
    // The vendor moved: every step that reads it changed.
    let (_, moved) = d.load(&PLAYBOOK.replace("host: 127.0.0.1", "host: 127.0.0.2"));
    let diff = old.step_diff(&moved);
    assert_eq!(
        diff.line("code").unwrap().change,
        StepChange::Changed(vec!["vendor".into()])
    );
    assert_eq!(diff.line("image").unwrap().change, StepChange::Unchanged);
}

#[test]
fn resume_after_an_edit_keeps_the_steps_before_it_and_redoes_the_rest_and_rollback_undoes_all() {
    let d = Dir::new();
    let world = faulted("web", 0, Point::AfterDone);
    let (out, run) = d.first(PLAYBOOK, &world);
    assert!(
        matches!(out, RunOutcome::Failed { ref step, .. } if step == "web"),
        "{out:?}"
    );
    let image_before = world.snapshot().resources.clone();

    let (opened, plan) = d.reopen(&edited()).unwrap();
    let edit = opened.edit.clone().unwrap();
    assert_eq!(edit.version, 2);
    assert_eq!(
        opened.redo_from,
        Some(2),
        "redone from the new step `config`"
    );
    let mut events = Vec::new();
    let out = execute(opened, &plan, &world, &mut events);
    assert_eq!(out, RunOutcome::Succeeded);
    assert_eq!(skipped(&events), ["code", "maint"]);

    // The image of the first version was undone, then made again; one of it is left.
    let now = world.snapshot().resources;
    let images: Vec<&String> = now.keys().filter(|k| k.contains(":image:")).collect();
    assert_eq!(images.len(), 1, "{now:?}");
    let image_key = images[0].clone();
    assert_ne!(
        now[&image_key], image_before[&image_key],
        "the image was built again"
    );
    assert!(now.keys().any(|k| k.contains(".env")), "{now:?}");

    // The journal has the edit, saved beside the first version.
    let contents = journal::read(&run.join("journal.jsonl")).unwrap();
    let note = contents
        .entries
        .iter()
        .find_map(|e| match &e.record {
            Record::Note { kind, text } if kind == EDITED => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    assert!(note.contains("steps from `config` on are redone"), "{note}");
    assert!(
        note.contains("  + config  new\n  ~ image   changed: build.cmd\n"),
        "{note}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("playbook.yml")).unwrap(),
        PLAYBOOK
    );
    assert_eq!(
        std::fs::read_to_string(run.join("playbook.v2.yml")).unwrap(),
        edited()
    );
    assert!(run.join("plan.v2.json").is_file());
    // The report reads the latest version's plan: the new step is in it, with its kind.
    let report = boyong::report::Report::from_run_dir(&run).unwrap();
    let config = report.steps.iter().find(|s| s.id == "config");
    assert_eq!(
        config.map(|s| s.kind.as_str()),
        Some("exec"),
        "{:?}",
        report.steps.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    assert!(
        journal::verify(&run.join("journal.jsonl"))
            .unwrap()
            .is_clean()
    );

    // A rollback undoes what both versions left in place: the world is as it began.
    let h = history(&run);
    let (j, _) = journal::Journal::open_append(&run.join("journal.jsonl")).unwrap();
    let secrets = secrets();
    let mut sink = |_: &Event| {};
    let report = rt().block_on(async {
        let mut ex = Executor::new(&world, j, &mut sink, &secrets, PathBuf::new());
        ex.rollback(&h, &[], false).await.unwrap()
    });
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(world.snapshot().resources, start().resources);
}

#[test]
fn an_edit_that_would_run_a_command_without_undo_again_is_refused_naming_it() {
    let no_undo = PLAYBOOK.replace("      undo: rm -f /srv/app/.maintenance\n", "");
    let d = Dir::new();
    let world = faulted("web", 0, Point::AfterDone);
    let (_, run) = d.first(&no_undo, &world);
    let journal_before = std::fs::read(run.join("journal.jsonl")).unwrap();
    let world_before = world.snapshot();

    // `code` changed: `maint`, made and without undo, would run a second time.
    let text = no_undo.replace(
        "fetch: { path: /srv/app }",
        "fetch: { path: /srv/app, exclude: [logs/] }",
    );
    let e = d.reopen(&text).unwrap_err();
    let ResumeRefusal::PlaybookChanged { why, diff, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        why.contains("step `maint` made a change that has no undo"),
        "{why}"
    );
    assert_eq!(
        diff.lines().next(),
        Some("  ~ code   changed: fetch.exclude")
    );
    let msg = e.to_string();
    assert!(msg.contains("the playbook changed since run"), "{msg}");
    assert!(
        msg.lines().count() < 10,
        "a plain diff, one line a step:\n{msg}"
    );
    // Nothing changed: no new version, no journal record, the same world.
    assert!(!run.join("playbook.v2.yml").exists());
    assert_eq!(
        std::fs::read(run.join("journal.jsonl")).unwrap(),
        journal_before
    );
    assert_eq!(world.snapshot(), world_before);

    // An edit after it is taken.
    let text = no_undo.replace(r#"cmd: ["httpd", "-f"]"#, r#"cmd: ["httpd"]"#);
    let (opened, plan) = d.reopen(&text).unwrap();
    assert_eq!(opened.redo_from, Some(2));
    let mut events = Vec::new();
    assert_eq!(
        execute(opened, &plan, &world, &mut events),
        RunOutcome::Succeeded
    );
    assert_eq!(skipped(&events), ["code", "maint"]);
}

#[test]
fn a_crash_after_the_edit_was_journaled_still_redoes_the_changed_steps() {
    let d = Dir::new();
    let world = faulted("web", 0, Point::AfterDone);
    let (_, run) = d.first(PLAYBOOK, &world);
    let text = PLAYBOOK.replace(r#"cmd: ["httpd", "-f"]"#, r#"cmd: ["httpd"]"#);
    // The edit is accepted and journaled, then the process dies before any step ran.
    let (opened, _) = d.reopen(&text).unwrap();
    drop(opened);
    assert_eq!(history(&run).edits, 1);
    // The next resume has the same text: no new edit, but `image`, done before the edit,
    // is not skipped.
    let (opened, plan) = d.reopen(&text).unwrap();
    assert_eq!(opened.edit, None);
    assert_eq!(opened.redo_from, Some(2));
    let mut events = Vec::new();
    assert_eq!(
        execute(opened, &plan, &world, &mut events),
        RunOutcome::Succeeded
    );
    assert_eq!(skipped(&events), ["code", "maint"]);
    // Once redone, a later resume keeps it.
    let h = history(&run);
    assert!(!h.done_before_last_edit("image"));
}

#[test]
fn a_second_edit_after_a_crash_still_redoes_what_the_first_one_changed() {
    let d = Dir::new();
    let world = faulted("web", 0, Point::AfterDone);
    d.first(PLAYBOOK, &world);
    let one = PLAYBOOK.replace(r#"cmd: ["httpd", "-f"]"#, r#"cmd: ["httpd"]"#);
    let (opened, _) = d.reopen(&one).unwrap();
    assert_eq!(opened.redo_from, Some(2));
    drop(opened);
    // The second edit changes only `web`; `image` is still the first version's.
    let two = one.replace("network: demo-net", "network: demo-net2");
    let (opened, plan) = d.reopen(&two).unwrap();
    assert_eq!(opened.edit.as_ref().unwrap().version, 3);
    assert_eq!(opened.edit.as_ref().unwrap().diff.redo_from, 3);
    assert_eq!(opened.redo_from, Some(2));
    let mut events = Vec::new();
    assert_eq!(
        execute(opened, &plan, &world, &mut events),
        RunOutcome::Succeeded
    );
    assert_eq!(skipped(&events), ["code", "maint"]);
}

#[test]
fn an_edit_that_would_redo_a_restore_the_app_has_used_is_refused() {
    let text = PLAYBOOK.replace(
        "  - id: image\n",
        "  - id: db\n    dump: { engine: mariadb, database: d, user: u, password: \"{{ vars.token }}\" }\n  - id: database\n    restore: { from: db, image: gov/mariadb:10.11, name: demo-db, volume: demo-data, network: demo-net, password: \"{{ vars.token }}\" }\n  - id: image\n",
    ) + "  - id: after\n    exec: { run: \"true\", undo: \"true\" }\n";
    let d = Dir::new();
    let world = faulted("after", 0, Point::AfterDone);
    let (out, _) = d.first(&text, &world);
    assert!(
        matches!(out, RunOutcome::Failed { ref step, .. } if step == "after"),
        "{out:?}"
    );
    // `db` changed: `database` would be undone after `web` cut over to it.
    let e = d
        .reopen(&text.replace("user: u,", "user: u2,"))
        .unwrap_err();
    let ResumeRefusal::PlaybookChanged { why, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        why.contains(
            "step `database` restored a database that the app has used since step `web` cut over"
        ),
        "{why}"
    );
    // Changing only what follows the cut-over is taken.
    let (opened, _) = d
        .reopen(&text.replace("run: \"true\", undo", "run: \"true \", undo"))
        .unwrap();
    assert_eq!(opened.redo_from, Some(6));
}

#[test]
fn a_resume_sees_a_field_that_now_uses_another_secret() {
    let with_other = PLAYBOOK.replace(
        "  token: { env: DEMO_TOKEN }\n",
        "  token: { env: DEMO_TOKEN }\n  other: { env: DEMO_TOKEN }\n",
    );
    let d = Dir::new();
    let world = faulted("web", 0, Point::AfterDone);
    d.first(&with_other, &world);
    let (opened, _) = d
        .reopen(&with_other.replace("{{ vars.token }}", "{{ vars.other }}"))
        .unwrap();
    let edit = opened.edit.unwrap();
    assert_eq!(
        edit.diff.line("maint").unwrap().change,
        StepChange::Changed(vec!["exec.env.TOKEN".into()])
    );
    assert_eq!(opened.redo_from, Some(1));
    assert!(!edit.diff.to_string().contains(TOKEN));
}
