//! Wall-clock time for `time()` and `strftime()`.
//!
//! `time(fmt)` prints the moment user space handles the event;
//! `strftime(fmt, nsecs)` prints a timestamp the program took, counted
//! from boot, so it is moved to the wall clock by the current difference
//! between `CLOCK_REALTIME` and `CLOCK_BOOTTIME`, as bpftrace does. Both
//! print local time through the C library's `strftime`, which scorch
//! extends, like current bpftrace, with `%f`: the microseconds.

/// Nanoseconds in a second.
const NANOS: i128 = 1_000_000_000;

/// The local time now, formatted with `fmt`.
pub(super) fn now(fmt: &str) -> String {
    let wall = clock_ns(libc::CLOCK_REALTIME);
    format_local(fmt, wall)
}

/// The boot-time timestamp `nsecs` as local wall-clock time, formatted
/// with `fmt`.
pub(super) fn boot_time(fmt: &str, nsecs: u64) -> String {
    let offset = clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME);
    format_local(fmt, i128::from(nsecs) + offset)
}

/// The TAI timestamp `tai_ns` (a `tseries()` interval's start) as local
/// `HH:MM:SS`, then `digits` decimals of the second counted in steps of
/// `scale` nanoseconds, as bpftrace labels time-series rows.
pub(super) fn tai_time(tai_ns: u64, digits: usize, scale: u64) -> String {
    // TAI runs whole seconds ahead of UTC: round away the time between
    // the two readings.
    let gap = clock_ns(libc::CLOCK_TAI) - clock_ns(libc::CLOCK_REALTIME);
    let offset = (gap + NANOS / 2).div_euclid(NANOS) * NANOS;
    time_of_day(i128::from(tai_ns) - offset, digits, scale)
}

/// Wall-clock nanoseconds as local `HH:MM:SS[.fraction]`.
fn time_of_day(wall_ns: i128, digits: usize, scale: u64) -> String {
    let mut out = format_local("%H:%M:%S", wall_ns);
    if digits > 0 {
        let fraction = wall_ns.rem_euclid(NANOS) / i128::from(scale.max(1));
        out.push_str(&format!(".{fraction:0digits$}"));
    }
    out
}

/// A clock's reading in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `ts`.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * NANOS + i128::from(ts.tv_nsec)
}

/// Wall-clock nanoseconds since the epoch as local time, formatted with
/// `fmt` (`%f` included).
fn format_local(fmt: &str, wall_ns: i128) -> String {
    let secs = wall_ns.div_euclid(NANOS);
    let micros = (wall_ns.rem_euclid(NANOS) / 1000) as u32;
    let Ok(c_fmt) = std::ffi::CString::new(with_micros(fmt, micros)) else {
        return String::new();
    };
    let secs = secs as libc::time_t;
    // SAFETY: localtime_r fills our struct; strftime writes at most
    // buf.len() bytes.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = [0u8; 512];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), c_fmt.as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// `fmt` with each `%f` replaced by `micros` as six digits; `%%` stays
/// for `strftime`.
fn with_micros(fmt: &str, micros: u32) -> String {
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => out.push_str(&format!("{micros:06}")),
            Some(next) => {
                out.push('%');
                out.push(next);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_replace_percent_f_only() {
        assert_eq!(with_micros("%S.%f", 42), "%S.000042");
        assert_eq!(with_micros("%%f %f%", 123456), "%%f 123456%");
    }

    #[test]
    fn times_of_day_keep_the_unit_digits() {
        assert_eq!(&time_of_day(1_234_500_000, 3, 1_000_000)[5..], ":01.234");
        assert_eq!(&time_of_day(1_000_000_001, 9, 1)[5..], ":01.000000001");
        assert_eq!(&time_of_day(61_999_000_000, 0, 1)[5..], ":01");
    }

    #[test]
    fn formats_whole_and_fractional_seconds() {
        // Time zones move whole minutes: seconds are the same in all.
        assert_eq!(format_local("%S.%f", 1_500_000_000), "01.500000");
        assert_eq!(format_local("%S.%f", -1000), "59.999999");
    }
}
