//! The front door against the real engine and the real nginx of `gov/front:1`: an app
//! that ignores SIGTERM (as many legacy apps do as PID 1) is deployed behind a route, cut
//! over to a new release and rolled back while a client sends 50 requests a second
//! through the proxy, each on a new connection: not one fails (no refused or reset
//! connection, no timeout, no 5xx), and the answers move from one release to the other
//! and back. The first run's rollback removes the route and the proxy it made.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::docker::{docker, exists};
use support::env::Env;
use support::text;

const HOST: &str = "izin.front.test";

/// What one request through the proxy got: the release that answered, or why it failed.
#[derive(Debug, Clone)]
enum Got {
    Release(String),
    Failed(String),
}

/// One GET through the proxy on a new connection.
fn get(addr: SocketAddr) -> Got {
    let fail = |why: String| Got::Failed(why);
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(e) => return fail(format!("connect: {e}")),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    if let Err(e) = s.write_all(req.as_bytes()) {
        return fail(format!("write: {e}"));
    }
    let mut buf = Vec::new();
    if let Err(e) = s.read_to_end(&mut buf) {
        return fail(format!("read: {e}"));
    }
    let t = String::from_utf8_lossy(&buf);
    let status: u16 = t
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        return fail(format!(
            "status {status}: {}",
            t.lines().next().unwrap_or("")
        ));
    }
    match t
        .split("release ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
    {
        Some(r) => Got::Release(r.to_string()),
        None => fail(format!("no release in the answer: {t}")),
    }
}

/// 50 requests a second through the proxy, each on its own thread, until stopped.
struct Load {
    t0: Instant,
    stop: Arc<AtomicBool>,
    runner: std::thread::JoinHandle<Vec<(Duration, Got)>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let t0 = Instant::now();
        let runner = std::thread::spawn(move || {
            let got = Arc::new(Mutex::new(Vec::new()));
            let mut threads = Vec::new();
            let mut tick = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let got = Arc::clone(&got);
                threads.push(std::thread::spawn(move || {
                    let at = t0.elapsed();
                    let g = get(addr);
                    got.lock().unwrap().push((at, g));
                }));
                tick += 1;
                let next = Duration::from_millis(20) * tick;
                if let Some(wait) = next.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            for t in threads {
                t.join().unwrap();
            }
            let mut all = got.lock().unwrap().clone();
            all.sort_by_key(|(at, _)| *at);
            all
        });
        Self { t0, stop, runner }
    }

    fn finish(self) -> Vec<(Duration, Got)> {
        self.stop.store(true, Ordering::Relaxed);
        self.runner.join().unwrap()
    }
}

/// Builds `gov/front:1` if it is missing.
fn playbook(env: &Env, front: &str, http: u16, https: u16) -> PathBuf {
    env.write(
        "front.yml",
        format!(
            "version: 1\napp: front-demo\n{}target:\n  front: {{ name: {front}, http: \"127.0.0.1:{http}\", https: \"127.0.0.1:{https}\" }}\nsteps:\n  - id: code\n    fetch: {{ path: {} }}\n  - id: image\n    build:\n      base: boyong-fixture/busybox:1\n      copy: {{ code: /www }}\n      user: \"65534\"\n      cmd: [\"/bin/sh\", \"-c\", \"trap '' TERM; exec httpd -f -p 8080 -h /www\"]\n  - id: web\n    deploy:\n      image: image\n      name: {}\n      stop_grace: 2s\n      route: {{ host: {HOST}, port: 8080, drain: 1s }}\n      health:\n        http: http://127.0.0.1/index.html\n        timeout: 20s\n        interval: 100ms\n",
            env.sshd().vendor_yaml(),
            env.path("vendor/www").display(),
            env.name,
        ),
    )
}

