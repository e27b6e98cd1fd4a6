//! `deploy` against the real Docker Engine: a health-gated cut-over from a serving
//! container to a new one, hardened; rollback puts the old one back, serving; an
//! unhealthy new one is kept aside (`--no-auto-rollback`) and the old one serves again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::docker::{HoldingProxy, docker, inspect, web_image};
use support::env::Env;
use support::{serves as get, text};

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

impl Env {
    /// The engine with busybox, and the app as it runs today: `name`, serving "old" on `port`.
    fn new(test: &str) -> Option<Self> {
        let env = Self::builder(test).busybox().plan_fidelity().build()?;
        let old = web_image(env.label(), "old", "old");
        let p = format!("127.0.0.1:{}:8080", env.port);
        let run = docker(&[
            "run",
            "-d",
            "--name",
            &env.name,
            "--label",
            &env.label().arg(),
            "-p",
            &p,
            &old,
        ]);
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert_eq!(get(env.port), "old");
        Some(env)
    }

    fn playbook(&self, image: &str, health_path: &str) -> PathBuf {
        self.write(
            "web.yml",
            format!(
                "version: 1\napp: webtest\nvendor: {{ host: 127.0.0.1, user: x, identity: none, known_hosts: none }}\nsteps:\n  - id: web\n    deploy:\n      image: {image}\n      name: {}\n      ports: [\"127.0.0.1:{}:8080\"]\n      health:\n        http: http://127.0.0.1:{}{health_path}\n        timeout: 4s\n        interval: 1s\n",
                self.name, self.port, self.port
            ),
        )
    }

    /// The old release's container id, and a playbook deploying a new image (serving
    /// "new") health-checked at `health_path`.
    fn new_release(&self, health_path: &str) -> (Value, PathBuf) {
        let old_id = inspect(&self.name).unwrap()["Id"].clone();
        let new = web_image(self.label(), "new", "new");
        (old_id, self.playbook(&new, health_path))
    }

    /// `pb` reaches the engine through `proxy`.
    fn through(pb: &std::path::Path, proxy: &HoldingProxy) {
        support::edit_file(
            pb,
            "steps:",
            &format!(
                "target: {{ docker: \"unix://{}\" }}\nsteps:",
                proxy.socket.display()
            ),
        );
    }

    /// The app as it ran before the test serves again, the same container (`old_id`), the
    /// only one of this test left.
    fn assert_the_old_one_serves_alone(&self, old_id: &Value) {
        assert_eq!(get(self.port), "old");
        assert_eq!(inspect(&self.name).unwrap()["Id"], *old_id);
        assert_eq!(
            self.containers(),
            std::slice::from_ref(&self.name),
            "only the old container is left"
        );
    }

    /// The order the cut-over relies on, as the (only) run's journal shows it: the new
    /// container is created (intent, done) and the old one's stop is journaled (intent)
    /// before the stop, so nothing is journaled between the stop and the new one's start;
    /// the stop's `done` comes after, with how long the stop and the start took.
    fn assert_cut_over_order(&self) {
        let run = self.last_run("webtest");
        let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
        let records: Vec<Value> = journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let pos = |f: &dyn Fn(&Value) -> bool| records.iter().position(f);
        let intent = |name: &str, detail: &str| {
            let (name, detail) = (name.to_string(), detail.to_string());
            move |r: &Value| {
                r["type"] == "intent"
                    && r["change"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with(&name)
                    && r["change"]["details"].to_string().contains(&detail)
            }
        };
        let id_of = |i: usize| records[i]["change_id"].clone();
        let done_of = |id: &Value| pos(&|r| r["type"] == "done" && r["change_id"] == *id);
        let create = pos(&intent(&format!("{}.next-", self.name), "")).expect("create intent");
        let create_done = done_of(&id_of(create)).expect("create done");
        let stop = pos(&intent(&self.name, "stop the current")).expect("stop intent");
        let stop_done = done_of(&id_of(stop)).expect("stop done");
        assert!(
            create < create_done && create_done < stop && stop + 1 == stop_done,
            "create {create}, its done {create_done}, stop {stop}, its done {stop_done}: {journal}"
        );
        let facts = &records[stop_done]["facts"];
        assert!(
            facts["stop_ms"].is_u64() && facts["then_start_ms"].is_u64(),
            "{facts}"
        );
    }
}

#[test]
fn a_healthy_cut_over_serves_the_new_app_hardened_and_rollback_brings_back_the_old() {
    let Some(env) = Env::new("cutover") else {
        return;
    };
    let (old_id, pb) = env.new_release("/");
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(get(env.port), "new");
    env.assert_cut_over_order();

    let c = inspect(&env.name).unwrap();
    assert_ne!(c["Id"], old_id);
    let h = &c["HostConfig"];
    assert_eq!(h["ReadonlyRootfs"], true);
    assert_eq!(h["CapDrop"], serde_json::json!(["ALL"]));
    assert!(h["SecurityOpt"].to_string().contains("no-new-privileges"));
    assert_eq!(h["Memory"], 512 * 1024 * 1024);
    assert_eq!(h["PidsLimit"], 256);
    assert_eq!(h["RestartPolicy"]["Name"], "unless-stopped");
    assert_eq!(h["LogConfig"]["Type"], "json-file");
    assert_eq!(c["Config"]["Labels"]["boyong.app"], "webtest");
    let names = env.containers();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("{}.prev-", env.name))),
        "{names:?}"
    );

    let rb = env.rollback("webtest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    env.assert_the_old_one_serves_alone(&old_id);
}

