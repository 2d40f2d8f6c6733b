//! Local time (`localtime_r`), which std does not offer: the logger stamps its lines with it.

/// Broken-down local time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday
    pub weekday: u32,
}

/// `localtime_r` of a unix time.
pub fn localtime(t: i64) -> LocalTime {
    let tt = t as libc::time_t;
    // SAFETY: tm is plain old data; zeroed is a valid value for it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is thread-safe.
    let ok = unsafe { !libc::localtime_r(&tt, &mut tm).is_null() };
    if !ok {
        return LocalTime::default();
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        weekday: tm.tm_wday as u32,
    }
}

impl LocalTime {
    /// The `ctime(3)` form, with its trailing newline: `Sun Nov 22 06:23:29 2026\n`.
    pub fn ctime(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{} {} {:2} {:02}:{:02}:{:02} {}\n",
            DAYS[self.weekday as usize % 7],
            MONTHS[(self.month as usize + 11) % 12],
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.year
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_shape() {
        let t = LocalTime {
            year: 2026,
            month: 11,
            day: 2,
            hour: 6,
            minute: 3,
            second: 9,
            weekday: 1,
        };
        assert_eq!(t.ctime(), "Mon Nov  2 06:03:09 2026\n");
        assert!(localtime(0).year >= 1969);
    }
}
