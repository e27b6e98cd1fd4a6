//! Docker Swarm as a target (`target.swarm: true`), against the real engine made a
//! single-node swarm by the tests (and left as it was found: `support::swarm`): a busybox
//! site deployed as a service behind the front proxy, updated (start-first, while a client
//! sends requests through the proxy: none fails), rolled back by `boyong rollback` to the
//! journaled spec; an update whose health check fails, rolled back by the engine itself
//! (`failure_action: rollback`) and reported; secrets as Swarm secrets, never in the
//! service's env; a MariaDB database restored into a service pinned with its volume to
//! the node, reachable by name on its overlay network.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::db::{Mariadb, base_image};
use support::docker::{docker, web_image};
use support::env::Env;
use support::swarm::{self, Services};
use support::{journal, text};

const HOST: &str = "izin.swarm.test";
const API_KEY: &str = "swarm-secret-4b1d-not-in-env";

/// One GET through the proxy on a new connection: the release that answered, or why not.
fn get(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let t = String::from_utf8_lossy(&buf);
    if !t.starts_with("HTTP/1.1 200") {
        return Err(t.lines().next().unwrap_or("").to_string());
    }
    t.split("release ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string)
        .ok_or_else(|| format!("no release in: {t}"))
}

/// Requests through the proxy, 20 a second, until stopped: what each got.
struct Load {
    stop: Arc<AtomicBool>,
    runner: std::thread::JoinHandle<Vec<Result<String, String>>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let runner = std::thread::spawn(move || {
            let got = Arc::new(Mutex::new(Vec::new()));
            let mut threads = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let got = Arc::clone(&got);
                threads.push(std::thread::spawn(move || {
                    let g = get(addr);
                    got.lock().unwrap().push(g);
                }));
                std::thread::sleep(Duration::from_millis(50));
            }
            for t in threads {
                t.join().unwrap();
            }
            got.lock().unwrap().clone()
        });
        Self { stop, runner }
    }

    fn finish(self) -> Vec<Result<String, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.runner.join().unwrap()
    }
}

/// `docker service inspect NAME` as JSON.
fn service(name: &str) -> serde_json::Value {
    let out = docker(&["service", "inspect", name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
}

/// The container of the service's first running task.
fn task_container(name: &str) -> String {
    let out = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={name}"),
    ]);
    text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_else(|| panic!("service {name} has no running task"))
        .to_string()
}

/// The site as a service of 2 replicas behind the front proxy; `engine`: more of `target:`
/// (its `docker:` endpoint), or nothing for the local socket.
fn site_playbook(env: &Env, engine: &str, front: &str, http: u16, https: u16) -> PathBuf {
    env.write(
        "swarm.yml",
        format!(
            "version: 1\napp: swarm-demo\n{vendor}target:\n{engine}  swarm: true\n  front: {{ name: {front}, http: \"127.0.0.1:{http}\", https: \"127.0.0.1:{https}\" }}\nvars:\n  api_key: {{ env: SWARM_API_KEY }}\nsteps:\n  - id: code\n    fetch: {{ path: {www} }}\n  - id: image\n    build:\n      base: boyong-fixture/busybox:1\n      copy: {{ code: /www }}\n      user: \"65534\"\n      cmd: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n  - id: web\n    deploy:\n      image: image\n      name: {name}\n      stop_grace: 2s\n      env: {{ GREETING: selamat, API_KEY: \"{{{{ vars.api_key }}}}\" }}\n      service: {{ replicas: 2, monitor: 2s }}\n      files:\n        - path: /www/config.php\n          replace: [{{ find: vendor-pw, with: \"{{{{ vars.api_key }}}}\" }}]\n          mode: \"0400\"\n      route: {{ host: {HOST}, port: 8080 }}\n      health:\n        http: http://127.0.0.1:8080/index.html\n        timeout: 6s\n        interval: 500ms\n",
            vendor = env.sshd().vendor_yaml(),
            www = env.path("vendor/www").display(),
            name = env.name,
        ),
    )
}

/// `boyong status --json ARGS`: its one row (the status must succeed).
fn status_row(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["status", "--json"];
    all.extend_from_slice(args);
    let st = env.run(&all);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stderr));
    let rows: serde_json::Value =
        serde_json::from_slice(&st.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&st.stderr)));
    rows.as_array().expect("status rows")[0].clone()
}

