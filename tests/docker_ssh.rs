//! `target.docker: ssh://USER@HOST:PORT`: the Docker API of the real engine spoken over an
//! SSH channel (`direct-streamlocal`) to its socket, through a real OpenSSH sshd started on
//! a free loopback port with keys made at test time (`AllowStreamLocalForwarding yes`).
//! The same sshd is the vendor host. A migration (fetch, build, deploy behind an HTTP
//! health check) plans, runs, shows in `status` and `status --check`, and rolls back
//! through it; its health checks of `127.0.0.1:PORT` (the target host) travel through the
//! SSH connection (`direct-tcpip`, seen in the sshd's debug log), for the run's gate and
//! for `status --check` alike. An sshd that does not forward is named with what to set; an
//! unknown host key is refused with its fingerprint, a changed one as a possible
//! man-in-the-middle; nothing is created. A playbook's `ssh://` target without its key or
//! known_hosts, or with a `route.assess` (which would reach the new release from this
//! machine), is an error at its line and column.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::env::Env;
use support::{serves, site, text};

use std::path::PathBuf;
use std::process::{Command, Output};

/// The sshd's settings: the engine's socket and TCP forwarded (`tcp`: yes or no; OpenSSH
/// forwards a socket only when TCP forwarding is allowed too); its log at debug level,
/// where each forwarded channel is written.
fn forwarding(tcp: &str) -> String {
    format!("AllowStreamLocalForwarding yes\nAllowTcpForwarding {tcp}\nLogLevel DEBUG1\n")
}

impl Env {
    /// An sshd (vendor host and engine host, forwarding TCP when `tcp` is `yes`), the
    /// engine with busybox; `None` (the test skips) where one is missing.
    fn ssh(test: &str, tcp: &str) -> Option<Self> {
        let env = Self::builder(test)
            .sshd_config(&forwarding(tcp))
            .busybox()
            .plan_fidelity()
            .build()?;
        env.write("vendor/www/index.html", "release 1\n");
        Some(env)
    }

    /// `target:` for the engine behind the test's sshd, its host key checked against
    /// `known_hosts`.
    fn ssh_target(&self, known_hosts: &std::path::Path) -> String {
        let s = self.sshd();
        format!(
            "target:\n  docker: ssh://{}@127.0.0.1:{}\n  identity: {}\n  known_hosts: {}\n",
            s.user,
            s.port,
            s.client_key.display(),
            known_hosts.display()
        )
    }

    /// fetch → build → deploy on the engine behind the sshd, health checked over HTTP.
    fn migration(&self) -> PathBuf {
        self.write(
            "situs.yml",
            format!(
                "version: 1\napp: situs\n{vendor}{target}\
                 steps:\n  - id: code\n    fetch: {{ path: {src} }}\n{image}{web}",
                vendor = self.sshd().vendor_yaml(),
                target = self.ssh_target(&self.sshd().known_hosts),
                src = self.path("vendor/www").display(),
                image = site::image_step("boyong-fixture/busybox:1"),
                web = site::web_step(&self.name, self.port, "/", "5s", ""),
            ),
        )
    }

    /// A deploy of `image` only, on the engine behind the sshd, its key checked against
    /// `known_hosts`.
    fn deploy_only(&self, image: &str, known_hosts: &std::path::Path) -> PathBuf {
        self.write(
            "web.yml",
            format!(
                "version: 1\napp: situs\nvendor: {{ host: 127.0.0.1, user: x, identity: none, known_hosts: none }}\n{}\
                 steps:\n  - id: web\n    deploy:\n      image: {image}\n      name: {}\n      ports: [\"127.0.0.1:{}:8080\"]\n      health:\n        http: http://127.0.0.1:{}/\n        timeout: 3s\n        interval: 200ms\n",
                self.ssh_target(known_hosts),
                self.name,
                self.port,
                self.port
            ),
        )
    }

