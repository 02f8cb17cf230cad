//! Helpers shared by the process-level interoperability tests (`interop_cli`, `interop_paho`):
//! a `midge serve` process on a free loopback port, child processes that are always killed,
//! commands bounded in time, and line-by-line reading of a child's output.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `midge` binary under test.
pub(crate) const MIDGE: &str = env!("CARGO_BIN_EXE_midge");

/// How long a test waits for something it expects from another process.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A port that was free a moment ago: bind 127.0.0.1:0, note the port, release it.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A tool from Debian's `mosquitto-clients`; the test fails if it is missing.
pub(crate) fn mosquitto_tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} not found: install Debian's mosquitto-clients \
         (`apt-get install mosquitto-clients`; scripts/test does it)"
    );
}

/// A child process killed (by its PID) and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) name: String,
}

impl Proc {
    pub(crate) fn spawn(cmd: &mut Command, name: &str) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_owned(),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by PID with `kill(1)`.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `midge serve` on a free loopback port, in its own temporary directory, with its
/// log in a file there. Killed when dropped.
#[derive(Debug)]
pub(crate) struct Midge {
    pub(crate) port: u16,
    pub(crate) proc: Proc,
    pub(crate) dir: tempfile::TempDir,
}

impl Midge {
    /// Starts `midge serve -p PORT` and waits until the port accepts connections.
    pub(crate) fn start() -> Midge {
        Midge::start_with(&[])
    }

    /// Like [`Midge::start`] with extra arguments for `midge serve`.
    pub(crate) fn start_with(extra: &[&str]) -> Midge {
        let dir = tempfile::tempdir().expect("tempdir");
        // A port can be taken between `free_port` and the bind: retry a few times.
        for _ in 0..5 {
            let port = free_port();
            let log = File::create(dir.path().join("midge.log")).expect("log file");
            let mut cmd = Command::new(MIDGE);
            cmd.arg("serve")
                .arg("-p")
                .arg(port.to_string())
                .args(extra)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log));
            let mut proc = Proc::spawn(&mut cmd, "midge serve");
            let deadline = Instant::now() + WAIT;
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Midge { port, proc, dir };
                }
                if let Some(status) = proc.child.try_wait().expect("try_wait") {
                    let log =
                        std::fs::read_to_string(dir.path().join("midge.log")).unwrap_or_default();
                    if log.contains("cannot listen") {
                        break; // port taken meanwhile: try another
                    }
                    panic!("midge serve exited early ({status}):\n{log}");
                }
                assert!(
                    Instant::now() < deadline,
                    "midge serve did not accept connections on port {port} within {WAIT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start midge serve on a free port");
    }

    /// The broker's log so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("midge.log")).unwrap_or_default()
    }
}

/// Runs a command to completion, failing the test if it takes longer than `timeout`.
pub(crate) fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut proc = Proc {
        child,
        name: format!("{cmd:?}"),
    };
    let Some(status) = proc.wait_timeout(timeout) else {
        proc.kill();
        panic!("{cmd:?} did not finish within {timeout:?}");
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// A child process whose stdout is read line by line (stderr goes to the test's stderr).
#[derive(Debug)]
pub(crate) struct LineProc {
    pub(crate) proc: Proc,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, for failure messages.
    pub(crate) seen: Vec<String>,
}

impl LineProc {
    pub(crate) fn spawn(cmd: &mut Command, name: &str) -> LineProc {
        cmd.stdout(Stdio::piped());
        let mut proc = Proc::spawn(cmd, name);
        let stdout = proc.child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineProc {
            proc,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The next line within `timeout`; `None` on timeout or end of output.
    pub(crate) fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Reads lines until one satisfies `pred`, failing the test after [`WAIT`].
    pub(crate) fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(line) if pred(&line) => return line,
                Some(_) => {}
                None => panic!(
                    "{}: no {what} within {WAIT:?}; output so far:\n{}",
                    self.proc.name,
                    self.seen.join("\n")
                ),
            }
        }
    }
}
