//! Containers run with the engine's init as PID 1 (issue 15, item 3), against the real
//! engine: an app that never handles SIGTERM (busybox `httpd`, like `php -S`) stops on
//! SIGTERM at a cut-over (exit status 143), not by SIGKILL after the grace (137); the
//! playbook's `stop_grace` and `security.init` are in the plan.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::docker::{inspect, web_image};
use support::env::Env;
use support::text;

#[test]
fn the_app_gets_sigterm_through_the_init_and_stops_at_once() {
    let Some(env) = Env::builder("init").busybox().plan_fidelity().build() else {
        return;
    };
    let playbook = |image: &str| {
        env.write(
            "web.yml",
            format!(
                "version: 1\napp: inittest\nvendor: {{ host: 127.0.0.1, user: x, identity: none, known_hosts: none }}\nsteps:\n  - id: web\n    deploy:\n      image: {image}\n      name: {}\n      ports: [\"127.0.0.1:{}:8080\"]\n      stop_grace: 30s\n      health: {{ http: \"http://127.0.0.1:{}/\", timeout: 10s }}\n",
                env.name, env.port, env.port
            ),
        )
    };
    let one = web_image(env.label(), "one", "one");
    let two = web_image(env.label(), "two", "two");
    let pb = playbook(&one);
    let plan = env.run(&["plan", "--offline", pb.to_str().unwrap()]);
    let shown = text(&plan.stdout);
    assert!(
        shown.contains("init as PID 1 (signals reach the app)")
            && shown.contains("stopped with a grace of 30s"),
        "{shown}"
    );
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(inspect(&env.name).unwrap()["HostConfig"]["Init"], true);
    let out = env.run_playbook(&playbook(&two));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.last_run("inittest");
    let prev = format!(
        "{}.prev-{}",
        env.name,
        run.file_name().unwrap().to_str().unwrap()
    );
    let state = &inspect(&prev).expect("the previous release is kept")["State"];
    // 143 = 128 + SIGTERM: the init passed the signal on and httpd ended; without an init,
    // httpd as PID 1 ignores SIGTERM and is killed after the grace (137).
    assert_eq!(state["ExitCode"], 143, "{state}");
    let out = env.rollback("inittest");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(support::serves(env.port), "one");
}
