//! Hostile input (issue 21): values that try to leave their field. A corpus of control
//! characters put into every string field of a playbook that uses every field, and one
//! test per way in that was found: a line break in `build.user` that adds Dockerfile
//! instructions, a PostgreSQL `database` that libpq reads as a connection string, a
//! `fetch.path` whose trailing newline the vendor's shell drops, a FIFO where a playbook or
//! a secret file should be, a large playbook blamed on aliases it does not have, and a
//! secret of several lines printed one line at a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use boyong::diag::Diagnostic;

/// A playbook that uses every string field of the format, each value a double-quoted
/// scalar (so that the corpus can put YAML escapes into it).
const FULL: &str = include_str!("../fixtures/hostile/full.yml");

/// Control characters, as YAML double-quoted escapes, and what they are.
const CONTROLS: [(&str, &str); 9] = [
    ("\\n", "line feed"),
    ("\\r", "carriage return"),
    ("\\t", "tab"),
    ("\\x1b", "escape"),
    ("\\0", "NUL"),
    ("\\x7f", "delete"),
    ("\\x85", "next line (C1)"),
    ("\\x9b", "CSI (C1)"),
    ("\\x08", "backspace"),
];

/// Fields whose values are scripts, argument vectors, environment values or free text:
/// they may hold a tab and a line feed (`build.env` a tab only: a Dockerfile `ENV`
/// cannot carry a line break). Every other control character, in every field, is refused.
fn allowed(key_path: &str, control: &str) -> bool {
    let script_like = [
        "description",
        "maint.exec.run",
        "maint.exec.undo",
        "maint.exec.env.APP_MODE",
        "maint.exec.env.KEY",
        "migrate.exec.run",
        "image.build.run",
        "image.build.cmd",
        "app.deploy.env.DB_PASSWORD",
        "app.deploy.env.DB_HOST",
        "side.deploy.health.cmd",
    ];
    match control {
        "\\t" => script_like.contains(&key_path) || key_path == "image.build.env.APP_ENV",
        "\\n" => script_like.contains(&key_path),
        _ => false,
    }
}

/// Every double-quoted scalar of `text`: (byte offset of its closing quote, line, a name
/// made of the keys above it: `image.build.env.APP_ENV`, `vendor.host`; a quoted key is
/// named with ` key` after it).
fn scalars(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let (mut offset, mut top, mut step, mut section) =
        (0, String::new(), String::new(), String::new());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let first_key = trimmed
            .trim_start_matches("- ")
            .split(':')
            .next()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        match indent {
            0 => {
                top.clone_from(&first_key);
                step.clear();
            }
            2 if trimmed.starts_with("- id:") => {
                step = trimmed["- id:".len()..]
                    .trim()
                    .trim_matches('"')
                    .to_string();
            }
            4 => section.clone_from(&first_key),
            _ => {}
        }
        let prefix = match (indent, step.is_empty()) {
            (0, _) => String::new(),
            (_, true) => format!("{top}."),
            (2 | 4, false) => format!("{step}."),
            (_, false) => format!("{step}.{section}."),
        };
        // The keys of this line, outside quotes, in order; the last token read.
        let mut keys: Vec<String> = Vec::new();
        let mut token = String::new();
        let mut quote: Option<usize> = None;
        for (j, c) in line.char_indices() {
            match (quote, c) {
                (None, '"') => quote = Some(j),
                (Some(s), '"') => {
                    let value = &line[s + 1..j];
                    quote = None;
                    // A flow mapping's entry is named by the line's key and its own.
                    let path = match keys.as_slice() {
                        [] => String::new(),
                        [k] => k.clone(),
                        [k, .., last] => format!("{k}.{last}"),
                    };
                    if line[j + 1..].starts_with(':') {
                        let dot = if path.is_empty() { "" } else { "." };
                        out.push((
                            offset + j,
                            i + 1,
                            format!(
                                "{prefix}{}{dot}{value} key",
                                keys.first().cloned().unwrap_or_default()
                            ),
                        ));
                        token = value.to_string();
                    } else {
                        out.push((offset + j, i + 1, format!("{prefix}{path}")));
                    }
                }
                (Some(_), _) => {}
                (None, ':') => keys.push(std::mem::take(&mut token)),
                (None, c) if c.is_ascii_alphanumeric() || c == '_' => token.push(c),
                (None, _) => token.clear(),
            }
        }
        offset += line.len();
    }
    out
}

