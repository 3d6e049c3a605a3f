//! Durations and sizes as the command line reads and prints them: one parser and one
//! printer each, for `--idle-timeout`, `--older-than`, `--max-size`, `--keep-storage`,
//! `--cache-max-size` and the figures of `gantry engine status` and `gantry cache`.

use std::time::Duration;

/// A duration: numbers each with a unit, `ms`, `s`, `m`, `h`, `d` or `w` (or the words
/// `sec`, `min`, `hour(s)`, `day(s)`, `week(s)`), run together: `30m`, `1h30m`, `7d`,
/// `500ms`. The error names the text and the expected form.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "{text:?} is not a duration: use e.g. 90s, 30m, 1h30m, 7d or 2w (units ms, s, m, h, d, w)"
        )
    };
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds_per = match &rest[..unit_len] {
            "ms" => None,
            "s" | "sec" | "secs" => Some(1),
            "m" | "min" | "mins" => Some(60),
            "h" | "hour" | "hours" => Some(3600),
            "d" | "day" | "days" => Some(86_400),
            "w" | "week" | "weeks" => Some(7 * 86_400),
            _ => return Err(invalid()),
        };
        total += match seconds_per {
            None => Duration::from_millis(number),
            Some(per) => Duration::from_secs(number.checked_mul(per).ok_or_else(invalid)?),
        };
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A duration as `parse_duration` reads it back (`1h30m`, `45s`, `250ms`).
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.subsec_millis();
    let mut seconds = duration.as_secs();
    let mut out = String::new();
    for (unit, per) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= per {
            out.push_str(&format!("{}{unit}", seconds / per));
            seconds %= per;
        }
    }
    if millis > 0 || out.is_empty() {
        out.push_str(&format!("{millis}ms"));
    }
    out
}

/// A size: a number and an optional unit, binary multiples (`500MB`, `1.5GB`, `10GiB`,
/// `2048`).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 500MB or 2GB"))?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0_f64.powi(4),
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use B, KB, MB, GB or TB"
            ))
        }
    };
    Ok((number * multiplier) as u64)
}

/// Bytes in binary units, one decimal: `512 B`, `1.5 KiB`, `2.0 GiB`.
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let cases = [
            ("30m", 1800),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("7d", 7 * 86_400),
            ("2w", 14 * 86_400),
            ("3days", 3 * 86_400),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "7", "30", "m", "5 minutes", "-1s", "3x", "7y", "soon"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("is not a duration"), "{bad}: {error}");
        }
    }

    #[test]
    fn durations_format_as_they_parse() {
        for text in ["30m", "1h30m", "45s", "1d2h", "250ms", "2s500ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn sizes_parse_and_print_in_binary_units() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("2KB"), Ok(2048));
        assert_eq!(parse_size("1.5GB"), Ok(1_610_612_736));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(10 * 1024 * 1024 * 1024), "10.0 GiB");
    }
}
