//! One environment for every end-to-end test: a temporary directory (playbooks, the vendor's
//! files, and `state/`, the state directory), plus what a test asks its [`Builder`] for: a
//! real sshd as the vendor host, the real Docker Engine under a unique `boyong.test` label,
//! the strict fake world of the `sim` feature in `world.json`. Runs of the real `boyong`
//! binary start in the directory with a controlled environment.
//!
//! Invariants: `build` gives `None` (the test skips; under CI the check fails it instead)
//! when a tool asked for is missing, before anything is started; everything in Docker that
//! carries the test's label (`run_playbook` and `playbook_run` pass it to the binary) is
//! removed when the `Env` drops, pass or fail; `name` and the label are unique per test and
//! process; the state directory is never made here (a test may mount a tmpfs there, or
//! assert that a command wrote nothing).
//!
//! A test file adds its own helpers (its playbook, its readers) in an `impl Env` block of its
//! own; this file holds only what several of them share.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::docker::{self, Labelled};
use super::sshd::{self, Sshd};

/// A test's directory, its sshd and its label; see the module's doc.
pub struct Env {
    /// The test's directory; `state/` in it is the state directory.
    pub dir: tempfile::TempDir,
    /// A unique name for what the test deploys (`bt-<label>`).
    pub name: String,
    /// A loopback port that was free when the environment was made.
    pub port: u16,
    label: Option<Labelled>,
    sshd: Option<Sshd>,
    sim: bool,
    vars: Vec<(String, String)>,
    plan_fidelity: bool,
}

/// What an [`Env`] is made with: `Env::builder(test)…build()`.
#[must_use]
pub struct Builder {
    test: String,
    sshd: Option<String>,
    docker: bool,
    busybox: bool,
    sim: Option<String>,
    files: Vec<(String, Vec<u8>)>,
    vars: Vec<(String, String)>,
    plan_fidelity: bool,
}

impl Builder {
    /// A real sshd as the vendor host, its keys made now.
    pub fn sshd(self) -> Self {
        self.sshd_config("")
    }

    /// As [`Builder::sshd`], with `extra` lines appended to the server's configuration.
    pub fn sshd_config(mut self, extra: &str) -> Self {
        self.sshd = Some(extra.to_string());
        self
    }

    /// The real Docker Engine, and a unique `boyong.test` label: what carries it is removed
    /// when the `Env` drops.
    pub fn docker(mut self) -> Self {
        self.docker = true;
        self
    }

    /// [`Builder::docker`], with the base image `boyong-fixture/busybox:1` built if missing.
    pub fn busybox(mut self) -> Self {
        self.busybox = true;
        self.docker()
    }

    /// The strict fake world (`BOYONG_SIM`), starting as `world` (JSON), in `world.json`.
    pub fn sim(mut self, world: &str) -> Self {
        self.sim = Some(world.to_string());
        self
    }

    /// A file at `rel` in the test's directory (its parents made).
    pub fn file(mut self, rel: &str, contents: impl AsRef<[u8]>) -> Self {
        self.files
            .push((rel.to_string(), contents.as_ref().to_vec()));
        self
    }

    /// An environment variable for every run of the binary.
    pub fn var(mut self, key: &str, value: &str) -> Self {
        self.vars.push((key.to_string(), value.to_string()));
        self
    }

    /// Every run under the state directory that journaled a change keeps to its plan
    /// ([`super::assert_plan_fidelity_all`]): checked when the `Env` drops, unless the test
    /// has already failed.
    pub fn plan_fidelity(mut self) -> Self {
        self.plan_fidelity = true;
        self
    }

    /// The environment; `None` when a tool asked for is missing (the test skips).
    pub fn build(self) -> Option<Env> {
        if self.sshd.is_some() && !sshd::available() {
            return None;
        }
        if self.docker && !docker::available() {
            return None;
        }
        if self.busybox {
            docker::busybox();
        }
        let unique = docker::unique(&self.test);
        let env = Env {
            dir: tempfile::tempdir().expect("a temporary directory"),
            name: format!("bt-{unique}"),
            port: super::free_port(),
            label: self.docker.then(|| Labelled(unique)),
            sshd: self.sshd.as_deref().map(Sshd::start),
            sim: self.sim.is_some(),
            vars: self.vars,
            plan_fidelity: self.plan_fidelity,
        };
        if let Some(world) = &self.sim {
            env.write("world.json", world);
        }
        for (rel, contents) in &self.files {
            env.write(rel, contents);
        }
        Some(env)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.plan_fidelity && !std::thread::panicking() {
            super::assert_plan_fidelity_all(&self.state());
        }
    }
}

