//! Run ids and UTC timestamps, formatted without any date library.
//!
//! Owns the `YYYYMMDDTHHMMSSZ-xxxx` run id format and RFC 3339 UTC second
//! precision timestamps. Invariants: a [`RunId`] value is always valid (it
//! can only be built by [`RunId::new`] or the strict [`RunId::parse`]), so it
//! is a safe path component; ids sort lexicographically in time order; only
//! years 1970..=9999 are representable.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Last second representable with a four-digit year (9999-12-31T23:59:59Z).
const MAX_SECS: u64 = 253_402_300_799;

/// A time that cannot be written as an RFC 3339 UTC timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The time is before 1970-01-01T00:00:00Z.
    #[error("time is before the Unix epoch")]
    BeforeEpoch,
    /// The time is after 9999-12-31T23:59:59Z.
    #[error("time is after the year 9999")]
    TooLate,
}

/// A run id was not of the form `YYYYMMDDTHHMMSSZ-xxxx`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid run id {value:?}: {reason} (expected e.g. 20261122T120301Z-3f9c)")]
pub struct RunIdError {
    /// The rejected text (cut to 64 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Broken-down UTC time, second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Civil {
    fn from_system_time(t: SystemTime) -> Result<Self, TimeError> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| TimeError::BeforeEpoch)?
            .as_secs();
        if secs > MAX_SECS {
            return Err(TimeError::TooLate);
        }
        let (year, month, day) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        Ok(Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        })
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's
/// `civil_from_days`, restricted to non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats `t` as an RFC 3339 UTC timestamp with second precision,
/// e.g. `2026-11-22T12:03:01Z` (sub-second parts are truncated).
///
/// # Errors
/// [`TimeError`] if `t` is before 1970 or after the year 9999.
pub fn utc_rfc3339(t: SystemTime) -> Result<String, TimeError> {
    let c = Civil::from_system_time(t)?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    ))
}

/// Identifier of one run: `YYYYMMDDTHHMMSSZ-xxxx` (UTC start time plus four
/// lowercase hex digits). Always valid; lexicographic order is time order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// Builds the id for a run started at `now` with random `suffix`.
    ///
    /// # Errors
    /// [`TimeError`] if `now` is before 1970 or after the year 9999.
    pub fn new(now: SystemTime, suffix: u16) -> Result<Self, TimeError> {
        let c = Civil::from_system_time(now)?;
        Ok(Self(format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{suffix:04x}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )))
    }

    /// Parses and strictly validates a run id (digits, separators, calendar
    /// ranges and lowercase hex suffix).
    ///
    /// # Errors
    /// [`RunIdError`] naming what is wrong.
    pub fn parse(s: &str) -> Result<Self, RunIdError> {
        let err = |reason| RunIdError {
            value: s.chars().take(64).collect(),
            reason,
        };
        let &[
            y0,
            y1,
            y2,
            y3,
            mo0,
            mo1,
            d0,
            d1,
            t,
            h0,
            h1,
            mi0,
            mi1,
            s0,
            s1,
            z,
            dash,
            x0,
            x1,
            x2,
            x3,
        ] = s.as_bytes()
        else {
            return Err(err("wrong length"));
        };
        if (t, z, dash) != (b'T', b'Z', b'-') {
            return Err(err("wrong separators"));
        }
        let num = |ds: &[u8]| {
            ds.iter().try_fold(0u64, |acc, c| {
                c.is_ascii_digit()
                    .then(|| acc * 10 + u64::from(c - b'0'))
                    .ok_or_else(|| err("expected a digit"))
            })
        };
        let (year, month, day) = (num(&[y0, y1, y2, y3])?, num(&[mo0, mo1])?, num(&[d0, d1])?);
        let (hour, minute, second) = (num(&[h0, h1])?, num(&[mi0, mi1])?, num(&[s0, s1])?);
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(err("year or month out of range"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(err("day out of range"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(err("time of day out of range"));
        }
        let hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
        if ![x0, x1, x2, x3].iter().all(hex) {
            return Err(err("suffix is not four lowercase hex digits"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RunId {
    type Err = RunIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for RunId {
    type Error = RunIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests;
