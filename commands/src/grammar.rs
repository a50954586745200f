//! The command grammar of SPEC §2: one table of every command with its options, and the parser
//! for the text form `/group sub name:value name:"value with spaces"`.
//!
//! [`COMMANDS`] is the single source of truth for names, options, descriptions and choices: the
//! console parses against it and the Discord adapter registers its slash commands from it.

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

impl CommandSpec {
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

const SCENARIOS: &[&str] = &["database", "storage", "search", "full"];
const SEVERITIES: &[&str] = &["sev1", "sev2", "sev3"];
const ROLES: &[&str] = &["commander", "comms", "scribe"];
const DRILLS: &[&str] = &["database", "storage", "full"];

const fn req(name: &'static str, description: &'static str, kind: OptionKind) -> OptionSpec {
    OptionSpec {
        name,
        description,
        kind,
        required: true,
        autocomplete: false,
    }
}

const fn opt(name: &'static str, description: &'static str, kind: OptionKind) -> OptionSpec {
    OptionSpec {
        name,
        description,
        kind,
        required: false,
        autocomplete: false,
    }
}

const fn auto(o: OptionSpec) -> OptionSpec {
    OptionSpec {
        autocomplete: true,
        ..o
    }
}

const fn cmd(
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

const fn destructive(c: CommandSpec) -> CommandSpec {
    CommandSpec {
        destructive: true,
        ..c
    }
}

use OptionKind::{Choice, Integer, Text, User};

/// Every command of SPEC §2, in the order help lists them.
pub const COMMANDS: &[CommandSpec] = &[
    cmd(
        "incident",
        Some("declare"),
        "Open an incident with the scenario's runbook steps",
        &[
            req("scenario", "Which runbook scenario", Choice(SCENARIOS)),
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
        &[],
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
        "db",
        Some("check"),
        "Database connectivity, server version, size and latency",
        &[auto(opt(
            "target",
            "Database target (default: production)",
            Text,
        ))],
    ),
    cmd(
        "db",
        Some("backups"),
        "Newest backups with time, size and age against the RPO",
        &[opt(
            "limit",
            "How many to list (default 5)",
            Integer { min: 1, max: 50 },
        )],
    ),
    destructive(cmd(
        "db",
        Some("restore"),
        "Stream a backup into a database target",
        &[
            auto(req(
                "backup",
                "Backup key, a name under the prefix, or latest",
                Text,
            )),
            auto(req("target", "Database target from the config", Text)),
        ],
    )),
    cmd(
        "db",
        Some("verify"),
        "Integrity checks on a restored database",
        &[auto(req("target", "Database target from the config", Text))],
    ),
    cmd(
        "db",
        Some("backup"),
        "Take a backup now: pg_dump, xz, age, bucket",
        &[auto(opt(
            "target",
            "Database target (default: production)",
            Text,
        ))],
    ),
    cmd(
        "storage",
        Some("check"),
        "Bucket reachability and versioning status",
        &[],
    ),
    cmd(
        "storage",
        Some("versions"),
        "Object versions under a prefix or of one key",
        &[
            opt("prefix", "Key prefix", Text),
            opt("key", "One object key", Text),
        ],
    ),
    destructive(cmd(
        "storage",
        Some("restore"),
        "Restore one object version, or a prefix as it was at a time",
        &[
            opt("key", "Object key (with version)", Text),
            auto(opt("version", "Version id (with key)", Text)),
            opt("prefix", "Key prefix (with at)", Text),
            opt(
                "at",
                "UTC time, e.g. 2026-11-25T10:30:00Z (with prefix)",
                Text,
            ),
        ],
    )),
    cmd("search", Some("health"), "Meilisearch health", &[]),
    cmd("search", Some("dump"), "Create a Meilisearch dump", &[]),
    cmd(
        "search",
        Some("reindex"),
        "Reindex search from the database via the API",
        &[],
    ),
    cmd(
        "search",
        Some("progress"),
        "Reindex progress against the database",
        &[],
    ),
    cmd(
        "api",
        Some("health"),
        "API and web health endpoints with latency",
        &[],
    ),
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
    cmd(
        "drill",
        Some("start"),
        "Start a fire drill from the runbook",
        &[req("kind", "Which drill", Choice(DRILLS))],
    ),
    cmd(
        "drill",
        Some("report"),
        "The last drill's measured RTO and RPO",
        &[],
    ),
    cmd(
        "notify",
        Some("stakeholders"),
        "Send a stakeholder update on every configured channel",
        &[req("message", "The update, written for stakeholders", Text)],
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
            if v.is_empty() || v.chars().any(special) {
                let _ = write!(s, " {n}:{}", quoted(v));
            } else {
                let _ = write!(s, " {n}:{v}");
            }
        }
        s
    }
}

/// The longest command line accepted (Discord's own limits are far below this).
const MAX_LINE: usize = 8 * 1024;

/// One whitespace-separated piece of the line, with quoting resolved.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// `name:value` (value unquoted or quoted).
    Option { name: String, value: String },
    /// Anything else.
    Word(String),
}

/// Splits a line into tokens. Quotes may be straight (`"`) or curly (`“ ”`, as phones type them);
/// inside them `\"` and `\\` escape.
fn tokenize(line: &str) -> Result<Vec<Token>, UsageError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(tokens);
        }
        // Read a bare run up to whitespace or a quote.
        let mut head = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && !is_open_quote(*c)) {
            head.push(c);
        }
        let option_name = head
            .strip_suffix(':')
            .filter(|n| is_option_name(n))
            .map(str::to_string);
        let quoted = match chars.peek() {
            Some(c) if is_open_quote(*c) => {
                chars.next();
                let mut v = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some(e) => v.push(e),
                            None => break,
                        },
                        c if is_close_quote(c) => {
                            closed = true;
                            break;
                        }
                        c => v.push(c),
                    }
                }
                if !closed {
                    let what = option_name.as_deref().unwrap_or("a value");
                    return Err(UsageError(format!(
                        "The quote opened for {what} is never closed. Close it with \"."
                    )));
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err(UsageError(
                        "A closing quote must be followed by a space.".to_string(),
                    ));
                }
                Some(v)
            }
            _ => None,
        };
        match (option_name, quoted) {
            (Some(name), Some(value)) => tokens.push(Token::Option { name, value }),
            (Some(name), None) => tokens.push(Token::Option {
                name,
                value: String::new(),
            }),
            (None, Some(value)) => tokens.push(Token::Word(format!("{head}{value}"))),
            (None, None) => match head.split_once(':') {
                Some((name, value)) if is_option_name(name) && !value.starts_with("//") => tokens
                    .push(Token::Option {
                        name: name.to_string(),
                        value: value.to_string(),
                    }),
                _ => tokens.push(Token::Word(head)),
            },
        }
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

