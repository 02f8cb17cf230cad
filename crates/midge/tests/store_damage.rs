//! A damaged store (issue 5): garbage written over the middle of `store.redb`, the file cut in
//! half, or a foreign header, in a stopped broker's data directory.
//!
//! `midge serve` must refuse to start with a non-zero exit and a message that names the file
//! and says what to do (`midge serve --repair`, or move the file aside keeping a copy), without
//! a panic, and without touching the file. `midge serve --repair` must then keep a copy of the
//! damaged file (`store.redb.damaged-*`), start, and serve clients; later starts need no flag.

mod interop_common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop_common::{MIDGE, Proc, free_port, mosquitto_tool, run_bounded};

const LIMIT: Duration = Duration::from_secs(20);

/// `midge serve` on `data_dir` with extra arguments, its log in `log`.
fn spawn(data_dir: &Path, port: u16, extra: &[&str], log: &Path) -> Proc {
    let mut cmd = Command::new(MIDGE);
    cmd.arg("serve")
        .arg("-p")
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(log).expect("log file")));
    Proc::spawn(&mut cmd, "midge serve")
}

/// Starts `midge serve` and waits until it listens; panics with the log if it exits.
fn start(data_dir: &Path, extra: &[&str], log: &Path) -> (Proc, u16) {
    let port = free_port();
    let mut proc = spawn(data_dir, port, extra, log);
    let deadline = Instant::now() + LIMIT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("listening for MQTT") {
            return (proc, port);
        }
        if let Some(status) = proc.child.try_wait().expect("try_wait") {
            panic!("midge serve {extra:?} exited ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "midge serve did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, and a clean exit.
fn stop(mut proc: Proc, log: &Path) {
    proc.signal("TERM");
    let status = proc.wait_timeout(LIMIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "midge serve after SIGTERM: {status:?}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn mosquitto(tool: &str, port: u16, args: &[&str]) -> std::process::Output {
    run_bounded(
        Command::new(mosquitto_tool(tool))
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        LIMIT,
    )
}

/// A data directory with a persistent session holding 301 queued QoS 1 messages (300 of ~400
/// bytes, and the retained one, which its `d/#` also matches) and a retained message, written
/// by a broker that was then stopped cleanly.
fn populated_store(root: &Path) -> PathBuf {
    let data = root.join("data");
    let log = root.join("populate.log");
    let (proc, port) = start(&data, &[], &log);
    let out = mosquitto(
        "mosquitto_sub",
        port,
        &["-i", "keeper", "-c", "-q", "1", "-t", "d/#", "-E"],
    );
    assert!(out.status.success(), "mosquitto_sub -E: {out:?}");
    let lines: String = (0..300)
        .map(|i| format!("message {i:04} {}\n", "x".repeat(400)))
        .collect();
    let mut publisher = Command::new(mosquitto_tool("mosquitto_pub"));
    publisher
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-q", "1", "-t", "d/x", "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = Proc::spawn(&mut publisher, "mosquitto_pub -l");
    {
        use std::io::Write;
        let mut stdin = child.child.stdin.take().expect("stdin");
        stdin.write_all(lines.as_bytes()).expect("write lines");
    }
    let status = child.wait_timeout(LIMIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "mosquitto_pub -l: {status:?}"
    );
    let out = mosquitto(
        "mosquitto_pub",
        port,
        &["-q", "1", "-r", "-t", "d/retained", "-m", "kept"],
    );
    assert!(out.status.success(), "mosquitto_pub -r: {out:?}");
    stop(proc, &log);
    let size = std::fs::metadata(data.join("store.redb"))
        .expect("store.redb")
        .len();
    assert!(size > 64 * 1024, "store.redb is only {size} bytes");
    data
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// Overwrites every non-empty 4 KiB page of the middle half of the file with garbage (one
/// spot in the middle may fall on a page redb no longer uses, which is harmless and rightly
/// goes unnoticed).
fn garbage_in_the_middle(path: &Path) {
    let mut data = std::fs::read(path).expect("read store");
    let (start, end) = (data.len() / 4 / 4096 * 4096, data.len() * 3 / 4);
    let mut hit = 0;
    for page in (start..end).step_by(4096) {
        let page = &mut data[page..(page + 4096).min(end)];
        if page.iter().any(|b| *b != 0) {
            page.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = 0xA5 ^ (i as u8));
            hit += 1;
        }
    }
    assert!(hit > 0, "no data in the middle of {}", path.display());
    std::fs::write(path, data).expect("write store");
}

fn truncate_to_half(path: &Path) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open store");
    let len = file.metadata().expect("metadata").len();
    file.set_len(len / 2).expect("truncate");
}

fn foreign_header(path: &Path) {
    let mut data = std::fs::read(path).expect("read store");
    data[..512].fill(0x5A);
    std::fs::write(path, data).expect("write store");
}

/// The whole scenario for one kind of damage.
fn damaged_store_is_refused_then_repaired(damage: fn(&Path), what: &str) {
    let root = tempfile::tempdir().expect("tempdir");
    let pristine = populated_store(root.path());
    let data = root.path().join(format!("damaged-{what}"));
    copy_dir(&pristine, &data);
    let store = data.join("store.redb");
    damage(&store);
    let damaged_bytes = std::fs::read(&store).expect("read damaged store");

    // Refused, with the file named and the way out spelled out; no panic; file untouched.
    let log = root.path().join(format!("refused-{what}.log"));
    let mut proc = spawn(&data, free_port(), &[], &log);
    let status = proc.wait_timeout(LIMIT);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("{what}: midge serve kept running:\n{text}"));
    assert!(!status.success(), "{what}: midge serve exited 0:\n{text}");
    assert!(
        text.contains(&store.display().to_string()),
        "{what}: the message does not name {}:\n{text}",
        store.display()
    );
    assert!(
        text.contains("midge serve --repair") && text.contains("move the file aside"),
        "{what}: the message does not say what to do:\n{text}"
    );
    assert!(
        !text.contains("panicked") && !text.contains("stack backtrace"),
        "{what}: midge serve panicked:\n{text}"
    );
    assert_eq!(
        std::fs::read(&store).expect("read store"),
        damaged_bytes,
        "{what}: the damaged file was modified by a refused start"
    );

    // --repair: a copy of the damaged file is kept, the broker starts and serves clients.
    let log = root.path().join(format!("repair-{what}.log"));
    let (proc, port) = start(&data, &["--repair"], &log);
    let copies: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("read_dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("store.redb.damaged-"))
        })
        .collect();
    assert_eq!(copies.len(), 1, "{what}: damaged copies: {copies:?}");
    assert_eq!(
        std::fs::read(&copies[0]).expect("read copy"),
        damaged_bytes,
        "{what}: the kept copy differs from the damaged file"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("store repaired"), "{what}:\n{text}");
    let out = mosquitto(
        "mosquitto_pub",
        port,
        &["-q", "1", "-r", "-t", "after/repair", "-m", "served"],
    );
    assert!(
        out.status.success(),
        "{what}: publish after repair: {out:?}"
    );
    let out = mosquitto(
        "mosquitto_sub",
        port,
        &["-q", "1", "-t", "after/repair", "-C", "1", "-W", "10"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "served",
        "{what}: subscribe after repair: {out:?}"
    );
    stop(proc, &log);

    // The repaired store is healthy: a plain start works and kept what was written to it.
    let log = root.path().join(format!("after-{what}.log"));
    let (proc, port) = start(&data, &[], &log);
    let out = mosquitto(
        "mosquitto_sub",
        port,
        &["-q", "1", "-t", "after/repair", "-C", "1", "-W", "10"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "served");
    stop(proc, &log);
}

#[test]
fn garbage_in_the_middle_is_reported_then_repaired() {
    damaged_store_is_refused_then_repaired(garbage_in_the_middle, "garbage");
}

#[test]
fn truncated_store_is_reported_then_repaired() {
    damaged_store_is_refused_then_repaired(truncate_to_half, "truncated");
}

#[test]
fn foreign_header_is_reported_then_repaired() {
    damaged_store_is_refused_then_repaired(foreign_header, "header");
}

/// `--repair` on a healthy store changes nothing: no copy, everything still there.
#[test]
fn repair_of_a_healthy_store_keeps_everything() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = populated_store(root.path());
    let log = root.path().join("repair-healthy.log");
    let (proc, port) = start(&data, &["--repair"], &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("nothing to repair"), "{text}");
    assert!(
        text.contains("sessions=1 queued=301 retained=1"),
        "recovery line:\n{text}"
    );
    let out = mosquitto(
        "mosquitto_sub",
        port,
        &["-q", "1", "-t", "d/retained", "-C", "1", "-W", "10"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kept");
    stop(proc, &log);
    let names: Vec<String> = std::fs::read_dir(&data)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(names, vec!["store.redb".to_owned()]);
}
