//! The SSH client against a real OpenSSH server: host keys (known, unknown, accepted,
//! changed, revoked, hashed), authentication, time limits, exec with stdin, stdout,
//! stderr and exit status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::time::Duration;

use boyong::ssh::{Auth, Out, Session, SshError, Target};
use support::sshd::{Sshd, available, keygen};

fn target(s: &Sshd) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: s.port,
        user: s.user.clone(),
        auth: Auth::Key {
            path: s.client_key.clone(),
            passphrase: None,
        },
        known_hosts: s.known_hosts.clone(),
        accept_new: false,
        connect_timeout: Duration::from_secs(10),
        legacy_algorithms: Vec::new(),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn run(s: &Session, cmd: &str, stdin: Option<&[u8]>) -> (Vec<u8>, Vec<u8>, u32) {
    let mut e = s.exec(cmd, stdin).await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(o) = e.next().await {
        match o {
            Out::Stdout(b) => out.extend_from_slice(&b),
            Out::Stderr(b) => err.extend_from_slice(&b),
        }
    }
    (out, err, e.exit_status().unwrap())
}

#[test]
fn exec_streams_stdout_stderr_and_the_exit_status_and_takes_stdin() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("");
    rt().block_on(async {
        let s = Session::connect(&target(&sshd)).await.unwrap();
        let (out, err, code) = run(&s, "echo out; echo err >&2; exit 3", None).await;
        assert_eq!(
            (out.as_slice(), err.as_slice(), code),
            (&b"out\n"[..], &b"err\n"[..], 3)
        );
        let (out, _, code) = run(&s, "sha256sum", Some(b"hello")).await;
        assert_eq!(code, 0);
        assert!(
            String::from_utf8_lossy(&out)
                .starts_with("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        // Big output arrives whole.
        let (out, _, code) = run(&s, "head -c 5000000 /dev/zero", None).await;
        assert_eq!((out.len(), code), (5_000_000, 0));
        s.close().await;
    });
}

#[test]
fn an_unknown_host_key_is_refused_with_its_fingerprint_and_the_line_to_add() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("");
    std::fs::write(&sshd.known_hosts, "").unwrap();
    let err = rt()
        .block_on(Session::connect(&target(&sshd)))
        .err()
        .unwrap();
    let SshError::HostKeyUnknown {
        fingerprint, line, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(fingerprint.starts_with("SHA256:"));
    assert_eq!(
        line,
        &format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_key_pub)
    );
    assert!(err.to_string().contains("--accept-new-host-key"));
}

/// A known_hosts file that does not exist yet is an empty one: the key is unknown, and the
/// refusal gives its fingerprint and the line to add, not a bare "No such file".
#[test]
fn a_missing_known_hosts_file_is_empty_and_the_refusal_gives_the_line_to_add() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("");
    let _ = std::fs::remove_file(&sshd.known_hosts);
    let err = rt()
        .block_on(Session::connect(&target(&sshd)))
        .err()
        .unwrap();
    let SshError::HostKeyUnknown { line, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        line,
        &format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_key_pub)
    );
    assert!(!sshd.known_hosts.exists(), "nothing was written");
}

#[test]
fn accept_new_adds_an_unknown_key_and_then_it_is_known() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("");
    std::fs::remove_file(&sshd.known_hosts).unwrap();
    let mut t = target(&sshd);
    t.accept_new = true;
    let s = rt().block_on(Session::connect(&t)).unwrap();
    assert!(s.accepted_new.is_some());
    let text = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    assert!(text.contains(&sshd.host_key_pub), "{text}");
    t.accept_new = false;
    let again = rt().block_on(Session::connect(&t)).unwrap();
    assert!(again.accepted_new.is_none());
}

#[test]
fn a_changed_host_key_is_refused_loudly_even_with_accept_new() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("");
    let other = sshd.dir.path().join("other");
    keygen(&other, "ed25519", "");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let before = format!("[127.0.0.1]:{} {}\n", sshd.port, other_pub.trim());
    std::fs::write(&sshd.known_hosts, &before).unwrap();
    let mut t = target(&sshd);
    t.accept_new = true;
    let err = rt().block_on(Session::connect(&t)).err().unwrap();
    assert!(matches!(err, SshError::HostKeyChanged { .. }), "{err}");
    assert!(err.to_string().contains("man-in-the-middle"));
    assert_eq!(
        std::fs::read_to_string(&sshd.known_hosts).unwrap(),
        before,
        "never rewritten"
    );
}

