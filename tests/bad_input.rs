//! The real `boyong` binary on bad input: every class of broken file must end with exit
//! status 2, a message naming `FILE:LINE:COL` where the input has a place, no panic, and
//! no plan on stdout. Also: several files at once, secrets that are unset or set (and
//! never printed), and the shipped example playbooks.

// Tests state their expectations with unwrap/expect/panic: a failure there IS the report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of the binary did.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Secret env vars the tests control; removed unless a test sets them.
const SECRET_VARS: [&str; 3] = [
    "BOYONG_TEST_DB_PASSWORD",
    "PERIZINAN_DB_PASSWORD",
    "SIPKD_DB_PASSWORD",
];

/// Runs `boyong ARGS` in `dir` with `env` set (and every other [`SECRET_VARS`] removed),
/// killing it after 60 s: a hang is a failure, not a stuck test suite.
fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boyong"));
    cmd.args(args)
        .current_dir(dir)
        .env("BOYONG_JOURNAL_KEY_FILE", dir.join("journal.key"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in SECRET_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = support::output_limited(&mut cmd, Duration::from_secs(60));
    Out {
        code: o.status.code(),
        stdout: support::text(&o.stdout),
        stderr: support::text(&o.stderr),
    }
}

fn run(dir: &Path, args: &[&str]) -> Out {
    run_env(dir, args, &[])
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Exit 2, no panic, no plan, and (when given) `place` (`FILE:LINE:COL`) in stderr.
fn assert_refused(out: &Out, place: Option<&str>, what: &str) {
    assert_eq!(
        out.code,
        Some(2),
        "{what}: exit status 2 expected\n{out:#?}"
    );
    assert!(
        !out.stderr.contains("panicked"),
        "{what}: panic\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("RUST_BACKTRACE"),
        "{what}: panic\n{}",
        out.stderr
    );
    assert!(
        out.stdout.trim().is_empty(),
        "{what}: stdout must be empty\n{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("Plan for") && !out.stdout.contains("\"steps\""),
        "{what}: no plan\n{}",
        out.stdout
    );
    if let Some(p) = place {
        assert!(
            out.stderr.contains(p),
            "{what}: stderr should name `{p}`:\n{}",
            out.stderr
        );
    }
}

/// Writes `bytes` as `name` in a fresh folder and checks that both `validate` and
/// `plan --offline` refuse it; returns the `validate` run.
fn check_bad(name: &str, bytes: impl AsRef<[u8]>, place: Option<&str>) -> Out {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), name, bytes);
    let v = run(dir.path(), &["validate", name]);
    assert_refused(&v, place, &format!("validate {name}"));
    let p = run(dir.path(), &["plan", name, "--offline"]);
    assert_refused(&p, place, &format!("plan --offline {name}"));
    let pj = run(dir.path(), &["plan", name, "--offline", "--json"]);
    assert_refused(&pj, place, &format!("plan --offline --json {name}"));
    v
}

/// A valid playbook (line numbers as in tests/rules.rs).
const GOOD: &str = include_str!("../fixtures/rules/base.yml");

fn good_with(old: &str, new: &str) -> String {
    assert_eq!(GOOD.matches(old).count(), 1, "{old}");
    GOOD.replacen(old, new, 1)
}

// ---------------------------------------------------------------- YAML that does not parse

#[test]
fn malformed_yaml_unclosed_flow_at_end_of_file() {
    let out = check_bad("p.yml", "version: 1\napp: [demo\n", Some("p.yml:2:6"));
    assert!(out.stderr.contains('['), "{}", out.stderr);
}

#[test]
fn malformed_yaml_unclosed_flow_inside_a_playbook() {
    // A forgotten `]` on line 15 (`[` at column 16): the message must lead there.
    let y = good_with(
        "      path: /srv/app\n",
        "      path: /srv/app\n      exclude: [\".git/\", \"logs/\"\n",
    );
    let out = check_bad("p.yml", y, Some("p.yml:15:16"));
    assert!(
        out.stderr.contains("unclosed") || out.stderr.contains("`]`"),
        "{}",
        out.stderr
    );
}

