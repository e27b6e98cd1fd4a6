//! The decommission's "last assessment passed" precondition: the newest assessment of the
//! app, from either place one is kept, judged against the release the decommission follows.
//!
//! An assessment is kept in two places: `boyong assess` replaces `apps/<app>/assessment.json`
//! ([`crate::assess::store`]), and a run's `assess` step journals its [`Assessment`] as the
//! step's facts. The newer of the two (by `started`; a failed one on a tie) is the app's
//! last assessment:
//! - failed: blocks, naming its first failure, however old (the vendor's copy is the
//!   reference the assessment compares against; it is not deleted while the last word on
//!   the copy is that it does not match: a later run alone does not clear it, an assessment
//!   that passes does);
//! - passed, made since the run started: holds;
//! - passed before the run started (an earlier release's), or none at all: shown as
//!   `none`, not blocking;
//! - while a decommission of the app is under way, not asked: the vendor's copy is partly
//!   gone, so an assessment now fails by design (one that failed before it began blocked
//!   its start).

use std::time::{Duration, UNIX_EPOCH};

use super::{Check, Source};
use crate::assess::Assessment;
use crate::engine::state::{StateDir, utc_rfc3339};

/// The check's name, as the plan and the certificate show it.
const NAME: &str = "last assessment passed";

/// The precondition for `app`, whose latest run is `src`; `under_way`: a decommission of
/// it began and did not finish.
pub(super) fn check(dir: &StateDir, app: &str, src: &Source, under_way: bool) -> Check {
    if under_way {
        return Check {
            name: NAME.into(),
            state: "none".into(),
            detail: "not asked: a decommission under way has removed part of the vendor's copy, which an assessment compares against".into(),
        };
    }
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
    let Some((a, by)) = last else {
        return Check {
            name: NAME.into(),
            state: "none".into(),
            detail: "none recorded".into(),
        };
    };
    let at = utc_rfc3339(UNIX_EPOCH + Duration::from_secs(a.started)).unwrap_or_default();
    let earlier = run_started.is_some_and(|s| a.started < s);
    if !a.passed {
        let first = a.failures.first().map_or("", String::as_str);
        let when = if earlier {
            format!(" (before run {run}, and still the last)")
        } else {
            String::new()
        };
        return Check::new(
            NAME,
            false,
            format!(
                "{} by {by} at {at}{when}: {first}; once mended, `boyong assess` again",
                a.verdict()
            ),
        );
    }
    if earlier {
        return Check {
            name: NAME.into(),
            state: "none".into(),
            detail: format!(
                "the last, {} by {by} at {at}, is older than run {run}: it assessed an earlier release (`boyong assess` this one)",
                a.verdict()
            ),
        };
    }
    Check::new(NAME, true, format!("{} by {by} at {at}", a.verdict()))
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
    fn none_or_a_passed_one_of_an_earlier_release_does_not_block_a_failed_one_does() {
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
        assert!(old.blocks(), "a failed one blocks however old: {old:?}");
        assert!(
            old.detail.contains("before run r1, and still the last"),
            "{old:?}"
        );
        let old = judge(
            Some((assessment(500, &[]), "`boyong assess`".into())),
            "r1",
            Some(1_000),
        );
        assert_eq!(old.state, "none", "{old:?}");
        assert!(old.detail.contains("earlier release"), "{old:?}");
    }
}