#[test]
fn cut_over_and_rollback_through_the_front_proxy_fail_no_request() {
    let Some(env) = Env::builder("front")
        .sshd()
        .busybox()
        .file("vendor/www/index.html", "release one\n")
        .build()
    else {
        return;
    };
    support::docker::front();
    let front = format!("{}-front", env.name);
    let (http, https) = (support::free_port(), support::free_port());
    let pb = playbook(&env, &front, http, https);
    let addr: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();

    // The first release, behind a new route on a new proxy.
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = env.last_run("front-demo");
    let answer = get(addr);
    assert!(
        matches!(&answer, Got::Release(r) if r == "one"),
        "{answer:?}"
    );
    let hardened = text(
        &docker(&[
            "inspect",
            "--format",
            "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}",
            &front,
        ])
        .stdout,
    );
    assert_eq!(
        hardened.trim(),
        "33:33 true [ALL]",
        "the proxy runs hardened"
    );
    // `status --check` checks it as its users reach it: through the proxy, by host name.
    let st = env.run(&["status", "front-demo", "--check", "--json"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stderr));
    let st = text(&st.stdout);
    assert!(
        st.contains(&format!("\"host\":\"{HOST}\""))
            || st.contains(&format!("\"host\": \"{HOST}\"")),
        "{st}"
    );
    assert!(st.contains("through the front proxy answered 200"), "{st}");
    // The app publishes no port: the proxy is the only way in.
    let ports = text(&docker(&["port", &env.name]).stdout);
    assert!(ports.trim().is_empty(), "{ports}");

    // Cut-over to a second release, then rollback, under load.
    let load = Load::start(addr);
    std::thread::sleep(Duration::from_millis(500));
    env.write("vendor/www/index.html", "release two\n");
    let out = env.run_playbook(&pb);
    let switched = load.t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains(&format!("route {HOST} switched")), "{said}");
    assert!(matches!(get(addr), Got::Release(r) if r == "two"));
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let rolling_back = load.t0.elapsed();
    let rb = env.rollback("front-demo");
    let rolled_back = load.t0.elapsed();
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    eprintln!(
        "rollback: {:.2} s from `boyong rollback --yes` to its end (the old release answers before the bad one is removed)",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = load.finish();

    let failed: Vec<String> = got
        .iter()
        .filter_map(|(at, g)| match g {
            Got::Failed(why) => Some(format!("at {:.3} s: {why}", at.as_secs_f64())),
            Got::Release(_) => None,
        })
        .collect();
    assert!(got.len() > 100, "the load ran: {} requests", got.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        got.len(),
        &failed[..failed.len().min(10)]
    );
    // Two once the cut-over had ended, until the rollback began; one once it had ended.
    // (Around each switch both may answer: the old workers finish what they accepted.)
    let release = |from: Duration, to: Duration| -> Vec<&str> {
        let mut r: Vec<&str> = got
            .iter()
            .filter(|(at, _)| *at > from && *at < to)
            .filter_map(|(_, g)| match g {
                Got::Release(r) => Some(r.as_str()),
                Got::Failed(_) => None,
            })
            .collect();
        r.dedup();
        r
    };
    assert_eq!(release(Duration::ZERO, Duration::from_millis(400)), ["one"]);
    assert_eq!(release(switched, rolling_back), ["two"], "{got:?}");
    assert_eq!(release(rolled_back, Duration::MAX), ["one"], "{got:?}");
    eprintln!(
        "{} requests at 50/s through the proxy across a cut-over and a rollback: 0 failed",
        got.len()
    );

    // The first run's rollback takes the route away, and the proxy it made with it.
    let id = first.file_name().unwrap().to_string_lossy().into_owned();
    let rb = env.run(&["rollback", "front-demo", "--run", &id, "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(!exists("container", &front), "the proxy was removed");
    assert!(!exists("container", &env.name), "the app was removed");
}

/// `curl` through the proxy's HTTPS listener for `host`, trusting only `ca`.
fn curl_https(host: &str, port: u16, ca: &std::path::Path, path: &str) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(ca)
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .expect("curl runs");
    let t = text(&out.stdout);
    let (body, code) = t.rsplit_once('\n').unwrap_or((&t, ""));
    (code.to_string(), format!("{body}{}", text(&out.stderr)))
}

#[test]
fn two_apps_on_one_proxy_switch_independently_and_tls_is_served() {
    let Some(env) = Env::builder("front2")
        .sshd()
        .busybox()
        .file("vendor/www/index.html", "release one\n")
        .file("other/www/index.html", "release b1\n")
        .build()
    else {
        return;
    };
    support::docker::front();
    let front = format!("{}-front", env.name);
    let (http, https) = (support::free_port(), support::free_port());
    let a = playbook(&env, &front, http, https);
    // App B: its own host name, HTTPS with a certificate made now (HTTP redirected).
    let b_host = "b.front.test";
    let certs = env.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let cert = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={b_host}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{b_host}"))
        .arg("-keyout")
        .arg(certs.join("b.key"))
        .arg("-out")
        .arg(certs.join("b.pem"))
        .output()
        .unwrap();
    assert!(cert.status.success(), "{}", text(&cert.stderr));
    let b_text = std::fs::read_to_string(&a)
        .unwrap()
        .replace("app: front-demo", "app: front-b")
        .replace(&env.path("vendor/www").display().to_string(), &env.path("other/www").display().to_string())
        .replace(&format!("name: {}\n", env.name), &format!("name: {}-b\n", env.name))
        .replace(
            &format!("route: {{ host: {HOST}, port: 8080, drain: 1s }}"),
            &format!(
                "route: {{ host: {b_host}, port: 8080, drain: 1s, tls: {{ cert: {{ file: {} }}, key: {{ file: {} }} }} }}",
                certs.join("b.pem").display(),
                certs.join("b.key").display()
            ),
        );
    let b = env.write("b.yml", b_text.clone());
    let out = env.run_playbook(&a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The live plan of B sees the proxy and the app it routes; a third playbook asking
    // for A's host name is a problem, named.
    let plan = env.run(&["plan", b.to_str().unwrap()]);
    let said = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{said}{}", text(&plan.stderr));
    assert!(
        said.contains(&format!(
            "front proxy `{front}` runs and routes 1 app(s): front-demo"
        )),
        "{said}"
    );
    let c = env.write(
        "c.yml",
        b_text
            .replace("app: front-b", "app: front-c")
            .replace(&format!("host: {b_host}"), &format!("host: {HOST}")),
    );
    let plan = env.run(&["plan", c.to_str().unwrap()]);
    let said = format!("{}{}", text(&plan.stdout), text(&plan.stderr));
    assert_eq!(plan.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "host {HOST} is routed already, to the app `front-demo`"
        )),
        "{said}"
    );
    let out = env.run_playbook(&b);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (code, body) = curl_https(b_host, https, &certs.join("b.pem"), "/");
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("release b1"), "{body}");
    // The report records the route and the certificate: its fingerprint, as openssl
    // computes it, and its expiry.
    let fp = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(certs.join("b.pem"))
        .output()
        .unwrap();
    let fp = text(&fp.stdout)
        .split_once('=')
        .map(|(_, f)| f.trim().replace(':', "").to_lowercase())
        .unwrap_or_default();
    let report = env.run(&["report", "front-b", "--format", "md"]);
    let report = text(&report.stdout);
    assert!(
        report.contains(&format!("certificate SHA-256 {fp}, expires 20")),
        "{report}"
    );
    // Plain HTTP to B is redirected to HTTPS; A is served on HTTP.
    let redirect = std::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
        ])
        .arg(format!("Host: {b_host}"))
        .arg(format!("http://127.0.0.1:{http}/x?y=1"))
        .output()
        .unwrap();
    assert_eq!(
        text(&redirect.stdout),
        format!("308 https://{b_host}/x?y=1")
    );
    // The key is in the proxy's volume, not readable by others; not in any image.
    let mode = docker(&[
        "exec",
        &front,
        "stat",
        "-c",
        "%a",
        "/etc/boyong-front/front-b.key",
    ]);
    assert_eq!(text(&mode.stdout).trim(), "600");

    // B's cut-over while A is under load: A fails no request, and answers as before.
    let addr: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
    let load = Load::start(addr);
    std::thread::sleep(Duration::from_millis(300));
    env.write("other/www/index.html", "release b2\n");
    let out = env.run_playbook(&b);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let got = load.finish();
    let mut seen: Vec<String> = got
        .iter()
        .map(|(_, g)| match g {
            Got::Release(r) => r.clone(),
            Got::Failed(why) => format!("failed: {why}"),
        })
        .collect();
    seen.dedup();
    assert_eq!(seen, ["one"], "A's answers while B switched");
    let (code, body) = curl_https(b_host, https, &certs.join("b.pem"), "/");
    assert_eq!(
        (code.as_str(), body.contains("release b2")),
        ("200", true),
        "{body}"
    );

    // B's rollback puts b1 back; rolling B's first run back removes B's route only: the
    // proxy stays for A.
    let first_b = env.runs("front-b")[0].clone();
    let rb = env.rollback("front-b");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    let (code, body) = curl_https(b_host, https, &certs.join("b.pem"), "/");
    assert_eq!(
        (code.as_str(), body.contains("release b1")),
        ("200", true),
        "{body}"
    );
    let id = first_b.file_name().unwrap().to_string_lossy().into_owned();
    let rb = env.run(&["rollback", "front-b", "--run", &id, "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(exists("container", &front), "the proxy routes A still");
    assert!(matches!(get(addr), Got::Release(r) if r == "one"));
    let (code, _) = curl_https(b_host, https, &certs.join("b.pem"), "/");
    assert_ne!(code, "200", "B's route is gone");
}

/// Serves `root` with busybox httpd under the test's label: the "vendor's" site for an
/// assessment; its loopback `host:port`.
fn vendor_site(env: &Env, root: &std::path::Path) -> String {
    let name = format!("{}-vendor", env.name);
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &env.label().arg(),
        "-p",
        "127.0.0.1::8080",
        "-v",
        &format!("{}:/www:ro", root.display()),
        "boyong-fixture/busybox:1",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/www",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let port = docker(&["port", &name, "8080"]);
    let addr = text(&port.stdout)
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let t0 = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    addr
}

#[test]
fn an_assessment_before_the_switch_keeps_a_failing_release_off_the_route() {
    let Some(env) = Env::builder("front3")
        .sshd()
        .busybox()
        .file("vendor/www/index.html", "release one\n")
        .file("original/index.html", "release one\n")
        .build()
    else {
        return;
    };
    support::docker::front();
    let original = vendor_site(&env, &env.path("original"));
    let front = format!("{}-front", env.name);
    let (http, https) = (support::free_port(), support::free_port());
    let pb = playbook(&env, &front, http, https);
    let text_now = std::fs::read_to_string(&pb)
        .unwrap()
        .replace("drain: 1s }", "drain: 1s, assess: true }")
        + &format!(
            "assess:\n  vendor_url: http://{original}\n  target_url: http://127.0.0.1:9\n  paths: [\"/index.html\"]\n  repeat: 3\n  warmup: 0\n  thresholds: {{ latency_slack: 2s }}\n"
        );
    let pb = env.write("front.yml", text_now);
    let addr: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();

    // The release equal to the vendor's passes, and is routed.
    let out = env.run_playbook(&pb);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("assessment before the switch"), "{said}");
    assert!(matches!(get(addr), Got::Release(r) if r == "one"));

    // A release whose page differs fails before the switch: the route stays on the first.
    env.write("vendor/www/index.html", "release two\n");
    let out = env.run_playbook(&pb);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("failed its assessment"), "{said}");
    assert!(said.contains("GET /index.html: content differs"), "{said}");
    assert!(matches!(get(addr), Got::Release(r) if r == "one"));
}