#[test]
fn tab_indentation() {
    // The tab is the first character of line 4.
    check_bad(
        "p.yml",
        "version: 1\napp: demo\nvendor:\n\thost: x\n",
        Some("p.yml:4:1"),
    );
}

#[test]
fn alias_bomb_billion_laughs() {
    // 9 levels of 9 aliases each: 9^9 values once expanded.
    let mut y = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(", ");
        writeln!(y, "{}: &{} [{refs}]", w[1], w[1]).unwrap();
    }
    y.push_str("z: *i\n");
    let start = Instant::now();
    let out = check_bad("bomb.yml", &y, None);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "refused quickly, not after expanding"
    );
    // The place is an alias of the file (where the limit was reached).
    let (line, col) = place_of(&out.stderr, "bomb.yml").expect("a line:col");
    let text = y
        .lines()
        .nth(line - 1)
        .unwrap_or_else(|| panic!("line {line} is not in the file"));
    assert_eq!(
        text.chars().nth(col - 1),
        Some('*'),
        "bomb.yml:{line}:{col} should be an alias: {text}"
    );
    assert!(
        out.stderr.contains("alias"),
        "the message should say the aliases expand too much:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("Nodes {"),
        "no Rust debug output in messages:\n{}",
        out.stderr
    );
}

/// The first `NAME:LINE:COL` in `text`.
fn place_of(text: &str, name: &str) -> Option<(usize, usize)> {
    let at = text.find(&format!("{name}:"))? + name.len() + 1;
    let mut it = text[at..].splitn(3, ':');
    let line = it.next()?.parse().ok()?;
    let col: String = it
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((line, col.parse().ok()?))
}

#[test]
fn nesting_100000_deep_flow() {
    // More than 32 levels is refused: the 33rd `[` is column 33.
    let out = check_bad("deep.yml", "[".repeat(100_000), Some("deep.yml:1:33"));
    assert!(out.stderr.contains("nested too deeply"), "{}", out.stderr);
}

#[test]
fn nesting_100000_deep_block() {
    // `- - - ... x`: 100,000 nested block sequences on one line; the 33rd `-` is column 65.
    let out = check_bad(
        "deep.yml",
        format!("{}x\n", "- ".repeat(100_000)),
        Some("deep.yml:1:65"),
    );
    assert!(out.stderr.contains("nested too deeply"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("Depth {"),
        "no Rust debug output in messages:\n{}",
        out.stderr
    );
    // The same by indentation: the 33rd level is line 33, column 33.
    let mut indented = String::new();
    for i in 0..1000 {
        writeln!(indented, "{}- ", " ".repeat(i)).unwrap();
    }
    let out = check_bad("deep2.yml", indented, Some("deep2.yml:33:33"));
    assert!(out.stderr.contains("nested too deeply"), "{}", out.stderr);
}

#[test]
fn scalar_of_30_megabytes_is_refused_by_the_size_cap() {
    let mut y = b"version: 1\napp: ".to_vec();
    y.resize(30 * 1024 * 1024, b'a');
    let start = Instant::now();
    let out = check_bad("big.yml", y, Some("big.yml"));
    assert!(out.stderr.contains("1 MiB"), "{}", out.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "refused before parsing"
    );
}

#[test]
fn binary_garbage_is_refused_as_not_utf8() {
    // A valid start, then the first invalid byte at line 3, column 9, then noise.
    let mut y = b"version: 1\napp: demo\nvendor: \xff".to_vec();
    let mut x: u32 = 0x2545_f491;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        y.push(x.to_le_bytes()[0]);
    }
    let out = check_bad("garbage.yml", &y, Some("garbage.yml:3:9"));
    assert!(out.stderr.contains("UTF-8"), "{}", out.stderr);
}

