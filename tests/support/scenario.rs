//! Scenarios every target engine must pass, written once: a test binary runs them on the
//! engine it drives (`tests/podman.rs` on Podman; the Docker Engine's own test files and
//! `tests/db_migration.rs` on Docker). Each takes a fresh [`Env`] of the engine.

use std::path::PathBuf;

use super::db::{Mariadb, base_image};
use super::docker::{docker, inspect, target_yaml, web_image};
use super::env::Env;
use super::{serves, site, text};

/// `docker run -d` of `cmd` in busybox with `volume` at /v, waited for; its output. (The
/// Docker CLI's attached `run` does not work with Podman's service.)
pub fn in_volume(env: &Env, volume: &str, cmd: &str) -> String {
    let name = super::docker::unique("vol");
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &env.label().arg(),
        "-v",
        &format!("{volume}:/v"),
        "boyong-fixture/busybox:1",
        "sh",
        "-c",
        cmd,
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let wait = docker(&["wait", &name]);
    let logs = docker(&["logs", &name]);
    let _ = docker(&["rm", "-f", &name]);
    assert_eq!(
        text(&wait.stdout).trim(),
        "0",
        "{cmd}: {}",
        text(&logs.stderr)
    );
    text(&logs.stdout)
}

/// A web deploy of `image` as `env.name` on `env.port`, health at `path`, with a config
/// file delivered at deploy time (`deploy.files`).
fn web_playbook(env: &Env, image: &str, path: &str) -> PathBuf {
    env.write(
        "web.yml",
        format!(
            "version: 1\napp: webtest\nvendor: {{ host: 127.0.0.1, user: x, identity: none, known_hosts: none }}\n{target}steps:\n  - id: web\n    deploy:\n      image: {image}\n      name: {name}\n      ports: [\"127.0.0.1:{port}:8080\"]\n      files:\n        - path: /etc/app.ini\n          content: \"db_host = situs-db\"\n          owner: \"1234:5678\"\n          mode: \"0440\"\n      health:\n        http: http://127.0.0.1:{port}{path}\n        timeout: 4s\n        interval: 1s\n",
            target = target_yaml(),
            name = env.name,
            port = env.port,
        ),
    )
}

/// The app as it runs today: `env.name` serving "old"; its container id.
fn old_app(env: &Env) -> serde_json::Value {
    let old = web_image(env.label(), "old", "old");
    let p = format!("127.0.0.1:{}:8080", env.port);
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &env.name,
        "--label",
        &env.label().arg(),
        "-p",
        &p,
        &old,
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(serves(env.port), "old");
    inspect(&env.name).expect("the old container")["Id"].clone()
}

