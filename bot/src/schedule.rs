//! When acknowledgement campaigns run: "first school day of the month at
//! 09:00" (the default) or a five-field cron expression, in the school's
//! time zone, never on a weekend or a configured holiday (a cron slot that
//! falls on one is skipped).

use anyhow::{Context, Result, bail};
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// How a schedule picks its days and time.
#[derive(Debug, Clone)]
enum Rule {
    FirstSchoolDay(Time),
    Cron(Cron),
}

#[derive(Debug, Clone)]
pub struct Schedule {
    rule: Rule,
    tz: TimeZone,
    /// Inclusive date ranges with no school.
    holidays: Vec<(Date, Date)>,
}

/// The default: the first school day of each month, at 09:00.
pub const DEFAULT_SCHEDULE: &str = "first school day 09:00";
pub const DEFAULT_TIME_ZONE: &str = "Europe/London";

impl Schedule {
    /// `spec`: "first school day HH:MM" or cron "M H DOM MON DOW";
    /// `holidays`: "2026-12-21..2027-01-01" or "2027-02-15".
    pub fn parse(spec: &str, time_zone: &str, holidays: &[String]) -> Result<Schedule> {
        let tz = TimeZone::get(time_zone).with_context(|| format!("unknown time zone '{time_zone}'"))?;
        let spec = spec.trim();
        let rule = match spec.strip_prefix("first school day") {
            Some(at) => {
                let at = at.trim();
                let time = if at.is_empty() { "09:00" } else { at };
                Rule::FirstSchoolDay(
                    Time::strptime("%H:%M", time).with_context(|| format!("schedule '{spec}': the time is HH:MM"))?,
                )
            }
            None => Rule::Cron(Cron::parse(spec).with_context(|| format!("schedule '{spec}'"))?),
        };
        let holidays = holidays
            .iter()
            .map(|h| {
                let (from, to) = h.split_once("..").unwrap_or((h, h));
                let date = |d: &str| -> Result<Date> {
                    d.trim()
                        .parse()
                        .with_context(|| format!("holiday '{h}': dates are YYYY-MM-DD"))
                };
                let (from, to) = (date(from)?, date(to)?);
                if to < from {
                    bail!("holiday '{h}' ends before it starts");
                }
                Ok((from, to))
            })
            .collect::<Result<_>>()?;
        Ok(Schedule { rule, tz, holidays })
    }

    pub fn is_school_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.holidays.iter().any(|(from, to)| (*from..=*to).contains(&date))
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Timestamp {
        let local = after.to_zoned(self.tz.clone());
        match &self.rule {
            Rule::FirstSchoolDay(time) => {
                let mut month = local.date().first_of_month();
                // Ten years of months: a schedule whose every day is a
                // holiday gives up rather than loops.
                for _ in 0..120 {
                    let mut day = month;
                    while day.month() == month.month() && !self.is_school_day(day) {
                        day = day.tomorrow().expect("a date after this one");
                    }
                    if day.month() == month.month()
                        && let Ok(slot) = day.to_datetime(*time).to_zoned(self.tz.clone())
                        && slot.timestamp() > after
                    {
                        return slot.timestamp();
                    }
                    month = month.checked_add(1.month()).expect("a month after this one");
                }
                Timestamp::MAX
            }
            Rule::Cron(cron) => {
                let start = local.datetime().round(jiff::Unit::Minute).unwrap_or(local.datetime());
                let mut at = start;
                // A year and a bit of minutes, at most.
                for _ in 0..(367 * 24 * 60) {
                    at = at.checked_add(1.minute()).expect("a minute later");
                    if cron.matches(at.date(), at.time()) && self.is_school_day(at.date()) {
                        let slot: Result<Zoned, _> = at.to_zoned(self.tz.clone());
                        if let Ok(slot) = slot
                            && slot.timestamp() > after
                        {
                            return slot.timestamp();
                        }
                    }
                }
                Timestamp::MAX
            }
        }
    }

    /// The latest slot at or before `now` that comes after `last`, if any:
    /// a service that was down over several slots runs one campaign, not a
    /// burst of them.
    pub fn due(&self, last: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let mut slot = self.next_after(last);
        if slot > now {
            return None;
        }
        loop {
            let next = self.next_after(slot);
            if next > now {
                return Some(slot);
            }
            slot = next;
        }
    }
}

/// A five-field cron expression: minute hour day-of-month month day-of-week
/// (0 or 7 is Sunday), each `*`, a number, a range `a-b`, a step `*/n` or
/// `a-b/n`, or a comma list of those.
#[derive(Debug, Clone)]
struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    any_day: bool,
    any_weekday: bool,
}

