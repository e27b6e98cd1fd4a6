//! Semantic validation: the raw playbook (shape already checked) becomes a [`Playbook`].
//!
//! Owns: every rule of the format that is not shape: version, names and ids,
//! references between steps, `{{ vars.X }}` resolution, where secrets may and may not
//! go, durations, sizes, ports, paths. All problems are collected; none stops the
//! check early. Step kinds are checked in `kinds/`, the vendor and target in `hosts.rs`; the characters a field may
//! hold (no control characters, but in scripts and env values) in `text.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::model::{Playbook, Step, StepKind};
use super::raw::{RawPlaybook, RawStep, RawValue, STEP_KINDS};
use super::secret::{SecretDef, SecretSource};
use super::template::{Part, Piece, Template, is_var_name, scan};
use super::yaml::Sp;
use crate::diag::{Diagnostic, Loc};

/// What a var holds.
#[derive(Debug, Clone)]
pub(super) enum Var {
    /// Plain text.
    Text(String),
    /// A secret (by name).
    Secret,
}

/// The state of one validation.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts about the playbook, each read by its own rules"
)]
pub(super) struct Validator<'a> {
    src: &'a str,
    dir: &'a Path,
    pub(super) diags: Vec<Diagnostic>,
    vars: BTreeMap<String, (Var, Loc)>,
    used_vars: BTreeSet<String>,
    /// While set, a text var is inserted as one shell word (`exec.run`, `exec.undo`).
    pub(super) shell_words: bool,
    pub(super) secrets: BTreeMap<String, SecretDef>,
    /// (id, kind, loc) of every step, in order.
    pub(super) steps: Vec<(String, &'static str, Loc)>,
    /// The top-level `assess:` section, once validated (`assess` steps run it).
    pub(super) assess: Option<super::assess::Assess>,
    /// The target engine is reached over `ssh://` (its addresses are not this machine's).
    pub(super) ssh_target: bool,
    /// The target engine is reached over `tcp://` on another host (checks are still made
    /// from here).
    pub(super) tcp_target: bool,
    /// The target is a Swarm manager (`target.swarm: true`).
    pub(super) swarm_target: bool,
}