/// A healthy cut-over serves the new app from a hardened container with its config file;
/// rollback brings back the old container, serving, alone.
pub fn cut_over_and_rollback(env: &Env) {
    let old_id = old_app(env);
    let new = web_image(env.label(), "new", "new");
    let out = env.run_playbook(&web_playbook(env, &new, "/"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "new");
    let c = inspect(&env.name).expect("the new container");
    assert_ne!(c["Id"], old_id);
    let h = &c["HostConfig"];
    assert_eq!(h["ReadonlyRootfs"], true, "{h}");
    assert!(
        h["SecurityOpt"].to_string().contains("no-new-privileges"),
        "{h}"
    );
    assert_eq!(h["Memory"], 512 * 1024 * 1024);
    assert_eq!(h["PidsLimit"], 256);
    assert_eq!(h["RestartPolicy"]["Name"], "unless-stopped");
    assert_eq!(c["Config"]["Labels"]["boyong.app"], "webtest");
    // The config file, delivered through a volume of the release: owner and mode as given.
    let ini = docker(&[
        "exec",
        "--user",
        "1234:5678",
        &env.name,
        "sh",
        "-c",
        "stat -c '%u:%g %a' /etc/app.ini && cat /etc/app.ini",
    ]);
    assert_eq!(
        text(&ini.stdout),
        "1234:5678 440\ndb_host = situs-db",
        "{}",
        text(&ini.stderr)
    );
    // No capability kept: what the container's init process holds, as the kernel says.
    let caps = docker(&["exec", &env.name, "grep", "CapEff", "/proc/1/status"]);
    assert_eq!(
        text(&caps.stdout).split_whitespace().nth(1),
        Some("0000000000000000"),
        "{}",
        text(&caps.stderr)
    );
    let rb = env.rollback("webtest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(serves(env.port), "old");
    assert_eq!(inspect(&env.name).expect("the old container")["Id"], old_id);
    assert_eq!(env.containers(), std::slice::from_ref(&env.name));
}

/// An unhealthy new app is stopped and kept aside (`--no-auto-rollback`); the old one
/// serves again at once, and rollback leaves it alone.
pub fn unhealthy_kept_aside(env: &Env) {
    let old_id = old_app(env);
    let new = web_image(env.label(), "new", "new");
    let out = env
        .playbook_run(&web_playbook(env, &new, "/missing"))
        .arg("--no-auto-rollback")
        .output()
        .expect("boyong runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("is unhealthy") && err.contains("404"), "{err}");
    assert_eq!(serves(env.port), "old");
    let run = env.last_run("webtest");
    let failed = format!(
        "{}.failed-{}",
        env.name,
        run.file_name().and_then(|n| n.to_str()).expect("a run id")
    );
    assert_eq!(
        inspect(&failed).expect("the failed one")["State"]["Running"],
        false
    );
    let rb = env.rollback("webtest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(serves(env.port), "old");
    assert_eq!(inspect(&env.name).expect("the old container")["Id"], old_id);
    assert_eq!(env.containers(), std::slice::from_ref(&env.name));
}

/// The vendor's site pulled over SSH, built by `image_step`, deployed on the engine
/// (`target_yaml`).
fn site_playbook(env: &Env, image_step: &str, health: &str) -> PathBuf {
    site_playbook_on(env, &target_yaml(), image_step, health)
}

/// [`site_playbook`] on the engine that `target` (a playbook's `target:` block) names.
fn site_playbook_on(env: &Env, target: &str, image_step: &str, health: &str) -> PathBuf {
    env.write(
        "situs.yml",
        format!(
            "version: 1\napp: situs\n{vendor}{target}\
             steps:\n  - id: code\n    fetch: {{ path: {src} }}\n{image_step}{web}",
            vendor = env.sshd().vendor_yaml(),
            src = env.path("vendor/www").display(),
            web = site::web_step(&env.name, env.port, health, "5s", ""),
        ),
    )
}

/// A whole migration (fetch over SSH → build with a `run` → deploy), a bad release undone
/// by itself, rollback to the first; the image's configuration as the playbook says.
pub fn migration(env: &Env) {
    migration_on(env, &target_yaml());
}

/// [`migration`] on the engine that `target` (a playbook's `target:` block) names.
pub fn migration_on(env: &Env, target: &str) {
    let site_playbook =
        |env: &Env, image: &str, health: &str| site_playbook_on(env, target, image, health);
    env.write("vendor/www/index.html", "release 1\n");
    let image = site::image_step("boyong-fixture/busybox:1");
    let out = env.run_playbook(&site_playbook(env, &image, "/"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "release 1");
    super::assert_plan_fidelity(&env.last_run("situs"));
    let c = inspect(&env.name).expect("the app's container");
    let i = inspect(c["Image"].as_str().expect("its image")).expect("its image");
    assert_eq!(i["Config"]["User"], "65534", "{}", i["Config"]);
    assert_eq!(
        i["Config"]["Cmd"],
        serde_json::json!(["httpd", "-f", "-p", "8080", "-h", "/www"])
    );
    assert_eq!(i["Config"]["Labels"]["boyong.app"], "situs");
    assert!(
        i["Config"]["ExposedPorts"]
            .as_object()
            .is_some_and(|p| p.contains_key("8080/tcp")),
        "{}",
        i["Config"]
    );

    env.write("vendor/www/index.html", "release 2\n");
    let out = env.run_playbook(&site_playbook(env, &image, "/missing"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "release 1");
    let records = super::journal(&env.last_run("situs"));
    assert_eq!(records.last().expect("records")["result"], "rolled-back");

    env.write("vendor/www/index.html", "release 3\n");
    let out = env.run_playbook(&site_playbook(env, &image, "/"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "release 3");
    let rb = env.rollback("situs");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(serves(env.port), "release 1");
    assert_eq!(env.containers(), std::slice::from_ref(&env.name));
}

/// A build with no `run` (one layer on the base: loaded alone on Docker, committed from a
/// helper on Podman), files owned as `owner` says, deployed and serving.
pub fn build_without_run(env: &Env) {
    env.write("vendor/www/index.html", "layered\n");
    let image = "  - id: image\n    build:\n      base: boyong-fixture/busybox:1\n      copy: { code: /www }\n      owner: \"65534:65534\"\n      user: \"65534\"\n      cmd: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n      expose: [8080]\n";
    let out = env.run_playbook(&site_playbook(env, image, "/"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serves(env.port), "layered");
    let owner = docker(&["exec", &env.name, "stat", "-c", "%u:%g", "/www/index.html"]);
    assert_eq!(
        text(&owner.stdout).trim(),
        "65534:65534",
        "{}",
        text(&owner.stderr)
    );
    let rb = env.rollback("situs");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

/// Every entry of the volume, `uid:gid mode type path`, sorted.
fn listing(env: &Env, volume: &str) -> String {
    in_volume(
        env,
        volume,
        "cd /v && find . | sort | while read -r f; do stat -c '%u:%g %a %F %n' \"$f\"; done",
    )
}

/// `restore` with `replace: true` saves the volume it empties, and rollback puts it back
/// with every owner, group and mode as they were (the volume's own directory too).
pub fn volume_replace_and_rollback_keep_owners(env: &Env) {
    let Some(db) = Mariadb::start() else { return };
    db.seed();
    super::docker::busybox();
    let image = base_image("mariadb");
    let volume = env.volume();
    let made = docker(&["volume", "create", "--label", &env.label().arg(), &volume]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    in_volume(
        env,
        &volume,
        "mkdir -p /v/app/uploads && echo earlier > /v/earlier-data && echo s > /v/app/secret \
         && echo u > /v/app/uploads/a.jpg && ln -s app/secret /v/link \
         && chown 999:999 /v/earlier-data && chown -R 33:33 /v/app && chown 1234:5678 /v/app/secret \
         && chmod 0640 /v/app/secret && chmod 0750 /v/app/uploads && chmod 0711 /v \
         && chown 999:998 /v",
    );
    let before = listing(env, &volume);
    assert!(
        before.contains("1234:5678 640 regular file ./app/secret"),
        "{before}"
    );
    let pb = env.db_playbook("mariadb", db.port, &image, true);
    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    super::assert_plan_fidelity(&env.last_run("dbtest"));
    let now = listing(env, &volume);
    assert!(
        !now.contains("earlier-data") && now.contains("ibdata1"),
        "the volume holds the restored database only: {now}"
    );
    let rb = env.rollback("dbtest");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(
        listing(env, &volume),
        before,
        "every owner and mode is back"
    );
    assert_eq!(
        in_volume(env, &volume, "cat /v/app/secret /v/link").trim(),
        "s\ns"
    );
}
