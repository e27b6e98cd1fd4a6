//! `target.docker: tcp://HOST:PORT` with TLS client certificates, against the real Docker
//! Engine behind `socat` as a TLS terminator that demands a client certificate. A CA, the
//! engine's certificate (for IP 127.0.0.1), a client certificate and a second, unrelated CA
//! are made with `openssl` at test time. A deploy over TLS works and rolls back; a wrong CA,
//! a refused client certificate, a missing key file and an engine that does not answer each
//! fail in one clear line and create nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::docker::web_image;
use support::env::Env;
use support::{free_port, serves as get, text};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether `openssl` and `socat` run; when not, a test skips with a message, or fails
/// under CI.
fn tools() -> bool {
    let runs = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = [("openssl", "version"), ("socat", "-V")]
        .into_iter()
        .filter(|(cmd, arg)| !runs(cmd, arg))
        .map(|(cmd, _)| cmd)
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: {} missing (the TLS tests need openssl and socat)",
        missing.join(" and ")
    );
    eprintln!(
        "skipped: {} missing (the TLS tests need openssl and socat)",
        missing.join(" and ")
    );
    false
}

/// The extensions each kind of certificate gets.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = boyong test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
";

/// Certificates made at test time, as PEM files in a temporary directory: `ca`, `server`
/// (signed by `ca`, for IP 127.0.0.1), `client` (signed by `ca`), `other-ca` (unrelated)
/// and `other-client` (signed by `other-ca`). Each NAME has NAME.pem and NAME.key.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(pki.dir.path().join("openssl.cnf"), OPENSSL_CNF).unwrap();
        pki.ca("ca");
        pki.leaf("server", "ca", "server", 2);
        pki.leaf("client", "ca", "client", 3);
        pki.ca("other-ca");
        pki.leaf("other-client", "other-ca", "client", 4);
        pki
    }

    fn pem(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pem"))
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }

    /// `target:` for `tcp://127.0.0.1:port`, trusting the CA `ca`, with the certificate and
    /// key of `client`.
    fn target(&self, port: u16, ca: &str, client: &str) -> String {
        Env::tcp(port, &self.pem(ca), &self.pem(client), &self.key(client))
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            text(&out.stderr)
        );
    }

    fn ca(&self, name: &str) {
        let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
        let subj = format!("/CN=boyong test {name}");
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subj,
            "-config",
            "openssl.cnf",
            "-extensions",
            "ca",
        ]);
    }

    fn leaf(&self, name: &str, ca: &str, ext: &str, serial: u32) {
        let (pem, key, csr) = (
            format!("{name}.pem"),
            format!("{name}.key"),
            format!("{name}.csr"),
        );
        let subj = format!("/CN=boyong test {name}");
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
            "-config",
            "openssl.cnf",
        ]);
        let (ca_pem, ca_key, serial) =
            (format!("{ca}.pem"), format!("{ca}.key"), serial.to_string());
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            "openssl.cnf",
            "-extensions",
            ext,
        ]);
    }
}

/// `socat` terminating TLS on 127.0.0.1:port in front of the engine's Unix socket; it
/// accepts only clients whose certificate the test CA signed. Killed on drop.
struct Terminator {
    child: Child,
    port: u16,
}

impl Terminator {
    fn start(pki: &Pki) -> Self {
        let port = free_port();
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify=1",
            pki.pem("server").display(),
            pki.key("server").display(),
            pki.pem("ca").display()
        );
        let child = Command::new("socat")
            .arg(listen)
            .arg("UNIX-CONNECT:/var/run/docker.sock")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut t = Self { child, port };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.child.try_wait().unwrap().is_none(),
                "socat exited before listening on {port}"
            );
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "socat does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        t
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The engine with busybox, and the test's certificates; `None` (the test skips) where a
/// tool is missing.
fn setup(test: &str) -> Option<(Env, Pki)> {
    let env = Env::builder(test).busybox().plan_fidelity().build()?;
    tools().then(|| (env, Pki::new()))
}

impl Env {
    /// A playbook deploying `image` on the engine at `target` (the `target:` mapping's
    /// lines, indented by two).
    fn playbook(&self, image: &str, target: &str) -> PathBuf {
        self.write(
            "tls.yml",
            format!(
                "version: 1\napp: tlstest\nvendor: {{ host: 127.0.0.1, user: x, identity: none, known_hosts: none }}\ntarget:\n{target}steps:\n  - id: web\n    deploy:\n      image: {image}\n      name: {}\n      ports: [\"127.0.0.1:{}:8080\"]\n      health:\n        http: http://127.0.0.1:{}/\n        timeout: 10s\n        interval: 1s\n",
                self.name, self.port, self.port
            ),
        )
    }

