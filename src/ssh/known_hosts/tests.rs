use super::*;
use std::process::Command;

/// A fresh public key of `kind` (ed25519, ecdsa, rsa), made by ssh-keygen.
fn key(dir: &Path, name: &str, kind: &str) -> PublicKey {
    let path = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs")
        .success();
    assert!(ok);
    let text = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    PublicKey::from_openssh(text.trim()).expect("parses")
}

fn keytext(k: &PublicKey) -> String {
    let mut k = k.clone();
    k.set_comment("");
    k.to_openssh().expect("encodes")
}

#[test]
fn plain_ported_wildcard_and_negated_entries() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = key(d.path(), "a", "ed25519");
    let b = key(d.path(), "b", "ed25519");
    let text = format!(
        "# comment\n\n10.0.0.5 {}\n[10.0.0.6]:2222 {}\n*.dinas.go.id,!evil.dinas.go.id {}\n",
        keytext(&a),
        keytext(&a),
        keytext(&b)
    );
    assert_eq!(check(&text, "10.0.0.5", 22, &a), Verdict::Known { line: 3 });
    assert_eq!(
        check(&text, "10.0.0.6", 2222, &a),
        Verdict::Known { line: 4 }
    );
    // The port is part of the name: port 22 of .6 is not on record.
    assert!(matches!(
        check(&text, "10.0.0.6", 22, &a),
        Verdict::Unknown { .. }
    ));
    assert_eq!(
        check(&text, "app.DINAS.go.id", 22, &b),
        Verdict::Known { line: 5 }
    );
    assert!(matches!(
        check(&text, "evil.dinas.go.id", 22, &b),
        Verdict::Unknown { .. }
    ));
    // Another key of the same algorithm for a known host: changed.
    assert_eq!(
        check(&text, "10.0.0.5", 22, &b),
        Verdict::Changed { lines: vec![3] }
    );
}

#[test]
fn hashed_entries_match_only_their_host() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = key(d.path(), "a", "ed25519");
    let file = d.path().join("known_hosts");
    std::fs::write(&file, format!("[127.0.0.1]:2200 {}\n", keytext(&a))).expect("write");
    let ok = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("ssh-keygen -H")
        .status
        .success();
    assert!(ok);
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.starts_with("|1|"), "{text}");
    assert_eq!(
        check(&text, "127.0.0.1", 2200, &a),
        Verdict::Known { line: 1 }
    );
    assert!(matches!(
        check(&text, "127.0.0.2", 2200, &a),
        Verdict::Unknown { .. }
    ));
}

#[test]
fn a_revoked_key_is_refused_even_when_listed() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = key(d.path(), "a", "ed25519");
    let text = format!("host1 {}\n@revoked * {}\n", keytext(&a), keytext(&a));
    assert_eq!(check(&text, "host1", 22, &a), Verdict::Revoked { line: 2 });
}

#[test]
fn a_key_of_another_algorithm_is_unknown_not_changed_and_cert_authorities_do_not_vouch() {
    let d = tempfile::tempdir().expect("tempdir");
    let ed = key(d.path(), "ed", "ed25519");
    let ec = key(d.path(), "ec", "ecdsa");
    let text = format!("h {}\n@cert-authority h {}\n", keytext(&ed), keytext(&ec));
    assert_eq!(
        check(&text, "h", 22, &ec),
        Verdict::Unknown {
            other_algorithms: vec![ed.algorithm().to_string()]
        }
    );
}

#[test]
fn append_adds_a_line_that_then_checks_as_known() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = key(d.path(), "a", "rsa");
    let file = d.path().join("kh");
    std::fs::write(&file, "other ssh-ed25519 AAAA").expect("write");
    append(&file, "127.0.0.1", 2022, &a).expect("append");
    let text = std::fs::read_to_string(&file).expect("read");
    assert_eq!(
        check(&text, "127.0.0.1", 2022, &a),
        Verdict::Known { line: 2 }
    );
    assert!(fingerprint(&a).starts_with("SHA256:"));
}

#[test]
fn glob_follows_openssh() {
    assert!(glob("*", "anything"));
    assert!(glob("10.0.0.?", "10.0.0.7"));
    assert!(!glob("10.0.0.?", "10.0.0.17"));
    assert!(glob("*.go.id", "a.b.go.id"));
    assert!(!glob("*.go.id", "go.id"));
}
