//! What may be removed, the differences that block a removal, and the minimum age.

use super::vendor::{hash_command, safe_path};
use super::{differences, parse_age};

#[test]
fn only_plain_absolute_paths_below_the_root_may_be_removed() {
    for ok in [
        "/srv/www/app",
        "/srv/www/app/",
        "/a",
        "/srv/name with space",
    ] {
        assert_eq!(safe_path(ok), Ok(()), "{ok}");
    }
    for bad in [
        "/",
        "//",
        "",
        "srv/app",
        "./srv",
        "/srv/../etc",
        "/srv/./app",
        "/srv//app",
        "/srv/a\nb",
        "..",
    ] {
        assert!(safe_path(bad).is_err(), "{bad:?} is refused");
    }
}

#[test]
fn the_hash_command_quotes_the_path() {
    let c = hash_command("/srv/it's; rm -rf /");
    assert!(c.starts_with("P='/srv/it'\\''s; rm -rf /';"), "{c}");
    assert!(c.contains("exit 66"));
}

#[test]
fn differences_name_changed_missing_and_new_files_but_not_excluded_ones() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let h = |c: char| c.to_string().repeat(64);
    std::fs::write(
        d.path().join("code.manifest"),
        format!(
            "{}  a.php\n{}  b.php\n{}  dir/c.php\n",
            h('a'),
            h('b'),
            h('c')
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let same = vec![
        (b"a.php".to_vec(), h('a')),
        (b"b.php".to_vec(), h('b')),
        (b"dir/c.php".to_vec(), h('c')),
        (b"cache/x".to_vec(), h('d')),
    ];
    let excl = vec!["cache/".to_string()];
    assert_eq!(
        differences(d.path(), "code", &excl, Some(&same)),
        Ok(Vec::new())
    );
    let now = vec![
        (b"a.php".to_vec(), h('f')),
        (b"dir/c.php".to_vec(), h('c')),
        (b"new.php".to_vec(), h('e')),
        (b"cachex".to_vec(), h('e')),
    ];
    assert_eq!(
        differences(d.path(), "code", &excl, Some(&now)),
        Ok(vec![
            "changed: a.php".to_string(),
            "missing: b.php".into(),
            "new: cachex".into(),
            "new: new.php".into(),
        ])
    );
    assert_eq!(
        differences(d.path(), "code", &excl, None).map(|v| v.len()),
        Ok(1)
    );
    // A wildcard leaves out what the pull's tar left out: `*` across folders too.
    let logs = vec![
        (b"a.php".to_vec(), h('a')),
        (b"b.php".to_vec(), h('b')),
        (b"dir/c.php".to_vec(), h('c')),
        (b"error.log".to_vec(), h('e')),
        (b"dir/deep/access.log".to_vec(), h('e')),
        (b"dir/log.txt".to_vec(), h('e')),
    ];
    assert_eq!(
        differences(d.path(), "code", &["*.log".to_string()], Some(&logs)),
        Ok(vec!["new: dir/log.txt".to_string()])
    );
}

#[test]
fn ages_parse_and_bad_ones_are_refused() {
    assert_eq!(parse_age("7d"), Ok(7 * 86_400));
    assert_eq!(parse_age("1d12h"), Ok(36 * 3600));
    assert_eq!(parse_age("90s"), Ok(90));
    assert_eq!(parse_age("0"), Ok(0));
    for bad in ["", "7", "7 days", "d", "7w", "1234567890d"] {
        assert!(parse_age(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_wipe_drops_each_object_by_its_quoted_name_in_batches_that_fit_a_command_line() {
    use super::db::wipe_sql;
    use crate::steps::db::{ARG_SQL_MAX, Dialect};
    let few = vec![
        ("VIEW".to_string(), "`d`.`a view`".to_string()),
        ("TABLE".to_string(), "`d`.`t`".to_string()),
    ];
    assert_eq!(
        wipe_sql(Dialect::My("mariadb-dump"), &few),
        [
            "SET FOREIGN_KEY_CHECKS = 0; DROP VIEW IF EXISTS `d`.`a view`; DROP TABLE IF EXISTS `d`.`t`; "
        ]
    );
    assert_eq!(
        wipe_sql(Dialect::Pg, &[("TABLE".into(), "public.t".into())]),
        ["DROP TABLE IF EXISTS public.t CASCADE; "]
    );
    assert!(
        wipe_sql(Dialect::Pg, &[]).is_empty(),
        "nothing to drop: no SQL"
    );
    let many: Vec<(String, String)> = (0..5000)
        .map(|i| ("TABLE".to_string(), format!("`d`.`table_{i}`")))
        .collect();
    let batches = wipe_sql(Dialect::My("mariadb-dump"), &many);
    assert!(batches.len() > 1);
    assert!(batches.iter().all(|b| b.len() <= ARG_SQL_MAX));
    assert!(
        batches
            .iter()
            .all(|b| b.starts_with("SET FOREIGN_KEY_CHECKS = 0; "))
    );
    let all: usize = batches
        .iter()
        .map(|b| b.matches("DROP TABLE").count())
        .sum();
    assert_eq!(all, 5000, "every object, once");
}

#[test]
fn a_unit_is_a_plain_systemd_name_never_an_option_a_path_or_a_glob() {
    use crate::playbook::unit_problem;
    for ok in [
        "perizinan-worker.service",
        "perizinan.timer",
        "app@1.service",
        "a:b_c.socket",
    ] {
        assert_eq!(unit_problem(ok), None, "{ok}");
    }
    for bad in [
        "--now.service",
        "../etc/x.service",
        "x y.service",
        "*.service",
        "sshd",
        ".service",
        "app@.service",
        "x.service;reboot",
    ] {
        assert!(unit_problem(bad).is_some(), "{bad} is refused");
    }
}

#[test]
fn the_playbook_names_crontab_lines_and_units_in_order() {
    let d = crate::playbook::Decommission {
        crontab: vec!["* * * * * true".into()],
        services: vec!["a.service".into()],
        user_services: vec!["b.service".into()],
    };
    let items = super::host::items(&d);
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        ["crontab:1", "service:a.service", "user-service:b.service"]
    );
    assert_eq!(items[1].action, "systemctl disable --now -- 'a.service'");
    assert_eq!(
        items[2].action,
        "systemctl --user disable --now -- 'b.service'"
    );
}
