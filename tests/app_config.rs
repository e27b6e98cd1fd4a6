//! The app's config (issue 14, item 3), against a real sshd and the real Docker Engine: a
//! build that would put the vendor's password into an image layer is refused before any
//! change; `deploy.files` delivers the config at deploy time (the fetched file edited, a
//! template with a secret), owned and moded as asked, mounted read-only; no layer of the
//! image holds the vendor's password (`docker save`, every byte); a `find` that is not in
//! the file changes nothing; rollback removes the files volume.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::path::Path;

use support::docker::{docker, exists};
use support::env::Env;
use support::text;

const VENDOR_PW: &str = "vendor-pass-8812";
const APP_PW: &str = "gov-pass-5521";

fn wp_config() -> String {
    format!(
        "<?php\ndefine( 'DB_NAME', 'wp' );\ndefine( 'DB_USER', 'wp' );\ndefine( 'DB_PASSWORD', '{VENDOR_PW}' );\ndefine( 'DB_HOST', 'localhost' );\n"
    )
}

fn env() -> Option<Env> {
    Env::builder("config")
        .sshd()
        .busybox()
        .plan_fidelity()
        .var("VENDOR_PW", VENDOR_PW)
        .var("APP_PW", APP_PW)
        .file("vendor/www/index.html", "<h1>Situs</h1>\n")
        .file("vendor/www/wp-config.php", wp_config())
        .file(
            "vendor/www/backup/notes.txt",
            format!("db root: {VENDOR_PW}\n"),
        )
        .file("local/app.ini.tmpl", "[db]\npassword = {{ vars.app_pw }}\n")
        .build()
}

fn playbook(env: &Env, exclude: &str, files: &str) -> std::path::PathBuf {
    env.write(
        "local/site.yml",
        format!(
            "version: 1\napp: situs\n{}vars:\n  vendor_pw: {{ env: VENDOR_PW }}\n  app_pw: {{ env: APP_PW }}\nsteps:\n  - id: code\n    fetch: {{ path: {}, exclude: [{exclude}] }}\n  - id: image\n    build:\n      base: boyong-fixture/busybox:1\n      copy: {{ code: /www }}\n      user: \"65534:65534\"\n      owner: \"65534:65534\"\n      cmd: [\"sleep\", \"3600\"]\n  - id: web\n    deploy:\n      image: image\n      name: {}\n{files}",
            env.sshd().vendor_yaml(),
            env.path("vendor/www").display(),
            env.name,
        ),
    )
}

/// The files of a deploy that edits the fetched `wp-config.php` and adds an ini file.
fn files(find_host: &str) -> String {
    format!(
        "      files:\n        - path: /www/wp-config.php\n          replace:\n            - {{ find: \"{{{{ vars.vendor_pw }}}}\", with: \"{{{{ vars.app_pw }}}}\" }}\n            - {{ find: \"{find_host}\", with: \"'DB_HOST', 'situs-db'\" }}\n        - path: /etc/app.ini\n          template: app.ini.tmpl\n          mode: \"0400\"\n"
    )
}