/// Validates a shape-checked raw playbook.
pub fn validate(
    raw: &RawPlaybook,
    src: &str,
    path: &Path,
    sha256: String,
) -> (Option<Playbook>, Vec<Diagnostic>) {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut v = Validator {
        src,
        dir,
        diags: Vec::new(),
        vars: BTreeMap::new(),
        used_vars: BTreeSet::new(),
        shell_words: false,
        secrets: BTreeMap::new(),
        steps: Vec::new(),
        assess: None,
        ssh_target: false,
        tcp_target: false,
        swarm_target: false,
    };
    if raw.version.value != 1 {
        v.error(
            raw.version.loc,
            format!("unsupported format version {}", raw.version.value),
            "expected `version: 1`",
        );
    }
    let app = raw.app.value.clone();
    if !is_app_name(&app) {
        v.error(
            raw.app.loc,
            format!("`{app}` is not a valid app name"),
            "expected lowercase letters, digits and `-`, starting with a letter or digit, at most 63 characters",
        );
    }
    v.vars(&raw.vars);
    let description = raw.description.as_ref().map(|d| v.text(d, "description"));
    let vendor = v.vendor(&raw.vendor);
    let target = v.target(raw.target.as_ref());
    // As written, so that a route's rule applies even when the endpoint has errors.
    v.ssh_target = raw
        .target
        .as_ref()
        .and_then(|t| t.value.docker.as_ref())
        .is_some_and(|d| d.value.starts_with("ssh://"));
    v.tcp_target = matches!(&target.docker, super::model::DockerEndpoint::Tcp { host, .. }
        if !(host.starts_with("127.") || host == "localhost" || host == "::1" || host == "[::1]"));
    v.swarm_target = target.swarm;
    v.assess = raw.assess.as_ref().and_then(|a| v.assess(a));
    v.index_steps(&raw.steps.value);
    if raw.steps.value.is_empty() {
        v.error(
            raw.steps.loc,
            "the playbook has no steps",
            "expected a list of steps",
        );
    }
    let steps: Vec<Option<Step>> = raw
        .steps
        .value
        .iter()
        .enumerate()
        .map(|(i, s)| v.step(i, &s.value, s.loc))
        .collect();
    v.cross_checks(&steps);
    let mut steps = steps;
    let locs: Vec<Loc> = v.steps.iter().map(|(_, _, l)| *l).collect();
    super::kinds::link_files(&mut v, &mut steps, &locs);
    let decommission_after = raw
        .decommission
        .as_ref()
        .and_then(|d| d.value.after.as_ref())
        .and_then(|a| match crate::playbook::units::parse_age(&a.value) {
            Ok(secs) => Some(secs),
            Err(e) => {
                v.error(
                    a.loc,
                    format!("`decommission.after`: {e}"),
                    "expected e.g. `7d`, `36h` or `0`",
                );
                None
            }
        });
    let decommission = raw
        .decommission
        .as_ref()
        .map(|d| v.decommission(&d.value))
        .unwrap_or_default();
    let assess = v.assess.clone();
    v.unused_vars();
    let ok = !v.diags.iter().any(Diagnostic::is_error);
    let playbook = match (ok, vendor, steps.into_iter().collect::<Option<Vec<_>>>()) {
        (true, Some(vendor), Some(steps)) => Some(Playbook {
            path: path.to_path_buf(),
            sha256,
            app,
            description,
            vendor,
            target,
            secrets: v.secrets.clone(),
            steps,
            decommission_after,
            decommission,
            assess,
        }),
        _ => None,
    };
    (playbook, v.diags)
}

/// `[a-z0-9][a-z0-9-]{0,62}`.
pub fn is_app_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Step ids: `[a-z0-9][a-z0-9_-]{0,62}`.
pub fn is_step_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

/// Docker object names (containers, networks, volumes): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn is_docker_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

