//! Real open-source PHP apps that Debian packages, each with its database, moved by the
//! real binary from a vendor host of this machine (a real sshd, the vendor's unprivileged
//! account, the app's stock config, its own database server and web server:
//! fixtures/apps/APP.sh) onto gov/php:8.2 and the gov database images, with the playbook in
//! playbooks/APP.yml as written from the docs (only its ports, key paths and Docker names
//! changed here, so that tests run side by side): it validates, its live plan finds no
//! problem, the run succeeds the first time; the pages equal the vendor's once each side's
//! origin is normalised (`boyong assess`); neither the vendor's database password nor the
//! government's is in any layer of the image (`docker save`); the app writes after the
//! cut-over, then `boyong rollback --yes` undoes the migration. Latency is printed, never
//! asserted (README, "Real apps", has the figures).
//!
//! WordPress with MariaDB (real_apps/wordpress.rs), PostfixAdmin with PostgreSQL
//! (real_apps/postfixadmin.rs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

#[path = "real_apps/postfixadmin.rs"]
mod postfixadmin;
#[path = "real_apps/vendor.rs"]
mod vendor;
#[path = "real_apps/wordpress.rs"]
mod wordpress;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::env::Env;
use support::text;
use vendor::VendorApp;

/// The environment of one app's test: the vendor host, then the engine under a unique
/// label with the base images, every run of the binary getting the variables that
/// `secrets` gives for this host (the playbook's secrets); `None` when the machine cannot
/// run it (skipped; failed under CI).
fn setup(
    app: &str,
    db_image: &str,
    secrets: impl Fn(&VendorApp) -> Vec<(&'static str, String)>,
) -> Option<(Env, VendorApp)> {
    if !VendorApp::available() {
        return None;
    }
    vendor::base_image("php");
    vendor::base_image(db_image);
    let host = VendorApp::up(app);
    let mut b = Env::builder(app).docker().plan_fidelity();
    for (k, v) in secrets(&host) {
        b = b.var(k, &v);
    }
    Some((b.build()?, host))
}

/// playbooks/APP.yml with each `(from, to)` replaced, all in one pass (a value put in is
/// never matched again; every `from` must be there), written into the test's directory.
fn playbook(env: &Env, app: &str, subs: &[(String, String)]) -> PathBuf {
    let path = format!("{}/playbooks/{app}.yml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("the playbook");
    let mut out = String::new();
    let mut used = vec![false; subs.len()];
    let mut rest = text.as_str();
    'outer: while let Some(c) = rest.chars().next() {
        for (i, (from, to)) in subs.iter().enumerate() {
            if let Some(after) = rest.strip_prefix(from.as_str()) {
                out.push_str(to);
                used[i] = true;
                rest = after;
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    for (i, (from, _)) in subs.iter().enumerate() {
        assert!(used[i], "`{from}` is not in playbooks/{app}.yml");
    }
    env.write(&format!("{app}.yml"), out)
}

/// The substitutions every app's playbook needs: the vendor's ports and keys, the target's
/// port, and Docker names made unique (`NAME`, `NAME-db`, `NAME-data`, `NAME-net`).
fn common_subs(env: &Env, host: &VendorApp, app: &str, fixed: [u16; 4]) -> Vec<(String, String)> {
    let [ssh, db, web, target] = fixed;
    let n = &env.name;
    let s = |a: String, b: String| (a, b);
    vec![
        s(
            format!("port: {ssh}\n"),
            format!("port: {}\n", host.var("VH_SSH_PORT")),
        ),
        s(
            format!("../target/apps/{app}/ssh/client"),
            host.var("VH_IDENTITY").into(),
        ),
        s(
            format!("../target/apps/{app}/ssh/known_hosts"),
            host.var("VH_KNOWN_HOSTS").into(),
        ),
        s(db.to_string(), host.var("VH_DB_PORT").into()),
        s(
            format!("127.0.0.1:{web}"),
            format!("127.0.0.1:{}", host.var("VH_WEB_PORT")),
        ),
        s(target.to_string(), env.port.to_string()),
        s(format!("{app}-db"), format!("{n}-db")),
        s(format!("volume: {app}-data"), format!("volume: {n}-data")),
        s(format!("network: {app}\n"), format!("network: {n}-net\n")),
        s(format!("name: {app}\n"), format!("name: {n}\n")),
        // a shorter assessment than an operator's: content is what the test asserts
        s("repeat: 30".into(), "repeat: 8".into()),
    ]
}

/// A password made now (hex of 18 random bytes).
fn password() -> String {
    use std::io::Read as _;
    let mut b = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("reads /dev/urandom");
    b.iter().fold(String::new(), |mut s, x| {
        use std::fmt::Write as _;
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// validate, plan (live), run: each must succeed, the run the first time. The run's
/// directory.
fn migrate(env: &Env, app: &str, pb: &Path) -> PathBuf {
    let pbs = pb.to_str().expect("a UTF-8 path");
    let out = env.run(&["validate", pbs]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "validate: {}",
        text(&out.stderr)
    );
    let out = env.run(&["plan", pbs]);
    let plan = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan: {plan}{}",
        text(&out.stderr)
    );
    assert!(
        plan.contains("Probes: no problem found."),
        "the live plan found a problem:\n{plan}"
    );
    let t0 = std::time::Instant::now();
    let out = env.run_playbook(pb);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the first run failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    eprintln!(
        "{app}: `boyong run` succeeded in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    env.last_run(app)
}

/// `boyong assess PLAYBOOK --json`: every page's status, redirect and normalised body equal
/// on both sides; the latency figures printed.
fn assert_pages_equal(env: &Env, app: &str, pb: &Path) {
    let out = env.run(&["assess", pb.to_str().expect("UTF-8"), "--json"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "assess: {}",
        text(&out.stderr)
    );
    let a: Value = serde_json::from_slice(&out.stdout).expect("assess --json: JSON");
    let results = a["results"].as_array().expect("results");
    assert!(!results.is_empty());
    let (mut v95, mut t95) = (Vec::new(), Vec::new());
    for r in results {
        let (v, t) = (&r["vendor"], &r["target"]);
        let what = format!(
            "{} {}: {:?}\n{}",
            r["method"], r["path"], r["failures"], r["diff"]
        );
        assert!(v["errors"] == 0 && t["errors"] == 0, "no answer: {what}");
        assert_eq!(v["status"], t["status"], "status differs: {what}");
        assert_eq!(v["location"], t["location"], "redirect differs: {what}");
        assert_eq!(v["hash"], t["hash"], "content differs: {what}");
        v95.push(v["p95_ms"].as_f64().unwrap());
        t95.push(t["p95_ms"].as_f64().unwrap());
        eprintln!(
            "{app}: {} {:60} p95 vendor {:6.1} ms, target {:6.1} ms",
            r["method"].as_str().unwrap(),
            r["path"].as_str().unwrap(),
            v95.last().unwrap(),
            t95.last().unwrap()
        );
    }
    let (v, t) = (v95.iter().sum::<f64>(), t95.iter().sum::<f64>());
    eprintln!(
        "{app}: {} pages equal; p95 summed: vendor {v:.1} ms, target {t:.1} ms ({:.2}x; not asserted)",
        results.len(),
        t / v
    );
}

/// No layer of the deployed container's image holds any of `secrets` (`docker save`,
/// searched as bytes).
fn assert_no_secret_in_image(container: &str, secrets: &[&str]) {
    let image = support::docker::inspect(container).expect("the deployed container")["Image"]
        .as_str()
        .expect("its image")
        .to_string();
    for (i, s) in secrets.iter().enumerate() {
        // The value goes in the environment, never on a command line.
        let out = Command::new("sh")
            .args([
                "-c",
                r#"docker save "$1" | grep -a -F -c -e "$S""#,
                "sh",
                &image,
            ])
            .env("S", s)
            .output()
            .expect("sh runs");
        assert_eq!(
            text(&out.stdout).trim(),
            "0",
            "secret #{i} is in a layer of {image} ({})",
            text(&out.stderr)
        );
    }
}

/// `boyong rollback APP --yes` after the app wrote: it succeeds and the migration is undone.
/// `wrote` (a text the write put in the database) is checked in what the rollback kept once
/// that feature exists.
fn rollback_after_write(env: &Env, app: &str, run: &Path, wrote: &str) {
    let out = env.rollback(app);
    assert_eq!(
        out.status.code(),
        Some(0),
        "rollback: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(env.containers().is_empty(), "left: {:?}", env.containers());
    // The rollback kept a dump of what the app wrote since the cut-over (RUN/rollback/).
    let kept = run.join("rollback");
    assert!(
        kept.is_dir(),
        "the rollback kept no dump in {}",
        kept.display()
    );
    let out = Command::new("sh")
        .args([
            "-c",
            r#"zcat -f "$1"/*.sql.gz | grep -a -F -c -e "$W""#,
            "sh",
        ])
        .arg(&kept)
        .env("W", wrote)
        .output()
        .expect("sh runs");
    let n: u32 = text(&out.stdout).trim().parse().unwrap_or(0);
    assert!(
        n > 0,
        "the rollback kept {} without the write",
        kept.display()
    );
}
