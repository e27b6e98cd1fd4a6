//! The real engine for tests: the Docker Engine, or Podman's Docker-compatible service
//! (`fixtures/podman.sh`) for a test binary that asks for it ([`use_podman`]) or when
//! `BOYONG_TEST_ENGINE=podman`; availability, the busybox base image, and cleanup of
//! everything a test made (found by its unique `boyong.test` label), pass or fail.
//!
//! The tests drive either engine with the `docker` CLI pointed at its socket (`-H`), and
//! give boyong the same socket (`target.docker`, [`target_yaml`]). Podman 4's service
//! answers the Docker CLI, except an attached `run` and `commit` (`podman --remote` does
//! those, [`podman_cli`]).

use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Which engine the tests of this process drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The Docker Engine at `/var/run/docker.sock`.
    Docker,
    /// Podman's service started by `fixtures/podman.sh`.
    Podman,
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

/// The engine: as [`use_podman`] set it, else `BOYONG_TEST_ENGINE` (`docker`, `podman`).
pub fn engine() -> Engine {
    *ENGINE.get_or_init(|| match std::env::var("BOYONG_TEST_ENGINE").as_deref() {
        Ok("podman") => Engine::Podman,
        _ => Engine::Docker,
    })
}

/// This process's tests drive Podman (a test binary of Podman's calls it first).
pub fn use_podman() {
    let set = *ENGINE.get_or_init(|| Engine::Podman);
    assert_eq!(set, Engine::Podman, "this process already drives Docker");
}

/// The engine's socket.
pub fn socket() -> String {
    match engine() {
        Engine::Docker => "/var/run/docker.sock".into(),
        Engine::Podman => std::env::var("BOYONG_PODMAN_SOCKET")
            .unwrap_or_else(|_| "/run/boyong-podman/podman.sock".into()),
    }
}

/// The playbook's `target:` line for the engine (Docker's socket is the default).
pub fn target_yaml() -> String {
    match engine() {
        Engine::Docker => String::new(),
        Engine::Podman => format!("target: {{ docker: \"unix://{}\" }}\n", socket()),
    }
}

/// The `docker` CLI on the engine.
pub fn cli() -> Command {
    let mut c = Command::new("docker");
    if engine() == Engine::Podman {
        c.args(["-H", &format!("unix://{}", socket())]);
    }
    c
}

/// `podman --remote` on the Podman service, with the fixture's containers.conf (its
/// limits): what the Docker CLI cannot do there (an attached `run`, `commit`).
pub fn podman_cli() -> Command {
    let mut c = Command::new("podman");
    c.args(["--remote", "--url", &format!("unix://{}", socket())])
        .env("CONTAINERS_CONF", "/var/lib/boyong-podman/containers.conf");
    c
}

/// Whether the engine answers; when not, a test skips with a message, or fails under CI.
pub fn available() -> bool {
    let ok = cli()
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let what = match engine() {
        Engine::Docker => "the Docker Engine does not answer (`docker info`)".to_string(),
        Engine::Podman => format!(
            "Podman's service does not answer at {} (`bash fixtures/podman.sh start && bash fixtures/podman.sh load` starts it)",
            socket()
        ),
    };
    assert!(std::env::var_os("CI").is_none(), "CI: {what}");
    eprintln!("skipped: {what}");
    false
}

/// Builds `boyong-fixture/busybox:1` if it is missing (and copies it into Podman's
/// storage when the tests drive Podman).
pub fn busybox() {
    base_image("busybox", "boyong-fixture/busybox:1");
}

/// Builds the front proxy's image `gov/front:1` if it is missing (and copies it into
/// Podman's storage when the tests drive Podman).
#[allow(
    dead_code,
    reason = "not every test binary routes through the front proxy"
)]
pub fn front() {
    base_image("front", "gov/front:1");
}

/// `fixtures/base-images.sh WHICH`, which makes `image` if it is missing; then the image
/// copied into Podman's storage when the tests drive Podman.
fn base_image(which: &str, image: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let ok = Command::new("bash")
        .arg(format!("{root}/fixtures/base-images.sh"))
        .arg(which)
        .status()
        .expect("bash runs")
        .success();
    assert!(ok, "fixtures/base-images.sh {which} failed");
    if engine() == Engine::Podman {
        load_into_podman(image);
    }
}

/// Copies `image` from the Docker Engine into Podman's storage if it is not there already.
pub fn load_into_podman(image: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let ok = Command::new("bash")
        .arg(format!("{root}/fixtures/podman.sh"))
        .args(["load", image])
        .status()
        .expect("bash runs")
        .success();
    assert!(ok, "fixtures/podman.sh load {image} failed");
}

/// A unique `boyong.test` label value; everything carrying it is removed on drop.
pub struct Labelled(pub String);

/// `test`, this process and the time: a value no other test or run has.
pub fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{test}-{}-{nanos:x}", std::process::id())
}

/// `docker ARGS` on the engine, run to its end.
pub fn docker(args: &[&str]) -> std::process::Output {
    super::output_within(cli().args(args))
}

/// Whether the engine has the `what` (container, volume, network, image) named `name`.
pub fn exists(what: &str, name: &str) -> bool {
    docker(&[what, "inspect", name]).status.success()
}

/// `docker inspect NAME`, or `None` when there is no such object.
pub fn inspect(name: &str) -> Option<serde_json::Value> {
    let out = docker(&["inspect", name]);
    out.status.success().then(|| {
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("docker inspect: JSON")[0]
            .clone()
    })
}

impl Labelled {
    pub fn new(test: &str) -> Self {
        Self(unique(test))
    }

