//! A real OpenSSH server for tests: started as an ordinary process on a free loopback
//! port, with host and client keys generated for each test, stopped when dropped.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running sshd and the files a client needs.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    /// The client's private key (ed25519, no passphrase).
    pub client_key: PathBuf,
    /// A known_hosts file holding the server's key.
    pub known_hosts: PathBuf,
    /// The server's public host key line (`ssh-ed25519 AAAA…`).
    pub host_key_pub: String,
    child: Child,
}

const SSHD: &str = "/usr/sbin/sshd";

/// Whether sshd is installed; when not, a test skips with a message, or fails under CI.
pub fn available() -> bool {
    if Path::new(SSHD).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: {SSHD} is missing (apt-get install openssh-server); .ci/run installs it"
    );
    eprintln!("skipped: {SSHD} is not installed (apt-get install openssh-server)");
    false
}

pub fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            kind,
            "-N",
            passphrase,
            "-C",
            "boyong-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("ssh-keygen runs")
        .success();
    assert!(ok, "ssh-keygen failed");
}

impl Sshd {
    /// A playbook's `vendor:` block for this server (the client key, its known_hosts).
    pub fn vendor_yaml(&self) -> String {
        format!(
            "vendor:\n  host: 127.0.0.1\n  port: {}\n  user: {}\n  identity: {}\n  known_hosts: {}\n",
            self.port,
            self.user,
            self.client_key.display(),
            self.known_hosts.display()
        )
    }

    /// The `docker:`, `identity:` and `known_hosts:` lines of a playbook's `target:` for
    /// the engine's socket behind this server (indented under `target:`).
    #[allow(dead_code, reason = "not every test binary reaches an engine over SSH")]
    pub fn engine_yaml(&self) -> String {
        format!(
            "  docker: ssh://{}@127.0.0.1:{}\n  identity: {}\n  known_hosts: {}\n",
            self.user,
            self.port,
            self.client_key.display(),
            self.known_hosts.display()
        )
    }

    /// Starts sshd. `extra` lines are appended to its configuration (a `LogLevel` there
    /// replaces the default `VERBOSE`: sshd keeps a keyword's first value).
    pub fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let host_key = d.join("host_ed25519");
        keygen(&host_key, "ed25519", "");
        let client_key = d.join("client_ed25519");
        keygen(&client_key, "ed25519", "");
        std::fs::copy(client_key.with_extension("pub"), d.join("authorized_keys"))
            .expect("authorized_keys");
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
                    .expect("utf-8")
                    .trim()
                    .to_string()
            });
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = super::free_port();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nAcceptEnv none\n{log}\
                 MaxStartups 100\nMaxSessions 100\n{extra}\n",
                log = if extra.contains("LogLevel") {
                    ""
                } else {
                    "LogLevel VERBOSE\n"
                },
                hk = host_key.display(),
                pid = d.join("sshd.pid").display(),
                ak = d.join("authorized_keys").display(),
            ),
        )
        .expect("sshd_config");
        let log = std::fs::File::create(d.join("sshd.log")).expect("log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        let host_key_pub = std::fs::read_to_string(host_key.with_extension("pub"))
            .expect("host key")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let known_hosts = d.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_key_pub}\n"))
            .expect("known_hosts");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "sshd did not start: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            dir,
            port,
            user,
            client_key,
            known_hosts,
            host_key_pub,
            child,
        }
    }

    /// The server's key is known at `port` too (a proxy in front of it): its line is added
    /// to `known_hosts`.
    pub fn known_at(&self, port: u16) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.known_hosts)
            .expect("known_hosts");
        writeln!(f, "[127.0.0.1]:{port} {}", self.host_key_pub).expect("known_hosts");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Stops the server now (a dropped link for the client).
    /// Kills every connection's own sshd processes (the listener stays): each client's
    /// TCP connection is closed as a dropped network would leave it.
    #[allow(dead_code, reason = "not every test binary drops connections")]
    pub fn drop_connections(&self) {
        fn descendants(pid: u32, all: &mut Vec<u32>) {
            let out = Command::new("pgrep")
                .args(["-P", &pid.to_string()])
                .output()
                .expect("pgrep");
            for child in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().parse().ok())
            {
                all.push(child);
                descendants(child, all);
            }
        }
        let mut all = Vec::new();
        descendants(self.child.id(), &mut all);
        assert!(!all.is_empty(), "sshd has no connection to drop");
        for pid in all {
            let _ = super::signal(pid, "-KILL");
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy that cuts its first connection after `cut_after` bytes from the server.
pub fn cutting_proxy(
    to: u16,
    cut_after: usize,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    cutting_proxy_when(to, cut_after, || true)
}

/// As [`cutting_proxy`], but once `cut_after` bytes went through, the first connection is
/// held (nothing more forwarded) until `until()` says so (asked every 50 ms, for at most
/// 120 s), and only then cut.
pub fn cutting_proxy_when(
    to: u16,
    cut_after: usize,
    until: impl Fn() -> bool + Send + Sync + 'static,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let until = std::sync::Arc::new(until);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy");
    let port = listener.local_addr().expect("proxy").port();
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cut2 = std::sync::Arc::clone(&cut);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = std::net::TcpStream::connect(("127.0.0.1", to)).expect("proxy");
            let first = !cut2.swap(true, std::sync::atomic::Ordering::SeqCst);
            let (mut c2, mut s2) = (
                client.try_clone().expect("proxy"),
                server.try_clone().expect("proxy"),
            );
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
            });
            let (mut c, mut s) = (client, server);
            let until = std::sync::Arc::clone(&until);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut sent = 0;
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                    if first && sent >= cut_after {
                        let t0 = std::time::Instant::now();
                        while !until() && t0.elapsed() < std::time::Duration::from_secs(120) {
                            std::thread::sleep(std::time::Duration::from_millis(50));
                        }
                        let _ = c.shutdown(std::net::Shutdown::Both);
                        let _ = s.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
            });
        }
    });
    (port, cut)
}
