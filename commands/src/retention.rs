//! Retention (`[retention]`): which backups of one kind to keep — everything young, then the
//! newest verified one of each day, ISO week and month for the configured spans, and never
//! fewer than `min_keep` verified — decided from the time in each backup's name, never from
//! the listing's order or dates. Pure: the caller lists, this decides, the caller deletes.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};

use crate::config::RetentionConfig;

/// One backup (or snapshot) of a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its key.
    pub key: String,
    /// The time in its name; `None` when its name has none (it is kept).
    pub at: Option<DateTime<Utc>>,
    /// Whether it passed verification.
    pub verified: bool,
    /// Its size, with whatever is deleted with it (its manifest).
    pub bytes: u64,
}

/// Why an item is kept.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// Its name has no time: never deleted.
    Undated,
    /// Younger than `keep_all_hours` (or dated in the future).
    Young,
    /// The newest verified of its day.
    Daily(NaiveDate),
    /// The newest verified of its ISO week (year, week).
    Weekly(i32, u32),
    /// The newest verified of its month (year, month).
    Monthly(i32, u32),
    /// Kept so that `min_keep` verified remain.
    MinKeep,
}

impl Why {
    /// In words.
    pub fn text(&self) -> String {
        match self {
            Why::Undated => "no time in its name".to_string(),
            Why::Young => "young".to_string(),
            Why::Daily(d) => format!("newest of {d}"),
            Why::Weekly(y, w) => format!("newest of week {y}-W{w:02}"),
            Why::Monthly(y, m) => format!("newest of {y}-{m:02}"),
            Why::MinKeep => "min_keep".to_string(),
        }
    }
}

/// What to keep and what to delete, newest first in each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Kept, with the first reason that keeps each.
    pub keep: Vec<(Item, Why)>,
    /// To delete.
    pub delete: Vec<Item>,
}

impl Plan {
    /// Bytes the deletions free.
    pub fn bytes(&self) -> u64 {
        self.delete.iter().map(|i| i.bytes).sum()
    }

    /// The keys to delete.
    pub fn keys(&self) -> BTreeSet<String> {
        self.delete.iter().map(|i| i.key.clone()).collect()
    }
}

/// Decides what of `items` (one kind) to keep at `now` under `r`.
pub fn plan(mut items: Vec<Item>, now: DateTime<Utc>, r: &RetentionConfig) -> Plan {
    // Newest first by the time in the name; undated ones first (they are all kept).
    items.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.key.cmp(&a.key)));
    items.sort_by_key(|i| i.at.is_some());
    let young = now - Duration::hours(r.keep_all_hours as i64);
    let daily = now - Duration::days(r.daily_days as i64);
    let weekly = now - Duration::weeks(r.weekly_weeks as i64);
    let monthly = now
        .checked_sub_months(Months::new(r.monthly_months as u32))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut days = BTreeSet::new();
    let mut weeks = BTreeSet::new();
    let mut months = BTreeSet::new();
    let mut why: Vec<Option<Why>> = Vec::with_capacity(items.len());
    for item in &items {
        let Some(at) = item.at else {
            why.push(Some(Why::Undated));
            continue;
        };
        let day = at.date_naive();
        let week = (at.iso_week().year(), at.iso_week().week());
        let month = (at.year(), at.month());
        let mut reason = (at > young).then_some(Why::Young);
        // Only a verified backup stands for its day, week or month.
        if item.verified {
            if at > daily && days.insert(day) {
                reason = reason.or(Some(Why::Daily(day)));
            }
            if at > weekly && weeks.insert(week) {
                reason = reason.or(Some(Why::Weekly(week.0, week.1)));
            }
            if at > monthly && months.insert(month) {
                reason = reason.or(Some(Why::Monthly(month.0, month.1)));
            }
        }
        why.push(reason);
    }
    // Never fewer than min_keep verified.
    let mut verified_kept = items
        .iter()
        .zip(&why)
        .filter(|(i, w)| i.verified && w.is_some())
        .count();
    for (item, w) in items.iter().zip(why.iter_mut()) {
        if verified_kept >= r.min_keep {
            break;
        }
        if item.verified && w.is_none() {
            *w = Some(Why::MinKeep);
            verified_kept += 1;
        }
    }
    let mut out = Plan::default();
    for (item, w) in items.into_iter().zip(why) {
        match w {
            Some(w) => out.keep.push((item, w)),
            None => out.delete.push(item),
        }
    }
    out
}

