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
