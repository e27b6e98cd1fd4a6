//! Images made without the legacy builder: a container created from the base (never
//! started), the app's files streamed into it through the archive endpoint, committed
//! with the image's configuration in one call. One layer, no container per metadata
//! instruction (the legacy builder starts one for every `LABEL`, `USER`, `EXPOSE`, `CMD`).

use std::collections::HashMap;
use std::io::Read as _;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};

use super::containers::api;
use super::{Docker, DockerError};

/// The configuration a committed image gets on top of its base's (the engine merges
/// them as a Dockerfile would: env and labels added, the rest replaced when given).
pub struct ImageConfig {
    /// Labels.
    pub labels: HashMap<String, String>,
    /// `USER`.
    pub user: Option<String>,
    /// `ENV`, as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `EXPOSE`, as `PORT/tcp`.
    pub expose: Vec<String>,
    /// `WORKDIR`.
    pub workdir: Option<String>,
    /// `ENTRYPOINT`; `None`: the base's (set by `commit_build` after a `run`).
    pub entrypoint: Option<Vec<String>>,
    /// `RUN`: commands run once in the helper, in order, before the commit.
    pub run: Vec<String>,
}

/// `name[:tag]` as (repository, tag); the tag `latest` when none is given.
fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// Runs each `run` command in its own `/bin/sh -c`, in order, stopping at the first that
/// fails with its status: what a Dockerfile's `RUN` lines do, one after the other.
const RUN_EACH: &str = r#"for c in "$@"; do /bin/sh -c "$c" || exit $?; done"#;

/// The last lines of a `run`'s output kept for its error.
const TAIL_LINES: usize = 20;

/// How long a `run`'s output may stay silent once its helper has exited before the follow
/// is given up for a plain read of the rest ([`Docker::run_commands`]).
const LOGS_AFTER_EXIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A helper's output followed (`follow`, each piece given to `lines`) while its exit is
/// awaited (`wait`); its exit as the wait answered (`None`: no answer). Once it has exited,
/// a follow silent for `after_exit` is given up and what `rest` gives (the whole output,
/// not followed) past the bytes already seen is fed instead: the engine may keep a follow
/// open after the exit (Podman does), and a build must not wait on it.
async fn follow_to_exit<L, W, R, Rs>(
    follow: L,
    wait: W,
    rest: R,
    lines: &mut Lines<'_>,
    after_exit: std::time::Duration,
) -> Option<Result<bollard::models::ContainerWaitResponse, bollard::errors::Error>>
where
    L: Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>,
    W: Stream<Item = Result<bollard::models::ContainerWaitResponse, bollard::errors::Error>>,
    R: FnOnce() -> Rs,
    Rs: Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>,
{
    let (mut follow, mut wait) = (std::pin::pin!(follow), std::pin::pin!(wait));
    let mut seen = 0usize;
    let mut exit = None;
    let complete = loop {
        tokio::select! {
            chunk = follow.next() => if let Some(Ok(chunk)) = chunk {
                let bytes = chunk.into_bytes();
                seen += bytes.len();
                lines.feed(&bytes);
            } else {
                break true;
            },
            w = wait.next(), if exit.is_none() => exit = Some(w),
            () = tokio::time::sleep(after_exit), if exit.is_some() => break false,
        }
    };
    let exit = match exit {
        Some(w) => w,
        None => wait.next().await,
    };
    if !complete {
        let mut rest = std::pin::pin!(rest());
        let mut skip = seen;
        while let Some(Ok(chunk)) = rest.next().await {
            let bytes = chunk.into_bytes();
            let from = skip.min(bytes.len());
            skip -= from;
            lines.feed(&bytes[from..]);
        }
    }
    exit
}

/// A `run`'s output cut into lines, each given to `on_line` as it ends, the last
/// [`TAIL_LINES`] kept for an error.
struct Lines<'a> {
    on_line: &'a mut (dyn FnMut(&str) + Send),
    partial: String,
    tail: std::collections::VecDeque<String>,
}

