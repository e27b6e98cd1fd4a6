//! PostfixAdmin (Debian's package) with PostgreSQL: fixtures/apps/postfixadmin.sh,
//! playbooks/postfixadmin.yml.

use std::process::Command;

use crate::support::text;
use crate::vendor::VendorApp;

/// The ports playbooks/postfixadmin.yml is written for: the vendor's sshd, database and web
/// server, and the target.
const FIXED: [u16; 4] = [2202, 5439, 8092, 8093];

#[test]
fn postfixadmin_moves_with_its_postgresql_and_serves_the_same_pages() {
    let db_password = crate::password();
    let Some((env, host)) = crate::setup("postfixadmin", "postgres", |h| {
        vec![
            (
                "PFA_VENDOR_DB_PASSWORD",
                h.var("VH_DB_PASSWORD").to_string(),
            ),
            ("PFA_DB_PASSWORD", db_password.clone()),
        ]
    }) else {
        return;
    };
    let subs = crate::common_subs(&env, &host, "postfixadmin", FIXED);
    let pb = crate::playbook(&env, "postfixadmin", &subs);
    let run = crate::migrate(&env, "postfixadmin", &pb);

    crate::assert_pages_equal(&env, "postfixadmin", &pb);
    // Behind the login, pages read from the database: the same domains, mailboxes and alias
    // on both sides, for the vendor's superadmin.
    let vendor_port: u16 = host.var("VH_WEB_PORT").parse().expect("a port");
    for list in [
        "/list.php?table=domain",
        "/list-virtual.php?domain=kominfo.example",
    ] {
        let v = logged_in_page(&host, vendor_port, list);
        let t = logged_in_page(&host, env.port, list);
        assert!(v.contains("kominfo.example"), "{list} on the vendor: {v}");
        if let Some((a, b)) = v.lines().zip(t.lines()).find(|(a, b)| a != b) {
            panic!("{list} differs between the vendor and the target:\n- {a}\n+ {b}");
        }
        assert_eq!(
            v.lines().count(),
            t.lines().count(),
            "{list}: {v}\n---\n{t}"
        );
    }
    let vendor_pw = host.var("VH_DB_PASSWORD");
    crate::assert_no_secret_in_image(&env.name, &[vendor_pw, &db_password]);

    // A write after the cut-over: a mailbox made by the app's own CLI in its container.
    let marker = format!("baru{}@kominfo.example", &crate::password()[..8]);
    let out = Command::new("docker")
        .args([
            "exec",
            &env.name,
            "php",
            "/var/www/html/scripts/postfixadmin-cli.php",
        ])
        .args(["mailbox", "add", &marker, "--name", "Baru"])
        .args([
            "--password",
            "Pw-baru-2025x",
            "--password2",
            "Pw-baru-2025x",
        ])
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = Command::new("docker")
        .args(["exec", "-e", "PGPASSWORD", &format!("{}-db", env.name)])
        .args([
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postfixadmin",
            "-d",
            "postfixadmin",
            "-Atc",
        ])
        .arg("SELECT username FROM mailbox")
        .env("PGPASSWORD", &db_password)
        .output()
        .expect("docker runs");
    assert!(
        text(&out.stdout).contains(&marker),
        "the mailbox is not in the migrated database: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    crate::rollback_after_write(&env, "postfixadmin", &run, &marker);
}

/// `path` on 127.0.0.1:`port` after logging in as the vendor's superadmin (curl, a cookie
/// jar of its own), each side's origin and the forms' tokens blanked.
fn logged_in_page(host: &VendorApp, port: u16, path: &str) -> String {
    let jar = tempfile::NamedTempFile::new().expect("a cookie jar");
    let jar = jar.path().to_str().expect("UTF-8");
    let base = format!("http://127.0.0.1:{port}");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-c", jar, "-b", jar])
            .args(args)
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let user = format!("fUsername={}", host.var("VH_ADMIN"));
    let pass = format!("fPassword={}", host.var("VH_ADMIN_PASSWORD"));
    // Logged in: a redirect (302). Anything else is printed with what the page says.
    let login = curl(&[&format!("{base}/login.php")]);
    let token = between(&login, "name=\"token\" value=\"", "\"").expect("the login form's token");
    let answer = curl(&[
        "-w",
        "\n%{http_code}",
        "--data-urlencode",
        &user,
        "--data-urlencode",
        &pass,
        "--data-urlencode",
        &format!("token={token}"),
        "--data-urlencode",
        "lang=en",
        "--data-urlencode",
        "submit=Login",
        &format!("{base}/login.php"),
    ]);
    let (body, code) = answer.rsplit_once('\n').unwrap_or(("", answer.as_str()));
    let error: String = body
        .find("error")
        .map_or("", |i| &body[i..])
        .chars()
        .take(300)
        .collect();
    assert_eq!(code, "302", "the login on {base} failed: {error}");
    let page = curl(&[&format!("{base}{path}")]);
    let page = page.replace(&format!("127.0.0.1:{port}"), "{origin}");
    // the CSRF token: in the forms, and in the links that change something
    blank(
        &blank(&page, "name=\"token\" value=\"", "\""),
        "&amp;token=",
        "\"",
    )
}

/// `s` with the text between each `after` and the next `until` removed.
fn blank(s: &str, after: &str, until: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(after) {
        out.push_str(&rest[..i + after.len()]);
        rest = &rest[i + after.len()..];
        rest = &rest[rest.find(until).unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

/// The text between the first `after` and the next `until`.
fn between<'a>(s: &'a str, after: &str, until: &str) -> Option<&'a str> {
    let start = s.find(after)? + after.len();
    let len = s[start..].find(until)?;
    Some(&s[start..start + len])
}
