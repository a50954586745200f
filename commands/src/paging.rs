//! The runbook's emergency contacts (SPEC §10). `/contacts` says whom to call for the
//! incident's scenario, whom to escalate to, and which external support helps with the step in
//! progress. Declaring at a severity `[paging]` lists pages those groups; `/page` pages anyone
//! on the list now. A page nobody acknowledges within `escalate_after_mins` goes to the next
//! group of `escalation`; `/ack` (or ✅ on the page's Discord message) stops it; resolving the
//! incident closes it.
//!
//! A page and the deliveries of each of its rounds (an email through Resend, a Discord
//! mention, a PagerDuty Events API v2 event) are written in one transaction and delivered by
//! the notification outbox, with its retries and idempotency keys: a page is never lost and
//! never sent twice, across kills and restarts.

use chrono::{DateTime, Duration, Utc};
use drbot_state::{
    EntryKind, Incident, IncidentId, NewEntry, OutboxItem, Page, PageId, PageRound, PageStatus,
};
use serde_json::json;

use crate::config::{Config, Contact};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::render;
use crate::reply::Reply;

/// The outbox channel of PagerDuty events (delivered by [`crate::notify`]).
pub use crate::notify::PAGERDUTY;

/// PagerDuty's limit on an event's summary.
const PD_SUMMARY: usize = 1024;

/// The contacts of a group (or the one contact of that key), by key, in key order.
fn members<'a>(config: &'a Config, who: &str) -> Vec<(&'a String, &'a Contact)> {
    if let Some((key, c)) = config.contacts.get_key_value(who) {
        return vec![(key, c)];
    }
    config
        .contacts
        .iter()
        .filter(|(_, c)| c.groups.iter().any(|g| g == who))
        .collect()
}

/// The groups a page climbs after its first round (`first`, a group or a contact): the
/// groups of `escalation` after the furthest one `first` is or belongs to; all of them when
/// it is in none.
fn path_after(config: &Config, first: &[String]) -> Vec<String> {
    let Some(p) = &config.paging else {
        return Vec::new();
    };
    let mut groups: Vec<&str> = Vec::new();
    for f in first {
        groups.push(f);
        if let Some(c) = config.contacts.get(f) {
            groups.extend(c.groups.iter().map(String::as_str));
        }
    }
    let from = p
        .escalation
        .iter()
        .rposition(|g| groups.contains(&g.as_str()))
        .map_or(0, |i| i + 1);
    p.escalation[from..]
        .iter()
        .filter(|g| !first.contains(g))
        .cloned()
        .collect()
}

/// How long an unacknowledged page waits before it escalates.
fn escalate_after(config: &Config) -> Duration {
    Duration::minutes(config.paging.as_ref().map_or(15, |p| p.escalate_after_mins) as i64)
}

/// Whether PagerDuty is configured (its routing key's variable named and set).
fn pagerduty_on(engine: &Engine) -> bool {
    engine
        .config()
        .paging
        .as_ref()
        .and_then(|p| p.pagerduty_routing_key_env.as_ref())
        .is_some_and(|k| (engine.env())(k).is_some_and(|v| !v.trim().is_empty()))
}

/// A contact as a line a person can act on: name, phone to dial, email, site.
fn contact_line(key: &str, c: &Contact) -> String {
    let mut ways = Vec::new();
    if let Some(p) = c.phone.as_deref().filter(|p| !p.trim().is_empty()) {
        ways.push(format!("phone {}", p.trim()));
    }
    if let Some(e) = c.email.as_deref().filter(|e| !e.trim().is_empty()) {
        ways.push(e.trim().to_string());
    }
    if let Some(u) = c.url.as_deref().filter(|u| !u.trim().is_empty()) {
        ways.push(u.trim().to_string());
    }
    if c.discord_id.is_some() {
        ways.push("Discord".to_string());
    }
    let ways = if ways.is_empty() {
        "no way to reach them is configured".to_string()
    } else {
        ways.join(" · ")
    };
    format!("{} ({key}) — {ways}", c.name)
}

