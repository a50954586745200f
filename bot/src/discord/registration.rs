//! Slash commands for Discord, from the command table's built commands: one application
//! command per group, its subcommands as options of type SUB_COMMAND (or its options directly
//! when it has none).
//! The payload is what `PUT /applications/{id}/guilds/{guild}/commands` takes.

use drbot_commands::grammar::{CommandSpec, OptionKind, OptionSpec};
use serde_json::{Value, json};

/// Discord's option types.
const SUB_COMMAND: u8 = 1;
const STRING: u8 = 3;
const INTEGER: u8 = 4;
const USER: u8 = 6;

fn option(o: &OptionSpec) -> Value {
    let mut v = json!({
        "name": o.name,
        "description": o.description,
        "required": o.required,
    });
    match o.kind {
        OptionKind::Text => {
            v["type"] = json!(STRING);
            if o.autocomplete {
                v["autocomplete"] = json!(true);
            }
        }
        OptionKind::Integer { min, max } => {
            v["type"] = json!(INTEGER);
            v["min_value"] = json!(min);
            v["max_value"] = json!(max);
        }
        OptionKind::Choice(choices) => {
            v["type"] = json!(STRING);
            v["choices"] = Value::Array(
                choices
                    .iter()
                    .map(|c| json!({ "name": c, "value": c }))
                    .collect(),
            );
        }
        OptionKind::User => v["type"] = json!(USER),
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
/// built yet is registered when it is).
pub fn commands() -> Value {
    let table = drbot_commands::commands();
    let mut groups: Vec<&str> = table.built().map(|c| c.group).collect();
    groups.dedup();
    let list = groups
        .into_iter()
        .map(|g| {
            let members: Vec<&CommandSpec> = table.built().filter(|c| c.group == g).collect();
            let options: Vec<Value> = if members.len() == 1 && members[0].sub.is_none() {
                members[0].options.iter().map(option).collect()
            } else {
                members
                    .iter()
                    .map(|c| {
                        json!({
                            "type": SUB_COMMAND,
                            "name": c.sub.unwrap_or_default(),
                            "description": c.description,
                            "options": c.options.iter().map(option).collect::<Vec<_>>(),
                        })
                    })
                    .collect()
            };
            json!({
                "type": 1,
                "name": g,
                "description": group_description(g, &members),
                "options": options,
            })
        })
        .collect();
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            !(o["autocomplete"] == json!(true) && o["choices"].is_array()),
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
        let all = commands();
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