    /// How many TCP connections to `127.0.0.1:PORT` (the app's published port) the sshd
    /// made for a client so far (`direct-tcpip`, from its debug log).
    fn forwarded_to_app(&self) -> usize {
        let needle = format!("target 127.0.0.1 port {}", self.port);
        self.sshd()
            .log()
            .lines()
            .filter(|l| l.contains("direct_tcpip") && l.contains(&needle))
            .count()
    }

    /// The one row of `boyong status ARGS --json`.
    fn status_row(&self, args: &[&str]) -> (Output, serde_json::Value) {
        let mut all = vec!["status", "--json"];
        all.extend_from_slice(args);
        let st = self.run(&all);
        let rows: serde_json::Value = serde_json::from_slice(&st.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&st.stderr)));
        let row = rows.as_array().unwrap()[0].clone();
        (st, row)
    }
}

/// The SHA-256 fingerprint of the public key file `pub_file` (`SHA256:…`).
fn fingerprint(pub_file: &std::path::Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .output()
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn a_migration_through_ssh_plans_runs_shows_in_status_is_checked_and_rolls_back() {
    let Some(env) = Env::ssh("ssh-e2e", "yes") else {
        return;
    };
    let pb = env.migration();
    let endpoint = format!("ssh://{}@127.0.0.1:{}", env.sshd().user, env.sshd().port);

    // The live plan asks the engine through the SSH connection.
    let plan = env.run(&["plan", pb.to_str().unwrap()]);
    let said = text(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{said}\n{}",
        text(&plan.stderr)
    );
    assert!(said.contains(&format!("at {endpoint}")), "{said}");
    assert!(said.contains("boyong-fixture/busybox:1"), "{said}");

    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "release 1");
    assert_eq!(env.containers(), std::slice::from_ref(&env.name));
    // The health gate reached 127.0.0.1:PORT as the target host sees it: through the
    // SSH connection, not from this machine.
    let gate = env.forwarded_to_app();
    assert!(
        gate >= 1,
        "no health check through the sshd:\n{}",
        env.sshd().log()
    );
    // The engine host's key is journaled, for auditors.
    let offered = fingerprint(&env.sshd().dir.path().join("host_ed25519.pub"));
    let noted: Vec<String> = support::journal(&env.last_run("situs"))
        .iter()
        .filter(|r| r["kind"] == "target-host-key")
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(noted.len(), 1, "{noted:?}");
    assert!(noted[0].contains(&offered), "{noted:?}");

    // Status asks the same engine over SSH (the playbook's key and known_hosts).
    let (st, row) = env.status_row(&[]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stderr));
    assert_eq!(row["target"], endpoint.as_str(), "{row}");
    assert_eq!(row["live"], "checked", "{row}");
    assert_eq!(row["container"]["state"], "running", "{row}");
    assert_eq!(row["drift"], false, "{row}");

    let (st, row) = env.status_row(&["--check"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stderr));
    assert_eq!(row["check"]["ok"], true, "{row}");
    assert!(
        row["check"]["said"]
            .as_str()
            .unwrap()
            .contains(&format!("GET http://127.0.0.1:{}/ answered 200", env.port)),
        "{row}"
    );

    // So did the check, now.
    assert!(env.forwarded_to_app() > gate, "{}", env.sshd().log());

    let rb = env.rollback("situs");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    assert!(
        env.label().images().is_empty(),
        "the built image is removed"
    );
}

