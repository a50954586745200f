//! The Discord adapter on serenity: slash commands registered from the same table the console
//! parses, interactions acknowledged at once and answered by editing, approval requests as
//! messages with ✅/❌ reactions and buttons, and the background work's posts.
//!
//! Thin on purpose: what a command does is `drbot_commands::Engine`'s; this module turns
//! Discord's payloads into command lines and people, and replies back.

pub mod cards;
pub mod header;
pub mod registration;

use std::sync::Arc;
use std::time::Duration;

use drbot_commands::config::DiscordConfig;
use drbot_commands::identity::Principal;
use drbot_commands::progress::ProgressSink;
use drbot_commands::{Actor, Config, Context, Engine, Outcome, Place, Reply};
use drbot_state::{ApprovalStatus, Proof, RequestId};
use serenity::all::{
    ActionRowComponent, ChannelId, CommandDataOption, CommandDataOptionValue, CommandInteraction,
    ComponentInteraction, CreateActionRow, CreateAllowedMentions, CreateAttachment,
    CreateAutocompleteResponse, CreateInputText, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
    CreateModal, CreateThread, EditInteractionResponse, EditMessage, EventHandler, GatewayIntents,
    InputTextStyle, Interaction, MessageId, ModalInteraction, Reaction, ReactionType, Ready,
    RoleId, UserId,
};
use serenity::http::{Http, HttpBuilder};
use tokio::sync::watch;

/// Discord's limit on a message's content.
const MAX_CONTENT: usize = 2000;
/// At most one progress edit this often.
const EDIT_EVERY: Duration = Duration::from_secs(2);
/// The longest one call to Discord's HTTP API may take (an upload of a report included).
const DISCORD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const APPROVE_EMOJI: &str = "✅";
const DENY_EMOJI: &str = "❌";

/// Builds the HTTP client: `api_base` replaces `https://discord.com` (serenity only honours it
/// with its rate limiter off; Discord's 429s are then retried by the caller).
pub fn http(dc: &DiscordConfig, token: &str) -> Http {
    let mut b = HttpBuilder::new(token);
    // Connect and total timeouts: a Discord that accepts and never answers costs a bounded
    // wait per call, never a stuck handler.
    match drbot_commands::http::client(DISCORD_TIMEOUT) {
        Ok(c) => b = b.client(c),
        Err(e) => tracing::warn!("{e}; using serenity's default client"),
    }
    if dc.api_base.trim_end_matches('/') != "https://discord.com" {
        b = b
            .proxy(dc.api_base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    b.build()
}

/// A connected Discord client, not yet started, and its HTTP client for posts.
pub struct Discord {
    /// For the background work's posts.
    pub http: Arc<Http>,
    client: serenity::Client,
}

/// Builds the gateway client for the configured guild.
pub async fn connect(
    engine: Arc<Engine>,
    config: Arc<Config>,
    dc: DiscordConfig,
    token: &str,
) -> Result<Discord, String> {
    let handler = Handler {
        engine,
        config,
        dc: dc.clone(),
        me: std::sync::OnceLock::new(),
    };
    let intents = GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGE_REACTIONS;
    let client = serenity::all::ClientBuilder::new_with_http(http(&dc, token), intents)
        .event_handler(handler)
        .await
        .map_err(|e| format!("cannot start the Discord client: {e}"))?;
    Ok(Discord {
        http: client.http.clone(),
        client,
    })
}

impl Discord {
    /// Runs the gateway until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), String> {
        let manager = self.client.shard_manager.clone();
        tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            manager.shutdown_all().await;
        });
        self.client
            .start()
            .await
            .map_err(|e| format!("the Discord connection failed: {e}"))
    }
}

/// Sends a background post to its channel: `discord:<id>` places, else the incident channel.
/// `mention` pings one person (the commander, for a nudge); other posts ping nobody.
/// Who a background post calls on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mention {
    /// One person (the incident's commander, nudged).
    User(u64),
    /// A Discord role (the commanders, when a scheduled drill failed).
    Role(u64),
}

/// Posts background work's text in its channel (the incident channel when the place is not a
/// Discord channel), calling on `mention` alone when given.
pub async fn post(
    http: &Http,
    dc: &DiscordConfig,
    place: &str,
    text: &str,
    mention: Option<Mention>,
) {
    let channel = place
        .strip_prefix("discord:")
        .and_then(|id| id.parse::<u64>().ok())
        .unwrap_or(dc.incident_channel_id);
    let body = match mention {
        Some(Mention::User(user)) => CreateMessage::new()
            .content(fit(&format!("<@{user}> {text}")))
            .allowed_mentions(CreateAllowedMentions::new().users([UserId::new(user)])),
        Some(Mention::Role(role)) => CreateMessage::new()
            .content(fit(&format!("<@&{role}> {text}")))
            .allowed_mentions(
                CreateAllowedMentions::new()
                    .empty_users()
                    .roles([serenity::model::id::RoleId::new(role)]),
            ),
        None => CreateMessage::new()
            .content(fit(text))
            .allowed_mentions(no_mentions()),
    };
    if let Err(e) = ChannelId::new(channel).send_message(http, body).await {
        tracing::warn!(error = %e, channel, "could not post to Discord");
    }
}

/// Mentions nobody (a reply quoting `@everyone` or a name pings no one).
fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
        .empty_users()
        .empty_roles()
        .everyone(false)
}