    /// `--label boyong.test=VALUE` for `boyong run`.
    pub fn arg(&self) -> String {
        format!("boyong.test={}", self.0)
    }

    /// Images carrying the label.
    pub fn images(&self) -> Vec<String> {
        let out = cli()
            .args(["image", "ls", "-q", "--no-trunc", "--filter"])
            .arg(format!("label=boyong.test={}", self.0))
            .output()
            .expect("docker image ls");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Labelled {
    fn drop(&mut self) {
        let filter = format!("label=boyong.test={}", self.0);
        if let Ok(out) = cli().args(["ps", "-aq", "--filter", &filter]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = cli().args(["rm", "-f", id]).output();
            }
        }
        for id in self.images() {
            let _ = cli().args(["rmi", "-f", &id]).output();
        }
        for kind in ["volume", "network"] {
            if let Ok(out) = cli().args([kind, "ls", "-q", "--filter", &filter]).output() {
                for id in String::from_utf8_lossy(&out.stdout).lines() {
                    let _ = cli().args([kind, "rm", id]).output();
                }
            }
        }
    }
}

/// A Unix-socket proxy in front of the real engine that forwards everything, except that
/// the first request whose bytes contain `hold` is never forwarded: the client waits on it
/// forever. A real fault at an exact point of a cut-over (e.g. between two renames),
/// with no hook in boyong.
pub struct HoldingProxy {
    pub socket: std::path::PathBuf,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _dir: tempfile::TempDir,
}

impl HoldingProxy {
    pub fn start(pattern: &str) -> Self {
        Self::holding(pattern, None)
    }

    /// As [`HoldingProxy::start`], but the request is forwarded after `delay`: the engine
    /// answers it late, whatever the client did meanwhile.
    #[allow(dead_code, reason = "not every test binary delays a request")]
    pub fn delaying(pattern: &str, delay: std::time::Duration) -> Self {
        Self::holding(pattern, Some(delay))
    }

    fn holding(pattern: &str, delay: Option<std::time::Duration>) -> Self {
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("binds");
        let held = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, pattern) = (held.clone(), pattern.as_bytes().to_vec());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(engine) = UnixStream::connect(self::socket()) else {
                    return;
                };
                let (mut c_read, mut e_write) = (client.try_clone().expect("clone"), engine);
                let mut e_read = e_write.try_clone().expect("clone");
                let mut c_write = client;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut e_read, &mut c_write);
                });
                let (flag, pattern) = (flag.clone(), pattern.clone());
                std::thread::spawn(move || {
                    use std::io::{Read as _, Write as _};
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut tail: Vec<u8> = Vec::new();
                    loop {
                        let n = match c_read.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        tail.extend_from_slice(&buf[..n]);
                        if !flag.load(Ordering::SeqCst)
                            && tail.windows(pattern.len()).any(|w| w == pattern.as_slice())
                            && !flag.swap(true, Ordering::SeqCst)
                        {
                            // Held: this connection forwards nothing more, ever, or
                            // not before `delay`.
                            match delay {
                                Some(d) => std::thread::sleep(d),
                                None => loop {
                                    std::thread::sleep(std::time::Duration::from_secs(3600));
                                },
                            }
                        }
                        let keep = tail.len().saturating_sub(pattern.len());
                        tail.drain(..keep);
                        if e_write.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            socket,
            held,
            _dir: dir,
        }
    }

    /// Whether the request has come and is being held.
    pub fn held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An image `boyong-test-LABEL-NAME:1` serving `body` over HTTP on 8080, labelled for cleanup.
/// Made without a builder (whose intermediate containers carry the label and, on a busy
/// engine, were seen listed after the build returned): a container created (never
/// started) from the busybox base, the page copied in, committed with its CMD and label,
/// and removed before this returns. Tried up to three times: it is the tests' fixture,
/// not the code under test; the last failure's output is in the panic.
pub fn web_image(label: &Labelled, name: &str, body: &str) -> String {
    web_image_cmd(
        label,
        name,
        body,
        r#"CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]"#,
    )
}

/// [`web_image`] started by `cmd` (a `CMD [...]` instruction) instead of plain httpd.
pub fn web_image_cmd(label: &Labelled, name: &str, body: &str, cmd: &str) -> String {
    let tag = format!("boyong-test-{}-{name}:1", label.0);
    let ctx = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir(ctx.path().join("www")).expect("www");
    std::fs::write(ctx.path().join("www/index.html"), format!("{body}\n")).expect("index.html");
    let www = ctx.path().join("www");
    let mut last = String::new();
    for attempt in 1..=3 {
        let maker = unique("web-image");
        let steps: [Vec<String>; 3] = [
            vec![
                "create".into(),
                "--name".into(),
                maker.clone(),
                "--label".into(),
                label.arg(),
                "boyong-fixture/busybox:1".into(),
                "true".into(),
            ],
            vec![
                "cp".into(),
                www.display().to_string(),
                format!("{maker}:/www"),
            ],
            vec![
                "commit".into(),
                "--change".into(),
                cmd.into(),
                "--change".into(),
                format!("LABEL {}", label.arg()),
                maker.clone(),
                tag.clone(),
            ],
        ];
        let failed = steps.iter().find_map(|args| {
            // Podman's service fails the Docker CLI's commit (it sends no body).
            let mut c = if engine() == Engine::Podman && args[0] == "commit" {
                podman_cli()
            } else {
                cli()
            };
            let out = c.args(args).output().expect("docker runs");
            (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
        });
        let _ = cli().args(["rm", "-f", &maker]).output();
        match failed {
            None => return tag,
            Some(e) => last = e,
        }
        eprintln!("making image {tag}, attempt {attempt}: {last}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("making image {tag} failed three times; last: {last}");
}