/// The component of the step in progress, as external contacts name what they support:
/// `database`, `storage`, `search`, …, or `post-recovery` for the checklist after recovery.
fn step_in_progress(
    runbook: &crate::runbook::Runbook,
    incident: &Incident,
) -> Option<(String, &'static str)> {
    let rec = incident.steps.iter().find(|s| !s.state.is_settled())?;
    let scenario = runbook.of(incident)?;
    let step = scenario.step(&rec.id)?;
    let what = scenario
        .group_of(&rec.id)
        .map_or("post-recovery", |g| g.name);
    Some((step.title.to_string(), what))
}

/// `/contacts`: for this channel's incident (if any), whom to call first, whom to escalate
/// to, and the external support for the step in progress; with no incident, everyone.
pub fn contacts(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let config = engine.config();
    if config.contacts.is_empty() {
        return Err(CommandError::Refused(
            "No contacts are configured. Add the runbook's Emergency Contacts as [contacts.<name>] \
             with name, phone, email, discord_id and groups (primary, escalation, external)."
                .to_string(),
        ));
    }
    let incident = engine.select(ctx, inv, false).ok();
    let scenario = incident.as_ref().map(|i| i.scenario.clone());
    let in_group = |c: &Contact, g: &str| c.groups.iter().any(|x| x == g);
    let owns = |c: &Contact| {
        scenario
            .as_deref()
            .is_some_and(|s| c.scenarios.iter().any(|x| x == s))
    };
    let mut text = match &incident {
        Some(i) => format!(
            "Contacts for {} ({} {}, “{}”):\n",
            i.id, i.severity, i.scenario, i.title
        ),
        None => "Contacts (no incident here; every one listed):\n".to_string(),
    };
    // Call first: the primary contacts who own this scenario, then the other primaries.
    let mut first: Vec<(&String, &Contact)> = config
        .contacts
        .iter()
        .filter(|(_, c)| in_group(c, "primary"))
        .collect();
    first.sort_by_key(|(_, c)| !owns(c));
    text.push_str("Call first:\n");
    if first.is_empty() {
        text.push_str("  nobody is in the primary group\n");
    }
    for (k, c) in &first {
        let mark = if owns(c) {
            " — owns this scenario"
        } else {
            ""
        };
        text.push_str(&format!("  {}{mark}\n", contact_line(k, c)));
    }
    let escalation: Vec<String> = config
        .paging
        .as_ref()
        .map(|p| {
            p.escalation
                .iter()
                .filter(|g| *g != "primary")
                .cloned()
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| vec!["escalation".to_string()]);
    text.push_str(&format!("Escalation ({}):\n", escalation.join(" → ")));
    let mut any = false;
    for g in &escalation {
        for (k, c) in members(config, g) {
            any = true;
            text.push_str(&format!("  {}\n", contact_line(k, c)));
        }
    }
    if !any {
        text.push_str("  nobody is in those groups\n");
    }
    let external: Vec<(&String, &Contact)> = config
        .contacts
        .iter()
        .filter(|(_, c)| in_group(c, "external"))
        .collect();
    if !external.is_empty() {
        match incident
            .as_ref()
            .and_then(|i| step_in_progress(engine.runbook(), i))
        {
            Some((step, what)) => {
                let relevant: Vec<&(&String, &Contact)> = external
                    .iter()
                    .filter(|(_, c)| c.scenarios.iter().any(|s| s == what))
                    .collect();
                text.push_str(&format!(
                    "External support for the step in progress ({step}):\n"
                ));
                if relevant.is_empty() {
                    text.push_str(&format!("  none is listed for {what}\n"));
                }
                for (k, c) in relevant {
                    text.push_str(&format!("  {}\n", contact_line(k, c)));
                }
            }
            None => {
                text.push_str("External support:\n");
                for (k, c) in &external {
                    text.push_str(&format!("  {}\n", contact_line(k, c)));
                }
            }
        }
    }
    let open = open_pages(engine, incident.as_ref().map(|i| i.id));
    match open.first() {
        Some(p) => text.push_str(&format!(
            "Open page: {} to {} — /ack page:{} when you have it.",
            p.id,
            p.rounds.last().map_or("?", |r| r.group.as_str()),
            p.id
        )),
        None => {
            text.push_str("Next: /page who:<contact or group> message:<why> wakes someone now.")
        }
    }
    Ok(Reply::done(text))
}

/// The pages still waiting for an acknowledgement, of an incident (or every one).
fn open_pages(engine: &Engine, incident: Option<IncidentId>) -> Vec<Page> {
    engine
        .store()
        .pages()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.status == PageStatus::Open)
        .filter(|p| incident.is_none() || p.incident == incident)
        .collect()
}

