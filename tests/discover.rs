//! `boyong discover` against a real vendor host: a container of
//! `boyong-fixture/vendor-host:1` (Debian's Apache2, nginx, php-fpm, MariaDB, Node.js,
//! OpenSSH; `fixtures/discover/`) on a bridge network the test makes, its sshd published on
//! 127.0.0.1:FREE, keys made here and copied in. Five apps of five stacks: WordPress
//! (Debian's package) and a plain PHP app behind Apache2 with php-fpm, a Laravel-style
//! `.env` app whose database is on port 3307 and a static site behind nginx, a Node.js app
//! of a systemd unit behind an Apache2 proxy. Discovered in one command, read-only (the
//! container's `docker diff` shows no change but sshd's login records); every draft
//! validates and plans live; four migrate end to end unchanged; a second discovery keeps
//! an edited draft.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::docker::docker;
use support::env::Env;
use support::text;

/// The vendor host's container; removed with the test's label.
struct Vendor {
    name: String,
    port: u16,
    key: PathBuf,
    known_hosts: PathBuf,
    passwords: Vec<(&'static str, String)>,
}

/// Builds the fixture image `which` (fixtures/base-images.sh) if it is missing.
fn image(which: &str) -> bool {
    let ok = Command::new("bash")
        .arg(format!(
            "{}/fixtures/base-images.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(which)
        .status()
        .expect("bash runs")
        .success();
    assert!(ok, "fixtures/base-images.sh {which} failed");
    true
}

fn password(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{:x}", n ^ u128::from(std::process::id()))
}

impl Env {
    /// Starts the vendor host and waits until its services and sshd answer.
    fn vendor(&self) -> Vendor {
        let label = self.label().arg();
        let name = format!("{}-vendor", self.name);
        let net = format!("{}-net", self.name);
        assert!(
            docker(&["network", "create", "--label", &label, &net])
                .status
                .success()
        );
        let key = self.path("keys/client");
        std::fs::create_dir_all(self.path("keys")).unwrap();
        support::sshd::keygen(&key, "ed25519", "");
        let host_key = self.path("keys/ssh_host_ed25519_key");
        support::sshd::keygen(&host_key, "ed25519", "");
        let port = support::free_port();
        let passwords = vec![
            ("PORTAL_PW", password("portal")),
            ("IZIN_PW", password("izin")),
            ("ARSIP_PW", password("arsip")),
        ];
        let mut args: Vec<String> = [
            "create",
            "--label",
            &label,
            "--name",
            &name,
            "--network",
            &net,
            "--hostname",
            "vendor1",
            "-p",
        ]
        .map(str::to_owned)
        .to_vec();
        args.push(format!("127.0.0.1:{port}:22"));
        let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        args.extend(["-e".into(), format!("AUTHORIZED_KEY={}", pubkey.trim())]);
        for (k, v) in &passwords {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.push("boyong-fixture/vendor-host:1".into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = docker(&refs);
        assert!(out.status.success(), "{}", text(&out.stderr));
        for f in ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"] {
            let src = self.path(&format!("keys/{f}"));
            let dst = format!("{name}:/etc/ssh/{f}");
            assert!(
                docker(&["cp", src.to_str().unwrap(), &dst])
                    .status
                    .success()
            );
        }
        let start = format!(
            "{}/fixtures/discover/vendor-start.sh",
            env!("CARGO_MANIFEST_DIR")
        );
        let dst = format!("{name}:/usr/local/bin/vendor-start.sh");
        assert!(docker(&["cp", &start, &dst]).status.success());
        assert!(docker(&["start", &name]).status.success());
        let t0 = Instant::now();
        while !docker(&["exec", &name, "test", "-f", "/run/fixture-up"])
            .status
            .success()
        {
            assert!(
                t0.elapsed() < Duration::from_secs(180),
                "the vendor host did not start:\n{}",
                text(&docker(&["logs", &name]).stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let hk = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let hk: Vec<&str> = hk.split_whitespace().take(2).collect();
        let known_hosts = self.write(
            "keys/known_hosts",
            format!("[127.0.0.1]:{port} {}\n", hk.join(" ")),
        );
        // sshd answers
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(180),
                "sshd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Vendor {
            name,
            port,
            key,
            known_hosts,
            passwords,
        }
    }

    fn discover(&self, v: &Vendor, publish_from: u16) -> std::process::Output {
        self.run(&[
            "discover",
            "127.0.0.1",
            "--port",
            &v.port.to_string(),
            "--user",
            "deploy",
            "--identity",
            v.key.to_str().unwrap(),
            "--known-hosts",
            v.known_hosts.to_str().unwrap(),
            "--drafts",
            self.path("drafts").to_str().unwrap(),
            "--publish-from",
            &publish_from.to_string(),
        ])
    }
}

/// The container's changed paths (`docker diff`), sorted.
fn diff(name: &str) -> Vec<String> {
    let mut d: Vec<String> = text(&docker(&["diff", name]).stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    d.sort();
    d
}

fn secret_env(v: &Vendor, cmd: &mut Command) {
    for (app, var) in [
        ("dsc-portal", "PORTAL_PW"),
        ("dsc-izin", "IZIN_PW"),
        ("dsc-arsip", "ARSIP_PW"),
    ] {
        let pw = &v.passwords.iter().find(|(k, _)| *k == var).unwrap().1;
        let up = app.to_uppercase().replace('-', "_");
        cmd.env(format!("{up}_VENDOR_DB_PASSWORD"), pw)
            .env(format!("{up}_DB_PASSWORD"), format!("gov-{pw}"));
    }
}

/// The body of `GET /` at 127.0.0.1:`port`, with the Host header a browser sends (WordPress
/// redirects a request without it to its address).
fn get(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    // A TCP health check passes once the engine's port proxy accepts: the app may start later.
    let t0 = Instant::now();
    loop {
        let mut out = String::new();
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(s, "GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            let _ = s.read_to_string(&mut out);
        }
        if !out.is_empty() || t0.elapsed() > Duration::from_secs(20) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                s.push_str(&String::from_utf8_lossy(
                    &std::fs::read(&p).unwrap_or_default(),
                ));
            }
        }
    }
    s
}

#[test]
fn a_vendor_host_of_five_stacks_is_discovered_read_only_and_its_drafts_migrate() {
    let Some(env) = Env::builder("discover").docker().busybox().build() else {
        return;
    };
    assert!(image("vendor-host") && image("node"));
    let v = env.vendor();
    let publish = support::free_port();
    let before = diff(&v.name);
    let t0 = Instant::now();
    let out = env.discover(&v, publish);
    let took = t0.elapsed();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{said}");
    eprintln!("discovery took {took:?}:\n{said}");

    // Read-only: nothing changed in the container but sshd's records of the login.
    let after = diff(&v.name);
    let changed: Vec<&String> = after
        .iter()
        .filter(|p| !before.contains(p))
        .filter(|p| {
            ![
                "/var/log/wtmp",
                "/var/log/lastlog",
                "/var/log/btmp",
                "/run/utmp",
                "/var/run/utmp",
                "/run/motd.dynamic",
            ]
            .iter()
            .any(|ok| p.ends_with(ok))
        })
        .collect();
    assert!(
        changed.is_empty(),
        "discovery changed the vendor host: {changed:?}"
    );

    // The inventory: five apps, their stacks, the database on 3307, no password anywhere.
    let inv: Value = serde_json::from_str(
        &std::fs::read_to_string(
            env.state()
                .join(format!("inventory/127.0.0.1_{}.json", v.port)),
        )
        .unwrap(),
    )
    .unwrap();
    let apps = inv["apps"].as_array().unwrap();
    let stack = |name: &str| {
        apps.iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no app {name} in {inv:#}"))
    };
    assert_eq!(stack("dsc-portal")["stack"], "wordpress");
    assert!(
        stack("dsc-portal")["version"]
            .as_str()
            .unwrap()
            .starts_with("WordPress 6.")
    );
    assert_eq!(stack("dsc-portal")["php"]["version"], "8.2");
    assert_eq!(stack("dsc-izin")["stack"], "laravel");
    assert_eq!(stack("dsc-izin")["root"], "/srv/www/dsc-izin");
    assert_eq!(stack("dsc-izin")["database"]["port"], 3307);
    assert_eq!(stack("dsc-info")["stack"], "static");
    assert_eq!(stack("dsc-kios")["stack"], "node");
    assert_eq!(stack("dsc-kios")["service"]["name"], "dsc-kios.service");
    assert_eq!(stack("dsc-arsip")["stack"], "plain-php");
    assert_eq!(stack("dsc-arsip")["database"]["database"], "arsip");
    assert!(stack("dsc-portal")["cron"].as_array().unwrap().len() == 1);
    let csv = std::fs::read_to_string(
        env.state()
            .join(format!("inventory/127.0.0.1_{}.csv", v.port)),
    )
    .unwrap();
    assert!(csv.starts_with("host,app,stack,"), "{csv}");
    assert_eq!(
        csv.lines().filter(|l| l.contains(",dsc-")).count(),
        5,
        "{csv}"
    );
    let everything = format!(
        "{said}{}{}",
        all_text(&env.state()),
        all_text(&env.path("drafts"))
    );
    for (_, pw) in &v.passwords {
        assert!(
            !everything.contains(pw.as_str()),
            "a vendor password was printed or stored"
        );
    }

    // status shows them as discovered.
    let st = env.run(&["status", "--offline", "--json"]);
    let rows: Value = serde_json::from_slice(&st.stdout).unwrap();
    for app in [
        "dsc-portal",
        "dsc-izin",
        "dsc-info",
        "dsc-kios",
        "dsc-arsip",
    ] {
        assert!(
            rows.as_array()
                .unwrap()
                .iter()
                .any(|r| r["app"] == app && r["lifecycle"] == "discovered"),
            "{app}: {rows:#}"
        );
    }

    // Every draft validates, its TODOs listed.
    let drafts: Vec<PathBuf> = [
        "dsc-portal",
        "dsc-izin",
        "dsc-info",
        "dsc-kios",
        "dsc-arsip",
    ]
    .iter()
    .map(|a| env.path(&format!("drafts/{a}.yml")))
    .collect();
    let mut validate = env.command(&["validate"]);
    validate.args(&drafts);
    let out = validate.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("TODO "), "{}", text(&out.stdout));

    // Live plans: no problem.
    for d in &drafts {
        let mut plan = env.command(&["plan", d.to_str().unwrap()]);
        secret_env(&v, &mut plan);
        let out = plan.output().unwrap();
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{}:\n{said}", d.display());
    }

    // Four migrate end to end, unchanged: the static site, WordPress, the .env app whose
    // database is on 3307, the Node.js app of a systemd unit.
    for (app, expect) in [
        ("dsc-info", "Jam layanan"),
        ("dsc-portal", "Selamat datang"),
        ("dsc-izin", "Warung Bu Tini"),
        ("dsc-kios", "KTP"),
    ] {
        let d = env.path(&format!("drafts/{app}.yml"));
        let draft = std::fs::read_to_string(&d).unwrap();
        let published: u16 = draft
            .split("\"127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no published port in {draft}"));
        assert!(
            published >= publish && published < publish + 6,
            "{published}"
        );
        let mut run = env.playbook_run(&d);
        secret_env(&v, &mut run);
        let out = run.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{app}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let body = get(published);
        assert!(body.contains(expect), "{app} serves:\n{body}");
    }

    // A second discovery: drafts unchanged; an edited one kept, the new one beside it.
    let portal = env.path("drafts/dsc-portal.yml");
    support::edit_file(&portal, "timeout: 60s", "timeout: 90s");
    let out = env.discover(&v, publish);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("dsc-info.yml: unchanged"), "{said}");
    assert!(said.contains("dsc-portal.yml: edited, kept"), "{said}");
    assert!(
        said.contains("-        timeout: 90s") && said.contains("+        timeout: 60s"),
        "{said}"
    );
    assert!(
        std::fs::read_to_string(&portal)
            .unwrap()
            .contains("timeout: 90s")
    );
    assert!(env.path("drafts/dsc-portal.yml.new").exists());
}

#[test]
fn bad_input_exits_2_with_file_line_col() {
    let Some(env) = Env::builder("discover-bad").build() else {
        return;
    };
    let hosts = env.write(
        "hosts.txt",
        "host: 10.0.0.5\nuser: deploy\nidentity: k\nknown_hosts: kh\n\nhost: 10.0.0.6\nprot: 22\n",
    );
    let out = env.run(&["discover", "--hosts", hosts.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("hosts.txt:7:1: unknown key `prot`"), "{err}");
    assert!(
        err.contains("hosts.txt:6:1: the host ending at line 7 has no `user:`"),
        "{err}"
    );
    let out = env.run(&["discover", "10.0.0.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--user is required"),
        "{}",
        text(&out.stderr)
    );
    assert!(!env.state().exists(), "bad input wrote state");
    // --show-commands: the script and its commands, no host contacted
    let out = env.run(&["discover", "--show-commands"]);
    assert_eq!(out.status.code(), Some(0));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("sh -s -- NONCE") && shown.contains("ss -Hltnp"),
        "{shown}"
    );
}
