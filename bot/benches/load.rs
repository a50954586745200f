//! Benchmark: `drbot serve` under load from both doors at once. 20 incidents, each declared
//! in its own Discord thread; then 50 `/incident note` commands per incident (1000 in all),
//! half as Discord interactions through the local fake, half through the control socket, all
//! sent at once. Reports the acknowledgement latency of each door (p50, p99, max; Discord: from
//! dispatch to the interaction's first callback; socket: from connect to the reply), then
//! stops serve and checks every incident's timeline: each note exactly once.
//! Target: p99 < 250 ms.
//!
//! Run: `cargo bench -p drbot --bench load`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/fake_discord.rs"]
mod fake_discord;
#[path = "../../tests/support.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use drbot_state::{IncidentId, Store};
use fake_discord::{FakeDiscord, command, declare, serve_on};
use serde_json::json;
use support::{Drbot, os_user};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const INCIDENTS: u64 = 20;
const PER_INCIDENT: u64 = 50;

fn note(text: &str) -> serde_json::Value {
    json!({ "id": "702", "name": "incident", "type": 1, "options": [{
        "name": "note", "type": 1, "options": [ { "name": "text", "type": 3, "value": text } ] }] })
}

/// One command over the control socket; the time until its reply.
async fn over_socket(socket: std::path::PathBuf, line: String) -> (f64, i64, String) {
    let started = Instant::now();
    let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let mut body = serde_json::to_vec(&json!({ "as_name": null, "line": line })).unwrap();
    body.push(b'\n');
    stream.write_all(&body).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    while let Some(l) = lines.next_line().await.unwrap() {
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        if v["type"] == "reply" {
            return (
                started.elapsed().as_secs_f64() * 1000.0,
                v["exit"].as_i64().unwrap_or(-1),
                l,
            );
        }
    }
    panic!("no reply to {line}");
}

/// serve, stopped with the bench even when a check fails (a panic would leave it running).
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "not measured".to_string();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p(0.5),
        p(0.99),
        v[v.len() - 1]
    )
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let fake = FakeDiscord::start().await;
        let d = Drbot::new(&format!(
            "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\nunix_user = \"{}\"\n\
             [discord]\nguild_id = 1\nincident_channel_id = 2\napi_base = \"{}\"\n",
            os_user(),
            fake.base
        ));
        let mut serve = Serve(serve_on(&fake, &d).await);
        for k in 0..INCIDENTS {
            let id = 10_000 + k;
            let data = declare("database", "sev3", &format!("incident {k}"));
            fake.dispatch("INTERACTION_CREATE", command(id, 11, "alice", &[], 1000 + k, data));
            fake.wait_for(Duration::from_secs(10), |r| r.method == "PATCH" && r.path.contains(&format!("tok{id}/")))
                .await
                .expect("declared");
        }
        eprintln!("load: {INCIDENTS} incidents declared");
        let socket = d.data_dir().join("drbot.sock");
        // DRBOT_LOAD_DOORS=discord|socket sends through one door only (to tell them apart).
        let doors = std::env::var("DRBOT_LOAD_DOORS").unwrap_or_default();
        let (use_discord, use_socket) = (doors != "socket", doors != "discord");
        let mut sent = HashMap::new();
        let mut socket_calls = tokio::task::JoinSet::new();
        for n in 0..PER_INCIDENT / 2 {
            for k in 0..INCIDENTS {
                let id = 20_000 + n * INCIDENTS + k;
                if use_discord {
                    sent.insert(id, Instant::now());
                    fake.dispatch(
                        "INTERACTION_CREATE",
                        command(id, 11, "alice", &[], 1000 + k, note(&format!("discord-{k}-{n}."))),
                    );
                }
                if !use_socket {
                    continue;
                }
                socket_calls.spawn(over_socket(
                    socket.clone(),
                    // The free text goes last: it takes the rest of the line.
                    format!("/incident note incident:INC-{} text:socket-{k}-{n}.", k + 1),
                ));
            }
        }
        eprintln!("load: everything sent");
        let mut socket_ms = Vec::new();
        while let Some(r) = socket_calls.join_next().await {
            if socket_ms.len() % 100 == 0 {
                eprintln!("load: {} socket replies", socket_ms.len());
            }
            let (ms, exit, text) = r.unwrap();
            assert_eq!(exit, 0, "a socket command failed: {text}");
            socket_ms.push(ms);
        }
        let total = if use_discord { (INCIDENTS * PER_INCIDENT / 2) as usize } else { 0 };
        let discord_ms = fake.ack_latencies(&sent, total, Duration::from_secs(120)).await;
        // Every Discord note is recorded once its reply is edited in; give the last ones time.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = std::process::Command::new("kill").args(["-TERM", &serve.0.id().to_string()]).status();
        let _ = serve.0.wait();
        assert_eq!(discord_ms.len(), total, "not every interaction was acknowledged");
        let store = Store::open(&d.data_dir()).unwrap();
        let mut missing = 0;
        let mut doubled = 0;
        for k in 0..INCIDENTS {
            let texts: Vec<String> = store
                .timeline(IncidentId(k + 1))
                .unwrap()
                .into_iter()
                .map(|e| e.text)
                .collect();
            for n in 0..PER_INCIDENT / 2 {
                for door in ["discord", "socket"] {
                    if (door == "discord" && !use_discord) || (door == "socket" && !use_socket) {
                        continue;
                    }
                    let needle = format!("{door}-{k}-{n}.");
                    match texts.iter().filter(|t| t.contains(&needle)).count() {
                        0 => missing += 1,
                        1 => {}
                        _ => doubled += 1,
                    }
                }
            }
        }
        println!(
            "load: {} commands over {INCIDENTS} incidents at once; discord ack {}; socket reply {}; {missing} missing, {doubled} doubled (target p99 < 250 ms, none missing or doubled)",
            INCIDENTS * PER_INCIDENT,
            percentiles(discord_ms),
            percentiles(socket_ms)
        );
        assert_eq!((missing, doubled), (0, 0));
    });
}
