//! One test per rule of the playbook format (version 1, see PLAYBOOK.md), through the
//! library: `boyong::playbook::parse` on small YAML texts derived from one valid base
//! playbook. Every error is checked at its exact line and column, not just "has errors".

// Tests state their expectations with unwrap/expect/panic: a failure there IS the report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use boyong::diag::{Diagnostic, Severity};
use boyong::playbook::units::{Size, Span};
use boyong::playbook::{
    self, DockerEndpoint, HealthCheck, ImageSource, Loaded, Playbook, RestartPolicy, SecretSource,
    Security, StepKind, VendorAuth,
};

/// A valid playbook. Line numbers, used by every test below:
///
/// ```text
///  1 version: 1
///  2 app: demo
///  3 vendor:
///  4   host: 10.0.0.5
///  5   user: deploy
///  6   identity: keys/id
///  7   known_hosts: keys/known_hosts
///  8 vars:
///  9   release: "1.0"
/// 10   db_password: { env: BOYONG_TEST_DB_PASSWORD }
/// 11 steps:
/// 12   - id: code
/// 13     fetch:
/// 14       path: /srv/app
/// 15   - id: image
/// 16     build:
/// 17       base: gov/php:8.2
/// 18       copy: { code: /var/www }
/// 19       tag: "demo:{{ vars.release }}"
/// 20   - id: app
/// 21     deploy:
/// 22       image: image
/// 23       name: demo
/// 24       ports: ["127.0.0.1:8080:80"]
/// 25       env: { DB_PASSWORD: "{{ vars.db_password }}" }
/// 26       health:
/// 27         http: http://127.0.0.1:8080/
/// ```
/// Steps appended with [`append`] start on line 28.
const BASE: &str = include_str!("../fixtures/rules/base.yml");

/// The base playbook.
fn base() -> String {
    BASE.to_string()
}

/// The base playbook with `old` (which must occur exactly once) replaced by `new`.
fn edit(old: &str, new: &str) -> String {
    edit_in(&base(), old, new)
}

/// `yaml` with `old` (which must occur exactly once) replaced by `new`.
fn edit_in(yaml: &str, old: &str, new: &str) -> String {
    assert_eq!(
        yaml.matches(old).count(),
        1,
        "`{old}` must occur once in:\n{yaml}"
    );
    yaml.replacen(old, new, 1)
}

/// The base playbook with more steps after the last one (they start on line 28).
fn append(steps: &str) -> String {
    format!("{BASE}{steps}")
}

fn load(yaml: &str) -> Loaded {
    playbook::parse(Path::new("p.yml"), yaml.as_bytes())
}

fn show(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| {
            let loc = d
                .loc
                .map_or("-".to_string(), |l| format!("{}:{}", l.line, l.col));
            format!(
                "  {:?} at {loc}: {} | {:?} | {:?}",
                d.severity, d.message, d.label, d.help
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every error of the file.
fn errors(yaml: &str) -> Vec<Diagnostic> {
    let l = load(yaml);
    let errs: Vec<Diagnostic> = l
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    assert_eq!(l.has_errors(), !errs.is_empty());
    if !errs.is_empty() {
        assert!(
            l.playbook.is_none(),
            "a playbook with errors must not be returned"
        );
    }
    errs
}

/// Every warning of the file.
fn warnings(yaml: &str) -> Vec<Diagnostic> {
    load(yaml)
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect()
}

/// Asserts the file has exactly one error, at `line:col`, whose message contains
/// `substring`; returns it.
fn assert_error_at(yaml: &str, line: u32, col: u32, substring: &str) -> Diagnostic {
    let errs = errors(yaml);
    assert_eq!(
        errs.len(),
        1,
        "expected exactly one error, got:\n{}\nin:\n{yaml}",
        show(&errs)
    );
    let d = errs.into_iter().next().unwrap();
    let loc = d
        .loc
        .unwrap_or_else(|| panic!("error without a location: {}", show1(&d)));
    assert_eq!(
        (loc.line, loc.col),
        (line, col),
        "error at the wrong place:\n{}\nin:\n{yaml}",
        show1(&d)
    );
    assert!(
        d.message.contains(substring),
        "message should contain `{substring}`:\n{}",
        show1(&d)
    );
    d
}

fn show1(d: &Diagnostic) -> String {
    show(std::slice::from_ref(d))
}

fn assert_help(d: &Diagnostic, help: &str) {
    assert!(
        d.help.iter().any(|h| h.contains(help)),
        "help should contain `{help}`:\n{}",
        show1(d)
    );
}

/// Asserts the file has no errors (warnings allowed) and returns the playbook.
fn assert_ok(yaml: &str) -> Playbook {
    assert_ok_at(Path::new("p.yml"), yaml)
}

fn assert_ok_at(path: &Path, yaml: &str) -> Playbook {
    let l = playbook::parse(path, yaml.as_bytes());
    let errs: Vec<Diagnostic> = l
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    assert!(
        errs.is_empty(),
        "expected no errors, got:\n{}\nin:\n{yaml}",
        show(&errs)
    );
    l.playbook.expect("a playbook without errors is returned")
}

fn step<'a>(pb: &'a Playbook, id: &str) -> &'a StepKind {
    &pb.steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
        .kind
}

fn deploy<'a>(pb: &'a Playbook, id: &str) -> &'a boyong::playbook::Deploy {
    match step(pb, id) {
        StepKind::Deploy(d) => d,
        other => panic!("step {id} is {}", other.name()),
    }
}

// ---------------------------------------------------------------- the base itself

#[test]
fn base_playbook_is_valid_with_no_diagnostics() {
    let l = load(BASE);
    assert!(l.diagnostics.is_empty(), "{}", show(&l.diagnostics));
    let pb = l.playbook.expect("valid");
    assert_eq!(pb.app, "demo");
    assert_eq!(
        pb.steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["code", "image", "app"]
    );
}

