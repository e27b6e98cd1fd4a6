//! Each precondition refuses by name and changes nothing.

use super::common::*;
use crate::support::env::Env;

#[test]
fn a_failed_run_or_a_broken_journal_refuses_and_nothing_is_deleted() {
    let Some(env) = Env::builder("decommission-refusals").sshd().build() else {
        return;
    };
    let (tree, _) = vendor_files(&env);
    let pb = playbook(&env, &tree, None);
    let run = boyong(&env, None, &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));

    // A journal edited after the run: refused, naming it.
    let journal = env.last_run(APP).join("journal.jsonl");
    let good = std::fs::read(&journal).unwrap();
    let bad = String::from_utf8(good.clone())
        .unwrap()
        .replacen("\"code\"", "\"c0de\"", 1);
    std::fs::write(&journal, bad).unwrap();
    let broken = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(broken.status.code(), Some(1), "{}", said(&broken));
    assert!(
        said(&broken).contains("REFUSED journal verifies"),
        "{}",
        said(&broken)
    );
    assert!(
        said(&broken).contains("REFUSED last run succeeded"),
        "{}",
        said(&broken)
    );
    assert_untouched(&tree, None);
    // Every MAC stripped and the chain recomputed, as a forger without the key would: a
    // plain SHA-256 chain that verifies, but proves nothing: refused.
    let good_text = String::from_utf8(good.clone()).unwrap();
    std::fs::write(&journal, unkeyed(&good_text.lines().collect::<Vec<_>>())).unwrap();
    let v = boyong(&env, None, &["journal", "verify", APP]);
    assert_eq!(v.status.code(), Some(0), "the chain holds: {}", said(&v));
    let unkeyed = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(unkeyed.status.code(), Some(1), "{}", said(&unkeyed));
    let u = said(&unkeyed);
    assert!(
        u.contains("REFUSED journal verifies") && u.contains("has no MACs (unkeyed)"),
        "{u}"
    );
    assert!(u.contains("REFUSED last run succeeded"), "{u}");
    assert_untouched(&tree, None);
    std::fs::write(&journal, good).unwrap();

    // The archive altered: refused.
    let run_id = env
        .last_run(APP)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let sum = env
        .state()
        .join(format!("apps/{APP}/archives/{run_id}.tar.sha256"));
    let kept = std::fs::read_to_string(&sum).unwrap();
    std::fs::write(&sum, format!("{}  x.tar\n", "0".repeat(64))).unwrap();
    let altered = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(altered.status.code(), Some(1), "{}", said(&altered));
    assert!(
        said(&altered).contains("does not verify"),
        "{}",
        said(&altered)
    );
    std::fs::write(&sum, kept).unwrap();

    // A later run that failed (its path is gone): the last run did not succeed.
    let failing = env.write(
        "failing.yml",
        std::fs::read_to_string(&pb)
            .unwrap()
            .replace(&tree.display().to_string(), "/nonexistent/boyong-decom"),
    );
    let failed = boyong(&env, None, &["run", failing.to_str().unwrap()]);
    assert_ne!(failed.status.code(), Some(0), "{}", said(&failed));
    let refused = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", said(&refused));
    assert!(
        said(&refused).contains("REFUSED last run succeeded"),
        "{}",
        said(&refused)
    );
    assert_untouched(&tree, None);
    assert!(decommissions(&env).is_empty(), "a refusal journals nothing");
    // A bad `decommission.after` in a playbook: file:line:col, exit 2.
    let bad_pb = env.write(
        "bad.yml",
        std::fs::read_to_string(&pb).unwrap() + "decommission:\n  after: soon\n",
    );
    let v = boyong(&env, None, &["validate", bad_pb.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(2), "{}", said(&v));
    assert!(
        said(&v).contains("bad.yml:") && said(&v).contains("decommission.after"),
        "{}",
        said(&v)
    );
    // Bad input: exit 2.
    assert_eq!(
        boyong(&env, None, &["decommission", APP, "--min-age", "soon"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        boyong(&env, None, &["decommission", "nosuchapp", "--min-age", "0"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn the_plan_takes_no_lock_and_writes_nothing_and_the_removal_waits_for_the_lock() {
    use boyong::engine::open::{Who, take_lock};
    use boyong::engine::state::StateDir;
    let Some(env) = Env::builder("decommission-lock").sshd().build() else {
        return;
    };
    let tree = migrated_tree_app(&env);
    // Another operator holds the app's lock (this test's process, alive).
    let other = Who {
        operator: "operator-lain".into(),
        host: "mesin-lain".into(),
    };
    let lock = take_lock(
        &StateDir::new(env.state()),
        APP,
        "boyong run",
        false,
        &other,
    )
    .expect("the lock is free");
    let before = listing(&env.state());
    let plan = boyong(
        &env,
        None,
        &["decommission", APP, "--plan", "--min-age", "0"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", said(&plan));
    assert!(
        said(&plan).contains("nothing was changed"),
        "{}",
        said(&plan)
    );
    assert_eq!(
        listing(&env.state()),
        before,
        "--plan wrote nothing in the state directory"
    );
    let held = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(held.status.code(), Some(1), "{}", said(&held));
    let h = said(&held);
    assert!(h.contains("is locked by"), "{h}");
    assert!(
        h.contains(&std::process::id().to_string()) && h.contains("operator-lain"),
        "the holder is named: {h}"
    );
    assert_untouched(&tree, None);
    assert!(decommissions(&env).is_empty(), "nothing was journaled");
    drop(lock);
    let done = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    assert!(!tree.exists());
}

#[test]
fn a_forged_decommission_journal_is_never_continued() {
    let Some(env) = Env::builder("decommission-forged").sshd().build() else {
        return;
    };
    let tree = migrated_tree_app(&env);
    let args = ["decommission", APP, "--min-age", "0", "--confirm", APP];
    let done = boyong(&env, None, &args);
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    assert!(!tree.exists());
    let dir = decommissions(&env).pop().unwrap();
    let journal = dir.join("journal.jsonl");
    let text_j = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text_j.lines().all(|l| l.contains(",\"mac\":\"")),
        "every line is keyed: {text_j}"
    );
    // Made unfinished as a crash would leave it: no certificate, no `run-finished`.
    for c in ["certificate.json", "certificate.md", "certificate.html"] {
        std::fs::remove_file(dir.join(c)).unwrap();
    }
    let lines: Vec<String> = text_j
        .lines()
        .filter(|l| !l.contains("\"type\":\"run-finished\""))
        .map(str::to_string)
        .collect();
    let unfinished = lines.join("\n") + "\n";

    // A line edited (the time a removal was done), the chain recomputed: its MAC fails.
    let mut edited = lines.clone();
    let i = edited
        .iter()
        .position(|l| l.contains("\"removed_at\""))
        .unwrap();
    let at = edited[i].find("\"removed_at\":\"").unwrap() + 14;
    edited[i].replace_range(at..at + 4, "1999");
    rechain(&mut edited);
    std::fs::write(&journal, edited.join("\n") + "\n").unwrap();
    let forged = boyong(&env, None, &args);
    assert_eq!(forged.status.code(), Some(1), "{}", said(&forged));
    let f = said(&forged);
    assert!(
        f.contains("never continued") && f.contains("nothing was changed"),
        "{f}"
    );
    assert!(!dir.join("certificate.json").exists());

    // Every MAC stripped and the chain recomputed: a valid but unkeyed chain, refused.
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    std::fs::write(&journal, unkeyed(&lines)).unwrap();
    let unkeyed = boyong(&env, None, &args);
    assert_eq!(unkeyed.status.code(), Some(1), "{}", said(&unkeyed));
    assert!(said(&unkeyed).contains("has no MACs"), "{}", said(&unkeyed));
    assert!(!dir.join("certificate.json").exists());

    // The journal as the crash left it is continued, under the same key.
    std::fs::write(&journal, unfinished).unwrap();
    let again = boyong(&env, None, &args);
    assert_eq!(again.status.code(), Some(0), "{}", said(&again));
    assert!(
        said(&again).contains("continuing the unfinished decommission"),
        "{}",
        said(&again)
    );
    assert!(dir.join("certificate.json").is_file());
}

/// A static site served from `root` by Python's own HTTP server on 127.0.0.1, stopped when
/// dropped.
struct Site {
    child: std::process::Child,
    url: String,
}

impl Site {
    fn serve(root: &std::path::Path) -> Self {
        let port = crate::support::free_port();
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        let t0 = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "python3 -m http.server did not answer on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_failed_assessment_refuses_until_one_passes_whichever_way_it_was_made() {
    let Some(env) = Env::builder("decommission-assessed").sshd().build() else {
        return;
    };
    let (tree, _) = vendor_files(&env);
    let vendor_site = env.write("site-vendor/index.html", "<h1>Perizinan</h1>\n");
    let target_site = env.write("site-target/index.html", "<h1>Perizinan</h1>\n");
    let vendor = Site::serve(vendor_site.parent().unwrap());
    let target = Site::serve(target_site.parent().unwrap());
    let pb = env.write(
        "assessed.yml",
        std::fs::read_to_string(playbook(&env, &tree, None)).unwrap()
            + &format!(
                "assess:\n  vendor_url: {}\n  target_url: {}\n  paths: [\"/\"]\n  repeat: 2\n  thresholds: {{ latency_p95_ratio: 1000, content: equal }}\n",
                vendor.url, target.url
            ),
    );
    let run = boyong(&env, None, &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));
    // The plan's exit status and a line it must show; all it said.
    let plan_says = |code: i32, want: &str| {
        let out = boyong(
            &env,
            None,
            &["decommission", APP, "--plan", "--min-age", "0"],
        );
        let s = said(&out);
        assert_eq!(out.status.code(), Some(code), "{s}");
        assert!(s.contains(want), "{s}");
        s
    };
    plan_says(0, "last assessment passed: none recorded");

    // The migrated site serves another page: `boyong assess` fails, and the decommission
    // is refused, naming the request that failed.
    std::fs::write(&target_site, "<h1>Perizinan</h1>\n<p>rusak</p>\n").unwrap();
    let failed = boyong(&env, None, &["assess", APP]);
    assert_eq!(failed.status.code(), Some(1), "{}", said(&failed));
    let r = plan_says(1, "REFUSED last assessment passed: failed");
    assert!(
        r.contains("GET /") && r.contains("by `boyong assess`"),
        "{r}"
    );
    let confirmed = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(confirmed.status.code(), Some(1), "{}", said(&confirmed));
    assert_untouched(&tree, None);
    assert!(decommissions(&env).is_empty(), "a refusal journals nothing");

    // Mended and assessed again: it holds.
    std::fs::write(&target_site, "<h1>Perizinan</h1>\n").unwrap();
    let passed = boyong(&env, None, &["assess", APP]);
    assert_eq!(passed.status.code(), Some(0), "{}", said(&passed));
    plan_says(0, "last assessment passed: passed");

    // A later run whose `assess` step passed is newer than the failed `boyong assess`:
    // the step's verdict is the last one.
    std::fs::write(&target_site, "<h1>Perizinan</h1>\n<p>rusak</p>\n").unwrap();
    assert_eq!(boyong(&env, None, &["assess", APP]).status.code(), Some(1));
    plan_says(1, "REFUSED last assessment passed: failed");
    // A run alone, assessing nothing, does not clear it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let plain = boyong(&env, None, &["run", pb.to_str().unwrap()]);
    assert_eq!(plain.status.code(), Some(0), "{}", said(&plain));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));
    plan_says(1, "and still the last");
    std::fs::write(&target_site, "<h1>Perizinan</h1>\n").unwrap();
    // (a second later: assessments are ordered by their start, in seconds)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let stepped = env.write(
        "assessed.yml",
        std::fs::read_to_string(&pb)
            .unwrap()
            .replace("\nassess:", "\n  - id: compare\n    assess: {}\nassess:"),
    );
    let again = boyong(&env, None, &["run", stepped.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{}", said(&again));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));
    let by_step = plan_says(0, "last assessment passed: passed");
    assert!(by_step.contains("by step compare of run"), "{by_step}");
}

/// Runs `c` under a pseudo-terminal (Python's `pty`), as an operator at a terminal: when
/// its output shows `prompt`, `ready` is made; once `go` exists, `answer` and a line feed
/// are typed. Its output and exit status.
fn at_a_terminal(
    c: &std::process::Command,
    prompt: &str,
    answer: &str,
    ready: &std::path::Path,
    go: &std::path::Path,
) -> (String, Option<i32>) {
    const DRIVER: &str = r#"
import os, pty, signal, sys, time
signal.alarm(120)  # never a hang: the terminal closes, and the command with it
prompt, answer, ready, go = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3], sys.argv[4]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[5], sys.argv[5:])
seen = b""
def read():
    global seen
    try:
        b = os.read(fd, 4096)
    except OSError:
        return False
    seen += b
    return bool(b)
while prompt not in seen and read():
    pass
open(ready, "w").close()
while prompt in seen and not os.path.exists(go):
    time.sleep(0.05)
os.write(fd, answer + b"\n")
while read():
    pass
sys.stdout.write(seen.decode(errors="replace"))
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut p = std::process::Command::new("python3");
    p.arg("-c")
        .arg(DRIVER)
        .args([prompt, answer])
        .arg(ready)
        .arg(go)
        .arg(c.get_program())
        .args(c.get_args());
    if let Some(d) = c.get_current_dir() {
        p.current_dir(d);
    }
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => p.env(k, v),
            None => p.env_remove(k),
        };
    }
    let out = p.output().expect("python3 runs");
    (said(&out), out.status.code())
}

#[test]
fn a_run_that_ends_while_the_operator_reads_the_plan_refuses_the_removal() {
    let Some(env) = Env::builder("decommission-meanwhile").sshd().build() else {
        return;
    };
    let tree = migrated_tree_app(&env);
    let (ready, go) = (env.path("ready"), env.path("go"));
    let mut c = env.command(&["decommission", APP, "--min-age", "0"]);
    c.env("BOYONG_OPERATOR", "petugas-uji");
    let waiting = std::thread::scope(|s| {
        let h = s.spawn(|| at_a_terminal(&c, "Type the app's name", APP, &ready, &go));
        // The plan is on screen, all its checks passed, and no lock is held: another
        // operator migrates the app again meanwhile.
        let t0 = std::time::Instant::now();
        while !ready.exists() {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(60),
                "no prompt"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let pb = env.path("dectest.yml");
        let rerun = boyong(&env, None, &["run", pb.to_str().unwrap()]);
        assert_eq!(rerun.status.code(), Some(0), "{}", said(&rerun));
        std::fs::write(&go, "").unwrap();
        h.join().unwrap()
    });
    let (out, code) = waiting;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the migration's latest run changed since the plan above was shown")
            && out.contains("nothing was changed"),
        "{out}"
    );
    assert_untouched(&tree, None);
    assert!(decommissions(&env).is_empty(), "nothing was journaled");
}
