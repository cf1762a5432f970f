//! Times as exported histories write them: RFC 3339, `YYYY-MM-DD HH:MM:SS` or
//! `YYYY-MM-DDTHH:MM:SS` without an offset (then a given one), or epoch seconds or
//! milliseconds. Both backtests (detection and forecasts) read them the same way.

use super::Timestamp;

/// A fixed offset from UTC, for timestamps written without one (`--timezone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset {
    /// Minutes east of UTC.
    minutes: i32,
}

impl std::str::FromStr for Offset {
    type Err = String;

    /// `UTC`, `Z`, or `+HH:MM` / `-HH:MM` / `+HHMM` / `+HH`. Named zones (with their summer
    /// time) are not read: export the history in UTC or with offsets for those.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("utc") || s == "Z" {
            return Ok(Self::default());
        }
        parse_offset(s).ok_or_else(|| {
            format!("`{s}` is not a UTC offset: expected UTC or +HH:MM / -HH:MM (such as +02:00)")
        })
    }
}

/// `+HH:MM`, `+HHMM` or `+HH` (or `-`), at most ±18 h, in minutes.
fn parse_offset(s: &str) -> Option<Offset> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits.get(2..).map_or(Some(0), |m| m.parse().ok())?;
    (hours <= 18 && minutes < 60).then_some(Offset {
        minutes: sign * (hours * 60 + minutes),
    })
}

/// One of the timestamp forms the module names, or `None`.
pub fn parse_history_time(s: &str, timezone: Offset) -> Option<Timestamp> {
    if s.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && s.len() >= 19
        && s.as_bytes()[4] == b'-'
    {
        return parse_calendar(s, timezone);
    }
    let n: f64 = s.parse().ok()?;
    if !n.is_finite() || n.abs() >= 1e15 {
        return None;
    }
    let ms = if n.abs() >= 1e11 { n } else { n * 1000.0 };
    Some(Timestamp::from_millis(ms.round() as i64))
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff]` then `Z`, an offset, or nothing (then `timezone`).
fn parse_calendar(s: &str, timezone: Offset) -> Option<Timestamp> {
    let (local, offset) = if let Some(local) = s.strip_suffix(['Z', 'z']) {
        (local, Offset::default())
    } else {
        // An offset is the last `+` or `-` past the date.
        match s.get(10..)?.rfind(['+', '-']).map(|i| i + 10) {
            Some(i) => (&s[..i], parse_offset(&s[i..])?),
            None => (s, timezone),
        }
    };
    let utc = humantime::parse_rfc3339_weak(local).ok()?;
    let ms = match utc.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).ok()?,
        Err(e) => -i64::try_from(e.duration().as_millis()).ok()?,
    };
    Some(Timestamp::from_millis(
        ms - i64::from(offset.minutes) * 60_000,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_timestamp_form_is_read() {
        let utc = Offset::default();
        let want = Timestamp::parse_rfc3339("2014-04-01T00:00:00Z").unwrap();
        for text in [
            "2014-04-01T00:00:00Z",
            "2014-04-01T00:00:00.000Z",
            "2014-04-01 00:00:00",
            "2014-04-01T00:00:00",
            "2014-04-01T02:00:00+02:00",
            "2014-03-31T19:30:00-04:30",
            "1396310400",
            "1396310400.0",
            "1396310400000",
        ] {
            assert_eq!(parse_history_time(text, utc), Some(want), "{text}");
        }
        let east: Offset = "+02:00".parse().unwrap();
        assert_eq!(parse_history_time("2014-04-01 02:00:00", east), Some(want));
        assert_eq!(
            parse_history_time("2014-04-01T00:00:00Z", east),
            Some(want),
            "an explicit Z wins"
        );
        assert_eq!("+0200".parse::<Offset>(), Ok(east));
        assert!("Europe/Paris".parse::<Offset>().is_err());
        assert!("+25:00".parse::<Offset>().is_err());
        for bad in [
            "2014-04-01 25:00:00",
            "2014-04-01T00:00:00+99",
            "2014-04-01T00:00:0é",
            "yesterday",
            "1e300",
        ] {
            assert_eq!(parse_history_time(bad, utc), None, "{bad}");
        }
    }
}