/// What a page says, in a line or two.
fn page_text(
    page: &Page,
    incident: Option<&Incident>,
    round: usize,
    next: Option<(&str, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> String {
    let about = match incident {
        Some(i) => format!(
            "{} for {} ({} {}): “{}”",
            page.id, i.id, i.severity, i.scenario, i.title
        ),
        None => format!("{}: {}", page.id, page.message),
    };
    let escalated = if round > 0 {
        format!(
            " Escalated: nobody acknowledged it since {}.",
            render::time(page.created_at, now)
        )
    } else {
        String::new()
    };
    let note = if incident.is_some()
        && page.message != incident.map(|i| i.title.clone()).unwrap_or_default()
    {
        format!(" {}", page.message)
    } else {
        String::new()
    };
    let then = match next {
        Some((group, at)) => format!(
            " Unacknowledged, it goes to {group} at {}.",
            render::time(at, now)
        ),
        None => String::new(),
    };
    format!(
        "{about}.{note}{escalated} Acknowledge with /ack page:{} or react ✅ here.{then}",
        page.id
    )
}

/// The deliveries of one round: an email to each contact with an address (when `[notify]`
/// has a sender), one Discord message mentioning them, and (`pd`) a PagerDuty event.
#[allow(clippy::too_many_arguments)]
fn deliveries(
    engine: &Engine,
    page: &Page,
    incident: Option<&Incident>,
    contacts: &[(&String, &Contact)],
    text: &str,
    pd: Option<&str>,
    first: u64,
    now: DateTime<Utc>,
) -> Vec<OutboxItem> {
    let config = engine.config();
    let mut out: Vec<(String, serde_json::Value, String)> = Vec::new();
    let subject = format!(
        "[PAGE] {}",
        render::truncate(text.split(". ").next().unwrap_or(text), 200)
    );
    if let Some(from) = config.notify.as_ref().and_then(|n| n.email_from.as_ref()) {
        for (_, c) in contacts {
            if let Some(to) = c.email.as_deref().filter(|e| !e.trim().is_empty()) {
                out.push((
                    "email".to_string(),
                    json!({ "from": from, "to": [to.trim()], "subject": subject, "text": text }),
                    format!("page to {}", c.name),
                ));
            }
        }
    }
    if let Some(dc) = &config.discord {
        let channel = incident
            .and_then(|i| i.place.strip_prefix("discord:"))
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(dc.incident_channel_id);
        let ids: Vec<String> = contacts
            .iter()
            .filter_map(|(_, c)| c.discord_id.map(|d| d.to_string()))
            .collect();
        let mentions: Vec<String> = ids.iter().map(|i| format!("<@{i}>")).collect();
        let content = render::truncate(&format!("{} {text}", mentions.join(" ")), 2000);
        out.push((
            "discord".to_string(),
            json!({ "channel": channel, "content": content.trim_start(),
                    "allowed_mentions": { "parse": [], "users": ids } }),
            format!("page in Discord ({} mentioned)", mentions.len()),
        ));
    }
    if let Some(action) = pd
        && pagerduty_on(engine)
    {
        let mut event = json!({ "event_action": action, "dedup_key": page.dedup_key });
        if action == "trigger" {
            let severity = match incident.map(|i| i.severity.as_str()) {
                Some("sev1") | None => "critical",
                Some("sev2") => "error",
                _ => "warning",
            };
            event["payload"] = json!({
                "summary": render::truncate(text, PD_SUMMARY),
                "source": "drbot",
                "severity": severity,
                "component": incident.map(|i| i.scenario.clone()),
                "custom_details": { "page": page.id.to_string(),
                                    "incident": incident.map(|i| i.id.to_string()) },
            });
            event["client"] = json!("drbot");
        }
        out.push((PAGERDUTY.to_string(), event, format!("PagerDuty {action}")));
    }
    out.into_iter()
        .enumerate()
        .map(|(n, (channel, body, summary))| {
            let id = first + n as u64;
            crate::notify::queued(
                id,
                &channel,
                format!("drbot-{}-n{id}", page.id),
                page.incident,
                format!("{}: {summary}", page.id),
                body,
                now,
            )
        })
        .collect()
}

/// A PagerDuty event about a page (`acknowledge`, `resolve`) alone, numbered from `first`;
/// nothing when PagerDuty is not configured.
fn pagerduty_event(
    engine: &Engine,
    page: &Page,
    incident: Option<&Incident>,
    action: &str,
    first: u64,
    now: DateTime<Utc>,
) -> Vec<OutboxItem> {
    deliveries(engine, page, incident, &[], "", Some(action), first, now)
        .into_iter()
        .filter(|i| i.channel == PAGERDUTY)
        .enumerate()
        .map(|(n, mut i)| {
            i.id = first + n as u64;
            i.key = format!("drbot-{}-n{}", page.id, i.id);
            i
        })
        .collect()
}

/// The channels of a round's deliveries: `email ×2, discord, pagerduty`.
fn channel_list(items: &[OutboxItem]) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for i in items {
        match out.iter_mut().find(|(c, _)| *c == i.channel) {
            Some((_, n)) => *n += 1,
            None => out.push((i.channel.clone(), 1)),
        }
    }
    out.iter()
        .map(|(c, n)| {
            if *n > 1 {
                format!("{c} ×{n}")
            } else {
                c.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names of contacts, for the timeline.
fn names(contacts: &[(&String, &Contact)]) -> String {
    if contacts.is_empty() {
        return "nobody (the group is empty)".to_string();
    }
    contacts
        .iter()
        .map(|(_, c)| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sends a new page to `first` (groups or contacts), climbing `path` after it; `once` makes it
/// at most one page under that key.
fn send(
    engine: &Engine,
    actor: &str,
    incident: Option<&Incident>,
    first: Vec<String>,
    message: &str,
    once: Option<&str>,
    entry: impl Fn(String) -> NewEntry,
) -> Result<(Page, Vec<OutboxItem>), CommandError> {
    let config = engine.config();
    let now = engine.now();
    let label = first.join(" + ");
    let contacts: Vec<(&String, &Contact)> = {
        let mut v: Vec<(&String, &Contact)> = Vec::new();
        for f in &first {
            for m in members(config, f) {
                if !v.iter().any(|(k, _)| *k == m.0) {
                    v.push(m);
                }
            }
        }
        v
    };
    let mut path = vec![label.clone()];
    path.extend(path_after(config, &first));
    let delay = escalate_after(config);
    engine
        .store()
        .write_page(None, once, |id, _, first_outbox| {
            let mut page = Page {
                id,
                incident: incident.map(|i| i.id),
                message: message.to_string(),
                paged_by: actor.to_string(),
                path: path.clone(),
                rounds: Vec::new(),
                created_at: now,
                // Past its last group it still comes due once more: to say nobody answered.
                escalate_at: Some(now + delay),
                status: PageStatus::Open,
                acked_by: None,
                acked_at: None,
                dedup_key: match incident {
                    Some(i) => format!("drbot-{}-{id}", i.id),
                    None => format!("drbot-{id}"),
                },
            };
            let next = path.get(1).map(|g| (g.as_str(), now + delay));
            let text = page_text(&page, incident, 0, next, now);
            let items = deliveries(
                engine,
                &page,
                incident,
                &contacts,
                &text,
                Some("trigger"),
                first_outbox,
                now,
            );
            page.rounds.push(PageRound {
                group: label.clone(),
                contacts: contacts.iter().map(|(k, _)| (*k).clone()).collect(),
                at: now,
                outbox: items.iter().map(|i| i.id).collect(),
            });
            let channels = channel_list(&items);
            let e = entry(format!(
                "{id} sent to {label}: {} (by {}){}.",
                names(&contacts),
                if channels.is_empty() {
                    "no channel is configured".to_string()
                } else {
                    channels
                },
                match next {
                    Some((g, at)) => format!(
                        "; unacknowledged it goes to {g} at {}",
                        render::time(at, now)
                    ),
                    None => String::new(),
                }
            ));
            Ok::<_, CommandError>((page, items, vec![e]))
        })
}

/// Pages the groups `[paging]` lists for a newly declared incident's severity, once per
/// incident (a second call, from the watch after a kill, finds the page made). Returns a line
/// for the declare's reply.
pub fn on_declare(engine: &Engine, ctx: &Context, incident: &Incident) -> String {
    let Some(p) = &engine.config().paging else {
        return String::new();
    };
    let groups = p.groups_for(&incident.severity).to_vec();
    if groups.is_empty() {
        return String::new();
    }
    let once = format!("declare:{}", incident.id);
    match send(
        engine,
        "drbot",
        Some(incident),
        groups.clone(),
        &incident.title,
        Some(&once),
        |text| engine.entry(ctx, EntryKind::Page, text),
    ) {
        Ok((page, _)) => format!(
            "\nPaged {} ({}): /ack page:{} once someone has it.",
            groups.join(", "),
            page.id,
            page.id
        ),
        Err(e) => format!("\nPAGING FAILED: {e}. Call the primary contacts yourself: /contacts."),
    }
}

/// `/page who: message:`.
pub fn page(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let config = engine.config();
    let who = crate::options::required(inv, "who")?.trim().to_string();
    let message = crate::options::required(inv, "message")?.to_string();
    if members(config, &who).is_empty() {
        let mut known: Vec<String> = config.contacts.keys().cloned().collect();
        let mut groups: Vec<String> = config
            .contacts
            .values()
            .flat_map(|c| c.groups.iter().cloned())
            .collect();
        groups.sort();
        groups.dedup();
        known.extend(groups);
        return Err(CommandError::Usage(if known.is_empty() {
            "No contacts are configured: add the runbook's Emergency Contacts as [contacts.<name>]."
                .to_string()
        } else {
            format!(
                "`{who}` is no contact or group. Page one of: {}.",
                known.join(", ")
            )
        }));
    }
    let incident = engine
        .select(ctx, inv, false)
        .ok()
        .filter(Incident::is_active);
    let (page, items) = send(
        engine,
        &ctx.actor.recorded(),
        incident.as_ref(),
        vec![who.clone()],
        &message,
        None,
        |text| engine.entry(ctx, EntryKind::Page, text),
    )?;
    let channels = channel_list(&items);
    let next = match (page.escalate_at, page.path.get(1)) {
        (Some(at), Some(group)) => format!(
            " Unacknowledged, it goes to {group} at {}.",
            render::time(at, engine.now())
        ),
        _ => String::new(),
    };
    Ok(Reply::done(format!(
        "{} sent to {who} ({}).{next} /ack page:{} stops it.",
        page.id,
        if channels.is_empty() {
            "no channel is configured: call them — /contacts".to_string()
        } else {
            channels
        },
        page.id
    )))
}

/// `/ack [page:]`: acknowledges a page (by default every open page of this channel's
/// incident, or the only open page).
pub fn ack(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let targets: Vec<PageId> = match inv.get("page") {
        Some(raw) => vec![raw.parse::<PageId>().map_err(CommandError::Usage)?],
        None => {
            let incident = engine.incident_for(ctx, Some(inv));
            let open = open_pages(engine, incident);
            let open = if open.is_empty() && incident.is_some() {
                Vec::new()
            } else if incident.is_none() {
                open_pages(engine, None)
            } else {
                open
            };
            match open.len() {
                0 => {
                    return Err(CommandError::Refused(
                        "No page is waiting for an acknowledgement here.".to_string(),
                    ));
                }
                1 => vec![open[0].id],
                _ if incident.is_some() => open.iter().map(|p| p.id).collect(),
                _ => {
                    let ids: Vec<String> = open.iter().map(|p| p.id.to_string()).collect();
                    return Err(CommandError::Usage(format!(
                        "Several pages are open: say which with page: ({}).",
                        ids.join(", ")
                    )));
                }
            }
        }
    };
    let mut lines = Vec::new();
    for id in targets {
        lines.push(ack_one(engine, ctx, id)?);
    }
    Ok(Reply::done(lines.join("\n")))
}

fn ack_one(engine: &Engine, ctx: &Context, id: PageId) -> Result<String, CommandError> {
    let now = engine.now();
    let who = ctx.actor.recorded();
    let Some(known) = engine.store().page(id)? else {
        return Err(CommandError::Usage(format!(
            "{id} does not exist. /contacts shows the open page, if any."
        )));
    };
    // Read before the transaction: sled holds a read of another tree inside one.
    let incident = known
        .incident
        .and_then(|i| engine.store().incident(i).ok().flatten());
    let (page, _) = engine
        .store()
        .write_page(Some(id), None, |_, stored, first| {
            let Some(mut page) = stored else {
                return Err(CommandError::Usage(format!("{id} does not exist.")));
            };
            match page.status {
                PageStatus::Open => {}
                PageStatus::Acknowledged => {
                    return Err(CommandError::Refused(format!(
                        "{id} was already acknowledged by {} at {}.",
                        page.acked_by.as_deref().unwrap_or("someone"),
                        page.acked_at
                            .map_or("?".to_string(), |t| render::time(t, now))
                    )));
                }
                PageStatus::Closed => {
                    return Err(CommandError::Refused(format!(
                        "{id} is closed: its incident was resolved."
                    )));
                }
            }
            page.status = PageStatus::Acknowledged;
            page.acked_by = Some(who.clone());
            page.acked_at = Some(now);
            page.escalate_at = None;
            let items =
                pagerduty_event(engine, &page, incident.as_ref(), "acknowledge", first, now);
            let e = engine.entry(
                ctx,
                EntryKind::Page,
                format!(
                    "{id} acknowledged by {} after {} ({} round{}).",
                    ctx.actor.display(),
                    render::duration(now - page.created_at),
                    page.rounds.len(),
                    if page.rounds.len() == 1 { "" } else { "s" }
                ),
            );
            Ok((page, items, vec![e]))
        })?;
    Ok(format!(
        "{} acknowledged by {} after {}: it escalates no further.",
        page.id,
        ctx.actor.name,
        render::duration(now - page.created_at)
    ))
}

/// Closes the pages of a resolved incident (PagerDuty's alert resolved too).
pub fn on_resolve(engine: &Engine, ctx: &Context, incident: &Incident) {
    let now = engine.now();
    for p in engine.store().pages().unwrap_or_default() {
        if p.incident != Some(incident.id) || p.status == PageStatus::Closed {
            continue;
        }
        let written = engine
            .store()
            .write_page(Some(p.id), None, |id, stored, first| {
                let Some(mut page) = stored else {
                    return Err(CommandError::Usage(format!("{id} does not exist.")));
                };
                if page.status == PageStatus::Closed {
                    return Ok((page, Vec::new(), Vec::new()));
                }
                let was_open = page.status == PageStatus::Open;
                page.status = PageStatus::Closed;
                page.escalate_at = None;
                let items = pagerduty_event(engine, &page, Some(incident), "resolve", first, now);
                let e = engine.entry(
                    ctx,
                    EntryKind::Page,
                    if was_open {
                        format!("{id} closed unacknowledged: the incident is resolved.")
                    } else {
                        format!("{id} closed: the incident is resolved.")
                    },
                );
                Ok::<_, CommandError>((page, items, vec![e]))
            });
        if let Err(e) = written {
            tracing::error!(page = %p.id, error = %e, "could not close a page");
        }
    }
}

/// Escalates every open page whose time is up to the next group of its path, and pages
/// incidents declared at a paged severity that have no page yet (a kill between the declare
/// and its page). Each escalation is one transaction: run twice, it escalates once.
pub fn escalate_due(engine: &Engine) -> Result<usize, CommandError> {
    let now = engine.now();
    let config = engine.config();
    let mut done = 0;
    if let Some(p) = &config.paging {
        for incident in engine.store().active_incidents()? {
            let once = format!("declare:{}", incident.id);
            if incident.status == drbot_state::IncidentStatus::Open
                && !p.groups_for(&incident.severity).is_empty()
                && engine.store().page_once(&once)?.is_none()
            {
                let ctx = Context {
                    actor: crate::identity::Actor::system(),
                    place: crate::context::Place::Local,
                };
                let line = on_declare(engine, &ctx, &incident);
                tracing::warn!(incident = %incident.id, "paged late (after a restart): {}", line.trim());
            }
        }
    }
    for page in engine.store().pages()? {
        if page.status != PageStatus::Open || page.escalate_at.is_none_or(|at| at > now) {
            continue;
        }
        let incident = page
            .incident
            .and_then(|i| engine.store().incident(i).ok().flatten());
        let delay = escalate_after(config);
        engine.store().write_page(Some(page.id), None, |id, stored, first| {
            let Some(mut page) = stored else {
                return Err(CommandError::Usage(format!("{id} does not exist.")));
            };
            // Decided on the page as stored: acknowledged or escalated meanwhile, nothing.
            if page.status != PageStatus::Open || page.escalate_at.is_none_or(|at| at > now) {
                return Ok((page, Vec::new(), Vec::new()));
            }
            let round = page.rounds.len();
            let Some(group) = page.path.get(round).cloned() else {
                page.escalate_at = None;
                let e = engine.system_entry(
                    EntryKind::Page,
                    &format!(
                        "{id} is at the top of its escalation path and still unacknowledged after {}: call them — /contacts.",
                        render::duration(now - page.created_at)
                    ),
                );
                return Ok((page, Vec::new(), vec![e]));
            };
            let contacts = members(config, &group);
            page.escalate_at = Some(now + delay);
            let next = page
                .path
                .get(round + 1)
                .map(|g| (g.as_str(), now + delay));
            let text = page_text(&page, incident.as_ref(), round, next, now);
            let items = deliveries(engine, &page, incident.as_ref(), &contacts, &text, None, first, now);
            page.rounds.push(PageRound {
                group: group.clone(),
                contacts: contacts.iter().map(|(k, _)| (*k).clone()).collect(),
                at: now,
                outbox: items.iter().map(|i| i.id).collect(),
            });
            let e = engine.system_entry(
                EntryKind::Page,
                &format!(
                    "{id} escalated to {group}: {} — nobody acknowledged it in {}.",
                    names(&contacts),
                    render::duration(now - page.created_at)
                ),
            );
            Ok::<_, CommandError>((page, items, vec![e]))
        })?;
        done += 1;
    }
    Ok(done)
}

/// The page whose Discord message this is (a ✅ on it acknowledges the page).
pub fn page_of_message(engine: &Engine, message: u64) -> Option<PageId> {
    let message = message.to_string();
    let item = engine
        .store()
        .outbox()
        .ok()?
        .into_iter()
        .find(|i| i.channel == "discord" && i.delivered_ref.as_deref() == Some(&message))?;
    engine
        .store()
        .pages()
        .ok()?
        .into_iter()
        .find(|p| p.rounds.iter().any(|r| r.outbox.contains(&item.id)))
        .map(|p| p.id)
}

/// The report's lines on an incident's pages: whom, when, escalations, and the time to
/// acknowledge.
pub fn report_lines(engine: &Engine, incident: &Incident) -> Vec<String> {
    let pages: Vec<Page> = engine
        .store()
        .pages()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.incident == Some(incident.id))
        .collect();
    pages
        .iter()
        .map(|p| {
            let rounds: Vec<String> = p
                .rounds
                .iter()
                .map(|r| format!("{} at {}", r.group, render::minute(r.at)))
                .collect();
            let ack = match (&p.acked_by, p.acked_at) {
                (Some(by), Some(at)) => format!(
                    "acknowledged by {by} — time to acknowledge {}",
                    render::duration(at - p.created_at)
                ),
                _ => "never acknowledged".to_string(),
            };
            format!("{}: paged {}; {ack}", p.id, rounds.join(", then "))
        })
        .collect()
}

/// Contacts nobody can reach by a page (no email, no Discord id), by key.
pub fn unreachable(config: &Config) -> Vec<String> {
    config
        .contacts
        .iter()
        .filter(|(_, c)| !c.reachable())
        .map(|(k, c)| match c.phone.as_deref() {
            Some(p) if !p.trim().is_empty() => format!("{k} (phone only: {p})"),
            _ => k.clone(),
        })
        .collect()
}
