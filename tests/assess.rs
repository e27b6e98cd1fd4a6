//! `boyong assess` against real servers on loopback: two busybox httpd containers, the
//! "vendor's" and the "migrated" one, serving the same pages, except one changed page, a
//! slow CGI (a `sleep`), a 500 and a redirect on the migrated side. Equal pages pass
//! (origin and nonces normalised); each difference fails with a message naming the URL
//! and the figure. Also: the `assess:` section's errors at file:line:col (exit 2), and a
//! secret header that never shows.

// Tests state their expectations with unwrap/expect/panic: a failure there IS the report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::docker::{self, Labelled, docker};

/// A site's files: `index.html`, `changed.html` and four CGI scripts.
fn site(root: &Path, migrated: bool) {
    let cgi = root.join("cgi-bin");
    std::fs::create_dir_all(&cgi).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<h1>Perizinan</h1>\n<p>same</p>\n<a href=\"links.html\">more</a> <a href=\"/changed.html#top\">changed</a>\n",
    )
    .unwrap();
    std::fs::write(
        root.join("links.html"),
        "<a href=\"/\">home</a> <a href=\"cgi-bin/home?x=1\">cgi</a> <a href=\"http://other.test/\">away</a> <a href=\"mailto:a@b.c\">mail</a>\n",
    )
    .unwrap();
    let changed = if migrated {
        "<h1>Perizinan</h1>\n<p>edited after the move</p>\n"
    } else {
        "<h1>Perizinan</h1>\n<p>as built</p>\n"
    };
    std::fs::write(root.join("changed.html"), changed).unwrap();
    let script = |name: &str, body: &str| {
        let p = cgi.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&p, perm).unwrap();
    };
    // Each side's own origin in a link, and a nonce that changes with every answer.
    script(
        "home",
        r#"printf 'Content-Type: text/html\r\n\r\n'
echo "<a href=\"http://$HTTP_HOST/about\">about</a> <script nonce=\"$$\"></script>""#,
    );
    let ok = r"printf 'Content-Type: text/plain\r\n\r\nfine\n'";
    script(
        "slow",
        &format!("{}{ok}", if migrated { "sleep 0.3\n" } else { "" }),
    );
    script(
        "err",
        if migrated {
            r"printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nfine\n'"
        } else {
            ok
        },
    );
    // The migrated side echoes the request's cookie (a secret header): its diff would show it.
    script(
        "echo",
        if migrated {
            r#"printf 'Content-Type: text/plain\r\n\r\n'
echo "session: $HTTP_COOKIE""#
        } else {
            ok
        },
    );
    script(
        "redir",
        if migrated {
            r"printf 'Status: 302 Found\r\nLocation: /login\r\nContent-Type: text/plain\r\n\r\nfine\n'"
        } else {
            ok
        },
    );
    for d in [root, &cgi] {
        let mut perm = std::fs::metadata(d).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(d, perm).unwrap();
    }
}

/// Starts busybox httpd on `root` under the label; its loopback `host:port`.
fn serve(label: &Labelled, name: &str, root: &Path) -> String {
    let out = docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--label",
        &label.arg(),
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = docker(&["port", name, "8080"]);
    let addr = String::from_utf8_lossy(&port.stdout)
        .lines()
        .next()
        .expect("a published port")
        .trim()
        .to_string();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    addr
}

/// A playbook with an `assess:` section made of `assess` (YAML lines, indented by 2).
fn playbook(dir: &Path, assess: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/id"), "not used by assess").unwrap();
    let p = dir.join("perizinan.yml");
    std::fs::write(
        &p,
        format!(
            "version: 1\napp: perizinan\nvendor: {{ host: 10.20.0.5, user: deploy, identity: keys/id }}\nsteps:\n  - id: code\n    fetch: {{ path: /srv/www }}\nassess:\n{assess}"
        ),
    )
    .unwrap();
    p
}