/// A busybox site's test on the swarm: the cleanup of its services (first, so that it
/// runs before the environment's), its environment (a vendor sshd, which with `ssh` also
/// forwards to the engine's socket), its playbook (with `ssh`, the manager reached through
/// that sshd) and the front proxy's HTTP address.
struct Site {
    _services: Services,
    env: Env,
    pb: PathBuf,
    addr: SocketAddr,
}

fn site(test: &str, ssh: bool) -> Option<Site> {
    let b = Env::builder(test).plan_fidelity();
    let b = if ssh {
        b.sshd_config("AllowStreamLocalForwarding yes\nAllowTcpForwarding yes\nLogLevel DEBUG1\n")
    } else {
        b.sshd()
    };
    let env = b
        .busybox()
        .var("SWARM_API_KEY", API_KEY)
        .file("vendor/www/index.html", "release one\n")
        .file("vendor/www/config.php", "password=vendor-pw\n")
        .build()?;
    let services = Services::of(env.label());
    support::docker::front();
    let front = format!("{}-front", env.name);
    let (http, https) = (support::free_port(), support::free_port());
    let engine = if ssh {
        env.sshd().engine_yaml()
    } else {
        String::new()
    };
    let pb = site_playbook(&env, &engine, &front, http, https);
    Some(Site {
        _services: services,
        env,
        pb,
        addr: format!("127.0.0.1:{http}").parse().unwrap(),
    })
}

