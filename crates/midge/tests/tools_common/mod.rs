//! Helpers for the tests that run `midge pub/sub/rr` beside Debian's `mosquitto_pub/sub/rr`:
//! the two brokers (a `midge serve` process and Debian's `mosquitto`), child processes whose
//! output is captured as it comes (so a test can wait for a line), and output normalisation.
//!
//! Subscribers run with `-d`: their "Subscribed (mid: …)" line tells that the subscription is
//! in place, and "sending PUBCOMP" that a QoS 2 delivery is complete (libmosquitto hands a QoS
//! 2 message to the tool only at PUBREL, so the next one is published after that). The debug
//! lines are then removed before outputs are compared. Mosquitto's tools run under
//! `stdbuf -oL` so that their debug lines are not held in a buffer.

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../interop_common/mod.rs"]
pub(crate) mod interop_common;

pub(crate) use interop_common::{MIDGE, Midge, WAIT, free_port, mosquitto_tool, run_bounded};

/// `/usr/bin/stdbuf`, to line-buffer Mosquitto's tools.
pub(crate) fn stdbuf() -> &'static str {
    assert!(
        Path::new("/usr/bin/stdbuf").exists(),
        "/usr/bin/stdbuf (coreutils) is needed"
    );
    "/usr/bin/stdbuf"
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn mosquitto_broker_binary() -> PathBuf {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("Debian's mosquitto broker is needed (apt-get install mosquitto; scripts/test does it)");
}

/// Debian's broker on a loopback port (and a unix socket), with extra configuration lines;
/// killed (by its PID) when dropped.
#[derive(Debug)]
pub(crate) struct Mosquitto {
    child: Child,
    pub(crate) port: u16,
    pub(crate) socket: PathBuf,
    pub(crate) dir: tempfile::TempDir,
}

impl Mosquitto {
    pub(crate) fn start(extra: &str) -> Mosquitto {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let socket = dir.path().join("mosquitto.sock");
        let conf = dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {port} 127.0.0.1\nlistener 0 {}\nallow_anonymous true\n{extra}\n",
            socket.display()
        );
        if is_root() {
            // Otherwise mosquitto drops to the `mosquitto` user.
            text.push_str("user root\n");
        }
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        let child = Command::new(mosquitto_broker_binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let broker = Mosquitto {
            child,
            port,
            socket,
            dir,
        };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One of the two brokers the tools are run against.
#[derive(Debug)]
pub(crate) enum Broker {
    Midge(Midge),
    Mosquitto(Mosquitto),
}

impl Broker {
    pub(crate) fn midge() -> Broker {
        Broker::Midge(Midge::start())
    }

    pub(crate) fn mosquitto() -> Broker {
        Broker::Mosquitto(Mosquitto::start(""))
    }

    pub(crate) fn port(&self) -> u16 {
        match self {
            Broker::Midge(m) => m.port,
            Broker::Mosquitto(m) => m.port,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Broker::Midge(_) => "midge serve",
            Broker::Mosquitto(_) => "mosquitto",
        }
    }

    /// `-h 127.0.0.1 -p PORT`.
    pub(crate) fn args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port().to_string(),
        ]
    }
}

/// Which implementation of a tool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Impl {
    Mosquitto,
    Midge,
}

impl Impl {
    /// The command for `tool` ("pub", "sub", "rr"); Mosquitto's line-buffered.
    pub(crate) fn command(self, tool: &str) -> Command {
        match self {
            Impl::Mosquitto => {
                let mut cmd = Command::new(stdbuf());
                cmd.arg("-oL")
                    .arg(mosquitto_tool(&format!("mosquitto_{tool}")));
                cmd
            }
            Impl::Midge => {
                let mut cmd = Command::new(MIDGE);
                cmd.arg(tool);
                cmd
            }
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Impl::Mosquitto => "mosquitto",
            Impl::Midge => "midge",
        }
    }
}

