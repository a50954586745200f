//! The command grammar of SPEC §2: one table of every command with its options, and the parser
//! for the text form `/group sub name:value name:"value with spaces"`.
//!
//! A [`Table`] is the single source of truth for names, options, descriptions and choices: the
//! console parses against it and the Discord adapter registers its built slash commands from
//! it. Its rows are the lifecycle's ([`LIFECYCLE`]), each scenario's, the gate's ([`GATE`]) and
//! notifications' ([`NOTIFY`]); `scenarios::table()` puts them together.

use std::fmt::Write as _;

/// What kind of value an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// Free text.
    Text,
    /// A whole number within bounds.
    Integer { min: i64, max: i64 },
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// A person: a configured name (or a Discord user in Discord).
    User,
}

/// One option of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    /// Its name, as typed before the colon.
    pub name: &'static str,
    /// One line for help and Discord (at most 100 characters).
    pub description: &'static str,
    /// Its kind of value.
    pub kind: OptionKind,
    /// Whether the command needs it.
    pub required: bool,
    /// Whether the bot offers values while typing (backups, targets, steps, requests).
    pub autocomplete: bool,
}

/// One command: a group with an optional subcommand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// The top-level name (`incident`, `db`, `approve`).
    pub group: &'static str,
    /// The subcommand, if the group has them.
    pub sub: Option<&'static str>,
    /// One line for help and Discord (at most 100 characters).
    pub description: &'static str,
    /// Its options, required ones first.
    pub options: &'static [OptionSpec],
    /// Whether it changes a system in a way that needs a second person's approval.
    pub destructive: bool,
}

/// A command's identity: its group and subcommand (what runbook steps are bound to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommandId {
    /// The group (`db`).
    pub group: &'static str,
    /// The subcommand (`restore`), if the group has them.
    pub sub: Option<&'static str>,
}

impl CommandId {
    /// The id of `/group sub`.
    pub const fn new(group: &'static str, sub: Option<&'static str>) -> CommandId {
        CommandId { group, sub }
    }
}

impl CommandSpec {
    /// Its identity.
    pub fn id(&self) -> CommandId {
        CommandId::new(self.group, self.sub)
    }

    /// The command as typed, without options: `/incident declare`.
    pub fn path(&self) -> String {
        match self.sub {
            Some(sub) => format!("/{} {}", self.group, sub),
            None => format!("/{}", self.group),
        }
    }

    /// A usage line: `/step skip step:<step> reason:<text>` with optional options in brackets.
    pub fn usage(&self) -> String {
        let mut s = self.path();
        for o in self.options {
            let value = match o.kind {
                OptionKind::Choice(choices) => choices.join("|"),
                OptionKind::Integer { .. } => "<number>".to_string(),
                OptionKind::User => "<person>".to_string(),
                OptionKind::Text => format!("<{}>", o.name),
            };
            if o.required {
                let _ = write!(s, " {}:{}", o.name, value);
            } else {
                let _ = write!(s, " [{}:{}]", o.name, value);
            }
        }
        s
    }

