use super::*;
use std::time::Duration;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn formats_known_dates() {
    assert_eq!(utc_rfc3339(at(0)).unwrap(), "1970-01-01T00:00:00Z");
    assert_eq!(
        utc_rfc3339(at(951_782_400)).unwrap(),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(
        utc_rfc3339(at(1_795_348_981)).unwrap(),
        "2026-11-22T12:03:01Z"
    );
    assert_eq!(utc_rfc3339(at(MAX_SECS)).unwrap(), "9999-12-31T23:59:59Z");
    assert_eq!(utc_rfc3339(at(MAX_SECS + 1)), Err(TimeError::TooLate));
    let before = UNIX_EPOCH.checked_sub(Duration::from_secs(1)).unwrap();
    assert_eq!(utc_rfc3339(before), Err(TimeError::BeforeEpoch));
}

#[test]
fn civil_matches_day_by_day_walk() {
    let (mut y, mut m, mut d) = (1970, 1, 1);
    for days in 0..200_000 {
        assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
        d += 1;
        if d > days_in_month(y, m) {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
}

#[test]
fn run_id_format_parse_and_order() {
    let id = RunId::new(at(1_795_348_981), 0x3f9c).unwrap();
    assert_eq!(id.as_str(), "20261122T120301Z-3f9c");
    assert_eq!(RunId::parse(id.as_str()).unwrap(), id);
    assert_eq!("20261122T120301Z-3f9c".parse::<RunId>().unwrap(), id);
    assert_eq!(
        RunId::new(at(0), 1).unwrap().as_str(),
        "19700101T000000Z-0001"
    );
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, "\"20261122T120301Z-3f9c\"");
    assert_eq!(serde_json::from_str::<RunId>(&json).unwrap(), id);
    assert!(serde_json::from_str::<RunId>("\"..\"").is_err());
    let ids: Vec<RunId> = [5u64, 1_000_000_000, 4_000_000_000, 99]
        .iter()
        .map(|s| RunId::new(at(*s), 0xffff).unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    let expected = [&ids[0], &ids[3], &ids[1], &ids[2]];
    assert!(sorted.iter().eq(expected));
}

#[test]
fn run_id_rejects_bad_input() {
    for bad in [
        "",
        "..",
        "20261122T120301Z-3F9C",
        "20261122T120301Z-3f9",
        "20261122T120301Z-3f9cc",
        "20261122t120301Z-3f9c",
        "20261322T120301Z-3f9c",
        "20260230T120301Z-3f9c",
        "20261122T240301Z-3f9c",
        "20261122T126001Z-3f9c",
        "19691231T235959Z-0000",
        "2026112/T120301Z-3f9c",
        "20261122T120301Z/3f9c",
        "+0261122T120301Z-3f9c",
    ] {
        assert!(RunId::parse(bad).is_err(), "{bad:?} accepted");
    }
    assert!(RunId::parse("20240229T000000Z-abcd").is_ok());
    assert!(RunId::parse("21000229T000000Z-abcd").is_err());
}
