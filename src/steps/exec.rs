//! `exec`: a command on the vendor host or inside a container on the target, with an
//! optional undo command that rollback runs.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use super::common::{docker_err, ssh_err};
use super::live::Live;
use super::probe::ProbeCx;
use super::{Described, Kind};
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, Place, PlanContext, PlannedStep, Resource, Undo};
use crate::playbook::{Exec, ExecOn, Step, Template};
use crate::secret::{Secret, SecretStore};
use crate::shell::quote;
use crate::ssh::Out;

/// The `exec` kind.
pub(crate) struct ExecStep;

impl Kind for ExecStep {
    type Spec = Exec;

    fn describe(_step: &Step, spec: &Exec, _ctx: &PlanContext) -> Described {
        describe(spec)
    }

    fn reads_vendor(spec: &Exec) -> bool {
        matches!(spec.on, ExecOn::Vendor)
    }

    /// Nothing to look at: the command is shown as it will run.
    async fn probe(_p: &mut ProbeCx<'_>, _step: &PlannedStep, _spec: &Exec) {}

    async fn execute(
        live: &Live,
        step: &PlannedStep,
        spec: &Exec,
        cx: &mut StepCx<'_>,
    ) -> Result<Value, StepError> {
        execute(live, step, spec, cx).await
    }
}

fn describe(e: &Exec) -> Described {
    let (place, name) = match &e.on {
        ExecOn::Vendor => (Place::Vendor, format!("on vendor: {}", e.run)),
        ExecOn::Container(c) => (Place::Target, format!("in container {c}: {}", e.run)),
    };
    let mut details: Vec<String> = e
        .env
        .iter()
        .map(|(k, v)| format!("env {k}={v} (sent off the command line)"))
        .collect();
    if e.freeze {
        details.push(
            "the freeze of the cut-over: the window from here to the new app serving is reported"
                .into(),
        );
    }
    Described {
        reads: Vec::new(),
        changes: vec![Change {
            now: None,
            part: None,
            op: Op::Run,
            resource: Resource::Command,
            place,
            name,
            details,
            condition: None,
            undo: e.undo.as_ref().map_or_else(
                || "none: this step has no `undo`".into(),
                |u| format!("run: {u}"),
            ),
        }],
    }
}

/// A script that reads `NAME=BASE64` lines from stdin up to an empty line, exports them,
/// and runs its first argument with `/bin/sh -c`, stdin from /dev/null: secrets travel on
/// stdin, never on a command line. The rest of stdin stays open while the command runs;
/// when it ends, the session's process group is stopped (`held_on_vendor!`), so nothing
/// boyong started outlives it. `base64` is found before any variable (a `PATH` among
/// them) is exported; a value that does not decode stops it (exit 125); its own variables
/// carry a prefix that `env` may not use.
const ENV_FROM_STDIN: &str = concat!(
    r#"__boyong_b64=$(command -v base64) || { echo "boyong: base64 is missing on the vendor host" >&2; exit 125; }
while IFS= read -r __boyong_kv && [ -n "$__boyong_kv" ]; do
  __boyong_v=$(printf %s "${__boyong_kv#*=}" | "$__boyong_b64" -d && echo x) || { echo "boyong: cannot decode ${__boyong_kv%%=*}" >&2; exit 125; }
  export "${__boyong_kv%%=*}=${__boyong_v%x}"
done
exec 3<&0
/bin/sh -c "$0" < /dev/null &
"#,
    held_on_vendor!()
);

/// The wrapper of a command in a container, the same watch as [`ENV_FROM_STDIN`]'s: `$0`
/// runs with `/bin/sh -c`, stdin from /dev/null, while the wrapper's own stdin, which
/// boyong holds open without writing, is watched. When it ends (boyong went away: a time
/// limit, Ctrl-C, a crash; the engine ends it when the API connection closes), the
/// wrapper's process group (the engine makes each exec the leader of its own session) is
/// sent TERM, then KILL 5 s later, so nothing the step started outlives it. The signals go
/// to the group whose id is the wrapper's PID and to no other: if the wrapper leads none,
/// the command alone is stopped. `env` is the exec's environment, not on stdin.
const HELD_IN_CONTAINER: &str = r#"exec 3<&0
/bin/sh -c "$0" < /dev/null &
__boyong_cmd=$!
{ while IFS= read -r __boyong_x; do :; done; trap '' TERM; kill -s TERM -- -$$ || kill -s TERM "$__boyong_cmd"; sleep 5; kill -s KILL -- -$$; } <&3 >/dev/null 2>&1 &
__boyong_watch=$!
exec 3<&-
wait "$__boyong_cmd"
__boyong_status=$?
kill "$__boyong_watch" 2>/dev/null
exit "$__boyong_status""#;

/// The prefix of the wrapper's own variables.
const RESERVED: &str = "__boyong_";

/// The command line and stdin that run `command` with `env` on the vendor host, always
/// through the same `sh`, with or without `env`.
pub(crate) fn remote(
    command: &str,
    env: &[(String, Secret)],
) -> Result<(String, Vec<u8>), StepError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut stdin = Vec::new();
    for (k, v) in env {
        if k.starts_with(RESERVED) {
            return Err(StepError::fatal(format!(
                "`env` name `{k}` is reserved (it starts with `{RESERVED}`)"
            )));
        }
        stdin.extend_from_slice(k.as_bytes());
        stdin.push(b'=');
        stdin.extend_from_slice(b64.encode(v.expose()).as_bytes());
        stdin.push(b'\n');
    }
    stdin.push(b'\n');
    Ok((
        format!("sh -c {} {}", quote(ENV_FROM_STDIN), quote(command)),
        stdin,
    ))
}

