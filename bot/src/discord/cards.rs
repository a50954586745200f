//! Approval requests as cards: an embed coloured by the request's state (yellow while pending,
//! green when approved and done, red when denied, expired, void, failed or interrupted, blue
//! while its action runs) with Approve / Deny buttons that are disabled once it is decided.
//! Every text is cut to Discord's embed limits (title 256, description 4096, field 1024).

use drbot_state::{ApprovalRequest, ApprovalStatus, PreflightState};
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
const FIELD_NAME: usize = 256;
const FIELDS: usize = 25;
/// Characters across all the embeds of one message.
pub const MESSAGE_EMBEDS: usize = 6000;

/// An embed's texts before they are cut to Discord's limits: built with [`Embed::fit`], which
/// keeps every text within its own limit and the whole within `budget` characters (a message's
/// embeds share 6000), cutting the description first, then dropping fields from the end.
#[derive(Clone, Debug, Default)]
pub struct Embed {
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// Its colour.
    pub colour: u32,
    /// Named values (name, value, inline).
    pub fields: Vec<(String, String, bool)>,
    /// The attachment shown as its image, by name.
    pub image: Option<String>,
}

impl Embed {
    /// A field (empty values are shown as "—": Discord refuses an empty one).
    pub fn field(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        inline: bool,
    ) -> Self {
        self.fields.push((name.into(), value.into(), inline));
        self
    }

    /// The texts cut to Discord's limits and to `budget` characters in all.
    pub fn fitted(&self, budget: usize) -> Embed {
        let nonempty = |s: String| if s.is_empty() { "—".to_string() } else { s };
        let title = cut(&self.title, TITLE);
        let mut fields: Vec<(String, String, bool)> = self
            .fields
            .iter()
            .take(FIELDS)
            .map(|(n, v, i)| (nonempty(cut(n, FIELD_NAME)), nonempty(cut(v, FIELD)), *i))
            .collect();
        let count = |s: &str| s.chars().count();
        let of_fields = |f: &[(String, String, bool)]| {
            f.iter().map(|(n, v, _)| count(n) + count(v)).sum::<usize>()
        };
        while count(&title) + of_fields(&fields) > budget && !fields.is_empty() {
            fields.pop();
        }
        let room = budget.saturating_sub(count(&title) + of_fields(&fields));
        let description = match room {
            0 => String::new(),
            room => cut(&self.description, DESCRIPTION.min(room)),
        };
        Embed {
            title,
            description,
            colour: self.colour,
            fields,
            image: self.image.clone(),
        }
    }

    /// The serenity builder, fitted to `budget` characters.
    pub fn build(&self, budget: usize) -> CreateEmbed {
        let f = self.fitted(budget);
        let mut embed = CreateEmbed::new().title(f.title).colour(f.colour);
        if !f.description.is_empty() {
            embed = embed.description(f.description);
        }
        for (name, value, inline) in f.fields {
            embed = embed.field(name, value, inline);
        }
        if let Some(image) = f.image {
            embed = embed.attachment(image);
        }
        embed
    }
}

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

/// The card of a request: what the approver weighs (the preflight's named facts: backup, size,
/// age, target, sessions connected), its preflight while it runs, who asked, "n of m"
/// approvals, and when it expires or how it was decided. While it is pending it shows what the
/// preflight found and `extra` (the preflight's newest progress while it runs).
pub fn approval_card(r: &ApprovalRequest, extra: &str) -> (CreateEmbed, Vec<CreateActionRow>) {
    let pending = r.status == ApprovalStatus::Pending;
    let title = if pending {
        format!("Approval needed — {}", r.id)
    } else {
        format!("{} — {}", r.id, r.status.as_str())
    };
    let mut description = r.summary.clone();
    for more in [r.details.trim(), extra.trim()] {
        if pending && !more.is_empty() {
            description.push_str("\n\n");
            description.push_str(more);
        }
    }
    let mut embed = Embed {
        title,
        description,
        colour: colour(r.status),
        ..Embed::default()
    };
    for (name, value) in r.facts.iter().take(FIELDS - 4) {
        embed = embed.field(name, value, true);
    }
    embed = embed.field("Requested by", &r.requested_by, true).field(
        "Approvals",
        format!("{} of {}", r.approvals.len(), r.required.max(1)),
        true,
    );
    if !r.approvals.is_empty() {
        embed = embed.field("Approved by", r.approvals.join(", "), true);
    }
    if pending && r.preflight == PreflightState::Running {
        let then = if r.approved() {
            "approved: it runs the moment this passes"
        } else {
            "it can be approved now and runs only once this passes"
        };
        embed = embed.field("Preflight", format!("running — {then}"), false);
    } else if pending {
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
        embed = embed.field("Decision", format!("{}{by}{why}", r.status.as_str()), false);
    }
    let buttons = CreateActionRow::Buttons(vec![
        CreateButton::new(format!("drbot:approve:{}", r.id))
            .label("Approve")
            .style(ButtonStyle::Success)
            .disabled(!pending || r.approved()),
        CreateButton::new(format!("drbot:deny:{}", r.id))
            .label("Deny")
            .style(ButtonStyle::Danger)
            .disabled(!pending),
    ]);
    (embed.build(MESSAGE_EMBEDS), vec![buttons])
}

