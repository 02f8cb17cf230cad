#![allow(clippy::unwrap_used)]
//! `midge passwd` against Debian's `mosquitto_passwd` and `mosquitto`: files move both ways,
//! and the command line behaves the same (messages and exit codes).

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use midge_broker::password::PasswordFile;

const MIDGE: &str = env!("CARGO_BIN_EXE_midge");

fn require(tool: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin"] {
        let p = format!("{dir}/{tool}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!(
        "{tool} is missing: install Debian's mosquitto and mosquitto-clients (scripts/test does)"
    );
}

fn midge_passwd(args: &[&str], stdin: &str) -> Output {
    run(Command::new(MIDGE).arg("passwd").args(args), stdin)
}

fn mosquitto_passwd(args: &[&str], stdin: &str) -> Output {
    run(Command::new(require("mosquitto_passwd")).args(args), stdin)
}

fn run(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Starts Debian's mosquitto with `password_file` and anonymous access off.
fn mosquitto_with_passwords(dir: &Path, password_file: &Path) -> (Broker, u16) {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    let mut text = String::new();
    if is_root() {
        // Mosquitto drops root privileges to `mosquitto`, which could not read the test's file.
        text.push_str("user root\n");
    }
    text.push_str(&format!(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
        password_file.display()
    ));
    std::fs::write(&conf, text).unwrap();
    let child = Command::new(require("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto");
    let broker = Broker(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (broker, port)
}

fn login(port: u16, user: &str, password: &str) -> i32 {
    Command::new(require("mosquitto_pub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            user,
            "-P",
            password,
        ])
        .args(["-t", "t", "-m", "x"])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

#[test]
fn mosquitto_accepts_a_file_written_by_midge_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let f = file.to_str().unwrap();
    assert!(
        midge_passwd(&["-c", "-b", f, "alice", "s3cret"], "")
            .status
            .success()
    );
    // Interactive form, password given twice on stdin.
    assert!(
        midge_passwd(&[f, "bob"], "hunter2\nhunter2\n")
            .status
            .success()
    );
    // Legacy $6$ hash.
    assert!(
        midge_passwd(&["-H", "sha512", "-b", f, "carol", "pw"], "")
            .status
            .success()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("alice:$7$1000$"), "{text}");
    assert!(text.contains("carol:$6$"), "{text}");

    let (_broker, port) = mosquitto_with_passwords(dir.path(), &file);
    assert_eq!(login(port, "alice", "s3cret"), 0);
    assert_eq!(login(port, "bob", "hunter2"), 0);
    assert_eq!(login(port, "carol", "pw"), 0);
    // Wrong password: CONNACK "not authorised", mosquitto_pub exits 5.
    assert_eq!(login(port, "alice", "wrong"), 5);
}

#[test]
fn midge_verifies_files_written_by_mosquitto_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let f = file.to_str().unwrap();
    assert!(
        mosquitto_passwd(&["-c", "-b", f, "alice", "s3cret"], "")
            .status
            .success()
    );
    assert!(
        mosquitto_passwd(&["-H", "sha512", "-b", f, "bob", "pw2"], "")
            .status
            .success()
    );
    let parsed = PasswordFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(parsed.verify("alice", b"s3cret"));
    assert!(!parsed.verify("alice", b"S3cret"));
    assert!(parsed.verify("bob", b"pw2"));
    assert!(!parsed.verify("nobody", b"pw2"));

    // And midge passwd edits such a file in place, keeping the other entries.
    assert!(
        midge_passwd(&["-b", f, "alice", "new"], "")
            .status
            .success()
    );
    let parsed = PasswordFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(parsed.verify("alice", b"new"));
    assert!(parsed.verify("bob", b"pw2"));
    assert!(midge_passwd(&["-D", f, "bob"], "").status.success());
    let parsed = PasswordFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(parsed.get("bob").is_none());
}

#[test]
fn plain_text_files_are_converted_with_u() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    std::fs::write(&file, "# comment\nalice:plain\n").unwrap();
    assert!(
        midge_passwd(&["-U", file.to_str().unwrap()], "")
            .status
            .success()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# comment\nalice:$7$"), "{text}");
    assert!(
        PasswordFile::parse(&text)
            .unwrap()
            .verify("alice", b"plain")
    );
}

/// The same mistakes give the same exit codes and error messages as mosquitto_passwd.
#[test]
fn errors_match_mosquitto_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let existing = dir.path().join("existing");
    let m = missing.to_str().unwrap();
    let e = existing.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], ""),
        (vec!["-b", m, "u", "p"], ""),
        (vec!["-c", "-D", e, "u"], ""),
        (vec!["-c", e], ""),
        (vec!["-H", "md5", "-b", e, "u", "p"], ""),
        (vec!["-b", e, "a:b", "p"], ""),
        (vec!["-D", e, "nobody"], ""),
        (vec![e, "u"], "one\ntwo\n"),
        (vec![e, "u"], ""),
        (vec!["-U", e, "extra"], ""),
    ];
    for (args, stdin) in cases {
        std::fs::write(&existing, "u:x\n").unwrap();
        let theirs = mosquitto_passwd(&args, stdin);
        std::fs::write(&existing, "u:x\n").unwrap();
        let ours = midge_passwd(&args, stdin);
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "exit code for {args:?}"
        );
        let their_err = String::from_utf8_lossy(&theirs.stderr);
        let our_err = String::from_utf8_lossy(&ours.stderr);
        if let Some(line) = their_err
            .lines()
            .find(|l| l.starts_with("Error:") || l.starts_with("Warning:"))
        {
            assert!(
                our_err.contains(line),
                "for {args:?}: expected {line:?}, got {our_err:?}"
            );
        }
    }
}