impl<'a> Lines<'a> {
    fn new(on_line: &'a mut (dyn FnMut(&str) + Send)) -> Self {
        Self {
            on_line,
            partial: String::new(),
            tail: std::collections::VecDeque::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.partial.push_str(&String::from_utf8_lossy(bytes));
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end().to_string());
        }
    }

    fn line(&mut self, line: String) {
        (self.on_line)(&line);
        self.tail.push_back(line);
        if self.tail.len() > TAIL_LINES {
            self.tail.pop_front();
        }
    }

    /// The last line (one with no newline at its end) given too; the tail kept.
    fn finish(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(last.trim_end().to_string());
        }
        self.tail.into_iter().collect()
    }
}

impl Docker {
    /// Makes `tag` from `base`: the container `helper`, `files` (a tar whose entries are
    /// paths from `/`, owners and modes as they are) uploaded into it; with `run`, the
    /// container is started once to run the commands in order (as the base's user, in
    /// its working directory, on the default network, each line of output given to
    /// `on_line`), and must exit 0; then it is committed with `config` and removed.
    /// Returns the image id.
    ///
    /// # Errors
    /// A command that failed (its status and last lines), or an API error (the helper is
    /// removed whatever happened).
    pub async fn commit_build(
        &self,
        base: &str,
        helper: &str,
        tag: &str,
        files: impl Stream<Item = Bytes> + Send + 'static,
        mut config: ImageConfig,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<String, DockerError> {
        self.remove_container(helper).await?;
        let run = std::mem::take(&mut config.run);
        let from = self.docker.inspect_image(base).await.map_err(api)?;
        let base_config = from.config.unwrap_or_default();
        let mut body = helper_body(base, &config.labels);
        if !run.is_empty() {
            let mut cmd = vec!["/bin/sh".into(), "-c".into(), RUN_EACH.into(), "sh".into()];
            cmd.extend(run.iter().cloned());
            body.cmd = Some(cmd);
            body.entrypoint = Some(Vec::new());
            // The commit keeps what the container was made with unless told: the base's
            // own command and entry point, unless the playbook gives a command.
            config.cmd = config.cmd.or(base_config.cmd);
            config.entrypoint = Some(base_config.entrypoint.unwrap_or_default());
        }
        self.make_helper(helper, body).await?;
        let made = async {
            // A big tree takes long: no request time limit for the transfer itself.
            let docker = self
                .docker
                .clone()
                .with_timeout(std::time::Duration::from_secs(7 * 24 * 3600));
            docker
                .upload_to_container(
                    helper,
                    Some(
                        bollard::query_parameters::UploadToContainerOptionsBuilder::new()
                            .path("/")
                            .build(),
                    ),
                    bollard::body_stream(files),
                )
                .await
                .map_err(|e| DockerError::Build(format!("uploading the app's files: {e}")))?;
            if !run.is_empty() {
                self.run_commands(&docker, helper, on_line).await?;
            }
            let (repo, t) = split_tag(tag);
            let mut options = bollard::query_parameters::CommitContainerOptionsBuilder::new()
                .container(helper)
                .repo(repo)
                .tag(t)
                .pause(false);
            // Podman's compatible API ignores the commit's body: the same configuration
            // as Dockerfile lines (`changes`), which it applies.
            if self.podman {
                options = options.changes(&changes(&config));
            }
            let image = bollard::models::ContainerConfig {
                labels: Some(config.labels),
                user: config.user,
                env: (!config.env.is_empty()).then_some(config.env),
                cmd: config.cmd,
                entrypoint: config.entrypoint,
                exposed_ports: (!config.expose.is_empty()).then_some(config.expose),
                working_dir: config.workdir,
                ..bollard::models::ContainerConfig::default()
            };
            let options = options.build();
            self.change(format!("commit image {tag}"), |docker| async move {
                docker
                    .commit_container(options, image)
                    .await
                    .map(|c| c.id)
                    .map_err(|e| DockerError::Build(format!("committing the image: {e}")))
            })
            .await
        }
        .await;
        self.remove_container(helper).await?;
        made
    }

    /// Starts `helper`, follows its output to the end, and checks its exit status.
    ///
    /// The output is followed while the exit is awaited. Once the helper has exited, a
    /// follow that stays silent for [`LOGS_AFTER_EXIT`] is given up and the rest of the
    /// output read without following: Podman's compatible API can keep a follow open
    /// forever on a container that exits while it starts (a one-line `run` does), which
    /// held a build, and the run, until CI's own limit.
    async fn run_commands(
        &self,
        docker: &bollard::Docker,
        helper: &str,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), DockerError> {
        self.start(helper).await?;
        let options = |follow: bool| {
            bollard::query_parameters::LogsOptionsBuilder::new()
                .follow(follow)
                .stdout(true)
                .stderr(true)
                .build()
        };
        let mut lines = Lines::new(on_line);
        let exit = follow_to_exit(
            docker.logs(helper, Some(options(true))),
            docker.wait_container(
                helper,
                None::<bollard::query_parameters::WaitContainerOptions>,
            ),
            || docker.logs(helper, Some(options(false))),
            &mut lines,
            LOGS_AFTER_EXIT,
        )
        .await;
        let tail = lines.finish();
        let code = match exit {
            Some(Ok(w)) => w.status_code,
            // The engine reports a non-zero exit as an error of the wait.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(api(e)),
            None => -1,
        };
        if code != 0 {
            return Err(DockerError::Build(format!(
                "a `run` command exited with status {code}{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", tail.join(" | "))
                }
            )));
        }
        Ok(())
    }

    /// The numeric `uid:gid` of `owner` (`name[:group]`, names or ids) in `base`, read
    /// from its `/etc/passwd` and `/etc/group` through the never-started container
    /// `helper` (then removed): what `COPY --chown` would look up.
    ///
    /// # Errors
    /// A name the base image does not know, or an API error.
    pub async fn owner_ids(
        &self,
        base: &str,
        helper: &str,
        owner: &str,
    ) -> Result<(u64, u64), DockerError> {
        self.remove_container(helper).await?;
        self.make_helper(helper, helper_body(base, &HashMap::new()))
            .await?;
        let read = async {
            let passwd = self.file_of(helper, "/etc/passwd").await?;
            let group = self.file_of(helper, "/etc/group").await.unwrap_or_default();
            ids(owner, &passwd, &group).map_err(DockerError::Build)
        }
        .await;
        self.remove_container(helper).await?;
        read
    }

    /// One small file of a container (at most 1 MiB), through the archive endpoint.
    async fn file_of(&self, container: &str, path: &str) -> Result<String, DockerError> {
        let mut stream = self.docker.download_from_container(
            container,
            Some(
                bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
                    .path(path)
                    .build(),
            ),
        );
        let mut tar_bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            tar_bytes.extend_from_slice(&chunk.map_err(api)?);
            if tar_bytes.len() > 2 << 20 {
                return Err(DockerError::Build(format!("{path} is too large")));
            }
        }
        let mut ar = tar::Archive::new(tar_bytes.as_slice());
        let mut out = String::new();
        let entries = ar
            .entries()
            .map_err(|e| DockerError::Build(format!("{path}: {e}")))?;
        for e in entries {
            let mut e = e.map_err(|e| DockerError::Build(format!("{path}: {e}")))?;
            if e.header().entry_type().is_file() {
                std::io::Read::by_ref(&mut e)
                    .take(1 << 20)
                    .read_to_string(&mut out)
                    .map_err(|e| DockerError::Build(format!("{path}: {e}")))?;
                break;
            }
        }
        Ok(out)
    }
}