/// Every byte of `docker save IMAGE`, searched for `needle`.
fn saved_image_holds(image: &str, needle: &str) -> bool {
    let out = docker(&["save", image]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        out.stdout.len() > 1000,
        "docker save gave {} bytes",
        out.stdout.len()
    );
    memchr_find(&out.stdout, needle.as_bytes())
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn image_of(run: &Path) -> String {
    support::journal(run)
        .iter()
        .find(|v| v["type"] == "step-done" && v["step"] == "image")
        .and_then(|v| v["facts"]["image"].as_str().map(str::to_string))
        .expect("the image's done record")
}

#[test]
fn config_is_delivered_at_deploy_and_the_vendors_password_reaches_no_layer() {
    let Some(env) = env() else { return };
    // Without `files`: the live plan says the build would refuse, and the build refuses,
    // naming the file and what it holds; no image is made.
    let pb = playbook(&env, "", "");
    let plan = env.run(&["plan", pb.to_str().unwrap()]);
    let shown = text(&plan.stdout) + &text(&plan.stderr);
    assert_eq!(plan.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("/wp-config.php: holds credentials (DB_PASSWORD)")
            && shown.contains("the vendor's credentials would be written into an image layer: /www/wp-config.php (DB_PASSWORD)"),
        "{shown}"
    );
    assert!(!shown.contains(VENDOR_PW), "{shown}");
    let out = env.run_playbook(&pb);
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("credentials would be written into an image layer")
            && err.contains("/www/wp-config.php (from `code`: DB_PASSWORD)"),
        "{err}"
    );
    assert!(!err.contains(VENDOR_PW), "the password is shown: {err}");
    assert!(env.label().images().is_empty(), "an image was built");
    assert_eq!(env.rollback("situs").status.code(), Some(0));

    // With `files`, the config stays out; a stray copy of the vendor's password (a secret
    // of the playbook) in another file is still found.
    let pb = playbook(&env, "", &files("'DB_HOST', 'localhost'"));
    let out = env.run_playbook(&pb);
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("/www/backup/notes.txt (from `code`: the value of secret `vendor_pw`)")
            && !err.contains("wp-config.php ("),
        "{err}"
    );
    assert!(!err.contains(VENDOR_PW), "the password is shown: {err}");
    assert_eq!(env.rollback("situs").status.code(), Some(0));

    // A `find` that is not in the file: the deploy fails before any change of its own.
    let pb = playbook(&env, "backup/", &files("'DB_HOST', '127.0.0.1'"));
    let out = env.run_playbook(&pb);
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("replacement 2") && err.contains("code:wp-config.php"),
        "{err}"
    );
    let run = env.last_run("situs");
    assert!(
        !support::journal(&run)
            .iter()
            .any(|v| v["type"] == "intent" && v["step"] == "web"),
        "the deploy made a change"
    );
    assert_eq!(env.rollback("situs").status.code(), Some(0));

    // With `files`: the plan says the vendor's file stays out of the image, the run works.
    let pb = playbook(&env, "backup/", &files("'DB_HOST', 'localhost'"));
    let plan = env.run(&["plan", "--offline", pb.to_str().unwrap()]);
    let shown = text(&plan.stdout);
    assert!(
        shown.contains("without code:wp-config.php (delivered at deploy time by step `web`")
            && shown.contains(
                "file /etc/app.ini from template app.ini.tmpl, owner 65534:65534, mode 0400"
            ),
        "{shown}"
    );
    assert!(
        !shown.contains(APP_PW) && !shown.contains(VENDOR_PW),
        "{shown}"
    );
    let plan = env.run(&["plan", pb.to_str().unwrap()]);
    let live = text(&plan.stdout) + &text(&plan.stderr);
    assert!(
        !live.contains("would be written into an image layer"),
        "{live}"
    );
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.last_run("situs");
    let run_id = run.file_name().unwrap().to_str().unwrap().to_string();
    let name = env.name.as_str();
    let read = docker(&[
        "exec",
        name,
        "sh",
        "-c",
        "stat -c '%u:%g %a' /www/wp-config.php /etc/app.ini && cat /www/wp-config.php /etc/app.ini && id -u",
    ]);
    let got = text(&read.stdout);
    assert!(read.status.success(), "{}", text(&read.stderr));
    assert!(
        got.starts_with("65534:65534 440\n65534:65534 400\n"),
        "{got}"
    );
    assert!(
        got.contains(&format!("define( 'DB_PASSWORD', '{APP_PW}' );"))
            && got.contains("'DB_HOST', 'situs-db'")
            && got.contains(&format!("password = {APP_PW}")),
        "{got}"
    );
    assert!(!got.contains(VENDOR_PW), "{got}");
    // Read-only: the app cannot change its config.
    let write = docker(&["exec", name, "sh", "-c", "echo x >> /www/wp-config.php"]);
    assert!(!write.status.success(), "the config is writable");
    // No layer of the image holds the vendor's password, nor the app's.
    let image = image_of(&run);
    assert!(
        !saved_image_holds(&image, VENDOR_PW),
        "the vendor's password is in a layer"
    );
    assert!(
        !saved_image_holds(&image, APP_PW),
        "the app's password is in a layer"
    );
    let volume = format!("{name}.files-{run_id}");
    assert!(exists("volume", &volume), "no files volume {volume}");
    // No secret in the journal or the plan of the run.
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(!journal.contains(APP_PW) && !journal.contains(VENDOR_PW));

    let out = env.rollback("situs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The list names each part of the files volume: its file, then its filling.
    let listed = text(&out.stdout);
    assert!(
        listed.contains(&format!(
            "+ volume {volume} (target): filled through the helper"
        )),
        "{listed}"
    );
    assert_eq!(
        listed
            .matches(&format!(
                "+ volume {volume} (target): file /www/wp-config.php"
            ))
            .count(),
        1,
        "{listed}"
    );
    assert!(!exists("volume", &volume), "rollback left the files volume");
    assert!(!exists("container", name), "rollback left the container");
}