#[test]
fn an_unhealthy_new_app_is_kept_aside_and_the_old_one_serves_again() {
    let Some(env) = Env::new("unhealthy") else {
        return;
    };
    let (old_id, pb) = env.new_release("/missing");
    let out = env
        .playbook_run(&pb)
        .arg("--no-auto-rollback")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("is unhealthy") && err.contains("404"), "{err}");
    // Four seconds of checks a second apart, all failing the same way: said once.
    let out = text(&out.stdout) + &err;
    let waits: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("waiting for health: GET") && l.contains("answered 404"))
        .collect();
    assert_eq!(waits.len(), 1, "a repeated failure is said once: {out}");
    assert!(err.contains("the current one was started again"), "{err}");
    // --no-auto-rollback: the unhealthy one is kept, stopped, beside the old one serving.
    let run = env.last_run("webtest");
    let failed = format!(
        "{}.failed-{}",
        env.name,
        run.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(inspect(&failed).unwrap()["State"]["Running"], false);
    assert_eq!(get(env.port), "old");
    assert!(run.join("health/web.txt").is_file());
    let rb = env.rollback("webtest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    env.assert_the_old_one_serves_alone(&old_id);
}

#[test]
fn sigkill_during_the_health_wait_then_rollback_restores_the_old_app_serving() {
    let Some(env) = Env::new("sigkill") else {
        return;
    };
    // Never healthy, and a long wait: boyong is killed while it waits.
    let (old_id, pb) = env.new_release("/missing");
    support::edit_file(&pb, "timeout: 4s", "timeout: 120s");
    let mut child = support::spawn_quiet(&mut env.playbook_run(&pb));
    // Wait until the new container runs (the old one is stopped by then).
    let t0 = Instant::now();
    let next = loop {
        let running = docker(&[
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("label={}", env.label().arg()),
        ]);
        if let Some(n) = text(&running.stdout).lines().find(|n| n.contains(".next-")) {
            break n.to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the new container never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        get(env.port),
        "new",
        "the new one answers (unhealthily) while boyong waits"
    );
    assert!(support::signal(child.id(), "-KILL"));
    let _ = child.wait();
    assert!(inspect(&next).is_some(), "the kill left the new container");

    let rb = env.rollback("webtest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    env.assert_the_old_one_serves_alone(&old_id);
}

#[test]
fn sigkill_between_the_two_renames_then_rollback_restores_the_old_app_serving() {
    let Some(env) = Env::new("renames") else {
        return;
    };
    let (old_id, pb) = env.new_release("/");
    // The engine is reached through a proxy that holds the second rename (`NAME.next-RUN`
    // to `NAME`) forever: boyong is killed after the old one became `NAME.prev-RUN` and
    // before the new one takes the name.
    let proxy = HoldingProxy::start(&format!("/rename?name={} ", env.name));
    Env::through(&pb, &proxy);
    let mut child = support::spawn_quiet(&mut env.playbook_run(&pb));
    let t0 = Instant::now();
    while !proxy.held() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the second rename never came"
        );
        assert!(child.try_wait().unwrap().is_none(), "boyong ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let names = env.containers();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("{}.prev-", env.name)))
            && names.iter().any(|n| n.contains(".next-"))
            && !names.contains(&env.name),
        "half swapped: {names:?}"
    );
    child.kill().unwrap();
    let _ = child.wait();
    // Nothing serves under NAME now; rollback (through the same proxy, which holds no
    // more) puts the old one back.
    let rb = env.rollback("webtest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    env.assert_the_old_one_serves_alone(&old_id);
    assert_eq!(inspect(&env.name).unwrap()["State"]["Running"], true);
}

/// The step is stopped (its time limit) while the engine is still making the new
/// container: the request reached the engine, which makes the container after the step
/// gave up on it. The undo waits for that answer before it removes the container: nothing
/// of the run is left, and the old app serves alone.
#[test]
fn a_step_stopped_while_its_container_is_being_made_leaves_no_container_behind() {
    let Some(env) = Env::new("inflight") else {
        return;
    };
    let (old_id, pb) = env.new_release("/");
    let delay = Duration::from_secs(4);
    let proxy = HoldingProxy::delaying(
        &format!("/containers/create?name={}.next-", env.name),
        delay,
    );
    Env::through(&pb, &proxy);
    support::edit_file(
        &pb,
        "    deploy:",
        "    retries: 0\n    timeout: 1s\n    deploy:",
    );
    let t0 = Instant::now();
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(proxy.held(), "the container's creation never came");
    let err = text(&out.stderr);
    assert!(
        err.contains("did not finish within its timeout of 1s"),
        "{err}"
    );
    assert!(
        t0.elapsed() >= delay,
        "the run ended before the engine answered the request it was stopped in"
    );
    // The undo waited about 3 s (the 4 s hold less the 1 s limit), past the 2 s after
    // which the wait is said, naming the request.
    let waiting = format!(
        "waiting for the engine to finish: create container {}.next-",
        env.name
    );
    assert!(err.contains(&waiting), "no `{waiting}` line: {err}");
    // Past the engine's answer: a container made behind the undo would be listed now.
    std::thread::sleep(Duration::from_secs(1));
    env.assert_the_old_one_serves_alone(&old_id);
}

#[test]
fn previous_releases_beyond_keep_are_pruned_for_this_app_only() {
    let Some(env) = Env::new("prune") else { return };
    // A container of another app with a name alike: never touched.
    let other = format!("{}.prev-19990101T000000Z-0000", env.name);
    let made = docker(&[
        "create",
        "--name",
        &other,
        "--label",
        &env.label().arg(),
        "--label",
        "boyong.app=someone-else",
        "boyong-fixture/busybox:1",
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let mut ids = Vec::new();
    let mut last = None;
    for body in ["one", "two", "three"] {
        let image = web_image(env.label(), body, body);
        let out = env.run_playbook(&env.playbook(&image, "/"));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(get(env.port), body);
        ids.push(inspect(&env.name).unwrap()["Id"].clone());
        last = Some(out);
    }
    let names = env.containers();
    let alive: Vec<Value> = names
        .iter()
        .map(|n| inspect(n).unwrap()["Id"].clone())
        .collect();
    // Release "one" was this app's previous release before the last run: pruned (keep: 1).
    assert!(
        !alive.contains(&ids[0]),
        "release one was not pruned: {names:?}"
    );
    assert!(
        alive.contains(&ids[1]),
        "the last run's previous release is kept: {names:?}"
    );
    assert!(
        names.contains(&other),
        "another app's container was pruned: {names:?}"
    );
    let err = text(&last.unwrap().stderr);
    assert!(err.contains("removed the previous release"), "{err}");
}

#[test]
fn cmd_and_tcp_health_checks_gate_the_cut_over() {
    let Some(env) = Env::new("health") else {
        return;
    };
    let one = web_image(env.label(), "one", "one");
    let two = web_image(env.label(), "two", "two");
    let health = |check: &str| {
        let pb = env.playbook(&one, "/");
        let text_pb = std::fs::read_to_string(&pb).unwrap();
        let from = text_pb.find("        http:").unwrap();
        let to = text_pb[from..].find('\n').unwrap() + from + 1;
        std::fs::write(
            &pb,
            format!("{}{check}\n{}", &text_pb[..from], &text_pb[to..]),
        )
        .unwrap();
        pb
    };
    // cmd: inside the new container, busybox wget fetches its own page.
    let pb = health(
        "        cmd: [\"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/\"]",
    );
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(get(env.port), "one");
    // tcp: the published port accepts a connection.
    let pb = health(&format!("        tcp: 127.0.0.1:{}", env.port));
    support::edit_file(&pb, &one, &two);
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(get(env.port), "two");
    // A cmd that fails keeps the current one.
    let three = web_image(env.label(), "three", "three");
    let pb = health("        cmd: [\"false\"]");
    support::edit_file(&pb, &one, &three);
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`false` exited 1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(get(env.port), "two");
}

#[test]
fn exec_in_a_container_gets_its_env_off_the_command_line_and_rollback_runs_its_undo() {
    let Some(env) = Env::new("exec") else { return };
    let p = env.write(
        "exec.yml",
        format!(
        "version: 1\napp: webtest\nvendor: {{ host: 127.0.0.1, user: x, identity: none, known_hosts: none }}\nvars:\n  greeting: {{ env: BOYONG_TEST_GREETING }}\nsteps:\n  - id: note\n    exec:\n      on: {{ container: {} }}\n      run: printf %s \"$GREETING\" > /tmp/greeting && echo written\n      undo: rm /tmp/greeting\n      env: {{ GREETING: \"{{{{ vars.greeting }}}}\" }}\n",
        env.name
    ),
    );
    let secret = format!("salam-{}", env.label().0);
    let out = env
        .command(&["run", p.to_str().unwrap()])
        .env("BOYONG_TEST_GREETING", &secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("written") || text(&out.stdout).contains("written"));
    let cat = docker(&["exec", &env.name, "cat", "/tmp/greeting"]);
    assert_eq!(text(&cat.stdout), secret);
    let journal = std::fs::read_to_string(env.last_run("webtest").join("journal.jsonl")).unwrap();
    assert!(!journal.contains(&secret), "the secret is not journaled");

    // The undo runs with the step's env: its secret must be set again.
    let rb = env
        .command(&["rollback", "webtest", "--yes"])
        .env("BOYONG_TEST_GREETING", &secret)
        .output()
        .unwrap();
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    let gone = docker(&["exec", &env.name, "cat", "/tmp/greeting"]);
    assert!(!gone.status.success(), "the undo removed the file");
    assert_eq!(get(env.port), "old", "the container itself is untouched");
}

#[test]
fn exec_in_a_container_past_its_timeout_is_stopped_there_with_what_it_started() {
    let Some(env) = Env::new("exectimeout") else {
        return;
    };
    // One sleep in the background, one in the foreground: the command and its children.
    let p = env.write(
        "slow.yml",
        format!(
        "version: 1\napp: webtest\nvendor: {{ host: 127.0.0.1, user: x, identity: none, known_hosts: none }}\nsteps:\n  - id: wait\n    timeout: 2s\n    exec:\n      on: {{ container: {} }}\n      run: sleep 37.25 & sleep 37.5\n",
        env.name
    ),
    );
    let sleeps = || {
        let top = docker(&["top", &env.name]);
        assert!(top.status.success(), "{}", text(&top.stderr));
        text(&top.stdout)
            .lines()
            .filter(|l| l.contains("sleep 37."))
            .count()
    };
    let mut child = env
        .command(&["run", p.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command runs in the container first (a test that can fail: it is seen there).
    let t0 = Instant::now();
    while sleeps() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the command never ran in the container"
        );
        assert!(child.try_wait().unwrap().is_none(), "boyong ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("did not finish within its timeout of 2s"),
        "{}",
        text(&out.stderr)
    );
    let t1 = Instant::now();
    while sleeps() > 0 {
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "the command outlived its step in the container: {}",
            text(&docker(&["top", &env.name]).stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(env.port), "old", "the container itself is untouched");
}

#[test]
fn the_shared_cut_over_scenario_with_a_config_file_passes_on_docker() {
    let Some(env) = Env::builder("shared-cutover")
        .busybox()
        .plan_fidelity()
        .build()
    else {
        return;
    };
    support::scenario::cut_over_and_rollback(&env);
}