    /// The option with this name.
    pub fn option(&self, name: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// The option every command takes in the console and `exec` to pick one of several incidents.
pub const INCIDENT_OPTION: &str = "incident";

const SEVERITIES: &[&str] = &["sev1", "sev2", "sev3"];
const ROLES: &[&str] = &["commander", "comms", "scribe"];

/// A table-row builder.
pub const fn req(name: &'static str, description: &'static str, kind: OptionKind) -> OptionSpec {
    OptionSpec {
        name,
        description,
        kind,
        required: true,
        autocomplete: false,
    }
}

/// A table-row builder.
pub const fn opt(name: &'static str, description: &'static str, kind: OptionKind) -> OptionSpec {
    OptionSpec {
        name,
        description,
        kind,
        required: false,
        autocomplete: false,
    }
}

/// A table-row builder.
pub const fn auto(o: OptionSpec) -> OptionSpec {
    OptionSpec {
        autocomplete: true,
        ..o
    }
}

/// A table-row builder.
pub const fn cmd(
    group: &'static str,
    sub: Option<&'static str>,
    description: &'static str,
    options: &'static [OptionSpec],
) -> CommandSpec {
    CommandSpec {
        group,
        sub,
        description,
        options,
        destructive: false,
    }
}

/// `rows`, with `choices` offered by every option named `option` that takes a choice: for
/// choices known only once the scenarios are put together (the runbook's scenario names).
/// Made once, for the one command table, and kept for the life of the process.
pub fn offering(
    rows: &'static [CommandSpec],
    option: &str,
    choices: Vec<&'static str>,
) -> &'static [CommandSpec] {
    let choices: &'static [&'static str] = Box::leak(choices.into_boxed_slice());
    let offers = |o: &OptionSpec| o.name == option && matches!(o.kind, OptionKind::Choice(_));
    let rows: Vec<CommandSpec> = rows
        .iter()
        .map(|r| {
            if !r.options.iter().any(offers) {
                return *r;
            }
            let options: Vec<OptionSpec> = r
                .options
                .iter()
                .map(|o| match offers(o) {
                    true => OptionSpec {
                        kind: OptionKind::Choice(choices),
                        ..*o
                    },
                    false => *o,
                })
                .collect();
            CommandSpec {
                options: Box::leak(options.into_boxed_slice()),
                ..*r
            }
        })
        .collect();
    Box::leak(rows.into_boxed_slice())
}

/// A table-row builder.
pub const fn destructive(c: CommandSpec) -> CommandSpec {
    CommandSpec {
        destructive: true,
        ..c
    }
}

pub use OptionKind::{Choice, Integer, Text, User};

/// The incident lifecycle's and the runbook checklist's rows of the command table.
pub const LIFECYCLE: &[CommandSpec] = &[
    cmd(
        "incident",
        Some("declare"),
        "Open an incident with the scenario's runbook steps",
        &[
            // Its choices are the runbook's scenarios, filled in by `scenarios::table`.
            req("scenario", "Which runbook scenario", Choice(&[])),
            req("severity", "sev1 is the worst", Choice(SEVERITIES)),
            req("title", "What is broken, in a few words", Text),
        ],
    ),
    cmd(
        "incident",
        Some("status"),
        "Steps with their state, elapsed time against the RTO, and the next step",
        &[],
    ),
    cmd("incident", Some("timeline"), "The incident's timeline", &[]),
    cmd(
        "incident",
        Some("note"),
        "Add a note to the timeline",
        &[req("text", "The note", Text)],
    ),
    cmd(
        "incident",
        Some("role"),
        "Assign an incident role",
        &[
            req("role", "The role", Choice(ROLES)),
            req("user", "Who takes it", User),
        ],
    ),
    cmd(
        "incident",
        Some("resolve"),
        "Service is restored: stop the clock and write the report",
        &[],
    ),
    cmd(
        "incident",
        Some("close"),
        "Finish the incident (resolves it first if needed)",
        &[opt(
            "confirm",
            "yes: close although recovery steps are still open",
            Choice(&["yes"]),
        )],
    ),
    cmd("incident", Some("list"), "Open and recent incidents", &[]),
    cmd(
        "incident",
        Some("reopen"),
        "Reopen a resolved or closed incident: its clock runs again",
        &[auto(opt(
            "incident",
            "The incident to reopen (default: this channel's)",
            Text,
        ))],
    ),
    cmd(
        "incident",
        Some("report"),
        "Write the post-incident report again from the record and post it",
        &[],
    ),
    cmd(
        "incident",
        Some("edit"),
        "Correct the incident's title or severity",
        &[
            opt("title", "The corrected title", Text),
            opt("severity", "The corrected severity", Choice(SEVERITIES)),
        ],
    ),
    cmd(
        "step",
        Some("list"),
        "The runbook's steps for this incident",
        &[],
    ),
    cmd(
        "step",
        Some("done"),
        "Mark a step done",
        &[auto(req("step", "Step number or id", Text))],
    ),
    cmd(
        "step",
        Some("skip"),
        "Skip a step, saying why",
        &[
            auto(req("step", "Step number or id", Text)),
            req("reason", "Why it is skipped", Text),
        ],
    ),
    cmd(
        "step",
        Some("undo"),
        "Put a step marked done or skipped by hand back to pending",
        &[auto(req("step", "Step number or id", Text))],
    ),
];

