use super::*;

fn file(tls: bool, redirect: bool) -> RouteFile {
    RouteFile {
        app: "izin-demo".into(),
        host: "izin.kota.go.id".into(),
        tls,
        redirect_http: redirect,
        upstream: Upstream {
            container: "izin-demo.next-20261205T0600Z-ab12".into(),
            ip: "172.18.0.5".into(),
            port: 8080,
            service: false,
        },
    }
}

#[test]
fn a_route_proxies_its_host_to_the_release() {
    let conf = route_conf(&file(false, false)).unwrap_or_else(|e| panic!("{e}"));
    assert!(conf.contains("upstream boyong_izin-demo {\n    server 172.18.0.5:8080 max_fails=0;"));
    assert!(conf.contains("listen 8080;\n    server_name izin.kota.go.id;"));
    assert!(conf.contains("proxy_pass http://boyong_izin-demo;"));
    assert!(!conf.contains("ssl"));
}

#[test]
fn with_tls_plain_http_redirects_and_https_proxies() {
    let conf = route_conf(&file(true, true)).unwrap_or_else(|e| panic!("{e}"));
    assert!(conf.contains("return 308 https://$host$request_uri;"));
    assert!(conf.contains("listen 8443 ssl;"));
    assert!(conf.contains("ssl_certificate_key /etc/boyong-front/izin-demo.key;"));
    assert_eq!(conf.matches("proxy_pass").count(), 1);
    let both = route_conf(&file(true, false)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(both.matches("proxy_pass").count(), 2);
}

#[test]
fn nothing_outside_its_directive_reaches_the_file() {
    for (app, host, ip) in [
        ("a;b", "x.go.id", "1.2.3.4"),
        ("a", "x.go.id; return 200", "1.2.3.4"),
        ("a", "x.go.id", "1.2.3.4; }"),
        ("a", "x.go.id\n", "1.2.3.4"),
    ] {
        let mut f = file(false, false);
        f.app = app.into();
        f.host = host.into();
        f.upstream.ip = ip.into();
        assert!(route_conf(&f).is_err(), "{app:?} {host:?} {ip:?}");
    }
    let mut f = file(false, false);
    f.upstream.container = "x\n}; server { listen 1".into();
    let conf = route_conf(&f).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conf.lines().next().map(|l| l.contains('\n')), Some(false));
    assert!(!conf.contains("listen 1;"), "{conf}");
}

#[test]
fn the_generation_server_answers_its_number() {
    let g = generation_conf(42);
    assert!(g.contains("server_name boyong-front.generation;"));
    assert!(g.contains("return 200 \"42\\n\";"));
}

#[test]
fn a_route_to_a_swarm_service_asks_the_engines_dns_per_request() {
    let mut f = file(false, false);
    f.upstream = Upstream {
        container: "izin-demo".into(),
        ip: String::new(),
        port: 8080,
        service: true,
    };
    let conf = route_conf(&f).unwrap_or_else(|e| panic!("{e}"));
    assert!(conf.contains("resolver 127.0.0.11 valid=1s ipv6=off;"));
    assert!(conf.contains("set $boyong_izin_demo \"izin-demo\";"));
    assert!(conf.contains("proxy_pass http://$boyong_izin_demo:8080;"));
    assert!(conf.contains("proxy_next_upstream error timeout;"));
    for bad in ["izin;demo", "a b", "-x", "x\"y", ""] {
        f.upstream.container = bad.into();
        assert!(route_conf(&f).is_err(), "{bad}");
    }
}
