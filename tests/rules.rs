#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
use std::path::Path;

const BASE: &str = r#"version: 1
app: demo
vendor:
  host: 10.0.0.5
  user: deploy
  identity: keys/id
  known_hosts: keys/known_hosts
vars:
  release: "1.0"
steps:
  - id: code
    fetch:
      path: /srv/app
  - id: image
    build:
      base: gov/php:8.2
      copy: { code: /var/www }
      tag: "demo:{{ vars.release }}"
  - id: app
    deploy:
      image: image
      name: demo
      ports: ["127.0.0.1:8080:80"]
      health:
        http: http://127.0.0.1:8080/
"#;

fn show(y: &str) {
    let l = boyong::playbook::parse(Path::new("p.yml"), y.as_bytes());
    println!("=== ");
    for d in &l.diagnostics {
        println!(
            "  {:?} {:?} {:?} | {:?} | {:?}",
            d.severity,
            d.loc.map(|l| (l.line, l.col, l.len)),
            d.message,
            d.label,
            d.help
        );
    }
}
fn r(a: &str, b: &str) -> String {
    assert_eq!(BASE.matches(a).count(), 1, "{a}");
    BASE.replacen(a, b, 1)
}

#[test]
fn probe() {
    let ins: Vec<String> = std::fs::read_to_string("/tmp/probes.txt")
        .unwrap()
        .split("\n----\n")
        .map(|s| s.to_string())
        .collect();
    for p in ins {
        if let Some((a, b)) = p.split_once("=>") {
            {
                println!("### {}", p.lines().next().unwrap_or(""));
                show(&r(a, b))
            };
        } else {
            {
                println!("### {}", p.lines().next().unwrap_or(""));
                show(&p)
            };
        }
    }
}
