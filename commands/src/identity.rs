//! Who is acting, and how sure drbot is of it (SPEC §7).
//!
//! In the console and `exec`, the operating-system user is the proof: it maps to a person
//! through `[people.NAME] unix_user`. `--as NAME` is accepted only when it matches that mapping,
//! or when `[console] trust_as = true`, and is then marked asserted. With no `[people]` at all
//! (the built-in defaults) the local user acts as commander, as SPEC §3 says.
//!
//! Who someone *is* is a [`Principal`]: `person:alice` (a `[people]` entry, however they came:
//! console, socket or Discord), `discord:<id>` for an unmapped Discord user, `unix:<uid>` for an
//! unmapped OS user. Every check (the requester is not the approver, two approvals come from
//! two people, only the incident's commander) compares principals; names are for display, so
//! a Discord member who calls themselves "alice" is not alice.

use std::collections::BTreeSet;

use drbot_state::Proof;

use crate::config::Config;
use crate::error::CommandError;

/// Who someone is, whatever they are called: `person:alice`, `discord:1234`, `unix:1001`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Principal(String);

impl Principal {
    /// A `[people]` entry.
    pub fn person(name: &str) -> Principal {
        Principal(format!("person:{name}"))
    }

    /// A Discord user no `[people]` entry maps.
    pub fn discord(id: u64) -> Principal {
        Principal(format!("discord:{id}"))
    }

    /// An OS user no `[people]` entry maps.
    pub fn unix(uid: u32) -> Principal {
        Principal(format!("unix:{uid}"))
    }

    /// drbot itself.
    pub fn system() -> Principal {
        Principal("system:drbot".to_string())
    }

    /// Who a `user:` option names: a `[people]` name, a Discord mention (`<@1234>`) of
    /// someone unmapped, or (with no `[people]`) a free name that is nobody's principal.
    pub fn of_user_option(config: &Config, user: &str) -> Principal {
        if config.people.contains_key(user) {
            return Principal::person(user);
        }
        match user
            .strip_prefix("<@")
            .and_then(|u| u.strip_suffix('>'))
            .and_then(|u| u.parse::<u64>().ok())
        {
            Some(id) => Principal::discord(id),
            None => Principal(format!("name:{user}")),
        }
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The operating-system user behind a console, `exec` or the control socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsUser {
    /// The login name (or `uid<N>` when the uid has none).
    pub name: String,
    /// The uid: from the process, or the socket's SO_PEERCRED.
    pub uid: u32,
}

/// The person running a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Who they are: what every identity check compares.
    pub id: Principal,
    /// Their name, for display: a `[people]` name, the OS user's or Discord user's name.
    pub name: String,
    /// Their roles (`commander`, `approver`, ...).
    pub roles: BTreeSet<String>,
    /// How their identity was established.
    pub proof: Proof,
}

impl Actor {
    /// True when they hold `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// drbot itself, for automatic entries.
    pub fn system() -> Actor {
        Actor {
            id: Principal::system(),
            name: "drbot".to_string(),
            roles: BTreeSet::new(),
            proof: Proof::System,
        }
    }

    /// The name that goes on the record (timeline entries, who did a step, who asked and who
    /// approved): a person's name; someone no `[people]` entry maps, with their principal, so
    /// a Discord member called "alice" is never recorded as alice.
    pub fn recorded(&self) -> String {
        let id = self.id.as_str();
        if id.starts_with("discord:") || id.starts_with("unix:") {
            format!("{} ({id})", self.name)
        } else {
            self.name.clone()
        }
    }