/// The line of the field where a scalar's value ends up: a var's value is checked where
/// it is used (`release` in `image.build.tag`).
fn expected_line(text: &str, line: usize, name: &str) -> usize {
    if name == "vars.release" {
        return text
            .lines()
            .position(|l| l.contains("tag: \"demo:{{ vars.release }}\""))
            .unwrap()
            + 1;
    }
    line
}

fn parse(text: &str) -> Vec<Diagnostic> {
    boyong::playbook::parse(Path::new("p.yml"), text.as_bytes()).diagnostics
}

fn errors(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let at = d
                .loc
                .map_or(String::new(), |l| format!("{}:{}: ", l.line, l.col));
            format!("{at}{}", d.message)
        })
        .collect()
}

#[test]
fn the_full_playbook_is_valid_and_the_corpus_reaches_every_field() {
    let d = parse(FULL);
    assert!(errors(&d).is_empty(), "{:#?}", errors(&d));
    let names: Vec<String> = scalars(FULL).into_iter().map(|(_, _, n)| n).collect();
    for must in [
        "app",
        "description",
        "vendor.host",
        "vendor.user",
        "vendor.identity",
        "vendor.passphrase.env",
        "vendor.known_hosts",
        "vendor.legacy_algorithms",
        "target.docker",
        "target.tls.ca",
        "target.tls.key",
        "vars.key_file.file",
        "maint.exec.env.KEY",
        "code.timeout",
        "code.retry_delay",
        "database.restore.password",
        "vars.release",
        "code.fetch.path",
        "code.fetch.exclude",
        "code.fetch.sha256sums",
        "maint.exec.run",
        "maint.exec.undo",
        "maint.exec.env.APP_MODE",
        "db.dump.database",
        "db.dump.user",
        "db.dump.host",
        "database.restore.image",
        "migrate.exec.on.container",
        "image.build.base",
        "image.build.user",
        "image.build.workdir",
        "image.build.env.APP_ENV",
        "image.build.cmd",
        "image.build.tag",
        "app.deploy.ports",
        "app.deploy.volumes",
        "app.deploy.health.http",
        "app.deploy.health.interval",
        "app.deploy.security.memory",
        "app.deploy.security.tmpfs",
        "app.deploy.env.DB_HOST key",
        "side.deploy.health.cmd",
        "probe.deploy.health.tcp",
        "image.build.copy.code",
        "image.build.copy.code key",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "the corpus misses `{must}`: {names:#?}"
        );
    }
}

