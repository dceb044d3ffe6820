//! Human-readable durations in the config file: a number followed by a unit, `ms`, `s`,
//! `m` or `h` (`250ms`, `0.5s`, `30s`, `5m`, `1h`), as Envoy and Go write them. A bare
//! number is refused so that nobody has to guess whether `30` meant seconds or
//! milliseconds.

use std::time::Duration;

/// Parses `"<digits>[.<digits>]<unit>"`; the error text is meant to follow a field name.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("{text:?} needs a unit (ms, s, m or h), e.g. \"30s\""))?;
    let (number, unit) = text.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || number.ends_with('.') {
        return Err(format!(
            "{text:?} is not a duration like \"30s\" or \"0.5s\""
        ));
    }
    let unit_nanos: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(format!(
                "{text:?} has unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    let too_large = || format!("{text:?} is too large");
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        let digits = fraction.len().min(18);
        let value: u128 = fraction[..digits].parse().map_err(|_| too_large())?;
        value * unit_nanos / 10u128.pow(digits as u32)
    };
    let nanos = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos))
        .ok_or_else(too_large)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_large())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_decimals() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 1h "), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.25m"), Ok(Duration::from_secs(75)));
        assert_eq!(parse_duration("0.1ms"), Ok(Duration::from_micros(100)));
    }

    #[test]
    fn refuses_ambiguous_or_broken_values() {
        for bad in [
            "30",
            "",
            "s",
            "-1s",
            "1.s",
            ".5s",
            "1.2.3s",
            "10 s",
            "3d",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