/// The helper a build is made in: the base, labelled, hardened as far as a build allows
/// (no new privileges, bounded memory and processes, small logs); its root writable.
fn helper_body(base: &str, labels: &HashMap<String, String>) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(base.to_string()),
        labels: Some(labels.clone()),
        host_config: Some(HostConfig {
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            memory: Some(2 << 30),
            pids_limit: Some(1024),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".to_string(), "10m".to_string()),
                    ("max-file".to_string(), "1".to_string()),
                ])),
            }),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

/// `config` as the Dockerfile lines of a commit's `changes`, one a line: what Podman's
/// compatible API applies (it reads one `KEY=VALUE` an `ENV` or `LABEL` line, the rest of
/// the line as the value; the values were checked to be one line each). What is `None`
/// stays the helper container's, as Docker's commit keeps it.
fn changes(config: &ImageConfig) -> String {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let mut lines = Vec::new();
    let mut labels: Vec<_> = config.labels.iter().collect();
    labels.sort();
    for (k, v) in labels {
        lines.push(format!("LABEL {k}={v}"));
    }
    for kv in &config.env {
        lines.push(format!("ENV {kv}"));
    }
    if let Some(u) = &config.user {
        lines.push(format!("USER {u}"));
    }
    if let Some(w) = &config.workdir {
        lines.push(format!("WORKDIR {w}"));
    }
    for p in &config.expose {
        lines.push(format!("EXPOSE {p}"));
    }
    if let Some(e) = &config.entrypoint {
        lines.push(format!("ENTRYPOINT {}", json(e)));
    }
    if let Some(c) = &config.cmd {
        lines.push(format!("CMD {}", json(c)));
    }
    lines.join("\n")
}

