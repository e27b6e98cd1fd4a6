//! The runner for real hosts: its connections (one SSH connection to the vendor host,
//! opened on first use and reopened after a transient failure; one to the target engine)
//! and the dispatch of steps to their kinds ([`super::Kind`]) and of undos to
//! [`super::undo`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::common::{docker_err, ssh_err};
use crate::docker::Docker;
use crate::engine::{Runner, StepCx, StepError, UndoItem};
use crate::plan::PlannedStep;
use crate::playbook::{Playbook, StepKind, VendorAuth};
use crate::secret::SecretStore;
use crate::ssh::{Auth, Session, Target};

/// How to reach the vendor host, as the operator's command line says.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The known_hosts file when the playbook names none (the operator's own).
    pub default_known_hosts: std::path::PathBuf,
    /// `--accept-new-host-key`.
    pub accept_new_host_key: bool,
    /// Limit on each phase of connecting.
    pub connect_timeout: Duration,
    /// Labels added to everything made on the target (`--label`), besides boyong's own.
    pub labels: std::collections::HashMap<String, String>,
}

/// The runner for real hosts.
pub struct Live {
    playbook: Option<Playbook>,
    secrets: SecretStore,
    options: Option<LiveOptions>,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    engine: tokio::sync::Mutex<Option<Arc<Docker>>>,
    no_labels: std::collections::HashMap<String, String>,
    /// The host key of an `ssh://` engine is journaled (once per run).
    target_key_noted: std::sync::atomic::AtomicBool,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            playbook: None,
            secrets: SecretStore::default(),
            options: None,
            session: tokio::sync::Mutex::new(None),
            engine: tokio::sync::Mutex::new(None),
            no_labels: std::collections::HashMap::new(),
            target_key_noted: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Live {
    /// A runner for `playbook`'s hosts, with the run's secrets.
    pub fn new(playbook: Playbook, secrets: SecretStore, options: LiveOptions) -> Self {
        Self {
            playbook: Some(playbook),
            secrets,
            options: Some(options),
            session: tokio::sync::Mutex::new(None),
            engine: tokio::sync::Mutex::new(None),
            no_labels: std::collections::HashMap::new(),
            target_key_noted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The target engine, connected on first use.
    pub(super) async fn engine(&self) -> Result<Arc<Docker>, StepError> {
        let mut slot = self.engine.lock().await;
        if let Some(e) = slot.as_ref() {
            return Ok(Arc::clone(e));
        }
        let Some(pb) = &self.playbook else {
            return Err(StepError::failed(
                "no target engine is configured for this runner",
            ));
        };
        let e = Arc::new(
            Docker::connect(&pb.target.docker)
                .await
                .map_err(docker_err)?,
        );
        *slot = Some(Arc::clone(&e));
        Ok(e)
    }

    /// The labels the operator asked for on everything made on the target.
    pub(super) fn extra_labels(&self) -> &std::collections::HashMap<String, String> {
        self.options.as_ref().map_or(&self.no_labels, |o| &o.labels)
    }

    /// The step of the run's playbook with this id.
    pub(super) fn playbook_step(&self, id: &str) -> Option<&crate::playbook::Step> {
        self.spec(id)
    }

    /// The target engine's front proxy, as the playbook sets it.
    pub(super) fn front(&self) -> crate::playbook::Front {
        self.playbook
            .as_ref()
            .map(|p| p.target.front.clone())
            .unwrap_or_default()
    }

    /// The playbook's `assess:` section, if it has one.
    pub(super) fn assess_section(&self) -> Option<&crate::playbook::Assess> {
        self.playbook.as_ref().and_then(|p| p.assess.as_ref())
    }

    /// The app's name.
    pub(super) fn app(&self) -> &str {
        self.playbook.as_ref().map_or("", |p| p.app.as_str())
    }

    /// The run's secrets.
    pub(super) fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    /// Whether the target is a Docker Swarm (`target.swarm`).
    pub(super) fn swarm(&self) -> bool {
        self.playbook.as_ref().is_some_and(|p| p.target.swarm)
    }

    /// The target engine's endpoint, if a playbook is set.
    pub(super) fn endpoint(&self) -> Option<crate::playbook::DockerEndpoint> {
        self.playbook.as_ref().map(|p| p.target.docker.clone())
    }

    /// How to reach the vendor host.
    pub(crate) fn ssh_target(&self) -> Result<Target, StepError> {
        self.target()
    }

    fn target(&self) -> Result<Target, StepError> {
        let (Some(pb), Some(o)) = (&self.playbook, &self.options) else {
            return Err(StepError::failed(
                "no vendor host is configured for this runner",
            ));
        };
        let v = &pb.vendor;
        let resolve =
            |t: &crate::playbook::Template| t.resolve(&self.secrets).map_err(StepError::Failed);
        let auth = match &v.auth {
            VendorAuth::Key {
                identity,
                passphrase,
            } => Auth::Key {
                path: identity.clone(),
                passphrase: passphrase.as_ref().map(resolve).transpose()?,
            },
            VendorAuth::Password(p) => Auth::Password(resolve(p)?),
        };
        Ok(Target {
            host: v.host.clone(),
            port: v.port,
            user: v.user.clone(),
            auth,
            known_hosts: v
                .known_hosts
                .clone()
                .unwrap_or_else(|| o.default_known_hosts.clone()),
            accept_new: o.accept_new_host_key,
            connect_timeout: o.connect_timeout,
            legacy_algorithms: v.legacy_algorithms.clone(),
        })
    }

    /// The vendor connection, opened on first use.
    pub(super) async fn vendor(
        &self,
        cx: Option<&mut StepCx<'_>>,
    ) -> Result<Arc<Session>, StepError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(Session::connect(&self.target()?).await.map_err(ssh_err)?);
        if let Some(cx) = cx {
            if let Some(line) = &s.accepted_new {
                cx.note(
                    "host-key-accepted",
                    &format!("--accept-new-host-key: added to known_hosts: {line}"),
                )?;
                cx.output(&format!("host key accepted and recorded: {line}"));
            }
            // Evidence for auditors: which key the vendor host proved it holds.
            if let Some(key) = &s.host_key {
                cx.note("host-key", key)?;
            }
        }
        *slot = Some(Arc::clone(&s));
        Ok(s)
    }

    /// Evidence for auditors, once: the host key an `ssh://` engine's host proved it holds
    /// (`target-host-key`: `HOST:PORT ALGORITHM SHA256:…`), when the engine is connected.
    fn note_target_key(&self, cx: &mut StepCx<'_>) {
        use std::sync::atomic::Ordering;
        if self.target_key_noted.load(Ordering::Relaxed) {
            return;
        }
        let key = match self.engine.try_lock() {
            Ok(slot) => slot.as_ref().and_then(|e| e.host_key().map(str::to_owned)),
            Err(_) => None,
        };
        if let Some(key) = key
            && cx.note("target-host-key", &key).is_ok()
        {
            self.target_key_noted.store(true, Ordering::Relaxed);
        }
    }

    /// Forgets the connection after a failure, so a retry reconnects.
    pub(super) async fn drop_vendor(&self) {
        *self.session.lock().await = None;
    }

    /// The step of the run's playbook with this id.
    fn spec(&self, id: &str) -> Option<&crate::playbook::Step> {
        self.playbook.as_ref()?.steps.iter().find(|s| s.id == id)
    }
}

/// Forgets the vendor connection when dropped armed (the step's future was dropped).
struct ForgetSessionOnDrop<'a>(Option<&'a Live>);

impl Drop for ForgetSessionOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(live) = self.0
            && let Ok(mut slot) = live.session.try_lock()
        {
            *slot = None;
        }
    }
}

