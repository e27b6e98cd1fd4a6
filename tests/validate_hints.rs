//! What `validate` explains (and so `plan` and `run`): a `deploy.health` check aimed at the
//! container's side of a port mapping (`8080:80` checked at `:80`; the check is made from
//! the machine boyong runs on, to the host's side), and a `known_hosts` file not made yet.

use std::path::Path;

use boyong::diag::Severity;

/// The rules' base playbook: `ports: ["127.0.0.1:8080:80"]`, checked at `:8080`.
const BASE: &str = include_str!("../fixtures/rules/base.yml");

fn warnings(yaml: &str) -> Vec<String> {
    boyong::playbook::parse(Path::new("app.yml"), yaml.as_bytes())
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| format!("{} {:?}", d.message, d.help))
        .collect()
}

#[test]
fn a_health_check_at_the_containers_side_of_a_port_is_warned_about() {
    assert!(
        warnings(BASE).iter().all(|w| !w.contains("health check")),
        "the host's port: no warning"
    );
    let at_80 = BASE.replace("http: http://127.0.0.1:8080/", "http: http://127.0.0.1:80/");
    assert_ne!(at_80, BASE);
    let w = warnings(&at_80);
    assert!(
        w.iter().any(|w| w
            .contains("port 80, which is the container's side of `127.0.0.1:8080->80/tcp`")
            && w.contains("http://127.0.0.1:8080/")),
        "{w:?}"
    );
    let tcp = BASE.replace("http: http://127.0.0.1:8080/", "tcp: 127.0.0.1:80");
    assert!(
        warnings(&tcp)
            .iter()
            .any(|w| w.contains("container's side")),
        "tcp too"
    );
}

/// A `known_hosts` file not made yet is read as empty by the run (the vendor's key is then
/// refused with its fingerprint and the exact line to add): `validate` says so, not "a run
/// will need it".
#[test]
fn a_missing_known_hosts_file_is_explained_not_just_named() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("app.yml");
    std::fs::write(&pb, BASE).unwrap();
    let loaded = boyong::playbook::load(&pb);
    let playbook = loaded.playbook.expect("the base playbook is valid");
    let known = playbook.vendor.known_hosts.clone().expect("it names one");
    assert!(!known.exists());
    let (_, problems) = boyong::playbook::check_local_inputs(&playbook, &|_| None);
    let said: Vec<String> = problems.iter().map(|d| d.message.clone()).collect();
    assert!(
        said.iter().any(|m| m.contains("vendor.known_hosts")
            && m.contains("does not exist yet")
            && m.contains("the exact line to add")
            && m.contains("--accept-new-host-key")),
        "{said:?}"
    );
}
