//! What the operator is told while a deploy waits for health: one line when the reason
//! changes, never the same line twice in a row, and nothing for a check that found the
//! app not listening yet unless that lasts ([`QUIET_CHECKS`] checks in a row): the first
//! check of nearly every deploy meets docker-proxy before the app listens, and that is
//! not news. A line after repeats says how many checks the previous reason lasted.

/// Checks in a row that may find the app not listening yet before it is said.
pub(super) const QUIET_CHECKS: u32 = 3;

/// The waiting lines of one health wait.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    /// The reason last said, and how many checks in a row gave it since.
    said: Option<(String, u32)>,
    /// Checks in a row that found the app not listening (`transient`).
    quiet: u32,
    /// Every failed check.
    checks: u32,
}

impl Waiting {
    /// A check failed for `reason` (`transient`: the app is not listening yet). The line
    /// to show, if any.
    pub(super) fn failed(&mut self, reason: &str, transient: bool) -> Option<String> {
        self.checks += 1;
        self.quiet = if transient { self.quiet + 1 } else { 0 };
        if let Some((said, times)) = &mut self.said
            && said == reason
        {
            *times += 1;
            return None;
        }
        if transient && self.quiet < QUIET_CHECKS {
            return None;
        }
        let before = match &self.said {
            Some((_, times)) if *times > 1 => {
                format!(" (the reason before held for {times} checks)")
            }
            _ => String::new(),
        };
        self.said = Some((reason.to_string(), 1));
        Some(format!("waiting for health: {reason}{before}"))
    }

    /// Failed checks so far.
    pub(super) fn checks(&self) -> u32 {
        self.checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(checks: &[(&str, bool)]) -> Vec<String> {
        let mut w = Waiting::default();
        checks.iter().filter_map(|(r, t)| w.failed(r, *t)).collect()
    }

    #[test]
    fn the_same_reason_is_said_once_whatever_the_number_of_checks() {
        let sixty = vec![("GET / answered 404, expected 200", false); 60];
        assert_eq!(
            lines(&sixty),
            ["waiting for health: GET / answered 404, expected 200"]
        );
    }

    #[test]
    fn a_new_reason_is_said_with_how_long_the_one_before_held() {
        let mut checks = vec![("answered 502", false); 5];
        checks.extend([("answered 404", false), ("answered 502", false)]);
        assert_eq!(
            lines(&checks),
            [
                "waiting for health: answered 502",
                "waiting for health: answered 404 (the reason before held for 5 checks)",
                "waiting for health: answered 502",
            ]
        );
    }

    #[test]
    fn an_app_not_listening_yet_is_not_news_unless_it_lasts() {
        // The usual deploy: one reset by docker-proxy, then healthy: nothing said.
        assert!(lines(&[("no answer yet (connection reset by peer)", true)]).is_empty());
        let two = [("no answer yet (connection refused)", true); 2];
        assert!(lines(&two).is_empty());
        // Lasting: said once, at the third check in a row.
        let mut w = Waiting::default();
        let said: Vec<(u32, String)> = (1..=10)
            .filter_map(|i| {
                w.failed("no answer yet (connection refused)", true)
                    .map(|l| (i, l))
            })
            .collect();
        assert_eq!(
            said,
            [(
                QUIET_CHECKS,
                "waiting for health: no answer yet (connection refused)".to_string()
            )]
        );
        assert_eq!(w.checks(), 10);
    }

    #[test]
    fn a_real_answer_after_silence_is_said_at_once() {
        let checks = [
            ("no answer yet (connection reset by peer)", true),
            ("GET /health answered 500, expected 200", false),
            ("no answer yet (connection reset by peer)", true),
        ];
        assert_eq!(
            lines(&checks),
            ["waiting for health: GET /health answered 500, expected 200"]
        );
    }
}
