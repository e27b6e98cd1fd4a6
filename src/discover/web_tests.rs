//! The parsers on configs captured from Debian 12's packages (apache2, nginx-common,
//! php8.2-fpm, wordpress: `fixtures/discover/debian/`) and on hand-written vendor sites.

use super::*;

fn debian(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/discover/debian")
            .join(name),
    )
    .expect("a captured config")
}

#[test]
fn debian_apache_default_sites() {
    let php = apache_global_php(&debian("php8.2-fpm.conf"));
    assert_eq!(php.as_deref(), Some("/run/php/php8.2-fpm.sock"));
    let v = apache(
        "/etc/apache2/sites-enabled/000-default.conf",
        &debian("000-default.conf"),
        php.as_deref(),
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].root.as_deref(), Some("/var/www/html"));
    assert_eq!(v[0].listen, vec!["*:80"]);
    assert_eq!(v[0].php.as_deref(), Some("/run/php/php8.2-fpm.sock"));
    assert!(!v[0].tls);
    let ssl = apache("/x", &debian("default-ssl.conf"), None);
    assert_eq!(ssl.len(), 1, "{ssl:?}");
    assert!(ssl[0].tls);
    assert_eq!(ssl[0].root.as_deref(), Some("/var/www/html"));
    assert_eq!(ssl[0].listen, vec!["*:443"]);
}

#[test]
fn debian_wordpress_examples() {
    // prose around the blocks; two vhosts, one with a trailing slash on its root
    let v = apache("/x", &debian("wordpress-apache.conf"), None);
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[1].names, vec!["blog.example.com"]);
    assert_eq!(v[1].root.as_deref(), Some("/usr/share/wordpress"));
    let n = nginx("/y", &debian("wordpress-nginx.conf"));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].names, vec!["wordpress.local"]);
    assert_eq!(n[0].root.as_deref(), Some("/usr/share/wordpress"));
    assert_eq!(n[0].php.as_deref(), Some("/var/run/php7.0-fpm.sock"));
    assert_eq!(n[0].line, 2);
}

#[test]
fn debian_nginx_default_site() {
    let n = nginx("/etc/nginx/sites-enabled/default", &debian("nginx-default"));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].root.as_deref(), Some("/var/www/html"));
    assert!(n[0].names.is_empty(), "server_name _ is no name");
    assert_eq!(
        n[0].listen,
        vec!["80 default_server", "[::]:80 default_server"]
    );
    assert!(n[0].php.is_none(), "its PHP location is commented out");
}

#[test]
fn vendor_sites_with_proxies_and_quotes() {
    let conf = "<VirtualHost *:80>\n  ServerName \"api.kota.go.id\"\n  ServerAlias www.api.kota.go.id:80 \\\n    api2.kota.go.id\n  ProxyPreserveHost On\n  ProxyPass / http://127.0.0.1:3000/ # the node app\n  ProxyPassReverse / http://127.0.0.1:3000/\n</VirtualHost>\n<VirtualHost 10.0.0.5:8080>\n DocumentRoot \"/srv/www/my site\"\n ProxyPassMatch ^/(.*\\.php)$ fcgi://127.0.0.1:9000/srv/www/my site/$1\n</VirtualHost>\n";
    let v = apache("/a", conf, None);
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0].names,
        vec!["api.kota.go.id", "www.api.kota.go.id", "api2.kota.go.id"]
    );
    assert_eq!(v[0].proxy, vec!["http://127.0.0.1:3000/"]);
    assert_eq!(local_port(&v[0].proxy[0]), Some(3000));
    assert_eq!(v[1].root.as_deref(), Some("/srv/www/my site"));
    assert_eq!(v[1].php.as_deref(), Some("127.0.0.1:9000"));
    let n = nginx(
        "/n",
        "http {\n server {\n  listen 443 ssl;\n  server_name a.go.id b.go.id;\n  location / { proxy_pass http://localhost:8000; }\n  location /static/ { root /srv/x; }\n }\n}\n",
    );
    assert_eq!(n.len(), 1);
    assert!(n[0].tls);
    assert_eq!(n[0].names, vec!["a.go.id", "b.go.id"]);
    assert_eq!(n[0].root, None, "a location's root is not the site's");
    assert_eq!(local_port(&n[0].proxy[0]), Some(8000));
    assert_eq!(local_port("http://10.0.0.9:8000"), None);
}

#[test]
fn garbage_never_panics() {
    for text in [
        "}}}{{;;",
        "<VirtualHost",
        "server { root",
        "\"unterminated",
        "server{listen 80;}}",
    ] {
        let _ = apache("/g", text, None);
        let _ = nginx("/g", text);
    }
}