/// The approval gate's rows.
pub const GATE: &[CommandSpec] = &[
    cmd(
        "approve",
        None,
        "Approve a pending request",
        &[auto(req("request", "The request id", Text))],
    ),
    cmd(
        "deny",
        None,
        "Deny a pending request",
        &[
            auto(req("request", "The request id", Text)),
            req("reason", "Why", Text),
        ],
    ),
];

/// Stakeholder notification's rows.
pub const NOTIFY: &[CommandSpec] = &[cmd(
    "notify",
    Some("stakeholders"),
    "Send a stakeholder update on every configured channel",
    &[req("message", "The update, written for stakeholders", Text)],
)];

/// The emergency contacts' rows: who to call, paging, acknowledging.
pub const PAGING: &[CommandSpec] = &[
    cmd(
        "contacts",
        None,
        "Who to call for this incident: first, escalation, external support",
        &[],
    ),
    cmd(
        "page",
        None,
        "Page a contact or a group now (escalates until acknowledged)",
        &[
            auto(req(
                "who",
                "A contact or a group (primary, escalation, …)",
                Text,
            )),
            req("message", "Why they are woken", Text),
        ],
    ),
    cmd(
        "ack",
        None,
        "Acknowledge a page: it stops escalating",
        &[auto(opt(
            "page",
            "The page (default: this incident's open pages)",
            Text,
        ))],
    ),
];

/// A command line that could not be understood. The text says what is wrong and what is valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A parsed command line: which command, and its option values as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The command.
    pub spec: &'static CommandSpec,
    /// Option values in the order given (the `incident` option included).
    pub options: Vec<(String, String)>,
}

impl Invocation {
    /// The value of an option, if it was given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The command line written back in canonical form (values quoted when needed).
    pub fn canonical(&self) -> String {
        let mut s = self.spec.path();
        for (n, v) in &self.options {
            let special = |c: char| c.is_whitespace() || c == '\\' || is_open_quote(c);
            // A free-text value unquoted would take the rest of the line, options after it too.
            let rest_of_line = REST_OF_LINE.contains(&n.as_str());
            if rest_of_line || v.is_empty() || v.starts_with("//") || v.chars().any(special) {
                let _ = write!(s, " {n}:{}", quoted(v));
            } else {
                let _ = write!(s, " {n}:{v}");
            }
        }
        s
    }
}

/// The longest command line accepted: a 1500-character note of four-byte characters, every one
/// escaped, fits (Discord's own limits are below this).
const MAX_LINE: usize = 32 * 1024;

/// Free-text options that, written unquoted, take the rest of the line exactly as typed (so a
/// pasted error keeps its quotes, backslashes and runs of spaces).
pub const REST_OF_LINE: &[&str] = &["text", "message", "reason"];

/// One piece of the line.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// `name:value`: the value unquoted (a run up to whitespace, quotes kept as typed) or
    /// quoted (escapes resolved). `value_at` is where the value starts in the line.
    Option {
        name: String,
        value: String,
        quoted: bool,
        value_at: usize,
    },
    /// Anything else: a run up to whitespace, as typed; `end` is where it ends in the line.
    Word { text: String, end: usize },
}