    /// The name as shown on the timeline: asserted identities are marked.
    pub fn display(&self) -> String {
        match self.proof {
            Proof::Asserted => format!("{} (asserted)", self.name),
            _ => self.recorded(),
        }
    }
}

/// Works out the local actor from the OS user and an optional `--as NAME`.
pub fn local_actor(
    config: &Config,
    os: &OsUser,
    as_name: Option<&str>,
) -> Result<Actor, CommandError> {
    let os_user = os.name.as_str();
    let as_name = as_name.map(str::trim).filter(|s| !s.is_empty());
    if !config.has_people() {
        // Built-in defaults: one local operator with the commander role.
        let name = as_name.unwrap_or(os_user).to_string();
        let (id, proof) = if name == os_user {
            (Principal::unix(os.uid), Proof::Proven)
        } else {
            (Principal(format!("name:{name}")), Proof::Asserted)
        };
        return Ok(Actor {
            id,
            name,
            roles: BTreeSet::from(["commander".to_string()]),
            proof,
        });
    }
    let mapped = config
        .people
        .iter()
        .find(|(_, p)| p.unix_user.as_deref() == Some(os_user))
        .map(|(n, _)| n.as_str());
    let actor = |name: &str, proof| Actor {
        id: Principal::person(name),
        name: name.to_string(),
        roles: config
            .people
            .get(name)
            .map(|p| p.roles.iter().cloned().collect())
            .unwrap_or_default(),
        proof,
    };
    match as_name {
        None => Ok(match mapped {
            Some(name) => actor(name, Proof::Proven),
            // Unmapped OS users act as their uid, under their own name, with no roles.
            None => Actor {
                id: Principal::unix(os.uid),
                name: os_user.to_string(),
                roles: BTreeSet::new(),
                proof: Proof::Proven,
            },
        }),
        Some(name) => {
            if !config.people.contains_key(name) {
                let known: Vec<&str> = config.people.keys().map(String::as_str).collect();
                return Err(CommandError::Usage(format!(
                    "--as {name}: nobody called {name} is in the config's [people] (known: {}).",
                    known.join(", ")
                )));
            }
            if mapped == Some(name) {
                Ok(actor(name, Proof::Proven))
            } else if config.console.trust_as {
                Ok(actor(name, Proof::Asserted))
            } else {
                let now = match mapped {
                    Some(m) => format!("which the config maps to {m}"),
                    None => "which no [people] entry maps".to_string(),
                };
                Err(CommandError::Refused(format!(
                    "--as {name} refused: you are the OS user {os_user}, {now}. Acting as {name} needs \
                     [people.{name}] unix_user = \"{os_user}\", or [console] trust_as = true (demos only)."
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn os(name: &str) -> OsUser {
        OsUser {
            name: name.to_string(),
            uid: 1000 + name.len() as u32,
        }
    }

    fn config(text: &str) -> Config {
        Config::from_toml(text, Path::new("t.toml")).expect("test setup")
    }

    const PEOPLE: &str = r#"
[people.alice]
roles = ["commander"]
unix_user = "alice"
[people.bob]
roles = ["approver"]
unix_user = "bob"
"#;

    #[test]
    fn defaults_make_the_local_user_commander() {
        let a = local_actor(&Config::default(), &os("root"), None).expect("test setup");
        assert_eq!((a.name.as_str(), a.proof), ("root", Proof::Proven));
        assert!(a.has_role("commander"));
        let a = local_actor(&Config::default(), &os("root"), Some("alice")).expect("test setup");
        assert_eq!((a.name.as_str(), a.proof), ("alice", Proof::Asserted));
        assert_eq!(a.display(), "alice (asserted)");
    }

    #[test]
    fn the_os_user_proves_who_you_are() {
        let c = config(PEOPLE);
        let a = local_actor(&c, &os("bob"), None).expect("test setup");
        assert_eq!((a.name.as_str(), a.proof), ("bob", Proof::Proven));
        assert!(a.has_role("approver") && !a.has_role("commander"));
        let a = local_actor(&c, &os("bob"), Some("bob")).expect("test setup");
        assert_eq!(a.proof, Proof::Proven);
        let a = local_actor(&c, &os("mallory"), None).expect("test setup");
        assert_eq!(a.name, "mallory");
        assert_eq!(a.id, Principal::unix(1007));
        assert!(a.roles.is_empty());
        // An unmapped OS user called like a person is still only their uid.
        let c = config(&format!("{PEOPLE}[people.carol]\nroles = [\"approver\"]\n"));
        let a = local_actor(&c, &os("carol"), None).expect("test setup");
        assert_eq!(a.display(), "carol (unix:1005)");
        assert_eq!((a.id, a.roles.len()), (Principal::unix(1005), 0));
    }

    #[test]
    fn as_someone_else_needs_trust_as() {
        let c = config(PEOPLE);
        let e = local_actor(&c, &os("alice"), Some("bob")).unwrap_err();
        assert!(matches!(e, CommandError::Refused(_)));
        assert!(e.to_string().contains("maps to alice"), "{e}");
        let e = local_actor(&c, &os("alice"), Some("carol")).unwrap_err();
        assert!(matches!(e, CommandError::Usage(_)), "{e}");
        let trusted = config(&format!("{PEOPLE}\n[console]\ntrust_as = true\n"));
        let a = local_actor(&trusted, &os("alice"), Some("bob")).expect("test setup");
        assert_eq!((a.name.as_str(), a.proof), ("bob", Proof::Asserted));
    }
}
