//! What a container said and how it ended: the tail of its logs (bounded in lines and
//! bytes) and its state, for the evidence a failed health check leaves.

use futures_util::StreamExt as _;

use super::containers::{api, not_found};
use super::{Docker, DockerError};

/// A container's logs, the last lines of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTail {
    /// The lines, oldest first (stdout and stderr interleaved as the engine kept them),
    /// without their line ends; invalid UTF-8 replaced.
    pub lines: Vec<String>,
    /// Whether lines were dropped to keep within the byte limit.
    pub truncated: bool,
}

impl Docker {
    /// The last `lines` lines of `name`'s logs (stdout and stderr), at most `max_bytes`
    /// of them (older lines dropped first). A container that is gone has none.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn log_tail(
        &self,
        name: &str,
        lines: usize,
        max_bytes: usize,
    ) -> Result<LogTail, DockerError> {
        let opts = bollard::query_parameters::LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(name, Some(opts));
        let mut bytes: Vec<u8> = Vec::new();
        let mut truncated = false;
        while let Some(item) = stream.next().await {
            let message = match item {
                Ok(out) => out.into_bytes(),
                Err(e) if not_found(&e) => return Ok(LogTail::default()),
                Err(e) => return Err(api(e)),
            };
            bytes.extend_from_slice(&message);
            if bytes.len() > max_bytes {
                // Keep the newest bytes, from a line's start.
                let cut = bytes.len() - max_bytes;
                let start = bytes[cut..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| cut + p + 1);
                bytes.drain(..start);
                truncated = true;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        Ok(LogTail {
            lines: text.lines().map(str::to_owned).collect(),
            truncated,
        })
    }

    /// How `name` stands, in a few words: `running`, `exited with status 1`,
    /// `exited with status 137 (killed: out of memory)`; `None` when it is gone.
    ///
    /// # Errors
    /// An API error other than "not found".
    pub async fn state_words(&self, name: &str) -> Result<Option<String>, DockerError> {
        let c = match self.inspect(name).await {
            Ok(c) => c,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(api(e)),
        };
        let Some(s) = c.state else {
            return Ok(Some("unknown".into()));
        };
        if s.running == Some(true) {
            return Ok(Some("running".into()));
        }
        let mut words = format!("exited with status {}", s.exit_code.unwrap_or(-1));
        if s.oom_killed == Some(true) {
            words.push_str(" (killed: out of memory)");
        }
        if let Some(e) = s.error.filter(|e| !e.is_empty()) {
            words = format!("{words} ({e})");
        }
        Ok(Some(words))
    }
}