/// Runs `tool ARGS` to completion (bounded), with `stdin` as its input.
pub(crate) fn run_tool(
    which: Impl,
    tool: &str,
    args: &[String],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    let mut cmd = which.command(tool);
    cmd.args(args);
    match stdin {
        None => run_bounded(&mut cmd, WAIT),
        Some(input) => {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("stdin");
            std::fs::write(&file, input).expect("write stdin");
            let mut child = cmd
                .stdin(std::fs::File::open(&file).expect("open stdin"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            let mut capture = Capture::attach(&mut child);
            capture.child = Some(child);
            let (status, stdout, stderr) = capture.finish(WAIT);
            std::process::Output {
                status,
                stdout,
                stderr,
            }
        }
    }
}

/// A child whose stdout and stderr are collected as they come.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) child: Option<Child>,
    pub(crate) name: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn pump(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().expect("lock").extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Capture {
    /// Spawns `cmd` (stdin closed) and starts collecting its output.
    pub(crate) fn spawn(cmd: &mut Command, name: &str) -> Capture {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut c = Capture::attach(&mut child);
        c.child = Some(child);
        c.name = name.to_owned();
        c
    }

    fn attach(child: &mut Child) -> Capture {
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stdout.take().expect("stdout"), stdout.clone()),
            pump(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Capture {
            child: None,
            name: String::new(),
            stdout,
            stderr,
            readers,
        }
    }

    /// Stdout so far.
    pub(crate) fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().expect("lock").clone()
    }

    /// Waits until stdout holds `needle` at least `count` times.
    pub(crate) fn wait_for(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = self.stdout();
            if count_of(&out, needle.as_bytes()) >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {count}× {needle:?} within {WAIT:?}; stdout: {:?}; stderr: {:?}",
                self.name,
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&self.stderr.lock().expect("lock"))
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the exit (killing the child after `timeout`) and returns what it wrote.
    pub(crate) fn finish(mut self, timeout: Duration) -> (ExitStatus, Vec<u8>, Vec<u8>) {
        let mut child = self.child.take().expect("child");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not finish within {timeout:?}; stdout: {:?}",
                    self.name,
                    String::from_utf8_lossy(&self.stdout())
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.stdout();
        let err = self.stderr.lock().expect("lock").clone();
        (status, out, err)
    }

    /// Sends a signal by PID.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("child").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn count_of(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Removes libmosquitto-style debug lines ("Client … sending …", "Client … received …",
/// "Subscribed (mid: …)", "Received DISCONNECT (…)"), wherever they start: with `-N` one
/// may follow a payload on the same line.
pub(crate) fn strip_debug(out: &[u8]) -> Vec<u8> {
    let mut result = Vec::with_capacity(out.len());
    let mut i = 0;
    while i < out.len() {
        let rest = &out[i..];
        if let Some(len) = debug_line_len(rest) {
            i += len;
            continue;
        }
        result.push(out[i]);
        i += 1;
    }
    result
}

fn debug_line_len(s: &[u8]) -> Option<usize> {
    let line_end = s.iter().position(|&b| b == b'\n')? + 1;
    let line = &s[..line_end];
    let is_debug = if let Some(rest) = line.strip_prefix(b"Client ") {
        let after_id = rest
            .iter()
            .position(|&b| b == b' ')
            .map(|p| &rest[p + 1..])?;
        after_id.starts_with(b"sending ") || after_id.starts_with(b"received ")
    } else {
        line.starts_with(b"Subscribed (mid: ") || line.starts_with(b"Received DISCONNECT (")
    };
    is_debug.then_some(line_end)
}

/// The debug lines of an output, in order.
pub(crate) fn debug_lines(out: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut i = 0;
    while i < out.len() {
        if let Some(len) = debug_line_len(&out[i..]) {
            lines.push(
                String::from_utf8_lossy(&out[i..i + len])
                    .trim_end()
                    .to_owned(),
            );
            i += len;
        } else {
            i += 1;
        }
    }
    lines
}

/// Replaces every run of ASCII digits with `9`: for outputs that print times.
pub(crate) fn normalise_digits(out: &[u8]) -> Vec<u8> {
    let mut result = Vec::with_capacity(out.len());
    let mut in_digits = false;
    for &b in out {
        if b.is_ascii_digit() {
            if !in_digits {
                result.push(b'9');
            }
            in_digits = true;
        } else {
            result.push(b);
            in_digits = false;
        }
    }
    result
}

/// `s` as argument strings.
pub(crate) fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|a| (*a).to_owned()).collect()
}
