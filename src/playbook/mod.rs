//! The playbook format (version 1): read, check, explain.
//!
//! Owns: turning a file into a validated [`Playbook`] or into diagnostics that name
//! file:line:column. Three passes, each reporting all it finds:
//! 1. YAML (serde-saphyr, in `yaml.rs` only) into a spanned tree, within budgets;
//! 2. the tree's shape against the JSON Schema generated from `raw.rs` (`shape.rs`);
//! 3. the typed raw playbook through the format's rules (`validate*.rs`).
//!
//! Invariant: [`load`] and [`parse`] never panic, whatever the bytes; a file larger than
//! [`MAX_PLAYBOOK_BYTES`] is refused before it is parsed, and anything but a regular file
//! (a FIFO, a device) before it is opened (`local_file.rs`).

mod assess;
mod decommission;
pub use decommission::unit_problem;
mod hosts;
mod kinds;
mod local_file;
mod model;
mod raw;
pub mod secret;
mod shape;
pub mod template;
mod text;
pub mod units;
mod validate;
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use assess::{Assess, AssessRequest, HttpUrl, SECRET_HEADERS};
pub use kinds::{CAPABILITIES, is_image_ref, is_route_host};
pub use local_file::{LocalFileError, read_regular};
pub use model::*;
pub use raw::STEP_KINDS;
pub use secret::{SecretDef, SecretSource, load_secrets};
pub use template::Template;
pub use validate::{is_app_name, is_docker_name, is_step_id};

use crate::diag::{Diagnostic, Loc};
use crate::secret::SecretStore;

/// The largest playbook read: 1 MiB.
pub const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;

/// The outcome of reading one playbook file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The path as given.
    pub path: PathBuf,
    /// The file's text (empty when it could not be read).
    pub text: String,
    /// The validated playbook, when there were no errors.
    pub playbook: Option<Playbook>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    fn failed(path: &Path, d: Diagnostic) -> Self {
        Self {
            path: path.to_path_buf(),
            text: String::new(),
            playbook: None,
            diagnostics: vec![d],
        }
    }
}

/// Reads and validates a playbook file.
pub fn load(path: &Path) -> Loaded {
    let fail = |msg: String, help: &str| {
        let mut d = Diagnostic::error(None, msg);
        if !help.is_empty() {
            d = d.help(help);
        }
        Loaded::failed(path, d)
    };
    let bytes = match local_file::read_regular(path, MAX_PLAYBOOK_BYTES) {
        Ok(b) => b,
        Err(LocalFileError::NotFound { .. }) => {
            return fail(
                format!("no playbook at {}", path.display()),
                "check the path; playbooks usually live in playbooks/",
            );
        }
        Err(LocalFileError::NotRegular {
            kind: "a directory",
            ..
        }) => {
            return fail(
                format!("{} is a directory, not a playbook file", path.display()),
                "name a .yml file inside it",
            );
        }
        Err(e @ LocalFileError::NotRegular { .. }) => {
            return fail(
                e.to_string(),
                "a playbook is read from a regular file (a FIFO or a device is never read)",
            );
        }
        Err(LocalFileError::TooLarge { len, .. }) => {
            return fail(
                format!(
                    "{} is {len} bytes; a playbook may be at most 1 MiB",
                    path.display()
                ),
                "a playbook describes one app: large data belongs in the vendor's files, not here",
            );
        }
        Err(e @ LocalFileError::Io { .. }) => return fail(e.to_string(), ""),
    };
    parse(path, &bytes)
}

