//! The incident header: one message per incident in its channel, pinned, showing its state at
//! a glance — title, severity and scenario (colour by severity; green once resolved), roles,
//! started `<t:…:R>`, the RTO deadline, steps done with a bar, the next step, pending
//! approvals — with **Next step done** (for a manual next step) and **Status** buttons.
//!
//! `serve` calls [`refresh`] every few seconds beside its loop: a header is posted and pinned
//! the first time, edited when what it shows changed (so at most one edit per round), and
//! edited once after a restart. Which message is whose is kept in sled, so a restart edits
//! the same pinned message.

use std::collections::HashSet;
use std::sync::Mutex;

use drbot_commands::Engine;
use drbot_commands::incident::Header;
use drbot_state::{IncidentId, IncidentStatus};
use serenity::all::{
    ButtonStyle, ChannelId, CreateActionRow, CreateButton, CreateEmbed, CreateMessage, EditMessage,
    MessageId,
};
use serenity::http::Http;

use super::cards;

/// How many cells the steps bar has.
const BAR: usize = 12;

fn cut(text: &str, max: usize) -> String {
    drbot_commands::render::truncate(text.trim(), max)
}

/// The colour of an incident: by severity while open, green once resolved.
pub fn colour(h: &Header) -> u32 {
    if h.status != "open" {
        return cards::GREEN;
    }
    match h.severity.as_str() {
        "sev1" => cards::RED,
        "sev2" => 0xE6_7E_22,
        _ => cards::YELLOW,
    }
}

/// `▰▰▰▱▱▱`: settled steps out of all.
pub fn bar(settled: usize, total: usize) -> String {
    let filled = (settled * BAR).checked_div(total).unwrap_or(0).min(BAR);
    format!("{}{}", "▰".repeat(filled), "▱".repeat(BAR - filled))
}

