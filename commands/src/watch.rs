//! Background work while serving (SPEC §8): a status summary for each open incident every
//! `status.every_mins`; RTO warnings at 50%, 80% and 100% of the scenario's target; a nudge to
//! the commander after a quiet spell; the RPO watch (newest backup's age against the target,
//! posted once when breached and once when recovered).
//!
//! [`Engine::tick`] decides what is due at the engine's clock, records each post on the
//! timeline (or the audit log) together with what was sent, and returns the posts for the chat
//! adapter to deliver. What was sent is stored with the incident, so a restart never repeats a
//! warning.

use chrono::Duration;
use drbot_state::{EntryKind, IncidentId, IncidentStatus, NewEntry};

use crate::context::Engine;
use crate::error::CommandError;
use crate::incident::{next_line, status_text};
use crate::render;

pub use crate::scenario::{Post, PostKind};

/// RTO thresholds, in percent.
const RTO_THRESHOLDS: [u8; 3] = [50, 80, 100];

impl Engine {
    /// One round of background work at the engine's clock. Never posts the same thing twice.
    pub async fn tick(&self) -> Result<Vec<Post>, CommandError> {
        let mut posts = Vec::new();
        if crate::approval::expire_due(self)? > 0 {
            crate::approval::release_ended(self).await;
        }
        if crate::paging::escalate_due(self)? > 0 {
            self.store().flush().await?;
            self.deliver_due().await?;
        }
        for incident in self.store().active_incidents()? {
            if incident.status != IncidentStatus::Open {
                continue;
            }
            posts.extend(self.tick_incident(incident.id)?);
        }
        for scenario in crate::scenarios::ALL {
            posts.extend(scenario.watch(self).await?);
        }
        if !posts.is_empty() {
            self.store().flush().await?;
        }
        Ok(posts)
    }

    /// At start: each scenario cleans up after work a killed drbot left half done (a drill's
    /// scratch database). Returns what was done, a line each.
    pub async fn recover_scenarios(&self) -> Vec<String> {
        let mut out = crate::approval::release_ended(self).await;
        for scenario in crate::scenarios::ALL {
            out.extend(scenario.recover(self).await);
        }
        out
    }

    /// One round of the scenarios' scheduled work (snapshots, drills). Long: run it beside
    /// the loop.
    pub async fn scheduled(&self) -> Result<Vec<Post>, CommandError> {
        let mut posts = Vec::new();
        for scenario in crate::scenarios::ALL {
            posts.extend(self.scheduled_of(scenario.name()).await?);
        }
        Ok(posts)
    }

    /// One round of one scenario's scheduled work, by its name. A failure is logged and
    /// answered as no posts: the next round tries again.
    pub async fn scheduled_of(&self, name: &str) -> Result<Vec<Post>, CommandError> {
        let mut posts = Vec::new();
        for scenario in crate::scenarios::ALL.iter().filter(|s| s.name() == name) {
            match scenario.scheduled(self).await {
                Ok(p) => posts.extend(p),
                Err(e) => {
                    tracing::error!(scenario = scenario.name(), error = %e, "scheduled work failed")
                }
            }
        }
        if !posts.is_empty() {
            self.store().flush().await?;
        }
        Ok(posts)
    }

    fn tick_incident(&self, id: IncidentId) -> Result<Vec<Post>, CommandError> {
        let Some(current) = self.store().incident(id)? else {
            return Ok(Vec::new());
        };
        // Decide outside the transaction: building the texts reads other trees, and sled
        // transaction closures must not do I/O.
        let (watch, out) = self.decide(&current);
        if out.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<NewEntry> = out
            .iter()
            .map(|(_, text)| {
                let first = text.lines().next().unwrap_or_default();
                self.system_entry(EntryKind::Status, first)
            })
            .collect();
        let posted = std::cell::Cell::new(false);
        // Record only if nobody else has posted meanwhile, so nothing goes out twice.
        self.store().update_incident(id, |i| {
            if i.watch != current.watch {
                posted.set(false);
                return Ok::<_, CommandError>(Vec::new());
            }
            i.watch = watch.clone();
            posted.set(true);
            Ok(entries.clone())
        })?;
        Ok(if posted.get() {
            posts_for(&current.place, Some(id), out)
        } else {
            Vec::new()
        })
    }

    /// What is due for an open incident now, and the watch state once it is posted.
    fn decide(
        &self,
        i: &drbot_state::Incident,
    ) -> (drbot_state::WatchState, Vec<(PostKind, String)>) {
        let now = self.now();
        let every = Duration::minutes(self.config().status.every_mins as i64);
        let quiet = Duration::minutes(self.config().status.quiet_mins as i64);
        let mut watch = i.watch.clone();
        let mut out: Vec<(PostKind, String)> = Vec::new();
        let elapsed = now - i.declared_at;
        // RTO: post only the highest threshold newly crossed.
        if let Some(scenario) = self.runbook().of(i) {
            let rto = scenario.rto(self.config());
            let pct = if rto.num_seconds() > 0 {
                elapsed.num_seconds() * 100 / rto.num_seconds()
            } else {
                0
            };
            let crossed: Vec<u8> = RTO_THRESHOLDS
                .into_iter()
                .filter(|t| pct >= i64::from(*t) && !watch.rto_warned.contains(t))
                .collect();
            if let Some(&top) = crossed.last() {
                watch.rto_warned.extend(crossed.iter().copied());
                let text = if top >= 100 {
                    format!(
                        "{} has passed its {} RTO ({} elapsed). {}",
                        i.id,
                        render::duration(rto),
                        render::duration(elapsed),
                        next_line(self, i)
                    )
                } else {
                    format!(
                        "{} is at {top}% of its {} RTO: {} left. {}",
                        i.id,
                        render::duration(rto),
                        render::duration(rto - elapsed),
                        next_line(self, i)
                    )
                };
                out.push((PostKind::RtoWarning(top), text));
            }
        }
        // Status summary every `every_mins`.
        let last = watch.last_status_at.unwrap_or(i.declared_at);
        if now - last >= every {
            watch.last_status_at = Some(now);
            out.push((PostKind::Status, status_text(self, i)));
        }
        // A nudge once per quiet spell.
        let quiet_for = now - i.last_activity;
        let nudged_this_spell = watch.nudged_at.is_some_and(|n| n >= i.last_activity);
        if quiet_for >= quiet && !nudged_this_spell {
            watch.nudged_at = Some(now);
            let who = i
                .roles
                .get("commander")
                .map(|c| format!("{c}: "))
                .unwrap_or_default();
            out.push((
                PostKind::Nudge,
                format!(
                    "{who}nothing has been recorded on {} for {}. Where does it stand? \
                     Add a note (/incident note) or mark a step (/step done). {}",
                    i.id,
                    render::duration(quiet_for),
                    next_line(self, i)
                ),
            ));
        }
        (watch, out)
    }
}

fn posts_for(place: &str, incident: Option<IncidentId>, out: Vec<(PostKind, String)>) -> Vec<Post> {
    out.into_iter()
        .map(|(kind, text)| Post {
            incident,
            place: place.to_string(),
            kind,
            text,
        })
        .collect()
}
