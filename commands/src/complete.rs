//! Values offered while an option is typed (Discord autocomplete), so nobody has to remember a
//! backup key, a target, a step or a request id: `latest` and the newest backups, the
//! configured targets, the incident's open steps, the pending approval requests.

use drbot_state::ApprovalStatus;

use crate::engine::{Context, Engine};
use crate::render;

/// One offered value: what is shown and what is filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// Shown (at most 100 characters).
    pub name: String,
    /// Filled in (at most 100 characters).
    pub value: String,
}

/// Discord shows at most 25 choices.
pub const MAX_CHOICES: usize = 25;

fn choice(name: String, value: String) -> Choice {
    Choice {
        name: render::truncate(&name, 100),
        value: render::truncate(&value, 100),
    }
}

impl Engine {
    /// Choices for `option` given what has been typed so far (matched anywhere, any case).
    pub async fn complete(&self, ctx: &Context, option: &str, typed: &str) -> Vec<Choice> {
        let all = match option {
            "target" => self
                .config()
                .targets
                .iter()
                .map(|(name, t)| choice(format!("{name} ({})", t.url_env), name.clone()))
                .collect(),
            "step" => self.step_choices(ctx),
            "request" => self
                .store()
                .approvals()
                .unwrap_or_default()
                .into_iter()
                .rev()
                .filter(|r| r.status == ApprovalStatus::Pending)
                .map(|r| {
                    // Short enough for Discord's 100 characters: who asked comes first.
                    let what = match (r.inputs.get("backup"), r.inputs.get("target")) {
                        (Some(b), Some(t)) => format!("restore {b} into {t}"),
                        _ => r.summary.clone(),
                    };
                    choice(
                        format!("{}, asked by {}: {what}", r.id, r.requested_by),
                        r.id.to_string(),
                    )
                })
                .collect(),
            "backup" => self.backup_choices().await,
            _ => Vec::new(),
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
        let scenario = crate::runbook::scenario_of(&incident);
        incident
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.state.is_settled())
            .map(|(n, s)| {
                let title = scenario
                    .and_then(|sc| sc.step(&s.id))
                    .map_or(s.id.as_str(), |st| st.title);
                choice(
                    format!("{}. {title} ({})", n + 1, s.state.as_str()),
                    s.id.clone(),
                )
            })
            .collect()
    }

    async fn backup_choices(&self) -> Vec<Choice> {
        let mut out = vec![choice(
            "latest (the newest backup)".to_string(),
            "latest".to_string(),
        )];
        let Ok((bucket, s)) = crate::db::backup_bucket(self) else {
            return out;
        };
        let now = self.now();
        if let Ok(list) = crate::db::list_backups(&bucket, &s.db_prefix).await {
            out.extend(list.into_iter().take(MAX_CHOICES - 1).map(|o| {
                let age = crate::db::taken_at(&o)
                    .map(|t| format!(", {} old", render::duration(now - t)))
                    .unwrap_or_default();
                let name = o
                    .key
                    .strip_prefix(&s.db_prefix)
                    .unwrap_or(&o.key)
                    .to_string();
                choice(format!("{name} ({}{age})", crate::db::size(o.size)), o.key)
            }));
        }
        out
    }
}