#[test]
fn an_sshd_that_does_not_forward_to_the_engine_is_named_and_nothing_is_created() {
    let Some(env) = Env::ssh("ssh-noforward", "no") else {
        return;
    };
    let out =
        env.run_playbook(&env.deploy_only("boyong-fixture/busybox:1", &env.sshd().known_hosts));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let endpoint = format!("ssh://{}@127.0.0.1:{}", env.sshd().user, env.sshd().port);
    assert!(
        err.contains(&format!("not answering at {endpoint}"))
            && err.contains("/var/run/docker.sock")
            && err.contains("AllowTcpForwarding")
            && err.contains("AllowStreamLocalForwarding"),
        "{err}"
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[test]
fn an_unknown_or_changed_host_key_of_the_target_is_refused_with_its_fingerprint() {
    let Some(env) = Env::ssh("ssh-hostkey", "yes") else {
        return;
    };
    let image = "boyong-fixture/busybox:1";
    let offered = fingerprint(&env.sshd().dir.path().join("host_ed25519.pub"));

    // Unknown: an empty known_hosts. The fingerprint and the line to add are given.
    let empty = env.write("empty_known_hosts", "");
    let out = env.run_playbook(&env.deploy_only(image, &empty));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is not in `target.known_hosts`") && err.contains(&offered),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "[127.0.0.1]:{} {}",
            env.sshd().port,
            env.sshd().host_key_pub
        )),
        "the line to add: {err}"
    );
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "", "never added");

    // Changed: another key on record for the same host and port.
    let other = env.path("other_host_key");
    support::sshd::keygen(&other, "ed25519", "");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_line: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let changed = env.write(
        "changed_known_hosts",
        format!("[127.0.0.1]:{} {}\n", env.sshd().port, other_line.join(" ")),
    );
    let out = env.run_playbook(&env.deploy_only(image, &changed));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("HAS CHANGED") && err.contains(&offered),
        "{err}"
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[test]
fn an_ssh_target_without_its_key_or_known_hosts_is_an_error_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("bad.yml");
    std::fs::write(
        &pb,
        "version: 1\napp: situs\nvendor: { host: 127.0.0.1, user: x, identity: k, known_hosts: kh }\n\
         target:\n  docker: ssh://deploy@10.30.0.8:0\n  tls: { ca: a, cert: b, key: c }\n\
         steps:\n  - id: web\n    deploy: { image: busybox, name: web, route: { host: a.go.id, port: 8080, assess: true } }\n",
    )
    .unwrap();
    let out = support::boyong(&dir.path().join("state"))
        .args(["validate", pb.to_str().unwrap()])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.yml:5:11"), "the endpoint's place: {err}");
    assert!(err.contains("port 0 is not a port"), "{err}");
    assert!(err.contains("needs `identity`"), "{err}");
    assert!(err.contains("needs `known_hosts`"), "{err}");
    assert!(err.contains("bad.yml:6:8"), "tls's place: {err}");
    // The new release's own address is not reachable from this machine.
    assert!(
        err.contains("`route.assess`") && err.contains("cannot reach it on an `ssh://` target"),
        "{err}"
    );
    assert!(!dir.path().join("state").exists(), "nothing written");
}

