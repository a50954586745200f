//! The Discord adapter. For now: the slash-command registration payload, built from the same
//! command table the console parses (`drbot_commands::grammar::COMMANDS`). The gateway,
//! interactions, reactions and buttons join here with serenity.

pub mod registration;
