//! What a command answers: an outcome (which maps to `drbot exec`'s exit status) and text for
//! people, written the same for the console and Discord.

use drbot_state::IncidentId;

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked.
    Done,
    /// It was not allowed, or the incident's state forbids it; nothing changed.
    Refused,
    /// It was tried and a system failed; the text says what was left as it was.
    Failed,
    /// The command line could not be understood; nothing changed.
    Usage,
    /// A destructive command is waiting for a second person: the request id.
    AwaitingApproval(String),
}

impl Outcome {
    /// `drbot exec`'s exit status (SPEC §3): 0 done, 1 failed or refused, 2 unusable command
    /// line, 3 waiting for an approval.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Done => 0,
            Outcome::Refused | Outcome::Failed => 1,
            Outcome::Usage => 2,
            Outcome::AwaitingApproval(_) => 3,
        }
    }
}

/// A file that goes with a reply (a report, a full timeline, a chart): an attachment in
/// Discord; text ones are printed after the reply by `exec` and the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// File name, e.g. `INC-3-report.md`.
    pub name: String,
    /// Its content, for text files.
    pub text: String,
    /// Its content, for binary files (a PNG); empty for text.
    pub data: Vec<u8>,
}

impl Attachment {
    /// The file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        if self.data.is_empty() {
            self.text.clone().into_bytes()
        } else {
            self.data.clone()
        }
    }
}

/// How a summary card reads at a glance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardState {
    /// Everything measured was within its target.
    Good,
    /// Something missed its target or failed.
    Bad,
    /// Neither.
    Neutral,
}

/// A summary of a reply for adapters that draw one (Discord's embed); the text says the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// Its title.
    pub title: String,
    /// Its state (colour).
    pub state: CardState,
    /// Named values, in order.
    pub fields: Vec<(String, String)>,
    /// The attachment to show as its image (a chart), by name.
    pub image: Option<String>,
}

/// A command's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// How it ended.
    pub outcome: Outcome,
    /// What happened, what changed, what comes next.
    pub text: String,
    /// Files that go with it.
    pub attachments: Vec<Attachment>,
    /// A summary card, for adapters that draw one.
    pub card: Option<Card>,
    /// What a lifecycle command did, for the dispatch level to follow up.
    pub(crate) lifecycle: Option<Lifecycle>,
}

/// A lifecycle change the dispatch level follows up once the command has done it: the
/// stakeholder notices and pages it calls for, and the post-incident report. The incident
/// commands know none of those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Declared: notices (at or above `[notify] min_severity`) and pages.
    Declared(IncidentId),
    /// Resolved: notices, pages resolved, the report.
    Resolved(IncidentId),
    /// Closed: pages resolved, the report written again.
    Closed(IncidentId),
    /// `/incident report`: the report written again.
    Reported(IncidentId),
}

impl Lifecycle {
    /// The incident it changed.
    pub fn incident(self) -> IncidentId {
        match self {
            Lifecycle::Declared(id)
            | Lifecycle::Resolved(id)
            | Lifecycle::Closed(id)
            | Lifecycle::Reported(id) => id,
        }
    }
}

impl Reply {
    /// A successful answer.
    pub fn done(text: impl Into<String>) -> Self {
        Reply::new(Outcome::Done, text)
    }

    /// An answer with this outcome.
    pub fn new(outcome: Outcome, text: impl Into<String>) -> Self {
        Reply {
            outcome,
            text: text.into(),
            attachments: Vec::new(),
            card: None,
            lifecycle: None,
        }
    }

    /// The same answer, with a lifecycle change for the dispatch level to follow up.
    pub(crate) fn then(mut self, change: Lifecycle) -> Self {
        self.lifecycle = Some(change);
        self
    }

    /// The same answer with a file attached.
    pub fn with_attachment(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.attachments.push(Attachment {
            name: name.into(),
            text: text.into(),
            data: Vec::new(),
        });
        self
    }

    /// The same answer with a binary file attached.
    pub fn with_file(mut self, name: impl Into<String>, data: Vec<u8>) -> Self {
        self.attachments.push(Attachment {
            name: name.into(),
            text: String::new(),
            data,
        });
        self
    }

    /// The text followed by each attachment, for terminals.
    pub fn full_text(&self) -> String {
        let mut s = self.text.clone();
        for a in self.attachments.iter().filter(|a| a.data.is_empty()) {
            s.push_str(&format!("\n\n--- {} ---\n{}", a.name, a.text.trim_end()));
        }
        s
    }
}
