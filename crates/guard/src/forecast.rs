//! Time-to-full forecasts from a memory series.
//!
//! The growth rate is a median of slopes, never a least-squares fit, so a burst (an import,
//! a backlog that drains an hour later) moves it little:
//!
//! - with more than a day of history, the **seasonal difference**: for every 10-minute point
//!   of the last 24 hours, the change since the same time the day before, divided by 24
//!   hours; the rate is the median of those 144 slopes. Comparing each point with the same
//!   time of the previous day cancels a daily cycle exactly (sessions that rise every
//!   morning and fall every night are not growth), and the median ignores bursts that cover
//!   less than half of the day;
//! - with 15 minutes to a day of history, the **Theil–Sen** slope (median of the slopes
//!   between every pair of points, at most 144 points) over all of it. It tolerates bursts
//!   covering up to 29% of the window, but cannot tell a daily rise from growth until a
//!   day has been seen: the reason for the seasonal method once it can be used.
//!
//! The level the forecast starts from is the median of the last five minutes, for the same
//! reason. Time to full is (capacity − level) / rate when the rate is positive.

use crate::series::Series;

/// Least history before a forecast is made.
pub const MIN_HISTORY_MS: i64 = 15 * 60_000;
const DAY_MS: i64 = 24 * 3_600_000;
/// Points a Theil–Sen fit uses at most (pairs grow with the square).
const MAX_POINTS: usize = 144;

/// How the rate was estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Seasonal,
    TheilSen,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Seasonal => "seasonal-median",
            Method::TheilSen => "theil-sen",
        }
    }
}

/// A forecast for one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    /// Where the series stands now (median of the last five minutes).
    pub level: f64,
    /// Growth per hour (negative when shrinking).
    pub per_hour: f64,
    /// Milliseconds until `level` reaches the capacity at `per_hour`; `None` when it does
    /// not grow or has no capacity. 0 when already there.
    pub full_in_ms: Option<i64>,
    pub method: Method,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The Theil–Sen slope (per ms) of `pts`, thinned evenly to [`MAX_POINTS`].
pub fn theil_sen(pts: &[(i64, f64)]) -> Option<f64> {
    let stride = pts.len().div_ceil(MAX_POINTS).max(1);
    let thin: Vec<(i64, f64)> = pts.iter().step_by(stride).copied().collect();
    let mut slopes = Vec::with_capacity(thin.len() * thin.len() / 2);
    for (i, a) in thin.iter().enumerate() {
        for b in &thin[i + 1..] {
            if b.0 > a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0) as f64);
            }
        }
    }
    median(&mut slopes)
}

/// The median day-over-day slope (per ms) of 10-minute points, if at least 72 of the last
/// day's points have a partner a day earlier.
pub fn seasonal(series: &Series, now_ms: i64) -> Option<f64> {
    let tier = 2;
    let step = crate::series::TIERS[tier].step_ms;
    let pts = series.points(tier, now_ms - 2 * DAY_MS);
    let mut slopes = Vec::new();
    let mut earlier = pts.iter().peekable();
    for &(t, v) in pts.iter().filter(|p| p.0 > now_ms - DAY_MS) {
        let want = t - DAY_MS;
        while earlier.peek().is_some_and(|p| p.0 < want) {
            earlier.next();
        }
        if let Some(&&(t0, v0)) = earlier.peek() {
            if t0 == want {
                slopes.push((v - v0) / DAY_MS as f64);
            }
        }
    }
    (slopes.len() >= (DAY_MS / step) as usize / 2).then(|| median(&mut slopes)).flatten()
}