fn resolve_env(
    env: &BTreeMap<String, Template>,
    secrets: &SecretStore,
) -> Result<Vec<(String, Secret)>, StepError> {
    env.iter()
        .map(|(k, t)| Ok((k.clone(), t.resolve(secrets).map_err(StepError::Failed)?)))
        .collect()
}

/// Runs `command` on the vendor host, streaming its output as lines; fails on a
/// non-zero exit status.
async fn run_remote(
    live: &Live,
    command: &str,
    env: &[(String, Secret)],
    mut cx: Option<&mut StepCx<'_>>,
) -> Result<(), StepError> {
    let session = live.vendor(cx.as_deref_mut()).await?;
    let (command_line, stdin) = remote(command, env)?;
    let mut run = session
        .exec_held(&command_line, &stdin)
        .await
        .map_err(ssh_err)?;
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut tail: Vec<String> = Vec::new();
    let mut emit = |which: usize, bytes: &[u8], cx: &mut Option<&mut StepCx<'_>>, flush: bool| {
        pending[which].extend_from_slice(bytes);
        while let Some(at) = pending[which].iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = pending[which].drain(..=at).collect();
            let text = String::from_utf8_lossy(&l[..l.len() - 1]).into_owned();
            if let Some(cx) = cx.as_deref_mut() {
                cx.output(&text);
            }
            if which == 1 {
                tail.push(text);
            }
        }
        if flush && !pending[which].is_empty() {
            let text = String::from_utf8_lossy(&pending[which]).into_owned();
            pending[which].clear();
            if let Some(cx) = cx.as_deref_mut() {
                cx.output(&text);
            }
            if which == 1 {
                tail.push(text);
            }
        }
    };
    while let Some(out) = run.next().await {
        match out {
            Out::Stdout(b) => emit(0, &b, &mut cx, false),
            Out::Stderr(b) => emit(1, &b, &mut cx, false),
        }
    }
    emit(0, &[], &mut cx, true);
    emit(1, &[], &mut cx, true);
    match run.exit_status().map_err(ssh_err)? {
        0 => Ok(()),
        code => {
            let last: Vec<String> = tail.iter().rev().take(5).rev().cloned().collect();
            Err(StepError::failed(format!(
                "`{command}` exited with status {code} on the vendor host{}",
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {}", last.join(" / "))
                }
            )))
        }
    }
}

/// Runs the step: its undo is journaled first, then the command.
async fn execute(
    live: &Live,
    step: &PlannedStep,
    e: &Exec,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let change = step
        .changes
        .first()
        .ok_or_else(|| StepError::failed("an exec step lists its command"))?;
    let undo = match &e.undo {
        Some(u) => Undo::VendorCommand { run: u.clone() },
        None => Undo::None,
    };
    let env = resolve_env(&e.env, cx.secrets())?;
    if let ExecOn::Container(name) = &e.on {
        let engine = live.engine().await?;
        if engine
            .container(name)
            .await
            .map_err(docker_err)?
            .is_none_or(|c| !c.running)
        {
            return Err(StepError::fatal(format!(
                "container `{name}` is not running on the target: an `exec` runs inside a running container (made by an earlier `deploy` or `restore`)"
            )));
        }
        let undo = match &e.undo {
            Some(u) => Undo::ContainerCommand {
                container: name.clone(),
                run: u.clone(),
            },
            None => Undo::None,
        };
        let id = cx.intent(change, &undo)?;
        run_in_container(&engine, name, &e.run, &env, Some(cx)).await?;
        let facts = json!({"exit_status": 0});
        cx.done(&id, &facts)?;
        return Ok(facts);
    }
    let id = cx.intent(change, &undo)?;
    run_remote(live, &e.run, &env, Some(cx)).await?;
    let facts = json!({"exit_status": 0});
    cx.done(&id, &facts)?;
    Ok(facts)
}