/// Reads a command line one token at a time, so a free-text option can take the rest of the
/// line as it is instead of having it tokenized.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Lexer<'a> {
        Lexer { src, pos: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// A run of non-whitespace from the current position.
    fn run(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_whitespace()) {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    /// The line from `at` to its end, as typed.
    fn rest_from(&self, at: usize) -> &'a str {
        &self.src[at..]
    }

    /// The next token, or `None` at the end of the line.
    fn next_token(&mut self) -> Result<Option<Token>, UsageError> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        if self.peek().is_none() {
            return Ok(None);
        }
        let start = self.pos;
        let rest = &self.src[start..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        let after = &rest[name_len..];
        // `https://…` is a word; `text://…` is a note that starts with slashes.
        let is_option = is_option_name(name)
            && after.starts_with(':')
            && (!after[1..].starts_with("//") || REST_OF_LINE.contains(&name));
        if !is_option {
            let text = self.run().to_string();
            return Ok(Some(Token::Word {
                text,
                end: self.pos,
            }));
        }
        self.pos = start + name_len + 1;
        let value_at = self.pos;
        let quoted = self.peek().is_some_and(is_open_quote);
        let value = if quoted {
            self.bump();
            self.quoted_value(name)?
        } else {
            self.run().to_string()
        };
        Ok(Some(Token::Option {
            name: name.to_string(),
            value,
            quoted,
            value_at,
        }))
    }

    /// The rest of a quoted value after its opening quote: `\` escapes a quote or a
    /// backslash (any other backslash is kept as typed); it ends at the closing quote, which
    /// must be followed by whitespace or the end of the line.
    fn quoted_value(&mut self, name: &str) -> Result<String, UsageError> {
        let mut v = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(UsageError(format!(
                        "The quote opened for {name}: is never closed. Close it with \", or write \
                         {name}: last without quotes to take the rest of the line as it is."
                    )));
                }
                Some('\\') => match self.peek() {
                    Some(e) if e == '\\' || is_open_quote(e) || is_close_quote(e) => {
                        self.bump();
                        v.push(e);
                    }
                    _ => v.push('\\'),
                },
                Some(c) if is_close_quote(c) => break,
                Some(c) => v.push(c),
            }
        }
        if self.peek().is_some_and(|c| !c.is_whitespace()) {
            return Err(UsageError(format!(
                "The quoted value of {name}: must be followed by a space. To keep quotes in a \
                 value, escape them as \\\"."
            )));
        }
        Ok(v)
    }
}

/// An option value as the parser reads it back exactly: in double quotes, with backslashes
/// and every quote character (straight or curly) escaped. For lines built from structured
/// input (Discord's options).
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '\\' || is_open_quote(c) || is_close_quote(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_open_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”')
}

fn is_close_quote(c: char) -> bool {
    matches!(c, '"' | '”' | '“')
}

/// An option name: a lowercase letter, then letters, digits, `_` or `-` (so `10:30` in a title
/// is text, not an option).
fn is_option_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The one command table: every command of SPEC §2 in help order, each marked built (it does
/// something: registered in Discord) or not yet.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<(&'static CommandSpec, bool)>,
}

impl Table {
    /// A table of these parts, in order: each part's rows and whether they are built.
    pub fn new(parts: impl IntoIterator<Item = (&'static [CommandSpec], bool)>) -> Table {
        Table {
            rows: parts
                .into_iter()
                .flat_map(|(rows, built)| rows.iter().map(move |r| (r, built)))
                .collect(),
        }
    }

    /// Every command, in help order.
    pub fn specs(&self) -> impl Iterator<Item = &'static CommandSpec> + '_ {
        self.rows.iter().map(|(s, _)| *s)
    }

    /// The commands that do something (what Discord registers).
    pub fn built(&self) -> impl Iterator<Item = &'static CommandSpec> + '_ {
        self.rows.iter().filter(|(_, b)| *b).map(|(s, _)| *s)
    }

    /// Whether this command does something yet.
    pub fn is_built(&self, spec: &CommandSpec) -> bool {
        self.rows.iter().any(|(s, b)| *b && s.id() == spec.id())
    }

    /// Parses a command line against the table.
    pub fn parse(&self, line: &str) -> Result<Invocation, UsageError> {
        parse_in(self, line)
    }

    /// A help text listing every command's usage.
    pub fn help(&self) -> String {
        let mut s = String::from("Commands (options in [brackets] are optional):\n");
        for (c, built) in &self.rows {
            let soon = if *built { "" } else { " (not built yet)" };
            let _ = writeln!(s, "  {:<70} {}{soon}", c.usage(), c.description);
        }
        s.push_str("  Any command also takes incident:<id> to pick one of several open incidents.");
        s
    }

    fn groups(&self) -> Vec<&'static str> {
        let mut names: Vec<&str> = self.specs().map(|c| c.group).collect();
        names.dedup();
        names
    }

