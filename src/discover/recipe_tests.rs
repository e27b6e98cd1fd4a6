//! Drafts from the sample output: each validates, hostile values stay values, edited
//! files are kept.

use super::super::{app, assemble, raw};
use super::*;

fn login() -> Login {
    Login {
        host: "10.20.0.5".into(),
        port: 22,
        user: "deploy".into(),
        identity: "keys/vendor_ed25519".into(),
        known_hosts: "keys/known_hosts".into(),
    }
}

fn report() -> HostReport {
    let target = crate::ssh::Target {
        host: "10.20.0.5".into(),
        port: 22,
        user: "deploy".into(),
        auth: crate::ssh::Auth::Key {
            path: "k".into(),
            passphrase: None,
        },
        known_hosts: "kh".into(),
        accept_new: false,
        connect_timeout: std::time::Duration::from_secs(1),
        legacy_algorithms: Vec::new(),
    };
    super::super::report_from("N", &app::tests::sample(), &target)
}

#[test]
fn every_draft_validates_with_its_todos() {
    let r = report();
    let _ = (raw::split, assemble::apps);
    let mut n = 0;
    for (i, a) in r.apps.iter().enumerate() {
        let Some(text) = draft(a, &r, &login(), 8081 + u16::try_from(i).expect("few")) else {
            continue;
        };
        n += 1;
        let loaded = crate::playbook::parse(std::path::Path::new("draft.yml"), text.as_bytes());
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{d:?}"))
            .collect();
        assert!(errors.is_empty(), "{}:\n{text}\n{errors:#?}", a.name);
        assert!(!super::super::todo::todos(&text).is_empty(), "{text}");
    }
    assert_eq!(n, 4);
}

#[test]
fn a_hostile_root_stays_one_value() {
    let mut r = report();
    let mut a = r
        .apps
        .iter()
        .find(|a| a.stack == Stack::Static)
        .cloned()
        .expect("static");
    a.root = "/srv/x\"\n  evil: true\n# \u{1b}[2J".into();
    r.apps = vec![a.clone()];
    let text = draft(&a, &r, &login(), 8081).expect("a draft");
    assert!(!text.contains("\n  evil: true"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn an_edited_draft_is_kept_and_the_new_one_written_beside() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path().join("a.yml");
    assert!(matches!(
        write(&p, "x: 1\n").expect("w"),
        Written::Created(_)
    ));
    assert!(matches!(
        write(&p, "x: 1\n").expect("w"),
        Written::Unchanged(_)
    ));
    assert!(matches!(
        write(&p, "x: 2\n").expect("w"),
        Written::Updated(_)
    ));
    let edited = std::fs::read_to_string(&p)
        .expect("r")
        .replace("x: 2", "x: 2  # mine");
    std::fs::write(&p, &edited).expect("w");
    match write(&p, "x: 3\n").expect("w") {
        Written::Kept { new, diff, .. } => {
            assert_eq!(std::fs::read_to_string(&p).expect("r"), edited);
            assert!(std::fs::read_to_string(new).expect("r").ends_with("x: 3\n"));
            assert!(
                diff.contains("-x: 2  # mine") && diff.contains("+x: 3"),
                "{diff}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn drafts_read_as_people_read_them() {
    let r = report();
    for name in ["portal", "izin"] {
        let a = r.apps.iter().find(|a| a.name == name).expect("the app");
        let text = draft(a, &r, &login(), 8081).expect("a draft");
        insta::assert_snapshot!(format!("draft_{name}"), text);
    }
}

#[test]
fn a_python_app_gets_a_draft_that_validates_with_its_service_command() {
    let mut r = report();
    let mut a = r
        .apps
        .iter()
        .find(|a| a.stack == Stack::Node)
        .cloned()
        .expect("a node app in the sample");
    a.stack = Stack::Python;
    a.root = "/srv/pengaduan".into();
    a.dir.has = vec!["requirements.txt".into(), "venv".into(), "app.py".into()];
    a.service = Some(crate::discover::host::Service {
        kind: "systemd".into(),
        name: "pengaduan.service".into(),
        exec: "/srv/pengaduan/venv/bin/gunicorn app:app -b 127.0.0.1:8000".into(),
        port: Some(8000),
        ..Default::default()
    });
    r.apps = vec![a.clone()];
    let text = draft(&a, &r, &login(), 8090).expect("a Python draft");
    let loaded = crate::playbook::parse(std::path::Path::new("draft.yml"), text.as_bytes());
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{d:?}"))
        .collect();
    assert!(errors.is_empty(), "{text}\n{errors:#?}");
    assert!(
        text.contains(r#"cmd: ["gunicorn", "app:app", "-b", "0.0.0.0:8000"]"#),
        "{text}"
    );
    assert!(
        text.contains(r#""venv/""#),
        "the virtualenv stays behind: {text}"
    );
    assert!(text.contains("expose: [8000]"), "{text}");
    assert!(!super::super::todo::todos(&text).is_empty(), "{text}");
}
