//! Benchmark: how fast `drbot serve` acknowledges interactions. 20 incidents, each in its own
//! thread under the incident channel, then 200 `/incident status` interactions (10 per
//! incident) dispatched at once through the local fake of Discord; reports p50 and p99 of the
//! time from dispatch to the acknowledgement reaching the fake. Target: p99 < 250 ms.
//!
//! Run: `cargo bench -p drbot --bench discord_ack`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/fake_discord.rs"]
mod fake_discord;
#[path = "../../tests/support.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fake_discord::{FakeDiscord, command, declare, serve_on};
use serde_json::json;
use support::Drbot;

const INCIDENTS: u64 = 20;
const PER_INCIDENT: u64 = 10;

fn status() -> serde_json::Value {
    json!({ "id": "700", "name": "incident", "type": 1,
            "options": [{ "name": "status", "type": 1, "options": [] }] })
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let fake = FakeDiscord::start().await;
        let d = Drbot::new(&format!(
            "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
             [discord]\nguild_id = 1\nincident_channel_id = 2\napi_base = \"{}\"\n",
            fake.base
        ));
        let mut serve = serve_on(&fake, &d).await;
        for k in 0..INCIDENTS {
            let id = 10_000 + k;
            let data = declare("database", "sev2", &format!("incident {k}"));
            fake.dispatch("INTERACTION_CREATE", command(id, 11, "alice", &[], 1000 + k, data));
            fake.wait_for(Duration::from_secs(10), |r| r.method == "PATCH" && r.path.contains(&format!("tok{id}/")))
                .await
                .expect("declared");
        }
        let mut sent = HashMap::new();
        for round in 0..PER_INCIDENT {
            for k in 0..INCIDENTS {
                let id = 20_000 + round * INCIDENTS + k;
                sent.insert(id, Instant::now());
                fake.dispatch("INTERACTION_CREATE", command(id, 11, "alice", &[], 1000 + k, status()));
            }
        }
        let total = (INCIDENTS * PER_INCIDENT) as usize;
        let mut latencies = fake.ack_latencies(&sent, total, Duration::from_secs(60)).await;
        let _ = std::process::Command::new("kill").args(["-TERM", &serve.id().to_string()]).status();
        let _ = serve.wait();
        assert_eq!(latencies.len(), total, "not every interaction was acknowledged");
        latencies.sort_by(|a, b| a.total_cmp(b));
        let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "discord ack: {total} interactions over {INCIDENTS} incidents: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 250 ms)",
            p(0.5),
            p(0.99),
            latencies[latencies.len() - 1]
        );
    });
}