fn assess(dir: &Path, playbook: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = support::boyong(&dir.join("state"));
    c.args(["assess", playbook.to_str().unwrap(), "--json"])
        .current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

struct Sites {
    _label: Labelled,
    dir: tempfile::TempDir,
    vendor: String,
    target: String,
}

fn sites(test: &str) -> Option<Sites> {
    if !docker::available() {
        return None;
    }
    docker::busybox();
    let label = Labelled::new(test);
    let dir = tempfile::tempdir().unwrap();
    site(&dir.path().join("vendor"), false);
    site(&dir.path().join("target"), true);
    let vendor = serve(
        &label,
        &format!("bt-v-{}", label.0),
        &dir.path().join("vendor"),
    );
    let target = serve(
        &label,
        &format!("bt-t-{}", label.0),
        &dir.path().join("target"),
    );
    Some(Sites {
        _label: label,
        dir,
        vendor,
        target,
    })
}

#[test]
fn equal_pages_pass_and_each_difference_fails_naming_the_url_and_the_figure() {
    let Some(s) = sites("assess") else { return };
    let dir = s.dir.path();
    std::fs::write(dir.join("session"), "s3cr3t-session-value").unwrap();
    let head = format!(
        "  vendor_url: http://{}/\n  target_url: http://{}\n  repeat: 10\n  warmup: 1\n  concurrency: 4\n  headers: {{ Cookie: \"{{{{ vars.session }}}}\" }}\n  normalize: {{ noise: [{{ after: 'nonce=\"', until: '\"' }}] }}\n",
        s.vendor, s.target
    );
    let vars = "vars:\n  session: { file: session }\n";
    // Equal pages, the origin and the nonce normalised: passes. Latency is not what this
    // case checks (a busy machine makes one side's p95 tens of milliseconds slower now and
    // then), so it is given a wide slack; the slow page below fails by 300 ms.
    let pb = playbook(
        dir,
        &format!(
            "{head}  thresholds: {{ latency_slack: 2s }}\n  paths: [\"/\", \"/index.html\", \"/cgi-bin/home\"]\n{vars}"
        ),
    );
    let out = assess(dir, &pb, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["passed"], true);
    assert_eq!(j["results"].as_array().unwrap().len(), 3);
    for r in j["results"].as_array().unwrap() {
        assert_eq!(r["vendor"]["status"], 200, "{r}");
        assert_eq!(r["vendor"]["hash"], r["target"]["hash"], "{r}");
        assert_eq!(r["target"]["answers"], 10, "{r}");
    }
    // 3 paths x 11 requests x 2 sides.
    assert_eq!(j["requests_sent"], 66);
    let kept = std::fs::read_to_string(dir.join("state/apps/perizinan/assessment.json")).unwrap();
    assert!(kept.contains("\"passed\": true"), "{kept}");
    for text in [&*stdout, &*stderr, &kept] {
        assert!(!text.contains("s3cr3t"), "the cookie showed: {text}");
    }

    // Equal, an echoed cookie, changed, slow, 500 and redirect: each difference fails,
    // naming the request.
    let pb = playbook(
        dir,
        &format!(
            "{head}  paths: [\"/index.html\", \"/cgi-bin/echo\", \"/changed.html\", \"/cgi-bin/slow\", \"/cgi-bin/err\", \"/cgi-bin/redir\"]\n  thresholds: {{ latency_p95_ratio: 1.5, latency_slack: 150ms }}\n{vars}"
        ),
    );
    let out = assess(dir, &pb, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["passed"], false);
    let failures: Vec<String> = j["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let has = |needle: &str| failures.iter().any(|f| f.contains(needle));
    assert!(
        !failures.iter().any(|f| f.contains("/index.html")),
        "{failures:#?}"
    );
    assert!(
        has("GET /changed.html: content differs: 48 bytes"),
        "{failures:#?}"
    );
    assert!(
        has("GET /cgi-bin/slow: p95 latency 3") && has("allowed 1.5x + 150 ms"),
        "{failures:#?}"
    );
    assert!(
        has("GET /cgi-bin/err: status 500 on the target, 200 on the vendor"),
        "{failures:#?}"
    );
    // The echoed cookie is in the diff, redacted, everywhere it is shown or kept.
    assert!(has("GET /cgi-bin/echo: content differs"), "{failures:#?}");
    let kept = std::fs::read_to_string(dir.join("state/apps/perizinan/assessment.json")).unwrap();
    assert!(kept.contains("session: ***"), "{kept}");
    for text in [&*stdout, &*stderr, &kept] {
        assert!(!text.contains("s3cr3t"), "the cookie showed: {text}");
    }
    assert!(
        has("GET /cgi-bin/redir: status 302 on the target, 200 on the vendor")
            && has(
                "GET /cgi-bin/redir: redirects to `/login` on the target, nowhere on the vendor"
            ),
        "{failures:#?}"
    );
    // The first differing body's diff, unified: the echoed cookie in it, redacted.
    let diff = j["results"][1]["diff"].as_str().unwrap();
    assert!(diff.contains("-fine\n+session: ***"), "{diff}");
    // The command's message names them too.
    assert!(stderr.contains("GET /cgi-bin/err: status 500"), "{stderr}");
    assert!(!stderr.contains("s3cr3t") && !stdout.contains("s3cr3t"));

    // The human table: side by side, vendor → target.
    let out = support::boyong(&dir.join("state"))
        .args(["assess", pb.to_str().unwrap()])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("200 → 500"), "{text}");
    assert!(text.contains("--- vendor /cgi-bin/echo"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("verdict: failed (5 of 6 requests)"), "{text}");

    // `status` carries the last verdict, in its table and in --json.
    let out = support::boyong(&dir.join("state"))
        .args(["status", "perizinan", "--offline", "--json"])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"verdict\": \"failed (5 of 6 requests)\""),
        "{text}"
    );
    let out = support::boyong(&dir.join("state"))
        .args(["status", "perizinan", "--offline"])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("assessment failed (5 of 6 requests)"),
        "{text}"
    );
}

