//! Podman as the target engine, through its Docker-compatible API (`podman system service`,
//! started by `fixtures/podman.sh`): the scenarios of `support::scenario` that the Docker
//! Engine passes, on Podman, through its socket and through a real sshd forwarding to it
//! (`ssh://` with `socket:`). What differs on Podman and how boyong handles it is in
//! docs/targets.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use support::env::Env;
use support::scenario;

/// An environment on Podman: `sshd` for a vendor host, busybox in Podman's storage.
fn env(test: &str, sshd: bool) -> Option<Env> {
    support::docker::use_podman();
    let b = Env::builder(test).busybox().plan_fidelity();
    if sshd { b.sshd() } else { b }.build()
}

#[test]
fn a_healthy_cut_over_on_podman_serves_hardened_and_rollback_brings_back_the_old() {
    let Some(env) = env("pm-cutover", false) else {
        return;
    };
    scenario::cut_over_and_rollback(&env);
}

#[test]
fn an_unhealthy_new_app_on_podman_is_kept_aside_and_the_old_one_serves() {
    let Some(env) = env("pm-unhealthy", false) else {
        return;
    };
    scenario::unhealthy_kept_aside(&env);
}

#[test]
fn a_migration_on_podman_builds_with_run_deploys_undoes_a_bad_release_and_rolls_back() {
    let Some(env) = env("pm-e2e", true) else {
        return;
    };
    scenario::migration(&env);
}

#[test]
fn a_build_without_run_on_podman_is_committed_from_a_helper_and_serves() {
    let Some(env) = env("pm-layer", true) else {
        return;
    };
    scenario::build_without_run(&env);
}

#[test]
fn a_replaced_volume_on_podman_comes_back_on_rollback_with_every_owner_and_mode() {
    let Some(env) = env("pm-replace", true) else {
        return;
    };
    scenario::volume_replace_and_rollback_keep_owners(&env);
}

#[test]
fn a_migration_on_podman_over_ssh_runs_through_the_servers_podman_socket() {
    // The sshd forwards to Podman's socket (`target.socket`) and TCP, for the health
    // checks made from the engine's host.
    support::docker::use_podman();
    let Some(env) = Env::builder("pm-ssh")
        .sshd_config("AllowStreamLocalForwarding yes\nAllowTcpForwarding yes\n")
        .busybox()
        .plan_fidelity()
        .build()
    else {
        return;
    };
    let s = env.sshd();
    let target = format!(
        "target:\n  docker: ssh://{}@127.0.0.1:{}\n  identity: {}\n  known_hosts: {}\n  socket: {}\n",
        s.user,
        s.port,
        s.client_key.display(),
        s.known_hosts.display(),
        support::docker::socket()
    );
    scenario::migration_on(&env, &target);
}

/// `GET /index.html` at 127.0.0.1:`port` with `Host: host`: the body, or why not.
fn get_as(port: u16, host: &str) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return "refused".into();
    };
    let _ = write!(s, "GET /index.html HTTP/1.0\r\nHost: {host}\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map_or(out.clone(), |(_, b)| b.trim().to_string())
}

/// The front door on Podman: the shared nginx (gov/front:1) made on a Podman network, a
/// release routed by host name (no published port), `status --check` through the proxy,
/// a cut-over to a second release and its rollback, then the first run's rollback that
/// takes the route and the proxy away.
#[test]
fn the_front_door_on_podman_routes_a_cut_over_and_its_rollback() {
    let Some(env) = env("pm-front", true) else {
        return;
    };
    support::docker::front();
    env.write("vendor/www/index.html", "release one\n");
    let front = format!("{}-front", env.name);
    let (http, https) = (support::free_port(), support::free_port());
    let host = "izin.podman.test";
    let pb = env.write(
        "front.yml",
        format!(
            "version: 1\napp: pm-front\n{vendor}target:\n  docker: \"unix://{socket}\"\n  front: {{ name: {front}, http: \"127.0.0.1:{http}\", https: \"127.0.0.1:{https}\" }}\n\
             steps:\n  - id: code\n    fetch: {{ path: {src} }}\n{image}\
             \x20 - id: web\n    deploy:\n      image: image\n      name: {name}\n      stop_grace: 2s\n      route: {{ host: {host}, port: 8080, drain: 1s }}\n      health:\n        http: http://127.0.0.1/index.html\n        timeout: 20s\n        interval: 100ms\n",
            vendor = env.sshd().vendor_yaml(),
            socket = support::docker::socket(),
            src = env.path("vendor/www").display(),
            image = support::site::image_step("boyong-fixture/busybox:1"),
            name = env.name,
        ),
    );
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    let first = env.last_run("pm-front");
    assert_eq!(get_as(http, host), "release one");
    let st = env.run(&["status", "pm-front", "--check", "--json"]);
    assert_eq!(st.status.code(), Some(0), "{}", support::text(&st.stderr));
    assert!(
        support::text(&st.stdout).contains("through the front proxy answered 200"),
        "{}",
        support::text(&st.stdout)
    );
    let ports = support::text(&support::docker::docker(&["port", &env.name]).stdout);
    assert!(
        ports.trim().is_empty(),
        "the app publishes no port: {ports}"
    );

    env.write("vendor/www/index.html", "release two\n");
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    assert_eq!(get_as(http, host), "release two");
    let rb = env.rollback("pm-front");
    assert_eq!(rb.status.code(), Some(0), "{}", support::text(&rb.stderr));
    assert_eq!(get_as(http, host), "release one");

    let id = first.file_name().unwrap().to_string_lossy().into_owned();
    let rb = env.run(&["rollback", "pm-front", "--run", &id, "--yes"]);
    assert_eq!(rb.status.code(), Some(0), "{}", support::text(&rb.stderr));
    assert!(
        !support::docker::exists("container", &front),
        "the proxy was removed"
    );
    assert!(!support::docker::exists("container", &env.name));
}
