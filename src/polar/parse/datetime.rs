//! `datetime` query values as pydantic reads them in lax mode (speedate): an RFC 3339
//! datetime, a Unix timestamp in seconds or milliseconds, or else a date taken at midnight.
//! When both readings fail, the error names the date parser's reason.

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use super::Failure;

/// Timestamps beyond this many seconds are read as milliseconds, as speedate does.
const MILLISECONDS_THRESHOLD: f64 = 20_000_000_000.0;

pub fn check_datetime_str(text: &str) -> Result<DateTime<Utc>, Failure> {
    let bytes = text.as_bytes();
    if let Some(at) = parse_rfc3339(bytes).or_else(|| parse_timestamp(bytes)) {
        return Ok(at);
    }
    // A date alone is a datetime at midnight; without an offset it is read as UTC.
    parse_date(bytes)
        .map(|date| Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)))
        .map_err(Failure::datetime_from_date_parsing)
}

/// speedate's `Date::parse_bytes_rfc3339`, with its error texts.
fn parse_date(bytes: &[u8]) -> Result<NaiveDate, &'static str> {
    if bytes.len() < 10 {
        return Err("input is too short");
    }
    let date = parse_date_prefix(bytes)?;
    if bytes.len() > 10 {
        return Err("unexpected extra characters at the end of the input");
    }
    Ok(date)
}

fn digits(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0, |value, digit| value * 10 + u32::from(digit - b'0')),
    )
}

fn parse_date_prefix(bytes: &[u8]) -> Result<NaiveDate, &'static str> {
    let year = bytes
        .get(0..4)
        .and_then(digits)
        .ok_or("invalid character in year")?;
    if bytes.get(4) != Some(&b'-') {
        return Err("invalid date separator, expected `-`");
    }
    let month = bytes
        .get(5..7)
        .and_then(digits)
        .ok_or("invalid character in month")?;
    if bytes.get(7) != Some(&b'-') {
        return Err("invalid date separator, expected `-`");
    }
    let day = bytes
        .get(8..10)
        .and_then(digits)
        .ok_or("invalid character in day")?;
    if !(1..=12).contains(&month) {
        return Err("month value is outside expected range");
    }
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or("day value is outside expected range")
}

/// `YYYY-MM-DD` `T|t| |_` `HH:MM[:SS[.fraction]]` `[Z|z|±HH[:]MM]`.
fn parse_rfc3339(bytes: &[u8]) -> Option<DateTime<Utc>> {
    let date = parse_date_prefix(bytes).ok()?;
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ' | b'_')) {
        return None;
    }
    let hour = bytes.get(11..13).and_then(digits)?;
    if bytes.get(13) != Some(&b':') {
        return None;
    }
    let minute = bytes.get(14..16).and_then(digits)?;
    let mut position = 16;
    let mut second = 0;
    let mut nanosecond = 0;
    if bytes.get(position) == Some(&b':') {
        second = bytes.get(17..19).and_then(digits)?;
        position = 19;
        if matches!(bytes.get(position), Some(b'.' | b',')) {
            let fraction: Vec<u8> = bytes[position + 1..]
                .iter()
                .copied()
                .take_while(u8::is_ascii_digit)
                .collect();
            if fraction.is_empty() {
                return None;
            }
            position += 1 + fraction.len();
            // Digits past microseconds are truncated, as pydantic does by default.
            let micros: String = fraction
                .iter()
                .map(|digit| *digit as char)
                .chain(std::iter::repeat('0'))
                .take(6)
                .collect();
            nanosecond = micros.parse::<u32>().ok()? * 1000;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanosecond)?;
    let local = NaiveDateTime::new(date, time);
    let offset_seconds: i64 = match bytes.get(position) {
        None => 0,
        Some(b'Z' | b'z') if bytes.len() == position + 1 => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = bytes.get(position + 1..position + 3).and_then(digits)?;
            let mut minutes_at = position + 3;
            if bytes.get(minutes_at) == Some(&b':') {
                minutes_at += 1;
            }
            let minutes = bytes.get(minutes_at..minutes_at + 2).and_then(digits)?;
            if bytes.len() != minutes_at + 2 || hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' { -magnitude } else { magnitude }
        }
        Some(_) => return None,
    };
    let utc = local.checked_sub_signed(chrono::Duration::seconds(offset_seconds))?;
    Some(Utc.from_utc_datetime(&utc))
}

/// An integer or decimal number of seconds (milliseconds past 2e10) since the epoch.
fn parse_timestamp(bytes: &[u8]) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut seconds: f64 = text.parse().ok()?;
    if seconds.abs() > MILLISECONDS_THRESHOLD {
        seconds /= 1000.0;
    }
    let whole_seconds = seconds.floor();
    let micros = ((seconds - whole_seconds) * 1_000_000.0).round() as u32;
    let start = DateTime::from_timestamp(whole_seconds as i64, 0)?;
    let at = start.checked_add_signed(chrono::Duration::microseconds(i64::from(micros)))?;
    // speedate refuses years beyond 9999.
    let limit = NaiveDate::from_ymd_opt(9999, 12, 31)?.checked_add_days(Days::new(1))?;
    (at.date_naive() < limit).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        let failure = check_datetime_str(text).unwrap_err();
        let issue = failure.at(vec![], serde_json::Value::Null);
        serde_json::to_value(issue).unwrap()["ctx"]["error"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn reads_datetimes_timestamps_and_dates() {
        let at = |text| check_datetime_str(text).unwrap().to_rfc3339();
        assert_eq!(at("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05+00:00");
        assert_eq!(at("2026-01-02 03:04"), "2026-01-02T03:04:00+00:00");
        assert_eq!(
            at("2026-01-02T03:04:05.1234567+01:00"),
            "2026-01-02T02:04:05.123456+00:00"
        );
        assert_eq!(at("2026-01-02"), "2026-01-02T00:00:00+00:00");
        assert_eq!(at("1700000000"), "2023-11-14T22:13:20+00:00");
        assert_eq!(at("1700000000000"), "2023-11-14T22:13:20+00:00");
    }

    #[test]
    fn refusals_carry_the_date_parsers_reason() {
        assert_eq!(reason("yesterday"), "input is too short");
        assert_eq!(
            reason("2026-13-01"),
            "month value is outside expected range"
        );
        assert_eq!(reason("2026-02-30"), "day value is outside expected range");
        assert_eq!(reason("2026/01/01"), "invalid date separator, expected `-`");
        assert_eq!(reason("abcdefghijk"), "invalid character in year");
        assert_eq!(
            reason("2026-01-01T25:00:00"),
            "unexpected extra characters at the end of the input"
        );
    }
}