impl Runner for Live {
    fn supports(&self, _step: &PlannedStep) -> Result<(), String> {
        Ok(())
    }

    async fn execute(&self, step: &PlannedStep, cx: &mut StepCx<'_>) -> Result<Value, StepError> {
        // Cut off (a time limit, Ctrl-C), the step's connection goes with it, so the
        // command on the vendor host ends and a retry starts on a fresh one.
        let mut guard = ForgetSessionOnDrop(Some(self));
        let result = super::execute(self, step, cx).await;
        self.note_target_key(cx);
        if result.is_err() {
            self.drop_vendor().await;
        }
        guard.0 = None;
        result
    }

    async fn undo(&self, item: &UndoItem) -> Result<(), StepError> {
        super::undo::undo(self, item).await
    }

    async fn keep(
        &self,
        keep: &crate::engine::keep::Keep,
        run_dir: &Path,
    ) -> Result<crate::engine::keep::Kept, StepError> {
        super::keep::keep(self, keep, run_dir).await
    }

    /// A `restore` right after the `dump` it loads reads the dump as it is written.
    fn streams_from(&self, producer: &PlannedStep, consumer: &PlannedStep) -> bool {
        matches!(
            (&producer.spec.kind, &consumer.spec.kind),
            (StepKind::Dump(_), StepKind::Restore(r)) if r.from == producer.id
        )
    }

    async fn still_valid(
        &self,
        step: &PlannedStep,
        facts: &Value,
        artifacts: &Path,
    ) -> Result<(), String> {
        super::still_valid(self, step, facts, artifacts).await
    }

    /// The target engine, if connected, has no request that makes or changes something in
    /// flight (one a stopped step left behind included).
    async fn settled(&self) {
        let engine = self.engine.lock().await.as_ref().map(Arc::clone);
        if let Some(e) = engine {
            e.settled().await;
        }
    }

    async fn unsettled(&self) -> Vec<String> {
        // Not waited for: the executor asks while its wait for `settled` (which may be
        // queued on this lock) is held unpolled, and a queued waiter would get it first.
        let engine = self
            .engine
            .try_lock()
            .ok()
            .and_then(|e| e.as_ref().map(Arc::clone));
        engine.map(|e| e.unsettled()).unwrap_or_default()
    }
}
