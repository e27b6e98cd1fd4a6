//! Shared test support: a real sshd, the real Docker Engine, a small tmpfs.
#![allow(dead_code, reason = "each test binary uses a part")]

pub mod db;
pub mod docker;
pub mod sshd;
pub mod tmpfs;

/// The real `boyong` binary, with its state in `state`, on the real world (not the fake).
pub fn boyong(state: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_boyong"));
    c.env("BOYONG_STATE", state)
        .env_remove("BOYONG_SIM")
        .stdin(std::process::Stdio::null());
    c
}

/// Replaces `old` (which must be there) by `new` in the file at `path`.
pub fn edit_file(path: &std::path::Path, old: &str, new: &str) {
    let text = std::fs::read_to_string(path).expect("reads");
    assert!(text.contains(old), "`{old}` is not in {}", path.display());
    std::fs::write(path, text.replace(old, new)).expect("writes");
}

/// Starts `cmd` in the background, its output discarded (a run to be killed).
pub fn spawn_quiet(cmd: &mut std::process::Command) -> std::process::Child {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts")
}

/// Plan fidelity: every change the run's journal records was listed by the run's plan
/// (same step, operation, resource and name). A change not in the plan fails the test.
pub fn assert_plan_fidelity(run: &std::path::Path) {
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("plan.json")).expect("plan.json"))
            .expect("plan.json is JSON");
    let key = |step: &serde_json::Value, c: &serde_json::Value| {
        format!("{} {} {} {}", step, c["op"], c["resource"], c["name"])
    };
    let planned: Vec<String> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| {
            s["changes"]
                .as_array()
                .expect("changes")
                .iter()
                .map(|c| key(&s["id"], c))
        })
        .collect();
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).expect("journal");
    let mut seen = 0;
    for line in journal.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if r["type"] == "intent" {
            seen += 1;
            let k = key(&r["step"], &r["change"]);
            assert!(
                planned.contains(&k),
                "plan fidelity: the run made `{k}`, which its plan does not list:\n{planned:#?}"
            );
        }
    }
    assert!(seen > 0, "the run journaled no change at all");
}