// ---------------------------------------------------------------- version and app

#[test]
fn version_other_than_1_is_refused() {
    let d = assert_error_at(&edit("version: 1", "version: 2"), 1, 10, "version 2");
    assert!(
        d.label.as_deref().is_some_and(|l| l.contains("version: 1")),
        "{}",
        show1(&d)
    );
    assert_error_at(&edit("version: 1", "version: 0"), 1, 10, "version 0");
}

#[test]
fn app_name_with_uppercase_is_refused() {
    assert_error_at(
        &edit("app: demo", "app: Demo"),
        2,
        6,
        "`Demo` is not a valid app name",
    );
}

#[test]
fn app_name_of_64_characters_is_refused_and_63_accepted() {
    let long = "a".repeat(64);
    assert_error_at(
        &edit("app: demo", &format!("app: {long}")),
        2,
        6,
        "not a valid app name",
    );
    let ok = "a".repeat(63);
    assert_eq!(assert_ok(&edit("app: demo", &format!("app: {ok}"))).app, ok);
}

#[test]
fn app_name_with_leading_dash_is_refused() {
    assert_error_at(
        &edit("app: demo", "app: -demo"),
        2,
        6,
        "`-demo` is not a valid app name",
    );
}

// ---------------------------------------------------------------- unknown fields

#[test]
fn unknown_top_level_field_suggests_the_right_one() {
    let d = assert_error_at(
        &edit("version: 1\n", "version: 1\nstesp: x\n"),
        2,
        1,
        "unknown field `stesp`",
    );
    assert_help(&d, "did you mean `steps`?");
}

#[test]
fn unknown_top_level_field_without_close_match_has_no_suggestion() {
    let d = assert_error_at(
        &edit("version: 1\n", "version: 1\nzzzzzz: x\n"),
        2,
        1,
        "unknown field `zzzzzz`",
    );
    assert!(
        !d.help.iter().any(|h| h.contains("did you mean")),
        "{}",
        show1(&d)
    );
}

#[test]
fn unknown_vendor_field_suggests_the_right_one() {
    // One error only: the typo, not also "missing field `host`".
    let d = assert_error_at(
        &edit("  host: 10.0.0.5", "  hots: 10.0.0.5"),
        4,
        3,
        "unknown field `hots`",
    );
    assert_help(&d, "did you mean `host`?");
}

#[test]
fn unknown_field_in_a_step_kind_suggests_the_right_one() {
    let d = assert_error_at(
        &edit("      path: /srv/app", "      paht: /srv/app"),
        14,
        7,
        "unknown field `paht`",
    );
    assert_help(&d, "did you mean `path`?");
    let d = assert_error_at(
        &edit("      name: demo", "      name: demo\n      helth: {}"),
        24,
        7,
        "unknown field `helth`",
    );
    assert_help(&d, "did you mean `health`?");
}

#[test]
fn a_kind_field_explains_that_the_kind_is_the_key() {
    let y = edit("  - id: code\n", "  - id: code\n    kind: fetch\n");
    let d = assert_error_at(&y, 13, 5, "unknown field `kind`");
    assert_help(&d, "a step's kind is its key");
}

// ---------------------------------------------------------------- wrong types

#[test]
fn wrong_type_port_abc() {
    let d = assert_error_at(
        &edit("  host: 10.0.0.5\n", "  host: 10.0.0.5\n  port: abc\n"),
        5,
        9,
        "`vendor.port`",
    );
    assert!(
        d.message.contains("whole number") && d.message.contains("string"),
        "{}",
        show1(&d)
    );
}

#[test]
fn wrong_type_exclude_is_a_scalar_not_a_list() {
    let y = edit(
        "      path: /srv/app\n",
        "      path: /srv/app\n      exclude: x\n",
    );
    let d = assert_error_at(&y, 15, 16, "`steps.code.fetch.exclude` should be a list");
    assert!(d.message.contains("found a string"), "{}", show1(&d));
}

#[test]
fn wrong_type_steps_is_a_mapping() {
    let start = BASE.find("steps:\n").unwrap();
    let y = format!("{}steps: {{}}\n", &BASE[..start]);
    let d = assert_error_at(&y, 11, 8, "`steps` should be a list");
    assert!(d.message.contains("found a mapping"), "{}", show1(&d));
}

#[test]
fn wrong_type_retries_is_text() {
    let y = edit(
        "      path: /srv/app\n",
        "      path: /srv/app\n    retries: many\n",
    );
    assert_error_at(&y, 15, 14, "retries");
}

// ---------------------------------------------------------------- missing fields

#[test]
fn missing_vendor_host() {
    // Reported at the vendor mapping (its first key).
    let d = assert_error_at(
        &edit("  host: 10.0.0.5\n", ""),
        4,
        3,
        "missing field `host` in `vendor`",
    );
    assert!(
        d.label.as_deref().is_some_and(|l| l.contains("host")),
        "{}",
        show1(&d)
    );
}

#[test]
fn missing_vendor_user() {
    assert_error_at(
        &edit("  user: deploy\n", ""),
        4,
        3,
        "missing field `user` in `vendor`",
    );
}

#[test]
fn missing_steps() {
    let start = BASE.find("steps:\n").unwrap();
    assert_error_at(&BASE[..start], 1, 1, "missing field `steps`");
}

#[test]
fn missing_step_id() {
    assert_error_at(
        &edit("  - id: code\n    fetch:", "  - fetch:"),
        12,
        5,
        "missing field `id`",
    );
}

#[test]
fn missing_fetch_path() {
    assert_error_at(
        &edit("      path: /srv/app", "      exclude: []"),
        14,
        7,
        "missing field `path` in `steps.code.fetch`",
    );
}

