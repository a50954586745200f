//! Running the `drbot` binary in a scratch directory with its own config and data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A scratch drbot installation: a temp dir holding config.toml and the data directory.
pub struct Drbot {
    pub dir: tempfile::TempDir,
}

/// What one run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Drbot {
    /// A scratch install whose config is `extra` after `data_dir`.
    pub fn new(extra: &str) -> Drbot {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let config = format!("data_dir = {:?}\n{extra}", data.display().to_string());
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        Drbot { dir }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A `drbot` command with this install's config and a clean environment.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drbot"));
        c.arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .env_remove("DRBOT_CONFIG")
            .env_remove("DRBOT_DATA_DIR")
            .env_remove("RUST_LOG");
        c
    }

    /// `drbot exec [--as NAME] LINE`.
    pub fn exec(&self, as_name: Option<&str>, line: &str) -> Run {
        let mut c = self.command();
        c.arg("exec");
        if let Some(n) = as_name {
            c.args(["--as", n]);
        }
        c.arg(line).output().expect("run drbot exec").into()
    }

    /// `drbot console` fed `lines` on standard input, then end of input.
    pub fn console(&self, as_name: Option<&str>, lines: &[&str]) -> Run {
        let mut child = self.spawn_console(as_name);
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            for l in lines {
                writeln!(stdin, "{l}").expect("write to console");
            }
        }
        child.wait_with_output().expect("console exits").into()
    }

    /// A console left running, with piped standard streams.
    pub fn spawn_console(&self, as_name: Option<&str>) -> Child {
        let mut c = self.command();
        c.arg("console");
        if let Some(n) = as_name {
            c.args(["--as", n]);
        }
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn console")
    }
}

/// The operating-system user running the tests (the identity `exec` proves).
pub fn os_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// True when `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}