/// Runs `command` with `/bin/sh -c` inside a running container on the target, `env` in
/// the exec's environment (the API's body, never a command line); its output as lines.
/// Stopped, with everything it started, when this future is dropped ([`HELD_IN_CONTAINER`]).
async fn run_in_container(
    engine: &crate::docker::Docker,
    container: &str,
    command: &str,
    env: &[(String, Secret)],
    cx: Option<&mut StepCx<'_>>,
) -> Result<(), StepError> {
    if let Some((k, _)) = env.iter().find(|(k, _)| k.starts_with(RESERVED)) {
        return Err(StepError::fatal(format!(
            "`env` name `{k}` is reserved (it starts with `{RESERVED}`)"
        )));
    }
    let env: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", v.expose()))
        .collect();
    let cmd = [
        "/bin/sh".to_string(),
        "-c".into(),
        HELD_IN_CONTAINER.into(),
        command.to_string(),
    ];
    // Held: when this future is dropped (the step's time limit), the command is stopped.
    let out = engine
        .exec_held(container, &cmd, &env, 1 << 20)
        .await
        .map_err(docker_err)?;
    if let Some(cx) = cx {
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            cx.output(line);
        }
    }
    if out.code == 0 {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last: Vec<&str> = err
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(StepError::failed(format!(
        "`{command}` exited with status {} in container `{container}`{}",
        out.code,
        if last.is_empty() {
            String::new()
        } else {
            format!(": {}", last.join(" / "))
        }
    )))
}

/// Runs a journaled undo command inside its container, with the step's environment.
pub(super) async fn undo_in_container(
    live: &Live,
    container: &str,
    command: &str,
    env: &BTreeMap<String, Template>,
) -> Result<(), StepError> {
    let env = resolve_env(env, live.secrets())?;
    let engine = live.engine().await?;
    run_in_container(&engine, container, command, &env, None).await
}

/// Runs a journaled undo command, with the step's environment.
pub(super) async fn undo_on_vendor(
    live: &Live,
    command: &str,
    env: &BTreeMap<String, Template>,
) -> Result<(), StepError> {
    let env = resolve_env(env, live.secrets())?;
    run_remote(live, command, &env, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Starts the wrapper locally in a session of its own, as sshd would (the watcher
    /// signals the group), and writes its stdin, which stays open, as over SSH.
    fn start(
        command: &str,
        env: &[(&str, &str)],
    ) -> (std::process::Child, std::process::ChildStdin) {
        let env: Vec<(String, Secret)> = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), Secret::new((*v).to_string())))
            .collect();
        let (line, stdin) = remote(command, &env).expect("builds");
        let mut child = Command::new("setsid")
            .args(["-w", "sh", "-c"])
            .arg(&line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut input = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut input, &stdin).expect("write");
        (child, input)
    }

    /// Runs the wrapper locally to the end: stdout and exit status.
    fn run(command: &str, env: &[(&str, &str)]) -> (String, i32) {
        let (child, input) = start(command, env);
        let out = child.wait_with_output().expect("waits");
        drop(input);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    #[test]
    fn values_arrive_exactly_and_never_on_the_command_line() {
        let odd = "it's \"$(id)\" `x` \\ ; new\nline\n\n";
        let (line, _) = remote("true", &[("V".into(), Secret::new(odd.into()))]).expect("builds");
        assert!(!line.contains("it's"));
        let (out, code) = run("printf '%s|%s' \"$V\" \"$W\"", &[("V", odd), ("W", "")]);
        assert_eq!(code, 0);
        assert_eq!(out, format!("{odd}|"));
    }

    #[test]
    fn a_path_among_the_values_does_not_break_the_others() {
        let (out, code) = run(
            "printf %s \"$TOKEN\"",
            &[("PATH", "/nonexistent"), ("TOKEN", "s3cret")],
        );
        assert_eq!((out.as_str(), code), ("s3cret", 0));
    }

    #[test]
    fn the_wrappers_own_names_are_reserved() {
        let err = remote("true", &[("__boyong_kv".into(), Secret::new("x".into()))])
            .expect_err("refused");
        assert!(err.to_string().contains("reserved"));
        let (out, _) = run(
            "printf '%s %s %s' \"$k\" \"$v\" \"$kv\"",
            &[("k", "1"), ("v", "2"), ("kv", "3")],
        );
        assert_eq!(out, "1 2 3");
    }

    #[test]
    fn in_a_container_the_command_ends_with_its_status_or_is_stopped_when_stdin_ends() {
        // As the engine runs an exec: the leader of its own session, stdin held open.
        let start = |command: &str| {
            let mut child = Command::new("setsid")
                .args(["-w", "sh", "-c", HELD_IN_CONTAINER, command])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("sh");
            let input = child.stdin.take().expect("stdin");
            (child, input)
        };
        let (child, input) = start("echo done; exit 3");
        let out = child.wait_with_output().expect("waits");
        drop(input);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
        assert_eq!(
            out.status.code(),
            Some(3),
            "its own status, stdin still open"
        );

        let (child, input) = start("sleep 30 & sleep 31; echo finished");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let t0 = std::time::Instant::now();
        drop(input);
        let out = child.wait_with_output().expect("waits");
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "not stopped"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("finished"));
    }

    #[test]
    fn when_its_stdin_closes_the_command_and_its_children_are_stopped() {
        let (child, input) = start("sleep 30; echo finished", &[]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let t0 = std::time::Instant::now();
        drop(input);
        let out = child.wait_with_output().expect("waits");
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "not stopped"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("finished"));
    }
}