    /// `target:` for `tcp://127.0.0.1:port` with these files.
    fn tcp(port: u16, ca: &Path, cert: &Path, key: &Path) -> String {
        format!(
            "  docker: tcp://127.0.0.1:{port}\n  tls:\n    ca: {}\n    cert: {}\n    key: {}\n",
            ca.display(),
            cert.display(),
            key.display()
        )
    }

    /// A failed run: exit 1, one message; nothing of this test on the engine.
    fn failed(&self, out: &Output) -> String {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            self.containers().is_empty(),
            "{:?}\n{err}",
            self.containers()
        );
        err
    }
}

#[test]
fn a_deploy_over_tcp_with_client_certificates_serves_and_rollback_removes_it() {
    let Some((env, pki)) = setup("tls-deploy") else {
        return;
    };
    let socat = Terminator::start(&pki);
    let image = web_image(env.label(), "web", "over-tls");
    let target = pki.target(socat.port, "ca", "client");
    let pb = env.playbook(&image, &target);
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(get(env.port), "over-tls");
    assert_eq!(env.containers(), std::slice::from_ref(&env.name));

    // Status asks the same engine over TLS (the playbook's certificates, found again).
    let st = env.run(&["status", "--json"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["app"], "tlstest", "{row}");
    assert_eq!(row["live"], "checked", "{row}");
    assert_eq!(row["container"]["state"], "running", "{row}");
    assert_eq!(row["drift"], false, "{row}");
    assert_eq!(
        row["container"]["image_id"], row["journaled_image_id"],
        "{row}"
    );

    let rb = env.rollback("tlstest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

/// A deploy through the TLS terminator, trusting the CA `ca`, with the certificate of
/// `client`: it fails and creates nothing. Its message, and the engine's endpoint.
fn refused(test: &str, ca: &str, client: &str) -> Option<(String, String)> {
    let (env, pki) = setup(test)?;
    let socat = Terminator::start(&pki);
    let image = web_image(env.label(), "web", "never");
    let out = env.run_playbook(&env.playbook(&image, &pki.target(socat.port, ca, client)));
    Some((env.failed(&out), format!("tcp://127.0.0.1:{}", socat.port)))
}

#[test]
fn an_engine_certificate_not_signed_by_the_playbooks_ca_is_refused_and_nothing_is_created() {
    let Some((err, endpoint)) = refused("tls-wrong-ca", "other-ca", "client") else {
        return;
    };
    assert!(
        err.contains("TLS") && err.contains("certificate") && err.contains(&endpoint),
        "{err}"
    );
    assert!(err.contains("other-ca.pem"), "names the CA file: {err}");
}

#[test]
fn a_client_certificate_the_engine_does_not_trust_is_refused_and_nothing_is_created() {
    let Some((err, endpoint)) = refused("tls-bad-client", "ca", "other-client") else {
        return;
    };
    assert!(
        err.contains("TLS") && err.contains("client certificate") && err.contains(&endpoint),
        "{err}"
    );
}

#[test]
fn a_missing_client_key_is_named_and_its_content_never_shown() {
    let Some((env, pki)) = setup("tls-no-key") else {
        return;
    };
    let image = web_image(env.label(), "web", "never");
    let missing = env.path("nowhere.key");
    let target = Env::tcp(free_port(), &pki.pem("ca"), &pki.pem("client"), &missing);
    let out = env.run_playbook(&env.playbook(&image, &target));
    let err = env.failed(&out);
    assert!(
        err.contains("TLS") && err.contains(&missing.display().to_string()),
        "{err}"
    );

    // A key file that is not a key: named, its text not shown.
    let bogus = env.path("bogus.key");
    std::fs::write(&bogus, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXRleHQ=\n").unwrap();
    let target = Env::tcp(free_port(), &pki.pem("ca"), &pki.pem("client"), &bogus);
    let out = env.run_playbook(&env.playbook(&image, &target));
    let err = env.failed(&out);
    assert!(err.contains(&bogus.display().to_string()), "{err}");
    assert!(!err.contains("c2VjcmV0"), "the key's text leaked: {err}");
}

#[test]
fn an_engine_that_does_not_answer_fails_clearly_and_nothing_is_created() {
    let Some((env, pki)) = setup("tls-unreachable") else {
        return;
    };
    let image = web_image(env.label(), "web", "never");

    let out =
        env.run_playbook(&env.playbook(&image, "  docker: unix:///nonexistent/docker.sock\n"));
    let err = env.failed(&out);
    assert!(
        err.contains("not answering at unix:///nonexistent/docker.sock")
            && err.contains("docker -H unix:///nonexistent/docker.sock info"),
        "{err}"
    );

    // A tcp port where nothing listens.
    let port = free_port();
    let target = pki.target(port, "ca", "client");
    let out = env.run_playbook(&env.playbook(&image, &target));
    let err = env.failed(&out);
    assert!(
        err.contains(&format!("not answering at tcp://127.0.0.1:{port}"))
            && err.contains("docker --tlsverify"),
        "{err}"
    );
}