/// `name[:group]` as numbers, from the texts of `/etc/passwd` and `/etc/group`; a group
/// not given is the user's own primary group.
fn ids(owner: &str, passwd: &str, group: &str) -> Result<(u64, u64), String> {
    let (u, g) = owner
        .split_once(':')
        .map_or((owner, None), |(u, g)| (u, Some(g)));
    let find = |text: &str, name: &str| {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name) && f.len() >= 3)
                .then(|| f.iter().map(ToString::to_string).collect::<Vec<_>>())
        })
    };
    let (uid, primary) = if let Ok(n) = u.parse::<u64>() {
        (n, None)
    } else {
        let f = find(passwd, u)
            .ok_or_else(|| format!("the base image has no user `{u}` in /etc/passwd"))?;
        let uid = f[2]
            .parse()
            .map_err(|_| format!("user `{u}` has no numeric id"))?;
        (uid, f.get(3).and_then(|g| g.parse::<u64>().ok()))
    };
    let gid = match g {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => find(group, g)
                .ok_or_else(|| format!("the base image has no group `{g}` in /etc/group"))?[2]
                .parse()
                .map_err(|_| format!("group `{g}` has no numeric id"))?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::{Lines, TAIL_LINES, follow_to_exit, ids, split_tag};
    use bollard::container::LogOutput;
    use bollard::models::ContainerWaitResponse;
    use futures_util::{StreamExt as _, stream};
    use std::time::Duration;

    #[allow(
        clippy::unnecessary_wraps,
        reason = "the item of an engine's stream, as the fakes give it"
    )]
    fn out(s: &str) -> Result<LogOutput, bollard::errors::Error> {
        Ok(LogOutput::StdOut {
            message: bytes::Bytes::copy_from_slice(s.as_bytes()),
        })
    }

    #[allow(
        clippy::unnecessary_wraps,
        reason = "the item of an engine's stream, as the fakes give it"
    )]
    fn exited(code: i64) -> Result<ContainerWaitResponse, bollard::errors::Error> {
        Ok(ContainerWaitResponse {
            status_code: code,
            error: None,
        })
    }

    #[tokio::test]
    async fn a_follow_left_open_after_the_exit_is_given_up_and_the_rest_read_once() {
        let mut got = Vec::new();
        let mut on_line = |l: &str| got.push(l.to_string());
        let mut lines = Lines::new(&mut on_line);
        // The follow gives "one\ntw" and then stays open for ever, as Podman's can.
        let follow = stream::iter([out("one\n"), out("tw")]).chain(stream::pending());
        let wait = stream::iter([exited(3)]);
        let rest = || stream::iter([out("one\ntwo\n"), out("three\n")]);
        let exit = tokio::time::timeout(
            Duration::from_secs(10),
            follow_to_exit(follow, wait, rest, &mut lines, Duration::from_millis(50)),
        )
        .await
        .expect("not held by the open follow");
        assert_eq!(exit.map(|w| w.map(|w| w.status_code).ok()), Some(Some(3)));
        let tail = lines.finish();
        assert_eq!(got, ["one", "two", "three"], "each line once, none lost");
        assert_eq!(tail, ["one", "two", "three"]);
    }

    #[tokio::test]
    async fn a_follow_that_ends_is_read_to_its_end_and_the_rest_never_asked() {
        let mut got = Vec::new();
        let mut on_line = |l: &str| got.push(l.to_string());
        let mut lines = Lines::new(&mut on_line);
        // The exit is answered first; the follow still has output after it, slowly.
        let follow = stream::iter([out("a\n"), out("b\n")]).then(|c| async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            c
        });
        let wait = stream::iter([exited(0)]);
        let exit = follow_to_exit(
            follow,
            wait,
            || -> stream::Iter<std::vec::IntoIter<Result<LogOutput, bollard::errors::Error>>> {
                panic!("the rest is not read when the follow ends")
            },
            &mut lines,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(exit.map(|w| w.map(|w| w.status_code).ok()), Some(Some(0)));
        drop(lines);
        assert_eq!(got, ["a", "b"]);
    }

    #[tokio::test]
    async fn a_follow_that_ends_first_still_waits_for_the_exit() {
        let mut on_line = |_: &str| {};
        let mut lines = Lines::new(&mut on_line);
        let wait = stream::iter([exited(7)]).then(|w| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            w
        });
        let exit = follow_to_exit(
            stream::iter([out("x\n")]),
            wait,
            || stream::iter(Vec::new()),
            &mut lines,
            Duration::from_millis(10),
        )
        .await;
        assert_eq!(exit.map(|w| w.map(|w| w.status_code).ok()), Some(Some(7)));
    }

    #[test]
    fn output_in_pieces_comes_out_as_lines_and_the_tail_keeps_the_last() {
        let mut got = Vec::new();
        let mut on_line = |l: &str| got.push(l.to_string());
        let mut lines = Lines::new(&mut on_line);
        lines.feed(b"one\ntw");
        lines.feed(b"o\r\n");
        for i in 0..TAIL_LINES {
            lines.feed(format!("n{i}\n").as_bytes());
        }
        lines.feed(b"no newline");
        let tail = lines.finish();
        assert_eq!(got[..2], ["one", "two"]);
        assert_eq!(got.len(), TAIL_LINES + 3);
        assert_eq!(got.last().map(String::as_str), Some("no newline"));
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.first().map(String::as_str), Some("n1"));
        assert_eq!(tail.last().map(String::as_str), Some("no newline"));
    }

    #[test]
    fn owners_by_name_are_looked_up_as_copy_chown_would() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\napp:x:1001:2002::/home/app:/bin/sh\n";
        let group = "root:x:0:\nwww-data:x:33:\nstaff:x:50:\n";
        assert_eq!(ids("www-data", passwd, group), Ok((33, 33)));
        assert_eq!(ids("app", passwd, group), Ok((1001, 2002)));
        assert_eq!(ids("www-data:staff", passwd, group), Ok((33, 50)));
        assert_eq!(ids("33:33", "", ""), Ok((33, 33)));
        assert_eq!(ids("1000", "", ""), Ok((1000, 1000)));
        assert!(
            ids("nobody", passwd, group)
                .unwrap_err()
                .contains("no user `nobody`")
        );
        assert!(
            ids("app:wheel", passwd, group)
                .unwrap_err()
                .contains("no group `wheel`")
        );
    }

    #[test]
    fn tags_split_at_the_last_colon_after_the_last_slash() {
        assert_eq!(
            split_tag("boyong/situs-image:2026"),
            ("boyong/situs-image", "2026")
        );
        assert_eq!(split_tag("reg:5000/a/b"), ("reg:5000/a/b", "latest"));
        assert_eq!(split_tag("reg:5000/a/b:1"), ("reg:5000/a/b", "1"));
    }
}