/// Validates a playbook's bytes; `path` names it in messages and anchors relative paths.
pub fn parse(path: &Path, bytes: &[u8]) -> Loaded {
    let sha256 = crate::digest::sha256_hex(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_owned(),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = bytecount_newlines(good) + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            let d = Diagnostic::error(
                Some(Loc::at(
                    u32::try_from(line).unwrap_or(u32::MAX),
                    u32::try_from(col).unwrap_or(u32::MAX),
                )),
                "the playbook is not UTF-8 text",
            )
            .label("invalid byte here")
            .help("save the file as UTF-8; a binary file is not a playbook");
            let mut l = Loaded::failed(path, d);
            l.text = String::from_utf8_lossy(bytes).into_owned();
            return l;
        }
    };
    let mut loaded = Loaded {
        path: path.to_path_buf(),
        text,
        playbook: None,
        diagnostics: Vec::new(),
    };
    let text = loaded.text.as_str();
    let tree = match yaml::parse_tree(text) {
        Ok(t) => t,
        Err(d) => {
            loaded.diagnostics.push(d);
            return loaded;
        }
    };
    match &tree.value {
        yaml::Node::Null => {
            loaded.diagnostics.push(
                Diagnostic::error(Some(Loc::at(1, 1)), "the playbook is empty")
                    .label("expected a mapping with `version`, `app`, `vendor` and `steps`")
                    .help(
                        "see playbooks/ for examples, or run `boyong schema` for the full format",
                    ),
            );
            return loaded;
        }
        yaml::Node::Map(_) => {}
        other => {
            loaded.diagnostics.push(
                Diagnostic::error(
                    Some(tree.loc),
                    format!("a playbook is a mapping, found {}", other.kind()),
                )
                .label("expected `version: 1`, `app: ...`, `vendor: ...`, `steps: ...`"),
            );
            return loaded;
        }
    }
    let shape_errors = shape::check(json_schema(), &tree);
    if !shape_errors.is_empty() {
        loaded.diagnostics = shape_errors;
        sort(&mut loaded.diagnostics);
        return loaded;
    }
    let raw: raw::RawPlaybook = match yaml::parse_typed(text) {
        Ok(r) => r,
        Err(d) => {
            loaded.diagnostics.push(d);
            return loaded;
        }
    };
    let (playbook, mut diags) = validate::validate(&raw, text, path, sha256);
    sort(&mut diags);
    loaded.playbook = playbook;
    loaded.diagnostics = diags;
    loaded
}

fn sort(d: &mut [Diagnostic]) {
    d.sort_by_key(|d| d.loc.map(|l| (l.line, l.col)));
}

/// The JSON Schema of the format, generated from the raw types.
pub fn json_schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut v = serde_json::to_value(schemars::schema_for!(raw::RawPlaybook))
            .unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "$id".into(),
                serde_json::Value::String("https://boyong.invalid/schema/playbook-v1.json".into()),
            );
        }
        v
    })
}

/// Local inputs a run will need: unset secrets are errors (`validate` shows them as
/// warnings; `plan` and `run` refuse), missing key files and loose secret-file
/// permissions are warnings.
pub fn check_local_inputs(
    pb: &Playbook,
    env: &dyn Fn(&str) -> Option<String>,
) -> (SecretStore, Vec<Diagnostic>) {
    let (store, mut problems) = load_secrets(&pb.secrets, env);
    let mut files: Vec<(&str, &Path)> = Vec::new();
    if let VendorAuth::Key { identity, .. } = &pb.vendor.auth {
        files.push(("vendor.identity", identity));
    }
    if let Some(k) = &pb.vendor.known_hosts {
        files.push(("vendor.known_hosts", k));
    }
    match &pb.target.docker {
        DockerEndpoint::Tcp { ca, cert, key, .. } => files.extend([
            ("target.tls.ca", ca.as_path()),
            ("target.tls.cert", cert),
            ("target.tls.key", key),
        ]),
        DockerEndpoint::Ssh {
            identity,
            known_hosts,
            ..
        } => files.extend([
            ("target.identity", identity.as_path()),
            ("target.known_hosts", known_hosts),
        ]),
        DockerEndpoint::Unix(_) => {}
    }
    for (field, f) in files {
        if field == "vendor.known_hosts" && !f.exists() {
            problems.push(Diagnostic::warning(
                None,
                format!(
                    "`{field}`: {} does not exist yet: it is read as empty, so the vendor's host key will be refused with its fingerprint and the exact line to add (or, with `--accept-new-host-key`, written there)",
                    f.display()
                ),
            ));
            continue;
        }
        if !f.is_file() {
            problems.push(Diagnostic::warning(
                None,
                format!(
                    "`{field}`: {} does not exist or is not a file; a run will need it",
                    f.display()
                ),
            ));
        }
    }
    problems.extend(secret::file_permission_warnings(&pb.secrets));
    (store, problems)
}

fn bytecount_newlines(b: &[u8]) -> usize {
    b.split(|&c| c == b'\n').count() - 1
}
