//! `build` against the real Docker Engine, from a tree pulled from a real sshd: the image
//! holds the pulled files, carries its labels, its context is the same twice, a missing
//! base image is named, and rollback removes the image.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::Digest as _;
use support::docker::docker;
use support::env::Env;
use support::text;

impl Env {
    /// A vendor sshd serving a small site, the engine with busybox; runs keep to their plans.
    fn new(test: &str) -> Option<Self> {
        Self::builder(test)
            .sshd()
            .busybox()
            .plan_fidelity()
            .file("vendor/www/index.html", "<h1>Selamat datang</h1>\n")
            .file("vendor/www/css/site.css", "body{}\n")
            .build()
    }

    fn playbook(&self, base: &str) -> PathBuf {
        self.write(
            "site.yml",
            format!(
                "version: 1\napp: situs\n{}steps:\n  - id: code\n    fetch: {{ path: {} }}\n{}",
                self.sshd().vendor_yaml(),
                self.path("vendor/www").display(),
                support::site::image_step(base),
            ),
        )
    }
}

/// The facts of a step, as its `step-done` record in a run's journal gives them.
fn facts(run: &Path, step: &str) -> Value {
    let j = support::journal(run);
    j.iter()
        .find(|v| v["type"] == "step-done" && v["step"] == step)
        .map_or_else(
            || panic!("no done of {step} in {j:?}"),
            |v| v["facts"].clone(),
        )
}

#[test]
fn a_pulled_tree_becomes_a_labelled_image_the_same_context_twice_and_rollback_removes_it() {
    let Some(env) = Env::new("build") else { return };
    let pb = env.playbook("boyong-fixture/busybox:1");
    let label = env.label().arg();
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run1 = env.last_run("situs");
    let f1 = facts(&run1, "image");
    let image = f1["image"].as_str().unwrap().to_string();
    let run_id = run1.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(image, format!("boyong/situs-image:{run_id}"));
    // The image is made in two journaled parts (with `run`: through a helper container);
    // each part's line says which it is, none repeats another.
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let line = format!("+ image {image} (target)");
    assert_eq!(said.matches(&format!("{line}\n")).count(), 1, "{said}");
    assert_eq!(
        said.matches(&format!("{line}: through the helper container"))
            .count(),
        1,
        "{said}"
    );

    let inspect = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &image,
    ]);
    let labels: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let manifest = std::fs::read(run1.join("artifacts/code.manifest")).unwrap();
    let manifest_sha = boyong::digest::hex(&sha2::Sha256::digest(&manifest));
    assert_eq!(labels["boyong.app"], "situs");
    assert_eq!(labels["boyong.run"], run_id.as_str());
    assert_eq!(labels["boyong.step"], "image");
    assert_eq!(labels["boyong.source.sha256"], manifest_sha.as_str());
    assert_eq!(labels["boyong.test"], env.label().0.as_str());

    // The image serves the bytes that were pulled.
    let cat = docker(&[
        "run",
        "--rm",
        "--label",
        &label,
        &image,
        "cat",
        "/www/index.html",
    ]);
    assert_eq!(
        text(&cat.stdout),
        "<h1>Selamat datang</h1>\n",
        "{}",
        text(&cat.stderr)
    );
    // The same tree and playbook give the same context, byte for byte.
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run2 = env.last_run("situs");
    let f2 = facts(&run2, "image");
    assert_ne!(f1["image"], f2["image"]);
    assert_eq!(f1["context_sha256"], f2["context_sha256"]);

    let rb = env.rollback("situs");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    let gone = docker(&["image", "inspect", f2["image"].as_str().unwrap()]);
    assert!(!gone.status.success(), "rollback removed the image");
    let kept = docker(&["image", "inspect", &image]);
    assert!(
        kept.status.success(),
        "the first run's image is not this rollback's"
    );
}

#[test]
fn a_missing_base_image_is_named_with_how_to_provide_it() {
    let Some(env) = Env::new("nobase") else {
        return;
    };
    let pb = env.playbook("boyong-fixture/absent:1");
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("base image `boyong-fixture/absent:1` is not on the target engine"),
        "{err}"
    );
    assert!(err.contains("fixtures/base-images.sh"), "{err}");
    assert!(!err.contains("attempt 2"), "not retried: {err}");
    assert!(env.label().images().is_empty());
}