#[test]
fn empty_step_list_is_refused() {
    let start = BASE.find("steps:\n").unwrap();
    let y = format!("{}steps: []\n", &BASE[..start]);
    // The vars are then unused (warnings), but the one error is the empty list.
    assert_error_at(&y, 11, 8, "no steps");
}

// ---------------------------------------------------------------- step kinds

#[test]
fn unknown_step_kind_suggests_the_right_one() {
    // One error: the typo, not also "says what to do with none of ...".
    let d = assert_error_at(
        &edit("    fetch:", "    fetchh:"),
        13,
        5,
        "unknown field `fetchh`",
    );
    assert_help(&d, "did you mean `fetch`?");
}

#[test]
fn two_kinds_in_one_step_are_refused_at_the_second() {
    let y = edit(
        "      path: /srv/app\n",
        "      path: /srv/app\n    exec:\n      run: ls\n",
    );
    let d = assert_error_at(&y, 15, 5, "has both `fetch` and `exec`");
    assert!(d.message.contains("steps.code"), "{}", show1(&d));
}

#[test]
fn a_step_with_no_kind_is_refused() {
    let y = edit("    fetch:\n      path: /srv/app\n", "    retries: 1\n");
    let d = assert_error_at(
        &y,
        12,
        5,
        "none of: fetch, dump, exec, build, restore, deploy",
    );
    assert!(d.message.contains("steps.code"), "{}", show1(&d));
}

// ---------------------------------------------------------------- step ids

#[test]
fn duplicate_step_id_is_refused_at_the_second() {
    let y = append("  - id: code\n    exec:\n      run: ls\n");
    let d = assert_error_at(&y, 28, 9, "duplicate step id `code`");
    assert!(
        d.label.as_deref().is_some_and(|l| l.contains("line 12")),
        "{}",
        show1(&d)
    );
}

#[test]
fn invalid_step_id_is_refused() {
    assert_error_at(
        &append("  - id: Bad.Id\n    exec:\n      run: ls\n"),
        28,
        9,
        "`Bad.Id` is not a valid step id",
    );
    assert_error_at(
        &append("  - id: -x\n    exec:\n      run: ls\n"),
        28,
        9,
        "`-x` is not a valid step id",
    );
}

// ---------------------------------------------------------------- references between steps

/// Line 18 is `      copy: { code: /var/www }`: the key (a step id) is at column 15.
fn with_copy(entry: &str) -> String {
    edit(
        "      copy: { code: /var/www }",
        &format!("      copy: {{ {entry} }}"),
    )
}

#[test]
fn build_copy_naming_a_non_fetch_step_is_refused() {
    // `image2` copies from `image`, an earlier BUILD step.
    let y =
        append("  - id: image2\n    build:\n      base: gov/php:8.2\n      copy: { image: /x }\n");
    let d = assert_error_at(&y, 31, 15, "step `image` is a `build` step");
    assert!(d.message.contains("fetch"), "{}", show1(&d));
}

#[test]
fn build_copy_naming_a_later_step_is_refused() {
    assert_error_at(
        &with_copy("app: /var/www"),
        18,
        15,
        "step `app` comes later",
    );
}

#[test]
fn build_copy_naming_itself_is_refused() {
    assert_error_at(
        &with_copy("image: /var/www"),
        18,
        15,
        "step `image` refers to itself",
    );
}

#[test]
fn build_copy_naming_an_unknown_step_suggests_one() {
    let d = assert_error_at(&with_copy("cod: /var/www"), 18, 15, "no step `cod`");
    assert_help(&d, "did you mean `code`?");
}

#[test]
fn restore_from_a_non_dump_step_is_refused() {
    let y = append(
        "  - id: db\n    restore:\n      from: code\n      image: gov/mariadb:10.11\n      name: db\n      volume: dbdata\n      password: { env: PW }\n",
    );
    let d = assert_error_at(&y, 30, 13, "step `code` is a `fetch` step");
    assert!(d.message.contains("dump"), "{}", show1(&d));
}

#[test]
fn restore_from_an_earlier_dump_is_accepted() {
    let y = append(
        "  - id: db\n    dump:\n      engine: postgres\n      database: d\n      user: u\n  - id: r\n    restore:\n      from: db\n      image: gov/postgres:15\n      name: db\n      volume: dbdata\n      password: { env: PW }\n",
    );
    let pb = assert_ok(&y);
    match step(&pb, "r") {
        StepKind::Restore(r) => assert_eq!(r.from, "db"),
        other => panic!("{}", other.name()),
    }
}

#[test]
fn deploy_image_naming_an_earlier_build_is_accepted() {
    let pb = assert_ok(BASE);
    assert_eq!(deploy(&pb, "app").image, ImageSource::Build("image".into()));
}

#[test]
fn deploy_image_naming_a_later_build_is_refused() {
    // A deploy inserted before the build step `image`: lines 15-19, its image on 17.
    let y = edit(
        "  - id: image\n",
        "  - id: early\n    deploy:\n      image: image\n      name: early\n      health: { tcp: \"127.0.0.1:81\" }\n  - id: image\n",
    );
    assert_error_at(&y, 17, 14, "step `image` comes later");
}

#[test]
fn deploy_image_naming_a_non_build_step_is_refused() {
    let d = assert_error_at(
        &edit("      image: image", "      image: code"),
        22,
        14,
        "step `code` is a `fetch` step",
    );
    assert!(d.message.contains("build"), "{}", show1(&d));
}

#[test]
fn deploy_image_as_a_plain_reference_is_accepted() {
    let pb = assert_ok(&edit("      image: image", "      image: nginx:1.25"));
    assert_eq!(
        deploy(&pb, "app").image,
        ImageSource::Reference("nginx:1.25".into())
    );
}

#[test]
fn deploy_image_untagged_and_not_a_step_is_refused() {
    let d = assert_error_at(
        &edit("      image: image", "      image: nginx"),
        22,
        14,
        "`nginx` is neither a build step nor an image reference with a tag",
    );
    assert!(
        d.label.as_deref().is_some_and(|l| l.contains("nginx:")),
        "{}",
        show1(&d)
    );
}

