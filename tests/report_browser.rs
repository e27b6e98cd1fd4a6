//! `boyong report` of a real migration, opened in a real browser: a site and a MariaDB
//! database pulled from a real sshd, an image built and a database restored and a
//! container deployed on the real Docker Engine; then the HTML report is loaded by
//! headless Chromium, and the test asserts on the DOM the browser built (verdict, steps,
//! every artifact's SHA-256 checked against the vendor's bytes, the host key, the chain
//! head, database evidence, hardening as applied, health) and looks at its screenshot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::env::Env;
use support::site;
use support::text;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use support::db::Mariadb;

impl Env {
    fn boyong(&self, args: &[&str], password: &str) -> Output {
        self.command(args)
            .env("BOYONG_TEST_DB_PASSWORD", password)
            .env("BOYONG_OPERATOR", "report-browser-test")
            .output()
            .unwrap()
    }

    /// fetch, dump, build, restore, deploy (its env holding the database password).
    fn playbook(&self, db: &Mariadb) -> PathBuf {
        self.write(
            "situs.yml",
            format!(                "version: 1\napp: situs\n{vendor}\
                 vars:\n  pw: {{ env: BOYONG_TEST_DB_PASSWORD }}\n\
                 steps:\n  - id: code\n    fetch: {{ path: {src} }}\n\
                 \x20 - id: db\n    dump:\n      engine: mariadb\n      database: perizinan\n      user: perizinan\n      password: \"{{{{ vars.pw }}}}\"\n      host: 127.0.0.1\n      port: {dbport}\n\
                 {image}\
                 \x20 - id: database\n    restore:\n      from: db\n      image: gov/mariadb:10.11\n      name: {name}-db\n      volume: {name}-data\n      password: \"{{{{ vars.pw }}}}\"\n\
                 {web}",
                vendor = self.sshd().vendor_yaml(),
                src = self.path("vendor/www").display(),
                dbport = db.port,
                name = self.name,
                image = site::image_step("boyong-fixture/busybox:1"),
                web = site::web_step(
                    &self.name,
                    self.port,
                    "/",
                    "10s",
                    "      env: { DB_PASSWORD: \"{{ vars.pw }}\" }\n",
                ),
            ),
        )
    }
}

/// The SHA256 fingerprint of the sshd's host key, as `ssh-keygen -l` prints it.
fn fingerprint(host_key_pub: &str, dir: &Path) -> String {
    let file = dir.join("host_key.pub");
    std::fs::write(&file, format!("{host_key_pub}\n")).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("ssh-keygen -l: {}", text(&out.stderr)))
        .to_string()
}

