//! The app's last assessment, kept in the state directory as
//! `apps/<app>/assessment.json` (mode 0600; the [`Assessment`] as JSON, replaced whole by each
//! `boyong assess`; written to a temporary file, fsync'd, then renamed, so a reader sees
//! the old or the new one, never half of one). It holds no header value or request body.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use super::Assessment;
use crate::engine::state::{StateDir, StateError};

/// The file's name in the app's directory.
pub const FILE: &str = "assessment.json";

/// Where the app's last assessment is kept.
///
/// # Errors
/// `app` is not a valid app name.
pub fn path(dir: &StateDir, app: &str) -> Result<PathBuf, StateError> {
    Ok(dir.app_dir(app)?.join(FILE))
}

/// Keeps `a` as the app's last assessment.
///
/// # Errors
/// The app's directory or the file cannot be written.
pub fn save(dir: &StateDir, app: &str, a: &Assessment) -> Result<PathBuf, String> {
    let app_dir = dir.ensure_app_dir(app).map_err(|e| e.to_string())?;
    let file = app_dir.join(FILE);
    let tmp = app_dir.join(format!(".{FILE}.tmp"));
    let text = serde_json::to_string_pretty(a).map_err(|e| e.to_string())? + "\n";
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &file)
    };
    write().map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(file)
}

/// The app's last assessment, if there is one that can be read.
pub fn last(dir: &StateDir, app: &str) -> Option<Assessment> {
    let text = std::fs::read_to_string(path(dir, app).ok()?).ok()?;
    serde_json::from_str(&text).ok()
}

/// The app's last assessment, of either place one is kept: the newer (by `started`; a
/// failed one on a tie) of the
/// last `boyong assess` and the `assess` steps among a run's `steps_done` (their journaled
/// facts). With the step's id when it is a step's.
pub fn newest(
    dir: &StateDir,
    app: &str,
    steps_done: Option<&std::collections::BTreeMap<String, serde_json::Value>>,
) -> Option<(Assessment, Option<String>)> {
    let stepped = steps_done.into_iter().flatten().filter_map(|(id, facts)| {
        serde_json::from_value::<Assessment>(facts.clone())
            .ok()
            .map(|a| (a, Some(id.clone())))
    });
    // On a tie (the same second) a failed one: the safer word.
    last(dir, app)
        .map(|a| (a, None))
        .into_iter()
        .chain(stepped)
        .max_by_key(|(a, _)| (a.started, !a.passed))
}
