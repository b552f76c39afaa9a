//! Time as the tool writes and reads it: Unix seconds to and from RFC 3339 in UTC, without a
//! date crate.

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds, as OCI's `created` wants.
pub fn rfc3339(timestamp: u64) -> String {
    let days = timestamp / 86_400;
    let seconds = timestamp % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// Unix seconds of an RFC 3339 time in UTC (`2021-03-07T03:20:29Z`, fractions of a second
/// dropped, as Sigstore's trusted root writes them); `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, clock) = text.split_once('T')?;
    let clock = clock.split_once('.').map_or(clock, |(whole, fraction)| {
        if fraction.bytes().all(|b| b.is_ascii_digit()) {
            whole
        } else {
            ""
        }
    });
    let numbers = |part: &str, count: usize, sep: char| -> Option<Vec<i64>> {
        let fields: Vec<&str> = part.split(sep).collect();
        (fields.len() == count
            && fields
                .iter()
                .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())))
        .then(|| fields.iter().filter_map(|f| f.parse().ok()).collect())
    };
    let (date, clock) = (numbers(date, 3, '-')?, numbers(clock, 3, ':')?);
    let (year, month, day) = (date[0], date[1], date[2]);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || clock[0] > 23
        || clock[1] > 59
        || clock[2] > 60
    {
        return None;
    }
    // Days since 1970-01-01 from the civil date, the inverse of `rfc3339`'s.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + clock[0] * 3600 + clock[1] * 60 + clock[2]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_reads_back_what_it_writes() {
        for t in [0, 1_654_880_868, 951_782_400, 4_102_444_799, 1_615_087_229] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(
            parse_rfc3339("2021-03-07T03:20:29.000Z"),
            Some(1_615_087_229)
        );
        for bad in [
            "2021-03-07 03:20:29Z",
            "2021-13-07T03:20:29Z",
            "2021-03-07T03:20:29",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_654_880_868), "2022-06-10T17:07:48Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