#[test]
fn pure_random_bytes_are_refused() {
    let mut y = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..8192 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        y.extend_from_slice(&x.to_le_bytes());
    }
    assert!(std::str::from_utf8(&y).is_err());
    let out = check_bad("random.bin", &y, Some("random.bin:"));
    assert!(out.stderr.contains("UTF-8"), "{}", out.stderr);
}

#[test]
fn nul_byte_inside_valid_yaml() {
    // The NUL is on line 2, column 8 (`app: de\0mo`).
    let y = GOOD.replacen("app: demo", "app: de\0mo", 1);
    let out = check_bad("p.yml", y, Some("p.yml:2:8"));
    assert!(
        !out.stderr.contains('\0'),
        "a raw NUL is not printed to the terminal"
    );
}

#[test]
fn empty_file() {
    let out = check_bad("p.yml", "", Some("p.yml:1:1"));
    assert!(out.stderr.contains("empty"), "{}", out.stderr);
}

#[test]
fn file_with_only_comments() {
    let out = check_bad(
        "p.yml",
        "# a playbook\n# to be written\n",
        Some("p.yml:1:1"),
    );
    assert!(out.stderr.contains("empty"), "{}", out.stderr);
}

#[test]
fn document_that_is_a_list() {
    let out = check_bad("p.yml", "- version: 1\n- app: demo\n", Some("p.yml:1:1"));
    assert!(
        out.stderr.contains("mapping") && out.stderr.contains("list"),
        "{}",
        out.stderr
    );
}

#[test]
fn document_that_is_a_scalar() {
    let out = check_bad("p.yml", "just some text\n", Some("p.yml:1:1"));
    assert!(out.stderr.contains("mapping"), "{}", out.stderr);
}

#[test]
fn two_documents() {
    // The second document starts at line 28.
    let y = format!("{GOOD}---\n{GOOD}");
    let out = check_bad("p.yml", y, Some("p.yml:28:1"));
    assert!(out.stderr.contains("document"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("too large") && !out.stderr.contains("Documents {"),
        "a small file with two documents is not \"too large or too complex\":\n{}",
        out.stderr
    );
}

#[test]
fn a_directory_is_not_a_playbook() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("apps.yml")).unwrap();
    for args in [
        &["validate", "apps.yml"][..],
        &["plan", "apps.yml", "--offline"],
    ] {
        let out = run(dir.path(), args);
        assert_refused(&out, Some("apps.yml"), "directory");
        assert!(out.stderr.contains("directory"), "{}", out.stderr);
    }
}

