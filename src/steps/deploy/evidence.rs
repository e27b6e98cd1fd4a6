//! What a failed health gate leaves behind: `RUN/health/STEP.json` (for `boyong report`)
//! and `RUN/health/STEP.txt` (for a person), made of the container's state, the last
//! [`LOG_LINES`] lines of its logs (at most [`LOG_BYTES`]), and the last answer of an HTTP
//! check (status line, headers, the body's first KiB, where a redirect points); and
//! the few lines of it that the step's error shows.
//!
//! Invariants: every text passes through the run's redactor before it is written (an
//! app's log may print its own environment); the files are mode 0600 in a 0700
//! directory, as the rest of the state directory; evidence that cannot be gathered or
//! written never hides the health failure itself (it is said instead).

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use serde::Serialize;

use super::health::{Answer, Unhealthy};
use crate::docker::Docker;
use crate::engine::StepCx;

/// Log lines kept.
pub(super) const LOG_LINES: usize = 200;
/// Log bytes kept (the newest).
pub(super) const LOG_BYTES: usize = 64 * 1024;
/// Log lines the step's error shows.
const LOG_LINES_SHOWN: usize = 5;

/// The evidence of one failed health gate (`health/STEP.json`).
#[derive(Debug, Clone, Serialize)]
pub(super) struct Evidence {
    /// The step.
    pub step: String,
    /// The run.
    pub run: String,
    /// The container as it was checked (`NAME.next-RUN`).
    pub container: String,
    /// What became of it: kept stopped under this name (`--no-auto-rollback`), or `None`:
    /// removed.
    pub kept_as: Option<String>,
    /// Why the gate failed.
    pub reason: String,
    /// How the container stood when the gate gave up.
    pub state: Option<String>,
    /// The last answer of an HTTP check.
    pub answer: Option<Answer>,
    /// The last lines of its logs, oldest first.
    pub logs: Vec<String>,
    /// Whether older lines were dropped for the byte limit.
    pub logs_truncated: bool,
    /// Why the logs could not be read, if so.
    pub logs_error: Option<String>,
}

impl Evidence {
    /// Gathers what `container` shows now, redacted.
    pub(super) async fn gather(
        engine: &Docker,
        container: &str,
        why: &Unhealthy,
        cx: &StepCx<'_>,
    ) -> Self {
        let (logs, logs_truncated, logs_error) =
            match engine.log_tail(container, LOG_LINES, LOG_BYTES).await {
                Ok(t) => (
                    t.lines.iter().map(|l| cx.redact(l)).collect(),
                    t.truncated,
                    None,
                ),
                Err(e) => (Vec::new(), false, Some(e.to_string())),
            };
        let answer = why.answer.clone().map(|a| Answer {
            url: cx.redact(&a.url),
            status_line: cx.redact(&a.status_line),
            headers: a.headers.iter().map(|h| cx.redact(h)).collect(),
            body: cx.redact(&a.body),
            location: a.location.map(|l| cx.redact(&l)),
            ..a
        });
        Self {
            step: cx.step().to_string(),
            run: cx.run_id().to_string(),
            container: container.to_string(),
            kept_as: None,
            reason: cx.redact(&why.reason),
            state: engine.state_words(container).await.ok().flatten(),
            answer,
            logs,
            logs_truncated,
            logs_error,
        }
    }

