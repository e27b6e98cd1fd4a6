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