/// A progress card: the work's title, a bar, the newest line and its named facts (rate, ETA,
/// step n of m, elapsed against the RTO); blue while it runs, then green (`Some(true)`) or red
/// (`Some(false)`) with its result. Within `budget` characters.
pub fn progress_card(
    title: &str,
    line: &str,
    fraction: Option<f64>,
    facts: &[(String, String)],
    ended: Option<bool>,
    budget: usize,
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
    let mut embed = Embed {
        title: format!("{title} — {state}"),
        description: format!("{bar}\n{line}"),
        colour,
        ..Embed::default()
    };
    for (name, value) in facts {
        // What is still to come means nothing once the work has ended.
        if ended.is_some() && (name == "ETA" || name == "Running") {
            continue;
        }
        embed = embed.field(name, value, true);
    }
    embed.build(budget)
}

/// A reply's summary card (a report, a status): green when every objective was met, red when
/// one was missed; its chart as the image. Within `budget` characters.
pub fn summary_card(card: &drbot_commands::reply::Card, budget: usize) -> CreateEmbed {
    use drbot_commands::reply::CardState;
    let colour = match card.state {
        CardState::Good => GREEN,
        CardState::Bad => RED,
        CardState::Neutral => 0x95_A5_A6,
    };
    let mut embed = Embed {
        title: card.title.clone(),
        colour,
        image: card.image.clone(),
        ..Embed::default()
    };
    for (name, value) in &card.fields {
        embed = embed.field(name, value, false);
    }
    embed.build(budget)
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
    redraw_with(http, engine, channel, r, message, "").await
}

/// Redraws a request's card with `extra` shown under it while it is pending (the preflight's
/// progress).
pub async fn redraw_with(
    http: &serenity::http::Http,
    engine: &drbot_commands::Engine,
    channel: serenity::all::ChannelId,
    r: &ApprovalRequest,
    message: u64,
    extra: &str,
) {
    let (embed, rows) = approval_card(r, extra);
    let body = serenity::all::EditMessage::new()
        .embed(embed)
        .components(rows);
    match channel
        .edit_message(http, serenity::all::MessageId::new(message), body)
        .await
    {
        Ok(_) => {
            let _ = engine.store().set_note(&note_name(r.id), &drawn(r));
        }
        Err(e) => tracing::warn!(error = %e, "could not redraw an approval card"),
    }
}