#[test]
fn a_site_as_a_service_updates_behind_the_front_door_and_rolls_back() {
    let Some(_swarm) = swarm::join() else { return };
    let Some(site) = site("swarm", false) else {
        return;
    };
    let (env, pb, addr) = (&site.env, &site.pb, site.addr);

    // The plan speaks of a service.
    let plan = env.run(&["plan", "--offline", pb.to_str().unwrap()]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let plan = text(&plan.stdout);
    assert!(
        plan.contains("service") && plan.contains("start-first, 2 replicas"),
        "{plan}"
    );
    assert!(plan.contains("API_KEY_FILE=/run/secrets/API_KEY"), "{plan}");

    // The first release: a service of two tasks, routed by name.
    let out = env.run_playbook(pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(get(addr).as_deref(), Ok("one"));
    let s = service(&env.name);
    let spec = &s["Spec"];
    assert_eq!(spec["EndpointSpec"]["Mode"], "dnsrr");
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 2);
    assert_eq!(spec["UpdateConfig"]["Order"], "start-first");
    assert_eq!(spec["UpdateConfig"]["FailureAction"], "rollback");
    assert!(spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"].is_array());
    let first_image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    // The secret: a Swarm secret mounted as a file, never in the service's env.
    let inspected = text(&docker(&["service", "inspect", &env.name]).stdout);
    assert!(
        !inspected.contains(API_KEY),
        "the secret is in the service's spec"
    );
    let envs = spec["TaskTemplate"]["ContainerSpec"]["Env"].to_string();
    assert!(
        envs.contains("API_KEY_FILE=/run/secrets/API_KEY") && envs.contains("GREETING=selamat"),
        "{envs}"
    );
    let task = task_container(&env.name);
    let file = docker(&["exec", &task, "cat", "/run/secrets/API_KEY"]);
    assert_eq!(text(&file.stdout), API_KEY);
    // `deploy.files`: the vendor's config edited, a Swarm secret at its own path, read-only,
    // owned by the app's user; the fetched one left out of the image.
    let config = docker(&["exec", &task, "cat", "/www/config.php"]);
    assert_eq!(text(&config.stdout), format!("password={API_KEY}\n"));
    let stat = docker(&["exec", &task, "stat", "-c", "%u %a", "/www/config.php"]);
    assert_eq!(text(&stat.stdout).trim(), "65534 400");
    let over = docker(&["exec", &task, "sh", "-c", "echo x > /www/config.php"]);
    assert!(!over.status.success(), "the file is writable");
    assert!(
        text(&out.stdout).contains("left out") || text(&out.stderr).contains("left out"),
        "{}",
        text(&out.stdout)
    );
    assert!(spec.to_string().contains("/www/config.php"), "{spec}");
    let task_env = text(&docker(&["inspect", "--format", "{{.Config.Env}}", &task]).stdout);
    assert!(!task_env.contains(API_KEY), "{task_env}");
    let state = std::fs::read_dir(env.state())
        .map(|_| {
            text(
                &std::process::Command::new("grep")
                    .args(["-r", API_KEY])
                    .arg(env.state())
                    .output()
                    .unwrap()
                    .stdout,
            )
        })
        .unwrap();
    assert!(
        state.is_empty(),
        "the secret is in the state directory: {state}"
    );

    // `status` finds the service (no container has its name): every replica running,
    // the journaled image, its health check passing through the front door.
    let row = status_row(env, &[]);
    assert_eq!(row["live"], "checked", "{row}");
    assert_eq!(row["container"]["state"], "running", "{row}");
    assert_eq!(row["container"]["health"], "healthy", "{row}");
    assert_eq!(row["drift"], false, "{row}");
    let row = status_row(env, &["--check"]);
    assert_eq!(row["check"]["ok"], true, "{row}");
    // So does a decommission's precondition: through the front proxy, as users reach it.
    let archived = env.run(&["archive", "swarm-demo"]);
    assert_eq!(
        archived.status.code(),
        Some(0),
        "{}",
        text(&archived.stderr)
    );
    let dplan = env.run(&["decommission", "swarm-demo", "--plan", "--min-age", "0"]);
    let d = text(&dplan.stdout) + &text(&dplan.stderr);
    assert!(
        d.contains(&format!(
            "ok      container serves: `{}`, routed as {HOST}: GET ",
            env.name
        )) && !d.contains("REFUSED"),
        "{d}"
    );
    assert_eq!(dplan.status.code(), Some(0), "{d}");

    // The live plan names the service it updates and what it runs now.
    let live = env.run(&["plan", pb.to_str().unwrap()]);
    let live = text(&live.stdout) + &text(&live.stderr);
    assert!(
        live.contains(&format!(
            "update service `{}`: image {first_image} → ",
            env.name
        )),
        "{live}"
    );

    // An update under load: no request fails, the answers move to the new release.
    let load = Load::start(addr);
    std::thread::sleep(Duration::from_millis(300));
    env.write("vendor/www/index.html", "release two\n");
    let out = env.run_playbook(pb);
    std::thread::sleep(Duration::from_millis(500));
    let got = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let failed: Vec<&String> = got.iter().filter_map(|g| g.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        got.len()
    );
    assert!(got.iter().any(|g| g.as_deref() == Ok("two")), "{got:?}");
    assert_eq!(get(addr).as_deref(), Ok("two"));
    let second = env.last_run("swarm-demo");
    let restore = journal(&second)
        .into_iter()
        .find(|r| r["type"] == "intent" && r["undo"]["action"] == "restore-service")
        .expect("the update journaled the previous spec");
    assert_eq!(
        restore["undo"]["spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        first_image.as_str()
    );

    // `boyong rollback`: the previous spec, from the journal.
    let rb = env.rollback("swarm-demo");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(get(addr).as_deref(), Ok("one"));
    assert_eq!(
        service(&env.name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        first_image.as_str()
    );
    // The fleet's status shows the first release's image again, not drifting.
    let row = status_row(env, &[]);
    assert_eq!(row["container"]["state"], "running", "{row}");
    assert_eq!(row["drift"], false, "{row}");
    // This run's secrets went with it (its env key's and its file's); the first run's two
    // stay (its spec uses them).
    let secrets = text(
        &docker(&[
            "secret",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("label={}", env.label().arg()),
        ])
        .stdout,
    );
    assert_eq!(secrets.lines().count(), 2, "{secrets}");
}

/// The swarm's manager reached over SSH (`target.docker: ssh://`): every API request a
/// `direct-streamlocal` channel to its socket through a real sshd, the health checks and
/// the front proxy's made from the manager's side; deploy, status, update and rollback.
#[test]
fn a_service_on_a_manager_reached_over_ssh_deploys_updates_and_rolls_back() {
    let Some(_swarm) = swarm::join() else { return };
    let Some(site) = site("swarm-ssh", true) else {
        return;
    };
    let (env, pb, addr) = (&site.env, &site.pb, site.addr);

    let out = env.run_playbook(pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(get(addr).as_deref(), Ok("one"));
    let log = env.sshd().log();
    let channels = log
        .lines()
        .filter(|l| l.contains("streamlocal") && l.contains("docker.sock"))
        .count();
    assert!(channels > 0, "no API request went through the sshd:\n{log}");
    let row = status_row(env, &["--check"]);
    assert_eq!(row["container"]["state"], "running", "{row}");
    assert_eq!(row["check"]["ok"], true, "{row}");
    let first_image = service(&env.name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap()
        .to_string();

    env.write("vendor/www/index.html", "release two\n");
    let out = env.run_playbook(pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(get(addr).as_deref(), Ok("two"));

    let rb = env.rollback("swarm-demo");
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert_eq!(get(addr).as_deref(), Ok("one"));
    assert_eq!(
        service(&env.name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        first_image.as_str()
    );
}

#[test]
fn a_failed_update_is_rolled_back_by_the_engine_and_reported() {
    let Some(_swarm) = swarm::join() else { return };
    let Some(site) = site("swarm-fail", false) else {
        return;
    };
    let (env, pb, addr) = (&site.env, &site.pb, site.addr);
    let out = env.run_playbook(pb);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(get(addr).as_deref(), Ok("one"));

    // A release without the page its health check asks for.
    std::fs::remove_file(env.path("vendor/www/index.html")).unwrap();
    env.write("vendor/www/other.html", "release three\n");
    let out = env.run_playbook(pb);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("the engine rolled it back"), "{err}");
    let s = service(&env.name);
    assert_eq!(s["UpdateStatus"]["State"], "rollback_completed", "{s}");
    assert_eq!(
        get(addr).as_deref(),
        Ok("one"),
        "the previous release serves"
    );
    let run = env.last_run("swarm-demo");
    assert!(
        journal(&run)
            .iter()
            .any(|r| r["type"] == "note" && r["kind"] == "service-rolled-back"),
        "the journal says the engine rolled the update back"
    );
}

#[test]
fn a_database_restored_into_a_service_pinned_with_its_volume() {
    let Some(_swarm) = swarm::join() else { return };
    let Some(env) = Env::database("swarm-db") else {
        return;
    };
    let _services = Services::of(env.label());
    let Some(db) = Mariadb::start() else { return };
    db.query("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO t VALUES (1, 'vendor'), (2, 'swarm')");
    let image = base_image("mariadb");
    let pb = env.db_playbook("mariadb", db.port, &image, false);
    let net = format!("{}-net", env.name);
    support::edit_file(&pb, "vars:\n", "target:\n  swarm: true\nvars:\n");
    support::edit_file(
        &pb,
        "      replace: false\n",
        &format!("      replace: false\n      network: {net}\n"),
    );
    // An app service on the database's network (made by the restore), healthy only when
    // it reaches the database by name.
    let web = web_image(env.label(), "web", "web");
    let app = format!(
        "  - id: web\n    deploy:\n      image: {web}\n      name: {name}-web\n      network: {net}\n      health:\n        cmd: [\"sh\", \"-c\", \"timeout 1 nc {name} 3306 </dev/null | grep -q .\"]\n        timeout: 30s\n        interval: 1s\n",
        name = env.name
    );
    std::fs::write(&pb, std::fs::read_to_string(&pb).unwrap() + &app).unwrap();

    let out = env.run_watched(&pb, &db.password);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = service(&env.name);
    let node = text(&docker(&["info", "--format", "{{.Swarm.NodeID}}"]).stdout);
    let constraints = s["Spec"]["TaskTemplate"]["Placement"]["Constraints"].to_string();
    assert!(
        constraints.contains(&format!("node.id == {}", node.trim())),
        "{constraints}"
    );
    let mounts = s["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"].to_string();
    assert!(mounts.contains(&env.volume()), "{mounts}");
    let inspected = text(&docker(&["service", "inspect", &env.name]).stdout);
    assert!(
        !inspected.contains(&db.password),
        "a password is in the service's spec"
    );
    assert!(inspected.contains("MARIADB_PASSWORD_FILE"), "{inspected}");

    // Reachable by name on its overlay network, with the restored rows.
    let pw = format!("MYSQL_PWD={}", db.password);
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        &net,
        "--label",
        &env.label().arg(),
        "-e",
        &pw,
        "--entrypoint",
        "mariadb",
        &image,
        "--protocol=tcp",
        "-h",
        &env.name,
        "-uperizinan",
        "perizinan",
        "-N",
        "-e",
        "SELECT v FROM t ORDER BY id",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).split_whitespace().collect::<Vec<_>>(),
        ["vendor", "swarm"]
    );

    // Rollback saves the database first, then removes the service and its volume.
    let rb = env.watched(&["rollback", "dbtest", "--yes"], &db.password);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb.stderr));
    assert!(
        env.last_run("dbtest")
            .join("rollback/database.sql.gz")
            .is_file()
    );
    assert!(!docker(&["service", "inspect", &env.name]).status.success());
    assert!(
        !docker(&["service", "inspect", &format!("{}-web", env.name)])
            .status
            .success()
    );
}
