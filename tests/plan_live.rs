//! The live plan against a real sshd, a real MariaDB and the real Docker Engine: what it
//! finds, the problems it names with what to do, that it changes nothing anywhere, and
//! saved plans: run exactly as shown, or refused when the world changed since.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::env::Env;
use support::site;
use support::text;

impl Env {
    /// A vendor sshd serving a small site (`css/` to be excluded), the engine with busybox.
    fn new(test: &str) -> Option<Self> {
        Self::builder(test)
            .sshd()
            .busybox()
            .file("vendor/www/index.html", "release 1\n")
            .file("vendor/www/css/site.css", "body {}\n")
            .file("vendor/www/robots.txt", "User-agent: *\n")
            .build()
    }

    fn www(&self) -> PathBuf {
        self.path("vendor/www")
    }

    /// fetch → build on `base` → deploy; `extra` steps go after the fetch.
    fn playbook(&self, file: &str, app: &str, base: &str, extra: &str) -> PathBuf {
        self.write(
            file,
            format!(
                "version: 1\napp: {app}\n{vendor}\
                 steps:\n  - id: code\n    fetch: {{ path: {src}, exclude: [css/] }}\n{extra}\
                 {image}{web}",
                vendor = self.sshd().vendor_yaml(),
                src = self.www().display(),
                image = site::image_step(base),
                web = site::web_step(&self.name, self.port, "/", "5s", ""),
            ),
        )
    }

    /// `boyong plan PLAYBOOK --out SAVED`.
    fn plan_to(&self, pb: &Path, saved: &Path) -> Output {
        self.run(&[
            "plan",
            pb.to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
        ])
    }

    /// `boyong run --plan SAVED`, its containers labelled for cleanup.
    fn run_saved(&self, saved: &Path) -> Output {
        self.run(&[
            "run",
            "--plan",
            saved.to_str().unwrap(),
            "--label",
            &self.label().arg(),
        ])
    }

    fn container_id(&self) -> Option<String> {
        support::docker::inspect(&self.name).map(|c| c["Id"].as_str().unwrap().to_string())
    }
}