/// A playbook whose only step is `assess` (its target given by the step).
fn step_playbook(dir: &Path, s: &Sites, paths: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/id"), "not used by assess").unwrap();
    std::fs::write(dir.join("keys/known_hosts"), "").unwrap();
    let p = dir.join("run.yml");
    std::fs::write(
        &p,
        format!(
            "version: 1\napp: perizinan\nvendor: {{ host: 10.20.0.5, user: deploy, identity: keys/id, known_hosts: keys/known_hosts }}\nsteps:\n  - id: after\n    assess: {{ target_url: \"http://{}\" }}\nassess:\n  vendor_url: http://{}\n  target_url: http://127.0.0.1:9\n  repeat: 5\n  thresholds: {{ latency_slack: 1s }}\n  paths: {paths}\n",
            s.target, s.vendor
        ),
    )
    .unwrap();
    p
}

#[test]
fn the_assess_step_journals_its_facts_and_fails_the_run_on_a_threshold() {
    let Some(s) = sites("assess-step") else {
        return;
    };
    let dir = s.dir.path();
    let pb = step_playbook(dir, &s, "[\"/index.html\"]");
    let out = support::boyong(&dir.join("state"))
        .args(["run", pb.to_str().unwrap()])
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let runs = dir.join("state/apps/perizinan/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"passed\":true"), "{journal}");
    assert!(
        journal.contains(&s.target),
        "the step's own target: {journal}"
    );
    // The report's Assessment section: a table, and in HTML an inline SVG chart.
    let report = |format: &str| {
        let out = support::boyong(&dir.join("state"))
            .args(["report", "perizinan", "--format", format])
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let html = report("html");
    assert!(
        html.contains("<section id=\"assessment\"><h2>Assessment</h2>"),
        "{html}"
    );
    assert!(html.contains("<svg xmlns"), "{html}");
    assert!(!html.contains("<script"), "no script");
    let md = report("md");
    assert!(md.contains("Assessment"), "{md}");
    assert!(md.contains("`GET /index.html`"), "{md}");
    // The app's last assessment, as `status` shows it: the newer of the step's and the last
    // `boyong assess`'s.
    let last_assessment = || {
        let out = support::boyong(&dir.join("state"))
            .args(["status", "--json", "--offline"])
            .current_dir(dir)
            .output()
            .unwrap();
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        rows.into_iter()
            .find(|r| r["app"] == "perizinan")
            .unwrap_or_else(|| panic!("no row: {}", String::from_utf8_lossy(&out.stdout)))
            ["assessment"]
            .clone()
    };
    assert_eq!(
        last_assessment()["passed"],
        true,
        "the run's step: {}",
        last_assessment()
    );
    // `assess APP` from anywhere: the run's playbook, its relative paths (keys/) read from
    // where it was run from, not from the run directory. The section's own target
    // (127.0.0.1:9, not the step's) answers nothing: the assessment ran and failed.
    // (A second later than the step's: assessments are ordered by their start, in seconds.)
    std::thread::sleep(Duration::from_millis(1100));
    let out = support::boyong(&dir.join("state"))
        .args(["assess", "perizinan"])
        .current_dir("/")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect to 127.0.0.1:9"), "{stderr}");
    assert!(!stderr.contains("keys/"), "no path problem: {stderr}");
    assert_eq!(
        last_assessment()["passed"],
        false,
        "`boyong assess` is newer: {}",
        last_assessment()
    );

    // A changed page fails the step, naming the request, and so the run.
    let pb = step_playbook(dir, &s, "[\"/index.html\", \"/changed.html\"]");
    let out = support::boyong(&dir.join("state"))
        .args(["run", pb.to_str().unwrap()])
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("GET /changed.html: content differs"),
        "{stdout}\n{stderr}"
    );
    let md = report("md");
    assert!(
        md.contains("GET /changed.html: content differs"),
        "the failed step's error in the report: {md}"
    );
}

