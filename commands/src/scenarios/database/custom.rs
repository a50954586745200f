//! pg_dump's custom format (`PGDMP`), turned into the SQL script `pg_restore --clean
//! --if-exists` would run, streaming: the archive is fed to pg_restore's standard input on one
//! thread while its standard output is read as a plain dump. The restore then goes through
//! drbot's own loader, so the custom format gets the same transaction, savepoints, lock bound
//! and refusals as plain SQL.

use std::io::{self, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use super::splitter::PICK_PREVIOUS;

/// The most of pg_restore's error output kept for the message.
const STDERR_KEPT: u64 = 64 * 1024;

/// pg_restore's script output, as a reader. At its end the archive must have been read whole
/// and pg_restore must have succeeded; otherwise the read fails, saying why.
pub struct SqlFromArchive {
    child: Child,
    stdout: ChildStdout,
    feeder: Option<JoinHandle<io::Result<u64>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// Starts pg_restore on `archive`.
pub fn to_sql(mut archive: Box<dyn Read + Send>) -> io::Result<SqlFromArchive> {
    let mut child = Command::new("pg_restore")
        .args(["--clean", "--if-exists", "--file=-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run pg_restore (needed for custom-format backups): {e}"),
            )
        })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("pg_restore started without its pipes"));
    };
    let feeder = std::thread::spawn(move || {
        let n = io::copy(&mut archive, &mut stdin)?;
        stdin.flush()?;
        Ok(n)
    });
    let stderr = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stderr.take(STDERR_KEPT).read_to_end(&mut out);
        out
    });
    Ok(SqlFromArchive {
        child,
        stdout,
        feeder: Some(feeder),
        stderr: Some(stderr),
    })
}

impl SqlFromArchive {
    /// At the end of the script: did the archive arrive whole, and did pg_restore succeed?
    fn finish(&mut self) -> io::Result<()> {
        let fed = match self.feeder.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(p)) => Err(io::Error::other(format!(
                "reading the archive stopped unexpectedly: {}",
                crate::render::panic_text(p.as_ref())
            ))),
            None => Ok(0),
        };
        let status = self.child.wait()?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        match fed {
            // The archive itself could not be read (truncated, undecryptable): that is the cause.
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
        let said = String::from_utf8_lossy(&stderr);
        if !status.success()
            && let Ok(n) = fed
            && said.contains("end of file")
        {
            // pg_restore read every byte there was and wanted more: the archive is cut short.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the backup ends early: its custom-format archive stops after {n} bytes ({}), so the backup was cut short when it was made or copied. Nothing of it was applied; {PICK_PREVIOUS}",
                    crate::render::last_lines(&said, 1)
                ),
            ));
        }
        if !status.success() {
            return Err(io::Error::other(format!(
                "pg_restore could not read the custom-format archive ({status}): {}",
                crate::render::last_lines(&String::from_utf8_lossy(&stderr), 3)
            )));
        }
        fed.map(|_| ())
    }
}

impl Read for SqlFromArchive {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finish()?;
        }
        Ok(n)
    }
}

impl Drop for SqlFromArchive {
    fn drop(&mut self) {
        // Stopped early (the loader gave up): pg_restore has nothing more to do.
        if self.feeder.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