#[test]
fn the_html_report_of_a_real_migration_is_read_and_seen_by_a_browser() {
    let Some(browser) = support::browser::available() else {
        return;
    };
    let Some(env) = Env::builder("report").sshd().busybox().build() else {
        return;
    };
    let Some(db) = Mariadb::start() else { return };
    support::db::base_image("mariadb");
    db.query(
        "CREATE TABLE izin (id INT PRIMARY KEY, pemohon VARCHAR(64)) ENGINE=InnoDB; \
         INSERT INTO izin VALUES (1, 'CV Maju'), (2, 'PT Jaya & Sons'), (3, '<b>Toko</b>');",
    );
    let site = b"<h1>Situs Perizinan</h1>\n";
    env.write("vendor/www/index.html", site);
    let pb = env.playbook(&db);
    let out = env.boyong(
        &["run", pb.to_str().unwrap(), "--label", &env.label().arg()],
        &db.password,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let page = env.path("report.html");
    let out = env.boyong(
        &[
            "report",
            "situs",
            "--format",
            "html",
            "--out",
            page.to_str().unwrap(),
        ],
        &db.password,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = env.boyong(&["report", "situs", "--format", "json"], &db.password);
    let md = env.boyong(&["report", "situs"], &db.password);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let verify = text(&env.boyong(&["journal", "verify", "situs"], "").stdout);
    let head = verify
        .split_whitespace()
        .skip_while(|w| *w != "sha256")
        .nth(1)
        .unwrap_or_else(|| panic!("journal verify: {verify}"))
        .to_string();

    // What the browser built from the page.
    let dom = support::browser::dump_dom(&browser, &page);
    assert!(dom.contains("RUN SUCCEEDED"), "{dom}");
    assert!(dom.contains("JOURNAL INTACT"));
    for step in ["code", "db", "image", "database", "web"] {
        assert!(dom.contains(&format!("<code>{step}</code>")), "step {step}");
    }
    assert!(dom.contains(&head), "the chain head {head}");
    let artifacts = report["artifacts"].as_array().unwrap();
    assert!(artifacts.len() >= 6, "{artifacts:#?}");
    for a in artifacts {
        let sha = a["sha256"].as_str().unwrap();
        assert!(dom.contains(sha), "artifact {} ({sha})", a["path"]);
        assert_eq!(a["matches"], true, "{a}");
    }
    // Independently of boyong: the vendor's bytes' digest, and the dump file's.
    let site_sha = support::db::hex(&Sha256::digest(site));
    assert!(dom.contains(&site_sha), "index.html's SHA-256 {site_sha}");
    let run = PathBuf::from(format!(
        "{}/apps/situs/runs/{}",
        env.state().display(),
        report["run"].as_str().unwrap()
    ));
    let gz = std::fs::read(run.join("artifacts/db.sql.gz")).unwrap();
    assert!(dom.contains(&support::db::hex(&Sha256::digest(&gz))));
    let key = fingerprint(&env.sshd().host_key_pub, env.dir.path());
    assert!(dom.contains(&key), "the vendor's host key {key}");
    assert!(dom.contains("report-browser-test"), "the operator");
    assert!(dom.contains("<code>izin</code>"), "the table's evidence");
    assert!(!dom.contains("PT Jaya"), "row data is not in a report");
    assert!(dom.contains("rows and checksums equal to the dump"));
    assert!(dom.contains("HostConfig.ReadonlyRootfs"));
    let containers = report["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "the app's and the database's");
    for c in containers {
        let settings: Vec<&str> = c["settings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| kv[0].as_str().unwrap())
            .collect();
        for key in [
            "HostConfig.CapDrop",
            "HostConfig.SecurityOpt",
            "HostConfig.Memory",
        ] {
            assert!(
                settings.contains(&key),
                "{key} of {}: {settings:?}",
                c["name"]
            );
        }
    }
    assert!(dom.contains("no-new-privileges"));
    assert!(dom.contains("HostConfig.CapDrop"));
    assert!(dom.contains(&format!(
        "healthy: GET http://127.0.0.1:{}/ answered 200",
        env.port
    )));
    assert!(dom.contains("boyong.source.sha256"), "the image's labels");
    assert!(!dom.contains("<script"));
    for (what, body) in [
        ("DOM", dom.clone()),
        ("md", text(&md.stdout)),
        ("json", text(&json.stdout)),
    ] {
        assert!(
            !body.contains(&db.password),
            "the database password is in the {what} report"
        );
    }

    // What the browser showed: a real picture, not a blank page, with the verdict's
    // green band at the top.
    let png = support::browser::screenshot(&browser, &page, 1200, 2000);
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser.png");
    let _ = std::fs::write(&keep, &png);
    let _ = std::fs::copy(&page, keep.with_extension("html"));
    let img = support::browser::decode_png(&png);
    assert_eq!((img.width, img.height), (1200, 2000));
    let total = img.rgb.len();
    let inked = img
        .rgb
        .iter()
        .filter(|p| p.iter().any(|&c| c < 200))
        .count();
    assert!(
        inked * 50 > total,
        "the page looks blank: {inked} of {total} pixels not white (see {})",
        keep.display()
    );
    let green = |p: &[u8; 3]| p[0] < 60 && (100..160).contains(&p[1]) && p[2] < 90;
    let band = img.rgb[..1200 * 300].iter().filter(|p| green(p)).count();
    assert!(
        band > 20_000,
        "no green verdict band at the top: {band} green pixels (see {})",
        keep.display()
    );
}