impl Env {
    /// An environment named for `test` (the name goes into the label and `name`).
    pub fn builder(test: &str) -> Builder {
        Builder {
            test: test.to_string(),
            sshd: None,
            docker: false,
            busybox: false,
            sim: None,
            files: Vec::new(),
            vars: Vec::new(),
            plan_fidelity: false,
        }
    }

    /// `rel` in the test's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The state directory (not made until a run makes it).
    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes `contents` at `rel` in the test's directory, its parents made; the path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("makes the directory");
        std::fs::write(&p, contents).expect("writes the file");
        p
    }

    /// The vendor host; panics if the builder was not asked for one.
    pub fn sshd(&self) -> &Sshd {
        self.sshd.as_ref().expect("Env::builder(…).sshd()")
    }

    /// The test's label; panics if the builder was not asked for Docker.
    pub fn label(&self) -> &Labelled {
        self.label.as_ref().expect("Env::builder(…).docker()")
    }

    /// `boyong ARGS`, the real binary, in the test's directory: its state in `state/`, the
    /// fake world if asked for (else the real one), the builder's variables, no fault and
    /// no terminal width from outside, no standard input.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = super::boyong(&self.state());
        c.current_dir(self.dir.path())
            .args(args)
            .env_remove("BOYONG_SIM_FAULT")
            .env_remove("COLUMNS");
        if self.sim {
            c.env("BOYONG_SIM", self.path("world.json"));
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// [`Env::command`] with `fault` injected in the fake world (`BOYONG_SIM_FAULT`).
    pub fn faulted(&self, args: &[&str], fault: &str) -> Command {
        let mut c = self.command(args);
        c.env("BOYONG_SIM_FAULT", fault);
        c
    }

    /// `boyong ARGS`, run to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        super::output_within(&mut self.command(args))
    }

    /// `boyong ARGS` with `fault` injected, run to its end.
    pub fn run_faulted(&self, args: &[&str], fault: &str) -> Output {
        super::output_within(&mut self.faulted(args, fault))
    }

    /// `boyong run PLAYBOOK`, labelled with the test's label when it has one; not started.
    pub fn playbook_run(&self, playbook: &Path) -> Command {
        let mut c = self.command(&["run", playbook.to_str().expect("a UTF-8 path")]);
        if let Some(label) = &self.label {
            c.args(["--label", &label.arg()]);
        }
        c
    }

    /// [`Env::playbook_run`], run to its end.
    pub fn run_playbook(&self, playbook: &Path) -> Output {
        super::output_within(&mut self.playbook_run(playbook))
    }

    /// `boyong rollback APP --yes`.
    pub fn rollback(&self, app: &str) -> Output {
        self.run(&["rollback", app, "--yes"])
    }

    /// `app`'s run directories, oldest first; none before its first run.
    pub fn runs(&self, app: &str) -> Vec<PathBuf> {
        let mut r: Vec<PathBuf> =
            std::fs::read_dir(self.state().join("apps").join(app).join("runs"))
                .map(|d| d.map(|e| e.expect("a directory entry").path()).collect())
                .unwrap_or_default();
        r.sort();
        r
    }

    /// `app`'s newest run directory.
    pub fn last_run(&self, app: &str) -> PathBuf {
        self.runs(app)
            .pop()
            .unwrap_or_else(|| panic!("{app} has no run"))
    }

    /// The test's containers (by its label), by name, sorted.
    pub fn containers(&self) -> Vec<String> {
        let out = docker::docker(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("label={}", self.label().arg()),
        ]);
        let mut n: Vec<String> = super::text(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        n.sort();
        n
    }
}