#[test]
fn a_revoked_host_key_is_refused_and_a_hashed_entry_is_accepted() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("");
    let kh = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    std::fs::write(
        &sshd.known_hosts,
        format!("{kh}@revoked * {}\n", sshd.host_key_pub),
    )
    .unwrap();
    let err = rt()
        .block_on(Session::connect(&target(&sshd)))
        .err()
        .unwrap();
    assert!(matches!(err, SshError::HostKeyRevoked { .. }), "{err}");

    std::fs::write(&sshd.known_hosts, &kh).unwrap();
    let ok = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&sshd.known_hosts)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok);
    assert!(
        std::fs::read_to_string(&sshd.known_hosts)
            .unwrap()
            .starts_with("|1|")
    );
    rt().block_on(Session::connect(&target(&sshd))).unwrap();
}

#[test]
fn a_key_the_server_does_not_know_fails_authentication() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("");
    let stranger = sshd.dir.path().join("stranger");
    keygen(&stranger, "ecdsa", "");
    let mut t = target(&sshd);
    t.auth = Auth::Key {
        path: stranger,
        passphrase: None,
    };
    let err = rt().block_on(Session::connect(&t)).err().unwrap();
    assert!(matches!(err, SshError::AuthFailed { .. }), "{err}");
}

#[test]
fn an_rsa_key_with_a_passphrase_logs_in_with_sha2() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("PubkeyAcceptedAlgorithms rsa-sha2-256,rsa-sha2-512\n");
    let rsa = sshd.dir.path().join("rsa");
    keygen(&rsa, "rsa", "correct horse");
    let pubkey = std::fs::read_to_string(rsa.with_extension("pub")).unwrap();
    std::fs::write(sshd.dir.path().join("authorized_keys"), pubkey).unwrap();
    let mut t = target(&sshd);
    t.auth = Auth::Key {
        path: rsa,
        passphrase: Some(boyong::secret::Secret::new("correct horse".into())),
    };
    rt().block_on(Session::connect(&t)).unwrap();
}

#[test]
fn nothing_listening_is_unreachable_and_a_silent_server_times_out() {
    if !available() {
        return;
    }
    let mut sshd = Sshd::start("");
    let mut t = target(&sshd);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    sshd.kill();
    let err = rt().block_on(Session::connect(&t)).err().unwrap();
    assert!(matches!(err, SshError::Unreachable { .. }), "{err}");
    t.port = silent_port;
    t.connect_timeout = Duration::from_millis(500);
    let err = rt().block_on(Session::connect(&t)).err().unwrap();
    assert!(
        matches!(
            err,
            SshError::TimedOut {
                phase: "key exchange",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient());
}

#[test]
fn an_old_host_is_refused_with_the_setting_that_allows_it_and_then_connects() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("KexAlgorithms diffie-hellman-group14-sha1\n");
    let err = rt()
        .block_on(Session::connect(&target(&sshd)))
        .err()
        .unwrap();
    assert!(matches!(err, SshError::NoCommonAlgorithm { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("`vendor.legacy_algorithms: [diffie-hellman-group14-sha1]`"),
        "{err}"
    );
    let mut t = target(&sshd);
    t.legacy_algorithms = vec!["diffie-hellman-group14-sha1".into()];
    let s = rt().block_on(Session::connect(&t)).unwrap();
    rt().block_on(s.close());
}

#[test]
fn accept_new_never_adds_a_key_for_a_host_with_other_keys_on_record() {
    if !available() {
        return;
    }
    let sshd = Sshd::start("");
    let other = sshd.dir.path().join("other_ecdsa");
    keygen(&other, "ecdsa", "");
    let before = format!(
        "[127.0.0.1]:{} {}\n",
        sshd.port,
        std::fs::read_to_string(other.with_extension("pub"))
            .unwrap()
            .trim()
    );
    std::fs::write(&sshd.known_hosts, &before).unwrap();
    let mut t = target(&sshd);
    t.accept_new = true;
    let err = rt().block_on(Session::connect(&t)).err().unwrap();
    assert!(matches!(err, SshError::HostKeyUnknown { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("--accept-new-host-key does not apply"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&sshd.known_hosts).unwrap(), before);
}

#[test]
fn a_host_with_several_keys_is_asked_for_the_one_on_record() {
    if !available() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let rsa = keys.path().join("host_rsa");
    keygen(&rsa, "rsa", "");
    let sshd = Sshd::start(&format!("HostKey {}\n", rsa.display()));
    let rsa_pub = std::fs::read_to_string(rsa.with_extension("pub")).unwrap();
    let line: Vec<&str> = rsa_pub.split_whitespace().take(2).collect();
    std::fs::write(
        &sshd.known_hosts,
        format!("[127.0.0.1]:{} {}\n", sshd.port, line.join(" ")),
    )
    .unwrap();
    rt().block_on(Session::connect(&target(&sshd))).unwrap();
}
