//! The probes of many playbooks in few SSH sessions. On a vendor host a session costs far
//! more than the command it runs (0.1 s each on the test machine: the session's set-up,
//! not the command), so commands asked at about the same time are run by one script in one
//! exec channel, each in its own subshell, its stdout, exit status and stderr between
//! markers that carry a random nonce; identical commands run once.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::ssh::{Out, Session};

/// A command's result: `(exit status, stdout)`, or stderr for a failure.
pub(super) type Answer = Result<(u32, String), String>;

type Ask = (String, oneshot::Sender<Answer>);

/// How long the first command of a batch waits for others to join it.
const GATHER: Duration = Duration::from_millis(15);
/// Most commands in one script.
const MOST: usize = 400;
/// Longest wait for one batch's answer.
const LIMIT: Duration = Duration::from_secs(30);

/// Gathers commands for one vendor connection and runs them in batches.
#[derive(Clone)]
pub(super) struct Batcher {
    tx: mpsc::UnboundedSender<Ask>,
}

impl Batcher {
    /// A batcher on `session`, at most `channels` batches in flight.
    pub(super) fn start(session: Arc<Session>, channels: Arc<Semaphore>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Ask>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                tokio::time::sleep(GATHER).await;
                while batch.len() < MOST {
                    match rx.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                let (session, channels) = (Arc::clone(&session), Arc::clone(&channels));
                tokio::spawn(async move {
                    let _permit = channels.acquire().await;
                    run(&session, batch).await;
                });
            }
        });
        Self { tx }
    }

    /// Runs `command` (in a batch) and waits for its answer.
    pub(super) async fn ask(&self, command: &str) -> Answer {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((command.to_string(), tx))
            .map_err(|_| "the probe pool closed".to_string())?;
        rx.await.map_err(|_| "the probe pool closed".to_string())?
    }
}

/// The script that runs `commands`, each marked with `nonce`.
fn script(nonce: &str, commands: &[&str]) -> String {
    let mut s = String::from("exec 3>&1\n");
    for (i, c) in commands.iter().enumerate() {
        let _ = write!(
            s,
            "printf '\\n{nonce} {i} out\\n'\n__e=$( ( {c}\n) 2>&1 >&3 ); __s=$?\nprintf '\\n{nonce} {i} status %d\\n' \"$__s\"\nprintf '%s\\n' \"$__e\" | head -c 65536\nprintf '\\n{nonce} {i} end\\n'\n"
        );
    }
    s
}

/// Each command's answer from the script's output.
fn parse(nonce: &str, n: usize, out: &str) -> Vec<Answer> {
    let mut answers: Vec<Answer> = (0..n)
        .map(|_| Err("the vendor host's shell stopped before this probe ran".to_string()))
        .collect();
    for (i, answer) in answers.iter_mut().enumerate() {
        let (o, st, en) = (
            format!("\n{nonce} {i} out\n"),
            format!("\n{nonce} {i} status "),
            format!("\n{nonce} {i} end\n"),
        );
        let Some(a) = out.find(&o) else { continue };
        let body = &out[a + o.len()..];
        let Some(b) = body.find(&st) else { continue };
        let stdout = &body[..b];
        let rest = &body[b + st.len()..];
        let Some((code, rest)) = rest.split_once('\n') else {
            continue;
        };
        let Ok(code) = code.trim().parse::<u32>() else {
            continue;
        };
        let stderr = rest.find(&en).map_or(rest, |e| &rest[..e]);
        *answer = Ok((
            code,
            if code == 0 {
                stdout.to_string()
            } else {
                stderr.trim().to_string()
            },
        ));
    }
    answers
}

async fn run(session: &Session, batch: Vec<Ask>) {
    let mut unique: Vec<&str> = Vec::new();
    for (c, _) in &batch {
        if !unique.contains(&c.as_str()) {
            unique.push(c);
        }
    }
    let nonce = format!(
        "boyong-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let text = script(&nonce, &unique);
    let answers = match tokio::time::timeout(LIMIT, exec(session, &text)).await {
        Ok(Ok(out)) => parse(&nonce, unique.len(), &out),
        Ok(Err(e)) => vec![Err(e); unique.len()],
        Err(_) => vec![Err(format!("no answer within {}s", LIMIT.as_secs())); unique.len()],
    };
    let index: Vec<usize> = batch
        .iter()
        .map(|(c, _)| unique.iter().position(|u| u == c).unwrap_or(0))
        .collect();
    for ((_, tx), i) in batch.into_iter().zip(index) {
        let _ = tx.send(
            answers
                .get(i)
                .cloned()
                .unwrap_or_else(|| Err("no answer".into())),
        );
    }
}

/// The script's whole stdout (bounded), the script sent on stdin to `sh -s`.
async fn exec(session: &Session, script: &str) -> Result<String, String> {
    let mut e = session
        .exec("sh -s", Some(script.as_bytes()))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(o) = e.next().await {
        if let Out::Stdout(b) = o
            && out.len() < 64 << 20
        {
            out.extend_from_slice(&b);
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script through a real `sh`, as the vendor host runs it.
    fn through_sh(commands: &[&str]) -> Vec<Answer> {
        use std::io::Write as _;
        let nonce = "boyong-test";
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script(nonce, commands).as_bytes())
            .expect("writes");
        let out = child.wait_with_output().expect("runs");
        parse(nonce, commands.len(), &String::from_utf8_lossy(&out.stdout))
    }

    #[test]
    fn each_command_gets_its_own_stdout_status_and_stderr() {
        let a = through_sh(&[
            "echo one; echo two >&2",
            "echo 'it''s' \"$HOME\" >/dev/null; printf 'x\\ny'",
            "echo bad >&2; exit 3",
            "cd /nonexistent-boyong",
        ]);
        assert_eq!(a[0], Ok((0, "one\n".to_string())));
        assert_eq!(a[1], Ok((0, "x\ny".to_string())));
        assert_eq!(a[2], Ok((3, "bad".to_string())));
        assert!(
            matches!(&a[3], Ok((c, e)) if *c != 0 && e.contains("nonexistent")),
            "{a:?}"
        );
    }

    #[test]
    fn a_missing_section_is_an_error_not_a_wrong_answer() {
        let a = parse("n", 2, "\nn 0 out\nhello\nn 0 status 0\n\nn 0 end\n");
        assert_eq!(a[0], Ok((0, "hello".to_string())));
        assert!(a[1].is_err());
    }
}
