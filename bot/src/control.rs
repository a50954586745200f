//! The control socket: while `drbot serve` holds the data directory, `drbot exec` and
//! `drbot console` send their commands to it over `drbot.sock` in `[serve] socket_dir` (the
//! data directory by default): owner-only, or open to `[serve] socket_group`.
//!
//! One connection per command. The client writes one JSON line ([`Request`]); the server
//! answers with progress lines and then the reply ([`Response`]). Who is acting is the
//! connecting process's uid, read from the socket (SO_PEERCRED), never what the client says.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The socket's file name in the data directory.
pub const SOCKET: &str = "drbot.sock";

/// Where the socket in a socket directory is.
pub fn socket_path(socket_dir: &Path) -> PathBuf {
    socket_dir.join(SOCKET)
}

/// A command sent to `serve`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// `--as NAME`, checked by the server against the peer's uid.
    pub as_name: Option<String>,
    /// The command line.
    pub line: String,
    /// An operation of the binary rather than a command line (`state-export`).
    #[serde(default)]
    pub op: Option<String>,
}

/// The operation that exports the state (`drbot state export` while `serve` holds it).
pub const OP_STATE_EXPORT: &str = "state-export";

/// The operation that returns the timeline entries written after the `seq` in `line`, as a
/// JSON array (what `drbot console` shows of others' work while `serve` holds the state).
pub const OP_TIMELINE_SINCE: &str = "timeline-since";

/// What `serve` sends back: progress lines, then one final reply.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Long work's progress.
    Progress { line: String },
    /// The reply, with `exec`'s exit status and attached files (name, text).
    Reply {
        exit: i32,
        text: String,
        #[serde(default)]
        attachments: Vec<(String, String)>,
    },
}

/// Sends a command to a running `serve`, if one listens; `None` when there is none.
pub async fn send(
    socket_dir: &Path,
    as_name: Option<&str>,
    line: &str,
) -> Option<(i32, String, Vec<(String, String)>)> {
    let request = Request {
        as_name: as_name.map(str::to_string),
        line: line.to_string(),
        op: None,
    };
    send_request(socket_dir, &request).await
}

/// Sends a request to a running `serve`, if one listens; `None` when there is none.
pub async fn send_request(
    socket_dir: &Path,
    request: &Request,
) -> Option<(i32, String, Vec<(String, String)>)> {
    let stream = UnixStream::connect(socket_path(socket_dir)).await.ok()?;
    let (read, mut write) = stream.into_split();
    let mut body = serde_json::to_vec(request).ok()?;
    body.push(b'\n');
    if write.write_all(&body).await.is_err() {
        return None;
    }
    let mut lines = BufReader::new(read).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(l)) => match serde_json::from_str::<Response>(&l) {
                Ok(Response::Progress { line }) => eprintln!("… {line}"),
                Ok(Response::Reply {
                    exit,
                    text,
                    attachments,
                }) => return Some((exit, text, attachments)),
                Err(_) => continue,
            },
            _ => {
                return Some((
                    1,
                    "drbot serve closed the connection before answering (was it stopping?). \
                     Check with /incident status before retrying."
                        .to_string(),
                    Vec::new(),
                ));
            }
        }
    }
}
