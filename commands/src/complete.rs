//! Values offered while an option is typed (Discord autocomplete), so nobody has to remember a
//! backup key, a target, a step or a request id: `latest` and the newest backups, the
//! configured targets, the incident's open steps, the pending approval requests.

use drbot_state::ApprovalStatus;

use crate::context::{Context, Engine};

pub use crate::scenario::{Choice, MAX_CHOICES};

impl Engine {
    /// Choices for `option` given what has been typed so far (matched anywhere, any case).
    pub async fn complete(&self, ctx: &Context, option: &str, typed: &str) -> Vec<Choice> {
        let all = match option {
            "target" => self
                .config()
                .targets
                .iter()
                .map(|(name, t)| Choice::new(format!("{name} ({})", t.url_env), name.clone()))
                .collect(),
            "step" => self.step_choices(ctx),
            // `/incident reopen`: the newest incidents that are not open.
            "incident" => self
                .store()
                .incidents()
                .unwrap_or_default()
                .into_iter()
                .rev()
                .filter(|i| i.status != drbot_state::IncidentStatus::Open)
                .map(|i| {
                    let title = crate::render::truncate(&i.title, 60);
                    Choice::new(
                        format!("{} {} ({})", i.id, title, i.status.as_str()),
                        i.id.to_string(),
                    )
                })
                .collect(),
            "request" => self
                .store()
                .approvals()
                .unwrap_or_default()
                .into_iter()
                .rev()
                .filter(|r| r.status == ApprovalStatus::Pending)
                .map(|r| {
                    // Short enough for Discord's 100 characters: who asked comes first.
                    let what = crate::scenarios::action_of_kind(&r.action)
                        .map_or_else(|| r.summary.clone(), |a| a.short(&r.inputs));
                    Choice::new(
                        format!("{}, asked by {}: {what}", r.id, r.requested_by),
                        r.id.to_string(),
                    )
                })
                .collect(),
            // `/page who:`: every contact, then every group.
            "who" => {
                let contacts = &self.config().contacts;
                let mut groups: Vec<&String> =
                    contacts.values().flat_map(|c| c.groups.iter()).collect();
                groups.sort();
                groups.dedup();
                contacts
                    .iter()
                    .map(|(k, c)| Choice::new(format!("{} ({k})", c.name), k.clone()))
                    .chain(groups.into_iter().map(|g| {
                        let n = contacts.values().filter(|c| c.groups.contains(g)).count();
                        Choice::new(format!("group {g} ({n} people)"), g.clone())
                    }))
                    .collect()
            }
            // `/ack page:`: the pages waiting for an acknowledgement, newest first.
            "page" => self
                .store()
                .pages()
                .unwrap_or_default()
                .into_iter()
                .rev()
                .filter(|p| p.status == drbot_state::PageStatus::Open)
                .map(|p| {
                    let to = p.rounds.last().map_or("?", |r| r.group.as_str());
                    Choice::new(
                        crate::render::truncate(&format!("{} to {to}: {}", p.id, p.message), 100),
                        p.id.to_string(),
                    )
                })
                .collect(),
            other => {
                let mut offered = Vec::new();
                for s in crate::scenarios::ALL {
                    offered.extend(s.complete(self, other).await);
                }
                offered
            }
        };
        let typed = typed.trim().to_lowercase();
        all.into_iter()
            .filter(|c| {
                typed.is_empty()
                    || c.name.to_lowercase().contains(&typed)
                    || c.value.to_lowercase().contains(&typed)
            })
            .take(MAX_CHOICES)
            .collect()
    }

    fn step_choices(&self, ctx: &Context) -> Vec<Choice> {
        let Some(id) = self.incident_for(ctx, None) else {
            return Vec::new();
        };
        let Ok(Some(incident)) = self.store().incident(id) else {
            return Vec::new();
        };
        let scenario = self.runbook().of(&incident);
        incident
            .steps
            .iter()
            .enumerate()
            // Open steps, then those settled by hand (what /step undo takes).
            .filter(|(_, s)| !s.state.is_settled())
            .chain(
                incident
                    .steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.state.is_settled() && s.by_hand),
            )
            .map(|(n, s)| {
                let title = scenario
                    .and_then(|sc| sc.step(&s.id))
                    .map_or(s.id.as_str(), |st| st.title);
                let state = if s.by_hand {
                    format!("{} by hand", s.state.as_str())
                } else {
                    s.state.as_str().to_string()
                };
                Choice::new(format!("{}. {title} ({state})", n + 1), s.id.clone())
            })
            .collect()
    }
}
