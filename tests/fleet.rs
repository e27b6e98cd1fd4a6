//! A batch and fleet status against a real sshd and the real Docker Engine: three static
//! sites run two at a time, one failing its health check; the other two serve, the
//! failing one is rolled back, the summary names it, every journal matches its plan and
//! every log holds only its own run. Then status reads the live engine: lifecycles,
//! containers running their journaled images, and drift once a container is replaced by
//! hand with another image.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::env::Env;
use support::site;
use support::{free_port, serves, text};

use std::path::PathBuf;

use serde_json::Value;
use support::docker::docker;

impl Env {
    /// A static site fetched from the vendor, built on busybox, deployed on `port`, health
    /// checked at `health`.
    fn playbook(&self, app: &str, name: &str, port: u16, health: &str) -> PathBuf {
        self.write(&format!("vendor/{app}/index.html"), format!("{app}\n"));
        self.write(
            &format!("pb/{app}.yml"),
            format!(
                "version: 1\napp: {app}\n{vendor}\
             steps:\n  - id: code\n    fetch: {{ path: {src} }}\n\
             {image}{web}",
                vendor = self.sshd().vendor_yaml(),
                src = self.path(&format!("vendor/{app}")).display(),
                image = site::image_step("boyong-fixture/busybox:1"),
                web = site::web_step(name, port, health, "5s", ""),
            ),
        )
    }

    fn status(&self, extra: &[&str]) -> Vec<Value> {
        let out = self
            .command(&["status", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn row<'a>(rows: &'a [Value], app: &str) -> &'a Value {
    rows.iter().find(|r| r["app"] == app).unwrap()
}

#[test]
fn a_batch_of_three_with_one_unhealthy_then_status_and_drift() {
    let Some(env) = Env::builder("fleet").sshd().busybox().build() else {
        return;
    };
    let apps = ["fa", "fb", "fc"];
    let ports: Vec<u16> = apps.iter().map(|_| free_port()).collect();
    let names: Vec<String> = apps
        .iter()
        .map(|a| format!("{a}-{}", env.label().0))
        .collect();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| {
            let health = if i == 1 { "/missing" } else { "/" };
            env.playbook(apps[i], &names[i], ports[i], health)
        })
        .collect();

    let out = env
        .command(&["run"])
        .args(&files)
        .args(["--jobs", "2", "--label", &env.label().arg()])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = |app: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(app))
            .unwrap()
            .to_string()
    };
    assert!(line("fa").contains("succeeded"), "{stdout}\n{stderr}");
    assert!(line("fb").contains("rolled-back"), "{stdout}\n{stderr}");
    assert!(
        line("fb").contains("`web`") && line("fb").contains("unhealthy"),
        "{stdout}\n{stderr}"
    );
    assert!(line("fc").contains("succeeded"), "{stdout}\n{stderr}");
    assert_eq!(serves(ports[0]), "fa");
    assert_eq!(serves(ports[2]), "fc");
    for app in apps {
        let run = env.last_run(app);
        support::assert_plan_fidelity(&run);
        let id = run.file_name().unwrap().to_string_lossy().into_owned();
        let runs: Vec<String> = support::logged_runs(&run)
            .into_iter()
            .map(|(_, run)| run)
            .collect();
        assert_eq!(runs, [id], "{app}'s log holds its own run only");
    }

    let st = env.status(&[]);
    assert_eq!(st[0]["app"], "fb", "the rolled-back app first: {st:?}");
    assert_eq!(row(&st, "fb")["lifecycle"], "rolled-back");
    for app in ["fa", "fc"] {
        let r = row(&st, app);
        assert_eq!(r["lifecycle"], "cut-over", "{r}");
        assert_eq!(r["live"], "checked", "{r}");
        assert_eq!(r["container"]["state"], "running", "{r}");
        assert_eq!(r["drift"], false, "{r}");
        assert_eq!(r["container"]["image_id"], r["journaled_image_id"], "{r}");
    }

    // The playbooks' own health checks, run now.
    let st = env.status(&["--check"]);
    for app in ["fa", "fc"] {
        let r = row(&st, app);
        assert_eq!(r["check"]["ok"], true, "{r}");
        assert!(
            r["check"]["said"]
                .as_str()
                .unwrap()
                .contains("answered 200"),
            "{r}"
        );
    }
    assert!(
        row(&st, "fb")["check"].is_null(),
        "rolled back: not checked"
    );

    // fc's container replaced by hand, on the base image: drift.
    let name = &names[2];
    let ok = docker(&["rm", "-f", name]);
    assert!(ok.status.success());
    let ok = docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--label",
        &env.label().arg(),
        "boyong-fixture/busybox:1",
        "sleep",
        "600",
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let st = env.status(&["--drift"]);
    assert_eq!(st.len(), 1, "{st:?}");
    let r = &st[0];
    assert_eq!(r["app"], "fc");
    assert_eq!(r["drift"], true, "{r}");
    assert!(r["container"]["run"].is_null(), "no boyong labels: {r}");
    let table = env.run(&["status"]);
    let table = text(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("fc ") && l.contains("DRIFT")),
        "{table}"
    );
    // Its port is served by nothing now: the check fails, and says so with exit 1.
    let out = env.run(&["status", "--json", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let st: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row(&st, "fa")["check"]["ok"], true);
    let r = row(&st, "fc");
    assert_eq!(r["check"]["ok"], false, "{r}");
    assert!(
        r["check"]["said"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{r}"
    );
    let offline = env.status(&["--offline"]);
    assert!(row(&offline, "fc")["drift"].is_null());
}
