//! Approval requests as cards: an embed coloured by the request's state (yellow while pending,
//! green when approved and done, red when denied, expired, void, failed or interrupted, blue
//! while its action runs) with Approve / Deny buttons that are disabled once it is decided.
//! Every text is cut to Discord's embed limits (title 256, description 4096, field 1024).

use drbot_state::{ApprovalRequest, ApprovalStatus};
use serenity::all::{ButtonStyle, CreateActionRow, CreateButton, CreateEmbed};

/// Embed colours.
pub const YELLOW: u32 = 0xF1_C4_0F;
/// Done.
pub const GREEN: u32 = 0x2E_CC_71;
/// Refused, failed, or void.
pub const RED: u32 = 0xE7_4C_3C;
/// Running.
pub const BLUE: u32 = 0x34_98_DB;

/// Discord's embed limits.
const TITLE: usize = 256;
const DESCRIPTION: usize = 4096;
const FIELD: usize = 1024;

/// The colour of a request in this state.
pub fn colour(status: ApprovalStatus) -> u32 {
    match status {
        ApprovalStatus::Pending => YELLOW,
        ApprovalStatus::Executing => BLUE,
        ApprovalStatus::Executed => GREEN,
        ApprovalStatus::Failed
        | ApprovalStatus::Denied
        | ApprovalStatus::Expired
        | ApprovalStatus::Voided
        | ApprovalStatus::Interrupted => RED,
    }
}

fn cut(text: &str, max: usize) -> String {
    drbot_commands::render::truncate(text.trim(), max)
}

/// The card of a request: `details` is what the preflight found (shown while it is pending).
pub fn approval_card(r: &ApprovalRequest, details: &str) -> (CreateEmbed, Vec<CreateActionRow>) {
    let pending = r.status == ApprovalStatus::Pending;
    let title = if pending {
        format!("Approval needed — {}", r.id)
    } else {
        format!("{} — {}", r.id, r.status.as_str())
    };
    let mut description = r.summary.clone();
    if !details.trim().is_empty() {
        description.push_str("\n\n");
        description.push_str(details.trim());
    }
    let mut embed = CreateEmbed::new()
        .title(cut(&title, TITLE))
        .description(cut(&description, DESCRIPTION))
        .colour(colour(r.status))
        .field("Requested by", cut(&r.requested_by, FIELD), true)
        .field(
            "Approvals",
            format!("{} of {}", r.approvals.len(), r.required.max(1)),
            true,
        );
    if pending {
        embed = embed.field(
            "Expires",
            format!("<t:{}:R>", r.expires_at.timestamp()),
            true,
        );
    } else {
        let by = r
            .decided_by
            .as_deref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        let why = r
            .reason
            .as_deref()
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        embed = embed.field(
            "Decision",
            cut(&format!("{}{by}{why}", r.status.as_str()), FIELD),
            false,
        );
    }
    let buttons = CreateActionRow::Buttons(vec![
        CreateButton::new(format!("drbot:approve:{}", r.id))
            .label("Approve")
            .style(ButtonStyle::Success)
            .disabled(!pending),
        CreateButton::new(format!("drbot:deny:{}", r.id))
            .label("Deny")
            .style(ButtonStyle::Danger)
            .disabled(!pending),
    ]);
    (embed, vec![buttons])
}

/// A progress card: the work's title, a bar, the newest line; blue while it runs, then green
/// (`Some(true)`) or red (`Some(false)`) with its result.
pub fn progress_card(
    title: &str,
    line: &str,
    fraction: Option<f64>,
    ended: Option<bool>,
) -> CreateEmbed {
    const CELLS: usize = 20;
    let (colour, state) = match ended {
        None => (BLUE, "running"),
        Some(true) => (GREEN, "done"),
        Some(false) => (RED, "stopped"),
    };
    let fraction = match ended {
        Some(true) => Some(1.0),
        _ => fraction.map(|f| f.clamp(0.0, 1.0)),
    };
    let bar = match fraction {
        Some(f) => {
            let filled = ((f * CELLS as f64).round() as usize).min(CELLS);
            format!(
                "{}{} {:.0}%",
                "█".repeat(filled),
                "░".repeat(CELLS - filled),
                f * 100.0
            )
        }
        None => "…".to_string(),
    };
    CreateEmbed::new()
        .title(cut(&format!("{title} — {state}"), TITLE))
        .description(cut(&format!("{bar}\n{line}"), DESCRIPTION))
        .colour(colour)
}