#[test]
fn a_routed_deploy_through_ssh_checks_the_release_and_the_proxy_from_the_target_host() {
    let Some(env) = Env::ssh("ssh-route", "yes") else {
        return;
    };
    support::docker::front();
    let front = format!("{}-front", env.name);
    let (http, https) = (support::free_port(), support::free_port());
    let host = "izin.ssh.test";
    let pb = env.write(
        "routed.yml",
        format!(
            "version: 1\napp: routed\n{vendor}{target}  front: {{ name: {front}, http: \"127.0.0.1:{http}\", https: \"127.0.0.1:{https}\" }}\n\
             steps:\n  - id: code\n    fetch: {{ path: {src} }}\n{image}\
             \x20 - id: web\n    deploy:\n      image: image\n      name: {name}\n      route: {{ host: {host}, port: 8080, drain: 1s }}\n      health:\n        http: http://127.0.0.1/index.html\n        timeout: 20s\n        interval: 100ms\n",
            vendor = env.sshd().vendor_yaml(),
            target = env.ssh_target(&env.sshd().known_hosts),
            src = env.path("vendor/www").display(),
            image = site::image_step("boyong-fixture/busybox:1"),
            name = env.name,
        ),
    );
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Served through the proxy (its listener is on this machine too, as the engine is).
    let got = {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
        write!(s, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut b = String::new();
        s.read_to_string(&mut b).unwrap();
        b
    };
    assert!(got.contains("release 1"), "{got}");

    // The new release was checked at its own address on the front's network, and the
    // proxy at its listener: both through the SSH connection.
    let log = env.sshd().log();
    let forwarded = |needle: &str| {
        log.lines()
            .any(|l| l.contains("direct_tcpip") && l.contains(needle))
    };
    assert!(forwarded("port 8080"), "the release's own address:\n{log}");
    assert!(
        forwarded(&format!("target 127.0.0.1 port {http}")),
        "the proxy's listener:\n{log}"
    );

    let (st, row) = env.status_row(&["--check"]);
    assert_eq!(st.status.code(), Some(0), "{row}\n{}", text(&st.stderr));
    assert!(
        row["check"]["said"]
            .as_str()
            .unwrap()
            .contains("through the front proxy answered 200"),
        "{row}"
    );

    let rb = env.rollback("routed");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    assert!(
        !support::docker::exists("container", &front),
        "the proxy this run made is removed"
    );
}

#[test]
fn a_loopback_health_check_with_a_remote_tcp_engine_is_warned_about_and_not_over_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, target: &str| {
        let pb = dir.path().join(name);
        std::fs::write(
            &pb,
            format!(
                "version: 1\napp: situs\nvendor: {{ host: 127.0.0.1, user: x, identity: k, known_hosts: kh }}\n\
                 target:\n{target}steps:\n  - id: web\n    deploy:\n      image: busybox:1\n      name: web\n      ports: [\"127.0.0.1:8080:8080\"]\n      health: {{ http: \"http://127.0.0.1:8080/\" }}\n"
            ),
        )
        .unwrap();
        let out = support::boyong(&dir.path().join("state"))
            .args(["validate", pb.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let warning = "this machine's loopback: over `tcp://` checks are made from here";
    let tcp = write(
        "tcp.yml",
        "  docker: tcp://10.30.0.8:2376\n  tls: { ca: a, cert: b, key: c }\n",
    );
    assert!(
        tcp.contains(warning) && tcp.contains("tcp.yml:13:"),
        "{tcp}"
    );
    let ssh = write(
        "ssh.yml",
        "  docker: ssh://deploy@10.30.0.8\n  identity: k\n  known_hosts: kh\n",
    );
    assert!(!ssh.contains(warning), "{ssh}");
}

/// The SSH connection to the engine's host dropped between two requests (every
/// connection's sshd process killed): the next request logs in again, the host key checked
/// as strictly, and is answered.
#[test]
fn a_dropped_connection_to_the_engine_is_made_again_for_the_next_request() {
    let Some(env) = Env::ssh("ssh-redial", "yes") else {
        return;
    };
    let s = env.sshd();
    let endpoint = boyong::playbook::DockerEndpoint::Ssh {
        user: s.user.clone(),
        host: "127.0.0.1".into(),
        port: s.port,
        identity: s.client_key.clone(),
        known_hosts: s.known_hosts.clone(),
        socket: "/var/run/docker.sock".into(),
    };
    let logins = || {
        s.log()
            .lines()
            .filter(|l| l.contains("Accepted publickey"))
            .count()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = boyong::docker::Docker::connect(&endpoint).await.unwrap();
        let before = engine.image_id("boyong-fixture/busybox:1").await.unwrap();
        assert!(before.is_some(), "the fixture's image is on the engine");
        assert_eq!(logins(), 1, "{}", s.log());

        s.drop_connections();
        let after = engine.image_id("boyong-fixture/busybox:1").await;
        assert_eq!(after.as_ref().ok(), Some(&before), "{after:?}");
        assert_eq!(logins(), 2, "one login again:\n{}", s.log());
        // And the new connection serves the requests that follow.
        let again = engine.image_id("boyong-fixture/busybox:1").await.unwrap();
        assert_eq!(again, before);
        assert_eq!(logins(), 2, "{}", s.log());
    });
}