/// The value typed into a modal's text input.
fn text_input(m: &ModalInteraction, id: &str) -> Option<String> {
    m.data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .find_map(|c| match c {
            ActionRowComponent::InputText(t) if t.custom_id == id => t.value.clone(),
            _ => None,
        })
}

/// A reply's text for one message: as it is when it fits, else its start with the whole text
/// attached as `reply.txt` (Discord refuses content over 2000 characters).
fn long_text(text: &str) -> (String, Option<CreateAttachment>) {
    if text.chars().count() <= MAX_CONTENT {
        return (text.to_string(), None);
    }
    let mut s: String = text.chars().take(MAX_CONTENT - 80).collect();
    s.push_str("\n… (the full text is attached: reply.txt)");
    (
        s,
        Some(CreateAttachment::bytes(
            text.as_bytes().to_vec(),
            "reply.txt",
        )),
    )
}

/// Text that fits one message; longer text is cut with a pointer to the full reply.
fn fit(text: &str) -> String {
    if text.chars().count() <= MAX_CONTENT {
        return text.to_string();
    }
    let mut s: String = text.chars().take(MAX_CONTENT - 80).collect();
    s.push_str("\n… (cut to fit Discord; the full text is in the console: drbot exec)");
    s
}

struct Handler {
    engine: Arc<Engine>,
    config: Arc<Config>,
    dc: DiscordConfig,
    /// The bot's own user, to ignore its own reactions.
    me: std::sync::OnceLock<UserId>,
}

/// The person behind a Discord user: the `[people]` entry with their id (its roles), plus
/// the roles their Discord roles grant.
pub fn actor_for(
    config: &Config,
    dc: &DiscordConfig,
    user: UserId,
    name: &str,
    roles: &[RoleId],
) -> Actor {
    let person = config
        .people
        .iter()
        .find(|(_, p)| p.discord_id == Some(user.get()));
    let mut granted: std::collections::BTreeSet<String> = person
        .map(|(_, p)| p.roles.iter().cloned().collect())
        .unwrap_or_default();
    if dc
        .commander_role_id
        .is_some_and(|r| roles.contains(&RoleId::new(r)))
    {
        granted.insert("commander".to_string());
    }
    if dc
        .approver_role_id
        .is_some_and(|r| roles.contains(&RoleId::new(r)))
    {
        granted.insert("approver".to_string());
    }
    // Who they are is the mapped person, else their Discord id; the name is only shown, so a
    // member whose username is a configured person's name is not that person.
    Actor {
        id: person.map_or_else(
            || Principal::discord(user.get()),
            |(n, _)| Principal::person(n),
        ),
        name: person.map_or_else(|| name.to_string(), |(n, _)| n.clone()),
        roles: granted,
        proof: Proof::Proven,
    }
}

/// How long drbot uses an interaction's token: Discord's live 15 minutes.
const TOKEN_LIFE: Duration = Duration::from_secs(14 * 60);

/// Discord refused an interaction token as expired (or unknown): 401, or `50027 Invalid
/// Webhook Token`.
fn token_dead(e: &serenity::Error) -> bool {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            r.status_code.as_u16() == 401 || r.error.code == 50027
        }
        _ => false,
    }
}

/// Where a command's reply goes: its interaction while the token lives; past its life, or the
/// first time Discord refuses it, an ordinary message in the channel through the bot token,
/// posted once and edited from then on. Nothing is sent with a dead token again. Work that has
/// no interaction (an approved action) reports in the channel from the start.
struct Reporter<'a> {
    http: &'a Http,
    cmd: Option<&'a CommandInteraction>,
    channel: ChannelId,
    born: std::time::Instant,
    dead: bool,
    message: Option<MessageId>,
}

/// Of a message's 6000 embed characters, what a progress card may take beside a summary card.
const PROGRESS_BUDGET: usize = 1500;

