//! `boyong run` of fetch and exec steps against a real OpenSSH server: the pulled tree
//! equals the source (every file, mode and link), secrets stay off command lines, host
//! keys are strict, a dropped connection is retried to the same result, and rollback
//! undoes it all.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use boyong::artifact::Node;
use boyong::artifact::manifest;
use support::env::Env;
use support::text;

const TOKEN: &str = "tok-4d1f7e0c9b-only-on-stdin";

/// A vendor tree with the names and kinds that break naive copies; `full` adds 10,000
/// small files and a 100 MB file.
fn vendor_tree(root: &Path, full: bool) {
    let w = |p: &str, data: &[u8]| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w("index.php", b"<?php echo 'halo';\n");
    w("app/config/db.php", b"<?php return [];\n");
    w("app/name with space.txt", b"spasi");
    w("app/ünïcödé ꦧꦺꦴꦪꦺꦴꦁ.txt", "aksara Jawa 🚚".as_bytes());
    w("app/-leading-dash", b"dash");
    w("app/back\\slash", b"bs");
    w("empty-file", b"");
    w("cache/session-1", b"excluded");
    w("bin/run.sh", b"#!/bin/sh\necho run\n");
    std::fs::set_permissions(
        root.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    w("bin/suid", b"suid");
    std::fs::set_permissions(
        root.join("bin/suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("uploads/empty")).unwrap();
    std::os::unix::fs::symlink("../index.php", root.join("app/link-inside")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("app/link-outside")).unwrap();
    std::fs::hard_link(root.join("index.php"), root.join("index-hardlink.php")).unwrap();
    let (files, big_mb) = if full { (10_000, 100) } else { (500, 8) };
    for i in 0..files {
        w(
            &format!("many/{:02}/f{i}.txt", i % 50),
            format!("file {i}\n").as_bytes(),
        );
    }
    let ok = Command::new("head")
        .args(["-c", &format!("{big_mb}M"), "/dev/urandom"])
        .stdout(std::fs::File::create(root.join("big.bin")).unwrap())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

impl Env {
    fn new() -> Option<Self> {
        Self::with_tree(false)
    }

    /// A vendor sshd with the tree (see [`vendor_tree`]) in `vendor/www`; every run keeps to
    /// its plan. The token is in the runs' environment.
    fn with_tree(full: bool) -> Option<Self> {
        Self::with(Self::builder("fetch").sshd(), full)
    }

    fn with(builder: support::env::Builder, full: bool) -> Option<Self> {
        let env = builder.plan_fidelity().var("WISATA_TOKEN", TOKEN).build()?;
        vendor_tree(&env.src(), full);
        Some(env)
    }

    fn src(&self) -> PathBuf {
        self.path("vendor/www")
    }

    /// Writes the playbook, with the vendor at `port`.
    fn playbook(&self, port: u16, extra_fetch: &str) -> PathBuf {
        self.write(
            "app.yml",
            format!(
                r#"version: 1
app: wisata
vendor:
  host: 127.0.0.1
  port: {port}
  user: {user}
  identity: {key}
  known_hosts: {kh}
vars:
  token: {{ env: WISATA_TOKEN }}
  marker: "{marker}"
steps:
  - id: code
    fetch:
      path: {src}
      exclude: ["cache/"]{extra_fetch}
  - id: maintenance
    exec:
      run: sleep 1; printf %s "$TOKEN" | sha256sum > {{{{ vars.marker }}}}
      undo: rm -f {{{{ vars.marker }}}}
      env: {{ TOKEN: "{{{{ vars.token }}}}" }}
"#,
                user = self.sshd().user,
                key = self.sshd().client_key.display(),
                kh = self.sshd().known_hosts.display(),
                marker = self.path("maintenance.marker").display(),
                src = self.src().display(),
            ),
        )
    }

    fn run_dir(&self) -> PathBuf {
        self.last_run("wisata")
    }

    /// The source as the artifact must be: setuid dropped, `cache/` excluded.
    fn expected(&self) -> manifest::Tree {
        let mut t = manifest::scan(&self.src()).unwrap();
        t.retain(|k, _| !k.starts_with(b"cache"));
        if let Some(Node::File { mode, .. }) = t.get_mut(b"bin/suid".as_slice()) {
            *mode = 0o755;
        }
        t
    }
}

/// No partial pull (`<step>.partial-*`) is left in `artifacts`.
fn no_partial(artifacts: &Path) -> bool {
    std::fs::read_dir(artifacts).map_or(true, |d| {
        !d.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains(".partial"))
    })
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    boyong::digest::hex(&sha2::Sha256::digest(b))
}

#[test]
fn run_pulls_the_tree_exactly_runs_exec_with_secrets_off_the_command_line_and_rollback_undoes_it() {
    let Some(env) = Env::with_tree(true) else {
        return;
    };
    let pb = env.playbook(env.sshd().port, "");
    let mut child = env
        .command(&["run", pb.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While the exec step runs, no process on the vendor host shows the secret.
    let t0 = Instant::now();
    let mut looked = 0;
    while child.try_wait().unwrap().is_none() {
        let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        assert!(
            !text(&ps.stdout).contains(TOKEN),
            "a command line holds the secret"
        );
        looked += 1;
        assert!(t0.elapsed() < Duration::from_secs(120), "the run hangs");
        std::thread::sleep(Duration::from_millis(25));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(looked > 10, "ps was checked while the run ran");

    let artifacts = env.run_dir().join("artifacts");
    let got = manifest::scan(&artifacts.join("code")).unwrap();
    assert_eq!(
        got,
        env.expected(),
        "the pulled tree differs from the source"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("link `app/link-outside` points outside the tree: /etc/passwd"),
        "{err}"
    );
    assert!(
        err.contains("setuid/setgid/sticky bit dropped: bin/suid"),
        "{err}"
    );
    // The manifest is what coreutils checks.
    let check = Command::new("sha256sum")
        .args(["--strict", "--quiet", "-c"])
        .arg(artifacts.join("code.manifest"))
        .current_dir(artifacts.join("code"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stdout));
    // The command got the secret through its environment.
    let marker = std::fs::read_to_string(env.path("maintenance.marker")).unwrap();
    assert!(
        marker.starts_with(&sha256_hex(TOKEN.as_bytes())),
        "{marker}"
    );
    // No secret anywhere in the state directory.
    let grep = Command::new("grep")
        .args(["-rqF", TOKEN])
        .arg(env.path("state"))
        .status()
        .unwrap();
    assert_eq!(grep.code(), Some(1), "the secret is in the state directory");

    let rb = env.run(&["rollback", "wisata", "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(!artifacts.join("code").exists());
    assert!(!artifacts.join("code.manifest").exists());
    assert!(
        !env.path("maintenance.marker").exists(),
        "the undo command ran on the vendor host"
    );
}

#[test]
fn an_unknown_host_key_refuses_the_run_and_accept_new_records_it_in_the_journal() {
    let Some(env) = Env::new() else { return };
    std::fs::write(&env.sshd().known_hosts, "").unwrap();
    let pb = env.playbook(env.sshd().port, "");
    let out = env.run(&["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("is not in") && err.contains("SHA256:"),
        "{err}"
    );
    assert!(
        err.contains(&env.sshd().host_key_pub),
        "the line to add is shown: {err}"
    );
    assert!(!env.run_dir().join("artifacts/code").exists());

    let out = env.run(&["run", pb.to_str().unwrap(), "--accept-new-host-key"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let journal = std::fs::read_to_string(env.run_dir().join("journal.jsonl")).unwrap();
    assert!(journal.contains("host-key-accepted"), "{journal}");
    assert!(
        std::fs::read_to_string(&env.sshd().known_hosts)
            .unwrap()
            .contains(&env.sshd().host_key_pub)
    );
}

#[test]
fn a_missing_path_and_a_vendor_checksum_mismatch_fail_the_step_by_name() {
    let Some(env) = Env::new() else { return };
    let sums = env.path("vendor/SHA256SUMS");
    let good = sha256_hex(&std::fs::read(env.src().join("index.php")).unwrap());
    std::fs::write(
        &sums,
        format!(
            "{good}  index.php\n{}  ./app/config/db.php\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let pb = env.playbook(
        env.sshd().port,
        &format!("\n      sha256sums: {}", sums.display()),
    );
    let out = env.run(&["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`app/config/db.php` does not match the vendor's"),
        "{err}"
    );
    assert!(err.contains(&"0".repeat(64)), "{err}");
    assert!(
        !env.run_dir().join("artifacts/code").exists(),
        "a failed pull leaves no artifact"
    );
    assert!(no_partial(&env.run_dir().join("artifacts")));

    let text_pb = std::fs::read_to_string(&pb)
        .unwrap()
        .replace(env.src().to_str().unwrap(), "/nonexistent/www");
    std::fs::write(&pb, text_pb).unwrap();
    let out = env.run(&["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/nonexistent/www does not exist on the vendor host"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_connection_dropped_mid_transfer_is_retried_and_the_result_equals_a_clean_pull() {
    let Some(env) = Env::new() else { return };
    let (port, cut) = support::sshd::cutting_proxy(env.sshd().port, 5_000_000);
    env.sshd().known_at(port);
    let pb = env.playbook(port, "");
    let out = env.run(&["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(cut.load(Ordering::SeqCst), "the proxy cut a connection");
    let err = text(&out.stderr);
    assert!(err.contains("attempt 2"), "the step was retried: {err}");
    let artifacts = env.run_dir().join("artifacts");
    assert_eq!(
        manifest::scan(&artifacts.join("code")).unwrap(),
        env.expected()
    );
    assert!(no_partial(&artifacts));
    let m = std::fs::read(artifacts.join("code.manifest")).unwrap();
    assert_eq!(
        m,
        manifest::manifest_bytes(&env.expected()),
        "the manifest equals a clean pull's"
    );
}

#[test]
fn a_file_the_ssh_user_cannot_read_fails_the_step_naming_it() {
    // The vendor's login runs without capabilities, so even root is held to file modes.
    let Some(env) = Env::with(
        Env::builder("fetch").sshd_config(
            "ForceCommand /usr/bin/setpriv --bounding-set=-all /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
        ),
        false,
    ) else {
        return;
    };
    let locked = env.write("vendor/www/app/config/secret.key", b"k");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let pb = env.playbook(env.sshd().port, "");
    let out = env.run(&["run", pb.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("tar on the vendor host failed"), "{err}");
    assert!(
        err.contains("app/config/secret.key") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(
        !env.run_dir().join("artifacts/code").exists(),
        "never silently missing: no artifact"
    );
    assert!(no_partial(&env.run_dir().join("artifacts")));
}

#[test]
fn a_full_disk_on_our_side_fails_clearly_and_leaves_no_partial_artifact() {
    let Some(env) = Env::new() else { return };
    let state = env.path("state");
    let Some(_unmount) = support::tmpfs::mounted(&state, 8 << 20) else {
        return;
    };
    let pb = env.playbook(env.sshd().port, "");
    let out = env.run(&["run", pb.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        !err.contains("attempt 2"),
        "a full disk is not retried: {err}"
    );
    let artifacts = env.run_dir().join("artifacts");
    let left: Vec<_> = std::fs::read_dir(&artifacts).unwrap().collect();
    assert!(left.is_empty(), "partial artifact left: {left:?}");
    let v = env.run(&["journal", "verify", "wisata"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stdout));
}

#[test]
fn fetching_one_file_gives_a_tree_of_that_file() {
    let Some(env) = Env::new() else { return };
    let pb = env.playbook(env.sshd().port, "");
    let one = env.src().join("app/ünïcödé ꦧꦺꦴꦪꦺꦴꦁ.txt");
    let text_pb = std::fs::read_to_string(&pb)
        .unwrap()
        .replace(
            &format!("path: {}\n", env.src().display()),
            &format!("path: \"{}\"\n", one.display()),
        )
        .replace("      exclude: [\"cache/\"]\n", "");
    std::fs::write(&pb, text_pb).unwrap();
    let out = env.run(&["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got = manifest::scan(&env.run_dir().join("artifacts/code")).unwrap();
    let keys: Vec<String> = got.keys().map(|k| text(k)).collect();
    assert_eq!(keys, ["ünïcödé ꦧꦺꦴꦪꦺꦴꦁ.txt"]);
    let Some(Node::File { sha256, .. }) = got.values().next() else {
        panic!("not a file")
    };
    assert_eq!(*sha256, sha256_hex(&std::fs::read(&one).unwrap()));
}

#[test]
fn a_step_past_its_timeout_ends_the_command_on_the_vendor_host_too() {
    let Some(env) = Env::new() else { return };
    let pb = env.path("slow.yml");
    std::fs::write(
        &pb,
        format!(
            "version: 1\napp: slow\n{}steps:\n  - id: wait\n    timeout: 1s\n    exec:\n      run: \"sleep 37.25 & trap '' TERM; sleep 37.5\"\n",
            env.sshd().vendor_yaml(),
        ),
    )
    .unwrap();
    let out = env.run(&["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("did not finish within its timeout of 1s"),
        "{}",
        text(&out.stderr)
    );
    // Both sleeps go: the one that takes TERM at once, the one that ignores it 5 s later.
    let t0 = Instant::now();
    loop {
        let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        if !text(&ps.stdout)
            .lines()
            .any(|l| l.starts_with("sleep 37.25") || l.starts_with("sleep 37.5"))
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the remote command outlived the step: {}",
            text(&ps.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_relative_state_directory_is_rolled_back_from_anywhere() {
    let Some(env) = Env::new() else { return };
    let pb = env.playbook(env.sshd().port, "");
    // `--state state`, relative to where the run starts; the rollback starts elsewhere
    // with the same directory named absolutely.
    let out = env
        .command(&["run", pb.to_str().unwrap(), "--state", "state"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(env.run_dir().join("artifacts/code").is_dir());
    let rb = env
        .command(&["rollback", "wisata", "--yes"])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(
        !env.run_dir().join("artifacts/code").exists(),
        "the artifact is gone"
    );
}

/// Issue 21, item 4: a vendor's file name and link target holding terminal escapes (a
/// title rewrite, an erased line with a fake `finished: succeeded`), pulled through the
/// real sshd, reach neither the terminal, nor the log as shown, nor the Markdown report
/// as a raw ESC (or CR, BEL).
#[test]
fn terminal_escapes_in_vendor_names_are_shown_escaped_everywhere() {
    let Some(env) = Env::new() else { return };
    let name = "title\x1b]0;pwned\x07.txt";
    let target = "/etc/\x1b[2K\rfinished: succeeded";
    std::os::unix::fs::symlink(target, env.src().join(name)).unwrap();
    let pb = env.playbook(env.sshd().port, "");
    let out = env.run(&["run", pb.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // The link is reported, escaped.
    assert!(err.contains("points outside the tree"), "{err}");
    assert!(err.contains("\\e]0;pwned"), "{err}");
    let raw = |s: &str| s.contains('\x1b') || s.contains('\x07') || s.contains('\r');
    assert!(
        !raw(&err),
        "raw control characters on the terminal: {err:?}"
    );
    assert!(!raw(&text(&out.stdout)), "{:?}", text(&out.stdout));
    let log = std::fs::read_to_string(env.run_dir().join("log.jsonl")).unwrap();
    assert!(log.contains("pwned"), "{log}");
    assert!(!raw(&log), "raw control characters in log.jsonl");
    let report = env.run(&["report", "wisata", "--format", "md"]);
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let md = text(&report.stdout);
    assert!(md.contains("wisata"), "{md}");
    assert!(
        !raw(&md),
        "raw control characters in the Markdown report: {md:?}"
    );
}

/// Issue 21, item 9: every file a run writes in the state directory is mode 0600 and every
/// directory 0700, as docs/state.md says (a fetched tree's own entries keep the vendor's
/// modes, minus setuid/setgid, and are not counted).
#[test]
fn every_file_a_run_writes_has_the_documented_mode() {
    let Some(env) = Env::new() else { return };
    let pb = env.playbook(env.sshd().port, "");
    let out = env.run(&["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.run_dir();
    let tree = run.join("artifacts/code");
    let mut wrong = Vec::new();
    let mut seen = 0;
    let mut todo = vec![env.state()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            // The tree's own entries, its root (tar's `.`) included, are the vendor's.
            if p.starts_with(&tree) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let want = if meta.is_dir() { 0o700 } else { 0o600 };
            if meta.is_dir() {
                todo.push(p.clone());
            }
            seen += 1;
            if mode != want {
                wrong.push(format!("{} is {mode:o}, not {want:o}", p.display()));
            }
        }
    }
    for f in ["log.jsonl", "journal.jsonl", "plan.json", "playbook.yml"] {
        assert!(run.join(f).is_file(), "{f}");
    }
    assert!(run.join("artifacts/code.manifest").is_file());
    assert!(seen > 8, "{seen}");
    assert!(wrong.is_empty(), "{wrong:#?}");
}
