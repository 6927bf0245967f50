//! Calendar arithmetic for rendering timestamps without the host's time zone database:
//! bundles carry their UTC offset, so times are rendered the same on any machine.

/// `HH:MM:SS.micros` in UTC of nanoseconds since the epoch, as tcpdump prints packet
/// times; with `date`, `YYYY-MM-DD ` first (tcpdump -tttt).
pub fn clock_utc(time_ns: i64, date: bool) -> String {
    let secs = time_ns.div_euclid(1_000_000_000);
    let micros = time_ns.rem_euclid(1_000_000_000) / 1000;
    let sod = secs.rem_euclid(86_400);
    let time = format!("{:02}:{:02}:{:02}.{micros:06}", sod / 3600, sod / 60 % 60, sod % 60);
    if date {
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        format!("{y:04}-{m:02}-{d:02} {time}")
    } else {
        time
    }
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a (year, month 1-12, day 1-31) date: the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The month number (1-12) of an English abbreviation (`Jan`).
pub fn month_number(abbrev: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == abbrev).map(|i| i as u32 + 1)
}

/// Broken-down time of `secs` since the epoch shifted by `offset` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tm {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

pub fn tm(secs: i64, offset: i64) -> Tm {
    // Hostile manifests may hold any offset: saturate rather than overflow.
    let t = secs.saturating_add(offset).clamp(-(1 << 50), 1 << 50);
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Tm {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        weekday: (days + 4).rem_euclid(7) as u32,
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `2026-11-28T22:10:00Z`.
pub fn iso_utc(secs: i64) -> String {
    let t = tm(secs, 0);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// `20261128T221000Z`, for file names.
pub fn compact_utc(secs: i64) -> String {
    let t = tm(secs, 0);
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// ctime(3) style as `dmesg -T` prints it: `Sat Nov 28 22:10:00 2026`.
pub fn ctime(secs: i64, offset: i64) -> String {
    let t = tm(secs, offset);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WEEKDAYS[t.weekday as usize],
        MONTHS[(t.month - 1) as usize],
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for days in [-800_000, -1, 0, 59, 11_016, 19_675, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(month_number("Feb"), Some(2));
        assert_eq!(month_number("feb"), None);
    }

    #[test]
    fn known_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(compact_utc(1_795_903_800), "20261128T221000Z");
        assert_eq!(ctime(1_795_903_800, 0), "Sat Nov 28 22:10:00 2026");
        assert_eq!(ctime(1_795_903_800, 3600), "Sat Nov 28 23:10:00 2026");
        assert_eq!(ctime(1_796_083_800 - 86_400 * 2, 0), "Sun Nov 29 00:10:00 2026");
        assert_eq!(iso_utc(-1), "1969-12-31T23:59:59Z");
    }
}
