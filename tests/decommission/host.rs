//! Crontab lines and systemd units the playbook's `decommission:` names: a line removed
//! from the vendor login's real crontab (`crontab` from Debian's `cron`) by exact match, a
//! sibling line kept; a unit the vendor login cannot manage refuses the whole plan; bad
//! names are refused at validation with file:line:col.

use std::process::{Command, Stdio};

use super::common::*;
use crate::support::env::Env;
use crate::support::text;

/// The vendor login's crontab (this machine's, for this user) as it was, put back on drop.
struct CrontabGuard(Option<String>);

fn crontab_l() -> Option<String> {
    let out = Command::new("crontab").arg("-l").output().unwrap();
    out.status.success().then(|| text(&out.stdout))
}

fn crontab_write(content: &str) {
    use std::io::Write as _;
    let mut child = Command::new("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

impl Drop for CrontabGuard {
    fn drop(&mut self) {
        match &self.0 {
            Some(c) => crontab_write(c),
            None => {
                let _ = Command::new("crontab").arg("-r").status();
            }
        }
    }
}

/// The tree-only playbook with `decommission` appended.
fn playbook_with(env: &Env, decommission: &str) -> std::path::PathBuf {
    let (tree, _) = vendor_files(env);
    let pb = playbook(env, &tree, None);
    let text_pb = std::fs::read_to_string(&pb).unwrap() + decommission;
    std::fs::write(&pb, text_pb).unwrap();
    pb
}

#[test]
fn a_crontab_line_is_removed_by_exact_match_and_a_sibling_line_stays() {
    if !crate::support::db::installed(&["/usr/bin/crontab"], "cron") {
        return;
    }
    let Some(env) = Env::builder("decommission-crontab").sshd().build() else {
        return;
    };
    let _guard = CrontabGuard(crontab_l());
    let tag = env.name.clone();
    // A vendor's backup line, its password on the command line as vendors write it.
    let ours = format!("*/5 * * * * /bin/true dectest {tag} -pRahasia123");
    let shown = format!("*/5 * * * * /bin/true dectest {tag} -p***");
    let sibling = format!("*/7 * * * * /bin/true sibling {tag}");
    let longer = format!("{ours} --and-more");
    let before = format!("# boyong test {tag}\n{ours}\n{sibling}\n{longer}\n");
    crontab_write(&before);
    let pb = playbook_with(
        &env,
        &format!("decommission:\n  crontab:\n    - \"{ours}\"\n"),
    );
    let run = boyong(&env, None, &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));

    let plan = boyong(
        &env,
        None,
        &["decommission", APP, "--plan", "--min-age", "0"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", said(&plan));
    assert!(
        said(&plan).contains(&format!("crontab {shown}")) && !said(&plan).contains("Rahasia"),
        "{}",
        said(&plan)
    );
    assert_eq!(
        crontab_l().as_deref(),
        Some(before.as_str()),
        "the plan changed nothing"
    );

    let done = boyong(
        &env,
        None,
        &["decommission", APP, "--min-age", "0", "--confirm", APP],
    );
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    let after = crontab_l().unwrap_or_default();
    assert_eq!(
        after,
        format!("# boyong test {tag}\n{sibling}\n{longer}\n"),
        "only the exact line is gone"
    );
    let dir = decommissions(&env).pop().unwrap();
    let cert: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("certificate.json")).unwrap()).unwrap();
    let item = &cert["removed"][1];
    assert_eq!(item["kind"], "crontab", "{cert}");
    assert_eq!(item["target"], shown.as_str(), "the password masked");
    for f in ["certificate.json", "certificate.md", "certificate.html"] {
        let t = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(!t.contains("Rahasia"), "{f}: {t}");
    }
    assert_eq!(item["gone"], true);
    assert!(
        item["gone_check"]
            .as_str()
            .unwrap()
            .contains("the line is gone")
    );
    let j = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(
        j.contains("crontab:1") && j.contains("\"type\":\"intent\""),
        "{j}"
    );
}

#[test]
fn a_unit_the_vendor_login_cannot_manage_refuses_and_bad_names_are_refused_at_validation() {
    let Some(env) = Env::builder("decommission-units").sshd().build() else {
        return;
    };
    let pb = playbook_with(
        &env,
        "decommission:\n  services: [\"boyong-test-worker.service\"]\n  user_services: [\"boyong-test-queue.service\"]\n",
    );
    let v = boyong(&env, None, &["validate", pb.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", said(&v));
    let run = boyong(&env, None, &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    assert_eq!(boyong(&env, None, &["archive", APP]).status.code(), Some(0));
    for args in [
        &["decommission", APP, "--plan", "--min-age", "0"][..],
        &["decommission", APP, "--min-age", "0", "--confirm", APP][..],
    ] {
        let out = boyong(&env, None, args);
        assert_eq!(out.status.code(), Some(1), "{}", said(&out));
        let s = said(&out);
        assert!(
            s.contains("REFUSED unit `boyong-test-worker.service` may be stopped")
                && s.contains("REFUSED unit `boyong-test-queue.service` may be stopped"),
            "{s}"
        );
        assert!(s.contains("nothing was changed"), "{s}");
    }
    assert!(env.path("vendor/srv/dectest/index.php").is_file());
    assert!(decommissions(&env).is_empty(), "a refusal journals nothing");

    // Bad names: file:line:col, exit 2.
    let bad = env.write(
        "bad.yml",
        std::fs::read_to_string(&pb)
            .unwrap()
            .split("decommission:")
            .next()
            .unwrap()
            .to_string()
            + "decommission:\n  crontab: [\"  \"]\n  services: [\"../etc/x.service\", \"--now.service\", \"sshd\"]\n",
    );
    let v = boyong(&env, None, &["validate", bad.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(2), "{}", said(&v));
    let s = said(&v);
    for want in [
        "bad.yml:",
        "`decommission.crontab`",
        "`decommission.services`: `../etc/x.service`",
        "`decommission.services`: `--now.service`",
        "`decommission.services`: `sshd`: a unit name ends in",
    ] {
        assert!(s.contains(want), "{want}: {s}");
    }
}