fn plan_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every file under `dir`, with its bytes: to show that a command changed nothing there.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_live_plan_finds_the_world_changes_nothing_and_a_saved_plan_runs_only_while_true() {
    let Some(env) = Env::new("plan-live") else {
        return;
    };
    let pb = env.playbook("situs.yml", "situs", "boyong-fixture/busybox:1", "");
    let saved = env.path("plan.json");
    let vendor_before = snapshot(&env.www());

    let out = env.plan_to(&pb, &saved);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    // What it found: the host key, the tree's size without the excluded css/, the tools,
    // the base image, that the container does not exist, that the port is free.
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg("/dev/stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin
                .take()
                .unwrap()
                .write_all(env.sshd().host_key_pub.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let fingerprint = text(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    for want in [
        "(live: probed ".to_string(),
        format!("host key ssh-ed25519 {fingerprint} matches"),
        format!("found vendor:{}: 2 files, 24 B", env.www().display()),
        "found tar: tar (GNU tar)".into(),
        "found image boyong-fixture/busybox:1 present".into(),
        format!("now: no `{}`: this creates it (+)", env.name),
        format!("found port 127.0.0.1:{} free", env.port),
        "estimate 24 B, ~1 s".into(),
        "Probes: no problem found.".into(),
    ] {
        assert!(said.contains(&want), "the plan shows `{want}`:\n{said}");
    }
    // The engine's storage driver, as `docker info` says it, and the note on a slow one.
    let driver = text(
        &Command::new("docker")
            .args(["info", "--format", "{{.Driver}}"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    assert!(
        said.contains(&format!(", storage {driver}) at ")),
        "the plan names the storage driver {driver}:\n{said}"
    );
    assert_eq!(
        said.contains(&format!("note: the engine stores files with {driver}")),
        matches!(driver.as_str(), "fuse-overlayfs" | "vfs"),
        "{said}"
    );
    let p = plan_json(&saved);
    assert_eq!(p["mode"], "live");
    let prints = &p["probes"]["fingerprints"];
    assert_eq!(
        prints["vendor.host_key"],
        format!("ssh-ed25519 {fingerprint}")
    );
    assert!(
        prints["vendor.fetch.code"]
            .as_str()
            .unwrap()
            .starts_with("dir files=2 bytes=24 "),
        "{prints}"
    );
    assert_eq!(prints[format!("target.container.{}", env.name)], "absent");
    assert_eq!(
        prints[format!("target.port.127.0.0.1:{}", env.port)],
        "free"
    );
    assert!(
        prints["target.image.boyong-fixture/busybox:1"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // Nothing changed anywhere: no state, no container, the vendor's files as they were.
    assert!(!env.state().join("apps").exists(), "a plan writes no state");
    assert_eq!(env.container_id(), None);
    assert!(
        snapshot(&env.www()) == vendor_before,
        "the vendor's files are unchanged"
    );

    // The vendor's tree changes: the saved plan is stale and refused, naming what changed.
    std::fs::write(env.www().join("new.html"), "new\n").unwrap();
    let out = env.run_saved(&saved);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("stale")
            && err.contains("vendor.fetch.code: dir files=2 bytes=24 ")
            && err.contains("dir files=3 bytes=28 "),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(env.container_id(), None);
    assert!(env.runs("situs").is_empty(), "a refused plan starts no run");

    // A new plan, run as saved: the run is journaled as that plan, and keeps to it.
    let out = env.plan_to(&pb, &saved);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run_saved(&saved);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        support::http_get(env.port, "/", Duration::from_secs(10)).as_deref(),
        Some("release 1")
    );
    let run = env.last_run("situs");
    support::assert_plan_fidelity(&run);
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"saved-plan\""), "{journal}");
    assert_eq!(plan_json(&run.join("plan.json"))["mode"], "live");

    // Planned again with the app in place: the current container and the port it holds
    // are shown, no problem. Then another run replaces the container: that plan is stale.
    let out = env.plan_to(&pb, &saved);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("now: `{}` runs (", env.name)),
        "{said}"
    );
    assert!(
        said.contains("the app's current container; freed at the cut-over"),
        "{said}"
    );
    let before = env.container_id().unwrap();
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_ne!(env.container_id().unwrap(), before);
    let out = env.run_saved(&saved);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("target.container.{}: id=", env.name)),
        "{err}"
    );

    // The playbook itself changes: named first.
    support::edit_file(&pb, "timeout: 5s", "timeout: 6s");
    let out = env.run(&["run", "--plan", saved.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the playbook changed: sha256 "), "{err}");

    let out = env.rollback("situs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_live_plan_names_each_problem_with_what_to_do() {
    let Some(env) = Env::new("plan-problems") else {
        return;
    };
    // A base image that is not there, a path that is not there, a port held by a process.
    let held = std::net::TcpListener::bind(("127.0.0.1", env.port)).unwrap();
    let pb = env.playbook(
        "broken.yml",
        "broken",
        "boyong-test/absent:1",
        &format!(
            "  - id: docs\n    fetch: {{ path: {}/nowhere }}\n",
            env.dir.path().display()
        ),
    );
    let out = env.run(&["plan", pb.to_str().unwrap()]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}{}", text(&out.stderr));
    for want in [
        "Problems (3): the run would fail; fix these first",
        "x step `image`: image boyong-test/absent:1 is not on the target engine",
        "do: build or load it there first",
        &format!(
            "x step `docs`: vendor:{}/nowhere does not exist",
            env.dir.path().display()
        ),
        &format!(
            "x step `web`: host port 127.0.0.1:{} is held by a process that is not a container",
            env.port
        ),
    ] {
        assert!(said.contains(want), "`{want}`:\n{said}");
    }
    drop(held);
    // The offline plan of the same playbook looks at nothing.
    let out = env.run(&["plan", pb.to_str().unwrap(), "--offline"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("(offline: no host was contacted)"));

    // An unknown host key is a problem too, and is not added to known_hosts.
    let kh = std::fs::read_to_string(&env.sshd().known_hosts).unwrap();
    std::fs::write(&env.sshd().known_hosts, "").unwrap();
    let out = env.run(&["plan", pb.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = p["probes"]["problems"].to_string();
    assert!(
        problems.contains("the vendor host cannot be used"),
        "{problems}"
    );
    assert_eq!(
        std::fs::read_to_string(&env.sshd().known_hosts).unwrap(),
        "",
        "a plan adds no host key"
    );
    std::fs::write(&env.sshd().known_hosts, kh).unwrap();
}

#[test]
fn plans_of_a_directory_of_apps_are_probed_side_by_side_and_saved_one_file_each() {
    let Some(env) = Env::new("plan-many") else {
        return;
    };
    let apps = env.path("apps");
    std::fs::create_dir_all(&apps).unwrap();
    for app in ["satu", "dua", "tiga"] {
        let p = env.playbook(&format!("{app}.yml"), app, "boyong-fixture/busybox:1", "");
        std::fs::rename(&p, apps.join(format!("{app}.yml"))).unwrap();
    }
    let out_dir = env.path("plans");
    let out = env.run(&[
        "plan",
        apps.to_str().unwrap(),
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["app"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dua", "satu", "tiga"], "sorted by file name");
    for app in names {
        let p = plan_json(&out_dir.join(format!("{app}.plan.json")));
        assert_eq!(p["mode"], "live");
        assert!(p["probes"]["fingerprints"]["vendor.host_key"].is_string());
    }
    assert!(
        text(&out.stderr).contains("3 plans, probed side by side"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plans_of_a_batch_are_held_to_the_free_space_they_share() {
    let Some(env) = Env::new("plan-disk") else {
        return;
    };
    // Each app pulls 3 MiB into a state directory with 8 MiB free: one fits, three do not.
    let state = env.state();
    let Some(_unmount) = support::tmpfs::mounted(&state, 8 << 20) else {
        return;
    };
    std::fs::write(env.www().join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    let apps = env.path("apps");
    std::fs::create_dir_all(&apps).unwrap();
    for app in ["satu", "dua", "tiga"] {
        let p = env.playbook(&format!("{app}.yml"), app, "boyong-fixture/busybox:1", "");
        std::fs::rename(&p, apps.join(format!("{app}.yml"))).unwrap();
    }

    let alone = env.run(&["plan", apps.join("satu.yml").to_str().unwrap(), "--json"]);
    assert_eq!(alone.status.code(), Some(0), "{}", text(&alone.stderr));

    let out = env.run(&["plan", apps.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in all.as_array().unwrap() {
        let problems = p["probes"]["problems"].to_string();
        assert!(
            problems.contains("the 3 plans of this batch that write there need about")
                && problems.contains(&state.display().to_string()),
            "{}: {problems}",
            p["app"]
        );
        let disk = &p["probes"]["disk"][0];
        assert_eq!(disk["what"], "state directory", "{disk}");
        assert!(disk["need"].as_u64().unwrap() >= 3 << 20, "{disk}");
    }
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "a plan writes nothing in the state directory"
    );
}

#[test]
fn a_live_plan_reads_the_vendor_database_size_without_showing_its_password() {
    let Some(env) = Env::new("plan-db") else {
        return;
    };
    let Some(db) = support::db::Mariadb::start() else {
        return;
    };
    let dump = format!(
        "  - id: db\n    dump:\n      engine: mariadb\n      database: {}\n      user: {}\n      password: {{ env: PLAN_DB_PW }}\n      host: 127.0.0.1\n      port: {}\n",
        db.database, db.user, db.port
    );
    let pb = env.playbook("db.yml", "situs", "boyong-fixture/busybox:1", &dump);
    let out = env
        .command(&["plan", pb.to_str().unwrap()])
        .env("PLAN_DB_PW", &db.password)
        .output()
        .unwrap();
    let said = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "found database `{}` reachable as `{}`: MariaDB 10.11",
            db.database, db.user
        )),
        "{said}"
    );
    assert!(said.contains("found mariadb-dump: "), "{said}");
    assert!(!said.contains(&db.password), "the password is never shown");
    let out = env
        .command(&["plan", pb.to_str().unwrap()])
        .env("PLAN_DB_PW", format!("wrong-{}", db.password))
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("x step `db`: the database cannot be read") && said.contains("Access denied"),
        "{said}"
    );
}
