//! Who is acting, and how sure drbot is of it (SPEC §7).
//!
//! In the console and `exec`, the operating-system user is the proof: it maps to a person
//! through `[people.NAME] unix_user`. `--as NAME` is accepted only when it matches that mapping,
//! or when `[console] trust_as = true`, and is then marked asserted. With no `[people]` at all
//! (the built-in defaults) the local user acts as commander, as SPEC §3 says.

use std::collections::BTreeSet;

use drbot_state::Proof;

use crate::config::Config;
use crate::error::CommandError;

/// The person running a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Their name: a `[people]` name, or the OS user's name when unmapped.
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
            name: "drbot".to_string(),
            roles: BTreeSet::new(),
            proof: Proof::System,
        }
    }

    /// The name as shown on the timeline: asserted identities are marked.
    pub fn display(&self) -> String {
        match self.proof {
            Proof::Asserted => format!("{} (asserted)", self.name),
            _ => self.name.clone(),
        }
    }
}

/// Works out the local actor from the OS user and an optional `--as NAME`.
pub fn local_actor(
    config: &Config,
    os_user: &str,
    as_name: Option<&str>,
) -> Result<Actor, CommandError> {
    let as_name = as_name.map(str::trim).filter(|s| !s.is_empty());
    if !config.has_people() {
        // Built-in defaults: one local operator with the commander role.
        let name = as_name.unwrap_or(os_user).to_string();
        let proof = if name == os_user {
            Proof::Proven
        } else {
            Proof::Asserted
        };
        return Ok(Actor {
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
            // Unmapped OS users act under their own name, with no roles.
            None => actor(os_user, Proof::Proven),
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
        let a = local_actor(&Config::default(), "root", None).expect("test setup");
        assert_eq!((a.name.as_str(), a.proof), ("root", Proof::Proven));
        assert!(a.has_role("commander"));
        let a = local_actor(&Config::default(), "root", Some("alice")).expect("test setup");
        assert_eq!((a.name.as_str(), a.proof), ("alice", Proof::Asserted));
        assert_eq!(a.display(), "alice (asserted)");
    }

    #[test]
    fn the_os_user_proves_who_you_are() {
        let c = config(PEOPLE);
        let a = local_actor(&c, "bob", None).expect("test setup");
        assert_eq!((a.name.as_str(), a.proof), ("bob", Proof::Proven));
        assert!(a.has_role("approver") && !a.has_role("commander"));
        let a = local_actor(&c, "bob", Some("bob")).expect("test setup");
        assert_eq!(a.proof, Proof::Proven);
        let a = local_actor(&c, "mallory", None).expect("test setup");
        assert_eq!(a.name, "mallory");
        assert!(a.roles.is_empty());
    }

    #[test]
    fn as_someone_else_needs_trust_as() {
        let c = config(PEOPLE);
        let e = local_actor(&c, "alice", Some("bob")).unwrap_err();
        assert!(matches!(e, CommandError::Refused(_)));
        assert!(e.to_string().contains("maps to alice"), "{e}");
        let e = local_actor(&c, "alice", Some("carol")).unwrap_err();
        assert!(matches!(e, CommandError::Usage(_)), "{e}");
        let trusted = config(&format!("{PEOPLE}\n[console]\ntrust_as = true\n"));
        let a = local_actor(&trusted, "alice", Some("bob")).expect("test setup");
        assert_eq!((a.name.as_str(), a.proof), ("bob", Proof::Asserted));
    }
}