// ---------------------------------------------------------------- {{ vars.X }}

#[test]
fn undefined_var_suggests_the_right_one() {
    // `      tag: "demo:{{ vars.relase }}"`: the quote is column 12, `{{` column 18.
    let y = edit("{{ vars.release }}", "{{ vars.relase }}");
    let d = assert_error_at(&y, 19, 18, "`vars.relase` is not defined");
    assert_help(&d, "did you mean `release`?");
    assert_eq!(d.loc.unwrap().len, 17, "the underline covers the reference");
}

#[test]
fn malformed_env_reference_is_refused() {
    let y = edit("{{ vars.release }}", "{{ env.X }}");
    let d = assert_error_at(&y, 19, 18, "`{{ env.X }}` is not a reference");
    assert!(d.message.contains("vars.NAME"), "{}", show1(&d));
}

#[test]
fn unclosed_braces_are_refused() {
    let y = edit("{{ vars.release }}", "{{ vars.release");
    assert_error_at(&y, 19, 18, "`{{` is not closed");
}

#[test]
fn a_var_referring_to_another_var_is_refused() {
    let y = edit(
        "  release: \"1.0\"\n",
        "  release: \"1.0\"\n  other: \"{{ vars.release }}\"\n",
    );
    assert_error_at(&y, 10, 10, "var `other` refers to another var");
}

#[test]
fn plain_vars_are_substituted() {
    let pb = assert_ok(BASE);
    match step(&pb, "image") {
        StepKind::Build(b) => assert_eq!(b.tag.as_deref(), Some("demo:1.0")),
        other => panic!("{}", other.name()),
    }
}

// ---------------------------------------------------------------- secrets

#[test]
fn inline_vendor_password_is_refused() {
    let d = assert_error_at(
        &edit("  identity: keys/id", "  password: hunter2"),
        6,
        13,
        "`vendor.password` must be a secret",
    );
    assert!(
        !d.message.contains("hunter2"),
        "the refused value is not repeated: {}",
        d.message
    );
}

#[test]
fn vendor_password_from_env_is_accepted() {
    let pb = assert_ok(&edit(
        "  identity: keys/id",
        "  password: { env: VENDOR_PW }",
    ));
    let VendorAuth::Password(t) = &pb.vendor.auth else {
        panic!("{:?}", pb.vendor.auth)
    };
    assert_eq!(t.to_string(), "***");
    let def = pb.secrets.get("vendor.password").expect("declared secret");
    assert_eq!(def.source, SecretSource::Env("VENDOR_PW".into()));
}

#[test]
fn vendor_password_from_a_secret_var_is_accepted() {
    let pb = assert_ok(&edit(
        "  identity: keys/id",
        "  password: \"{{ vars.db_password }}\"",
    ));
    let VendorAuth::Password(t) = &pb.vendor.auth else {
        panic!("{:?}", pb.vendor.auth)
    };
    assert!(t.is_only_secret());
    assert_eq!(t.to_string(), "***");
}

#[test]
fn undefined_var_in_a_secret_field_is_one_error() {
    // One mistake (a typo in the var's name), one message: the field is not "inline".
    let y = edit(
        "  identity: keys/id",
        "  password: \"{{ vars.db_pasword }}\"",
    );
    let d = assert_error_at(&y, 6, 14, "`vars.db_pasword` is not defined");
    assert_help(&d, "did you mean `db_password`?");
}

#[test]
fn secret_in_exec_run_is_refused() {
    let y = append("  - id: x\n    exec:\n      run: \"echo {{ vars.db_password }}\"\n");
    // `      run: "echo {{`: the quote is column 12, `{{` column 18.
    let d = assert_error_at(
        &y,
        30,
        18,
        "secret `db_password` cannot be used in `steps.x.exec.run`",
    );
    assert!(
        d.label.as_deref().is_some_and(|l| l.contains("ps")),
        "{}",
        show1(&d)
    );
}

#[test]
fn secret_in_exec_env_is_accepted() {
    let pb = assert_ok(&append(
        "  - id: x\n    exec:\n      run: ./migrate\n      env: { PW: \"{{ vars.db_password }}\" }\n",
    ));
    match step(&pb, "x") {
        StepKind::Exec(e) => assert_eq!(e.env["PW"].to_string(), "***"),
        other => panic!("{}", other.name()),
    }
}

#[test]
fn secret_in_build_run_is_refused() {
    let y = edit(
        "      tag: \"demo:{{ vars.release }}\"\n",
        "      tag: \"demo:{{ vars.release }}\"\n      run: [\"echo {{ vars.db_password }}\"]\n",
    );
    // `      run: ["echo {{`: `[` column 12, quote 13, `{{` column 19.
    let d = assert_error_at(
        &y,
        20,
        19,
        "secret `db_password` cannot be used in `steps.image.build.run`",
    );
    assert!(
        d.label.as_deref().is_some_and(|l| l.contains("image")),
        "{}",
        show1(&d)
    );
}

#[test]
fn secret_in_build_env_is_refused() {
    let y = edit(
        "      tag: \"demo:{{ vars.release }}\"\n",
        "      tag: \"demo:{{ vars.release }}\"\n      env: { PW: \"{{ vars.db_password }}\" }\n",
    );
    // `      env: { PW: "{{`: the quote is column 18, `{{` column 19.
    assert_error_at(
        &y,
        20,
        19,
        "secret `db_password` cannot be used in `steps.image.build.env.PW`",
    );
}