/// Why nothing of a kind may be pruned now, if so: its newest verified backup is older than its
/// RPO (or there is none) — a broken backup job must never eat the last good backups.
pub fn stale(items: &[Item], now: DateTime<Utc>, rpo: Duration) -> Option<String> {
    let newest = items
        .iter()
        .filter(|i| i.verified)
        .filter_map(|i| i.at)
        .max();
    match newest {
        None => Some("there is no verified backup".to_string()),
        Some(at) if now - at > rpo => Some(format!(
            "the newest verified one is {} old, past its {} RPO",
            crate::render::duration(now - at),
            crate::render::duration(rpo)
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("time")
    }

    /// Every 30 minutes for `days` days up to `now`, named by their time.
    fn series(now: DateTime<Utc>, days: i64) -> Vec<Item> {
        let mut t = now - Duration::days(days);
        let mut out = Vec::new();
        while t <= now {
            out.push(Item {
                key: format!("db/{}.sql.xz.age", t.format("%Y-%m-%dT%H-%M-%SZ")),
                at: Some(t),
                verified: true,
                bytes: 100,
            });
            t += Duration::minutes(30);
        }
        out
    }

    #[test]
    fn sixty_days_every_half_hour_leave_the_gfs_set() {
        let now = at(2026, 3, 1, 12, 0);
        let r = RetentionConfig::default();
        let items = series(now, 60);
        let p = plan(items.clone(), now, &r);
        // The expected set, worked out by calendar rather than by item.
        let mut want = BTreeSet::new();
        for i in &items {
            let t = i.at.expect("dated");
            if now - t < Duration::hours(48) {
                want.insert(i.key.clone());
            }
        }
        let newest_in = |pred: &dyn Fn(DateTime<Utc>) -> bool| {
            items
                .iter()
                .filter(|i| pred(i.at.expect("dated")))
                .max_by_key(|i| i.at)
                .map(|i| i.key.clone())
        };
        let mut day = (now - Duration::days(30)).date_naive();
        while day <= now.date_naive() {
            let start = now - Duration::days(30);
            want.extend(newest_in(&|t| t.date_naive() == day && t > start));
            day = day.succ_opt().expect("day");
        }
        for k in 0..=12 {
            let probe = now - Duration::weeks(k);
            let week = probe.iso_week();
            let start = now - Duration::weeks(12);
            want.extend(newest_in(&|t| t.iso_week() == week && t > start));
        }
        for (y, m) in [(2026, 3), (2026, 2), (2026, 1), (2025, 12)] {
            want.extend(newest_in(&|t| t.year() == y && t.month() == m));
        }
        let kept: BTreeSet<String> = p.keep.iter().map(|(i, _)| i.key.clone()).collect();
        assert_eq!(kept, want);
        assert_eq!(kept.len() + p.delete.len(), items.len());
        // 97 young (48 h every 30 min, both ends), 28 more days, weeks and months before them.
        assert!(
            kept.len() > 97 && kept.len() < 97 + 30 + 13 + 4,
            "{}",
            kept.len()
        );
        // The plan names what it deletes, and its bytes.
        assert_eq!(p.bytes(), 100 * p.delete.len() as u64);
    }

    #[test]
    fn only_verified_backups_stand_for_their_day_and_min_keep_counts_only_them() {
        let now = at(2026, 3, 1, 12, 0);
        let r = RetentionConfig {
            min_keep: 3,
            ..RetentionConfig::default()
        };
        let mut items = series(now, 10);
        // Days ago, the newest of each day failed verification: the next one stands for it.
        for i in items.iter_mut() {
            let t = i.at.expect("dated");
            if now - t > Duration::hours(48) && t.format("%H:%M").to_string() == "23:30" {
                i.verified = false;
            }
        }
        let p = plan(items.clone(), now, &r);
        for (i, why) in &p.keep {
            if let Why::Daily(_) = why {
                assert!(i.verified, "{i:?}");
                assert!(i.key.contains("T23-00-00Z"), "{i:?}");
            }
        }
        // With nothing verified, only the young are kept: min_keep counts verified ones only.
        let unverified: Vec<Item> = items
            .iter()
            .cloned()
            .map(|i| Item {
                verified: false,
                ..i
            })
            .collect();
        let p = plan(unverified, now, &r);
        assert!(p.keep.iter().all(|(_, w)| *w == Why::Young), "{:?}", p.keep);
        // Old but few: min_keep holds the newest verified whatever their age.
        let old: Vec<Item> = series(now - Duration::days(400), 0)
            .into_iter()
            .chain(series(now - Duration::days(500), 0))
            .collect();
        let p = plan(old, now, &r);
        assert!(p.delete.is_empty(), "{:?}", p.delete);
        assert!(p.keep.iter().all(|(_, w)| *w == Why::MinKeep));
    }

    #[test]
    fn undated_names_are_never_deleted_and_the_name_not_the_order_decides() {
        let now = at(2026, 3, 1, 12, 0);
        let r = RetentionConfig::default();
        let mut items = series(now, 5);
        items.reverse();
        items.push(Item {
            key: "db/hand-made.sql.xz.age".to_string(),
            at: None,
            verified: false,
            bytes: 1,
        });
        let p = plan(items.clone(), now, &r);
        assert!(
            p.keep
                .iter()
                .any(|(i, w)| i.at.is_none() && *w == Why::Undated)
        );
        let mut shuffled = items;
        shuffled.rotate_left(37);
        assert_eq!(plan(shuffled, now, &r), p);
    }

    #[test]
    fn a_stale_newest_backup_stops_the_prune() {
        let now = at(2026, 3, 1, 12, 0);
        let rpo = Duration::minutes(30);
        let items = series(now - Duration::hours(2), 3);
        assert!(stale(&items, now, rpo).is_some_and(|w| w.contains("2h00m old")));
        assert!(stale(&series(now, 1), now, rpo).is_none());
        assert!(stale(&[], now, rpo).is_some());
    }
}