impl Cron {
    fn parse(spec: &str) -> Result<Cron> {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            bail!("a cron schedule has five fields (minute hour day month weekday), or say \"{DEFAULT_SCHEDULE}\"");
        };
        let mut weekdays = field(weekday, 0, 7, "weekday")?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Cron {
            minutes: field(minute, 0, 59, "minute")?,
            hours: field(hour, 0, 23, "hour")?,
            days: field(day, 1, 31, "day of month")?,
            months: field(month, 1, 12, "month")?,
            weekdays,
            any_day: *day == "*",
            any_weekday: *weekday == "*",
        })
    }

    fn matches(&self, date: Date, time: Time) -> bool {
        let day = self.days[date.day() as usize];
        let weekday = self.weekdays[date.weekday().to_sunday_zero_offset() as usize];
        // As cron does: with both day fields restricted, either may match.
        let day_ok = match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (true, false) => weekday,
            (false, true) => day,
            (false, false) => day || weekday,
        };
        self.minutes[time.minute() as usize]
            && self.hours[time.hour() as usize]
            && self.months[date.month() as usize]
            && day_ok
    }
}

fn field(spec: &str, min: usize, max: usize, name: &str) -> Result<Vec<bool>> {
    let mut set = vec![false; max + 1];
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .with_context(|| format!("{name}: bad step in '{part}'"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (number(a, name)?, number(b, name)?),
                None => {
                    let n = number(r, name)?;
                    (n, if part.contains('/') { max } else { n })
                }
            },
        };
        if from < min || to > max || from > to {
            bail!("{name}: '{part}' is outside {min}-{max}");
        }
        for n in (from..=to).step_by(step) {
            set[n] = true;
        }
    }
    Ok(set)
}

fn number(text: &str, name: &str) -> Result<usize> {
    text.parse()
        .with_context(|| format!("{name}: '{text}' is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse::<Zoned>().unwrap().timestamp()
    }

    fn london(ts: Timestamp) -> String {
        ts.to_zoned(TimeZone::get("Europe/London").unwrap())
            .strftime("%a %Y-%m-%d %H:%M %Z")
            .to_string()
    }

    #[test]
    fn the_first_school_day_skips_weekends_and_holidays() {
        let holidays = vec!["2026-12-21..2027-01-04".to_owned()];
        let s = Schedule::parse(DEFAULT_SCHEDULE, DEFAULT_TIME_ZONE, &holidays).unwrap();
        // 1 November 2026 is a Sunday: Monday the 2nd.
        let next = s.next_after(at("2026-10-20T12:00[Europe/London]"));
        assert_eq!(london(next), "Mon 2026-11-02 09:00 GMT");
        // December starts on a Tuesday.
        assert_eq!(london(s.next_after(next)), "Tue 2026-12-01 09:00 GMT");
        // January: the 1st is in the holiday, then a weekend, then the 4th is a holiday too.
        assert_eq!(
            london(s.next_after(at("2026-12-02T00:00[Europe/London]"))),
            "Tue 2027-01-05 09:00 GMT"
        );
        // Summer time: 09:00 local is 08:00 UTC.
        let june = s.next_after(at("2027-05-20T00:00[Europe/London]"));
        assert_eq!(london(june), "Tue 2027-06-01 09:00 BST");
        assert_eq!(june.to_string(), "2027-06-01T08:00:00Z");
    }

    #[test]
    fn cron_slots_on_school_days_only() {
        let s = Schedule::parse("30 8 * * 1", "Europe/London", &["2026-11-30".to_owned()]).unwrap();
        // Mondays at 08:30, but 30 November is a holiday.
        assert_eq!(
            london(s.next_after(at("2026-11-24T00:00[Europe/London]"))),
            "Mon 2026-12-07 08:30 GMT"
        );
        let every_15 = Schedule::parse("*/15 9-10 * * *", "UTC", &[]).unwrap();
        let next = every_15.next_after("2026-11-27T09:07:00Z".parse().unwrap());
        assert_eq!(next.to_string(), "2026-11-27T09:15:00Z");
        // Friday 10:45 → Monday 09:00: weekends are skipped.
        let next = every_15.next_after("2026-11-27T10:45:00Z".parse().unwrap());
        assert_eq!(next.to_string(), "2026-11-30T09:00:00Z");
    }

    #[test]
    fn a_service_down_over_several_slots_runs_one_campaign() {
        let s = Schedule::parse(DEFAULT_SCHEDULE, DEFAULT_TIME_ZONE, &[]).unwrap();
        let last = at("2026-09-01T09:00[Europe/London]");
        let now = at("2026-12-10T12:00[Europe/London]");
        assert_eq!(london(s.due(last, now).unwrap()), "Tue 2026-12-01 09:00 GMT");
        assert!(s.due(s.due(last, now).unwrap(), now).is_none());
    }

    #[test]
    fn mistakes_are_named() {
        for (spec, tz, holiday, words) in [
            ("0 9 * *", "UTC", "", "five fields"),
            ("0 25 * * *", "UTC", "", "hour"),
            ("first school day 9am", "UTC", "", "HH:MM"),
            (DEFAULT_SCHEDULE, "Mars/Olympus", "", "unknown time zone"),
            (DEFAULT_SCHEDULE, "UTC", "2027-01-05..2027-01-01", "ends before"),
        ] {
            let holidays: Vec<String> = if holiday.is_empty() {
                vec![]
            } else {
                vec![holiday.to_owned()]
            };
            let e = format!("{:#}", Schedule::parse(spec, tz, &holidays).unwrap_err());
            assert!(e.contains(words), "{spec}: {e}");
        }
    }
}