#[test]
fn a_crawl_assesses_the_vendors_same_origin_pages_breadth_first() {
    let Some(s) = sites("assess-crawl") else {
        return;
    };
    let dir = s.dir.path();
    let pb = playbook(
        dir,
        &format!(
            "  vendor_url: http://{}\n  target_url: http://{}\n  repeat: 2\n  warmup: 0\n  crawl: 5\n  thresholds: {{ latency_slack: 2s }}\n",
            s.vendor, s.target
        ),
    );
    let out = assess(dir, &pb, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let j: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    let paths: Vec<&str> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    // Breadth-first from the base page; another host and mailto: not followed; the
    // cgi page's link to its own origin (`http://HOST/about`) is followed.
    assert_eq!(
        paths,
        [
            "/",
            "/links.html",
            "/changed.html",
            "/cgi-bin/home?x=1",
            "/about"
        ],
        "{stdout}"
    );
    // The changed page fails the assessment, naming it.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("GET /changed.html: content differs"),
        "{stderr}"
    );
}

#[test]
fn the_assess_section_is_checked_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "  vendor_url: https://10.20.0.5/\n  target_url: http://127.0.0.1:8080\n  requests:\n    - { path: /login, method: POST }\n  repeat: 0\n  thresholds: { content: same }\n",
    );
    let out = assess(dir.path(), &pb, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for (needle, at) in [
        (
            "`assess.vendor_url` is not an http:// URL",
            "perizinan.yml:8:15",
        ),
        (
            "`POST` could change the vendor's site",
            "perizinan.yml:11:31",
        ),
        ("`assess.repeat` is 0", "perizinan.yml:12:11"),
        ("unknown content threshold `same`", "perizinan.yml:13:26"),
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(stderr.contains(at), "{at}: {stderr}");
    }
    assert!(!dir.path().join("state").exists(), "nothing was written");
    // An unknown field is refused as everywhere else.
    let pb = playbook(
        dir.path(),
        "  vendor_url: http://10.20.0.5/\n  target_url: http://127.0.0.1:8080\n  paths: [/]\n  repeats: 3\n",
    );
    let out = assess(dir.path(), &pb, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("perizinan.yml:11:3"), "{stderr}");
    assert!(stderr.contains("repeats"), "{stderr}");
    // A playbook without the section.
    let p = dir.path().join("none.yml");
    std::fs::write(
        &p,
        "version: 1\napp: perizinan\nvendor: { host: 10.20.0.5, user: deploy, identity: keys/id }\nsteps:\n  - id: code\n    fetch: { path: /srv/www }\n",
    )
    .unwrap();
    let out = assess(dir.path(), &p, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has no `assess:` section"), "{stderr}");
    // An `assess` step needs the section.
    std::fs::write(
        &p,
        "version: 1\napp: perizinan\nvendor: { host: 10.20.0.5, user: deploy, identity: keys/id }\nsteps:\n  - id: compare\n    assess: {}\n",
    )
    .unwrap();
    let out = support::boyong(&dir.path().join("state"))
        .args(["validate", p.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("none.yml:6:13"), "{stderr}");
    assert!(
        stderr.contains("an `assess` step runs the playbook's `assess:` section"),
        "{stderr}"
    );
}
