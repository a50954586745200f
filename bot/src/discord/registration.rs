//! Slash commands for Discord, from the command table's built commands: one application
//! command per group, its subcommands as options of type SUB_COMMAND (or its options directly
//! when it has none).
//! The payload is what `PUT /applications/{id}/guilds/{guild}/commands` takes.

use drbot_commands::grammar::{CommandSpec, OptionKind, OptionSpec};
use serenity::all::{CommandOptionType, CreateCommand, CreateCommandOption};

fn option(o: &OptionSpec) -> CreateCommandOption {
    let kind = match o.kind {
        OptionKind::Text | OptionKind::Choice(_) => CommandOptionType::String,
        OptionKind::Integer { .. } => CommandOptionType::Integer,
        OptionKind::User => CommandOptionType::User,
    };
    let mut v = CreateCommandOption::new(kind, o.name, o.description).required(o.required);
    match o.kind {
        OptionKind::Text if o.autocomplete => v = v.set_autocomplete(true),
        OptionKind::Integer { min, max } => {
            v = v
                .min_int_value(min.max(0) as u64)
                .max_int_value(max.max(0) as u64);
        }
        OptionKind::Choice(choices) => {
            for c in choices {
                v = v.add_string_choice(*c, *c);
            }
        }
        _ => {}
    }
    v
}

fn group_description(group: &str, members: &[&CommandSpec]) -> String {
    match group {
        "incident" => "Declare and run an incident".to_string(),
        "step" => "The runbook's steps for this incident".to_string(),
        "db" => "Database: check, backups, restore, verify, backup".to_string(),
        "storage" => "Object storage: check, versions, restore".to_string(),
        "search" => "Meilisearch: health, dump, reindex, progress".to_string(),
        "api" => "The platform's API and web app".to_string(),
        "drill" => "Fire drills from the runbook".to_string(),
        "notify" => "Stakeholder notifications".to_string(),
        _ => members
            .first()
            .map(|c| c.description.to_string())
            .unwrap_or_default(),
    }
}

/// The registration payload: every command of SPEC §2 that does something (a scenario not
/// built yet is registered when it is), built with serenity's builders.
pub fn commands() -> Vec<CreateCommand> {
    let table = drbot_commands::commands();
    let mut groups: Vec<&str> = table.built().map(|c| c.group).collect();
    groups.dedup();
    groups
        .into_iter()
        .map(|g| {
            let members: Vec<&CommandSpec> = table.built().filter(|c| c.group == g).collect();
            let options: Vec<CreateCommandOption> =
                if members.len() == 1 && members[0].sub.is_none() {
                    members[0].options.iter().map(option).collect()
                } else {
                    members
                        .iter()
                        .map(|c| {
                            CreateCommandOption::new(
                                CommandOptionType::SubCommand,
                                c.sub.unwrap_or_default(),
                                c.description,
                            )
                            .set_sub_options(c.options.iter().map(option).collect::<Vec<_>>())
                        })
                        .collect()
                };
            CreateCommand::new(g)
                .description(group_description(g, &members))
                .set_options(options)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Discord's option types of a subcommand and of a string.
    const SUB_COMMAND: u8 = 1;
    const STRING: u8 = 3;

    /// Characters Discord counts against its 4000 per command: names, descriptions, choices.
    fn counted(v: &Value) -> usize {
        let mut n = 0;
        for key in ["name", "description"] {
            n += v[key].as_str().map_or(0, |s| s.chars().count());
        }
        if let Some(choices) = v["choices"].as_array() {
            for c in choices {
                n += c["name"].as_str().map_or(0, str::len)
                    + c["value"].as_str().map_or(0, str::len);
            }
        }
        if let Some(options) = v["options"].as_array() {
            n += options.iter().map(counted).sum::<usize>();
        }
        n
    }

    fn check_option(o: &Value) {
        let name = o["name"].as_str().expect("test setup");
        assert!(
            (1..=32).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
            "{name}"
        );
        let d = o["description"].as_str().expect("test setup");
        assert!((1..=100).contains(&d.chars().count()), "{name}: {d}");
        assert!(
            !(o["autocomplete"] == json!(true)
                && o["choices"].as_array().is_some_and(|c| !c.is_empty())),
            "{name}"
        );
        if let Some(options) = o["options"].as_array() {
            assert!(options.len() <= 25, "{name}");
            let mut seen_optional = false;
            for sub in options {
                if sub["type"] != json!(SUB_COMMAND) {
                    let required = sub["required"] == json!(true);
                    assert!(
                        !(required && seen_optional),
                        "{name}: required after optional"
                    );
                    seen_optional |= !required;
                }
                check_option(sub);
            }
            // Subcommands and plain options never mix at one level.
            let subs = options
                .iter()
                .filter(|x| x["type"] == json!(SUB_COMMAND))
                .count();
            assert!(subs == 0 || subs == options.len(), "{name}");
        }
    }

    #[test]
    fn the_payload_follows_discords_limits_and_covers_every_command() {
        let all = serde_json::to_value(commands()).expect("test setup");
        let list = all.as_array().expect("test setup");
        assert!(list.len() <= 100);
        for c in list {
            check_option(c);
            assert!(counted(c) <= 4000, "{}", c["name"]);
        }
        // Every built command of the table is reachable; the others are not registered.
        let table = drbot_commands::commands();
        for spec in table.specs().filter(|s| !table.is_built(s)) {
            assert!(
                !list.iter().any(|c| c["name"] == json!(spec.group)),
                "{} is registered before it is built",
                spec.path()
            );
        }
        for spec in table.built() {
            let cmd = list
                .iter()
                .find(|c| c["name"] == json!(spec.group))
                .expect("test setup");
            if let Some(sub) = spec.sub {
                assert!(
                    cmd["options"]
                        .as_array()
                        .expect("test setup")
                        .iter()
                        .any(|o| o["name"] == json!(sub)),
                    "{}",
                    spec.path()
                );
            }
        }
        let db = list.iter().find(|c| c["name"] == "db").expect("test setup");
        let restore = db["options"]
            .as_array()
            .expect("test setup")
            .iter()
            .find(|o| o["name"] == "restore")
            .expect("test setup");
        assert_eq!(restore["options"][0]["autocomplete"], json!(true));
        let approve = list
            .iter()
            .find(|c| c["name"] == "approve")
            .expect("test setup");
        assert_eq!(approve["options"][0]["name"], "request");
        assert_eq!(approve["options"][0]["type"], json!(STRING));
    }
}