    /// The evidence for a person.
    pub(super) fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "The health check of step `{}` (run {}) failed.\n\nwhy: {}\ncontainer: {} ({})",
            self.step,
            self.run,
            self.reason,
            self.container,
            self.state.as_deref().unwrap_or("gone")
        );
        let _ = match &self.kept_as {
            Some(name) => writeln!(
                s,
                "kept, stopped, as: {name} (`docker logs {name}`, `docker start {name}`; `boyong rollback` removes it)"
            ),
            None => writeln!(s, "removed after this evidence was taken"),
        };
        match &self.answer {
            Some(a) => {
                let _ = writeln!(s, "\n== the last answer to GET {}", a.url);
                let _ = writeln!(s, "{}", a.status_line);
                for h in &a.headers {
                    let _ = writeln!(s, "{h}");
                }
                let _ = writeln!(
                    s,
                    "\n{}{}",
                    a.body,
                    if a.body_truncated {
                        "\n[… the rest of the body is not kept]"
                    } else {
                        ""
                    }
                );
            }
            None => s.push_str("\n== no HTTP answer was received\n"),
        }
        let _ = writeln!(
            s,
            "\n== the last {} line(s) of its logs (stdout and stderr{})",
            self.logs.len(),
            if self.logs_truncated {
                "; older lines dropped to keep 64 KiB"
            } else {
                ""
            }
        );
        if let Some(e) = &self.logs_error {
            let _ = writeln!(s, "(the logs could not be read: {e})");
        }
        for l in &self.logs {
            let _ = writeln!(s, "{l}");
        }
        s
    }

    /// The few lines of it for the step's error: the last answer's status line, the last
    /// log lines, and where the rest is.
    pub(super) fn brief(&self, files: &str) -> String {
        let mut lines = Vec::new();
        if let Some(a) = &self.answer {
            let to = a
                .location
                .as_ref()
                .map(|l| format!(" -> {l}"))
                .unwrap_or_default();
            lines.push(format!("last answer: {}{to}", a.status_line));
        }
        let from = self.logs.len().saturating_sub(LOG_LINES_SHOWN);
        if self.logs.is_empty() {
            lines.push("its logs are empty".into());
        } else {
            lines.push(format!("its last {} log line(s):", self.logs.len() - from));
            lines.extend(
                self.logs[from..]
                    .iter()
                    .map(|l| format!("  | {}", crate::escape::controls(l))),
            );
        }
        lines.push(format!("evidence: {files}"));
        lines.join("\n")
    }

    /// Writes `health/STEP.json` and `health/STEP.txt` in `run_dir`; their paths relative
    /// to it, and the text file's SHA-256.
    pub(super) fn write(&self, run_dir: &Path) -> std::io::Result<(Vec<String>, String)> {
        let dir = run_dir.join("health");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let text = self.text();
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let mut rel = Vec::new();
        for (ext, bytes) in [("json", json.as_bytes()), ("txt", text.as_bytes())] {
            let name = format!("{}.{ext}", self.step);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(dir.join(&name))?;
            f.write_all(bytes)?;
            f.sync_all()?;
            rel.push(format!("health/{name}"));
        }
        let sha = crate::digest::hex(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
        Ok((rel, sha))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(logs: usize) -> Evidence {
        Evidence {
            step: "app".into(),
            run: "20261123T104251Z-5f1b".into(),
            container: "web.next-20261123T104251Z-5f1b".into(),
            kept_as: Some("web.failed-20261123T104251Z-5f1b".into()),
            reason: "not healthy within 4s (5 check(s)): GET http://127.0.0.1:8080/ answered 302 (a redirect to http://vendor.example/), expected 200".into(),
            state: Some("running".into()),
            answer: Some(Answer {
                url: "http://127.0.0.1:8080/".into(),
                status_line: "HTTP/1.1 302 Found".into(),
                status: Some(302),
                headers: vec!["Location: http://vendor.example/".into()],
                body: "moved".into(),
                body_truncated: false,
                location: Some("http://vendor.example/".into()),
            }),
            logs: (1..=logs).map(|i| format!("log line {i}")).collect(),
            logs_truncated: false,
            logs_error: None,
        }
    }

    #[test]
    fn the_error_shows_the_answer_and_the_last_few_log_lines() {
        let b = evidence(8).brief("health/app.txt");
        assert_eq!(
            b,
            "last answer: HTTP/1.1 302 Found -> http://vendor.example/\nits last 5 log line(s):\n  | log line 4\n  | log line 5\n  | log line 6\n  | log line 7\n  | log line 8\nevidence: health/app.txt"
        );
        assert!(evidence(0).brief("f").contains("its logs are empty"));
    }

    #[test]
    fn the_files_are_private_and_hold_everything() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (files, sha) = evidence(3).write(dir.path()).unwrap();
        assert_eq!(files, ["health/app.json", "health/app.txt"]);
        let text = std::fs::read_to_string(dir.path().join("health/app.txt")).unwrap();
        assert_eq!(sha.len(), 64);
        for want in [
            "HTTP/1.1 302 Found",
            "Location: http://vendor.example/",
            "moved",
            "log line 3",
            "kept, stopped, as: web.failed-",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("health/app.json")).unwrap())
                .unwrap();
        assert_eq!(json["answer"]["status"], 302);
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("health"), mode("health/app.txt")), (0o700, 0o600));
    }
}
