//! The decommission's "last assessment passed" precondition: the newest assessment of the
//! app, from either place one is kept, judged against the release the decommission follows.
//!
//! An assessment is kept in two places: `boyong assess` replaces `apps/<app>/assessment.json`
//! ([`crate::assess::store`]), and a run's `assess` step journals its [`Assessment`] as the
//! step's facts. The newer of the two (by `started`) is the app's last assessment:
//! - failed: blocks, naming its first failure (the vendor's copy is the reference the
//!   assessment compares against; it is not deleted while the copy does not match it);
//! - passed: holds;
//! - made before the run started (an earlier release's), or none at all: shown as `none`,
//!   not blocking.

use std::time::{Duration, UNIX_EPOCH};

use super::{Check, Source};
use crate::assess::Assessment;
use crate::engine::state::{StateDir, utc_rfc3339};

/// The check's name, as the plan and the certificate show it.
const NAME: &str = "last assessment passed";

/// The precondition for `app`, whose latest run is `src`.
pub(super) fn check(dir: &StateDir, app: &str, src: &Source) -> Check {
    let history = src.history.as_ref().ok();
    let last =
        crate::assess::store::newest(dir, app, history.map(|h| &h.steps_done)).map(|(a, step)| {
            let by = step.map_or_else(
                || "`boyong assess`".to_string(),
                |id| format!("step {id} of run {}", src.run.id().as_str()),
            );
            (a, by)
        });
    let run_started = history.and_then(|h| crate::report::epoch_seconds(&h.header.started));
    judge(last, src.run.id().as_str(), run_started)
}

/// The verdict on the newest assessment `last` (with where it was kept), for run `run`
/// started at `run_started` (seconds since 1970).
fn judge(last: Option<(Assessment, String)>, run: &str, run_started: Option<u64>) -> Check {
    let none = |detail: String| Check {
        name: NAME.into(),
        state: "none".into(),
        detail,
    };
    let Some((a, by)) = last else {
        return none("none recorded".into());
    };
    let at = utc_rfc3339(UNIX_EPOCH + Duration::from_secs(a.started)).unwrap_or_default();
    if run_started.is_some_and(|s| a.started < s) {
        return none(format!(
            "the last, by {by} at {at}, is older than run {run}: it assessed an earlier release"
        ));
    }
    if a.passed {
        Check::new(NAME, true, format!("{} by {by} at {at}", a.verdict()))
    } else {
        let first = a.failures.first().map_or("", String::as_str);
        Check::new(
            NAME,
            false,
            format!(
                "{} by {by} at {at}: {first}; once mended, `boyong assess` again",
                a.verdict()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment(started: u64, failures: &[&str]) -> Assessment {
        Assessment {
            vendor_url: "http://vendor".into(),
            target_url: "http://target".into(),
            started,
            seconds: 1.0,
            repeat: 1,
            concurrency: 1,
            requests_sent: 2,
            budget_exhausted: false,
            results: Vec::new(),
            failures: failures.iter().map(ToString::to_string).collect(),
            passed: failures.is_empty(),
        }
    }

    #[test]
    fn a_failed_last_assessment_blocks_and_names_its_first_failure() {
        let c = judge(
            Some((
                assessment(2_000, &["GET /: content differs", "GET /a: 404"]),
                "`boyong assess`".into(),
            )),
            "r1",
            Some(1_000),
        );
        assert!(c.blocks(), "{c:?}");
        assert!(c.detail.contains("GET /: content differs"), "{c:?}");
        assert!(!c.detail.contains("GET /a"), "{c:?}");
    }

    #[test]
    fn a_passed_one_holds_and_says_by_what_and_when() {
        let c = judge(
            Some((assessment(2_000, &[]), "step compare of run r1".into())),
            "r1",
            Some(1_000),
        );
        assert_eq!(c.state, "ok", "{c:?}");
        assert!(
            c.detail
                .contains("by step compare of run r1 at 1970-01-01T00:33:20Z"),
            "{c:?}"
        );
    }

    #[test]
    fn none_or_one_of_an_earlier_release_is_shown_and_does_not_block() {
        let c = judge(None, "r1", Some(1_000));
        assert_eq!(
            (c.state.as_str(), c.detail.as_str()),
            ("none", "none recorded")
        );
        let old = judge(
            Some((assessment(500, &["GET /: 500"]), "`boyong assess`".into())),
            "r1",
            Some(1_000),
        );
        assert_eq!(old.state, "none", "{old:?}");
        assert!(
            !old.blocks() && old.detail.contains("earlier release"),
            "{old:?}"
        );
    }
}