/// Forecasts `series` at `now_ms` against `capacity` (bytes; `None` = unbounded). `None`
/// until there are [`MIN_HISTORY_MS`] of history.
pub fn forecast(series: &Series, now_ms: i64, capacity: Option<f64>) -> Option<Forecast> {
    let first = series.first_ms()?;
    let history = now_ms - first;
    if history < MIN_HISTORY_MS {
        return None;
    }
    let (rate, method) = match (history > DAY_MS + 3_600_000).then(|| seasonal(series, now_ms)).flatten() {
        Some(r) => (r, Method::Seasonal),
        None => {
            let (_, pts) = series.window(now_ms, now_ms - history.min(DAY_MS));
            (theil_sen(&pts)?, Method::TheilSen)
        }
    };
    let mut recent: Vec<f64> = series.points(0, now_ms - 5 * 60_000).iter().map(|p| p.1).collect();
    let level = median(&mut recent).or(series.last())?;
    let full_in_ms = capacity.and_then(|cap| {
        if level >= cap {
            Some(0)
        } else if rate > 0.0 {
            Some(((cap - level) / rate).min(i64::MAX as f64 / 2.0) as i64)
        } else {
            None
        }
    });
    Some(Forecast { level, per_hour: rate * 3_600_000.0, full_in_ms, method })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Kind;

    const HOUR: i64 = 3_600_000;

    fn fill(f: impl Fn(i64) -> f64, hours: i64) -> Series {
        let mut s = Series::new(Kind::Gauge);
        let mut t = 0;
        while t <= hours * HOUR {
            s.add(t, f(t));
            t += 10_000;
        }
        s
    }

    #[test]
    fn steady_growth_is_measured_exactly() {
        // 1 MB per hour from 100 MB, capacity 200 MB, after 2 hours: 98 hours left
        let s = fill(|t| 100e6 + 1e6 * t as f64 / HOUR as f64, 2);
        let f = forecast(&s, 2 * HOUR, Some(200e6)).unwrap();
        assert_eq!(f.method, Method::TheilSen);
        assert!((f.per_hour - 1e6).abs() < 1e3, "{f:?}");
        let hours = f.full_in_ms.unwrap() as f64 / HOUR as f64;
        assert!((97.5..98.5).contains(&hours), "{hours}");
    }

    #[test]
    fn bursts_do_not_move_the_rate() {
        // flat at 50 MB, with a 30-minute burst of +40 MB every 6 hours
        let s = fill(|t| if t % (6 * HOUR) < HOUR / 2 { 90e6 } else { 50e6 }, 20);
        let f = forecast(&s, 20 * HOUR, Some(100e6)).unwrap();
        assert!(f.per_hour.abs() < 1e4, "{f:?}");
        assert_eq!(f.full_in_ms, None);
    }

    #[test]
    fn a_daily_cycle_is_not_growth_once_a_day_is_seen() {
        // sessions swing ±30 MB over the day, while a queue grows 0.5 MB per hour
        let cycle = |t: i64| 100e6 + 30e6 * (t as f64 / (24 * HOUR) as f64 * std::f64::consts::TAU).sin();
        let s = fill(|t| cycle(t) + 0.5e6 * t as f64 / HOUR as f64, 72);
        let f = forecast(&s, 72 * HOUR, Some(400e6)).unwrap();
        assert_eq!(f.method, Method::Seasonal);
        assert!((f.per_hour - 0.5e6).abs() < 0.02e6, "{f:?}");
        // and a burst on top of it (a 2-hour spike of 100 MB) changes little
        let s = fill(|t| cycle(t) + if (60 * HOUR..62 * HOUR).contains(&t) { 100e6 } else { 0.0 }, 72);
        let f = forecast(&s, 72 * HOUR, Some(400e6)).unwrap();
        assert!(f.per_hour.abs() < 0.05e6, "{f:?}");
    }

    #[test]
    fn too_little_history_gives_no_forecast() {
        let s = fill(|t| t as f64, 0);
        assert_eq!(forecast(&s, 0, Some(1e9)), None);
        let s = fill(|_| 5.0, 1);
        let f = forecast(&s, HOUR, Some(5.0)).unwrap();
        assert_eq!(f.full_in_ms, Some(0), "already full");
    }
}
