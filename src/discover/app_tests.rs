//! Apps assembled from a script output made of Debian's captured configs and a vendor's
//! sites (the fixture host's real output is in `tests/discover.rs`).

use super::super::assemble;
use super::super::raw;
use super::*;

fn hex(s: &str) -> String {
    s.bytes().fold(String::new(), |mut acc, b| {
        use std::fmt::Write as _;
        let _ = write!(acc, "{b:02x}");
        acc
    })
}

fn section(kind: &str, arg: &str, body: &str) -> String {
    format!("\nN {kind} {}\n{body}", hex(arg))
}

fn debian(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/discover/debian")
            .join(name),
    )
    .expect("captured")
}

pub(crate) fn sample() -> String {
    let mut o = String::new();
    o += &section(
        "host",
        "",
        "hostname vendor1\nnow 1796000000\nphp PHP 8.2.36 (cli)\n",
    );
    o += &section(
        "apache",
        "/etc/apache2/conf-enabled/php8.2-fpm.conf",
        &debian("php8.2-fpm.conf"),
    );
    o += &section(
        "apache",
        "/etc/apache2/sites-enabled/portal.conf",
        "<VirtualHost *:80>\n ServerName portal.kota.go.id\n DocumentRoot /srv/www/portal\n</VirtualHost>\n<VirtualHost *:80>\n ServerName izin.kota.go.id\n DocumentRoot /srv/www/izin/public\n</VirtualHost>\n",
    );
    o += &section(
        "nginx",
        "/etc/nginx/sites-enabled/api",
        "server {\n listen 80;\n server_name api.kota.go.id;\n location / { proxy_pass http://127.0.0.1:3000; }\n}\nserver { listen 8080; server_name info.kota.go.id; root /var/www/info; }\n",
    );
    o += &section(
        "fpm",
        "/etc/php/8.2/fpm/pool.d/www.conf",
        &debian("fpm-www.conf"),
    );
    o += &section(
        "phpext",
        "/etc/php/8.2/fpm/conf.d",
        "10-opcache.ini\n20-mysqli.ini\n20-mbstring.ini\n",
    );
    o += &section(
        "unit",
        "/etc/systemd/system/api.service",
        "[Service]\nExecStart=/usr/bin/node /opt/api/server.js\nWorkingDirectory=/opt/api\nUser=api\nEnvironment=PORT=3000\n",
    );
    o += &section(
        "cron",
        "/etc/cron.d/portal",
        "*/5 * * * * www-data php /srv/www/portal/wp-cron.php\n",
    );
    o += &section(
        "ports",
        "",
        "LISTEN 0 511 0.0.0.0:80 0.0.0.0:*\nLISTEN 0 80 127.0.0.1:3307 0.0.0.0:*\n",
    );
    o += &section(
        "dir",
        "/srv/www/portal",
        "size 1500 30000000 1795000000\nowner www-data:www-data 33:33\ntop 18 0\nhas wp-config.php\nhas wp-includes/version.php\nhas wp-content/cache\nhas index.php\n",
    );
    o += &section(
        "conf",
        "/srv/www/portal/wp-config.php",
        "define( 'DB_NAME', 'portal' );\ndefine( 'DB_USER', 'portal' );\ndefine( 'DB_HOST', 'localhost' );\n",
    );
    o += &section(
        "conf",
        "/srv/www/portal/wp-includes/version.php",
        "$wp_version = '6.1.9';\n",
    );
    o += &section(
        "dir",
        "/srv/www/izin",
        "size 40 9000 1796000000\ntop 0 0\nhas artisan\nhas .env\nhas storage/logs\n",
    );
    o += &section(
        "conf",
        "/srv/www/izin/.env",
        "APP_URL=http://izin.kota.go.id\nDB_CONNECTION=mysql\nDB_HOST=127.0.0.1\nDB_PORT=3307\nDB_DATABASE=izin\nDB_USERNAME=izin\n",
    );
    o += &section(
        "dir",
        "/srv/www/izin/public",
        "size 2 100 1796000000\ntop 1 0\nhas index.php\n",
    );
    o += &section(
        "dir",
        "/opt/api",
        "size 3 300 1796000000\ntop 0 0\nhas package.json\nhas server.js\n",
    );
    o += &section(
        "dir",
        "/var/www/info",
        "size 2 200 1790000000\ntop 0 2\nhas index.html\n",
    );
    o += &section("end", "", "");
    o
}

#[test]
fn five_stacks_from_one_output() {
    let f = read(&raw::split("N", &sample()));
    assert!(f.complete);
    let (apps, orphans) = assemble::apps(&f);
    assert!(orphans.is_empty(), "{orphans:?}");
    let by: std::collections::BTreeMap<&str, &App> =
        apps.iter().map(|a| (a.name.as_str(), a)).collect();
    assert_eq!(
        by.keys().copied().collect::<Vec<_>>(),
        vec!["api", "info", "izin", "portal"]
    );
    let wp = by["portal"];
    assert_eq!(wp.stack, Stack::Wordpress);
    assert_eq!(wp.version.as_deref(), Some("WordPress 6.1.9"));
    assert_eq!(
        wp.php
            .as_ref()
            .map(|p| (p.version.as_str(), p.pool.as_str())),
        Some(("8.2", "www"))
    );
    assert_eq!(
        wp.php.as_ref().map(|p| p.extensions.clone()),
        Some(vec!["opcache".into(), "mysqli".into(), "mbstring".into()])
    );
    assert_eq!(
        wp.database.as_ref().map(|d| d.database.as_str()),
        Some("portal")
    );
    assert_eq!(wp.cron.len(), 1);
    assert_eq!(wp.url.as_deref(), Some("http://portal.kota.go.id"));
    let lar = by["izin"];
    assert_eq!(lar.stack, Stack::Laravel);
    assert_eq!(lar.root, "/srv/www/izin");
    assert_eq!(lar.docroot.as_deref(), Some("/srv/www/izin/public"));
    assert_eq!(lar.database.as_ref().map(|d| d.port), Some(3307));
    let api = by["api"];
    assert_eq!(api.stack, Stack::Node);
    assert_eq!(api.ports, vec![3000]);
    assert_eq!(
        api.service.as_ref().map(|s| s.name.as_str()),
        Some("api.service")
    );
    assert_eq!(by["info"].stack, Stack::Static);
}