#[test]
fn secret_in_deploy_env_is_accepted_and_displayed_redacted() {
    let pb = assert_ok(&edit(
        "\"{{ vars.db_password }}\" }",
        "\"pw={{ vars.db_password }};\" }",
    ));
    let env = &deploy(&pb, "app").env;
    assert_eq!(env["DB_PASSWORD"].to_string(), "pw=***;");
    assert_eq!(
        env["DB_PASSWORD"].secrets().collect::<Vec<_>>(),
        ["db_password"]
    );
    assert_eq!(
        format!("{:?}", pb.secrets.get("db_password").map(|d| &d.source)),
        "Some(Env(\"BOYONG_TEST_DB_PASSWORD\"))"
    );
}

#[test]
fn inline_dump_password_is_refused() {
    let y = append(
        "  - id: db\n    dump:\n      engine: mariadb\n      database: d\n      user: u\n      password: hunter2\n",
    );
    assert_error_at(&y, 33, 17, "`steps.db.dump.password` must be a secret");
}

#[test]
fn inline_restore_password_is_refused() {
    let y = append(
        "  - id: db\n    dump:\n      engine: mariadb\n      database: d\n      user: u\n  - id: r\n    restore:\n      from: db\n      image: gov/mariadb:10.11\n      name: db\n      volume: dbdata\n      password: hunter2\n",
    );
    assert_error_at(&y, 39, 17, "`steps.r.restore.password` must be a secret");
}

// ---------------------------------------------------------------- vendor login

#[test]
fn vendor_with_both_identity_and_password_is_refused() {
    let y = edit(
        "  identity: keys/id\n",
        "  identity: keys/id\n  password: { env: VENDOR_PW }\n",
    );
    assert_error_at(&y, 7, 13, "both `identity` and `password`");
}

#[test]
fn vendor_with_neither_identity_nor_password_is_refused() {
    assert_error_at(&edit("  identity: keys/id\n", ""), 4, 3, "no way to log in");
}

// ---------------------------------------------------------------- durations, sizes, ports

/// The base with `timeout: VALUE` on step `code` (line 15, value at column 14).
fn with_timeout(value: &str) -> String {
    edit(
        "      path: /srv/app\n",
        &format!("      path: /srv/app\n    timeout: {value}\n"),
    )
}

#[test]
fn duration_60s_is_accepted() {
    let pb = assert_ok(&with_timeout("60s"));
    assert_eq!(pb.steps[0].timeout, Some(Span::secs(60)));
}

#[test]
fn duration_without_unit_is_refused() {
    let d = assert_error_at(&with_timeout("60"), 15, 14, "not a duration");
    assert!(
        d.label.as_deref().is_some_and(|l| l.contains("no unit")),
        "{}",
        show1(&d)
    );
}

#[test]
fn duration_with_unknown_unit_is_refused() {
    let d = assert_error_at(&with_timeout("5x"), 15, 14, "not a duration: `5x`");
    assert!(
        d.label
            .as_deref()
            .is_some_and(|l| l.contains("unknown unit `x`")),
        "{}",
        show1(&d)
    );
}

#[test]
fn health_timeout_is_a_duration_too() {
    let y = edit(
        "        http: http://127.0.0.1:8080/\n",
        "        http: http://127.0.0.1:8080/\n        timeout: soon\n",
    );
    assert_error_at(&y, 28, 18, "not a duration");
}

/// The base with `security: { ... }` on the deploy (line 24; `security: { ` ends at column 19).
fn with_security(body: &str) -> String {
    edit(
        "      name: demo\n",
        &format!("      name: demo\n      security: {{ {body} }}\n"),
    )
}

#[test]
fn memory_512m_is_accepted() {
    let pb = assert_ok(&with_security("memory: 512m"));
    assert_eq!(deploy(&pb, "app").security.memory, Size(512 << 20));
}

#[test]
fn memory_lots_is_refused() {
    assert_error_at(
        &with_security("memory: lots"),
        24,
        27,
        "is not a size: `lots`",
    );
}

#[test]
fn memory_1m_is_refused_as_too_small() {
    assert_error_at(
        &with_security("memory: 1m"),
        24,
        27,
        "memory limit under 6m",
    );
}

/// The base with another port mapping (line 24; the quoted value starts at column 15).
fn with_port(p: &str) -> String {
    edit("[\"127.0.0.1:8080:80\"]", &format!("[\"{p}\"]"))
}

#[test]
fn port_mapping_with_address_is_accepted() {
    let pb = assert_ok(&with_port("127.0.0.1:8080:80"));
    assert_eq!(
        deploy(&pb, "app").ports[0].to_string(),
        "127.0.0.1:8080->80/tcp"
    );
}

#[test]
fn port_mapping_abc_is_refused() {
    assert_error_at(&with_port("abc"), 24, 15, "`abc` is not a port mapping");
}

#[test]
fn port_mapping_with_container_port_70000_is_refused() {
    let d = assert_error_at(
        &with_port("8080:70000"),
        24,
        15,
        "`8080:70000` is not a port mapping",
    );
    assert!(
        d.label.as_deref().is_some_and(|l| l.contains("70000")),
        "{}",
        show1(&d)
    );
}

#[test]
fn port_mapping_without_address_is_a_warning_not_an_error() {
    let y = with_port("8080:80");
    assert!(errors(&y).is_empty(), "{}", show(&errors(&y)));
    let w = warnings(&y);
    assert_eq!(w.len(), 1, "{}", show(&w));
    let loc = w[0].loc.expect("located");
    assert_eq!((loc.line, loc.col), (24, 15), "{}", show(&w));
    assert!(
        w[0].message.contains("every network interface"),
        "{}",
        show(&w)
    );
    assert_help(&w[0], "127.0.0.1:8080:80");
    assert!(load(&y).playbook.is_some());
}

#[test]
fn retries_above_10_are_refused() {
    let y = edit(
        "      path: /srv/app\n",
        "      path: /srv/app\n    retries: 11\n",
    );
    assert_error_at(&y, 15, 14, "at most 10 retries");
    let pb = assert_ok(&edit(
        "      path: /srv/app\n",
        "      path: /srv/app\n    retries: 10\n",
    ));
    assert_eq!(pb.steps[0].retries, 10);
}