impl<'a> Reporter<'a> {
    fn new(http: &'a Http, cmd: &'a CommandInteraction, channel: ChannelId) -> Reporter<'a> {
        Reporter {
            http,
            cmd: Some(cmd),
            channel,
            born: std::time::Instant::now(),
            dead: false,
            message: None,
        }
    }

    /// Reports in `channel` through the bot token only.
    fn in_channel(http: &'a Http, channel: ChannelId) -> Reporter<'a> {
        Reporter {
            http,
            cmd: None,
            channel,
            born: std::time::Instant::now(),
            dead: true,
            message: None,
        }
    }

    /// Shows this content, these embeds and files as the reply, wherever it lives now.
    async fn show(
        &mut self,
        content: String,
        embeds: Vec<serenity::all::CreateEmbed>,
        files: Vec<CreateAttachment>,
    ) {
        if let Some(cmd) = self.cmd
            && !self.dead
            && self.born.elapsed() < TOKEN_LIFE
        {
            let mut body = EditInteractionResponse::new()
                .content(content.clone())
                .allowed_mentions(no_mentions())
                .embeds(embeds.clone());
            for f in &files {
                body = body.new_attachment(f.clone());
            }
            match cmd.edit_response(self.http, body).await {
                Ok(_) => return,
                Err(e) if token_dead(&e) => {
                    tracing::info!(
                        "the interaction's token expired; the reply goes on in the channel"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not edit the interaction reply");
                    return;
                }
            }
        }
        self.dead = true;
        let sent = match self.message {
            None => {
                let msg = CreateMessage::new()
                    .content(content)
                    .allowed_mentions(no_mentions())
                    .embeds(embeds)
                    .add_files(files);
                self.channel
                    .send_message(self.http, msg)
                    .await
                    .map(|m| self.message = Some(m.id))
            }
            Some(id) => {
                let mut msg = EditMessage::new()
                    .content(content)
                    .allowed_mentions(no_mentions())
                    .embeds(embeds);
                for f in files {
                    msg = msg.new_attachment(f);
                }
                self.channel
                    .edit_message(self.http, id, msg)
                    .await
                    .map(|_| ())
            }
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not post the reply in the channel");
        }
    }

    /// Shows the newest progress: a card for long work, else its line.
    async fn progress(&mut self, s: &Shown) {
        match &s.title {
            Some(title) => {
                let card = cards::progress_card(
                    title,
                    &s.line,
                    s.fraction,
                    &s.facts,
                    None,
                    cards::MESSAGE_EMBEDS,
                );
                self.show(String::new(), vec![card], Vec::new()).await
            }
            None => self.show(fit(&s.line), Vec::new(), Vec::new()).await,
        }
    }

    /// Shows the result: its text (the whole attached when long), its summary card, the last
    /// progress card in the result's colour, its files.
    async fn finish(&mut self, reply: &Reply, last: Option<Shown>) {
        let (content, whole) = long_text(&reply.text);
        let mut files: Vec<CreateAttachment> = whole.into_iter().collect();
        let mut embeds = Vec::new();
        let progress_budget = if last.is_some() { PROGRESS_BUDGET } else { 0 };
        if let Some(card) = &reply.card {
            embeds.push(cards::summary_card(
                card,
                cards::MESSAGE_EMBEDS - progress_budget,
            ));
        }
        // Long work ends its card in the result's colour.
        if let Some(last) = last {
            let budget = if reply.card.is_some() {
                PROGRESS_BUDGET
            } else {
                cards::MESSAGE_EMBEDS
            };
            embeds.push(cards::progress_card(
                last.title.as_deref().unwrap_or_default(),
                &last.line,
                last.fraction,
                &last.facts,
                Some(reply.outcome == Outcome::Done),
                budget,
            ));
        }
        // Reports and long timelines go as files.
        for a in &reply.attachments {
            files.push(CreateAttachment::bytes(a.bytes(), a.name.clone()));
        }
        self.show(content, embeds, files).await;
    }
}

/// The command line for an interaction: `/group sub name:"value" …`.
pub fn line_from(config: &Config, name: &str, options: &[CommandDataOption]) -> String {
    let mut line = format!("/{name}");
    let mut opts = options;
    if let [first] = options
        && let CommandDataOptionValue::SubCommand(inner) = &first.value
    {
        line.push(' ');
        line.push_str(&first.name);
        opts = inner;
    }
    for o in opts {
        let value = match &o.value {
            CommandDataOptionValue::String(s) => s.clone(),
            CommandDataOptionValue::Integer(i) => i.to_string(),
            CommandDataOptionValue::Number(n) => n.to_string(),
            CommandDataOptionValue::Boolean(b) => b.to_string(),
            CommandDataOptionValue::Autocomplete { value, .. } => value.clone(),
            CommandDataOptionValue::User(u) => config
                .people
                .iter()
                .find(|(_, p)| p.discord_id == Some(u.get()))
                .map_or_else(|| format!("<@{u}>"), |(n, _)| n.clone()),
            _ => continue,
        };
        line.push_str(&format!(
            " {}:{}",
            o.name,
            drbot_commands::grammar::quoted(&value)
        ));
    }
    line
}

impl Handler {
    /// Who acts (the Discord user, their roles mapped) and where (the channel or thread).
    fn context_of(
        &self,
        user: &serenity::all::User,
        member: Option<&serenity::all::Member>,
        channel: ChannelId,
    ) -> Context {
        let roles = member.map(|m| m.roles.clone()).unwrap_or_default();
        Context {
            actor: actor_for(&self.config, &self.dc, user.id, &user.name, &roles),
            place: Place::Channel(channel.get()),
        }
    }

    /// Is this interaction in the guild and the incident channel (or a thread under it)?
    fn allowed(
        &self,
        guild: Option<serenity::all::GuildId>,
        channel: ChannelId,
        parent: Option<ChannelId>,
    ) -> Result<(), String> {
        if guild.map(|g| g.get()) != Some(self.dc.guild_id) {
            return Err("drbot only takes commands in its own server.".to_string());
        }
        let incident = ChannelId::new(self.dc.incident_channel_id);
        if channel != incident && parent != Some(incident) {
            return Err(format!(
                "drbot takes commands in <#{}> and threads under it.",
                self.dc.incident_channel_id
            ));
        }
        Ok(())
    }

    async fn command(&self, http: &Http, cmd: CommandInteraction) {
        let parent = cmd.channel.as_ref().and_then(|c| c.parent_id);
        if let Err(why) = self.allowed(cmd.guild_id, cmd.channel_id, parent) {
            // Outside any incident: the refusal goes to the audit log.
            let entry = drbot_state::NewEntry {
                at: self.engine.now(),
                actor: cmd.user.name.clone(),
                proof: Proof::Proven,
                kind: drbot_state::EntryKind::Refused,
                text: format!("/{} in channel {} — {why}", cmd.data.name, cmd.channel_id),
            };
            if let Err(e) = self.engine.store().append_audit(entry) {
                tracing::warn!(error = %e, "could not record a refusal");
            }
            let body = CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content(fit(&why))
                    .ephemeral(true),
            );
            let _ = cmd.create_response(http, body).await;
            return;
        }
        // Acknowledge within Discord's 3 seconds, before any work.
        let defer = CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new());
        if let Err(e) = cmd.create_response(http, defer).await {
            tracing::warn!(error = %e, "could not acknowledge an interaction");
            return;
        }
        let roles = cmd
            .member
            .as_ref()
            .map(|m| m.roles.clone())
            .unwrap_or_default();
        let actor = actor_for(&self.config, &self.dc, cmd.user.id, &cmd.user.name, &roles);
        let line = line_from(&self.config, &cmd.data.name, &cmd.data.options);
        // With thread_per_incident, a declare in the incident channel opens the incident's
        // thread first and is run there.
        let mut place = cmd.channel_id;
        if self.dc.thread_per_incident && parent.is_none() && line.starts_with("/incident declare ")
        {
            let title = cmd
                .data
                .options
                .first()
                .and_then(|o| match &o.value {
                    CommandDataOptionValue::SubCommand(opts) => opts
                        .iter()
                        .find(|x| x.name == "title")
                        .and_then(|x| x.value.as_str().map(str::to_string)),
                    _ => None,
                })
                .unwrap_or_else(|| "incident".to_string());
            let thread = CreateThread::new(drbot_commands::render::truncate(
                &format!("incident: {title}"),
                100,
            ))
            .kind(serenity::all::ChannelType::PublicThread);
            match cmd.channel_id.create_thread(http, thread).await {
                Ok(t) => place = t.id,
                Err(e) => {
                    tracing::warn!(error = %e, "could not open the incident's thread; declaring here")
                }
            }
        }
        let ctx = Context {
            actor,
            place: Place::Channel(place.get()),
        };
        let editor = Editor::new();
        let mut out = Reporter::new(http, &cmd, cmd.channel_id);
        // A request whose preflight runs is posted at once, and its card shows the preflight.
        let mut posted: Option<RequestId> = None;
        let reply = {
            let run = self.engine.run_with(&ctx, &line, &editor);
            tokio::pin!(run);
            let mut tick = tokio::time::interval(EDIT_EVERY);
            loop {
                tokio::select! {
                    r = &mut run => break r,
                    _ = tick.tick() => {
                        if posted.is_none()
                            && let Some(rid) = editor.requested()
                        {
                            self.post_request(http, cmd.channel_id, rid).await;
                            posted = Some(rid);
                        }
                        if let Some(shown) = editor.take() {
                            out.progress(&shown).await;
                            if let Some(rid) = posted {
                                self.redraw_running(http, cmd.channel_id, rid, &shown.line).await;
                            }
                        }
                    }
                }
            }
        };
        let mut reply = reply;
        if place != cmd.channel_id && reply.outcome == Outcome::Done {
            reply.text = format!("{}\nIt is run in its thread: <#{place}>.", reply.text);
        }
        if matches!(reply.outcome, Outcome::Refused | Outcome::Usage) {
            // Refusals are for the person who typed the command only (and on the timeline).
            let _ = cmd.delete_response(http).await;
            let body = CreateInteractionResponseFollowup::new()
                .content(fit(&reply.text))
                .ephemeral(true);
            if let Err(e) = cmd.create_followup(http, body).await {
                tracing::warn!(error = %e, "could not send a refusal");
            }
            return;
        }
        out.finish(&reply, editor.last_card()).await;
        match (&reply.outcome, posted) {
            // Its card is there already: it shows how the preflight ended.
            (_, Some(rid)) => self.refresh_card(http, cmd.channel_id, rid).await,
            (Outcome::AwaitingApproval(id), None) => {
                if let Ok(rid) = id.parse::<RequestId>() {
                    self.post_request(http, cmd.channel_id, rid).await;
                }
            }
            _ => {}
        }
    }

    /// Redraws the card of a request whose preflight runs, with the preflight's newest line.
    async fn redraw_running(&self, http: &Http, channel: ChannelId, rid: RequestId, line: &str) {
        let Ok(Some(request)) = self.engine.store().approval(rid) else {
            return;
        };
        let Some(message) = request.message_id else {
            return;
        };
        let extra = if request.preflight == drbot_state::PreflightState::Running {
            line
        } else {
            ""
        };
        cards::redraw_with(http, &self.engine, channel, &request, message, extra).await;
    }

    /// Posts an approval request as a card (an embed with Approve / Deny buttons) with ✅/❌
    /// reactions, and remembers its message.
    async fn post_request(&self, http: &Http, channel: ChannelId, rid: RequestId) {
        let Ok(Some(request)) = self.engine.store().approval(rid) else {
            return;
        };
        let (embed, rows) = cards::approval_card(&request, "");
        let body = CreateMessage::new()
            .content(format!(
                "An approver clicks Approve or Deny, or reacts {APPROVE_EMOJI} or {DENY_EMOJI}."
            ))
            .embed(embed)
            .components(rows)
            .allowed_mentions(no_mentions());
        let message = match channel.send_message(http, body).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "could not post the approval request");
                return;
            }
        };
        let _ = self.engine.store().update_approval(rid, |r| {
            r.message_id = Some(message.id.get());
            Ok::<_, drbot_state::StateError>(Vec::new())
        });
        let _ = self
            .engine
            .store()
            .set_note(&cards::note_name(rid), &cards::drawn(&request));
        for emoji in [APPROVE_EMOJI, DENY_EMOJI] {
            let _ = http
                .create_reaction(
                    channel,
                    message.id,
                    &ReactionType::Unicode(emoji.to_string()),
                )
                .await;
        }
    }

    /// Redraws a request's card in its current state (colour, decision, buttons disabled once
    /// decided).
    async fn refresh_card(&self, http: &Http, channel: ChannelId, rid: RequestId) {
        let Ok(Some(request)) = self.engine.store().approval(rid) else {
            return;
        };
        let Some(message) = request.message_id else {
            return;
        };
        cards::redraw(http, &self.engine, channel, &request, message).await;
    }

    /// Runs an approval decision and posts its result; long work (the approved restore)
    /// shows its progress in that message first, edited at most every two seconds.
    async fn decide(
        &self,
        http: &Http,
        ctx: Context,
        channel: ChannelId,
        rid: RequestId,
        line: String,
    ) -> Reply {
        let editor = Editor::new();
        let mut out = Reporter::in_channel(http, channel);
        let reply = {
            let run = self.engine.run_with(&ctx, &line, &editor);
            tokio::pin!(run);
            let mut tick = tokio::time::interval(EDIT_EVERY);
            tick.tick().await; // the first tick is immediate: quick decisions post once
            loop {
                tokio::select! {
                    r = &mut run => break r,
                    _ = tick.tick() => {
                        let Some(shown) = editor.take() else { continue };
                        out.progress(&shown).await;
                        // The card shows the action running.
                        self.refresh_card(http, channel, rid).await;
                    }
                }
            }
        };
        out.finish(&reply, editor.last_card()).await;
        self.refresh_card(http, channel, rid).await;
        reply
    }

    async fn reaction(&self, http: &Http, r: Reaction) {
        let ReactionType::Unicode(emoji) = &r.emoji else {
            return;
        };
        let approve = emoji == APPROVE_EMOJI;
        if !approve && emoji != DENY_EMOJI {
            return; // any other reaction is ignored
        }
        let Some(user) = r.user_id else { return };
        if self.me.get() == Some(&user) {
            return; // our own ✅/❌ under the request
        }
        let Some(request) = self.request_for(r.message_id) else {
            // ✅ on a page's message acknowledges the page.
            if approve
                && let Some(page) =
                    drbot_commands::paging::page_of_message(&self.engine, r.message_id.get())
            {
                let ctx = self.reaction_context(&r, user);
                let reply = self.engine.run(&ctx, &format!("/ack page:{page}")).await;
                let body = CreateMessage::new()
                    .content(fit(&reply.text))
                    .allowed_mentions(no_mentions());
                if let Err(e) = r.channel_id.send_message(http, body).await {
                    tracing::warn!(error = %e, "could not answer an acknowledgement");
                }
            }
            return;
        };
        if request.1 != ApprovalStatus::Pending {
            return;
        }
        let ctx = self.reaction_context(&r, user);
        let line = if approve {
            format!("/approve request:{}", request.0)
        } else {
            format!(
                "/deny request:{} reason:\"denied with {DENY_EMOJI}\"",
                request.0
            )
        };
        self.decide(http, ctx, r.channel_id, request.0, line).await;
    }

    /// Who reacted, where.
    fn reaction_context(&self, r: &Reaction, user: UserId) -> Context {
        let roles = r
            .member
            .as_ref()
            .map(|m| m.roles.clone())
            .unwrap_or_default();
        let name = r
            .member
            .as_ref()
            .map_or_else(|| user.to_string(), |m| m.user.name.clone());
        Context {
            actor: actor_for(&self.config, &self.dc, user, &name, &roles),
            place: Place::Channel(r.channel_id.get()),
        }
    }

    fn request_for(&self, message: MessageId) -> Option<(RequestId, ApprovalStatus)> {
        self.engine
            .store()
            .approvals()
            .ok()?
            .into_iter()
            .find(|r| r.message_id == Some(message.get()))
            .map(|r| (r.id, r.status))
    }

    async fn button(&self, http: &Http, c: ComponentInteraction) {
        let Some(rest) = c.data.custom_id.strip_prefix("drbot:") else {
            return;
        };
        let Some((verb, id)) = rest.split_once(':') else {
            return;
        };
        let ctx = self.context_of(&c.user, c.member.as_ref(), c.channel_id);
        if verb == "update" {
            // Post update: a modal for the stakeholder message, answered in `modal`.
            let modal = CreateModal::new(format!("drbot:update:{id}"), format!("Update on {id}"))
                .components(vec![CreateActionRow::InputText(
                    CreateInputText::new(
                        InputTextStyle::Paragraph,
                        "The message for stakeholders",
                        "message",
                    )
                    .max_length(1500),
                )]);
            if let Err(e) = c
                .create_response(http, CreateInteractionResponse::Modal(modal))
                .await
            {
                tracing::warn!(error = %e, "could not open the update modal");
            }
            return;
        }
        // The incident header's buttons: answered to the person who clicked.
        let header_line = match verb {
            "stepdone" => id
                .split_once(':')
                .filter(|(_, step)| *step != "-")
                .map(|(incident, step)| format!("/step done step:{step} incident:{incident}")),
            "status" => Some(format!("/incident status incident:{id}")),
            _ => None,
        };
        if let Some(line) = header_line {
            let defer = CreateInteractionResponse::Defer(
                CreateInteractionResponseMessage::new().ephemeral(true),
            );
            if c.create_response(http, defer).await.is_err() {
                return;
            }
            let reply = self.engine.run(&ctx, &line).await;
            let _ = c
                .edit_response(
                    http,
                    EditInteractionResponse::new()
                        .content(fit(&reply.text))
                        .allowed_mentions(no_mentions()),
                )
                .await;
            return;
        }
        let Ok(rid) = id.parse::<RequestId>() else {
            return;
        };
        if verb == "deny" {
            // Deny asks why first: a modal, answered in `deny_with_reason`.
            let modal = CreateModal::new(format!("drbot:denyreason:{rid}"), format!("Deny {rid}"))
                .components(vec![CreateActionRow::InputText(
                    CreateInputText::new(InputTextStyle::Paragraph, "Why is it denied?", "reason")
                        .max_length(400),
                )]);
            if let Err(e) = c
                .create_response(http, CreateInteractionResponse::Modal(modal))
                .await
            {
                tracing::warn!(error = %e, "could not open the deny modal");
            }
            return;
        }
        let _ = c
            .create_response(http, CreateInteractionResponse::Acknowledge)
            .await;
        let line = match verb {
            "approve" => format!("/approve request:{id}"),
            _ => return,
        };
        self.decide(http, ctx, c.channel_id, rid, line).await;
    }

    /// A modal's answer: a stakeholder update from the header, or a deny with its reason.
    async fn modal(&self, http: &Http, m: ModalInteraction) {
        let Some(incident) = m.data.custom_id.strip_prefix("drbot:update:") else {
            return self.deny_with_reason(http, m).await;
        };
        let message = text_input(&m, "message").unwrap_or_default();
        let defer = CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new().ephemeral(true),
        );
        if m.create_response(http, defer).await.is_err() {
            return;
        }
        let ctx = self.context_of(&m.user, m.member.as_ref(), m.channel_id);
        let line = format!(
            "/notify stakeholders message:{} incident:{incident}",
            drbot_commands::grammar::quoted(&message)
        );
        let reply = self.engine.run(&ctx, &line).await;
        let _ = m
            .edit_response(
                http,
                EditInteractionResponse::new()
                    .content(fit(&reply.text))
                    .allowed_mentions(no_mentions()),
            )
            .await;
    }

    /// The deny modal's answer: the request denied with the reason typed.
    async fn deny_with_reason(&self, http: &Http, m: ModalInteraction) {
        let Some(rid) = m
            .data
            .custom_id
            .strip_prefix("drbot:denyreason:")
            .and_then(|id| id.parse::<RequestId>().ok())
        else {
            return;
        };
        let reason = text_input(&m, "reason")
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "denied with the button".to_string());
        let _ = m
            .create_response(http, CreateInteractionResponse::Acknowledge)
            .await;
        let ctx = self.context_of(&m.user, m.member.as_ref(), m.channel_id);
        let line = format!(
            "/deny request:{rid} reason:{}",
            drbot_commands::grammar::quoted(&reason)
        );
        self.decide(http, ctx, m.channel_id, rid, line).await;
    }

    async fn autocomplete(&self, http: &Http, cmd: CommandInteraction) {
        let ctx = Context {
            actor: Actor::system(),
            place: Place::Channel(cmd.channel_id.get()),
        };
        let focused = cmd.data.autocomplete();
        let (name, typed) = focused.map_or(("", ""), |f| (f.name, f.value));
        let mut choices = CreateAutocompleteResponse::new();
        for c in self.engine.complete(&ctx, name, typed).await {
            choices = choices.add_string_choice(c.name, c.value);
        }
        let _ = cmd
            .create_response(http, CreateInteractionResponse::Autocomplete(choices))
            .await;
    }
}

