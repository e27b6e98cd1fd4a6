//! WordPress (Debian's package) with MariaDB: fixtures/apps/wordpress.sh, playbooks/wordpress.yml.

use std::process::Command;

use crate::support::text;

/// The ports playbooks/wordpress.yml is written for: the vendor's sshd, database and web
/// server, and the target.
const FIXED: [u16; 4] = [2201, 3309, 8090, 8091];

#[test]
fn wordpress_moves_with_its_mariadb_and_serves_the_same_pages() {
    let db_password = crate::password();
    let Some((env, host)) = crate::setup("wordpress", "mariadb", |h| {
        vec![
            ("WP_VENDOR_DB_PASSWORD", h.var("VH_DB_PASSWORD").to_string()),
            ("WP_DB_PASSWORD", db_password.clone()),
        ]
    }) else {
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
    let marker = format!("komentar-{}", crate::password());
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--data-urlencode", "comment_post_ID=4"])
        .args(["--data-urlencode", "author=Warga"])
        .args(["--data-urlencode", "email=warga@kota.example"])
        .args([
            "--data-urlencode",
            &format!("comment=Terima kasih {marker}"),
        ])
        .arg(format!(
            "http://127.0.0.1:{}/wp-comments-post.php",
            env.port
        ))
        .output()
        .expect("curl runs");
    assert_eq!(text(&out.stdout), "302", "the comment was not taken");
    let out = Command::new("docker")
        .args(["exec", "-e", "MYSQL_PWD", &format!("{}-db", env.name)])
        .args(["mariadb", "-uwordpress", "-N", "wordpress", "-e"])
        .arg("SELECT comment_content FROM wp_comments")
        .env("MYSQL_PWD", &db_password)
        .output()
        .expect("docker runs");
    assert!(
        text(&out.stdout).contains(&marker),
        "the comment is not in the migrated database: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    crate::rollback_after_write(&env, "wordpress", &run, &marker);
}
