//! The real Docker Engine for tests: availability, the busybox base image, and cleanup of
//! everything a test made (found by its unique `boyong.test` label), pass or fail.

use std::process::{Command, Stdio};

/// Whether the engine answers; when not, a test skips with a message, or fails under CI.
pub fn available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: the Docker Engine does not answer (`docker info`)"
    );
    eprintln!("skipped: the Docker Engine does not answer (`docker info`)");
    false
}

/// Builds `boyong-fixture/busybox:1` if it is missing.
pub fn busybox() {
    let root = env!("CARGO_MANIFEST_DIR");
    let ok = Command::new("bash")
        .arg(format!("{root}/fixtures/base-images.sh"))
        .arg("busybox")
        .status()
        .expect("bash runs")
        .success();
    assert!(ok, "fixtures/base-images.sh busybox failed");
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

/// `docker ARGS`, run to its end.
pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
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
        let out = Command::new("docker")
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
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        for id in self.images() {
            let _ = Command::new("docker").args(["rmi", "-f", &id]).output();
        }
        for kind in ["volume", "network"] {
            if let Ok(out) = Command::new("docker")
                .args([kind, "ls", "-q", "--filter", &filter])
                .output()
            {
                for id in String::from_utf8_lossy(&out.stdout).lines() {
                    let _ = Command::new("docker").args([kind, "rm", id]).output();
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
                let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else {
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
                            // Held: this connection forwards nothing more, ever.
                            loop {
                                std::thread::sleep(std::time::Duration::from_secs(3600));
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
            let out = Command::new("docker")
                .args(args)
                .output()
                .expect("docker runs");
            (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
        });
        let _ = Command::new("docker").args(["rm", "-f", &maker]).output();
        match failed {
            None => return tag,
            Some(e) => last = e,
        }
        eprintln!("making image {tag}, attempt {attempt}: {last}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("making image {tag} failed three times; last: {last}");
}