fn is_option_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Parses a command line against [`COMMANDS`].
pub fn parse(line: &str) -> Result<Invocation, UsageError> {
    if line.len() > MAX_LINE {
        return Err(UsageError(format!(
            "That line is {} bytes long; commands are at most {MAX_LINE}.",
            line.len()
        )));
    }
    let line = line.trim();
    let Some(rest) = line.strip_prefix('/') else {
        return Err(UsageError(format!(
            "Commands start with /, for example /incident status. {}",
            list_groups()
        )));
    };
    let tokens = tokenize(rest)?;
    let mut it = tokens.into_iter().peekable();
    let group = match it.next() {
        Some(Token::Word(w)) => w,
        _ => {
            return Err(UsageError(format!(
                "Write a command after the /. {}",
                list_groups()
            )));
        }
    };
    let group_lc = group.to_lowercase();
    let in_group: Vec<&'static CommandSpec> =
        COMMANDS.iter().filter(|c| c.group == group_lc).collect();
    if in_group.is_empty() {
        let names: Vec<&str> = groups();
        let hint = closest(&group_lc, &names)
            .map(|g| format!(" Did you mean /{g}?"))
            .unwrap_or_default();
        return Err(UsageError(format!(
            "Unknown command /{group}.{hint} {}",
            list_groups()
        )));
    }
    let spec: &'static CommandSpec = if in_group[0].sub.is_none() {
        in_group[0]
    } else {
        let subs: Vec<&str> = in_group.iter().filter_map(|c| c.sub).collect();
        let sub = match it.next() {
            Some(Token::Word(w)) => w.to_lowercase(),
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
    for token in it {
        match token {
            Token::Option { name, value }
                if spec.option(&name).is_some() || name == INCIDENT_OPTION =>
            {
                if options.iter().any(|(n, _)| *n == name) {
                    return Err(UsageError(format!(
                        "Option {name}: is given twice. Usage: {}",
                        spec.usage()
                    )));
                }
                options.push((name, value));
            }
            other => {
                // Unquoted words after a free-text option continue its value, so
                // `/incident note text:API is back` works without quotes.
                let piece = match &other {
                    Token::Option { name, value } => format!("{name}:{value}"),
                    Token::Word(w) => w.clone(),
                };
                let continues = options.last_mut().filter(|(n, _)| {
                    spec.option(n)
                        .is_some_and(|o| o.kind == OptionKind::Text && o.name != "step")
                });
                match (continues, other) {
                    (Some((_, v)), _) => {
                        v.push(' ');
                        v.push_str(&piece);
                    }
                    (None, Token::Option { name, .. }) => {
                        let names: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
                        let hint = closest(&name, &names)
                            .map(|n| format!(" Did you mean {n}:?"))
                            .unwrap_or_default();
                        let valid = if names.is_empty() {
                            format!("{} takes no options.", spec.path())
                        } else {
                            format!("Usage: {}", spec.usage())
                        };
                        return Err(UsageError(format!(
                            "{} has no option {name}:.{hint} {valid}",
                            spec.path()
                        )));
                    }
                    (None, Token::Word(w)) => {
                        return Err(UsageError(format!(
                            "Unexpected `{w}`: options are written name:value. Usage: {}",
                            spec.usage()
                        )));
                    }
                }
            }
        }
    }

    for (name, value) in &mut options {
        *value = value.trim().to_string();
        if name == INCIDENT_OPTION {
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
            return Err(UsageError(format!(
                "{} needs {}: ({}). Usage: {}",
                spec.path(),
                o.name,
                o.description.to_lowercase(),
                spec.usage()
            )));
        }
    }
    Ok(Invocation { spec, options })
}

/// Checks one value against its option's kind; choices are matched case-insensitively and
/// stored lowercase.
fn check_value(spec: &CommandSpec, o: &OptionSpec, value: &mut String) -> Result<(), UsageError> {
    if value.is_empty() {
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

fn groups() -> Vec<&'static str> {
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.group).collect();
    names.dedup();
    names
}

fn list_groups() -> String {
    let names: Vec<String> = groups().iter().map(|g| format!("/{g}")).collect();
    format!("Commands: {}.", names.join(", "))
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

/// A help text listing every command's usage.
pub fn help() -> String {
    let mut s = String::from("Commands (options in [brackets] are optional):\n");
    for c in COMMANDS {
        let _ = writeln!(s, "  {:<70} {}", c.usage(), c.description);
    }
    s.push_str("  Any command also takes incident:<id> to pick one of several open incidents.");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(line: &str) -> Invocation {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Ok(i) => panic!("{line} parsed as {i:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn parses_options_plain_quoted_and_escaped() {
        let i =
            ok(r#"/incident declare scenario:database severity:SEV1 title:"Primary \"db\" down""#);
        assert_eq!(i.spec.path(), "/incident declare");
        assert_eq!(i.get("scenario"), Some("database"));
        assert_eq!(i.get("severity"), Some("sev1"));
        assert_eq!(i.get("title"), Some(r#"Primary "db" down"#));
        let i = ok("/incident note text:“curly quotes” incident:INC-2");
        assert_eq!(i.get("text"), Some("curly quotes"));
        assert_eq!(i.get("incident"), Some("INC-2"));
        let i = ok("/approve request:ab12");
        assert_eq!(i.spec.group, "approve");
        assert_eq!(i.get("request"), Some("ab12"));
        let i = ok(r#"/step skip step:3 reason:"no search in staging""#);
        assert_eq!(i.get("reason"), Some("no search in staging"));
        let i = ok("/db backups limit:10");
        assert_eq!(i.get("limit"), Some("10"));
        let i = ok(r#"/incident note text:"""#.replace(r#""""#, r#""a:b c""#).as_str());
        assert_eq!(i.get("text"), Some("a:b c"));
    }

    #[test]
    fn unquoted_text_runs_on_to_the_end() {
        let i = ok("/incident note text:API is back: 200 OK on /healthz");
        assert_eq!(i.get("text"), Some("API is back: 200 OK on /healthz"));
        let i = ok("/step skip step:2 reason:nothing to stop in staging");
        assert_eq!(i.get("reason"), Some("nothing to stop in staging"));
        let i = ok(
            "/incident declare scenario:database severity:sev2 title:DB slow at https://x.example/y",
        );
        assert_eq!(i.get("title"), Some("DB slow at https://x.example/y"));
    }

    #[test]
    fn canonical_form_parses_back_to_the_same() {
        let i = ok(r#"/incident note text:"say \"hi\" \\ there""#);
        assert_eq!(parse(&i.canonical()).expect("test setup"), i);
    }

    #[test]
    fn usage_errors_say_what_is_wrong_and_what_is_valid() {
        let e = err("/incdent status");
        assert!(
            e.contains("Unknown command /incdent") && e.contains("/incident?"),
            "{e}"
        );
        let e = err("/incident");
        assert!(
            e.contains("needs a subcommand") && e.contains("declare"),
            "{e}"
        );
        let e = err("/incident stauts");
        assert!(e.contains("Did you mean /incident status?"), "{e}");
        let e = err("/incident declare scenario:nonsense severity:sev1 title:x");
        assert!(
            e.contains("`nonsense` is not a valid scenario")
                && e.contains("database, storage, search, full"),
            "{e}"
        );
        let e = err("/incident declare scenario:database title:x");
        assert!(
            e.contains("needs severity:") && e.contains("Usage: /incident declare"),
            "{e}"
        );
        let e = err("/incident declare scenario:database sevrity:sev1 title:x");
        assert!(
            e.contains("no option sevrity:") && e.contains("Did you mean severity:?"),
            "{e}"
        );
        let e = err("/incident status verbose:yes");
        assert!(e.contains("takes no options"), "{e}");
        let e = err("/incident note text:a text:b");
        assert!(e.contains("given twice"), "{e}");
        let e = err("/db backups limit:0");
        assert!(e.contains("from 1 to 50"), "{e}");
        let e = err("/db backups limit:many");
        assert!(e.contains("whole number"), "{e}");
        let e = err(r#"/incident note text:"never closed"#);
        assert!(e.contains("never closed"), "{e}");
        let e = err("incident status");
        assert!(e.contains("start with /"), "{e}");
        let e = err("/step done");
        assert!(e.contains("needs step:"), "{e}");
        let e = err("/step done step:");
        assert!(e.contains("is empty"), "{e}");
        let e = err("/step list extra");
        assert!(e.contains("Unexpected `extra`"), "{e}");
        let e = err("/");
        assert!(e.contains("Write a command"), "{e}");
    }

    #[test]
    fn every_command_fits_discords_registration_limits() {
        let mut seen = std::collections::BTreeSet::new();
        for c in COMMANDS {
            assert!(seen.insert(c.path()), "duplicate {}", c.path());
            for name in std::iter::once(c.group).chain(c.sub) {
                assert!(is_option_name(name) && name.len() <= 32, "{name}");
            }
            assert!(
                !c.description.is_empty() && c.description.len() <= 100,
                "{}",
                c.path()
            );
            assert!(c.options.len() <= 25);
            let mut optional_seen = false;
            for o in c.options {
                assert!(is_option_name(o.name), "{}", o.name);
                assert!(
                    !o.description.is_empty() && o.description.len() <= 100,
                    "{}",
                    o.name
                );
                assert!(
                    !(o.required && optional_seen),
                    "required after optional in {}",
                    c.path()
                );
                optional_seen |= !o.required;
                if let OptionKind::Choice(ch) = o.kind {
                    assert!(!o.autocomplete && ch.len() <= 25);
                }
                assert_ne!(o.name, INCIDENT_OPTION);
            }
        }
        // A group either has subcommands or is a single command, never both.
        for g in groups() {
            let subs: Vec<_> = COMMANDS
                .iter()
                .filter(|c| c.group == g)
                .map(|c| c.sub)
                .collect();
            assert!(subs.iter().all(Option::is_some) || subs == [None], "{g}");
        }
    }

    #[test]
    fn every_usage_line_parses_when_filled_in() {
        for c in COMMANDS {
            let mut line = c.path();
            for o in c.options.iter().filter(|o| o.required) {
                let v = match o.kind {
                    OptionKind::Choice(ch) => ch[0].to_string(),
                    OptionKind::Integer { min, .. } => min.to_string(),
                    _ => "\"some value\"".to_string(),
                };
                line.push_str(&format!(" {}:{}", o.name, v));
            }
            assert_eq!(ok(&line).spec, c);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
            let _ = parse(&format!("/{s}"));
            let _ = parse(&format!("/incident declare {s}"));
        }

        #[test]
        fn command_shaped_noise_never_panics(
            group in prop::sample::select(vec!["incident", "step", "db", "approve", "x", ""]),
            sub in prop::sample::select(vec!["declare", "note", "done", "skip", "", "?"]),
            pieces in prop::collection::vec("[a-z]{0,8}:?(\"[^\"]{0,10}\"?)?[ \t\\\\“”]{0,2}", 0..8),
        ) {
            let line = format!("/{group} {sub} {}", pieces.join(" "));
            if let Ok(i) = parse(&line) {
                // Whatever parses must write back to a line that parses the same.
                prop_assert_eq!(parse(&i.canonical()).ok(), Some(i));
            }
        }
    }
}