impl Validator<'_> {
    pub(super) fn error(&mut self, loc: Loc, message: impl Into<String>, label: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(Some(loc), message).label(label));
    }

    pub(super) fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Location of byte `offset` inside the scalar at `loc` (skipping an opening quote).
    pub(super) fn loc_in(&self, loc: Loc, value: &str, offset: usize, len: usize) -> Loc {
        let line = self.src.lines().nth(loc.line.saturating_sub(1) as usize);
        let quoted = line
            .and_then(|l| l.chars().nth(loc.col.saturating_sub(1) as usize))
            .is_some_and(|c| c == '"' || c == '\'');
        let before = value.get(..offset).map_or(0, |s| s.chars().count());
        let width = value
            .get(offset..offset + len)
            .map_or(1, |s| s.chars().count());
        Loc {
            line: loc.line,
            col: loc.col + u32::from(quoted) + u32::try_from(before).unwrap_or(0),
            len: u32::try_from(width).unwrap_or(1),
        }
    }

    /// Resolves `{{ vars.X }}` in a field. `why_no_secrets`: `None` allows secrets;
    /// otherwise the reason a secret may not go into this field.
    fn interpolate(
        &mut self,
        s: &Sp<String>,
        field: &str,
        why_no_secrets: Option<&str>,
    ) -> Template {
        let pieces = match scan(&s.value) {
            Ok(p) => p,
            Err(e) => {
                let loc = self.loc_in(s.loc, &s.value, e.offset, e.len);
                self.error(
                    loc,
                    format!("bad reference in `{field}`: {}", e.message),
                    "here",
                );
                return Template::text(s.value.clone());
            }
        };
        let mut parts: Vec<Part> = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Lit(t) => push_lit(&mut parts, &t),
                Piece::Var { name, offset, len } => {
                    let loc = self.loc_in(s.loc, &s.value, offset, len);
                    match self.vars.get(&name).cloned() {
                        Some((Var::Text(t), _)) => {
                            self.used_vars.insert(name);
                            if self.shell_words {
                                push_lit(&mut parts, &crate::shell::quote(&t));
                            } else {
                                push_lit(&mut parts, &t);
                            }
                        }
                        Some((Var::Secret, _)) => {
                            self.used_vars.insert(name.clone());
                            if let Some(why) = why_no_secrets {
                                self.push(
                                    Diagnostic::error(
                                        Some(loc),
                                        format!("secret `{name}` cannot be used in `{field}`"),
                                    )
                                    .label(why.to_string()),
                                );
                            }
                            parts.push(Part::Secret(name));
                        }
                        None => {
                            let names: Vec<String> = self.vars.keys().cloned().collect();
                            self.push(
                                Diagnostic::error(Some(loc), format!("`vars.{name}` is not defined"))
                                    .label("used here")
                                    .did_you_mean(&name, names.iter().map(String::as_str))
                                    .help(format!("define it under `vars:`, e.g. `{name}: \"...\"` or `{name}: {{ env: {} }}`", name.to_uppercase())),
                            );
                        }
                    }
                }
            }
        }
        self.check_controls(s, field, &parts);
        Template(parts)
    }

    /// What var `name` holds (and marks it used); `None` when it is not defined.
    pub(super) fn var(&mut self, name: &str) -> Option<Var> {
        let v = self.vars.get(name).map(|(v, _)| v.clone())?;
        self.used_vars.insert(name.to_string());
        Some(v)
    }

    /// A text field where secrets are not allowed.
    pub(super) fn text(&mut self, s: &Sp<String>, field: &str) -> String {
        self.interpolate(
            s,
            field,
            Some("a secret may not be put here: it would show in plans, logs or metadata"),
        )
        .to_string()
    }

    /// A text field where secrets are refused with a specific reason.
    pub(super) fn text_because(&mut self, s: &Sp<String>, field: &str, why: &str) -> String {
        self.interpolate(s, field, Some(why)).to_string()
    }

    /// A field that may hold secrets.
    pub(super) fn template(&mut self, s: &Sp<String>, field: &str) -> Template {
        self.interpolate(s, field, None)
    }

    /// A field that must be a secret: `{ env }`, `{ file }`, or exactly `{{ vars.SECRET }}`.
    pub(super) fn secret_field(&mut self, v: &Sp<RawValue>, field: &str) -> Template {
        match &v.value {
            RawValue::Env(_) | RawValue::File(_) => {
                let source = self.secret_source(&v.value, v.loc);
                self.secrets
                    .insert(field.to_string(), SecretDef { source, loc: v.loc });
                Template::secret(field)
            }
            RawValue::Text(t) => {
                let before = self.errors();
                let t = self.template(&Sp::new(t.clone(), v.loc), field);
                if !t.is_only_secret() && self.errors() == before {
                    self.push(
                        Diagnostic::error(Some(v.loc), format!("`{field}` must be a secret, not an inline value"))
                            .label("expected `{ env: NAME }`, `{ file: PATH }` or `\"{{ vars.NAME }}\"` naming a secret var")
                            .help("a password in a playbook ends up in version control and backups: keep it in the environment or a file")
                            .masked(),
                    );
                }
                t
            }
        }
    }

    fn secret_source(&mut self, v: &RawValue, loc: Loc) -> SecretSource {
        match v {
            RawValue::Env(name) => {
                if !is_var_name(name) {
                    self.error(
                        loc,
                        format!("`{name}` is not an environment variable name"),
                        "expected letters, digits and `_`",
                    );
                }
                SecretSource::Env(name.clone())
            }
            RawValue::File(p) => SecretSource::File(self.path(&Sp::new(p.clone(), loc), "file")),
            RawValue::Text(_) => SecretSource::Env(String::new()),
        }
    }

    /// Number of errors so far: checks of a value are skipped when resolving it already
    /// failed (an undefined var), so one mistake gives one message.
    pub(super) fn errors(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    /// A local path, resolved against the playbook's folder.
    pub(super) fn path(&mut self, s: &Sp<String>, field: &str) -> PathBuf {
        let before = self.errors();
        let text = self.text(s, field);
        if text.is_empty() && self.errors() == before {
            self.error(s.loc, format!("`{field}` is empty"), "expected a file path");
        }
        let p = PathBuf::from(&text);
        if p.is_absolute() { p } else { self.dir.join(p) }
    }

    /// A Docker object name.
    pub(super) fn docker_name(&mut self, s: &Sp<String>, field: &str) -> String {
        let before = self.errors();
        let t = self.text(s, field);
        if !is_docker_name(&t) && self.errors() == before {
            self.error(
                s.loc,
                format!("`{t}` is not a valid name for `{field}`"),
                "expected letters, digits, `_`, `.` and `-`, starting with a letter or digit",
            );
        }
        t
    }

    fn vars(&mut self, raw: &BTreeMap<String, Sp<RawValue>>) {
        for (name, v) in raw {
            if !is_var_name(name) {
                self.error(
                    v.loc,
                    format!("`{name}` is not a valid var name"),
                    "expected letters, digits and `_`, not starting with a digit",
                );
            }
            let var = match &v.value {
                RawValue::Text(t) => {
                    if t.contains("{{") {
                        self.error(
                            v.loc,
                            format!("var `{name}` refers to another var"),
                            "vars are plain values: write the value itself",
                        );
                    }
                    Var::Text(t.clone())
                }
                other => {
                    let source = self.secret_source(other, v.loc);
                    self.secrets
                        .insert(name.clone(), SecretDef { source, loc: v.loc });
                    Var::Secret
                }
            };
            self.vars.insert(name.clone(), (var, v.loc));
        }
    }

    fn unused_vars(&mut self) {
        let unused: Vec<(String, Loc)> = self
            .vars
            .iter()
            .filter(|(n, _)| !self.used_vars.contains(*n))
            .map(|(n, (_, l))| (n.clone(), *l))
            .collect();
        for (n, loc) in unused {
            self.push(
                Diagnostic::warning(Some(loc), format!("var `{n}` is never used"))
                    .label("declared here"),
            );
            if self.secrets.contains_key(&n) {
                self.secrets.remove(&n);
            }
        }
    }

    fn index_steps(&mut self, steps: &[Sp<RawStep>]) {
        let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
        for s in steps {
            let id = &s.value.id;
            if !is_step_id(&id.value) {
                self.error(
                    id.loc,
                    format!("`{}` is not a valid step id", id.value),
                    "expected lowercase letters, digits, `-` and `_`, at most 63 characters",
                );
            }
            if let Some(first) = seen.get(&id.value) {
                let first = *first;
                self.push(
                    Diagnostic::error(Some(id.loc), format!("duplicate step id `{}`", id.value))
                        .label(format!("first used on line {}", first.line))
                        .help("every step needs its own id"),
                );
            } else {
                seen.insert(id.value.clone(), id.loc);
            }
            let kind = kind_name(&s.value);
            self.steps.push((id.value.clone(), kind, id.loc));
        }
    }

    /// Resolves a reference from step `at` to an earlier step of kind `want`.
    pub(super) fn step_ref(
        &mut self,
        r: &Sp<String>,
        at: usize,
        want: &str,
        field: &str,
    ) -> Option<String> {
        let name = r.value.as_str();
        let pos = self.steps.iter().position(|(id, _, _)| id == name);
        match pos {
            Some(p) if p == at => {
                self.error(
                    r.loc,
                    format!("step `{name}` refers to itself in `{field}`"),
                    format!("expected an earlier `{want}` step"),
                );
                None
            }
            Some(p) if p > at => {
                self.error(
                    r.loc,
                    format!(
                        "step `{name}` comes later (step {}); `{field}` can only use earlier steps",
                        p + 1
                    ),
                    "move this step after it",
                );
                None
            }
            Some(p) if self.steps[p].1 != want => {
                let kind = self.steps[p].1;
                self.error(
                    r.loc,
                    format!("step `{name}` is a `{kind}` step; `{field}` takes a `{want}` step"),
                    format!("expected the id of an earlier `{want}` step"),
                );
                None
            }
            Some(_) => Some(name.to_string()),
            None => {
                let mut candidates: Vec<String> = self.steps[..at.min(self.steps.len())]
                    .iter()
                    .filter(|(_, k, _)| *k == want)
                    .map(|(id, _, _)| id.clone())
                    .collect();
                candidates.dedup();
                self.push(
                    Diagnostic::error(Some(r.loc), format!("no step `{name}`"))
                        .label(format!(
                            "expected the id of an earlier `{want}` step{}",
                            if candidates.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", candidates.join(", "))
                            }
                        ))
                        .did_you_mean(name, candidates.iter().map(String::as_str)),
                );
                None
            }
        }
    }

    /// True when `name` is an earlier step of kind `want`.
    pub(super) fn is_earlier(&self, name: &str, at: usize, want: &str) -> bool {
        self.steps[..at.min(self.steps.len())]
            .iter()
            .any(|(id, k, _)| id == name && *k == want)
    }

    fn cross_checks(&mut self, steps: &[Option<Step>]) {
        let mut containers: BTreeMap<String, &str> = BTreeMap::new();
        let mut host_ports: BTreeMap<(u16, bool), &str> = BTreeMap::new();
        let mut freeze: Option<&str> = None;
        for (s, (_, _, loc)) in steps.iter().zip(self.steps.clone()) {
            let Some(s) = s else { continue };
            if let StepKind::Exec(e) = &s.kind
                && e.freeze
            {
                if let Some(first) = freeze {
                    self.error(
                        loc,
                        format!("steps `{first}` and `{}` are both the freeze", s.id),
                        "expected one `freeze: true` per playbook",
                    );
                }
                freeze = Some(&s.id);
            }
            let name = match &s.kind {
                StepKind::Deploy(d) => {
                    for p in &d.ports {
                        let key = (p.host, p.proto == super::units::Proto::Udp);
                        if let Some(other) = host_ports.insert(key, &s.id) {
                            self.error(
                                loc,
                                format!(
                                    "host port {} is published by steps `{other}` and `{}`",
                                    p.host, s.id
                                ),
                                "use another host port",
                            );
                        }
                    }
                    Some(&d.name)
                }
                StepKind::Restore(r) => Some(&r.name),
                _ => None,
            };
            if let Some(name) = name
                && let Some(other) = containers.insert(name.clone(), &s.id)
            {
                self.error(
                    loc,
                    format!(
                        "container `{name}` is created by steps `{other}` and `{}`",
                        s.id
                    ),
                    "give each container its own name",
                );
            }
        }
    }
}

fn push_lit(parts: &mut Vec<Part>, t: &str) {
    if let Some(Part::Lit(last)) = parts.last_mut() {
        last.push_str(t);
    } else {
        parts.push(Part::Lit(t.to_string()));
    }
}

/// The kind of a raw step (the first present, or `?`).
fn kind_name(s: &RawStep) -> &'static str {
    let present = [
        s.fetch.is_some(),
        s.dump.is_some(),
        s.exec.is_some(),
        s.build.is_some(),
        s.restore.is_some(),
        s.deploy.is_some(),
        s.assess.is_some(),
    ];
    present
        .iter()
        .position(|p| *p)
        .map_or("?", |i| STEP_KINDS[i])
}
