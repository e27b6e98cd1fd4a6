//! WordPress (Debian's package) with MariaDB: fixtures/apps/wordpress.sh, playbooks/wordpress.yml.

use std::process::Command;

use crate::support::text;

/// The ports playbooks/wordpress.yml is written for: the vendor's sshd, database and web
/// server, and the target.
const FIXED: [u16; 4] = [2201, 3309, 8090, 8091];

/// The WordPress vendor host and the test's environment, the runs given the vendor's
/// database password and `db_password`, the new one.
fn vendor_host(db_password: &str) -> Option<(crate::support::env::Env, crate::VendorApp)> {
    crate::setup("wordpress", "mariadb", |h| {
        vec![
            ("WP_VENDOR_DB_PASSWORD", h.var("VH_DB_PASSWORD").to_string()),
            ("WP_DB_PASSWORD", db_password.to_string()),
        ]
    })
}

#[test]
fn wordpress_moves_with_its_mariadb_and_serves_the_same_pages() {
    let db_password = crate::password();
    let Some((env, host)) = vendor_host(&db_password) else {
        return;
    };
    let subs = crate::common_subs(&env, &host, "wordpress", FIXED);
    let pb = crate::playbook(&env, "wordpress", &subs);
    let vendor_pw = host.var("VH_DB_PASSWORD");
    let run = crate::migrate(&env, "wordpress", &pb);

    // The site moved with its address: the vendor's origin is nowhere in the target's pages.
    let home = crate::support::http_get(env.port, "/", std::time::Duration::from_secs(10))
        .expect("the migrated site answers");
    assert!(
        home.contains("Aplikasi perizinan pindah ke pusat data"),
        "{home}"
    );
    let vendor_origin = format!("127.0.0.1:{}", host.var("VH_WEB_PORT"));
    assert!(
        !home.contains(&vendor_origin),
        "the vendor's address is still in the page"
    );

    crate::assert_pages_equal(&env, "wordpress", &pb);
    crate::assert_no_secret_in_image(&env.name, &[vendor_pw, &db_password]);

    // A write after the cut-over: a visitor's comment, stored in the migrated database.
    let marker = comment(env.port, None);
    assert_comment_stored(&format!("{}-db", env.name), &db_password, &marker);

    crate::rollback_after_write(&env, "wordpress", &run, &marker);
    second_pull_equals_a_full_one(&env, &host);
}

/// The code pulled again after the vendor changed a file, added one and removed one (a
/// final sync before a cut-over): only those two files move, the rest is linked, and the
/// manifest and tree file are those of a full pull of the same tree.
fn second_pull_equals_a_full_one(env: &crate::support::env::Env, host: &crate::VendorApp) {
    let pull = |app: &str, incremental: bool| {
        let pb = env.write(
            &format!("{app}.yml"),
            format!(
                "version: 1\napp: {app}\nvendor:\n  host: 127.0.0.1\n  port: {}\n  user: {}\n  identity: {}\n  known_hosts: {}\nsteps:\n  - id: code\n    fetch: {{ path: /srv/wordpress/www, incremental: {incremental} }}\n",
                host.var("VH_SSH_PORT"),
                host.var("VH_USER"),
                host.var("VH_IDENTITY"),
                host.var("VH_KNOWN_HOSTS"),
            ),
        );
        let out = env.run_playbook(&pb);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        (env.last_run(app).join("artifacts"), text(&out.stderr))
    };
    let (first, _) = pull("wp-code", true);
    assert!(first.join("code/wp-includes/version.php").is_file());
    // The vendor's changes, a second after the first pull's listing (a change in the same
    // second is always pulled again; this one must be found by its time).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let www = std::path::Path::new("/srv/wordpress/www");
    let mut version = std::fs::read_to_string(www.join("wp-includes/version.php")).unwrap();
    version.push_str("\n// changed on the vendor host\n");
    std::fs::write(www.join("wp-includes/version.php"), version).unwrap();
    std::fs::write(www.join("pengumuman.php"), "<?php echo 'baru';\n").unwrap();
    std::fs::remove_file(www.join("readme.html")).unwrap();

    let (again, said) = pull("wp-code", true);
    assert!(
        said.contains("2 new or changed files pulled") && said.contains(", 1 gone"),
        "{said}"
    );
    let (full, _) = pull("wp-full", false);
    for f in ["code.manifest", "code.tree"] {
        assert_eq!(
            std::fs::read(again.join(f)).unwrap(),
            std::fs::read(full.join(f)).unwrap(),
            "{f} of the second pull differs from a full pull's"
        );
    }
    assert!(!again.join("code/readme.html").exists());
    assert!(
        std::fs::read_to_string(again.join("code/wp-includes/version.php"))
            .unwrap()
            .ends_with("// changed on the vendor host\n")
    );
}