/// Every control character in every string field: refused where it is not allowed, with
/// an error on the field's line; accepted where it is (scripts, argv, env values).
#[test]
fn control_characters_in_every_string_field() {
    let mut wrong = Vec::new();
    let mut refused = 0;
    for (at, line, name) in scalars(FULL) {
        for (control, what) in CONTROLS {
            let text = format!("{}{control}{}", &FULL[..at], &FULL[at..]);
            let d = parse(&text);
            let errs = errors(&d);
            if allowed(&name, control) {
                if !errs.is_empty() {
                    wrong.push(format!(
                        "{name} with a {what}: refused, but allowed: {errs:?}"
                    ));
                }
                continue;
            }
            refused += 1;
            let want = expected_line(&text, line, &name);
            let here = d
                .iter()
                .any(|d| d.is_error() && d.loc.is_some_and(|l| l.line as usize == want));
            if !here {
                wrong.push(format!(
                    "{name} with a {what}: expected an error on line {want}, got {errs:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(refused > 300, "only {refused} cases were refused");
}

/// A control character is named in the message, by its code point.
#[test]
fn a_control_character_is_named_where_it_is() {
    let text = FULL.replace("path: \"/srv/app\"", "path: \"/srv/app\\n\"");
    let d = parse(&text);
    let e = d.iter().find(|d| d.is_error()).expect("an error");
    assert!(
        e.message.contains("U+000A") && e.message.contains("code.fetch.path"),
        "{e:?}"
    );
    let line = text
        .lines()
        .position(|l| l.contains("/srv/app\\n"))
        .unwrap()
        + 1;
    let col = text.lines().nth(line - 1).unwrap().find("\\n").unwrap() + 1;
    assert_eq!(
        e.loc.map(|l| (l.line as usize, l.col as usize)),
        Some((line, col)),
        "points at the character: {e:?}"
    );
}

// ------------------------------------------------ 1. Dockerfile injection through build.user

/// What one run of the binary did.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `boyong ARGS` in `dir`, killed after `limit`: a hang is a failure.
fn run_within(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boyong"));
    cmd.args(args)
        .current_dir(dir)
        .env("BOYONG_STATE", dir.join("state"))
        .env("BOYONG_JOURNAL_KEY_FILE", dir.join("journal.key"))
        .env_remove("BOYONG_SIM")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = support::output_limited(&mut cmd, limit);
    Out {
        code: o.status.code(),
        stdout: support::text(&o.stdout),
        stderr: support::text(&o.stderr),
    }
}

fn run(dir: &Path, args: &[&str]) -> Out {
    run_within(dir, args, &[], Duration::from_secs(60))
}

/// Exit 2, `place` named, nothing on stdout.
fn assert_refused(out: &Out, place: &str, what: &str) {
    assert_eq!(out.code, Some(2), "{what}: exit 2 expected\n{out:#?}");
    assert!(out.stdout.trim().is_empty(), "{what}: no plan\n{out:#?}");
    assert!(
        out.stderr.contains(place),
        "{what}: stderr should name `{place}`:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
}

/// `FULL` with `old` (which must be there once) replaced by `new`.
fn full_with(old: &str, new: &str) -> String {
    assert_eq!(FULL.matches(old).count(), 1, "{old}");
    FULL.replacen(old, new, 1)
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_line_break_in_build_user_cannot_add_instructions() {
    let dir = tempfile::tempdir().unwrap();
    let text = full_with(
        "user: \"33\"",
        "user: \"65534\\nUSER 0\\nRUN [\\\"/bin/sh\\\", \\\"-c\\\", \\\"id\\\"]\"",
    );
    std::fs::write(dir.path().join("p.yml"), &text).unwrap();
    let line = line_of(&text, "USER 0");
    for args in [
        &["validate", "p.yml"][..],
        &["plan", "p.yml", "--offline"],
        &["plan", "p.yml", "--offline", "--json"],
    ] {
        let out = run(dir.path(), args);
        assert_refused(&out, &format!("p.yml:{line}:"), &format!("{args:?}"));
        assert!(!out.stderr.contains("\nUSER 0"), "{}", out.stderr);
    }
}

#[test]
fn build_user_is_a_name_or_a_uid_with_an_optional_group() {
    for good in [
        "33",
        "33:33",
        "www-data",
        "www-data:www-data",
        "nobody:65534",
        "_app",
    ] {
        let d = parse(&full_with("user: \"33\"", &format!("user: \"{good}\"")));
        assert!(errors(&d).is_empty(), "`{good}`: {:?}", errors(&d));
    }
    for bad in [
        "",
        "0 0",
        "a b",
        "$(id)",
        "${UID}",
        "-x",
        ":",
        "33:",
        ":33",
        "a:b:c",
        "it's",
        "\\\\",
        "33\\tUSER 0",
    ] {
        let text = full_with("user: \"33\"", &format!("user: \"{bad}\""));
        let d = parse(&text);
        // The build's `user`: three lines under its `base`.
        let line = line_of(&text, "base: \"gov/php:8.2\"") + 3;
        assert!(text.lines().nth(line - 1).unwrap().contains("user:"));
        assert!(
            d.iter()
                .any(|d| d.is_error() && d.loc.is_some_and(|l| l.line as usize == line)),
            "`{bad}` should be refused on line {line}: {:?}",
            errors(&d)
        );
    }
}

// ------------------------------------------ 5. a PostgreSQL database name is only a name

#[test]
fn a_postgres_database_that_is_a_connection_string_is_refused_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "dbname=postgres host=10.99.99.99 sslmode=disable",
        "postgresql://10.99.99.99/postgres",
        "postgres://h/db",
    ] {
        let text = full_with("database: \"app\"", &format!("database: \"{bad}\""));
        std::fs::write(dir.path().join("p.yml"), &text).unwrap();
        let line = line_of(&text, "database: \"");
        let out = run(dir.path(), &["validate", "p.yml"]);
        assert_refused(&out, &format!("p.yml:{line}:"), bad);
    }
    // MariaDB reads `--database=` as a name: `=` is allowed there.
    let text = full_with("engine: postgres", "engine: mariadb")
        .replace("database: \"app\"", "database: \"a=b\"")
        .replace("gov/postgres:15", "gov/mariadb:10.11");
    let d = parse(&text);
    assert!(errors(&d).is_empty(), "{:?}", errors(&d));
}

// -------------------------------------------- 8. a FIFO is not a playbook, nor a secret file

#[test]
fn a_fifo_is_refused_at_once_by_every_command_that_reads_a_playbook() {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mkfifo")
        .arg(dir.path().join("fifo.yml"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    for args in [
        &["validate", "fifo.yml"][..],
        &["plan", "fifo.yml", "--offline"],
        &["run", "fifo.yml"],
        &["run", "--plan", "fifo.yml"],
    ] {
        let out = run_within(dir.path(), args, &[], Duration::from_secs(20));
        assert_refused(&out, "fifo.yml", &format!("{args:?}"));
        assert!(
            out.stderr.contains("FIFO") && out.stderr.contains("not a regular file"),
            "{args:?}: says what it is:\n{}",
            out.stderr
        );
    }
    // A character device, too.
    let out = run_within(
        dir.path(),
        &["validate", "/dev/zero"],
        &[],
        Duration::from_secs(20),
    );
    assert_refused(&out, "/dev/zero", "validate /dev/zero");
    assert!(out.stderr.contains("character device"), "{}", out.stderr);
}

#[test]
fn a_secret_file_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mkfifo")
        .arg(dir.path().join("pw"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/rules/base.yml"
    ))
    .unwrap()
    .replace(
        "db_password: { env: BOYONG_TEST_DB_PASSWORD }",
        "db_password: { file: pw }",
    );
    std::fs::write(dir.path().join("p.yml"), text).unwrap();
    let out = run_within(
        dir.path(),
        &["plan", "p.yml", "--offline"],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(
        out.stderr.contains("FIFO") && out.stderr.contains("not a regular file"),
        "{}",
        out.stderr
    );
}

// ----------------------------------------- 10. a large playbook is not blamed on aliases

#[test]
fn a_large_playbook_without_aliases_names_the_limit_it_hit() {
    let dir = tempfile::tempdir().unwrap();
    // 120,000 short list items: under 1 MiB, over the 100,000 values a playbook may hold.
    let mut text = String::from("version: 1\napp: demo\nitems:\n");
    for _ in 0..120_000 {
        text.push_str("- a\n");
    }
    assert!(text.len() < 1024 * 1024);
    std::fs::write(dir.path().join("big.yml"), &text).unwrap();
    let out = run(dir.path(), &["validate", "big.yml"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(
        !out.stderr.contains("alias"),
        "no alias in this file:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("100000") || out.stderr.contains("100,000"),
        "names the limit:\n{}",
        out.stderr
    );
}

// ------------------------------------------------------- 3. a secret that spans lines

/// A secret of several lines, as a PEM key or a certificate chain would be.
const MULTI: &str = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nxq9+Kp0cVb7TnLz4\n-----END TEST KEY-----";

#[test]
fn a_secret_of_several_lines_is_redacted_line_by_line_in_exec_output_and_the_log() {
    if !support::sshd::available() {
        return;
    }
    let sshd = support::sshd::Sshd::start("");
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("p.yml");
    std::fs::write(
        &pb,
        format!(
            "version: 1\napp: hostile\n{}vars:\n  key: {{ env: BOYONG_TEST_MULTI }}\nsteps:\n  - id: show\n    exec:\n      run: 'printf \"%s\\n\" \"$KEY\"; printf \"%s\\n\" \"$KEY\" >&2; exit 3'\n      env: {{ KEY: \"{{{{ vars.key }}}}\" }}\n",
            sshd.vendor_yaml()
        ),
    )
    .unwrap();
    let out = run_within(
        dir.path(),
        &["run", pb.to_str().unwrap()],
        &[("BOYONG_TEST_MULTI", MULTI)],
        Duration::from_secs(120),
    );
    assert_eq!(out.code, Some(1), "the command exits 3: {out:#?}");
    let mut logs = String::new();
    for run in std::fs::read_dir(dir.path().join("state/apps/hostile/runs")).unwrap() {
        let run = run.unwrap().path();
        for f in ["log.jsonl", "journal.jsonl"] {
            logs.push_str(&std::fs::read_to_string(run.join(f)).unwrap_or_default());
        }
    }
    assert!(
        logs.contains("***"),
        "the output is there, redacted: {logs}"
    );
    for (what, text) in [
        ("stdout", out.stdout.as_str()),
        ("stderr", out.stderr.as_str()),
        ("log.jsonl and journal.jsonl", logs.as_str()),
    ] {
        for line in MULTI.lines() {
            assert!(
                !text.contains(line),
                "{what} shows the secret's line `{line}`:\n{text}"
            );
        }
    }
}