/// The newest progress: its line, and for long work its title and how far along it is.
#[derive(Clone, Debug, Default)]
struct Shown {
    line: String,
    title: Option<String>,
    fraction: Option<f64>,
    facts: Vec<(String, String)>,
}

/// What an [`Editor`] holds: the progress not shown yet, and the last card shown.
#[derive(Default)]
struct Edits {
    pending: Option<Shown>,
    card: Option<Shown>,
    /// An approval request the command stored while it goes on (its preflight runs).
    requested: Option<String>,
}

/// Keeps the newest progress until the next edit, and the last card drawn (for the result).
struct Editor(Arc<std::sync::Mutex<Edits>>);

impl Editor {
    fn new() -> Editor {
        Editor(Arc::new(std::sync::Mutex::new(Edits::default())))
    }

    /// The progress to show now, if any came since the last time.
    fn take(&self) -> Option<Shown> {
        self.0.lock().ok().and_then(|mut g| {
            let s = g.pending.take();
            if let Some(s) = &s
                && s.title.is_some()
            {
                g.card = Some(s.clone());
            }
            s
        })
    }

    /// The approval request the command stored while it goes on, if any.
    fn requested(&self) -> Option<RequestId> {
        self.0
            .lock()
            .ok()
            .and_then(|g| g.requested.as_deref().and_then(|id| id.parse().ok()))
    }