// ---------------------------------------------------------------- health and security

#[test]
fn health_with_both_http_and_tcp_is_refused() {
    let y = edit(
        "        http: http://127.0.0.1:8080/\n",
        "        http: http://127.0.0.1:8080/\n        tcp: 127.0.0.1:8080\n",
    );
    assert_error_at(&y, 28, 9, "has both `http` and `tcp`");
}

#[test]
fn health_expect_status_700_is_refused() {
    let y = edit(
        "        http: http://127.0.0.1:8080/\n",
        "        http: http://127.0.0.1:8080/\n        expect_status: 700\n",
    );
    assert_error_at(&y, 28, 24, "700 is not an HTTP status");
}

#[test]
fn unknown_capability_suggests_the_right_one() {
    let d = assert_error_at(
        &with_security("cap_add: [NET_BIND_SERVIC]"),
        24,
        29,
        "`NET_BIND_SERVIC` is not a Linux capability",
    );
    assert_help(&d, "did you mean `NET_BIND_SERVICE`?");
}

#[test]
fn capability_with_cap_prefix_is_accepted() {
    let pb = assert_ok(&with_security("cap_add: [CAP_NET_BIND_SERVICE]"));
    assert_eq!(deploy(&pb, "app").security.cap_add, ["NET_BIND_SERVICE"]);
}

// ---------------------------------------------------------------- target

/// The base with `target: { docker: URL }` in block form: `docker:` on line 9, value at column 11.
fn with_docker(url: &str, more: &str) -> String {
    edit(
        "vars:\n",
        &format!("target:\n  docker: {url}\n{more}vars:\n"),
    )
}

#[test]
fn docker_over_tcp_without_tls_is_refused() {
    assert_error_at(&with_docker("tcp://h:2376", ""), 9, 11, "needs TLS");
}

#[test]
fn docker_over_tcp_with_tls_is_accepted() {
    let pb = assert_ok(&with_docker(
        "tcp://h:2376",
        "  tls: { ca: tls/ca.pem, cert: tls/cert.pem, key: tls/key.pem }\n",
    ));
    let DockerEndpoint::Tcp { host, port, ca, .. } = &pb.target.docker else {
        panic!("{:?}", pb.target.docker)
    };
    assert_eq!((host.as_str(), *port), ("h", 2376));
    assert_eq!(
        ca,
        &PathBuf::from("tls/ca.pem"),
        "relative to the playbook's folder (here: none)"
    );
}

#[test]
fn docker_unix_socket_must_be_absolute() {
    assert_error_at(
        &with_docker("unix://relative", ""),
        9,
        11,
        "must be absolute",
    );
}

// ---------------------------------------------------------------- YAML level

#[test]
fn duplicate_yaml_key_is_refused_at_the_second() {
    let y = edit("  user: deploy\n", "  user: deploy\n  host: 10.0.0.6\n");
    let d = assert_error_at(&y, 6, 3, "duplicate");
    assert!(d.message.contains("`host`"), "{}", show1(&d));
}

// ---------------------------------------------------------------- all errors at once

