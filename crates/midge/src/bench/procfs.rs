//! What `/proc` tells about the broker (`--pid`) and about the generator itself: resident
//! memory, peak memory, CPU time, and the open-file limit. Linux only; elsewhere every
//! reading is `None` and the report leaves the figure out.

use std::time::Instant;

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`). It is 100 on every Linux
/// architecture Midge builds for; reading it properly needs `sysconf`, i.e. `unsafe` libc.
const USER_HZ: f64 = 100.0;

/// A `VmRSS`/`VmHWM`-style field of `/proc/PID/status`, in bytes.
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Resident memory now.
pub(crate) fn rss(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS")
}

/// Peak resident memory since the process started.
pub(crate) fn peak_rss(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM")
}

/// User plus system CPU time of the whole process (all threads), in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after its closing parenthesis
    // are plain. utime and stime are fields 14 and 15, i.e. 12th and 13th after it.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The soft limit on open files of this process (`ulimit -n`), if known.
pub(crate) fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .strip_prefix("Max open files")?
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// CPU time of a process over an interval, as a percentage of one core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMeter {
    pid: u32,
    start: Instant,
    cpu: f64,
}

impl CpuMeter {
    /// Starts measuring `pid` now; `None` if its CPU time cannot be read.
    pub(crate) fn start(pid: u32) -> Option<CpuMeter> {
        Some(CpuMeter {
            pid,
            start: Instant::now(),
            cpu: cpu_seconds(pid)?,
        })
    }

    /// CPU seconds used and wall seconds elapsed since [`CpuMeter::start`].
    pub(crate) fn read(&self) -> Option<(f64, f64)> {
        let cpu = cpu_seconds(self.pid)? - self.cpu;
        Some((cpu, self.start.elapsed().as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let rss = rss(pid).expect("VmRSS");
        assert!(rss > 0);
        assert!(peak_rss(pid).expect("VmHWM") >= rss / 2);
        assert!(cpu_seconds(pid).is_some());
        assert!(open_files_limit().expect("limits") > 0);
        assert!(super::rss(u32::MAX).is_none());
    }
}