    fn list_groups(&self) -> String {
        let names: Vec<String> = self.groups().iter().map(|g| format!("/{g}")).collect();
        format!("Commands: {}.", names.join(", "))
    }
}

fn parse_in(table: &Table, line: &str) -> Result<Invocation, UsageError> {
    if line.len() > MAX_LINE {
        return Err(UsageError(format!(
            "That line is {} bytes long; commands are at most {MAX_LINE}.",
            line.len()
        )));
    }
    let line = line.trim_start();
    let Some(rest) = line.strip_prefix('/') else {
        return Err(UsageError(format!(
            "Commands start with /, for example /incident status. {}",
            table.list_groups()
        )));
    };
    let mut lx = Lexer::new(rest);
    let group = match lx.next_token()? {
        Some(Token::Word { text, .. }) => text,
        _ => {
            return Err(UsageError(format!(
                "Write a command after the /. {}",
                table.list_groups()
            )));
        }
    };
    let group_lc = group.to_lowercase();
    let in_group: Vec<&'static CommandSpec> =
        table.specs().filter(|c| c.group == group_lc).collect();
    if in_group.is_empty() {
        let names: Vec<&str> = table.groups();
        let hint = closest(&group_lc, &names)
            .map(|g| format!(" Did you mean /{g}?"))
            .unwrap_or_default();
        return Err(UsageError(format!(
            "Unknown command /{group}.{hint} {}",
            table.list_groups()
        )));
    }
    let spec: &'static CommandSpec = if in_group[0].sub.is_none() {
        in_group[0]
    } else {
        let subs: Vec<&str> = in_group.iter().filter_map(|c| c.sub).collect();
        let sub = match lx.next_token()? {
            Some(Token::Word { text, .. }) => text.to_lowercase(),
            _ => {
                return Err(UsageError(format!(
                    "/{group_lc} needs a subcommand: {}.",
                    subs.join(", ")
                )));
            }
        };
        match in_group.iter().find(|c| c.sub == Some(sub.as_str())) {
            Some(c) => c,
            None => {
                let hint = closest(&sub, &subs)
                    .map(|s| format!(" Did you mean /{group_lc} {s}?"))
                    .unwrap_or_default();
                return Err(UsageError(format!(
                    "/{group_lc} has no subcommand `{sub}`.{hint} Valid: {}.",
                    subs.join(", ")
                )));
            }
        }
    };

    let mut options: Vec<(String, String)> = Vec::new();
    // An unquoted free-text value that later words continue (`title:Media bucket wiped`):
    // its index in `options` and where it starts in the line, so the value is the line's
    // own text, runs of spaces included.
    let mut open_text: Option<(usize, usize)> = None;
    while let Some(token) = lx.next_token()? {
        match token {
            Token::Option {
                name,
                value,
                quoted,
                value_at,
            } => {
                let known = spec.option(&name);
                if known.is_none() && name != INCIDENT_OPTION {
                    let names: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
                    let hint = closest(&name, &names)
                        .map(|n| format!(" Did you mean {n}:?"))
                        .unwrap_or_default();
                    let quote = open_text
                        .map(|(i, _)| {
                            format!(
                                " If `{name}:` belongs to {}:, put that value in quotes.",
                                options[i].0
                            )
                        })
                        .unwrap_or_default();
                    let valid = if names.is_empty() {
                        format!("{} takes no options.", spec.path())
                    } else {
                        format!("Usage: {}", spec.usage())
                    };
                    return Err(UsageError(format!(
                        "{} has no option {name}:.{hint}{quote} {valid}",
                        spec.path()
                    )));
                }
                if options.iter().any(|(n, _)| *n == name) {
                    return Err(UsageError(format!(
                        "Option {name}: is given twice. Usage: {}",
                        spec.usage()
                    )));
                }
                let text = known.filter(|o| o.kind == OptionKind::Text);
                if !quoted && text.is_some_and(|o| REST_OF_LINE.contains(&o.name)) {
                    // Written unquoted, it takes the rest of the line as it is.
                    let value = lx.rest_from(value_at).trim_start_matches([' ', '\t']);
                    options.push((name, value.to_string()));
                    break;
                }
                open_text = (!quoted && text.is_some_and(|o| o.name != "step"))
                    .then_some((options.len(), value_at));
                options.push((name, value));
            }
            Token::Word { text, end } => match open_text {
                Some((i, value_at)) => options[i].1 = rest[value_at..end].to_string(),
                None => {
                    return Err(UsageError(format!(
                        "Unexpected `{text}`: options are written name:value (a value with \
                         spaces in quotes). Usage: {}",
                        spec.usage()
                    )));
                }
            },
        }
    }

    for (name, value) in &mut options {
        if name == INCIDENT_OPTION {
            *value = value.trim().to_string();
            if value.is_empty() {
                return Err(UsageError(
                    "Option incident: needs an incident id, like incident:INC-3.".to_string(),
                ));
            }
            continue;
        }
        let Some(o) = spec.option(name) else { continue };
        check_value(spec, o, value)?;
    }
    for o in spec.options.iter().filter(|o| o.required) {
        if !options.iter().any(|(n, _)| n == o.name) {
            // A free-text option written earlier took the rest of the line, this one with it.
            let taken = options
                .last()
                .filter(|(n, v)| {
                    REST_OF_LINE.contains(&n.as_str()) && v.contains(&format!("{}:", o.name))
                })
                .map(|(n, _)| {
                    format!(
                        " ({n}: takes the rest of the line: write {}: before it, or quote {n}:'s value.)",
                        o.name
                    )
                })
                .unwrap_or_default();
            return Err(UsageError(format!(
                "{} needs {}: ({}).{taken} Usage: {}",
                spec.path(),
                o.name,
                o.description.to_lowercase(),
                spec.usage()
            )));
        }
    }
    Ok(Invocation { spec, options })
}