#[test]
fn a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["validate", "nope.yml"][..],
        &["plan", "nope.yml", "--offline"],
    ] {
        let out = run(dir.path(), args);
        assert_refused(&out, Some("nope.yml"), "missing");
        assert!(out.stderr.contains("no playbook at"), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------- YAML that breaks the format

#[test]
fn unknown_field() {
    let out = check_bad(
        "p.yml",
        good_with("  host: 10.0.0.5", "  hots: 10.0.0.5"),
        Some("p.yml:4:3"),
    );
    assert!(
        out.stderr.contains("unknown field `hots`") && out.stderr.contains("did you mean `host`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn wrong_type() {
    let y = good_with("  host: 10.0.0.5\n", "  host: 10.0.0.5\n  port: abc\n");
    let out = check_bad("p.yml", y, Some("p.yml:5:9"));
    assert!(
        out.stderr
            .contains("`vendor.port` should be a whole number"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_required_field() {
    let out = check_bad(
        "p.yml",
        good_with("      path: /srv/app", "      exclude: []"),
        Some("p.yml:14:7"),
    );
    assert!(
        out.stderr.contains("missing field `path`"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_step_kind() {
    let out = check_bad(
        "p.yml",
        good_with("    fetch:", "    fetchh:"),
        Some("p.yml:13:5"),
    );
    assert!(
        out.stderr.contains("did you mean `fetch`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn two_kinds_in_one_step() {
    let y = good_with(
        "      path: /srv/app\n",
        "      path: /srv/app\n    exec:\n      run: ls\n",
    );
    let out = check_bad("p.yml", y, Some("p.yml:15:5"));
    assert!(
        out.stderr.contains("both `fetch` and `exec`"),
        "{}",
        out.stderr
    );
}

#[test]
fn duplicate_step_id() {
    let y = format!("{GOOD}  - id: code\n    exec:\n      run: ls\n");
    let out = check_bad("p.yml", y, Some("p.yml:28:9"));
    assert!(
        out.stderr.contains("duplicate step id `code`"),
        "{}",
        out.stderr
    );
}

#[test]
fn dangling_step_id() {
    let out = check_bad(
        "p.yml",
        good_with("      image: image", "      image: imag"),
        Some("p.yml:22:14"),
    );
    assert!(
        out.stderr.contains("`imag`") && out.stderr.contains("did you mean `image`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn dangling_step_id_in_build_copy() {
    // The wrong id is the key `cod` (column 15), not the path after it.
    let y = good_with(
        "      copy: { code: /var/www }",
        "      copy: { cod: /var/www }",
    );
    let out = check_bad("p.yml", y, Some("p.yml:18:15"));
    assert!(out.stderr.contains("no step `cod`"), "{}", out.stderr);
}

#[test]
fn undefined_var() {
    let out = check_bad(
        "p.yml",
        good_with("{{ vars.release }}", "{{ vars.relase }}"),
        Some("p.yml:19:18"),
    );
    assert!(
        out.stderr.contains("`vars.relase` is not defined"),
        "{}",
        out.stderr
    );
}

#[test]
fn version_2() {
    let out = check_bad(
        "p.yml",
        good_with("version: 1", "version: 2"),
        Some("p.yml:1:10"),
    );
    assert!(out.stderr.contains("version"), "{}", out.stderr);
}

#[test]
fn inline_secret() {
    let out = check_bad(
        "p.yml",
        good_with("  identity: keys/id", "  password: hunter2"),
        Some("p.yml:6:13"),
    );
    assert!(out.stderr.contains("must be a secret"), "{}", out.stderr);
}

// ---------------------------------------------------------------- several files, secrets

#[test]
fn validate_a_good_and_a_bad_file_reports_both_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yml", GOOD);
    write(dir.path(), "b.yml", good_with("version: 1", "version: 2"));
    let out = run(dir.path(), &["validate", "a.yml", "b.yml"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("a.yml (app `demo`, 3 steps): ok"),
        "a.yml is reported as ok:\n{all}"
    );
    assert!(
        out.stderr.contains("b.yml:1:10"),
        "b.yml's error is reported:\n{}",
        out.stderr
    );
    // And in the other order: a bad file does not hide the good one.
    let out = run(dir.path(), &["validate", "b.yml", "a.yml"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("a.yml (app `demo`, 3 steps): ok") && all.contains("b.yml:1:10"),
        "{all}"
    );
}

#[test]
fn plan_refuses_an_unset_secret_naming_the_var_and_place() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.yml", GOOD);
    for args in [
        &["plan", "p.yml", "--offline"][..],
        &["plan", "p.yml", "--offline", "--json"],
    ] {
        let out = run(dir.path(), args);
        assert_refused(&out, Some("p.yml:10:16"), "unset secret");
        assert!(
            out.stderr.contains("BOYONG_TEST_DB_PASSWORD"),
            "{}",
            out.stderr
        );
    }
    // `validate` only warns.
    let out = run(dir.path(), &["validate", "p.yml"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(
        out.stderr
            .contains("warning: secret `db_password` is not set")
            && out.stderr.contains("p.yml:10:16"),
        "{}",
        out.stderr
    );
}

#[test]
fn plan_refuses_an_empty_secret() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.yml", GOOD);
    let out = run_env(
        dir.path(),
        &["plan", "p.yml", "--offline"],
        &[("BOYONG_TEST_DB_PASSWORD", "")],
    );
    assert_refused(&out, Some("p.yml:10:16"), "empty secret");
    assert!(
        out.stderr.contains("BOYONG_TEST_DB_PASSWORD"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_set_secret_never_appears_in_any_output() {
    const VALUE: &str = "Zq9-s3cr3t-VALUE-7781";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    let api = write(dir.path(), "secrets/api_key", "Fk2-file-SECRET-0042\n");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&api, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // The secret in every place a secret may go.
    let y = GOOD
        .replacen("  identity: keys/id\n", "  password: \"{{ vars.db_password }}\"\n", 1)
        .replacen("  db_password: { env: BOYONG_TEST_DB_PASSWORD }\n", "  db_password: { env: BOYONG_TEST_DB_PASSWORD }\n  api_key: { file: secrets/api_key }\n", 1)
        .replacen("DB_PASSWORD: \"{{ vars.db_password }}\" }", "DB_PASSWORD: \"{{ vars.db_password }}\", API_KEY: \"{{ vars.api_key }}\" }", 1)
        + "  - id: db\n    dump:\n      engine: mariadb\n      database: d\n      user: u\n      password: \"{{ vars.db_password }}\"\n"
        + "  - id: restore\n    restore:\n      from: db\n      image: gov/mariadb:10.11\n      name: demo-db\n      volume: demo-data\n      password: \"{{ vars.db_password }}\"\n"
        + "  - id: hook\n    exec:\n      run: ./notify\n      env: { TOKEN: \"{{ vars.api_key }}\" }\n";
    write(dir.path(), "p.yml", &y);
    let env = [("BOYONG_TEST_DB_PASSWORD", VALUE)];
    for args in [
        &["validate", "p.yml"][..],
        &["plan", "p.yml", "--offline"],
        &["plan", "p.yml", "--offline", "--json"],
    ] {
        let out = run_env(dir.path(), args, &env);
        assert_eq!(out.code, Some(0), "{args:?}: {out:#?}");
        for v in [VALUE, "Fk2-file-SECRET-0042"] {
            assert!(
                !out.stdout.contains(v) && !out.stderr.contains(v),
                "{args:?} printed a secret:\n{out:#?}"
            );
        }
        if args[0] == "plan" {
            assert!(
                out.stdout.contains("***"),
                "the secret is shown redacted:\n{}",
                out.stdout
            );
        }
    }
    let json = run_env(dir.path(), &["plan", "p.yml", "--offline", "--json"], &env);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("--json prints JSON");
    assert_eq!(v["app"], "demo");
}

// ---------------------------------------------------------------- the shipped examples

#[test]
fn every_example_playbook_validates_and_plans() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("playbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let env = [
        ("PERIZINAN_DB_PASSWORD", "pw-perizinan-x1"),
        ("SIPKD_DB_PASSWORD", "pw-sipkd-x2"),
        ("IZIN_DB_PASSWORD", "pw-izin-x3"),
        ("WP_DB_PASSWORD", "pw-wp-x4"),
        ("WP_VENDOR_DB_PASSWORD", "pw-wp-vendor-x5"),
        ("PFA_DB_PASSWORD", "pw-pfa-x6"),
        ("PFA_VENDOR_DB_PASSWORD", "pw-pfa-vendor-x7"),
    ];
    for f in &files {
        let f = f.to_str().unwrap();
        for args in [
            &["validate", f][..],
            &["plan", f, "--offline"],
            &["plan", f, "--offline", "--json"],
        ] {
            let out = run_env(root, args, &env);
            assert_eq!(out.code, Some(0), "{args:?}: {out:#?}");
            assert!(!out.stderr.contains("error:"), "{args:?}: {}", out.stderr);
            for (_, v) in env {
                assert!(
                    !out.stdout.contains(v) && !out.stderr.contains(v),
                    "{args:?} printed a secret"
                );
            }
        }
    }
}