/// The header as an embed with its buttons.
pub fn render(h: &Header) -> (CreateEmbed, Vec<CreateActionRow>) {
    let roles = if h.roles.is_empty() {
        "none assigned".to_string()
    } else {
        h.roles
            .iter()
            .map(|(r, who)| format!("{r}: {who}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut embed = CreateEmbed::new()
        .title(cut(&format!("{} · {}", h.id, h.title), 256))
        .description(format!("{} · {} · {}", h.severity, h.scenario, h.status))
        .colour(colour(h))
        .field("Roles", cut(&roles, 1024), true)
        .field(
            "Started",
            format!("<t:{}:R>", h.declared_at.timestamp()),
            true,
        );
    if let Some(d) = h.rto_deadline {
        embed = embed.field(
            "RTO deadline",
            format!("<t:{0}:t> (<t:{0}:R>)", d.timestamp()),
            true,
        );
    }
    if !h.component_deadlines.is_empty() {
        let lines: Vec<String> = h
            .component_deadlines
            .iter()
            .map(|(c, d)| format!("{c} <t:{}:t>", d.timestamp()))
            .collect();
        embed = embed.field("Per component", cut(&lines.join("\n"), 1024), true);
    }
    embed = embed.field(
        "Steps",
        format!("{} {}/{}", bar(h.settled, h.total), h.settled, h.total),
        false,
    );
    let next = match &h.next {
        Some((n, _, title, how, _)) if how.is_empty() => format!("{n}. {title}"),
        Some((n, _, title, how, _)) => format!("{n}. {title} — {how}"),
        None => "Every step is done or skipped.".to_string(),
    };
    embed = embed.field("Next", cut(&next, 1024), false);
    let pending = if h.pending.is_empty() {
        "none".to_string()
    } else {
        h.pending.join("\n")
    };
    embed = embed.field("Pending approvals", cut(&pending, 1024), false);
    let manual_next = h.next.as_ref().filter(|n| n.4);
    let step_button = match manual_next {
        Some((_, id, ..)) => CreateButton::new(format!("drbot:stepdone:{}:{id}", h.id)),
        None => CreateButton::new(format!("drbot:stepdone:{}:-", h.id)).disabled(true),
    };
    let rows = vec![CreateActionRow::Buttons(vec![
        step_button
            .label("Next step done")
            .style(ButtonStyle::Success),
        CreateButton::new(format!("drbot:update:{}", h.id))
            .label("Post update")
            .style(ButtonStyle::Primary),
        CreateButton::new(format!("drbot:status:{}", h.id))
            .label("Status")
            .style(ButtonStyle::Secondary),
    ])];
    (embed, rows)
}

/// Headers edited since this process started (each is edited once after a restart).
#[derive(Default)]
pub struct Headers(Mutex<HashSet<IncidentId>>);

fn note_name(id: IncidentId) -> String {
    format!("discord-header:{id}")
}

/// One round: every active incident in a Discord channel gets its header posted and pinned,
/// or edited when it changed (or not yet since this process started).
pub async fn refresh(http: &Http, engine: &Engine, seen: &Headers) {
    // Requests past their time are expired now, so their cards turn red within a round.
    if let Err(e) = drbot_commands::approval::expire_due(engine) {
        tracing::warn!(error = %e, "could not expire approval requests");
    }
    cards::refresh(http, engine).await;
    let Ok(incidents) = engine.store().active_incidents() else {
        return;
    };
    for incident in incidents {
        if incident.status == IncidentStatus::Closed {
            continue;
        }
        let Some(channel) = incident
            .place
            .strip_prefix("discord:")
            .and_then(|c| c.parse::<u64>().ok())
        else {
            continue;
        };
        let channel = ChannelId::new(channel);
        let header = Header::of(engine, &incident);
        let (embed, rows) = render(&header);
        let digest = serde_json::to_string(&(&embed, &rows)).unwrap_or_default();
        let digest = format!("{:x}", sha_of(&digest));
        let note = engine.store().note(&note_name(incident.id)).ok().flatten();
        let known = note.as_deref().and_then(|n| {
            let mut p = n.split(' ');
            Some((p.next()?.parse::<u64>().ok()?, p.next()?.to_string()))
        });
        let edited = seen
            .0
            .lock()
            .map(|s| s.contains(&incident.id))
            .unwrap_or(false);
        match known {
            Some((_, old)) if old == digest && edited => {}
            Some((message, _)) => {
                let body = EditMessage::new().embed(embed).components(rows);
                match channel
                    .edit_message(http, MessageId::new(message), body)
                    .await
                {
                    Ok(_) => {
                        let _ = engine
                            .store()
                            .set_note(&note_name(incident.id), &format!("{message} {digest}"));
                        if let Ok(mut s) = seen.0.lock() {
                            s.insert(incident.id);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, incident = %incident.id, "could not edit the incident header")
                    }
                }
            }
            None => {
                let body = CreateMessage::new().embed(embed).components(rows);
                match channel.send_message(http, body).await {
                    Ok(m) => {
                        let _ = engine
                            .store()
                            .set_note(&note_name(incident.id), &format!("{} {digest}", m.id.get()));
                        if let Ok(mut s) = seen.0.lock() {
                            s.insert(incident.id);
                        }
                        if let Err(e) = http
                            .pin_message(channel, m.id, Some("drbot incident header"))
                            .await
                        {
                            tracing::warn!(error = %e, "could not pin the incident header");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, incident = %incident.id, "could not post the incident header")
                    }
                }
            }
        }
    }
}

/// A short stable hash of the header's payload (what changed is all that matters).
fn sha_of(text: &str) -> u64 {
    // Stable across runs for the same text (it is stored): FNV-1a.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(severity: &str, status: &str, full: bool) -> Header {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Header {
            id: IncidentId(3),
            title: "t".repeat(400),
            severity: severity.to_string(),
            scenario: if full { "full" } else { "database" }.to_string(),
            status: status.to_string(),
            roles: vec![("commander".to_string(), "alice".to_string())],
            declared_at: at,
            rto_deadline: Some(at + chrono::Duration::hours(2)),
            component_deadlines: if full {
                vec![("storage".to_string(), at + chrono::Duration::hours(1))]
            } else {
                Vec::new()
            },
            settled: 3,
            total: 12,
            next: Some((
                4,
                "stop-apps".to_string(),
                "Stop".to_string(),
                String::new(),
                true,
            )),
            pending: Vec::new(),
        }
    }

    #[test]
    fn the_header_is_coloured_by_severity_and_fits_discord() {
        for (sev, status, colour) in [
            ("sev1", "open", cards::RED),
            ("sev2", "open", 0xE6_7E_22),
            ("sev3", "open", cards::YELLOW),
            ("sev1", "resolved", cards::GREEN),
        ] {
            let (embed, rows) = render(&header(sev, status, false));
            let e = serde_json::to_value(&embed).unwrap();
            assert_eq!(e["color"], colour, "{sev} {status}");
            assert!(e["title"].as_str().unwrap().chars().count() <= 256);
            let r = serde_json::to_value(&rows).unwrap();
            assert_eq!(
                r[0]["components"][0]["custom_id"],
                "drbot:stepdone:INC-3:stop-apps"
            );
        }
        let (embed, _) = render(&header("sev1", "open", true));
        let e = serde_json::to_value(&embed).unwrap();
        assert!(
            e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == "Per component" && f["value"] == "storage <t:1800003600:t>"),
            "{e}"
        );
    }

    #[test]
    fn the_bar_fills_with_settled_steps() {
        assert_eq!(bar(0, 10), "▱".repeat(12));
        assert_eq!(bar(10, 10), "▰".repeat(12));
        assert_eq!(bar(5, 10), format!("{}{}", "▰".repeat(6), "▱".repeat(6)));
        assert_eq!(bar(0, 0), "▱".repeat(12));
    }
}