/// A reply's summary card (the post-incident report): green when every objective was met, red
/// when one was missed; its chart as the image.
pub fn summary_card(card: &drbot_commands::reply::Card) -> CreateEmbed {
    use drbot_commands::reply::CardState;
    let colour = match card.state {
        CardState::Good => GREEN,
        CardState::Bad => RED,
        CardState::Neutral => 0x95_A5_A6,
    };
    let mut embed = CreateEmbed::new()
        .title(cut(&card.title, TITLE))
        .colour(colour);
    for (name, value) in card.fields.iter().take(25) {
        embed = embed.field(cut(name, 256), cut(value, FIELD), false);
    }
    if let Some(image) = &card.image {
        embed = embed.attachment(image);
    }
    embed
}

/// The note that keeps which state a request's card was last drawn in.
pub fn note_name(id: drbot_state::RequestId) -> String {
    format!("discord-card:{id}")
}

/// Redraws a request's card in its current state and remembers it.
pub async fn redraw(
    http: &serenity::http::Http,
    engine: &drbot_commands::Engine,
    channel: serenity::all::ChannelId,
    r: &ApprovalRequest,
    message: u64,
) {
    let (embed, rows) = approval_card(r, "");
    let body = serenity::all::EditMessage::new()
        .embed(embed)
        .components(rows);
    match channel
        .edit_message(http, serenity::all::MessageId::new(message), body)
        .await
    {
        Ok(_) => {
            let _ = engine.store().set_note(&note_name(r.id), r.status.as_str());
        }
        Err(e) => tracing::warn!(error = %e, "could not redraw an approval card"),
    }
}

/// Cards whose request changed state since they were drawn (expired, or decided from the
/// console) are redrawn.
pub async fn refresh(http: &serenity::http::Http, engine: &drbot_commands::Engine) {
    let Ok(list) = engine.store().approvals() else {
        return;
    };
    for r in list {
        let Some(message) = r.message_id else {
            continue;
        };
        let drawn = engine.store().note(&note_name(r.id)).ok().flatten();
        if drawn.as_deref() == Some(r.status.as_str()) {
            continue;
        }
        let Some(channel) = r
            .place
            .strip_prefix("discord:")
            .and_then(|c| c.parse::<u64>().ok())
        else {
            continue;
        };
        redraw(
            http,
            engine,
            serenity::all::ChannelId::new(channel),
            &r,
            message,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(status: ApprovalStatus) -> ApprovalRequest {
        serde_json::from_value(serde_json::json!({
            "id": 7, "incident": null, "place": "discord:2", "requested_by": "alice",
            "requested_proof": "proven", "command": "/db restore backup:latest target:staging",
            "action": "db-restore", "inputs": {}, "digest": "d",
            "summary": "restore db/x into staging", "created_at": "2026-11-25T09:00:00Z",
            "expires_at": "2026-11-25T09:15:00Z", "status": status, "decided_by": null,
            "decided_at": null, "reason": null, "message_id": null, "required": 2,
            "approvals": ["bob"]
        }))
        .unwrap()
    }

    #[test]
    fn a_card_says_its_state_in_colour_and_disables_its_buttons_once_decided() {
        let (embed, rows) = approval_card(&request(ApprovalStatus::Pending), "backup read whole");
        let e = serde_json::to_value(&embed).unwrap();
        assert_eq!(e["color"], YELLOW);
        assert_eq!(e["title"], "Approval needed — A-7");
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .contains("backup read whole")
        );
        let fields = e["fields"].as_array().unwrap();
        assert!(
            fields
                .iter()
                .any(|f| f["name"] == "Approvals" && f["value"] == "1 of 2")
        );
        assert!(fields.iter().any(|f| f["value"] == "<t:1795598100:R>"));
        let r = serde_json::to_value(&rows).unwrap();
        assert_eq!(r[0]["components"][0]["disabled"], false);
        for (status, colour) in [
            (ApprovalStatus::Executed, GREEN),
            (ApprovalStatus::Denied, RED),
            (ApprovalStatus::Expired, RED),
            (ApprovalStatus::Voided, RED),
            (ApprovalStatus::Executing, BLUE),
        ] {
            let (embed, rows) = approval_card(&request(status), "");
            let e = serde_json::to_value(&embed).unwrap();
            assert_eq!(e["color"], colour, "{status:?}");
            let r = serde_json::to_value(&rows).unwrap();
            assert_eq!(r[0]["components"][0]["disabled"], true, "{status:?}");
            assert_eq!(r[0]["components"][1]["disabled"], true, "{status:?}");
        }
    }

    #[test]
    fn long_texts_are_cut_to_the_embed_limits() {
        let mut r = request(ApprovalStatus::Pending);
        r.summary = "s".repeat(5000);
        r.requested_by = "n".repeat(3000);
        let (embed, _) = approval_card(&r, &"d".repeat(9000));
        let e = serde_json::to_value(&embed).unwrap();
        assert!(e["description"].as_str().unwrap().chars().count() <= 4096);
        for f in e["fields"].as_array().unwrap() {
            assert!(f["value"].as_str().unwrap().chars().count() <= 1024);
        }
    }
}