#[test]
fn sigkill_during_the_build_then_rollback_leaves_the_target_as_it_was() {
    let Some(env) = Env::new("buildkill") else {
        return;
    };
    let pb = env.playbook("boyong-fixture/busybox:1");
    // A build that takes a while.
    support::edit_file(&pb, "run: [\"chmod -R a+rX /www\"]", "run: [\"sleep 30\"]");
    // A build cut off may leave a layer it committed in the engine's build cache (untagged,
    // no label yet). It is not removed here: other tests' builds, running at the same time,
    // may share it.
    let mut child = support::spawn_quiet(&mut env.playbook_run(&pb));
    let t0 = std::time::Instant::now();
    loop {
        let ps = docker(&["ps", "--no-trunc", "--format", "{{.Command}}"]);
        if text(&ps.stdout).contains("sleep 30") {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the build never ran its RUN line"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(support::signal(child.id(), "-KILL"));
    let _ = child.wait();

    let rb = env.rollback("situs");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    let run = env.last_run("situs");
    assert!(
        !run.join("artifacts/code").exists(),
        "the pulled artifact was removed"
    );
    let tag = format!(
        "boyong/situs-image:{}",
        run.file_name().unwrap().to_string_lossy()
    );
    assert!(
        !docker(&["image", "inspect", &tag]).status.success(),
        "no image was left tagged"
    );
    // The engine may still be finishing the abandoned build; it leaves no tagged image.
    let t0 = std::time::Instant::now();
    while text(&docker(&["ps", "--no-trunc", "--format", "{{.Command}}"]).stdout)
        .contains("sleep 30")
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the build container outlived the build"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        !docker(&["image", "inspect", &tag]).status.success(),
        "no image appeared after the kill"
    );
}

/// A build without `run` loads its layer with no container at all. Ctrl-C while the
/// engine loads it: the load is carried to its end before the run ends (nothing of the
/// run appears after its process has gone), and `rollback` then removes the image.
#[test]
fn an_interrupt_during_an_image_load_leaves_no_image_after_rollback() {
    let Some(env) = Env::new("loadint") else {
        return;
    };
    let pb = env.playbook("boyong-fixture/busybox:1");
    support::edit_file(&pb, "      run: [\"chmod -R a+rX /www\"]\n", "");
    // A layer that takes the engine a moment to load: 96 MB that do not compress.
    for i in 0..12 {
        let mut bytes = vec![0u8; 8 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ i;
        for b in &mut bytes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x.to_le_bytes()[0];
        }
        std::fs::write(env.path(&format!("vendor/www/big-{i}.bin")), &bytes).unwrap();
    }
    let mut child = support::spawn_quiet(&mut env.playbook_run(&pb));
    // The image's intent is journaled (and fsync'd) just before the load is asked for.
    let t0 = std::time::Instant::now();
    let run = loop {
        let run = env.runs("situs").pop();
        let intent = run.as_ref().is_some_and(|r| {
            std::fs::read_to_string(r.join("journal.jsonl")).is_ok_and(|j| {
                j.lines().any(|l| {
                    l.contains("\"type\":\"intent\"")
                        && l.contains("\"step\":\"image\"")
                        && l.contains("\"resource\":\"image\"")
                })
            })
        });
        if intent {
            break run.unwrap();
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(120),
            "the build never began its image"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(support::signal(child.id(), "-INT"));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an interrupted run exits 1");
    let journal = support::journal(&run);
    assert!(
        journal
            .iter()
            .any(|r| r["type"] == "run-finished" && r["result"] == "interrupted"),
        "{journal:?}"
    );
    let rb = env.rollback("situs");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    let journal = support::journal(&run);
    let image = journal
        .iter()
        .find(|r| r["type"] == "intent" && r["change"]["resource"] == "image")
        .expect("the image's intent");
    assert!(
        journal
            .iter()
            .any(|r| r["type"] == "undone" && r["change_id"] == image["change_id"]),
        "the image's change was not undone: {journal:?}"
    );
    let tag = format!(
        "boyong/situs-image:{}",
        run.file_name().unwrap().to_string_lossy()
    );
    // Nothing is loading for this run any more: the tag does not come back.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        !docker(&["image", "inspect", &tag]).status.success(),
        "an image was left tagged {tag}"
    );
    assert!(env.label().images().is_empty(), "a labelled image was left");
}

/// `build.env` values, `workdir`, `user` and a `copy` destination reach the image byte for
/// byte: the Dockerfile's variable substitution and quote processing change none of them
/// (`$` stays `$`, a backslash stays one, a tab is a tab).
#[test]
fn env_values_workdir_and_copy_destinations_reach_the_image_byte_for_byte() {
    let Some(env) = Env::new("bytes") else {
        return;
    };
    let values: [(&str, &str); 12] = [
        ("DOLLAR", "$HOSTNAME"),
        ("BRACES", "${PATH}and${X:-y}$"),
        ("BACKSLASH", r"back\slash \t \\ \$x \n"),
        ("QUOTES", r#"quotes ' " '' "" it's"#),
        ("TABS", "tab\there\t"),
        ("UTF8", "ünïcødé ✓ 日本"),
        ("EMPTY", ""),
        ("BLANKS", "  leading and trailing  "),
        ("PAIRS", "a=b c=d"),
        ("HASH", "#not a comment"),
        ("ENDS", "ends with \\"),
        ("CONT", "line \\"),
    ];
    let dest = r#"/www/it's $HOME \ "q"#;
    let workdir = "/srv/a b/$PWD/\\/'";
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let env_yaml: Vec<String> = values
        .iter()
        .map(|(k, v)| format!("        {k}: {}\n", q(v)))
        .collect();
    let pb = env.dir.path().join("bytes.yml");
    std::fs::write(
        &pb,
        format!(
            "version: 1\napp: situs\n{}steps:\n  - id: code\n    fetch: {{ path: {} }}\n  - id: image\n    build:\n      base: boyong-fixture/busybox:1\n      copy: {{ code: {} }}\n      workdir: {}\n      user: \"65534:65534\"\n      env:\n{}",
            env.sshd().vendor_yaml(),
            env.dir.path().join("vendor/www").display(),
            q(dest),
            q(workdir),
            env_yaml.concat(),
        ),
    )
    .unwrap();
    let out = env.run(&["run", pb.to_str().unwrap(), "--label", &env.label().arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.runs("situs").pop().unwrap();
    let f = facts(&run, "image");
    let image = f["image"].as_str().unwrap().to_string();
    // No `run`: one layer loaded onto the base's, no container; the engine's history
    // of it reads (one entry with a layer per layer) and names that layer.
    assert_eq!(f["builder"], "load", "{f}");
    let history = docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        &image,
    ]);
    assert!(history.status.success(), "{}", text(&history.stderr));
    let top = text(&history.stdout);
    assert!(
        top.lines()
            .next()
            .is_some_and(|l| l.starts_with("boyong build: ") && l.contains("/www")),
        "{top}"
    );
    let layers = docker(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", &image]);
    let base_layers = docker(&[
        "image",
        "inspect",
        "-f",
        "{{len .RootFS.Layers}}",
        "boyong-fixture/busybox:1",
    ]);
    let count = |o: &std::process::Output| text(&o.stdout).trim().parse::<usize>().unwrap();
    assert_eq!(count(&layers), count(&base_layers) + 1);

    let inspect = docker(&["image", "inspect", "--format", "{{json .Config}}", &image]);
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let in_image: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for (k, v) in values {
        let want = format!("{k}={v}");
        assert!(
            in_image.contains(&want.as_str()),
            "{want:?} is not in the image's Env: {in_image:#?}"
        );
    }
    assert_eq!(config["WorkingDir"], workdir);
    assert_eq!(config["User"], "65534:65534");
    let cat = docker(&[
        "run",
        "--rm",
        "--label",
        &env.label().arg(),
        &image,
        "cat",
        &format!("{dest}/index.html"),
    ]);
    assert_eq!(
        text(&cat.stdout),
        "<h1>Selamat datang</h1>\n",
        "{}",
        text(&cat.stderr)
    );
}

/// A vendor file readable by no one but its owner and group (a 0640 config), in an image
/// that runs as another user: the live plan names it and says to set `owner`; with
/// `owner`, the copied files are that user's, and the app, running as it, reads them.
#[test]
fn files_others_cannot_read_are_flagged_by_the_plan_and_owner_makes_them_the_apps() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(env) = Env::new("owner") else { return };
    let config = env.path("vendor/www/config.php");
    std::fs::write(&config, "<?php $db = 'x';\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let yaml = |owner: &str| {
        format!(
            "version: 1\napp: situs\n{}steps:\n  - id: code\n    fetch: {{ path: {} }}\n  - id: image\n    build:\n      base: boyong-fixture/busybox:1\n      copy: {{ code: /www }}\n      user: \"65534:65534\"\n{owner}",
            env.sshd().vendor_yaml(),
            env.path("vendor/www").display(),
        )
    };
    let pb = env.write("owner.yml", yaml(""));
    let out = env.run(&["plan", pb.to_str().unwrap()]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("./config.php") && all.contains("owner: \"65534:65534\""),
        "{all}"
    );
    let pb = env.write("owner.yml", yaml("      owner: \"65534:65534\"\n"));
    let out = env.run(&["plan", pb.to_str().unwrap()]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("(owned by 65534:65534)"), "{all}");
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let image = facts(&env.last_run("situs"), "image")["image"]
        .as_str()
        .unwrap()
        .to_string();
    let read = docker(&[
        "run",
        "--rm",
        "--label",
        &env.label().arg(),
        &image,
        "sh",
        "-c",
        "stat -c %u:%g /www/config.php /www/index.html && cat /www/config.php",
    ]);
    assert_eq!(
        text(&read.stdout),
        "65534:65534\n65534:65534\n<?php $db = 'x';\n",
        "{}",
        text(&read.stderr)
    );
}

#[test]
fn run_commands_and_an_owner_by_name_are_made_without_the_builder() {
    let Some(env) = Env::new("buildrun") else {
        return;
    };
    let yaml = |run: &str| {
        format!(
            "version: 1\napp: situs\n{}steps:\n  - id: code\n    fetch: {{ path: {} }}\n  - id: image\n    build:\n      base: boyong-fixture/busybox:1\n      copy: {{ code: /www }}\n      owner: www-data\n      run: {run}\n      env: {{ SITE: halo }}\n",
            env.sshd().vendor_yaml(),
            env.path("vendor/www").display(),
        )
    };
    // Each command in its own shell, in order, as the base's user in its directory; the
    // playbook's env is the image's, not the commands'.
    let pb = env.write(
        "run.yml",
        yaml(r#"["cd /tmp && pwd > /first", "pwd > /second; echo \"site=$SITE\" >> /second", "echo made-by-run"]"#),
    );
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = env.last_run("situs");
    let f = facts(&run, "image");
    assert_eq!(f["builder"], "commit");
    let image = f["image"].as_str().unwrap().to_string();
    let label = env.label().arg();
    let cat = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--label", &label, &image];
        a.extend_from_slice(args);
        text(&docker(&a).stdout).trim().to_string()
    };
    assert_eq!(cat(&["cat", "/first"]), "/tmp");
    assert_eq!(cat(&["cat", "/second"]), "/\nsite=");
    // `www-data` from the base's /etc/passwd: 33:33.
    assert_eq!(cat(&["stat", "-c", "%u:%g", "/www/index.html"]), "33:33");
    // No `cmd` in the playbook: the base's own; its env is the playbook's.
    let inspect = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}} {{json .Config.Entrypoint}} {{json .Config.Env}}",
        &image,
    ]);
    let config = text(&inspect.stdout);
    assert!(config.starts_with("[\"/bin/sh\"] "), "{config}");
    assert!(config.contains("SITE=halo"), "{config}");
    assert!(
        !config.contains("for c in"),
        "the run loop is not the image's: {config}"
    );
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap_or_default();
    assert!(
        log.contains("made-by-run"),
        "the commands' output is in the log: {log}"
    );
    // On the terminal a line a phase; every line with --verbose.
    let said = text(&out.stderr);
    assert!(!said.contains("made-by-run"), "{said}");
    assert!(
        said.contains("ran 3 `run` command(s) in the helper: 1 line(s) of output"),
        "{said}"
    );
    assert!(said.contains("verified 2 file(s)"), "{said}");
    assert_eq!(env.rollback("situs").status.code(), Some(0));
    let out = env.run(&["run", "--verbose", pb.to_str().unwrap(), "--label", &label]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("    | made-by-run"));
    assert_eq!(env.rollback("situs").status.code(), Some(0));

    // A failing command fails the step with its status and last lines; nothing is left.
    let pb = env.write(
        "fail.yml",
        yaml(r#"["echo before-the-fault; exit 7", "echo never"]"#),
    );
    let out = env.run_playbook(&pb);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("exited with status 7"), "{all}");
    assert!(all.contains("before-the-fault"), "{all}");
    assert!(!all.contains("never"), "{all}");
    let left = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={}", env.label().arg()),
        "--format",
        "{{.Names}}",
    ]);
    assert!(
        !text(&left.stdout).contains(".build"),
        "{}",
        text(&left.stdout)
    );
}

/// A vendor file whose name an image layer reads as a deletion (`.wh.NAME`) cannot be
/// held in an image (the engine refuses it even through a container): the build says
/// which file and what to do before anything is made.
#[test]
fn files_named_like_layer_deletions_are_refused_by_name() {
    let Some(env) = Env::builder("whiteout")
        .sshd()
        .busybox()
        .file("vendor/www/index.html", "<h1>Selamat datang</h1>\n")
        .file("vendor/www/bin/.wh.index.html", "not a deletion\n")
        .build()
    else {
        return;
    };
    let pb = env.playbook("boyong-fixture/busybox:1");
    let out = env.run_playbook(&pb);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("bin/.wh.index.html") && err.contains("exclude"),
        "{err}"
    );
    assert!(env.label().images().is_empty());
    assert!(env.containers().is_empty());
}