/// `GET path` at 127.0.0.1:`port` with `Host: host`, on a new connection: the whole answer.
fn get_as(port: u16, host: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the front proxy");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("writes");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The first running task's container of service `name`.
fn task_of(name: &str) -> String {
    let out = Command::new("docker")
        .args(["ps", "-q", "--filter"])
        .arg(format!("label=com.docker.swarm.service.name={name}"))
        .output()
        .expect("docker runs");
    text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_else(|| panic!("service {name} has no running task"))
        .to_string()
}

/// playbooks/wordpress-swarm.yml on a single-node swarm the test makes (and leaves as it
/// found it): the site a service of two tasks behind the front proxy, routed by name; the
/// vendor's wp-config.php a Swarm secret with the government's password; the database a
/// pinned service. The run succeeds the first time, the tasks' own health checks pass in
/// gov/php (which has neither curl nor wget), the pages come through the proxy with the
/// new address, a comment is written, and `boyong rollback` keeps it and removes the rest.
#[test]
fn wordpress_moves_onto_a_swarm_as_a_service_behind_the_front_door() {
    let Some(_swarm) = crate::support::swarm::join() else {
        return;
    };
    let db_password = crate::password();
    let Some((env, host)) = vendor_host(&db_password) else {
        return;
    };
    let _services = crate::support::swarm::Services::of(env.label());
    crate::vendor::base_image("front");
    let mut subs: Vec<(String, String)> = crate::common_subs(&env, &host, "wordpress", FIXED)
        .into_iter()
        .filter(|(from, _)| from != "repeat: 30")
        .collect();
    subs.push(("wordpress-front".into(), format!("{}-front", env.name)));
    subs.push(("8092".into(), crate::support::free_port().to_string()));
    let pb = crate::playbook(&env, "wordpress-swarm", &subs);
    let vendor_pw = host.var("VH_DB_PASSWORD");
    let run = crate::migrate(&env, "wordpress", &pb);

    // Through the front proxy, by the site's new name: the site, its links moved with it.
    let site = "portal.kota.example";
    let home = get_as(env.port, site, "/");
    assert!(home.starts_with("HTTP/1.1 200"), "{home}");
    assert!(home.contains("Aplikasi perizinan pindah ke pusat data"));
    let vendor_origin = format!("127.0.0.1:{}", host.var("VH_WEB_PORT"));
    assert!(
        !home.contains(&vendor_origin),
        "the vendor's address is in the page"
    );
    assert!(
        home.contains(&format!("http://{site}/")),
        "the new address is not"
    );
    let post = get_as(
        env.port,
        site,
        "/2025/12/01/jadwal-pelayanan-ktp-elektronik/",
    );
    assert!(post.starts_with("HTTP/1.1 200"), "{post}");

    // Two tasks, each healthy by its own HEALTHCHECK; the config a secret at its path.
    let out = Command::new("docker")
        .args(["service", "ls", "--format", "{{.Name}} {{.Replicas}}"])
        .output()
        .expect("docker runs");
    assert!(
        text(&out.stdout).contains(&format!("{} 2/2", env.name)),
        "{}",
        text(&out.stdout)
    );
    let task = task_of(&env.name);
    let health = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Health.Status}}", &task])
        .output()
        .expect("docker runs");
    assert_eq!(text(&health.stdout).trim(), "healthy");
    let config = Command::new("docker")
        .args(["exec", &task, "cat", "/var/www/html/wp-config.php"])
        .output()
        .expect("docker runs");
    let config = text(&config.stdout);
    assert!(config.contains(&db_password) && !config.contains(vendor_pw));
    crate::assert_no_secret_in_image(&task, &[vendor_pw, &db_password]);

    // A visitor's comment through the proxy, stored in the database service.
    let marker = comment(env.port, Some(site));
    assert_comment_stored(&task_of(&format!("{}-db", env.name)), &db_password, &marker);

    crate::rollback_after_write(&env, "wordpress", &run, &marker);
    let out = Command::new("docker")
        .args(["service", "ls", "-q", "--filter"])
        .arg(format!("label={}", env.label().arg()))
        .output()
        .expect("docker runs");
    assert!(text(&out.stdout).trim().is_empty(), "services left");
}

/// A visitor's comment on post 4, posted at 127.0.0.1:`port` (with `Host: host` when
/// given), WordPress taking it (302): the comment's marker. An answer of 5xx (PHP's own
/// server on a loaded CI machine) is printed with its body and the post tried again, up
/// to three times; the database check that follows proves it was stored once taken.
fn comment(port: u16, host: Option<&str>) -> String {
    let marker = format!("komentar-{}", crate::password());
    let mut said = Vec::new();
    for _ in 0..3 {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-w", "\n%{http_code}"]);
        if let Some(h) = host {
            curl.args(["-H", &format!("Host: {h}")]);
        }
        let out = curl
            .args(["--data-urlencode", "comment_post_ID=4"])
            .args(["--data-urlencode", "author=Warga"])
            .args(["--data-urlencode", "email=warga@kota.example"])
            .args([
                "--data-urlencode",
                &format!("comment=Terima kasih {marker}"),
            ])
            .arg(format!("http://127.0.0.1:{port}/wp-comments-post.php"))
            .output()
            .expect("curl runs");
        let answer = text(&out.stdout);
        let (body, code) = answer.rsplit_once('\n').unwrap_or(("", answer.as_str()));
        if code == "302" {
            return marker;
        }
        let short: String = body.chars().take(600).collect();
        eprintln!("wp-comments-post.php answered {code}: {short}");
        said.push(format!("{code}: {short}"));
        if !code.starts_with('5') {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    panic!("the comment was not taken: {said:?}");
}

/// The comment with `marker` is in the `wordpress` database of container `db` (the
/// password in the environment, never on a command line).
fn assert_comment_stored(db: &str, db_password: &str, marker: &str) {
    let out = Command::new("docker")
        .args(["exec", "-e", "MYSQL_PWD", db])
        .args(["mariadb", "-uwordpress", "-N", "wordpress", "-e"])
        .arg("SELECT comment_content FROM wp_comments")
        .env("MYSQL_PWD", db_password)
        .output()
        .expect("docker runs");
    assert!(
        text(&out.stdout).contains(marker),
        "the comment is not in the migrated database: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
