//! What a command answers: an outcome (which maps to `drbot exec`'s exit status) and text for
//! people, written the same for the console and Discord.

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

/// A command's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// How it ended.
    pub outcome: Outcome,
    /// What happened, what changed, what comes next.
    pub text: String,
}

impl Reply {
    /// A successful answer.
    pub fn done(text: impl Into<String>) -> Self {
        Reply {
            outcome: Outcome::Done,
            text: text.into(),
        }
    }
}