    /// The last progress card shown, if the work showed one.
    fn last_card(&self) -> Option<Shown> {
        self.0.lock().ok().and_then(|g| g.card.clone())
    }
}

impl ProgressSink for Editor {
    fn update(&self, line: &str) {
        if let Ok(mut g) = self.0.lock() {
            // Work that shows a card keeps it: the line changes, what is still to come goes.
            let card = g
                .pending
                .as_ref()
                .filter(|s| s.title.is_some())
                .or(g.card.as_ref())
                .cloned();
            g.pending = Some(match card {
                Some(mut c) => {
                    c.line = line.to_string();
                    c.facts.retain(|(n, _)| n != "ETA" && n != "Step ETA");
                    c
                }
                None => Shown {
                    line: line.to_string(),
                    ..Shown::default()
                },
            });
        }
    }

    fn requested(&self, id: &str, text: &str) {
        if let Ok(mut g) = self.0.lock() {
            g.requested = Some(id.to_string());
        }
        self.update(text);
    }

    fn progress(&self, p: &drbot_commands::progress::Progress<'_>) {
        if let Ok(mut g) = self.0.lock() {
            g.pending = Some(Shown {
                line: p.line.to_string(),
                title: Some(p.title.to_string()),
                fraction: p.fraction,
                facts: p.facts.clone(),
            });
        }
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: serenity::all::Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, "connected to Discord");
        let _ = self.me.set(ready.user.id);
        let guild = serenity::all::GuildId::new(self.dc.guild_id);
        match ctx
            .http
            .create_guild_commands(guild, &registration::commands())
            .await
        {
            Ok(list) => tracing::info!(count = list.len(), "slash commands registered"),
            Err(e) => tracing::error!(error = %e, "registering slash commands failed"),
        }
    }

    async fn interaction_create(&self, ctx: serenity::all::Context, interaction: Interaction) {
        match interaction {
            Interaction::Command(cmd) => self.command(&ctx.http, cmd).await,
            Interaction::Autocomplete(cmd) => self.autocomplete(&ctx.http, cmd).await,
            Interaction::Component(c) => self.button(&ctx.http, c).await,
            Interaction::Modal(m) => self.modal(&ctx.http, m).await,
            _ => {}
        }
    }

    async fn reaction_add(&self, ctx: serenity::all::Context, reaction: Reaction) {
        if reaction.guild_id.map(|g| g.get()) == Some(self.dc.guild_id) {
            self.reaction(&ctx.http, reaction).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> (Config, DiscordConfig) {
        let c = Config::from_toml(
            "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
             [discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 4\ncommander_role_id = 5\n",
            std::path::Path::new("t.toml"),
        )
        .expect("test setup");
        let dc = c.discord.clone().expect("test setup");
        (c, dc)
    }

    #[test]
    fn people_and_roles_come_from_discord_and_the_config() {
        let (c, dc) = config();
        let a = actor_for(&c, &dc, UserId::new(11), "alice_dc", &[]);
        assert_eq!(a.name, "alice");
        assert!(a.has_role("commander") && !a.has_role("approver"));
        let b = actor_for(&c, &dc, UserId::new(22), "bobby", &[RoleId::new(4)]);
        assert_eq!(b.name, "bobby");
        assert!(b.has_role("approver") && !b.has_role("commander"));
        let nobody = actor_for(&c, &dc, UserId::new(33), "x", &[RoleId::new(99)]);
        assert!(nobody.roles.is_empty());
        // Who they are is the mapping by id, never the name they chose.
        assert_eq!(a.id, Principal::person("alice"));
        assert_eq!(b.id, Principal::discord(22));
        let named_alice = actor_for(&c, &dc, UserId::new(44), "alice", &[]);
        assert_eq!(named_alice.id, Principal::discord(44));
        assert!(named_alice.roles.is_empty());
    }

    #[test]
    fn any_text_a_person_types_in_discord_reaches_the_command_unchanged() {
        let (c, _) = config();
        let hostile = [
            "",
            "\\",
            "ends with a backslash \\",
            "\"",
            "“curly” and ‘single’ and «guillemets» and „low“",
            "” closing first",
            "x\" incident:INC-9 title:\"injected",
            "line one\nline two\r\n\ttabbed",
            "title:not-an-option",
            "\u{0}nul and \u{202e}bidi",
            "🙂 emoji and 漢字",
        ];
        for text in hostile {
            let opts: Vec<CommandDataOption> = serde_json::from_value(json!([
                { "name": "note", "type": 1, "options": [
                    { "name": "text", "type": 3, "value": text }
                ]}
            ]))
            .expect("test setup");
            let line = line_from(&c, "incident", &opts);
            match drbot_commands::commands().parse(&line) {
                Ok(parsed) => {
                    assert_eq!(parsed.get("text"), Some(text), "{line}");
                    assert_eq!(parsed.get("incident"), None, "{line}");
                }
                // Refused as a whole, never read as something else.
                Err(e) => assert!(text.trim().is_empty(), "{text:?} → {line}: {e}"),
            }
        }
    }

    /// Any text, with newlines, quotes of every kind, backslashes and any Unicode.
    fn any_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop::collection::vec(
            prop_oneof![
                Just("\"".to_string()),
                Just("“".to_string()),
                Just("”".to_string()),
                Just("\\".to_string()),
                Just("  ".to_string()),
                Just("\r\n".to_string()),
                Just("\t".to_string()),
                Just("title:".to_string()),
                Just("incident:INC-9".to_string()),
                "\\PC{1,4}",
                "[ăâîșț🔥数据库]{1,3}",
            ],
            1..20,
        )
        .prop_map(|parts| parts.concat())
        .prop_filter("some text", |s| !s.trim().is_empty())
    }

    /// Through the Discord adapter and through the console grammar, a note reaches the
    /// timeline byte for byte.
    #[test]
    fn any_note_reaches_the_timeline_unchanged_from_discord_and_the_console() {
        use drbot_commands::ManualClock;
        use proptest::test_runner::{Config as RunConfig, TestCaseError, TestRunner};
        let (c, _) = config();
        let dir = tempfile::tempdir().expect("test setup");
        let store = drbot_state::Store::open(dir.path()).expect("test setup");
        let clock = std::sync::Arc::new(ManualClock::new(chrono::Utc::now()));
        let engine = Engine::new(std::sync::Arc::new(c.clone()), store, clock);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("test setup");
        let alice = Context {
            actor: Actor {
                id: Principal::person("alice"),
                name: "alice".to_string(),
                roles: ["commander".to_string()].into(),
                proof: Proof::Proven,
            },
            place: Place::Channel(2),
        };
        let declared = rt.block_on(engine.run(
            &alice,
            "/incident declare scenario:database severity:sev1 title:notes",
        ));
        assert_eq!(
            declared.outcome,
            drbot_commands::Outcome::Done,
            "{}",
            declared.text
        );
        let last_note = || {
            engine
                .store()
                .timeline(drbot_state::IncidentId(1))
                .expect("test setup")
                .into_iter()
                .rev()
                .find(|e| e.kind == drbot_state::EntryKind::Note)
                .map(|e| e.text)
        };
        let mut runner = TestRunner::new(RunConfig::with_cases(200));
        runner
            .run(&any_text(), |text| {
                // Only a pasted credential is changed on its way in (redaction has its own tests).
                if engine.secrets().redact(&text) != text {
                    return Ok(());
                }
                let opts: Vec<CommandDataOption> = serde_json::from_value(json!([
                    { "name": "note", "type": 1, "options": [
                        { "name": "text", "type": 3, "value": text }
                    ]}
                ]))
                .expect("test setup");
                let from_discord = line_from(&c, "incident", &opts);
                let typed = format!("/incident note text:{}", text.trim_start());
                let mut lines = vec![(from_discord, text.as_str())];
                // Typed text that opens with a quote is a quoted value (the grammar's tests).
                if !text.trim_start().starts_with(['"', '“', '”']) {
                    lines.push((typed, text.trim_start()));
                }
                for (line, want) in lines {
                    let r = rt.block_on(engine.run(&alice, &line));
                    if r.outcome != drbot_commands::Outcome::Done {
                        return Err(TestCaseError::fail(format!("{line:?}: {}", r.text)));
                    }
                    let kept = last_note();
                    proptest::prop_assert_eq!(kept.as_deref(), Some(want), "{:?}", line);
                }
                Ok(())
            })
            .expect("every note kept byte for byte");
    }

    #[test]
    fn interactions_become_the_same_lines_the_console_parses() {
        let (c, _) = config();
        let opts: Vec<CommandDataOption> = serde_json::from_value(json!([
            { "name": "declare", "type": 1, "options": [
                { "name": "scenario", "type": 3, "value": "database" },
                { "name": "severity", "type": 3, "value": "sev1" },
                { "name": "title", "type": 3, "value": "DB \"down\" now" }
            ]}
        ]))
        .expect("test setup");
        let line = line_from(&c, "incident", &opts);
        assert_eq!(
            line,
            r#"/incident declare scenario:"database" severity:"sev1" title:"DB \"down\" now""#
        );
        let parsed = drbot_commands::commands().parse(&line).expect("test setup");
        assert_eq!(parsed.get("title"), Some(r#"DB "down" now"#));
        let opts: Vec<CommandDataOption> = serde_json::from_value(json!([
            { "name": "role", "type": 1, "options": [
                { "name": "role", "type": 3, "value": "comms" },
                { "name": "user", "type": 6, "value": "11" }
            ]}
        ]))
        .expect("test setup");
        assert_eq!(
            line_from(&c, "incident", &opts),
            r#"/incident role role:"comms" user:"alice""#
        );
        let opts: Vec<CommandDataOption> =
            serde_json::from_value(json!([{ "name": "request", "type": 3, "value": "A-3" }]))
                .expect("test setup");
        assert_eq!(line_from(&c, "approve", &opts), r#"/approve request:"A-3""#);
    }

    #[test]
    fn long_replies_keep_their_whole_text_as_an_attachment() {
        let short = "a".repeat(2000);
        assert_eq!(long_text(&short), (short.clone(), None));
        let long = "é".repeat(5000);
        let (content, whole) = long_text(&long);
        assert!(
            content.chars().count() <= 2000,
            "{}",
            content.chars().count()
        );
        assert!(content.ends_with("(the full text is attached: reply.txt)"));
        assert!(whole.is_some());
    }

    #[test]
    fn long_replies_are_cut_to_fit_a_message() {
        let long = "x".repeat(5000);
        assert!(fit(&long).chars().count() <= MAX_CONTENT);
        assert_eq!(fit("short"), "short");
    }
}