/// What a card drawn of `r` shows of its state: a change of it (decided, expired, its
/// preflight settled, an approval counted) is what makes a card be drawn again.
pub fn drawn(r: &ApprovalRequest) -> String {
    format!(
        "{}/{}/{}",
        r.status.as_str(),
        r.preflight.as_str(),
        r.approvals.len()
    )
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
        if drawn.as_deref() == Some(self::drawn(&r).as_str()) {
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

    /// Discord's documented limits on one embed, and its size against a message's 6000.
    fn within_limits(e: &serde_json::Value) -> usize {
        let len = |v: &serde_json::Value| v.as_str().map_or(0, |s| s.chars().count());
        assert!(len(&e["title"]) <= 256, "{e}");
        assert!(len(&e["description"]) <= 4096, "{e}");
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        assert!(fields.len() <= 25, "{e}");
        let mut total = len(&e["title"]) + len(&e["description"]);
        for f in &fields {
            assert!(len(&f["name"]) <= 256 && len(&f["name"]) > 0, "{e}");
            assert!(len(&f["value"]) <= 1024 && len(&f["value"]) > 0, "{e}");
            total += len(&f["name"]) + len(&f["value"]);
        }
        total
    }

    fn any_texts() -> impl proptest::strategy::Strategy<Value = Vec<String>> {
        use proptest::prelude::*;
        prop::collection::vec(
            prop_oneof![
                Just(String::new()),
                "[a-zé✓ ]{0,40}",
                (1usize..9000).prop_map(|n| "x".repeat(n)),
                (1usize..3000).prop_map(|n| "é✓".repeat(n)),
            ],
            0..40,
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the texts and however many facts, a final reply's two cards together fit
        /// one message, and each keeps every per-field limit (the stand-in refuses the rest).
        #[test]
        fn every_card_fits_discord_whatever_it_is_given(texts in any_texts()) {
            let text = |i: usize| texts.get(i).cloned().unwrap_or_default();
            let facts: Vec<(String, String)> = texts
                .chunks(2)
                .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
                .collect();
            let card = drbot_commands::reply::Card {
                title: text(0),
                state: drbot_commands::reply::CardState::Good,
                fields: facts.clone(),
                image: Some("a.png".into()),
            };
            let summary = serde_json::to_value(summary_card(&card, MESSAGE_EMBEDS - 1500)).unwrap();
            let progress = serde_json::to_value(progress_card(
                &text(1), &text(2), Some(0.5), &facts, Some(true), 1500,
            ))
            .unwrap();
            proptest::prop_assert!(within_limits(&summary) + within_limits(&progress) <= MESSAGE_EMBEDS);
            let mut r = request(ApprovalStatus::Pending);
            r.summary = text(3);
            r.requested_by = if text(4).is_empty() { "a".into() } else { text(4) };
            r.facts = facts;
            let (embed, _) = approval_card(&r, &text(5));
            let e = serde_json::to_value(&embed).unwrap();
            proptest::prop_assert!(within_limits(&e) <= MESSAGE_EMBEDS);
        }
    }

    #[test]
    fn a_progress_card_shows_its_facts_and_drops_what_is_to_come_once_ended() {
        let facts = vec![
            ("Step".to_string(), "2 of 4".to_string()),
            (
                "Running".to_string(),
                "Restore the latest backup".to_string(),
            ),
            ("Rate".to_string(), "3.0 MiB/s".to_string()),
            ("ETA".to_string(), "about 20 s".to_string()),
        ];
        let running = serde_json::to_value(progress_card(
            "DRILL-1 — database drill",
            "Step 2…",
            Some(0.25),
            &facts,
            None,
            MESSAGE_EMBEDS,
        ))
        .unwrap();
        assert_eq!(running["color"], BLUE);
        assert!(running["description"].as_str().unwrap().contains("25%"));
        let names: Vec<&str> = running["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Step", "Running", "Rate", "ETA"]);
        let ended = serde_json::to_value(progress_card(
            "DRILL-1 — database drill",
            "done",
            Some(0.25),
            &facts,
            Some(true),
            MESSAGE_EMBEDS,
        ))
        .unwrap();
        assert_eq!(ended["color"], GREEN);
        assert!(ended["description"].as_str().unwrap().contains("100%"));
        let names: Vec<&str> = ended["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Step", "Rate"]);
    }

    #[test]
    fn a_request_card_names_what_the_approver_weighs() {
        let mut r = request(ApprovalStatus::Pending);
        r.facts = vec![
            ("Backup".into(), "db/2026-11-25T10-00-00Z.sql.xz.age".into()),
            ("Size".into(), "4.2 MiB".into()),
            (
                "Target".into(),
                "staging (postgres://app:***@db:5432/app)".into(),
            ),
            ("Sessions connected".into(), "none".into()),
        ];
        let (embed, _) = approval_card(&r, "");
        let e = serde_json::to_value(&embed).unwrap();
        let fields: Vec<(String, String)> = e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (name, value) in &r.facts {
            assert!(
                fields.contains(&(name.clone(), value.clone())),
                "{fields:?}"
            );
        }
        assert!(fields.contains(&("Approvals".into(), "1 of 2".into())));
        assert!(fields.contains(&("Approved by".into(), "bob".into())));
        // Decided: the facts stay, the decision shows.
        r.status = ApprovalStatus::Denied;
        r.decided_by = Some("carol".into());
        let (embed, _) = approval_card(&r, "");
        let e = serde_json::to_value(&embed).unwrap().to_string();
        assert!(
            e.contains("db/2026-11-25T10-00-00Z.sql.xz.age") && e.contains("denied by carol"),
            "{e}"
        );
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