#[test]
fn all_rule_errors_are_reported_at_once_sorted_by_line() {
    let y = "version: 2
app: Demo
vendor:
  host: 10.0.0.5
  user: deploy
  identity: keys/id
  known_hosts: keys/known_hosts
vars:
  a: \"1\"
steps:
  - id: code
    fetch:
      path: /srv/app
    timeout: 60
  - id: code
    exec:
      run: \"echo {{ vars.b }} {{ vars.a }}\"
  - id: app
    deploy:
      image: nginx:1.25
      name: demo
      ports: [\"abc\"]
      health: { tcp: \"127.0.0.1:80\" }
";
    let errs = errors(y);
    let got: Vec<(u32, u32)> = errs
        .iter()
        .map(|d| d.loc.map(|l| (l.line, l.col)).unwrap_or_default())
        .collect();
    assert_eq!(
        got,
        [(1, 10), (2, 6), (14, 14), (15, 9), (17, 18), (22, 15)],
        "{}",
        show(&errs)
    );
    let words = [
        "version 2",
        "app name",
        "not a duration",
        "duplicate step id",
        "`vars.b` is not defined",
        "port mapping",
    ];
    for (d, w) in errs.iter().zip(words) {
        assert!(d.message.contains(w), "expected `{w}`:\n{}", show(&errs));
    }
}

#[test]
fn all_structural_errors_are_reported_at_once_sorted_by_line() {
    let y = "version: 1
app: demo
descripton: x
vendor:
  host: 10.0.0.5
  port: abc
  user: deploy
  identity: keys/id
steps:
  - id: code
    fetchh:
      path: /srv/app
  - id: pull
    fetch:
      exclude: []
  - id: app
    deploy:
      image: nginx:1.25
      name: demo
      ports: 8080
";
    let errs = errors(y);
    let got: Vec<(u32, u32)> = errs
        .iter()
        .map(|d| d.loc.map(|l| (l.line, l.col)).unwrap_or_default())
        .collect();
    assert_eq!(
        got,
        [(3, 1), (6, 9), (11, 5), (15, 7), (20, 14)],
        "{}",
        show(&errs)
    );
    let words = [
        "unknown field `descripton`",
        "`vendor.port`",
        "unknown field `fetchh`",
        "missing field `path`",
        "`steps.app.deploy.ports`",
    ];
    for (d, w) in errs.iter().zip(words) {
        assert!(d.message.contains(w), "expected `{w}`:\n{}", show(&errs));
    }
}

// ---------------------------------------------------------------- paths

#[test]
fn paths_resolve_relative_to_the_playbooks_folder() {
    let dir = Path::new("some/dir");
    let y = edit(
        "  db_password: { env: BOYONG_TEST_DB_PASSWORD }",
        "  db_password: { file: secrets/db }",
    );
    let pb = assert_ok_at(&dir.join("p.yml"), &y);
    let VendorAuth::Key { identity, .. } = &pb.vendor.auth else {
        panic!("{:?}", pb.vendor.auth)
    };
    assert_eq!(identity, &dir.join("keys/id"));
    assert_eq!(
        pb.vendor.known_hosts.as_deref(),
        Some(dir.join("keys/known_hosts").as_path())
    );
    assert_eq!(
        pb.secrets["db_password"].source,
        SecretSource::File(dir.join("secrets/db"))
    );
    assert_eq!(pb.path, dir.join("p.yml"));
}

#[test]
fn absolute_paths_stay_absolute() {
    let y = edit("  identity: keys/id", "  identity: /etc/boyong/id");
    let pb = assert_ok_at(Path::new("some/dir/p.yml"), &y);
    let VendorAuth::Key { identity, .. } = &pb.vendor.auth else {
        panic!("{:?}", pb.vendor.auth)
    };
    assert_eq!(identity, Path::new("/etc/boyong/id"));
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_are_filled_in() {
    let y = append(
        "  - id: db\n    dump:\n      engine: mariadb\n      database: d\n      user: u\n  - id: hook\n    exec:\n      run: ./notify\n",
    );
    let pb = assert_ok(&y);
    assert_eq!(pb.vendor.port, 22);
    assert_eq!(
        pb.target.docker,
        DockerEndpoint::Unix(PathBuf::from("/var/run/docker.sock"))
    );
    let retries: Vec<(&str, u32)> = pb
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.retries))
        .collect();
    assert_eq!(
        retries,
        [
            ("code", 2),
            ("image", 0),
            ("app", 0),
            ("db", 2),
            ("hook", 0)
        ]
    );
    assert!(pb.steps.iter().all(|s| s.timeout.is_none()));
    match step(&pb, "db") {
        StepKind::Dump(d) => assert_eq!((d.host.as_str(), d.port), ("localhost", 3306)),
        other => panic!("{}", other.name()),
    }
    match step(&pb, "hook") {
        StepKind::Exec(e) => assert_eq!(e.on, boyong::playbook::ExecOn::Vendor),
        other => panic!("{}", other.name()),
    }
    let d = deploy(&pb, "app");
    assert_eq!(d.keep, 1);
    let s = &d.security;
    assert_eq!(s, &Security::default());
    assert!(s.read_only && s.no_new_privileges && s.cap_add.is_empty());
    assert_eq!((s.memory, s.pids), (Size(512 << 20), 256));
    assert_eq!(s.restart, RestartPolicy::UnlessStopped);
    assert_eq!(s.tmpfs, ["/tmp"]);
    assert_eq!(
        d.health.check,
        HealthCheck::Http {
            url: "http://127.0.0.1:8080/".into(),
            expect_status: 200,
            host: None,
        }
    );
    assert_eq!(
        (d.health.timeout, d.health.interval),
        (Span::secs(60), Span::secs(1))
    );
}

#[test]
fn deploy_without_health_is_a_warning_and_checks_running() {
    let y = edit("      health:\n        http: http://127.0.0.1:8080/\n", "");
    assert!(errors(&y).is_empty(), "{}", show(&errors(&y)));
    let w = warnings(&y);
    assert_eq!(w.len(), 1, "{}", show(&w));
    // At the deploy's mapping (its first key, `image:` on line 22).
    let loc = w[0].loc.expect("located");
    assert_eq!((loc.line, loc.col), (22, 7), "{}", show(&w));
    assert!(w[0].message.contains("no health check"), "{}", show(&w));
    let pb = load(&y)
        .playbook
        .expect("a warning does not refuse the playbook");
    assert_eq!(deploy(&pb, "app").health.check, HealthCheck::Running);
}

#[test]
fn a_var_in_an_exec_command_goes_in_as_one_quoted_shell_word() {
    let yaml = edit_in(
        &append(
            "  - id: note\n    exec:\n      run: echo {{ vars.msg }} > /tmp/note\n      undo: rm -f {{ vars.msg }}\n",
        ),
        "release: \"1.0\"",
        "release: \"1.0\"\n  msg: \"it's $(id); rm -rf /\"",
    );
    let pb = assert_ok(&yaml);
    let StepKind::Exec(e) = step(&pb, "note") else {
        panic!("not an exec step")
    };
    assert_eq!(e.run, r"echo 'it'\''s $(id); rm -rf /' > /tmp/note");
    assert_eq!(e.undo.as_deref(), Some(r"rm -f 'it'\''s $(id); rm -rf /'"));
    // Elsewhere a var is inserted as it is.
    let StepKind::Build(b) = step(&pb, "image") else {
        panic!("not a build step")
    };
    assert_eq!(b.tag.as_deref(), Some("demo:1.0"));
}

#[test]
fn legacy_algorithms_are_from_a_closed_list_and_warned_about() {
    let yaml = edit(
        "  known_hosts: keys/known_hosts\n",
        "  known_hosts: keys/known_hosts\n  legacy_algorithms: [diffie-hellman-group14-sha1, ssh-rsa]\n",
    );
    let pb = assert_ok(&yaml);
    assert_eq!(
        pb.vendor.legacy_algorithms,
        ["diffie-hellman-group14-sha1", "ssh-rsa"]
    );
    let w = warnings(&yaml);
    assert!(
        w.iter().any(|d| d
            .message
            .contains("legacy SSH algorithms allowed for 10.0.0.5")),
        "{}",
        show(&w)
    );
    let bad = edit(
        "  known_hosts: keys/known_hosts\n",
        "  known_hosts: keys/known_hosts\n  legacy_algorithms: [ssh-dss]\n",
    );
    let d = assert_error_at(
        &bad,
        8,
        23,
        "`ssh-dss` is not a legacy SSH algorithm boyong can allow",
    );
    assert!(show1(&d).contains("ssh-rsa"), "{}", show1(&d));
}

#[test]
fn retry_delay_is_a_duration_of_at_most_ten_minutes() {
    let ok = edit("  - id: code\n", "  - id: code\n    retry_delay: 5s\n");
    let pb = assert_ok(&ok);
    assert_eq!(
        pb.steps[0].retry_delay.map(|d| d.0),
        Some(std::time::Duration::from_secs(5))
    );
    let long = edit("  - id: code\n", "  - id: code\n    retry_delay: 11m\n");
    assert_error_at(&long, 13, 18, "`retry_delay` is at most 10m");
}

/// The base's deploy with `route` lines (indented by 6) instead of its port.
fn routed(route: &str) -> String {
    edit(
        "      ports: [\"127.0.0.1:8080:80\"]\n",
        &format!("      route:\n{route}"),
    )
}

#[test]
fn a_route_is_read_with_its_defaults() {
    let pb = assert_ok(&routed(
        "        host: izin.kota.go.id\n        port: 8080\n",
    ));
    let r = deploy(&pb, "app").route.clone().unwrap();
    assert_eq!((r.host.as_str(), r.port), ("izin.kota.go.id", 8080));
    assert!(r.tls.is_none() && !r.redirect_http);
    assert_eq!(r.drain, Span::secs(5));
    assert_eq!(pb.target.front.name, "boyong-front");
    assert_eq!(pb.target.front.http, ("0.0.0.0".to_string(), 80));
}

#[test]
fn a_route_host_must_be_a_host_name() {
    assert_error_at(
        &routed("        host: \"*.kota.go.id\"\n        port: 8080\n"),
        25,
        15,
        "`*.kota.go.id` is not a host name a route can serve",
    );
}

#[test]
fn a_routed_app_publishes_no_port() {
    let y = edit(
        "      env:",
        "      route: { host: izin.kota.go.id, port: 80 }\n      env:",
    );
    assert_error_at(
        &y,
        24,
        15,
        "a routed app publishes no port: the front proxy serves it by host name",
    );
}

#[test]
fn redirect_http_needs_tls() {
    assert_error_at(
        &routed("        host: izin.kota.go.id\n        port: 8080\n        redirect_http: true\n"),
        27,
        24,
        "`redirect_http` needs `tls`",
    );
}

#[test]
fn a_route_key_must_be_a_secret() {
    assert_error_at(
        &routed(
            "        host: izin.kota.go.id\n        port: 8080\n        tls: { cert: { file: c.pem }, key: \"-----BEGIN PRIVATE KEY-----\" }\n",
        ),
        27,
        44,
        "must be a secret, not an inline value",
    );
}

#[test]
fn the_front_listens_on_an_ipv4_address_and_port() {
    let y = edit(
        "steps:\n",
        "target:\n  front: { http: \"localhost:80\" }\nsteps:\n",
    );
    assert_error_at(
        &y,
        12,
        18,
        "`target.front.http`: `localhost:80` is not a listen address",
    );
}

#[test]
fn route_assess_needs_the_assess_section() {
    assert_error_at(
        &routed("        host: izin.kota.go.id\n        port: 8080\n        assess: true\n"),
        27,
        17,
        "`route.assess` runs the playbook's `assess:` section, and there is none",
    );
}

/// The base playbook on a Swarm target (two lines more: every later line moves by 2).
fn swarm(yaml: &str) -> String {
    edit_in(yaml, "vars:\n", "target:\n  swarm: true\nvars:\n")
}

#[test]
fn a_deploy_on_a_swarm_target_is_a_service_with_its_defaults() {
    let pb = assert_ok(&swarm(&routed(
        "        host: izin.kota.go.id\n        port: 8080\n",
    )));
    assert!(pb.target.swarm);
    let d = deploy(&pb, "app");
    let s = d.service.clone().unwrap();
    assert_eq!((s.replicas, s.placement.len()), (1, 0));
    assert_eq!(s.monitor, Span::secs(5));
}

#[test]
fn service_needs_a_swarm_target() {
    assert_error_at(
        &edit(
            "      name: demo\n",
            "      name: demo\n      service: { replicas: 2 }\n",
        ),
        24,
        16,
        "`service` applies to a Swarm target",
    );
}

#[test]
fn a_swarm_service_publishes_no_port() {
    assert_error_at(&swarm(&base()), 26, 15, "a Swarm service publishes no port");
}

#[test]
fn a_swarm_service_has_1_to_100_replicas_and_constraints_with_an_operator() {
    let y = swarm(&routed(
        "        host: izin.kota.go.id\n        port: 8080\n",
    ));
    let zero = edit_in(
        &y,
        "      name: demo\n",
        "      name: demo\n      service: { replicas: 0 }\n",
    );
    assert_error_at(&zero, 26, 28, "0 replicas");
    let loose = edit_in(
        &y,
        "      name: demo\n",
        "      name: demo\n      service: { placement: [\"node.role worker\"] }\n",
    );
    assert_error_at(&loose, 26, 30, "is not a placement constraint");
}

#[test]
fn swarm_over_ssh_is_a_swarm_target_reached_through_ssh() {
    let y = edit_in(
        &routed("        host: izin.kota.go.id\n        port: 8080\n"),
        "vars:\n",
        "target:\n  docker: ssh://deploy@10.0.0.9\n  identity: keys/id\n  known_hosts: keys/known_hosts\n  swarm: true\nvars:\n",
    );
    let p = assert_ok(&y);
    assert!(p.target.swarm);
    assert!(
        matches!(p.target.docker, DockerEndpoint::Ssh { .. }),
        "{:?}",
        p.target.docker
    );
}