/// Checks one value against its option's kind; free text is kept exactly as given, other
/// values are trimmed, and choices are matched case-insensitively and stored lowercase.
fn check_value(spec: &CommandSpec, o: &OptionSpec, value: &mut String) -> Result<(), UsageError> {
    if o.kind != OptionKind::Text {
        *value = value.trim().to_string();
    }
    if value.trim().is_empty() {
        return Err(UsageError(format!(
            "Option {}: is empty. Usage: {}",
            o.name,
            spec.usage()
        )));
    }
    match o.kind {
        OptionKind::Text | OptionKind::User => Ok(()),
        OptionKind::Choice(choices) => {
            let lc = value.to_lowercase();
            if choices.contains(&lc.as_str()) {
                *value = lc;
                Ok(())
            } else {
                let hint = closest(&lc, choices)
                    .map(|c| format!(" Did you mean {c}?"))
                    .unwrap_or_default();
                Err(UsageError(format!(
                    "`{value}` is not a valid {}.{hint} Valid: {}.",
                    o.name,
                    choices.join(", ")
                )))
            }
        }
        OptionKind::Integer { min, max } => match value.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(UsageError(format!(
                "{}: must be a whole number from {min} to {max}, not `{value}`.",
                o.name
            ))),
        },
    }
}

/// The candidate nearest to `word` by edit distance, if it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
